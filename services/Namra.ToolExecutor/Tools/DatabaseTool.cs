using System.Data.Common;
using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Data.Sqlite;
using Namra.Contracts.V1;
using Npgsql;

namespace Namra.ToolExecutor.Tools;

/// <summary>
/// <c>builtin.database</c>: one SQL statement with <c>$1</c>, <c>$2</c>... parameters (bound, never spliced into
/// the text), answered as JSON columns and rows, at most <c>max_rows</c>. Read-only by default, and the database
/// enforces it (SQLite opens the file read-only; PostgreSQL runs the statement in a read-only transaction), so no
/// wording of a statement can write. For PostgreSQL, connect as a role with only the grants the agent needs: a
/// superuser can reach the server's files and programs in ways no transaction mode stops.
/// </summary>
internal sealed class DatabaseTool : ITool
{
    private const int DefaultMaxRows = 100;
    private const int MaxCellCharacters = 2000;

    private const string Schema = """
        {"type":"object","properties":{"sql":{"type":"string","minLength":1,"maxLength":20000,"description":"One SQL statement; write $1, $2... for values"},"parameters":{"type":"array","maxItems":100,"items":{"type":["string","number","boolean","null"]},"description":"Values for $1, $2..."}},"required":["sql"],"additionalProperties":false}
        """;

    private static readonly JsonWriterOptions Compact = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public ToolType Type => ToolType.BuiltinDatabase;

    public Task<IReadOnlyList<ToolDescription>> DescribeAsync(ToolConfig config, CancellationToken cancellationToken)
    {
        var settings = Settings.From(config);
        var description = config.Description.Length > 0 ? config.Description
            : $"Runs one SQL statement on a {settings.Driver} database{(settings.ReadOnly ? " (read-only)" : "")} and returns the rows as JSON.";
        return Task.FromResult<IReadOnlyList<ToolDescription>>([new ToolDescription(config.Name, description, Schema)]);
    }

    public async Task<ToolOutcome> ExecuteAsync(ToolConfig config, string toolName, JsonElement arguments, CancellationToken cancellationToken)
    {
        var settings = Settings.From(config);
        if (settings.ConnectionString.Length == 0)
        {
            return ToolOutcome.Error("The tool has no connection string (connection_string_env names an unset variable?).");
        }

        DbConnection connection;
        try
        {
            connection = settings.Driver == "postgres" ? Postgres(settings) : Sqlite(settings);
        }
        catch (ArgumentException exception)
        {
            return ToolOutcome.Error($"The connection string is not valid: {exception.Message}");
        }

        await using (connection)
        {
            try
            {
                await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
                return await RunAsync(connection, settings, arguments, cancellationToken).ConfigureAwait(false);
            }
            catch (DbException exception) when (!cancellationToken.IsCancellationRequested)
            {
                return ToolOutcome.Error($"The database refused the statement: {Describe(exception)}");
            }
        }
    }

    private static SqliteConnection Sqlite(Settings settings) => new(new SqliteConnectionStringBuilder(settings.ConnectionString)
    {
        // The database enforces read-only: the file is opened so, and nothing can be written through it.
        Mode = settings.ReadOnly ? SqliteOpenMode.ReadOnly : SqliteOpenMode.ReadWrite,
        Pooling = false,
    }.ToString());

    private static NpgsqlConnection Postgres(Settings settings) => new(new NpgsqlConnectionStringBuilder(settings.ConnectionString)
    {
        ApplicationName = "namra-tool-executor",
        Timeout = 10,
    }.ToString());

    private static async Task<ToolOutcome> RunAsync(DbConnection connection, Settings settings, JsonElement arguments, CancellationToken cancellationToken)
    {
        // In a transaction, so a second statement found after the first can be undone before it counts.
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        var sql = arguments.GetProperty("sql").GetString() ?? "";
        if (connection is NpgsqlConnection && settings.ReadOnly)
        {
            // PostgreSQL enforces it: a read-only transaction refuses every write, and cannot be made writable
            // again once the statement below has run.
            await using var readOnly = connection.CreateCommand();
            readOnly.CommandText = "SET TRANSACTION READ ONLY";
            await readOnly.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        if (connection is SqliteConnection sqlite && HasSecondStatement(sqlite, sql))
        {
            return ToolOutcome.Error("Send one SQL statement per call; nothing was run.");
        }

        var values = arguments.TryGetProperty("parameters", out var parameters)
            ? parameters.EnumerateArray().Select(value => Parameter(value, connection is SqliteConnection)).ToList()
            : [];

        string json;
        await using var batch = PostgresStatement(connection, transaction, sql, values);
        await using var command = SqliteStatement(connection, transaction, sql, values);
        await using (DbDataReader reader = batch is not null
            ? await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false)
            : await command!.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            json = await ToJsonAsync(reader, settings.MaxRows, cancellationToken).ConfigureAwait(false);
            if (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false))
            {
                await reader.CloseAsync().ConfigureAwait(false);
                await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
                return ToolOutcome.Error("Send one SQL statement per call; nothing was changed.");
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return new ToolOutcome(json);
    }

    private static object Parameter(JsonElement value, bool sqlite) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString()!,
        JsonValueKind.Number => value.TryGetInt64(out var integer) ? integer : value.GetDouble(),
        JsonValueKind.True => sqlite ? 1 : true,
        JsonValueKind.False => sqlite ? 0 : false,
        _ => DBNull.Value,
    };

