using System;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Traffic;
using MailOps.Core.Traffic.Sinks;
using Xunit;

namespace MailOps.Core.Tests.Traffic
{
    public class SyslogAlertSinkTests
    {
        [Fact]
        public async Task WritesOneRfc3164LineToAUnixDatagramSocket()
        {
            if (OperatingSystem.IsWindows())
            {
                return; // Windows uses the Event Log; Unix datagram sockets are a Linux and macOS matter
            }

            var dir = Directory.CreateTempSubdirectory("mailops-syslog-");
            var path = Path.Combine(dir.FullName, "log.sock");
            try
            {
                using var listener = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
                listener.Bind(new UnixDomainSocketEndPoint(path));
                var sink = new SyslogAlertSink("log", path);
                Assert.Equal(SyslogTransport.Unix, sink.Transport);

                var alert = AlertTestData.Alert("spike from news@lab.test\r\nFAKE: second line");
                await sink.SendAsync(alert, CancellationToken.None);

                var buffer = new byte[65536];
                listener.ReceiveTimeout = 5000;
                var n = listener.Receive(buffer);
                var line = Encoding.UTF8.GetString(buffer, 0, n);

                // mail (2) * 8 + crit (2) = 18; glibc's local format: <PRI>Mmm dd hh:mm:ss tag[pid]: msg
                var m = Regex.Match(line, @"^<(\d+)>([A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d) mailops\[(\d+)\]: (.*)$", RegexOptions.Singleline);
                Assert.True(m.Success, line);
                Assert.Equal("18", m.Groups[1].Value);
                Assert.Equal(Environment.ProcessId.ToString(), m.Groups[3].Value);
                var msg = m.Groups[4].Value;
                Assert.DoesNotContain("\n", line);
                Assert.DoesNotContain("\r", line);
                Assert.StartsWith("CRITICAL raised: spike from news@lab.test FAKE: second line | rule: primary-cap", msg);
                Assert.Contains("| value: 1450 | limit: 1000", msg);
                Assert.Contains("| top senders: news@lab.test (1200), alice@lab.test (250)", msg);
                Assert.Contains("| top flows: newsletter (1200), staff (250)", msg);
                Assert.EndsWith("| action: Pause the newsletter flow or move it to the secondary relay.", msg);
            }
            finally
            {
                dir.Delete(true);
            }
        }

        [Fact]
        public async Task FallsBackToAStreamSocketAsGlibcDoes()
        {
            if (OperatingSystem.IsWindows())
            {
                return;
            }

            var dir = Directory.CreateTempSubdirectory("mailops-syslog-");
            var path = Path.Combine(dir.FullName, "log.sock");
            try
            {
                using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                listener.Bind(new UnixDomainSocketEndPoint(path));
                listener.Listen(1);
                var accept = listener.AcceptAsync();

                await new SyslogAlertSink("log", path).SendAsync(AlertTestData.Alert(), CancellationToken.None);
                using var peer = await accept.WaitAsync(TimeSpan.FromSeconds(5));
                using var stream = new NetworkStream(peer);
                var ms = new MemoryStream();
                await stream.CopyToAsync(ms).WaitAsync(TimeSpan.FromSeconds(5));
                var text = Encoding.UTF8.GetString(ms.ToArray());

                Assert.StartsWith("<18>", text);
                Assert.EndsWith("\0", text);
                Assert.Equal(1, text.Count(c => c == '\0'));
                Assert.Contains("CRITICAL raised: news@lab.test sent 1450 recipients", text);
            }
            finally
            {
                dir.Delete(true);
            }
        }

