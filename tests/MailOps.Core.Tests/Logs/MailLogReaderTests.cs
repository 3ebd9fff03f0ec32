using System;
using System.IO;
using System.Linq;
using MailOps.Core.Logs;
using Xunit;
using Xunit.Abstractions;
using YamlDotNet.RepresentationModel;

namespace MailOps.Core.Tests.Logs
{
    public class MailLogReaderTests
    {
        private readonly ITestOutputHelper _output;

        public MailLogReaderTests(ITestOutputHelper output)
        {
            _output = output;
        }

        /// <summary>Every delivery line of the postfix-grok-patterns cases gives the fields the grok pattern expects.</summary>
        [CorpusFact("postfix-logs/postfix-grok-patterns/test")]
        public void GrokCasesWithADeliveryStatusAreRead()
        {
            var checkedLines = 0;
            foreach (var file in Directory.GetFiles(Corpora.Find("postfix-logs/postfix-grok-patterns/test")!, "*.yaml"))
            {
                var yaml = new YamlStream();
                using (var r = new StreamReader(file))
                {
                    yaml.Load(r);
                }

                var root = (YamlMappingNode)yaml.Documents[0].RootNode;
                var data = ((YamlScalarNode)root.Children[new YamlScalarNode("data")]).Value!;
                if (!root.Children.TryGetValue(new YamlScalarNode("results"), out var res) || !(res is YamlMappingNode results)
                    || !results.Children.TryGetValue(new YamlScalarNode("postfix_status"), out var st) || !data.Contains(" to=<", StringComparison.Ordinal))
                {
                    continue;
                }

                if (!new[] { "sent", "deferred", "bounced", "expired" }.Contains(((YamlScalarNode)st).Value))
                {
                    _output.WriteLine($"not a delivery (address verification): {Path.GetFileName(file)} status={((YamlScalarNode)st).Value}");
                    continue;
                }

                var line = "Nov 25 01:00:00 mx postfix/smtp[123]: " + data;
                var events = MailLogReader.Read(new StringReader(line), file).ToList();
                var e = Assert.Single(events);
                Assert.Equal(((YamlScalarNode)st).Value, e.Status.ToString().ToLowerInvariant());
                Assert.Equal(((YamlScalarNode)results.Children[new YamlScalarNode("postfix_queueid")]).Value, e.QueueId);
                if (results.Children.TryGetValue(new YamlScalarNode("postfix_smtp_response"), out var resp))
                {
                    Assert.Equal(((YamlScalarNode)resp).Value, e.Diagnostic);
                }

                checkedLines++;
            }

            _output.WriteLine($"grok delivery lines read: {checkedLines}");
            Assert.True(checkedLines >= 5, $"only {checkedLines} grok cases were delivery lines");
        }

        [Fact]
        public void PostfixBounceDeferralAndRejectLinesAreRead()
        {
            const string log = @"Nov 25 01:45:06 mx1 postfix/smtpd[100]: connect from localhost[127.0.0.1]
Nov 25 01:45:06 mx1 postfix/qmgr[90]: 3F2A1B1E6A1: from=<news@lab.test>, size=412, nrcpt=1 (queue active)
Nov 25 01:45:07 mx1 postfix/smtp[101]: 3F2A1B1E6A1: to=<nobody@remote.test>, relay=127.0.0.1[127.0.0.1]:2526, delay=0.3, delays=0.1/0/0.1/0.1, dsn=5.1.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <nobody@remote.test>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command))
2026-11-25T01:45:08.123456+00:00 mx1 postfix/smtp[102]: 4A1B2C3D4E5: to=<alice@refused.test>, relay=none, delay=5, delays=0/0/5/0, dsn=4.4.1, status=deferred (connect to 127.0.0.1[127.0.0.1]:2599: Connection refused)
Nov 25 01:45:09 mx1 postfix/smtpd[103]: NOQUEUE: reject: RCPT from unknown[198.51.100.7]: 554 5.7.1 <x@discard.test>: Relay access denied; from=<a@sink.test> to=<x@discard.test> proto=ESMTP helo=<client>
Nov 25 01:45:10 mx1 postfix/smtp[104]: 5B2C: to=<broken
garbage line
";
            var errors = new System.Collections.Generic.List<LogLineError>();
            var events = MailLogReader.Read(new StringReader(log), "maillog", errors.Add, 2026).ToList();

