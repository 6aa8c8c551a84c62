using System.Data;
using System.Data.Common;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;
using Namra.Contracts.V1;
using Npgsql;
using Namra.Hosting.Secrets;

namespace Namra.ToolExecutor.Tools;

/// <summary>
/// <c>builtin.database</c>: one SQL statement with <c>$1</c>, <c>$2</c>... parameters (bound, never spliced into
/// the text), answered as JSON columns and rows, at most <c>max_rows</c>. Read-only by default, and the database
/// enforces it (SQLite opens the file read-only; PostgreSQL runs the statement in a read-only transaction), so no
/// wording of a statement can write. PostgreSQL roles that can reach the server's files and programs (superusers,
/// members of <c>pg_execute_server_program</c>, <c>pg_read_server_files</c>, <c>pg_write_server_files</c>) are refused:
/// no transaction mode stops them. SQLite may attach no other database file, builds no value larger than 16 MiB, and
/// is interrupted at the call's timeout; values are read up to a bound, and the answer is cut at 1 MiB.
/// </summary>
internal sealed partial class DatabaseTool(SecretStore? secrets = null) : ITool
{
    private readonly SecretStore _secrets = secrets ?? SecretStore.EnvironmentOnly;

    private const int DefaultMaxRows = 100;
    private const int MaxCellCharacters = 2000;
    private const int MaxAnswerBytes = 1024 * 1024;
    private const int SqliteMaxValueBytes = 16 * 1024 * 1024;
    private const int SqliteLimitLength = 0, SqliteLimitAttached = 7;

    private const string Schema = """
        {"type":"object","properties":{"sql":{"type":"string","minLength":1,"maxLength":20000,"description":"One SQL statement; write $1, $2... for values"},"parameters":{"type":"array","maxItems":100,"items":{"type":["string","number","boolean","null"]},"description":"Values for $1, $2..."}},"required":["sql"],"additionalProperties":false}
        """;

    private static readonly JsonWriterOptions Compact = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public ToolType Type => ToolType.BuiltinDatabase;

    public Task<IReadOnlyList<ToolDescription>> DescribeAsync(ToolConfig config, CancellationToken cancellationToken)
    {
        var settings = Settings.From(config, _secrets);
        var description = config.Description.Length > 0 ? config.Description
            : $"Runs one SQL statement on a {settings.Driver} database{(settings.ReadOnly ? " (read-only)" : "")} and returns the rows as JSON.";
        return Task.FromResult<IReadOnlyList<ToolDescription>>([new ToolDescription(config.Name, description, Schema)]);
    }

    // A read-only connection cannot change anything, whatever the statement; a writable one is not judged by its SQL.
    public bool IsIdempotent(ToolConfig config, JsonElement arguments) => Settings.From(config, _secrets).ReadOnly;

    public bool IsAlwaysIdempotent(ToolConfig config) => Settings.From(config, _secrets).ReadOnly;

    public async Task<ToolOutcome> ExecuteAsync(ToolConfig config, ToolCallInfo call, JsonElement arguments, CancellationToken cancellationToken)
    {
        var settings = Settings.From(config, _secrets);
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

        if (TransactionControl().IsMatch(arguments.GetProperty("sql").GetString() ?? ""))
        {
            return ToolOutcome.Error("Transaction statements (BEGIN, COMMIT, ROLLBACK, SAVEPOINT...) are the tool's: each call runs in a transaction of its own. Send the statement alone.");
        }

        await using (connection)
        {
            try
            {
                await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
                if (connection is SqliteConnection sqlite)
                {
                    Bound(sqlite);
                }
                else if (await PrivilegedRoleAsync((NpgsqlConnection)connection, cancellationToken).ConfigureAwait(false) is { } role)
                {
                    return ToolOutcome.Error($"The tool connects to PostgreSQL as {role}, which can read and write the server's files or run programs on it whatever the transaction allows; the operator must connect it as a role with only the grants the agent needs.");
                }

                // SQLite runs a statement on the calling thread until it ends: interrupting it is how it ends at the timeout.
                using var interrupt = connection is SqliteConnection running
                    ? cancellationToken.Register(static handle => SQLitePCL.raw.sqlite3_interrupt((SQLitePCL.sqlite3)handle!), running.Handle)
                    : default;
                return await RunAsync(connection, settings, arguments, cancellationToken).ConfigureAwait(false);
            }
            catch (DbException) when (cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException(cancellationToken); // the executor reports the timeout
            }
            catch (DbException exception)
            {
                return ToolOutcome.Error($"The database refused the statement: {Describe(exception)}");
            }
        }
    }