    // PostgreSQL gets a batch of one command with positional parameters: Npgsql then sends the text as written,
    // never split at semicolons, so the server itself refuses a second statement (a split one could COMMIT and run
    // outside the read-only transaction).
    private static NpgsqlBatch? PostgresStatement(DbConnection connection, DbTransaction transaction, string sql, List<object> values)
    {
        if (connection is not NpgsqlConnection postgres)
        {
            return null;
        }

        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }

        return new NpgsqlBatch(postgres, (NpgsqlTransaction)transaction) { BatchCommands = { command } };
    }

    private static SqliteCommand? SqliteStatement(DbConnection connection, DbTransaction transaction, string sql, List<object> values)
    {
        if (connection is not SqliteConnection sqlite)
        {
            return null;
        }

        var command = sqlite.CreateCommand();
        command.Transaction = (SqliteTransaction)transaction;
        command.CommandText = sql;
        for (var i = 0; i < values.Count; i++)
        {
            command.Parameters.AddWithValue($"${i + 1}", values[i]);
        }

        return command;
    }

    private static string Describe(DbException exception) => exception switch
    {
        PostgresException postgres => $"{postgres.MessageText} (SQLSTATE {postgres.SqlState})",
        NpgsqlException { InnerException: { } inner } npgsql when npgsql is not PostgresException => $"{npgsql.Message} {inner.Message}",
        _ => exception.Message,
    };

    // SQLite's own parser says where the first statement ends: anything after it but blanks and comments is a second one.
    private static bool HasSecondStatement(SqliteConnection connection, string sql)
    {
        var result = SQLitePCL.raw.sqlite3_prepare_v2(connection.Handle, sql, out var statement, out var tail);
        using (statement)
        {
            if (result != SQLitePCL.raw.SQLITE_OK)
            {
                return false; // the real execution reports the syntax error
            }

            return tail is { Length: > 0 } rest && !IsOnlyCommentsOrBlanks(connection, rest);
        }
    }

    private static bool IsOnlyCommentsOrBlanks(SqliteConnection connection, string rest)
    {
        var result = SQLitePCL.raw.sqlite3_prepare_v2(connection.Handle, rest, out var statement, out _);
        using (statement)
        {
            return result == SQLitePCL.raw.SQLITE_OK && statement.IsInvalid;
        }
    }

    private static async Task<string> ToJsonAsync(DbDataReader reader, int maxRows, CancellationToken cancellationToken)
    {
        using var stream = new MemoryStream();
        await using (var json = new Utf8JsonWriter(stream, Compact))
        {
            json.WriteStartObject();
            if (reader.FieldCount == 0)
            {
                json.WriteNumber("rows_affected", reader.RecordsAffected);
            }
            else
            {
                json.WriteStartArray("columns");
                for (var i = 0; i < reader.FieldCount; i++)
                {
                    json.WriteStringValue(reader.GetName(i));
                }

                json.WriteEndArray();
                json.WriteStartArray("rows");
                var rows = 0;
                var more = false;
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    if (rows++ == maxRows)
                    {
                        more = true;
                        break;
                    }

                    json.WriteStartArray();
                    for (var i = 0; i < reader.FieldCount; i++)
                    {
                        WriteCell(json, reader.IsDBNull(i) ? null : reader.GetValue(i));
                    }

                    json.WriteEndArray();
                }

                json.WriteEndArray();
                if (more)
                {
                    json.WriteString("note", $"more than {maxRows} rows; only the first {maxRows} are shown (add LIMIT or WHERE)");
                }
            }

            json.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteCell(Utf8JsonWriter json, object? value)
    {
        switch (value)
        {
            case null:
                json.WriteNullValue();
                break;
            case long integer:
                json.WriteNumberValue(integer);
                break;
            case int integer:
                json.WriteNumberValue(integer);
                break;
            case short integer:
                json.WriteNumberValue(integer);
                break;
            case double number when double.IsFinite(number):
                json.WriteNumberValue(number);
                break;
            case float number when float.IsFinite(number):
                json.WriteNumberValue(number);
                break;
            case decimal number:
                json.WriteNumberValue(number);
                break;
            case bool flag:
                json.WriteBooleanValue(flag);
                break;
            case DateTime time:
                json.WriteStringValue(time.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
                break;
            case DateTimeOffset time:
                json.WriteStringValue(time.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
                break;
            case byte[] bytes:
                json.WriteStringValue($"<{bytes.Length} bytes>");
                break;
            default:
                var text = Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "";
                json.WriteStringValue(text.Length <= MaxCellCharacters ? text : text[..MaxCellCharacters] + "...");
                break;
        }
    }

    private sealed record Settings(string Driver, string ConnectionString, bool ReadOnly, int MaxRows)
    {
        public static Settings From(ToolConfig config)
        {
            var f = config.Config?.Fields ?? new Google.Protobuf.Collections.MapField<string, Value>();
            var connection = f.TryGetValue("connection_string", out var literal) ? VariableReferences.Expand(literal.StringValue, Environment.GetEnvironmentVariable)
                : f.TryGetValue("connection_string_env", out var variable) ? Environment.GetEnvironmentVariable(variable.StringValue) ?? ""
                : "";
            return new Settings(
                f.TryGetValue("driver", out var driver) ? driver.StringValue : "sqlite",
                connection,
                !f.TryGetValue("read_only", out var readOnly) || readOnly.BoolValue,
                f.TryGetValue("max_rows", out var rows) ? (int)rows.NumberValue : DefaultMaxRows);
        }
    }
}
