using System.ComponentModel.DataAnnotations;
using System.Net;
using Microsoft.Extensions.Options;

namespace Namra.Hosting.Options;

/// <summary>
/// How a Namra process listens and shuts down; section <c>Namra:Host</c> (environment:
/// <c>Namra__Host__GrpcPort=50051</c>...). gRPC and plain HTTP (metrics, REST) use two ports, because
/// Kestrel cannot serve HTTP/2 without TLS and HTTP/1.1 on one cleartext port.
/// </summary>
[System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "[Range(typeof(TimeSpan), ...)] is metadata here: the options validation source generator checks it with its own strongly typed copy, no TypeConverter.")]
public sealed class NamraHostOptions : IValidatableObject
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Namra:Host";

    /// <summary>IP address to listen on. Default <c>127.0.0.1</c>: containers set <c>0.0.0.0</c>.</summary>
    [Required]
    public string ListenAddress { get; set; } = "127.0.0.1";

    /// <summary>Port of the gRPC (HTTP/2 cleartext) endpoint; 0 picks a free port. Default 50051.</summary>
    [Range(0, 65535)]
    public int GrpcPort { get; set; } = 50051;

    /// <summary>Port of the HTTP/1.1 endpoint serving <c>/metrics</c> and REST; 0 picks a free port. Default 8080.</summary>
    [Range(0, 65535)]
    public int HttpPort { get; set; } = 8080;

    /// <summary>How long in-flight calls may run after SIGTERM before they are cut. Default 30 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long to keep serving after SIGTERM with health already NOT_SERVING, before the listeners close, so
    /// load balancers and Kubernetes endpoints stop sending new calls first. Default 0; 5 s suits Kubernetes.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:05:00")]
    public TimeSpan DrainDelay { get; set; } = TimeSpan.Zero;

    /// <summary>Largest gRPC message accepted, in bytes. Default 16 MiB.</summary>
    [Range(1024, 256 * 1024 * 1024)]
    public int MaxReceiveMessageBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>Whether gRPC server reflection is served (grpcurl, Postman). Default true.</summary>
    public bool EnableReflection { get; set; } = true;

    /// <inheritdoc />
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!IPAddress.TryParse(ListenAddress, out _))
        {
            yield return new ValidationResult(
                $"'{ListenAddress}' is not an IP address (use 127.0.0.1, 0.0.0.0 or ::).", [nameof(ListenAddress)]);
        }

        if (GrpcPort != 0 && GrpcPort == HttpPort)
        {
            yield return new ValidationResult(
                $"both are {GrpcPort}; gRPC and HTTP/1.1 need separate ports.", [nameof(GrpcPort), nameof(HttpPort)]);
        }
    }
}

/// <summary>Validates <see cref="NamraHostOptions"/> at start-up (source-generated).</summary>
[OptionsValidator]
internal sealed partial class NamraHostOptionsValidator : IValidateOptions<NamraHostOptions>;