    // No value larger than 16 MiB (zeroblob(1e9) and printf('%.*c', 1e9, 'x') built a gigabyte in memory), and no
    // ATTACH: another database file of this host is not the agent's to read.
    private static void Bound(SqliteConnection connection)
    {
        SQLitePCL.raw.sqlite3_limit(connection.Handle, SqliteLimitLength, SqliteMaxValueBytes);
        SQLitePCL.raw.sqlite3_limit(connection.Handle, SqliteLimitAttached, 0);
    }

    private static async Task<string?> PrivilegedRoleAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT current_user, rolsuper OR pg_has_role('pg_execute_server_program', 'MEMBER') OR pg_has_role('pg_read_server_files', 'MEMBER')
                OR pg_has_role('pg_write_server_files', 'MEMBER')
            FROM pg_roles WHERE rolname = current_user
            """;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) && reader.GetBoolean(1) ? reader.GetString(0) : null;
    }

    [GeneratedRegex(@"^\s*(?:(?:--[^\n]*(?:\n|$)|/\*(?:[^*]|\*[^/])*\*/)\s*)*(?:BEGIN|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|START\s+TRANSACTION|PREPARE\s+TRANSACTION|SET\s+TRANSACTION|SET\s+SESSION\s+CHARACTERISTICS)\b",
        RegexOptions.IgnoreCase | RegexOptions.NonBacktracking)]
    private static partial Regex TransactionControl();

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
            ? await batch.ExecuteReaderAsync(CommandBehavior.SequentialAccess, cancellationToken).ConfigureAwait(false)
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
                var full = false;
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    if (rows++ == maxRows)
                    {
                        more = true;
                        break;
                    }

                    if (json.BytesCommitted + json.BytesPending > MaxAnswerBytes)
                    {
                        full = true;
                        break;
                    }

                    json.WriteStartArray();
                    for (var i = 0; i < reader.FieldCount; i++)
                    {
                        WriteCell(json, await ReadCellAsync(reader, i, cancellationToken).ConfigureAwait(false));
                    }

                    json.WriteEndArray();
                }

                json.WriteEndArray();
                if (more)
                {
                    json.WriteString("note", $"more than {maxRows} rows; only the first {maxRows} are shown (add LIMIT or WHERE)");
                }
                else if (full)
                {
                    json.WriteString("note", $"the rows shown reach {MaxAnswerBytes / 1024 / 1024} MiB; the rest are left out (select fewer columns or rows)");
                }
            }

            json.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    // Text and bytes are read only as far as they are shown: a value of a gigabyte is never held whole.
    private static async Task<object?> ReadCellAsync(DbDataReader reader, int column, CancellationToken cancellationToken)
    {
        if (await reader.IsDBNullAsync(column, cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        var type = reader.GetFieldType(column);
        if (type == typeof(byte[]))
        {
            return new BlobLength(reader.GetBytes(column, 0, null, 0, 0));
        }

        if (type != typeof(string))
        {
            return reader.GetValue(column);
        }

        using var text = reader.GetTextReader(column);
        var buffer = new char[MaxCellCharacters + 1];
        var read = 0;
        int count;
        while (read < buffer.Length && (count = await text.ReadAsync(buffer.AsMemory(read), cancellationToken).ConfigureAwait(false)) > 0)
        {
            read += count;
        }

        return read > MaxCellCharacters ? new string(buffer, 0, MaxCellCharacters) + "..." : new string(buffer, 0, read);
    }

    private readonly record struct BlobLength(long Bytes);

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
            case BlobLength blob:
                json.WriteStringValue($"<{blob.Bytes} bytes>");
                break;
            default:
                var text = Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "";
                json.WriteStringValue(text.Length <= MaxCellCharacters ? text : text[..MaxCellCharacters] + "...");
                break;
        }
    }

    private sealed record Settings(string Driver, string ConnectionString, bool ReadOnly, int MaxRows)
    {
        public static Settings From(ToolConfig config, SecretStore secrets)
        {
            var database = config.Database ?? new DatabaseToolSettings();
            var connection = database.ConnectionString.Length > 0 ? VariableReferences.Expand(database.ConnectionString, secrets.Resolve)
                : database.ConnectionStringEnv.Length > 0 ? secrets.Get(database.ConnectionStringEnv) ?? ""
                : "";
            return new Settings(
                database.Driver.Length > 0 ? database.Driver : "sqlite",
                connection,
                !database.HasReadOnly || database.ReadOnly,
                database.MaxRows > 0 ? database.MaxRows : DefaultMaxRows);
        }
    }
}
