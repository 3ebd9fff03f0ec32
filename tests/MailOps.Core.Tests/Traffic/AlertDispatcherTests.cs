using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Config;
using MailOps.Core.Traffic;
using MailOps.Core.Traffic.Sinks;
using Xunit;

namespace MailOps.Core.Tests.Traffic
{
    public class AlertDispatcherTests
    {
        private sealed class RecordingSink : IAlertSink
        {
            public RecordingSink(string name) => Name = name;

            public string Name { get; }
            public string Type => "test";
            public List<TrafficAlert> Got { get; } = new List<TrafficAlert>();

            public Task SendAsync(TrafficAlert alert, CancellationToken cancellationToken)
            {
                lock (Got)
                {
                    Got.Add(alert);
                }

                return Task.CompletedTask;
            }
        }

        /// <summary>Blocks its thread and ignores its token: the worst a sink can do.</summary>
        private sealed class StuckSink : IAlertSink
        {
            public string Name => "stuck";
            public string Type => "test";

            public Task SendAsync(TrafficAlert alert, CancellationToken cancellationToken)
            {
                Thread.Sleep(3000);
                return Task.CompletedTask;
            }
        }

        private sealed class ThrowingSink : IAlertSink
        {
            public string Name => "broken";
            public string Type => "test";

            public Task SendAsync(TrafficAlert alert, CancellationToken cancellationToken) => throw new InvalidOperationException("boom");
        }

        [Fact]
        public async Task AFailingWebhookDoesNotStopTheSyslogSink()
        {
            using var server = new TinyHttpServer(500, "no");
            using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
            var port = ((IPEndPoint)udp.Client.LocalEndPoint!).Port;
            using var webhook = new WebhookAlertSink("chat", new Uri($"http://127.0.0.1:{server.Port}/x"), null, TimeSpan.FromSeconds(10));
            var syslog = new SyslogAlertSink("log", $"127.0.0.1:{port}");
            var dispatcher = new AlertDispatcher(new IAlertSink[] { webhook, syslog });

            var result = await dispatcher.SendAsync(AlertTestData.Alert());

            Assert.Equal(new[] { "chat", "log" }, result.Select(d => d.Sink));
            Assert.False(result[0].Succeeded);
            Assert.Contains("answered 500", result[0].Error);
            Assert.Equal("webhook", result[0].Type);
            Assert.True(result[1].Succeeded, result[1].Error);
            Assert.Equal("primary-cap/relay/primary", result[1].AlertId);
            var datagram = await udp.ReceiveAsync().WaitAsync(TimeSpan.FromSeconds(5));
            Assert.NotEmpty(datagram.Buffer);
        }

        [Fact]
        public async Task AThrowingAndAStuckSinkAreReportedWhileTheOthersDeliver()
        {
            var good = new RecordingSink("good");
            var dispatcher = new AlertDispatcher(new IAlertSink[] { new ThrowingSink(), new StuckSink(), good }, TimeSpan.FromMilliseconds(500));

            var started = DateTime.UtcNow;
            var result = await dispatcher.SendAsync(AlertTestData.Alert());

            Assert.InRange(DateTime.UtcNow - started, TimeSpan.Zero, TimeSpan.FromSeconds(4)); // the stuck one is abandoned
            Assert.Equal("boom", result[0].Error);
            Assert.False(result[1].Succeeded);
            Assert.Contains("within 0.5 s", result[1].Error);
            Assert.True(result[2].Succeeded);
            Assert.Single(good.Got);
        }

        [Fact]
        public async Task TheCallersCancellationStopsTheDispatch()
        {
            var dispatcher = new AlertDispatcher(new IAlertSink[] { new StuckSink() }, TimeSpan.FromSeconds(30));
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => dispatcher.SendAsync(AlertTestData.Alert(), cts.Token));
        }

        [Fact]
        public void SinksAreBuiltFromTheConfiguration()
        {
            var result = ConfigReader.Read(@"version: 1
relays:
  - name: primary
    host: smtp.example.org
    role: primary
  - name: secondary
    host: smtp2.example.org
    role: secondary
alerts:
  sinks:
    - name: ops-mail
      type: email
      relay: secondary
      to: [ops@example.org]
      from: watch@example.org
    - name: slack
      type: webhook
      url: https://hooks.slack.com/services/T/B/X
      timeoutSeconds: 5
    - name: mm
      type: webhook
      url: https://chat.example.org/hooks/abc
      format: teams
    - name: log
      type: syslog
      server: 192.0.2.5:1514
      protocol: tcp
      facility: local5
");
            Assert.True(result.IsValid, string.Join("\n", result.Issues));

            var sinks = AlertDispatcher.CreateSinks(result.Config!, null, out var problems);

            Assert.Empty(problems);
            var mail = Assert.IsType<EmailAlertSink>(sinks[0]);
            Assert.Equal("secondary", mail.Relay.Name);
            Assert.Equal("watch@example.org", mail.From.Address);
            var slack = Assert.IsType<WebhookAlertSink>(sinks[1]);
            Assert.Equal(WebhookFormat.Slack, slack.Format);
            Assert.Equal(TimeSpan.FromSeconds(5), slack.Timeout);
            Assert.Equal(WebhookFormat.Teams, Assert.IsType<WebhookAlertSink>(sinks[2]).Format);
            var log = Assert.IsType<SyslogAlertSink>(sinks[3]);
            Assert.Equal(SyslogTransport.Tcp, log.Transport);
            Assert.Equal(21, log.Facility);
            foreach (var s in sinks.OfType<IDisposable>())
            {
                s.Dispose();
            }
        }
    }
}