        [Fact]
        public async Task WritesRfc5424OverUdpWithTheConfiguredFacility()
        {
            using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
            var port = ((IPEndPoint)udp.Client.LocalEndPoint!).Port;
            var sink = new SyslogAlertSink("remote", $"127.0.0.1:{port}", facility: "local3");
            Assert.Equal(SyslogTransport.Udp, sink.Transport);

            var alert = AlertTestData.Alert();
            alert.Severity = AlertSeverity.Warning;
            await sink.SendAsync(alert, CancellationToken.None);
            var received = await udp.ReceiveAsync().WaitAsync(TimeSpan.FromSeconds(5));
            var line = Encoding.UTF8.GetString(received.Buffer);

            // local3 (19) * 8 + warning (4) = 156
            var m = Regex.Match(line, @"^<(\d+)>1 (\S+) (\S+) mailops (\d+) alert - (.*)$");
            Assert.True(m.Success, line);
            Assert.Equal("156", m.Groups[1].Value);
            Assert.True(DateTimeOffset.TryParse(m.Groups[2].Value, out var stamp), m.Groups[2].Value);
            Assert.InRange(DateTimeOffset.UtcNow - stamp, TimeSpan.FromSeconds(-5), TimeSpan.FromMinutes(1));
            Assert.Equal("mx1.lab.test", m.Groups[3].Value);
            Assert.StartsWith("WARNING raised: news@lab.test sent 1450 recipients", m.Groups[5].Value);
        }

        [Fact]
        public async Task WritesAnOctetCountedFrameOverTcp()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            try
            {
                var port = ((IPEndPoint)listener.LocalEndpoint).Port;
                var sink = new SyslogAlertSink("remote", $"127.0.0.1:{port}", SyslogTransport.Tcp);
                var alert = AlertTestData.Alert();
                alert.State = AlertState.Resolved;
                var accept = listener.AcceptTcpClientAsync();
                await sink.SendAsync(alert, CancellationToken.None);
                using var client = await accept.WaitAsync(TimeSpan.FromSeconds(5));
                using var reader = new StreamReader(client.GetStream(), Encoding.UTF8);
                var all = await reader.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(5));

                var space = all.IndexOf(' ');
                var length = int.Parse(all.Substring(0, space));
                var frame = all.Substring(space + 1);
                Assert.Equal(Encoding.UTF8.GetByteCount(frame), length);
                Assert.StartsWith("<21>1 ", frame); // mail (2) * 8 + notice (5): a resolved alert
            }
            finally
            {
                listener.Stop();
            }
        }

        [Fact]
        public async Task ANonexistentSocketIsAFailureNamingThePath()
        {
            if (OperatingSystem.IsWindows())
            {
                return;
            }

            var sink = new SyslogAlertSink("log", "/nonexistent/mailops-test.sock");
            var e = await Assert.ThrowsAsync<AlertSinkException>(() => sink.SendAsync(AlertTestData.Alert(), CancellationToken.None));
            Assert.Contains("/nonexistent/mailops-test.sock", e.Message);
        }

        [Theory]
        [InlineData("syslog.example.org", "syslog.example.org", 514)]
        [InlineData("192.0.2.1:1514", "192.0.2.1", 1514)]
        [InlineData("[2001:db8::1]:6514", "2001:db8::1", 6514)]
        [InlineData("2001:db8::1", "2001:db8::1", 514)]
        public void ParsesServers(string text, string host, int port)
        {
            Assert.True(SyslogAlertSink.TryParseServer(text, out var h, out var p));
            Assert.Equal(host, h);
            Assert.Equal(port, p);
        }

        [Theory]
        [InlineData("host:99999")]
        [InlineData("host:x")]
        [InlineData("[2001:db8::1")]
        [InlineData(":514")]
        public void RefusesBadServers(string text) => Assert.False(SyslogAlertSink.TryParseServer(text, out _, out _));

        [Fact]
        public void AVeryLongMessageIsCutToFitAUdpDatagram()
        {
            var sink = new SyslogAlertSink("remote", "127.0.0.1:514");
            var line = sink.Format(AlertTestData.Alert(new string('é', 5000)), DateTimeOffset.UtcNow);
            Assert.InRange(Encoding.UTF8.GetByteCount(line), 1000, 2048);
            Assert.EndsWith("...", line);
        }
    }
}
