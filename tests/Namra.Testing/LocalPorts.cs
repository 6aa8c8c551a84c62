using System.Net;
using System.Net.Sockets;

namespace Namra.Testing;

/// <summary>
/// Free ports on 127.0.0.1 for servers a test starts as processes or containers. They are taken below the
/// ephemeral range (32768 and up on Linux), where outgoing connections never land, so a port stays free between
/// picking it and the server binding it.
/// </summary>
public static class LocalPorts
{
    private const int First = 20000;
    private const int Last = 32000;
    private static int _next = First + Random.Shared.Next(Last - First);

    /// <summary>A port nothing listens on now, and that no outgoing connection will take.</summary>
    public static int Free()
    {
        for (var attempt = 0; attempt < Last - First; attempt++)
        {
            var port = First + (Interlocked.Increment(ref _next) % (Last - First));
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException)
            {
                // taken: try the next
            }
        }

        throw new InvalidOperationException($"No free port between {First} and {Last} on 127.0.0.1.");
    }

    /// <summary>Waits until something accepts connections on 127.0.0.1:<paramref name="port"/>, up to 30 s.</summary>
    public static Task WaitUntilListeningAsync(int port) => WaitUntilListeningAsync(IPAddress.Loopback, port);

    /// <summary>Waits until something accepts connections on a loopback <paramref name="address"/> and <paramref name="port"/>, up to 30 s.</summary>
    public static Task WaitUntilListeningAsync(IPAddress address, int port) => WaitUntilListeningAsync(address, port, TimeSpan.FromMilliseconds(50));

    /// <summary>
    /// Waits until something accepts connections on a loopback <paramref name="address"/> and <paramref name="port"/>, up to
    /// 30 s, trying every <paramref name="pollEvery"/> (a start-up measurement tries every millisecond).
    /// </summary>
    public static async Task WaitUntilListeningAsync(IPAddress address, int port, TimeSpan pollEvery)
    {
        ArgumentNullException.ThrowIfNull(address);
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (waited.Elapsed < TimeSpan.FromSeconds(30))
        {
            try
            {
                using var client = new TcpClient(address.AddressFamily);
                await client.ConnectAsync(address, port).ConfigureAwait(false);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(pollEvery).ConfigureAwait(false);
            }
        }

        throw new TimeoutException($"Nothing listened on {address}:{port}.");
    }
}
