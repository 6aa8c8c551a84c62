using System.Data.Common;
using Microsoft.Data.Sqlite;
using Namra.Contracts.V1;

namespace Namra.Memory.Stores;

/// <summary>
/// <c>sqlite</c>: one database file, in write-ahead-log mode, fully synced on commit. Appends take SQLite's write
/// lock at their start (<c>BEGIN IMMEDIATE</c>), so concurrent appends queue rather than interleave.
/// </summary>
internal sealed class SqliteMemoryStore(string path, TimeSpan timeout, TimeProvider timeProvider) : SqlMemoryStore(timeProvider)
{
    private readonly string _connectionString = new SqliteConnectionStringBuilder
    {
        DataSource = path,
        Mode = SqliteOpenMode.ReadWriteCreate,
        Pooling = true,
        DefaultTimeout = Math.Max(1, (int)timeout.TotalSeconds),
    }.ToString();

    public override MemoryType Type => MemoryType.Sqlite;

    protected override string BinaryType => "BLOB";

    protected override string LockRow => "";

    protected override async Task<DbConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        return connection;
    }

    protected override Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken cancellationToken) =>
        Task.FromResult<DbTransaction>(((SqliteConnection)connection).BeginTransaction(deferred: false));

    protected override void Bind(DbCommand command, object?[] values)
    {
        var parameters = ((SqliteCommand)command).Parameters;
        for (var i = 0; i < values.Length; i++)
        {
            parameters.AddWithValue($"${i + 1}", values[i] ?? DBNull.Value);
        }
    }

    protected override async Task MigrateAsync(DbConnection connection, IReadOnlyList<string> statements, CancellationToken cancellationToken)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null)
        {
            Directory.CreateDirectory(folder);
        }

        await ExecuteAsync(connection, null, cancellationToken, "PRAGMA journal_mode = WAL").ConfigureAwait(false);
        await using var transaction = await BeginWriteAsync(connection, cancellationToken).ConfigureAwait(false);
        foreach (var statement in statements)
        {
            await ExecuteAsync(connection, transaction, cancellationToken, statement).ConfigureAwait(false);
        }

        await ExecuteAsync(connection, transaction, cancellationToken, $"PRAGMA user_version = {SchemaVersion}").ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }
}
