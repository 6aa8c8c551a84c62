using System.Data.Common;
using Namra.Contracts.V1;
using Npgsql;

namespace Namra.Memory.Stores;

/// <summary>
/// <c>postgres</c>: the schema is created or upgraded at start under an advisory lock (replicas may start
/// together); an append locks its session's row, so concurrent appends to one session queue while others run.
/// Similarity search is exact, over the namespace's embeddings.
/// </summary>
internal sealed class PostgresMemoryStore : SqlMemoryStore, IAsyncDisposable
{
    private const long MigrationLock = 0x6e616d7261; // "namra"
    private const long AuditLock = 0x6e616d7261_61; // "namra" "a"
    private readonly NpgsqlDataSource _dataSource;

    public PostgresMemoryStore(string connectionString, TimeSpan timeout, TimeProvider timeProvider)
        : base(timeProvider)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString)
        {
            ApplicationName = "namra-memory",
            Timeout = Math.Max(1, (int)timeout.TotalSeconds),
            CommandTimeout = Math.Max(1, (int)timeout.TotalSeconds),
            CancellationTimeout = -1, // a command past its timeout is dropped, not cancelled with a wait for a server that may be hung
        };
        _dataSource = NpgsqlDataSource.Create(builder);
        Timeout = timeout;
    }

    public override MemoryType Type => MemoryType.Postgres;

    public override TimeSpan Timeout { get; }

    protected override string BinaryType => "BYTEA";

    protected override string LockRow => " FOR UPDATE";

    protected override async Task<DbConnection> OpenAsync(CancellationToken cancellationToken) =>
        await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

    protected override async Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken cancellationToken) =>
        await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);

    protected override void Bind(DbCommand command, object?[] values)
    {
        foreach (var value in values)
        {
            // Positional: the text is sent as written, the values apart.
            command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
        }
    }

    protected override async Task MigrateAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, cancellationToken, "SELECT pg_advisory_xact_lock($1)", MigrationLock).ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, cancellationToken, "CREATE TABLE IF NOT EXISTS namra_schema (version INTEGER NOT NULL)").ConfigureAwait(false);
        var version = await VersionAsync(connection, transaction, "SELECT COALESCE(MAX(version), 0) FROM namra_schema", cancellationToken).ConfigureAwait(false);
        foreach (var statement in Upgrade(version))
        {
            await ExecuteAsync(connection, transaction, cancellationToken, statement).ConfigureAwait(false);
        }

        await ExecuteAsync(connection, transaction, cancellationToken, "DELETE FROM namra_schema").ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, cancellationToken, "INSERT INTO namra_schema (version) VALUES ($1)", SchemaVersion).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    // Replicas appending at once queue here, so that each reads the last entry the one before it wrote.
    protected override async Task LockAuditAsync(DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken) =>
        await ExecuteAsync(connection, transaction, cancellationToken, "SELECT pg_advisory_xact_lock($1)", AuditLock).ConfigureAwait(false);

    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();
}
