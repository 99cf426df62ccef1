using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Spegel.Registry.Tests;

/// <summary>
/// A fake peer on a raw socket, for answers Kestrel would never send: bytes past the declared Content-Length, a
/// body cut short, a smuggled second response. The handler gets each request's head and the connection's stream,
/// writes whatever it likes, and says whether to keep reading requests on that connection.
/// </summary>
internal sealed class RawPeer : IAsyncDisposable
{
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource stop = new();
    private readonly Func<string, Stream, Task<bool>> handler;
    private readonly ConcurrentDictionary<int, int> requestsPerConnection = new();
    private readonly List<TcpClient> clients = [];
    private readonly Task loop;
    private int connections;

    private RawPeer(Func<string, Stream, Task<bool>> handler)
    {
        this.handler = handler;
        listener.Start();
        Url = $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}";
        loop = AcceptAsync();
    }

    public string Url { get; }

    /// <summary>How many requests arrived on each connection (by accept order).</summary>
    public IReadOnlyDictionary<int, int> RequestsPerConnection => requestsPerConnection;

    public int Requests => requestsPerConnection.Values.Sum();

    public static RawPeer Start(Func<string, Stream, Task<bool>> handler) => new(handler);

    /// <summary>A response head with the given status line and headers, ready to write.</summary>
    public static byte[] Head(string status, params string[] headers) =>
        Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\n{string.Concat(headers.Select(h => h + "\r\n"))}\r\n");

    private async Task AcceptAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            lock (clients)
            {
                clients.Add(client);
            }

            _ = ServeAsync(client, Interlocked.Increment(ref connections));
        }
    }

    private async Task ServeAsync(TcpClient client, int id)
    {
        var stream = client.GetStream();
        try
        {
            while (await ReadHeadAsync(stream, stop.Token) is { } head)
            {
                requestsPerConnection.AddOrUpdate(id, 1, (_, n) => n + 1);
                if (!await handler(head, stream))
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The registry hung up, or the test is over.
        }
        finally
        {
            client.Dispose();
        }
    }

    private static async Task<string?> ReadHeadAsync(Stream stream, CancellationToken cancellationToken)
    {
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await stream.ReadAsync(one, cancellationToken) == 0)
            {
                return null;
            }

            head.Append((char)one[0]);
        }

        return head.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        listener.Stop();
        lock (clients)
        {
            clients.ForEach(c => c.Dispose());
        }

        await loop;
        stop.Dispose();
    }
}
