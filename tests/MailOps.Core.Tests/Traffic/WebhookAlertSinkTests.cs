using System;
using System.Linq;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Traffic.Sinks;
using Xunit;

namespace MailOps.Core.Tests.Traffic
{
    public class WebhookAlertSinkTests
    {
        [Fact]
        public async Task PostsJsonWithATextSummaryAndEveryField()
        {
            using var server = new TinyHttpServer();
            using var sink = new WebhookAlertSink("chat", new Uri($"http://127.0.0.1:{server.Port}/hooks/T0KEN123"), WebhookFormat.Generic, TimeSpan.FromSeconds(10));

            await sink.SendAsync(AlertTestData.Alert(), CancellationToken.None);
            var (requestLine, headers, body) = await server.Received.WaitAsync(TimeSpan.FromSeconds(10));

            Assert.Equal("POST /hooks/T0KEN123 HTTP/1.1", requestLine);
            Assert.StartsWith("application/json", headers["Content-Type"]);
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            var text = root.GetProperty("text").GetString()!;
            Assert.StartsWith("**[MailOps] CRITICAL raised: news@lab.test sent 1450 recipients", text);
            Assert.Contains("- Value: `1450`", text);
            Assert.Contains("- Limit: `1000`", text);
            Assert.Contains("- Rule: `primary-cap`", text);
            Assert.Contains("Top senders: `news@lab.test` (1200), `alice@lab.test` (250)", text);
            Assert.Contains("Top flows: `newsletter` (1200), `staff` (250)", text);
            Assert.Contains("**Suggested action:** Pause the newsletter flow", text);

            var m = root.GetProperty("mailops");
            Assert.Equal("primary-cap/relay/primary", m.GetProperty("id").GetString());
            Assert.Equal("primary-cap", m.GetProperty("rule").GetString());
            Assert.Equal("critical", m.GetProperty("severity").GetString());
            Assert.Equal("raised", m.GetProperty("state").GetString());
            Assert.Equal(1450, m.GetProperty("value").GetDouble());
            Assert.Equal(1000, m.GetProperty("limit").GetDouble());
            Assert.Equal(JsonValueKind.Null, m.GetProperty("baseline").ValueKind);
            Assert.Equal(DateTimeOffset.Parse("2026-11-25T08:00:00Z"), m.GetProperty("windowStart").GetDateTimeOffset());
            Assert.Equal(new[] { "news@lab.test", "alice@lab.test" }, m.GetProperty("topSenders").EnumerateArray().Select(x => x.GetProperty("sender").GetString()));
            Assert.Equal(1200, m.GetProperty("topFlows")[0].GetProperty("messages").GetInt64());
            Assert.Equal("Pause the newsletter flow or move it to the secondary relay.", m.GetProperty("suggestedAction").GetString());
        }

        [Fact]
        public void SlackTextIsMrkdwnWithLogTextEscaped()
        {
            var alert = AlertTestData.Alert("<!channel> spike from <script>@x", "<script>@x");
            var text = WebhookAlertSink.Markdown(alert, WebhookFormat.Slack);

            Assert.StartsWith("*[MailOps] CRITICAL raised: &lt;!channel&gt; spike", text);
            Assert.Contains("`&lt;script&gt;@x` (1200)", text);
            Assert.DoesNotContain("<script>", text);
            Assert.DoesNotContain("<!channel>", text);
        }

        [Fact]
        public void TeamsSeparatesLinesWithBlankLinesAndFormatIsGuessedFromTheHost()
        {
            var text = WebhookAlertSink.Markdown(AlertTestData.Alert(), WebhookFormat.Teams);
            Assert.Contains("\n\n- Value: `1450`\n\n", text);
            Assert.Equal(WebhookFormat.Slack, WebhookAlertSink.GuessFormat(new Uri("https://hooks.slack.com/services/T/B/X")));
            Assert.Equal(WebhookFormat.Teams, WebhookAlertSink.GuessFormat(new Uri("https://contoso.webhook.office.com/webhookb2/x")));
            Assert.Equal(WebhookFormat.Generic, WebhookAlertSink.GuessFormat(new Uri("https://chat.example.org/hooks/x")));
        }

        [Fact]
        public void NewlinesInLogTextCannotAddLinesToTheMessage()
        {
            var text = WebhookAlertSink.Markdown(AlertTestData.Alert("spike\n- Value: `0`", "evil@x\r\n**fake**"), WebhookFormat.Generic);
            Assert.Single(text.Split('\n'), l => l.StartsWith("- Value:", StringComparison.Ordinal));
            Assert.Contains("`evil@x **fake**` (1200)", text);
        }

        [Fact]
        public async Task AServerErrorIsAFailureWithStatusAndExcerptButNotTheUrl()
        {
            using var server = new TinyHttpServer(500, "internal error: channel archived\nsecond line");
            using var sink = new WebhookAlertSink("chat", new Uri($"http://127.0.0.1:{server.Port}/hooks/T0KEN123"), null, TimeSpan.FromSeconds(10));

            var e = await Assert.ThrowsAsync<AlertSinkException>(() => sink.SendAsync(AlertTestData.Alert(), CancellationToken.None));

            Assert.Equal(500, e.StatusCode);
            Assert.Equal("chat", e.Sink);
            Assert.Contains("answered 500", e.Message);
            Assert.Contains("internal error: channel archived second line", e.Message);
            Assert.DoesNotContain("T0KEN123", e.Message);
        }

        [Fact]
        public async Task AServerThatNeverAnswersTimesOut()
        {
            using var server = new TinyHttpServer(answer: false);
            using var sink = new WebhookAlertSink("chat", new Uri($"http://127.0.0.1:{server.Port}/hooks/T0KEN123"), null, TimeSpan.FromMilliseconds(800));

            var started = DateTime.UtcNow;
            var e = await Assert.ThrowsAsync<AlertSinkException>(() => sink.SendAsync(AlertTestData.Alert(), CancellationToken.None));

            Assert.Contains("did not answer within 0.8 s", e.Message);
            Assert.InRange(DateTime.UtcNow - started, TimeSpan.FromMilliseconds(700), TimeSpan.FromSeconds(8));
            Assert.DoesNotContain("T0KEN123", e.Message);
        }

        [Fact]
        public async Task TheCallersCancellationIsACancellationNotAFailure()
        {
            using var server = new TinyHttpServer(answer: false);
            using var sink = new WebhookAlertSink("chat", new Uri($"http://127.0.0.1:{server.Port}/x"), null, TimeSpan.FromSeconds(30));
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sink.SendAsync(AlertTestData.Alert(), cts.Token));
        }
    }
}
