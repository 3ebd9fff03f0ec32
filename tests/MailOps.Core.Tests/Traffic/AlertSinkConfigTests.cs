using System.Linq;
using MailOps.Core.Config;
using Xunit;

namespace MailOps.Core.Tests.Traffic
{
    public class AlertSinkConfigTests
    {
        private const string Relays = @"version: 1
relays:
  - name: primary
    host: smtp.example.org
    role: primary
  - name: secondary
    host: smtp2.example.org
    role: secondary
alerts:
  sinks:
";

        private static ConfigReadResult Read(string sinks) => ConfigReader.Read(Relays + sinks);

        [Fact]
        public void SyslogKeysAreRead()
        {
            var r = Read("    - { name: log, type: syslog, server: '[2001:db8::5]:1514', protocol: udp, facility: LOCAL2, timeoutSeconds: 3 }\n");
            Assert.True(r.IsValid, string.Join("\n", r.Issues));
            var s = Assert.Single(r.Config!.AlertSinks);
            Assert.Equal("[2001:db8::5]:1514", s.Server);
            Assert.Equal("udp", s.Protocol);
            Assert.Equal("local2", s.Facility);
            Assert.Equal(3, s.TimeoutSeconds);
            Assert.Empty(r.Issues);
        }

        [Theory]
        [InlineData("    - { name: log, type: syslog, facility: mial }\n", ConfigIssueCodes.InvalidValue, "did you mean 'mail'")]
        [InlineData("    - { name: log, type: syslog, protocol: tcp }\n", ConfigIssueCodes.MissingKey, "names no 'server'")]
        [InlineData("    - { name: log, type: syslog, server: 'host:70000' }\n", ConfigIssueCodes.InvalidValue, "is not a syslog server")]
        [InlineData("    - { name: log, type: syslog, server: dev/log, protocol: unix }\n", ConfigIssueCodes.InvalidValue, "absolute path")]
        [InlineData("    - { name: log, type: syslog, protocol: icmp }\n", ConfigIssueCodes.InvalidValue, "udp, tcp, unix")]
        [InlineData("    - { name: hook, type: webhook, url: 'https://x.example.org/h', format: slak }\n", ConfigIssueCodes.InvalidValue, "did you mean 'slack'")]
        [InlineData("    - { name: mail, type: email, relay: secondary, to: [ops@example.org], from: 'not an address' }\n", ConfigIssueCodes.InvalidValue, "is not an email address")]
        [InlineData("    - { name: mail, type: email, relay: secondary, to: [ops] }\n", ConfigIssueCodes.InvalidValue, "'ops' is not an email address")]
        [InlineData("    - { name: mail, type: email, relay: secondary, to: [ops@example.org], timeoutSeconds: 0 }\n", ConfigIssueCodes.InvalidValue, "from 1 to 300")]
        public void BadSinkSettingsAreErrors(string sink, string code, string words)
        {
            var r = Read(sink);
            Assert.False(r.IsValid);
            var issue = r.Errors.FirstOrDefault(i => i.Code == code && i.Message.Contains(words));
            Assert.True(issue != null, $"expected {code} with '{words}'; got: {string.Join(" | ", r.Issues)}");
        }

        [Fact]
        public void AKeyOfAnotherSinkTypeIsAWarning()
        {
            var r = Read("    - { name: hook, type: webhook, url: 'https://x.example.org/h', to: [ops@example.org] }\n");
            Assert.True(r.IsValid, string.Join("\n", r.Issues));
            var w = Assert.Single(r.Issues);
            Assert.Equal(IssueSeverity.Warning, w.Severity);
            Assert.Contains("'to' is used only by email sinks", w.Message);
        }

        [Fact]
        public void TheTemplatesAlertExamplesAreValidOnceUncommented()
        {
            var text = ConfigTemplate.Render(new[] { "example.org" });
            var alerts = text.IndexOf("\nalerts:\n", System.StringComparison.Ordinal);
            Assert.True(alerts > 0);
            var lines = text.Substring(alerts + 1).Split('\n')
                .Select(l => l.StartsWith("    # ", System.StringComparison.Ordinal) ? "    " + l.Substring(6) : l)
                .Select(l => l == "  sinks: []" ? "  sinks:" : l);
            var r = ConfigReader.Read(text.Substring(0, alerts + 1) + string.Join("\n", lines));

            Assert.True(r.IsValid, string.Join("\n", r.Issues));
            Assert.Equal(new[] { "email", "webhook", "syslog" }, r.Config!.AlertSinks.Select(x => x.Type));
            Assert.Equal("udp", r.Config.AlertSinks[2].Protocol);
            Assert.Equal("generic", r.Config.AlertSinks[1].Format);
        }

        [Fact]
        public void MailingThroughAWatchedRelayIsAWarning()
        {
            var r = ConfigReader.Read(Relays.Replace("alerts:\n", "thresholds:\n  - { name: cap, scope: relay, match: primary, metric: recipients, per: hour, limit: 1000 }\nalerts:\n")
                + "    - { name: mail, type: email, relay: PRIMARY, to: [ops@example.org] }\n    - { name: mail2, type: email, relay: secondary, to: [ops@example.org] }\n");

            Assert.True(r.IsValid, string.Join("\n", r.Issues));
            var w = Assert.Single(r.Issues);
            Assert.Equal(IssueSeverity.Warning, w.Severity);
            Assert.Contains("'mail' mails through the relay 'PRIMARY', which a threshold watches", w.Message);
        }

        [Fact]
        public void ABadWebhookUrlIsNotRepeatedInTheError()
        {
            var r = Read("    - { name: hook, type: webhook, url: 'ftp://x.example.org/T0KEN' }\n");
            var e = Assert.Single(r.Errors);
            Assert.DoesNotContain("T0KEN", e.Message);
        }
    }
}
