using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Containers;

namespace Namra.Testing.Containers;

/// <summary>
/// Redis and PostgreSQL in containers, through Testcontainers, over the images <c>.ci/images.sh</c> builds from
/// Debian packages. Containers use the host's network and listen on 127.0.0.1 only, on a free port; nothing
/// is sent to any other address.
/// </summary>
public static class LocalContainers
{
    /// <summary>The PostgreSQL image (user, password and database <c>postgres</c>).</summary>
    public const string PostgresImage = "namra-local/postgres:15";

    /// <summary>The Redis image (append-only file, fsynced on every write).</summary>
    public const string RedisImage = "namra-local/redis:7";

    /// <summary>Starts PostgreSQL 15 on 127.0.0.1 and waits until it accepts connections.</summary>
    public static async Task<LocalServer> StartPostgresAsync(CancellationToken cancellationToken = default)
    {
        var port = LocalPorts.Free();
        var container = new ContainerBuilder(PostgresImage)
            .WithCreateParameterModifier(parameters => parameters.HostConfig!.NetworkMode = "host")
            .WithCommand("/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql/data", "-p", Port(port), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off")
            .WithWaitStrategy(Wait.ForUnixContainer().UntilCommandIsCompleted("pg_isready", "-h", "127.0.0.1", "-p", Port(port), "-U", "postgres"))
            .WithCleanUp(true)
            .Build();
        await StartAsync(container, cancellationToken).ConfigureAwait(false);
        return new LocalServer(container, port, $"Host=127.0.0.1;Port={port};Username=postgres;Password=postgres;Database=postgres");
    }

    /// <summary>Starts Redis 7 on 127.0.0.1 and waits until it answers.</summary>
    public static async Task<LocalServer> StartRedisAsync(CancellationToken cancellationToken = default)
    {
        var port = LocalPorts.Free();
        var container = new ContainerBuilder(RedisImage)
            .WithCreateParameterModifier(parameters => parameters.HostConfig!.NetworkMode = "host")
            .WithCommand("redis-server", "--bind", "127.0.0.1", "--port", Port(port), "--protected-mode", "no", "--dir", "/var/lib/redis", "--appendonly", "yes", "--appendfsync", "always")
            .WithWaitStrategy(Wait.ForUnixContainer().UntilCommandIsCompleted("redis-cli", "-h", "127.0.0.1", "-p", Port(port), "ping"))
            .WithCleanUp(true)
            .Build();
        await StartAsync(container, cancellationToken).ConfigureAwait(false);
        return new LocalServer(container, port, $"127.0.0.1:{port}");
    }

    private static async Task StartAsync(IContainer container, CancellationToken cancellationToken)
    {
        try
        {
            await container.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            throw new InvalidOperationException(
                $"Could not start a container from {container.Image.FullName}: {exception.Message}. Run `bash .ci/images.sh` (as root) to build the local images and start dockerd, and set DOCKER_API_VERSION to `docker version --format {{{{.Server.APIVersion}}}}`.",
                exception);
        }
    }

    private static string Port(int port) => port.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>A server in a container: its address, and stop/start for fault tests (the data survives a stop).</summary>
public sealed class LocalServer(IContainer container, int port, string connectionString) : IAsyncDisposable
{
    /// <summary>The port it listens on, on 127.0.0.1.</summary>
    public int Port => port;

    /// <summary>A client connection string for it (Npgsql or StackExchange.Redis form).</summary>
    public string ConnectionString => connectionString;

    /// <summary>Runs a command inside the container and returns its standard output; fails when it exits non-zero.</summary>
    public async Task<string> ExecAsync(params string[] command)
    {
        var result = await container.ExecAsync(command).ConfigureAwait(false);
        return result.ExitCode == 0 ? result.Stdout : throw new InvalidOperationException($"{string.Join(' ', command)} exited {result.ExitCode}: {result.Stderr}");
    }

    /// <summary>Kills the server at once (SIGKILL, no shutdown), as a crash would; its files stay for a restart.</summary>
    public async Task KillAsync()
    {
        using var docker = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("docker", ["kill", container.Id]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        await docker.WaitForExitAsync().ConfigureAwait(false);
        if (docker.ExitCode != 0)
        {
            throw new InvalidOperationException($"docker kill failed: {await docker.StandardError.ReadToEndAsync().ConfigureAwait(false)}");
        }
    }

    /// <summary>Freezes the server (docker pause): connections stay open and nothing answers, as a hung host.</summary>
    public Task PauseAsync() => container.PauseAsync();

    /// <summary>Lets a paused server go on.</summary>
    public Task UnpauseAsync() => container.UnpauseAsync();

    /// <summary>Stops the server's container, keeping its data.</summary>
    public Task StopAsync() => container.StopAsync();

    /// <summary>Starts the stopped container again and waits until the server is ready.</summary>
    public Task StartAsync() => container.StartAsync();

    /// <inheritdoc/>
    public ValueTask DisposeAsync() => container.DisposeAsync();
}
