using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Config;
using MailOps.Core.Relay;
using Xunit;

namespace MailOps.Core.Tests.Relay
{
    /// <summary>
    /// Faults a real SMTP server cannot be made to produce on demand (garbage bytes, a connection cut mid-reply, a reply
    /// that never ends). These run against a scripted mock server on loopback, and say so in their names. The faults a
    /// real server can produce (silent banner, stalled EHLO, refused port, bad certificates, wrong password) are tested
    /// against the lab's Postfix in tests/Pester/TestMailRelay.Tests.ps1.
    /// </summary>
    public class RelayProbeFaultTests
    {
        private static async Task<RelayCheckResult> ProbeAsync(int port, Action<RelayCheckOptions>? configure = null)
        {
            var o = new RelayCheckOptions { Host = "127.0.0.1", Port = port, Security = SmtpSecurity.StartTlsWhenAvailable, Timeout = TimeSpan.FromSeconds(2), HeloName = "probe.test", CheckOpenRelay = false, CheckDns = false };
            configure?.Invoke(o);
            var r = new RelayCheckResult("mock", o.Host, o.Port, o.Security.ToString());
            await new RelayProbe(o, null, r).RunAsync(CancellationToken.None);
            return r;
        }

        [Fact]
        public async Task Mock_GarbageBanner_FailsAtConnectWithProtocolError()
        {
            using var server = new ScriptedServer(async (reader, writer) => { await writer.WriteAsync("\x00\x01HELLO THERE\r\n"); });
            var r = await ProbeAsync(server.Port);

            Assert.Equal(RelayStatus.Failed, r.Status);
            Assert.Equal(RelayStage.Connect, r.FailedStage);
            var f = Assert.Single(r.Findings);
            Assert.Equal("ProtocolError", f.Code);
            Assert.Contains("not SMTP", f.Message, StringComparison.Ordinal);
        }

        [Fact]
        public async Task Mock_GarbageAfterEhlo_FailsAtEhlo()
        {
            using var server = new ScriptedServer(async (reader, writer) =>
            {
                await writer.WriteAsync("220 mock ESMTP\r\n");
                await reader.ReadLineAsync();
                await writer.WriteAsync("25O-garbage\r\n");
            });
            var r = await ProbeAsync(server.Port);

            Assert.Equal(RelayStage.Ehlo, r.FailedStage);
            Assert.Equal("ProtocolError", r.Findings.Single().Code);
            Assert.Equal("220 mock ESMTP", r.Banner);
        }

        [Fact]
        public async Task Mock_ConnectionCutMidReply_FailsWithConnectionClosed()
        {
            using var server = new ScriptedServer(async (reader, writer) =>
            {
                await writer.WriteAsync("220 mock ESMTP\r\n");
                await reader.ReadLineAsync();
                await writer.WriteAsync("250-mock\r\n250-PIPEL");
            });
            var r = await ProbeAsync(server.Port);

            Assert.Equal(RelayStage.Ehlo, r.FailedStage);
            var f = r.Findings.Single();
            Assert.Equal("ConnectionClosed", f.Code);
            Assert.Contains("in the middle of a line", f.Message, StringComparison.Ordinal);
        }

        [Fact]
        public async Task Mock_ConnectionClosedAfterMailFrom_FailsAtMail()
        {
            using var server = new ScriptedServer(async (reader, writer) =>
            {
                await writer.WriteAsync("220 mock ESMTP\r\n");
                await reader.ReadLineAsync();
                await writer.WriteAsync("250-mock\r\n250 8BITMIME\r\n");
                await reader.ReadLineAsync();
            });
            var r = await ProbeAsync(server.Port, o => o.From = "a@example.org");

            Assert.Equal(RelayStage.Mail, r.FailedStage);
            Assert.Equal("ConnectionClosed", r.Findings.Single(f => f.Severity == FindingSeverity.Error).Code);
        }

        [Fact]
        public async Task Mock_MultilineReplyThatNeverEnds_TimesOutWithinTheTimeout()
        {
            using var server = new ScriptedServer(async (reader, writer) =>
            {
                await writer.WriteAsync("220 mock ESMTP\r\n");
                await reader.ReadLineAsync();
                await writer.WriteAsync("250-mock\r\n");
                await Task.Delay(TimeSpan.FromSeconds(30));
            });
            var sw = Stopwatch.StartNew();
            var r = await ProbeAsync(server.Port);

            Assert.InRange(sw.Elapsed.TotalSeconds, 1.5, 4);
            Assert.Equal(RelayStage.Ehlo, r.FailedStage);
            Assert.Equal("Timeout", r.Findings.Single().Code);
        }

        [Fact]
        public async Task Mock_ReplyCodeChangesMidReply_IsAProtocolError()
        {
            using var server = new ScriptedServer(async (reader, writer) =>
            {
                await writer.WriteAsync("220-mock\r\n250 done\r\n");
            });
            var r = await ProbeAsync(server.Port);
            Assert.Equal("ProtocolError", r.Findings.Single().Code);
        }

