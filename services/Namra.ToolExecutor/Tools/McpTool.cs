using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using Namra.Contracts.V1;
using Namra.ToolExecutor.Options;

namespace Namra.ToolExecutor.Tools;

/// <summary>
/// <c>mcp</c>: the tools of a Model Context Protocol server (stdio or streamable HTTP), through the official SDK.
/// Servers are started once and shared by every call with the same settings (<see cref="McpSessions"/>); their
/// tools appear under their own names. A server's protocol error or crash becomes an error result.
/// </summary>
internal sealed class McpTool(McpSessions sessions, IOptions<ToolExecutorOptions> options, TimeProvider timeProvider) : ITool, IDisposable
{
    // A server's tool list, asked for again after this long.
    private static readonly TimeSpan ToolListLifetime = TimeSpan.FromSeconds(30);
    private readonly Hosting.BoundedCache _toolLists = new(256, timeProvider);

    public ToolType Type => ToolType.Mcp;

    public Task<IReadOnlyList<ToolDescription>> DescribeAsync(ToolConfig config, CancellationToken cancellationToken)
    {
        var server = McpServerSettings.From(config);
        Refuse(server);
        return _toolLists.GetOrAddAsync(server.Key, ToolListLifetime, async () =>
        {
            var session = await sessions.GetAsync(server, cancellationToken).ConfigureAwait(false);
            var tools = await session.Client.ListToolsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            return (IReadOnlyList<ToolDescription>)[.. tools.Select(t => new ToolDescription(t.Name, t.Description ?? "", t.JsonSchema.GetRawText()))];
        });
    }

    public void Dispose() => _toolLists.Dispose();

    /// <summary>The <c>_meta</c> key of a call's idempotency key (the run's id and the model's call id).</summary>
    public const string IdempotencyKeyMeta = "io.namra/idempotency-key";

    public async Task<ToolOutcome> ExecuteAsync(ToolConfig config, ToolCallInfo call, JsonElement arguments, CancellationToken cancellationToken)
    {
        var server = McpServerSettings.From(config);
        var session = await sessions.GetAsync(server, cancellationToken).ConfigureAwait(false);
        var values = arguments.ValueKind == JsonValueKind.Object
            ? arguments.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone())
            : [];
        CallToolResult result;
        try
        {
            // The call's idempotency key rides in the request's _meta, for servers that deduplicate.
            var meta = new RequestOptions { Meta = new System.Text.Json.Nodes.JsonObject { [IdempotencyKeyMeta] = call.IdempotencyKey } };
            result = await session.Client.CallToolAsync(call.Name, values, options: meta, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (McpException exception)
        {
            return ToolOutcome.Error($"The MCP server refused the call: {exception.Message}");
        }
        catch (Exception exception) when (exception is IOException or InvalidOperationException or ObjectDisposedException or HttpRequestException)
        {
            sessions.Forget(server, session);
            return ToolOutcome.Error($"The MCP server '{server.Label}' stopped answering ({exception.Message}); it is restarted on the next call.");
        }

        return new ToolOutcome(Render(result), result.IsError == true);
    }

    // A server named by the definition runs only if the operator's list allows its program.
    private void Refuse(McpServerSettings server)
    {
        var allowed = options.Value.AllowedMcpCommands;
        if (server.Transport == "stdio" && allowed.Count > 0 && !allowed.Contains(server.Command, StringComparer.Ordinal))
        {
            throw new Hosting.Errors.NamraException(Grpc.Core.StatusCode.PermissionDenied,
                $"This tool executor does not start the MCP command '{server.Command}' (Namra:ToolExecutor:AllowedMcpCommands).");
        }
    }

    /// <summary>The result as text for the model: text blocks as they are, other blocks described, structured content as JSON.</summary>
    internal static string Render(CallToolResult result)
    {
        var text = new StringBuilder();
        foreach (var block in result.Content)
        {
            if (text.Length > 0)
            {
                text.Append('\n');
            }

            text.Append(block switch
            {
                TextContentBlock t => t.Text,
                ImageContentBlock image => $"[image {image.MimeType}, {image.Data.Length:N0} base64 characters]",
                AudioContentBlock audio => $"[audio {audio.MimeType}, {audio.Data.Length:N0} base64 characters]",
                EmbeddedResourceBlock { Resource: TextResourceContents resource } => resource.Text,
                EmbeddedResourceBlock embedded => $"[resource {embedded.Resource.Uri}]",
                ResourceLinkBlock link => $"[resource link {link.Uri}{(link.Name is { Length: > 0 } name ? " " + name : "")}]",
                _ => $"[{block.Type} content]",
            });
        }

        if (text.Length == 0 && result.StructuredContent is { } structured)
        {
            text.Append(structured.GetRawText());
        }

        return text.ToString();
    }
}
