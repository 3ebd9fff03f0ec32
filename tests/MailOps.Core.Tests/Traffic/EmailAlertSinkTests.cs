using System;
using System.IO;
using System.Linq;
using System.Text;
using MailOps.Core.Config;
using MailOps.Core.Traffic.Sinks;
using MimeKit;
using Xunit;

namespace MailOps.Core.Tests.Traffic
{
    /// <summary>The message only: delivery through a relay is tested end to end against the lab's Postfix in the drill.</summary>
    public class EmailAlertSinkTests
    {
        private static RelayConfig Relay() => Assert.Single(ConfigReader.Read(@"version: 1
relays:
  - name: secondary
    host: smtp2.example.org
    role: secondary
").Config!.Relays);

        [Fact]
        public void TheMessageCarriesTheHeadlineAndEveryFigure()
        {
            var sink = new EmailAlertSink("ops-mail", Relay(), new[] { "ops@example.org", "Night Shift <night@example.org>" }, "watch@example.org");

            var m = sink.BuildMessage(AlertTestData.Alert());

            Assert.Equal("[MailOps] CRITICAL raised: news@lab.test sent 1450 recipients in an hour (limit 1000) through primary", m.Subject);
            Assert.Equal("watch@example.org", Assert.Single(m.From.Mailboxes).Address);
            Assert.Equal(new[] { "ops@example.org", "night@example.org" }, m.To.Mailboxes.Select(x => x.Address));
            Assert.Equal("auto-generated", m.Headers["Auto-Submitted"]);
            Assert.Equal("primary-cap/relay/primary", m.Headers["X-MailOps-Alert"]);
            var body = m.TextBody;
            Assert.Matches(@"Severity:\s+CRITICAL \(raised\)", body);
            foreach (var expected in new[] { "primary-cap", "recipients per hour", "1450", "1000", "2026-11-25 08:00:00Z to 2026-11-25 09:00:00Z", "news@lab.test", "newsletter", "Pause the newsletter flow" })
            {
                Assert.Contains(expected, body);
            }
        }

        [Fact]
        public void CrLfInAlertFieldsCannotInjectHeaders()
        {
            var sink = new EmailAlertSink("ops-mail", Relay(), new[] { "ops@example.org" });
            var alert = AlertTestData.Alert("spike\r\nBcc: victim@example.net\r\n\r\nbody", "evil@x\r\nX-Evil: 1");
            alert.Id = "id\r\nCc: other@example.net";

            var m = sink.BuildMessage(alert);
            using var ms = new MemoryStream();
            m.WriteTo(ms);
            var raw = Encoding.UTF8.GetString(ms.ToArray());
            var parsed = MimeMessage.Load(new MemoryStream(ms.ToArray()));

            Assert.Empty(parsed.Bcc);
            Assert.Empty(parsed.Cc);
            Assert.Null(parsed.Headers["X-Evil"]);
            Assert.Equal("[MailOps] CRITICAL raised: spike Bcc: victim@example.net body", parsed.Subject);
            Assert.Equal("id Cc: other@example.net", parsed.Headers["X-MailOps-Alert"]);
            Assert.DoesNotContain("\r\nBcc:", raw);
            Assert.DoesNotContain("\r\nCc:", raw);
            Assert.DoesNotContain("\r\nX-Evil:", raw);
        }

        [Fact]
        public void TheDefaultFromIsMailopsAtTheMachine()
        {
            var sink = new EmailAlertSink("ops-mail", Relay(), new[] { "ops@example.org" });
            Assert.StartsWith("mailops@", sink.From.Address);
            Assert.Equal(EmailAlertSink.DefaultFrom(), sink.From.Address);
            Assert.DoesNotContain(sink.From.Address.Substring(8), c => char.IsUpper(c) || char.IsWhiteSpace(c));
        }

        [Theory]
        [InlineData("not an address")]
        [InlineData("ops@example.org\r\nBcc: x@y")]
        public void BadAddressesAreRefused(string to) =>
            Assert.Throws<ArgumentException>(() => new EmailAlertSink("ops-mail", Relay(), new[] { to }));
    }
}