        [Fact]
        public async Task Mock_FullConversation_RecordsCapabilitiesRecipientsAndTimings()
        {
            using var server = new ScriptedServer(async (reader, writer) =>
            {
                await writer.WriteAsync("220 mock ESMTP ready\r\n");
                await reader.ReadLineAsync();
                await writer.WriteAsync("250-mock\r\n250-SIZE 10485760\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n250 DSN\r\n");
                await reader.ReadLineAsync(); // MAIL
                await writer.WriteAsync("250 2.1.0 Ok\r\n");
                await reader.ReadLineAsync(); // RCPT 1
                await writer.WriteAsync("250 2.1.5 Ok\r\n");
                await reader.ReadLineAsync(); // RCPT 2
                await writer.WriteAsync("550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown\r\n");
                await reader.ReadLineAsync(); // RCPT 3
                await writer.WriteAsync("451 4.3.0 try later\r\n");
                await reader.ReadLineAsync(); // QUIT
                await writer.WriteAsync("221 2.0.0 Bye\r\n");
            });
            var r = await ProbeAsync(server.Port, o =>
            {
                o.From = "a@example.org";
                o.To = new[] { "ok@example.org", "nobody@example.org", "later@example.org" };
            });

            Assert.Null(r.FailedStage);
            Assert.Equal(RelayStage.Rcpt, r.CompletedStage);
            Assert.Equal(RelayStatus.Degraded, r.Status);
            var caps = r.Capabilities!;
            Assert.Equal(10485760, caps.MaxSize);
            Assert.True(caps.Pipelining && caps.EightBitMime && caps.SmtpUtf8 && caps.Chunking && caps.Dsn);
            Assert.False(caps.StartTls);
            Assert.Equal(new[] { RecipientOutcome.Accepted, RecipientOutcome.PermanentFailure, RecipientOutcome.TemporaryFailure }, r.Recipients.Select(x => x.Outcome));
            Assert.Equal("5.1.1", r.Recipients[1].EnhancedStatusCode);
            Assert.Equal(550, r.Recipients[1].Code);
            Assert.Equal(3, r.Timings.RcptMs.Count);
            Assert.NotNull(r.Timings.ConnectMs);
            Assert.Contains(r.Findings, f => f.Code == "NoTls");
            Assert.Contains(r.Findings, f => f.Code == "RecipientRejected");
            Assert.Contains(r.Findings, f => f.Code == "RecipientDeferred");
        }

        [Fact]
        public async Task Mock_NoAuthOverPlainText_CredentialNeverSent()
        {
            var received = new List<string>();
            using var server = new ScriptedServer(async (reader, writer) =>
            {
                await writer.WriteAsync("220 mock ESMTP\r\n");
                received.Add((await reader.ReadLineAsync())!);
                await writer.WriteAsync("250-mock\r\n250 AUTH PLAIN LOGIN\r\n");
                var line = await reader.ReadLineAsync();
                if (line != null)
                {
                    received.Add(line);
                }
            });
            var transcript = new List<string>();
            var r = await ProbeAsync(server.Port, o =>
            {
                o.Credential = new NetworkCredential("user", "s3cret-pa55");
                o.Transcript = transcript.Add;
            });

            Assert.Equal(RelayStage.Auth, r.FailedStage);
            Assert.Contains(r.Findings, f => f.Code == "AuthRefusedWithoutTls");
            Assert.Contains(r.Findings, f => f.Code == "AuthOfferedBeforeTls" && f.Severity == FindingSeverity.Error);
            Assert.DoesNotContain(received, l => l.StartsWith("AUTH", StringComparison.Ordinal));
            Assert.DoesNotContain(transcript, l => l.Contains("s3cret", StringComparison.Ordinal));
        }

        [Fact]
        public async Task RefusedPort_FailsAtConnect()
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            var port = ((IPEndPoint)l.LocalEndpoint).Port;
            l.Stop();

            var r = await ProbeAsync(port);
            Assert.Equal(RelayStage.Connect, r.FailedStage);
            Assert.Equal("ConnectionRefused", r.Findings.Single().Code);
        }

        [Fact]
        public async Task CancellationStopsAWaitingProbe()
        {
            using var server = new ScriptedServer(async (reader, writer) => await Task.Delay(TimeSpan.FromSeconds(30)));
            var o = new RelayCheckOptions { Host = "127.0.0.1", Port = server.Port, Timeout = TimeSpan.FromSeconds(30), CheckDns = false, CheckOpenRelay = false };
            var r = new RelayCheckResult("mock", o.Host, o.Port, "Auto");
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
            var sw = Stopwatch.StartNew();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => new RelayProbe(o, null, r).RunAsync(cts.Token));
            Assert.True(sw.Elapsed.TotalSeconds < 3);
        }

        [Fact]
        public void DotStuffingDoublesLeadingDotsAndTerminates()
        {
            var bytes = TestMessage.DotStuff(Encoding.ASCII.GetBytes("a\n.b\r\n..c\n"));
            Assert.Equal("a\r\n..b\r\n...c\r\n.\r\n", Encoding.ASCII.GetString(bytes));
        }

        /// <summary>A loopback server that runs one script per connection.</summary>
        private sealed class ScriptedServer : IDisposable
        {
            private readonly TcpListener _listener = new TcpListener(IPAddress.Loopback, 0);
            private readonly CancellationTokenSource _stop = new CancellationTokenSource();

            public ScriptedServer(Func<StreamReader, StreamWriter, Task> script)
            {
                _listener.Start();
                Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
                _ = Task.Run(async () =>
                {
                    while (!_stop.IsCancellationRequested)
                    {
                        TcpClient client;
                        try
                        {
                            client = await _listener.AcceptTcpClientAsync(_stop.Token);
                        }
                        catch (Exception)
                        {
                            return;
                        }

                        _ = Task.Run(async () =>
                        {
                            using (client)
                            {
                                var stream = client.GetStream();
                                var reader = new StreamReader(stream, new UTF8Encoding(false));
                                var writer = new StreamWriter(stream, new UTF8Encoding(false)) { AutoFlush = true, NewLine = "\r\n" };
                                try
                                {
                                    await script(reader, writer);
                                }
                                catch (IOException)
                                {
                                }
                            }
                        });
                    }
                });
            }

            public int Port { get; }

            public void Dispose()
            {
                _stop.Cancel();
                _listener.Stop();
            }
        }
    }
}
