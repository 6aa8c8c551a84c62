using Microsoft.AspNetCore.Grpc.JsonTranscoding;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi.Any;
using Microsoft.OpenApi.Models;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace Namra.Orchestrator;

/// <summary>
/// What the generated OpenAPI document needs beyond the protos' http rules for a client generator to make a good
/// client: an operation id per method (its gRPC name), the API-key schemes, and the protobuf well-known types as the
/// JSON they are on the wire rather than as their C# members.
/// </summary>
internal static class OpenApiDocument
{
    public static void Describe(SwaggerGenOptions swagger)
    {
        swagger.CustomOperationIds(api => api.ActionDescriptor.EndpointMetadata.OfType<GrpcJsonTranscodingMetadata>().FirstOrDefault()?.MethodDescriptor.Name);

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

    private static OpenApiSecurityScheme Reference(string id) => new() { Reference = new OpenApiReference { Type = ReferenceType.SecurityScheme, Id = id } };
}
