using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Traffic;

namespace MailOps.Core.Tests.Traffic
{
    internal static class AlertTestData
    {
        public static TrafficAlert Alert(string summary = "news@lab.test sent 1450 recipients in an hour (limit 1000) through primary", string sender = "news@lab.test") => new TrafficAlert
        {
            Id = "primary-cap/relay/primary",
            Rule = "primary-cap",
            Kind = "cap",
            Severity = AlertSeverity.Critical,
            State = AlertState.Raised,
            Scope = "relay",
            Key = "primary",
            Metric = "recipients",
            Per = "hour",
            Value = 1450,
            Limit = 1000,
            WindowStart = new DateTimeOffset(2026, 11, 25, 8, 0, 0, TimeSpan.Zero),
            WindowEnd = new DateTimeOffset(2026, 11, 25, 9, 0, 0, TimeSpan.Zero),
            RaisedAt = new DateTimeOffset(2026, 11, 25, 9, 0, 5, TimeSpan.Zero),
            TopSenders = new[] { new KeyValuePair<string, long>(sender, 1200), new KeyValuePair<string, long>("alice@lab.test", 250) },
            TopFlows = new[] { new KeyValuePair<string, long>("newsletter", 1200), new KeyValuePair<string, long>("staff", 250) },
            Summary = summary,
            SuggestedAction = "Pause the newsletter flow or move it to the secondary relay.",
            Host = "mx1.lab.test",
        };
    }

    /// <summary>A minimal HTTP/1.1 server on 127.0.0.1 for one request at a time: records what it got, answers as told (or never).</summary>
    internal sealed class TinyHttpServer : IDisposable
    {
        private readonly TcpListener _listener;
        private readonly int _status;
        private readonly string _body;
        private readonly bool _answer;
        private readonly CancellationTokenSource _stop = new CancellationTokenSource();
        private readonly List<TcpClient> _clients = new List<TcpClient>();

        public TinyHttpServer(int status = 200, string body = "ok", bool answer = true)
        {
            _status = status;
            _body = body;
            _answer = answer;
            _listener = new TcpListener(IPAddress.Loopback, 0);
            _listener.Start();
            Received = RunAsync();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        /// <summary>The first request: request line, headers, body.</summary>
        public Task<(string RequestLine, Dictionary<string, string> Headers, string Body)> Received { get; }

        private async Task<(string, Dictionary<string, string>, string)> RunAsync()
        {
            var client = await _listener.AcceptTcpClientAsync(_stop.Token);
            lock (_clients)
            {
                _clients.Add(client);
            }

            var stream = client.GetStream();
            var raw = new List<byte>();
            var buffer = new byte[8192];
            int headerEnd = -1;
            while (headerEnd < 0)
            {
                var n = await stream.ReadAsync(buffer, _stop.Token);
                if (n == 0)
                {
                    throw new IOException("the client closed before the headers ended");
                }

                raw.AddRange(new ArraySegment<byte>(buffer, 0, n));
                headerEnd = IndexOf(raw, "\r\n\r\n"u8.ToArray());
            }

            var head = Encoding.ASCII.GetString(raw.ToArray(), 0, headerEnd).Split("\r\n");
            var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            for (var i = 1; i < head.Length; i++)
            {
                var colon = head[i].IndexOf(':');
                headers[head[i].Substring(0, colon)] = head[i].Substring(colon + 1).Trim();
            }

            var length = headers.TryGetValue("Content-Length", out var cl) ? int.Parse(cl) : 0;
            var body = raw.GetRange(headerEnd + 4, raw.Count - headerEnd - 4);
            while (body.Count < length)
            {
                var n = await stream.ReadAsync(buffer, _stop.Token);
                if (n == 0)
                {
                    break;
                }

                body.AddRange(new ArraySegment<byte>(buffer, 0, n));
            }

            if (_answer)
            {
                var payload = Encoding.UTF8.GetBytes(_body);
                var reply = Encoding.ASCII.GetBytes($"HTTP/1.1 {_status} {(_status == 200 ? "OK" : "Error")}\r\nContent-Type: text/plain\r\nContent-Length: {payload.Length}\r\nConnection: close\r\n\r\n");
                await stream.WriteAsync(reply, _stop.Token);
                await stream.WriteAsync(payload, _stop.Token);
            }

            return (head[0], headers, Encoding.UTF8.GetString(body.ToArray()));
        }

        private static int IndexOf(List<byte> data, byte[] pattern)
        {
            for (var i = 0; i + pattern.Length <= data.Count; i++)
            {
                var match = true;
                for (var j = 0; j < pattern.Length && match; j++)
                {
                    match = data[i + j] == pattern[j];
                }

                if (match)
                {
                    return i;
                }
            }

            return -1;
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
            lock (_clients)
            {
                foreach (var c in _clients)
                {
                    c.Dispose();
                }
            }
        }
    }
}
