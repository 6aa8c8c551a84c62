using System.Net;
using System.Net.Sockets;

namespace Namra.ToolExecutor.Tools;

/// <summary>
/// Decides which addresses the http tool may connect to. The check runs on every connection, after DNS
/// resolution, so names that resolve inward, numeric and IPv6-mapped spellings of inner addresses, and
/// redirects toward them are all refused: loopback, private, carrier-grade NAT, link-local (cloud metadata at
/// 169.254.169.254), unique-local, multicast, reserved, documentation and unspecified addresses, and the IPv6 forms
/// that carry one of them (mapped, compatible, translated, NAT64, 6to4) or tunnel to an address chosen elsewhere (Teredo).
/// </summary>
internal static class NetworkGuard
{
    public static bool IsPublic(IPAddress address)
    {
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            return IsPublicV4(address.GetAddressBytes());
        }

        var b = address.GetAddressBytes();
        if (b.Length != 16)
        {
            return false;
        }

        // IPv6 forms that carry an IPv4 address are judged by it: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d),
        // translated (::ffff:0:a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::).
        if (b.AsSpan(0, 10).IndexOfAnyExcept((byte)0) < 0 && (b[10], b[11]) is (0xff, 0xff) or (0, 0))
        {
            return IsPublicV4(b[12..]); // :: and ::1 fall here too, as 0.0.0.0 and 0.0.0.1
        }

        if (b.AsSpan(0, 8).IndexOfAnyExcept((byte)0) < 0 && (b[8], b[9], b[10], b[11]) == (0xff, 0xff, 0, 0))
        {
            return IsPublicV4(b[12..]);
        }

        if ((b[0], b[1], b[2], b[3]) == (0, 0x64, 0xff, 0x9b))
        {
            // 64:ff9b::/96 embeds the address; 64:ff9b:1::/48 is for a network's own translators.
            return b.AsSpan(4, 8).IndexOfAnyExcept((byte)0) < 0 && IsPublicV4(b[12..]);
        }

        if ((b[0], b[1]) == (0x20, 0x02))
        {
            return IsPublicV4(b[2..6]);
        }

        return !(IPAddress.IsLoopback(address) || address.IsIPv6LinkLocal || address.IsIPv6SiteLocal || address.IsIPv6Multicast
            || address.IsIPv6Teredo // 2001::/32 tunnels to an IPv4 address of the relay's choosing
            || (b[0] & 0xFE) == 0xFC // unique local
            || (b[0], b[1], b[2], b[3]) == (0x20, 0x01, 0x0d, 0xb8) // documentation
            || (b[0], b[1]) == (0x01, 0x00) && b.AsSpan(2, 6).IndexOfAnyExcept((byte)0) < 0); // discard-only 100::/64
    }

    private static bool IsPublicV4(byte[] b) =>
        !(b[0] is 0 or 10 or 127 or >= 224
            || (b[0] == 100 && b[1] is >= 64 and <= 127)
            || (b[0] == 169 && b[1] == 254)
            || (b[0] == 172 && b[1] is >= 16 and <= 31)
            || (b[0] == 192 && b[1] == 168)
            || (b[0] == 192 && b[1] == 0 && b[2] is 0 or 2)
            || (b[0] == 192 && b[1] == 88 && b[2] == 99)
            || (b[0] == 198 && b[1] is 18 or 19)
            || (b[0] == 198 && b[1] == 51 && b[2] == 100)
            || (b[0] == 203 && b[1] == 0 && b[2] == 113));

    /// <summary>A connection callback that connects only to public addresses.</summary>
    public static async ValueTask<Stream> ConnectPublicAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var host = context.DnsEndPoint.Host;
        var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false);
        var allowed = addresses.Where(IsPublic).ToArray();
        if (allowed.Length == 0 || allowed.Length != addresses.Length)
        {
            throw new BlockedAddressException(host);
        }

        return await ConnectAsync(allowed, context.DnsEndPoint.Port, cancellationToken).ConfigureAwait(false);
    }

    public static async ValueTask<Stream> ConnectAsync(IPAddress[] addresses, int port, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(addresses, port, cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}

/// <summary>The http tool refused to connect to a non-public address.</summary>
internal sealed class BlockedAddressException(string host)
    : IOException($"{host} is a loopback, private, link-local or otherwise internal address, which this tool may not call.");
