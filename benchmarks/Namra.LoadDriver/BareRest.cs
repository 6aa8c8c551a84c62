using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace Namra.LoadDriver;

/// <summary>
/// The floor of one server driven over REST: a bare ASP.NET Core endpoint (Kestrel, HTTP/1.1, one route) that reads
/// the same JSON request Namra's REST API takes, runs <see cref="BareLoop"/> and answers with the run's status and
/// answer as JSON. No gRPC, services, records, budgets, tracing, metrics or logs: what serving the loop over HTTP costs.
/// </summary>
internal static class BareRest
{
    public const string Route = "/v1/agents/execute";

    /// <summary>Serves the loop on 127.0.0.1:<paramref name="port"/> until stopped.</summary>
    public static async Task<int> RunAsync(int port, Uri provider)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port, listen => listen.Protocols = HttpProtocols.Http1));
        await using var app = builder.Build();
        using var loop = new BareLoop(provider);
        app.MapPost(Route, async (HttpContext context) =>
        {
            using var request = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
            var input = request.RootElement.GetProperty("input").GetString()!;
            var answer = await loop.RunAsync(input, context.RequestAborted);
            context.Response.ContentType = "application/json";
            await using var json = new Utf8JsonWriter(context.Response.Body);
            json.WriteStartObject();
            json.WriteStartObject("run");
            json.WriteString("status", "RUN_STATUS_COMPLETED");
            json.WriteString("answer", answer);
            json.WriteEndObject();
            json.WriteEndObject();
            await json.FlushAsync(context.RequestAborted);
        });
        await app.RunAsync();
        return 0;
    }
}
