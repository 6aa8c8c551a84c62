using System.Net;
using System.Net.Sockets;

namespace Namra.LlmGateway.Providers;

/// <summary>
/// Opens the gateway's connections to providers, refusing link-local addresses (169.254.0.0/16, fe80::/10), where
/// cloud metadata services answer: no agent definition can aim the gateway at them. The check is on the resolved
/// address, so DNS names and encodings of those addresses are refused too. Loopback and private addresses stay
/// allowed, for models served on the same machine or network (and <c>RestrictBaseUrls</c> narrows them further).
/// </summary>
internal static class ProviderConnections
{
    public static async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var endpoint = context.DnsEndPoint;
        var addresses = IPAddress.TryParse(endpoint.Host, out var literal)
            ? [literal]
            : await Dns.GetHostAddressesAsync(endpoint.Host, cancellationToken).ConfigureAwait(false);
        var allowed = addresses.Where(address => !IsLinkLocal(address)).ToArray();
        if (allowed.Length == 0)
        {
            throw new HttpRequestException($"{endpoint.Host} resolves only to link-local addresses, which the gateway does not call.");
        }

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(allowed, endpoint.Port, cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    internal static bool IsLinkLocal(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        return address.AddressFamily == AddressFamily.InterNetwork
            ? address.GetAddressBytes() is [169, 254, ..]
            : address.IsIPv6LinkLocal;
    }
}
