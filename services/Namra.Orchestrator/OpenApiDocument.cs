using Microsoft.AspNetCore.Http;

namespace Namra.Orchestrator;

/// <summary>
/// The OpenAPI document of the REST API, <c>schemas/openapi.v1.json</c>, served as committed. It is generated from the
/// protos' http rules and comments by the orchestrator's tests (<c>OpenApiDocumentTests</c>), which fail when the API
/// and the document part; serving a file costs no start-up, no memory for a generator, and compiles ahead of time.
/// </summary>
internal static class OpenApiDocument
{
    public const string Path = "/openapi/v1.json";

    private static readonly byte[] Content = Read();

    public static Task Serve(HttpContext context)
    {
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = Content.Length;
        return context.Response.Body.WriteAsync(Content, context.RequestAborted).AsTask();
    }

    private static byte[] Read()
    {
        using var stream = typeof(OpenApiDocument).Assembly.GetManifestResourceStream("openapi.v1.json")
            ?? throw new InvalidOperationException("The OpenAPI document is missing from Namra.Orchestrator's resources.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
