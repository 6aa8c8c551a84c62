using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Options;
using Namra.Hosting.Errors;
using Namra.Orchestrator.Options;

namespace Namra.Orchestrator;

/// <summary>
/// Guards the public API (<c>namra.v1.AgentService</c>, over gRPC and REST) when API keys are configured: a call
/// must send <c>authorization: Bearer KEY</c> (or <c>x-api-key: KEY</c>) with one of them, or it fails with
/// <c>UNAUTHENTICATED</c>. Keys come from the environment (<c>NAMRA_API_KEYS</c>, comma-separated) or a file
/// (<c>Namra:Orchestrator:ApiKeysFile</c>, one per line), never from the agent files; they are compared by hash in
/// constant time and never logged.
/// </summary>
internal sealed class ApiKeyAuthentication : Interceptor
{
    private const string PublicService = "/namra.v1.AgentService/";
    private readonly byte[][] _keyHashes;

    public ApiKeyAuthentication(IOptions<OrchestratorOptions> options)
    {
        var keys = new List<string>();
        if (Environment.GetEnvironmentVariable("NAMRA_API_KEYS") is { Length: > 0 } fromEnvironment)
        {
            keys.AddRange(fromEnvironment.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        }

        if (options.Value.ApiKeysFile is { Length: > 0 } file)
        {
            keys.AddRange(File.ReadAllLines(file).Select(line => line.Trim()).Where(line => line.Length > 0 && !line.StartsWith('#')));
        }

        _keyHashes = [.. keys.Select(key => SHA256.HashData(Encoding.UTF8.GetBytes(key)))];
    }

    /// <summary>True when keys are configured and calls must carry one.</summary>
    public bool Enabled => _keyHashes.Length > 0;

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, responseStream, context);
    }

    private void Check(ServerCallContext context)
    {
        if (!Enabled || !context.Method.StartsWith(PublicService, StringComparison.Ordinal))
        {
            return;
        }

        var presented = context.RequestHeaders.GetValue("authorization") is { } authorization && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            ? authorization["Bearer ".Length..].Trim()
            : context.RequestHeaders.GetValue("x-api-key");
        if (presented is null)
        {
            throw new NamraException(StatusCode.Unauthenticated, "Send an API key: authorization: Bearer KEY (or x-api-key: KEY).");
        }

        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(presented));
        var known = false;
        foreach (var key in _keyHashes)
        {
            known |= CryptographicOperations.FixedTimeEquals(hash, key);
        }

        if (!known)
        {
            throw new NamraException(StatusCode.Unauthenticated, "The API key is not valid.");
        }
    }
}
