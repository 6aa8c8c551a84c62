using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Grpc.JsonTranscoding;
using Microsoft.AspNetCore.Mvc.ApiExplorer;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi.Any;
using Microsoft.OpenApi.Models;
using Microsoft.OpenApi.Writers;
using Swashbuckle.AspNetCore.Swagger;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// Generates the REST API's OpenAPI document (<c>schemas/openapi.v1.json</c>, which the orchestrator serves) from the
/// protos' http rules and comments, with what a client generator needs beyond them to make a good client: an
/// operation id per method (its gRPC name), a server, the API-key schemes, the client errors apart from the server's,
/// how a stream arrives, and the protobuf well-known types as the JSON they are on the wire rather than as their C#
/// members.
/// </summary>
internal static class OpenApiDocumentGenerator
{
    /// <summary>The document as Swashbuckle writes it (OpenAPI 3.0, indented).</summary>
    public static async Task<string> GenerateAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddGrpc().AddJsonTranscoding();
        builder.Services.AddGrpcSwagger();
        builder.Services.AddSwaggerGen(swagger =>
        {
            swagger.SwaggerDoc("v1", new OpenApiInfo
            {
                Title = "Namra API",
                Version = "v1",
                Description = "Run agents, stream their events and read their records. The same API over gRPC: protos/namra/v1/agent_service.proto.",
            });
            swagger.IncludeGrpcXmlComments(Path.Combine(AppContext.BaseDirectory, "Namra.Contracts.xml"), includeControllerXmlComments: true);
            Describe(swagger);
        });
        await using var app = builder.Build();
        app.MapGrpcService<AgentGrpcService>();
        await app.StartAsync(); // the endpoints the document describes are built as the app starts

        var document = app.Services.GetRequiredService<ISwaggerProvider>().GetSwagger("v1");
        using var text = new StringWriter();
        document.SerializeAsV3(new OpenApiJsonWriter(text));
        return text.ToString();
    }

    private static void Describe(SwaggerGenOptions swagger)
    {
        swagger.CustomOperationIds(api => Method(api)?.Name);
        // Relative: the API is on the host that serves the document, whatever name a proxy gives it; a client made
        // from a saved copy sets its own base URL.
        swagger.AddServer(new OpenApiServer { Url = "/", Description = "The host that serves this document." });
        swagger.AddOperationFilterInstance(new ErrorsAndStreams());

        // Keys are required only when the operator configures them (NAMRA_API_KEYS): either header carries one.
        var bearer = new OpenApiSecurityScheme { Type = SecuritySchemeType.Http, Scheme = "bearer", Description = "An API key as a bearer token (when the server requires keys)." };
        var header = new OpenApiSecurityScheme { Type = SecuritySchemeType.ApiKey, In = ParameterLocation.Header, Name = "x-api-key", Description = "An API key (when the server requires keys)." };
        swagger.AddSecurityDefinition("bearer", bearer);
        swagger.AddSecurityDefinition("apiKey", header);
        swagger.AddSecurityRequirement(new OpenApiSecurityRequirement { [Reference("bearer")] = [] });
        swagger.AddSecurityRequirement(new OpenApiSecurityRequirement { [Reference("apiKey")] = [] });

        // google.protobuf.Value is any JSON value, Struct an object, ListValue an array, Any an object naming its type.
        swagger.MapType<Google.Protobuf.WellKnownTypes.Value>(() => new OpenApiSchema { Description = "Any JSON value.", Nullable = true });
        swagger.MapType<Google.Protobuf.WellKnownTypes.Struct>(() => new OpenApiSchema { Type = "object", AdditionalPropertiesAllowed = true, Description = "A JSON object." });
        swagger.MapType<Google.Protobuf.WellKnownTypes.ListValue>(() => new OpenApiSchema { Type = "array", Items = new OpenApiSchema(), Description = "A JSON array." });
        swagger.MapType<Google.Protobuf.WellKnownTypes.Any>(() => new OpenApiSchema
        {
            Type = "object",
            AdditionalPropertiesAllowed = true,
            Properties = { ["@type"] = new OpenApiSchema { Type = "string", Example = new OpenApiString("type.googleapis.com/google.rpc.BadRequest") } },
            Required = new HashSet<string> { "@type" },
            Description = "A message of the type `@type` names, its fields beside it.",
        });
    }

    private static Google.Protobuf.Reflection.MethodDescriptor? Method(ApiDescription api) =>
        api.ActionDescriptor.EndpointMetadata.OfType<GrpcJsonTranscodingMetadata>().FirstOrDefault()?.MethodDescriptor;

    private static OpenApiSecurityScheme Reference(string id) => new() { Reference = new OpenApiReference { Type = ReferenceType.SecurityScheme, Id = id } };

    /// <summary>
    /// Transcoding describes every error as one <c>default</c> response; this adds the client's errors (<c>4XX</c>, the
    /// same <c>google.rpc.Status</c> body) so a generated client can tell a refused request from a failed server, and
    /// says that a server-streaming method answers with one JSON message per line rather than one JSON document.
    /// </summary>
    private sealed class ErrorsAndStreams : IOperationFilter
    {
        public void Apply(OpenApiOperation operation, OperationFilterContext context)
        {
            if (operation.Responses.Remove("default", out var error))
            {
                operation.Responses["4XX"] = new OpenApiResponse
                {
                    Description = "The request was refused; `code` is its gRPC status: INVALID_ARGUMENT, FAILED_PRECONDITION or OUT_OF_RANGE (400), UNAUTHENTICATED (401), PERMISSION_DENIED (403), NOT_FOUND (404), ALREADY_EXISTS or ABORTED (409), RESOURCE_EXHAUSTED (429).",
                    Content = new Dictionary<string, OpenApiMediaType>(error.Content),
                };
                operation.Responses["default"] = error;
            }

            if (Method(context.ApiDescription) is { IsServerStreaming: true } && operation.Responses.TryGetValue("200", out var ok))
            {
                ok.Description = "A stream of newline-delimited JSON: one message of this schema per line, each as the server sends it. A call that fails after the first line ends with a `google.rpc.Status` line instead.";
            }
        }
    }
}
