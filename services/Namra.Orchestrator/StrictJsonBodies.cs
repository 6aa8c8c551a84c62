using Google.Protobuf;
using Google.Protobuf.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Grpc.JsonTranscoding;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Namra.Orchestrator;

/// <summary>
/// REST bodies name only fields of their request message: a misspelt field (<c>sesionId</c>) is refused with a field
/// violation instead of dropped, as JSON transcoding would (it follows the proto3 JSON mapping's leniency). Bodies are
/// read with Google.Protobuf's own JSON parser, which knows both the JSON and the proto names of every field. A body
/// that is not the request's JSON is refused here too, saying why, with one line at Debug (an anonymous caller cannot
/// fill the logs with stack traces).
/// </summary>
internal static class StrictJsonBodies
{
    private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(false));
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithTypeRegistry(TypeRegistry.FromMessages(Google.Rpc.BadRequest.Descriptor)));
    private const string UnknownField = "Unknown field: ";

    public static WebApplication UseStrictJsonBodies(this WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            if (context.GetEndpoint()?.Metadata.GetMetadata<GrpcJsonTranscodingMetadata>() is { HttpRule.Body: "*" } transcoded
                && HttpMethods.IsPost(context.Request.Method) && context.Request.ContentLength is not 0
                && await ProblemAsync(context.Request, transcoded.MethodDescriptor.InputType).ConfigureAwait(false) is { } problem)
            {
                var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(StrictJsonBodies));
                if (logger.IsEnabled(LogLevel.Debug))
                {
                    Log.BodyRefused(logger, context.Request.Path.Value ?? "", problem.Description);
                }

                await RefuseAsync(context.Response, problem.Field, problem.Description).ConfigureAwait(false);
                return;
            }

            await next(context).ConfigureAwait(false);
        });
        return app;
    }

    // What is wrong with the body: the first field the message does not have, or why it is not the message's JSON.
    private static async Task<(string Field, string Description)?> ProblemAsync(HttpRequest request, MessageDescriptor message)
    {
        request.EnableBuffering();
        using var reader = new StreamReader(request.Body, leaveOpen: true);
        var body = await reader.ReadToEndAsync(request.HttpContext.RequestAborted).ConfigureAwait(false);
        request.Body.Position = 0;
        try
        {
            Parser.Parse(body, message);
            return null;
        }
        catch (InvalidProtocolBufferException exception) when (exception.Message.StartsWith(UnknownField, StringComparison.Ordinal))
        {
            return (exception.Message[UnknownField.Length..], "Not a field of this request; check its spelling (fields are in lowerCamelCase or as in the proto).");
        }
        catch (Exception exception) when (exception is InvalidProtocolBufferException or InvalidJsonException or FormatException or ArgumentException)
        {
            return ("body", $"Not this request's JSON ({message.FullName}): {exception.Message}");
        }
    }

    private static Task RefuseAsync(HttpResponse response, string field, string description)
    {
        var status = new Google.Rpc.Status
        {
            Code = (int)Grpc.Core.StatusCode.InvalidArgument,
            Message = $"{field}: {description}",
            Details = { Google.Protobuf.WellKnownTypes.Any.Pack(new Google.Rpc.BadRequest { FieldViolations = { new Google.Rpc.BadRequest.Types.FieldViolation { Field = field, Description = description } } }) },
        };
        response.StatusCode = StatusCodes.Status400BadRequest;
        response.ContentType = "application/json";
        return response.WriteAsync(Formatter.Format(status));
    }
}
