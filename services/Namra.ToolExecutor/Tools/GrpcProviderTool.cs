using System.Collections.Concurrent;
using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Hosting.Secrets;

namespace Namra.ToolExecutor.Tools;

/// <summary>
/// <c>grpc</c>: tools served by an external <c>namra.v1.ToolProviderService</c>, written in any language. The
/// provider's tool list is cached briefly per address and entry settings; its failures become error results.
/// </summary>
internal sealed class GrpcProviderTool(ToolProviderChannels channels, TimeProvider timeProvider, SecretStore? secrets = null) : ITool, IDisposable
{
    // A provider's tool list, asked for again after this long.
    private static readonly TimeSpan ToolListLifetime = TimeSpan.FromSeconds(30);
    private readonly Hosting.BoundedCache _described = new(256, timeProvider);

    public ToolType Type => ToolType.Grpc;

    public Task<IReadOnlyList<ToolDescription>> DescribeAsync(ToolConfig config, CancellationToken cancellationToken)
    {
        var (address, headers, settings) = Settings(config);
        return _described.GetOrAddAsync(settings, ToolListLifetime, async () =>
        {
            var client = new ToolProviderService.ToolProviderServiceClient(channels.For(address));
            DescribeToolsResponse response;
            try
            {
                response = await client.DescribeToolsAsync(new DescribeToolsRequest { Config = Options(config) }, headers, cancellationToken: cancellationToken)
                    .ConfigureAwait(false);
            }
            catch (RpcException exception) when (exception.StatusCode != StatusCode.Cancelled)
            {
                throw new NamraException(StatusCode.FailedPrecondition,
                    $"The tool provider at {address} could not describe its tools: {exception.StatusCode} {exception.Status.Detail}");
            }

            return (IReadOnlyList<ToolDescription>)[.. response.Tools.Select(t =>
                new ToolDescription(t.Name, t.Description, t.InputSchemaJson.Length > 0 ? t.InputSchemaJson : "{\"type\":\"object\"}"))];
        });
    }

    public void Dispose() => _described.Dispose();

    public async Task<ToolOutcome> ExecuteAsync(ToolConfig config, ToolCallInfo call, JsonElement arguments, CancellationToken cancellationToken)
    {
        var (address, headers, _) = Settings(config);
        var client = new ToolProviderService.ToolProviderServiceClient(channels.For(address));
        try
        {
            // Providers that deduplicate see a call sent again as the same call.
            var response = await client.InvokeToolAsync(
                ToolProviderRequests.Invoke(call, arguments, Options(config)),
                ToolProviderRequests.Headers(call, headers),
                cancellationToken: cancellationToken).ConfigureAwait(false);
            return new ToolOutcome(response.Content, response.IsError);
        }
        catch (RpcException exception) when (exception.StatusCode != StatusCode.Cancelled || !cancellationToken.IsCancellationRequested)
        {
            return ToolOutcome.Error($"The tool provider failed: {exception.StatusCode} {exception.Status.Detail}");
        }
    }

    // The provider's address, its headers resolved, and the entry's settings as written (the key of its tool list).
    private (string Address, Metadata Headers, string Written) Settings(ToolConfig config)
    {
        var grpc = config.Grpc ?? new GrpcToolSettings();
        var headers = new Metadata();
        foreach (var (name, value) in grpc.Headers)
        {
            headers.Add(name.ToLowerInvariant(), VariableReferences.Expand(value, (secrets ?? SecretStore.EnvironmentOnly).Resolve));
        }

        return (grpc.Address, headers, grpc.ToString());
    }

    // The entry's options, for the provider as they were written.
    private static Struct Options(ToolConfig config) => config.Grpc?.Options ?? new Struct();
}

/// <summary>One gRPC channel per provider address, kept for the life of the process.</summary>
internal sealed class ToolProviderChannels : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<GrpcChannel>> _channels = new(StringComparer.Ordinal);

    public GrpcChannel For(string address)
    {
        if (!Uri.TryCreate(address, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new InvalidArgumentException("tool.config.address", $"'{address}' is not an http:// or https:// address of a tool provider.");
        }

        return _channels.GetOrAdd(address, a => new Lazy<GrpcChannel>(() => GrpcChannel.ForAddress(a, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                EnableMultipleHttp2Connections = true,
                PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
                ConnectTimeout = TimeSpan.FromSeconds(10),
            },
            MaxReceiveMessageSize = 16 * 1024 * 1024,
        }))).Value;
    }

    public void Dispose()
    {
        foreach (var channel in _channels.Values)
        {
            if (channel.IsValueCreated)
            {
                channel.Value.Dispose();
            }
        }
    }
}