            Assert.Equal(new[] { DeliveryStatus.Bounced, DeliveryStatus.Deferred, DeliveryStatus.Rejected }, events.Select(e => e.Status));
            Assert.Equal("news@lab.test", events[0].Sender);
            Assert.Equal("5.1.1", events[0].Dsn);
            Assert.Equal(new DateTimeOffset(2026, 11, 25, 1, 45, 7, TimeSpan.Zero), events[0].Time);
            Assert.StartsWith("host 127.0.0.1[127.0.0.1] said: 550 5.1.1", events[0].Diagnostic, StringComparison.Ordinal);
            Assert.Equal("connect to 127.0.0.1[127.0.0.1]:2599: Connection refused", events[1].Diagnostic);
            Assert.Equal(3, events[0].LineNumber);
            Assert.Equal("unknown[198.51.100.7]", events[2].Client);
            Assert.Empty(errors); // the truncated line has no status: it is not a delivery line, so it is not an error either
        }

        [Fact]
        public void AnExpiredMessageNamesTheRecipientsItsDeferralsNamed()
        {
            // what the lab's Postfix writes when a provider's mail hosts are down (maximal_queue_lifetime reached)
            const string log = @"Nov 25 05:55:57 mx1 postfix/qmgr[9232]: E27C4B1E549: from=<drill@sink.test>, size=402, nrcpt=3 (queue active)
Nov 25 05:55:57 mx1 postfix/smtp[9831]: E27C4B1E549: to=<paul@boulangerie-martin.test>, relay=none, delay=0.01, delays=0/0/0/0, dsn=4.4.1, status=deferred (connect to 127.0.1.1[127.0.1.1]:41011: Connection refused)
Nov 25 05:55:57 mx1 postfix/smtp[9831]: E27C4B1E549: to=<claire@cabinet-durand.test>, relay=none, delay=0.01, delays=0/0/0/0, dsn=4.4.1, status=deferred (connect to 127.0.1.1[127.0.1.1]:41011: Connection refused)
Nov 25 05:55:57 mx1 postfix/smtp[9831]: E27C4B1E549: to=<team@startup-google.test>, relay=none, delay=0.01, delays=0/0/0/0, dsn=4.4.1, status=deferred (connect to 127.0.2.1[127.0.2.1]:41011: Connection refused)
Nov 25 05:56:30 mx1 postfix/smtp[9832]: E27C4B1E549: to=<team@startup-google.test>, relay=127.0.2.1[127.0.2.1]:41011, delay=33, delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok)
Nov 25 05:57:57 mx1 postfix/qmgr[9232]: E27C4B1E549: from=<drill@sink.test>, status=expired, returned to sender
";
            var events = MailLogReader.Read(new StringReader(log), "maillog", null, 2026).Where(e => e.Status == DeliveryStatus.Expired).ToList();
            Assert.Equal(new[] { "paul@boulangerie-martin.test", "claire@cabinet-durand.test" }, events.Select(e => e.Recipient));
            Assert.All(events, e =>
            {
                Assert.Equal("drill@sink.test", e.Sender);
                Assert.Equal("4.4.1", e.Dsn);
                Assert.Equal("connect to 127.0.1.1[127.0.1.1]:41011: Connection refused", e.Diagnostic);
                Assert.Equal(new DateTimeOffset(2026, 11, 25, 5, 57, 57, TimeSpan.Zero), e.Time);
            });
            var bounce = MailOps.Core.Bounces.BounceParser.ParseDiagnosticLine(events[0].Recipient!, events[0].Diagnostic!, events[0].Dsn);
            Assert.True(bounce.IsInfrastructureFailure);
            Assert.False(bounce.IsHard);
        }

        [Fact]
        public void EximFailuresAndDeferralsAreRead()
        {
            const string log = "2026-11-25 07:12:01 1vABCD-000123-AB ** bob@ovh-client.test R=dnslookup T=remote_smtp: SMTP error from remote mail server after RCPT TO:<bob@ovh-client.test>: 550 5.1.1 User unknown\n"
                + "2026-11-25 07:12:02 1vABCE-000124-AB == carol@ovh-client.test R=dnslookup T=remote_smtp defer (-44) H=mx1.mail.ovh.net [192.0.2.1]: SMTP error from remote mail server after RCPT TO:<carol@ovh-client.test>: 451 4.3.0 try later\n"
                + "2026-11-25 07:12:03 1vABCF-000125-AB => dave@example.org R=dnslookup T=remote_smtp H=mx.example.org [192.0.2.9]\n";
            var events = MailLogReader.Read(new StringReader(log), "mainlog").ToList();
            Assert.Equal(new[] { DeliveryStatus.Bounced, DeliveryStatus.Deferred, DeliveryStatus.Sent }, events.Select(e => e.Status));
            Assert.Equal("bob@ovh-client.test", events[0].Recipient);
            Assert.Equal("5.1.1", events[0].Dsn);
            Assert.Equal("mx1.mail.ovh.net", events[1].Relay);
        }
    }
}
