using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using MailOps.Core.Logs;
using MailOps.Core.Traffic;
using Xunit;
using Xunit.Abstractions;

namespace MailOps.Core.Tests.Traffic
{
    /// <summary>
    /// TrafficTotals against the real pflogsumm on the same logs: the corpus Postfix logs, a generated log with the
    /// hard cases, and the lab's own Postfix logs. The differences of definition (docs/traffic-pflogsumm.md) are
    /// asserted as differences, never smoothed over.
    /// </summary>
    public sealed class PflogsummAgreementTests : IDisposable
    {
        private static readonly Regex Program = new Regex(@"^(?<head>(?:[A-Z][a-z]{2} {1,2}\d{1,2} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) \S+ )(?<prog>[^\s\[:]+)(?<rest>.*)$", RegexOptions.CultureInvariant);
        private static readonly Regex TlsField = new Regex(@", tls=[^,]*(?=, (?:dsn|status)=)", RegexOptions.CultureInvariant);
        private static readonly Regex SmtpdMilterReject = new Regex(@"^\[\d+\]: \w+: milter-reject: ", RegexOptions.CultureInvariant);
        private readonly ITestOutputHelper _output;
        private readonly string _dir;

        public PflogsummAgreementTests(ITestOutputHelper output)
        {
            _output = output;
            _dir = Path.Combine(Path.GetTempPath(), "mailops-pflogsumm-" + Guid.NewGuid().ToString("N").Substring(0, 8));
            Directory.CreateDirectory(_dir);
        }

        public void Dispose()
        {
            Directory.Delete(_dir, true);
        }

        [PflogsummFact("postfix-logs/pflogsumm-go/testdata/sample.log")]
        public void SampleLogAgrees()
        {
            var (p, t) = AssertAgreement(Corpora.Find("postfix-logs/pflogsumm-go/testdata/sample.log")!);
            // the figures the corpus publishes (pflogsumm-go's expectations), so that neither side is vacuous
            Assert.Equal(4, t.Received);
            Assert.Equal(5, t.Delivered);
            Assert.Equal(1, t.Bounced);
            Assert.Equal(1, t.Deferred);
            Assert.Equal(1, t.Rejected);
            Assert.Equal(4, t.Senders);
            Assert.Equal(4, p["received"].Value);
        }

        [PflogsummFact("postfix-logs/pflogsumm-go/testdata/rfc3339.log")]
        public void Rfc3339LogAgrees()
        {
            var (_, t) = AssertAgreement(Corpora.Find("postfix-logs/pflogsumm-go/testdata/rfc3339.log")!);
            Assert.Equal(1, t.Received);
            Assert.Equal(1, t.Delivered);
        }

        [PflogsummFact("postfix-logs/crowdsec-hub/tests/postfix-logs/postfix-logs.log")]
        public void CrowdsecLogAgrees()
        {
            var (_, t) = AssertAgreement(Corpora.Find("postfix-logs/crowdsec-hub/tests/postfix-logs/postfix-logs.log")!);
            Assert.True(t.Rejected >= 3, $"only {t.Rejected} rejections read");
        }

        [PflogsummFact("postfix-logs/fail2ban/fail2ban/tests/files/logs/postfix")]
        public void Fail2banLogAgrees()
        {
            var (_, t) = AssertAgreement(Corpora.Find("postfix-logs/fail2ban/fail2ban/tests/files/logs/postfix")!);
            Assert.True(t.Rejected >= 20, $"only {t.Rejected} rejections read");
        }

        /// <summary>
        /// The postfix-grok-patterns cases (one message each, from a dozen daemons) as one log: each case's message
        /// behind a syslog prefix naming the daemon its pattern is for.
        /// </summary>
        [PflogsummFact("postfix-logs/postfix-grok-patterns/test")]
        public void GrokCasesAsALogAgree()
        {
            var lines = new List<string>();
            var second = 0;
            foreach (var file in Directory.GetFiles(Corpora.Find("postfix-logs/postfix-grok-patterns/test")!, "*.yaml").OrderBy(f => f, StringComparer.Ordinal))
            {
                var yaml = new YamlDotNet.RepresentationModel.YamlStream();
                using (var r = new StreamReader(file))
                {
                    yaml.Load(r);
                }

                var root = (YamlDotNet.RepresentationModel.YamlMappingNode)yaml.Documents[0].RootNode;
                var pattern = ((YamlDotNet.RepresentationModel.YamlScalarNode)root.Children[new YamlDotNet.RepresentationModel.YamlScalarNode("pattern")]).Value!;
                var data = ((YamlDotNet.RepresentationModel.YamlScalarNode)root.Children[new YamlDotNet.RepresentationModel.YamlScalarNode("data")]).Value!;
                var name = Regex.Match(pattern, @"POSTFIX_([A-Z_]+)\}").Groups[1].Value;
                if (name is "TLS_FEATURES" or "COMMAND_COUNTER_DATA" or "DELAYS" or "SCRIPT" or "")
                {
                    continue; // fragments of lines, not a daemon's message
                }

                var daemon = name.ToLowerInvariant().Replace('_', '-');
                second++;
                lines.Add($"Nov 20 10:{second / 60:00}:{second % 60:00} mx postfix/{daemon}[{1000 + second}]: {data}");
            }

            Assert.True(lines.Count > 150, $"{lines.Count} grok cases");
            var (p, t) = AssertAgreement(Write(lines.ToArray()));
            Assert.True(t.Rejected + t.Delivered + t.Deferrals + t.Bounced + t.Received > 20, t.ToString());
        }

        /// <summary>The generated log with every hard case, against pflogsumm and against what the generator wrote.</summary>
        [PflogsummTheory]
        [InlineData(7, 600)]
        [InlineData(11, 3000)]
        [InlineData(23, 250)]
        public void GeneratedLogAgrees(int seed, int messages)
        {
            var gen = new PostfixLogGenerator(seed, new DateTime(2026, 11, 2, 23, 0, 0));
            var path = Path.Combine(_dir, "generated.log");
            File.WriteAllText(path, gen.Write(messages));
            var (p, t) = AssertAgreement(path);
            Assert.Equal(gen.Received, t.Received);
            Assert.Equal(gen.Delivered, t.Delivered);
            Assert.Equal(gen.Deferrals, t.Deferrals);
            Assert.Equal(gen.Bounced, t.Bounced);
            Assert.Equal(gen.Rejected, t.Rejected);
            Assert.Equal(gen.Forwarded, t.Forwarded);
            Assert.True(t.Received > messages * 2 / 3 && t.Deferred > messages / 30 && t.Senders > 10 && t.Discarded > messages / 100, t.ToString());
            Assert.True(p.SendersByCount.Count > 10 && p.SendingDomains.Count > 8, $"{p.SendersByCount.Count} senders, {p.SendingDomains.Count} sending domains");

            // on the log as written (not as pflogsumm can see it), pflogsumm misses the other instance and services
            var raw = Pflogsumm.Run(path);
            var hidden = File.ReadLines(path).Count(l => l.Contains("client=", StringComparison.Ordinal) && Hidden(l));
            Assert.True(hidden > messages / 30, $"{hidden} client= lines under names pflogsumm does not read");
            Assert.Equal(t.Received - hidden, raw["received"].Value);
        }

        /// <summary>The lab's real Postfix logs (written by the Pester run of the lab), when there are any.</summary>
        [PflogsummLabFact]
        public void LabLogsAgree()
        {
            foreach (var log in PflogsummLabFactAttribute.Logs())
            {
                // a snapshot: a running lab may still be writing to its log
                var copy = Path.Combine(_dir, Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(log))!) + ".maillog");
                File.Copy(log, copy);
                _output.WriteLine($"lab log {log} ({new FileInfo(copy).Length} bytes)");
                var (_, t) = AssertAgreement(copy);
                Assert.True(t.Received > 0, $"{log}: no mail received");
            }
        }

        /// <summary>Lines pflogsumm counts that are easy to miss: a reject without a queue id, a milter reject by cleanup.</summary>
        [PflogsummFact]
        public void UncommonRejectLinesAgree()
        {
            var path = Write(
                "Nov 20 10:00:01 mx1 postfix/smtpd[1]: reject: CONNECT from unknown[192.0.2.1]: 554 5.7.1 Client host rejected: Access denied; proto=SMTP",
                "Nov 20 10:00:02 mx1 postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 <a@b.c>: Relay access denied; from=<x@y.z> to=<a@b.c> proto=ESMTP helo=<h>",
                "Nov 20 10:00:03 mx1 postfix/smtpd[1]: 1A2B3C4D5E: client=app.example.org[192.0.2.1]",
                "Nov 20 10:00:04 mx1 postfix/cleanup[2]: 1A2B3C4D5E: milter-reject: END-OF-MESSAGE from app.example.org[192.0.2.1]: 5.7.1 Spam; from=<a@example.org> to=<b@lab.test> proto=ESMTP helo=<app>",
                "Nov 20 10:00:05 mx1 postfix/cleanup[2]: 2B3C4D5E6F: reject: body Click here from app.example.org[192.0.2.1]; from=<a@example.org> to=<b@lab.test> proto=ESMTP helo=<app>: 5.7.1 No",
                "Nov 20 10:00:06 mx1 postfix/smtpd[1]: NOQUEUE: discard: RCPT from unknown[192.0.2.1]: <t@lab.test>: Recipient address triggers DISCARD action; from=<a@b.c> to=<t@lab.test> proto=ESMTP helo=<h>");
            var (p, t) = AssertAgreement(path);
            Assert.Equal(4, p["rejected"].Value);
            Assert.Equal(1, t.Discarded);
            Assert.Equal(0, t.UnreadableLines);

            // a delivery line cut short is unreadable, and said so
            var broken = Write("Nov 20 10:00:01 mx1 postfix/smtp[1]: 7EE668039: to=<user@example.com>, relay=mail.example.com[1.2.3.4]:25, delay=3.6");
            Assert.Equal(1, MailOpsTotals(broken).UnreadableLines);
        }

        /// <summary>Documented difference 1: pflogsumm reads one syslog name and only the smtps/ and submission/ services.</summary>
        [PflogsummFact]
        public void OtherInstancesAndServicesAreCountedByMailOpsOnly()
        {
            var path = Write(
                "Nov 20 10:00:01 mx2 postfix-secondary/smtpd[1]: 1A2B3C4D5E: client=app.example.org[192.0.2.1]",
                "Nov 20 10:00:02 mx2 postfix-secondary/qmgr[2]: 1A2B3C4D5E: from=<news@lab.test>, size=1000, nrcpt=1 (queue active)",
                "Nov 20 10:00:03 mx2 postfix-secondary/smtp[3]: 1A2B3C4D5E: to=<a@example.net>, relay=mx.example.net[198.51.100.1]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 OK)",
                "Nov 20 10:00:04 mx1 postfix/limited/smtpd[4]: 2B3C4D5E6F: client=app.example.org[192.0.2.1]",
                "Nov 20 10:00:05 mx1 postfix/qmgr[5]: 2B3C4D5E6F: from=<alerts@lab.test>, size=2000, nrcpt=1 (queue active)",
                "Nov 20 10:00:06 mx1 postfix/smtp[6]: 2B3C4D5E6F: to=<b@example.net>, relay=mx.example.net[198.51.100.1]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 OK)");
            var t = MailOpsTotals(path);
            Assert.Equal(2, t.Received);
            Assert.Equal(2, t.Delivered);
            Assert.Equal(2, t.Senders);
            var p = Pflogsumm.Run(path);
            Assert.Equal(0, p["received"].Value); // neither smtpd is read
            Assert.Equal(1, p["delivered"].Value); // the postfix/smtp line only
            Assert.Equal(0, p["senders"].Value); // a sender counts only for a message it saw received
            var named = Pflogsumm.Run(path, "--syslog-name=postfix-secondary");
            Assert.Equal(1, named["received"].Value);
            Assert.Equal(2, named["delivered"].Value);
        }

        /// <summary>Documented difference 5: pflogsumm 1.1.5 skips deliveries with the tls= field of newer Postfix versions.</summary>
        [PflogsummFact]
        public void DeliveriesWithATlsFieldAreCountedByMailOpsOnly()
        {
            var path = Write(
                "Nov 20 10:00:01 mx1 postfix/smtp[1]: 7EE668039: to=<user@example.com>, relay=mail.example.com[1.2.3.4]:25, delay=3.6, delays=0.08/0.02/0.85/0.14, tls=dane, dsn=2.1.5, status=sent (250 2.0.0 Ok: queued as 153053D)",
                "Nov 20 10:00:02 mx1 postfix/smtp[1]: 7EE668039: to=<other@example.com>, relay=mail.example.com[1.2.3.4]:25, delay=3.6, delays=0.08/0.02/0.85/0.14, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 153053E)");
            var t = MailOpsTotals(path);
            Assert.Equal(2, t.Delivered);
            Assert.Equal(2, t.Recipients);
            var p = Pflogsumm.Run(path);
            Assert.Equal(1, p["delivered"].Value);
            Assert.Equal(1, p["recipients"].Value);
        }

        /// <summary>Documented difference 2: a milter's refusal logged by smtpd is a rejection pflogsumm does not count.</summary>
        [PflogsummFact]
        public void SmtpdMilterRejectIsCountedByMailOpsOnly()
        {
            var path = Write(
                "Nov 20 10:00:01 mx1 postfix/smtpd[1]: 1A2B3C4D5E: client=app.example.org[192.0.2.1]",
                "Nov 20 10:00:02 mx1 postfix/smtpd[1]: 1A2B3C4D5E: milter-reject: DATA from app.example.org[192.0.2.1]: 550 5.7.1 Command rejected; from=<a@example.org> to=<b@lab.test> proto=ESMTP helo=<app>",
                "Nov 20 10:00:03 mx1 postfix/smtpd[1]: 2B3C4D5E6F: client=app.example.org[192.0.2.1]",
                "Nov 20 10:00:04 mx1 postfix/cleanup[2]: 2B3C4D5E6F: milter-reject: END-OF-MESSAGE from app.example.org[192.0.2.1]: 5.7.1 Spam; from=<a@example.org> to=<b@lab.test> proto=ESMTP helo=<app>");
            var t = MailOpsTotals(path);
            Assert.Equal(2, t.Rejected);
            var p = Pflogsumm.Run(path);
            Assert.Equal(1, p["rejected"].Value); // the cleanup line only
            Assert.Equal(2, p["received"].Value);
        }

        /// <summary>
        /// Documented difference 3: pflogsumm remembers a queue id for the whole log; MailOps forgets it when the message
        /// is removed, so a reused queue id is a new message (whose sender and deferral count again).
        /// </summary>
        [PflogsummFact]
        public void ReusedQueueIdIsANewMessageForMailOps()
        {
            var path = Write(
                "Nov 20 10:00:01 mx1 postfix/pickup[1]: 1A2B3C4D5E: uid=0 from=<root>",
                "Nov 20 10:00:02 mx1 postfix/qmgr[2]: 1A2B3C4D5E: from=<root@lab.test>, size=100, nrcpt=1 (queue active)",
                "Nov 20 10:00:03 mx1 postfix/smtp[3]: 1A2B3C4D5E: to=<a@example.net>, relay=none, delay=1, delays=0/0/1/0, dsn=4.4.1, status=deferred (connect to mx.example.net[198.51.100.1]:25: Connection refused)",
                "Nov 20 10:00:04 mx1 postfix/qmgr[2]: 1A2B3C4D5E: removed",
                "Nov 27 10:00:01 mx1 postfix/pickup[1]: 1A2B3C4D5E: uid=0 from=<root>",
                "Nov 27 10:00:02 mx1 postfix/qmgr[2]: 1A2B3C4D5E: from=<root@lab.test>, size=300, nrcpt=1 (queue active)",
                "Nov 27 10:00:03 mx1 postfix/smtp[3]: 1A2B3C4D5E: to=<a@example.net>, relay=none, delay=1, delays=0/0/1/0, dsn=4.4.1, status=deferred (connect to mx.example.net[198.51.100.1]:25: Connection refused)",
                "Nov 27 10:00:04 mx1 postfix/qmgr[2]: 1A2B3C4D5E: removed");
            var t = MailOpsTotals(path);
            Assert.Equal(2, t.MessagesBySender["root@lab.test"]);
            Assert.Equal(2, t.Deferred);
            Assert.Equal(400, t.BytesReceived);
            var p = Pflogsumm.Run(path);
            Assert.Equal(2, p["received"].Value);
            Assert.Equal(1, p.SendersByCount["root@lab.test"].Value);
            Assert.Equal(1, p["deferred"].Value);
            Assert.Equal(100, p["bytes received"].Value);
        }

        /// <summary>Documented difference 4: RFC 3339 stamps without a zone or with "+0000" are skipped by pflogsumm.</summary>
        [PflogsummFact]
        public void Rfc3339StampsWithoutAColonZoneAreReadByMailOpsOnly()
        {
            var path = Write(
                "2026-11-20T10:00:01.123456+00:00 mx1 postfix/smtpd[1]: 1A2B3C4D5E: client=app.example.org[192.0.2.1]",
                "2026-11-20T10:00:02.123456+0000 mx1 postfix/smtpd[1]: 2B3C4D5E6F: client=app.example.org[192.0.2.1]",
                "2026-11-20T10:00:03 mx1 postfix/smtpd[1]: 3C4D5E6F7A: client=app.example.org[192.0.2.1]");
            Assert.Equal(3, MailOpsTotals(path).Received);
            Assert.Equal(1, Pflogsumm.Run(path)["received"].Value);
        }

        /// <summary>Client names shortened as pflogsumm's gimme_domain shortens them (values printed by its own code).</summary>
        [Theory]
        [InlineData("mail.example.org[192.0.2.1]", "example.org")]
        [InlineData("mail.example.de[192.0.2.1]", "mail.example.de")]
        [InlineData("smtp.example.co.uk[192.0.2.1]", "example.co.uk")]
        [InlineData("mail.example.com.au[10.0.0.1]", "example.com.au")]
        [InlineData("a.b.c.example.info[192.0.2.1]", "a.b.c.example.info")]
        [InlineData("unknown[203.0.113.9]", "203.0.113.9")]
        [InlineData("[192.0.2.7]", "192.0.2.7")]
        [InlineData("mx.example.net[2001:db8::25]", "example.net")]
        [InlineData("relay.Example.COM[198.51.100.4]", "example.com")]
        [InlineData("Example.COM[198.51.100.4]", "Example.COM")]
        [InlineData("x.y.Mail.EXAMPLE.FR[10.0.0.1]:25", "x.y.Mail.EXAMPLE.FR")]
        [InlineData("host/10.0.0.1", "host")]
        [InlineData("localhost", null)]
        public void ClientDomainsAreShortenedAsPflogsummShortensThem(string client, string? domain)
        {
            Assert.Equal(domain, TrafficAggregator.ClientDomain(client));
        }

        [Fact]
        public void PflogsummFiguresWithUnitsMatchExactCounts()
        {
            Assert.True(new PflogsummFigure(524288, ' ').Matches(524288));
            Assert.False(new PflogsummFigure(524288, ' ').Matches(524289));
            Assert.True(new PflogsummFigure(512, 'k').Matches(524289));
            Assert.True(new PflogsummFigure(1023, 'k').Matches(1048575));
            Assert.False(new PflogsummFigure(1023, 'k').Matches(1048576));
            Assert.True(new PflogsummFigure(1024, 'm').Matches(1073741824));
            var r = PflogsummReport.Parse("\nGrand Totals\n------------\nmessages\n\n   1023k  received\n      3   deferred  (1024k deferrals)\n      2   rejected (16%)\n\n   600m  bytes received\n\nSenders by message count\n------------------------\n      2   a@b.c\n      1   from=<>\n\nRecipients by message count\n---------------------------\n      9   x@y.z\n");
            Assert.Equal(new PflogsummFigure(1023, 'k'), r["received"]);
            Assert.Equal(new PflogsummFigure(1024, 'k'), r["deferrals"]);
            Assert.Equal(2, r["rejected"].Value);
            Assert.Equal('m', r["bytes received"].Unit);
            Assert.Equal(new[] { "a@b.c", "from=<>" }, r.SendersByCount.Keys.OrderBy(k => k, StringComparer.Ordinal));
        }

        private (PflogsummReport Pflogsumm, TrafficTotals MailOps) AssertAgreement(string log)
        {
            // pflogsumm reads the log with every syslog name rewritten to one it reads (documented difference 1)
            var visible = Path.Combine(_dir, Path.GetFileName(log) + ".visible");
            var smtpdMilterRejects = 0;
            using (var w = new StreamWriter(visible, false, new UTF8Encoding(false)))
            {
                foreach (var line in File.ReadLines(log))
                {
                    var m = Program.Match(line);
                    if (m.Success && Daemon(m.Groups["prog"].Value) == "smtpd" && SmtpdMilterReject.IsMatch(m.Groups["rest"].Value))
                    {
                        smtpdMilterRejects++;
                    }

                    w.Write(Visible(line));
                    w.Write('\n');
                }
            }

            var p = Pflogsumm.Run(visible);
            var t = MailOpsTotals(log);
            var tv = MailOpsTotals(visible);
            _output.WriteLine($"{log}: MailOps {t}; {t.Senders} senders, {t.Recipients} recipients, {t.BytesReceived} bytes received");
            _output.WriteLine(p.Text.Substring(0, Math.Min(p.Text.Length, 1200)));

            // the totals-only path, reading into one record, counts as the full one (records, every row dimension, reasons)
            var full = MailOpsTotals(log, false);
            Assert.Equal(Figures(full), Figures(t));
            Assert.Equal(full.MessagesBySender.OrderBy(x => x.Key, StringComparer.Ordinal), t.MessagesBySender.OrderBy(x => x.Key, StringComparer.Ordinal));
            Assert.Equal(full.SendingDomains.OrderBy(x => x, StringComparer.Ordinal), t.SendingDomains.OrderBy(x => x, StringComparer.Ordinal));

            // MailOps does not care which syslog name a line has
            Assert.Equal(Figures(t), Figures(tv));
            Assert.Equal(t.MessagesBySender.OrderBy(x => x.Key, StringComparer.Ordinal), tv.MessagesBySender.OrderBy(x => x.Key, StringComparer.Ordinal));

            var failures = new List<string>();
            void Check(string name, long ours)
            {
                var f = p[name];
                if (!f.Matches(ours))
                {
                    failures.Add($"{name}: pflogsumm {f}, MailOps {ours}");
                }
            }

            Check("received", t.Received);
            Check("delivered", t.Delivered);
            Check("forwarded", t.Forwarded);
            Check("deferred", t.Deferred);
            Check("deferrals", t.Deferrals);
            Check("bounced", t.Bounced);
            Check("rejected", t.Rejected - smtpdMilterRejects); // documented difference 2
            Check("discarded", t.Discarded);
            Check("bytes received", t.BytesReceived);
            Check("bytes delivered", t.BytesDelivered);
            Check("senders", t.Senders);
            Check("sending hosts/domains", t.SendingHostsDomains);
            Check("recipients", t.Recipients);
            Check("recipient hosts/domains", t.RecipientHostsDomains);
            foreach (var s in p.SendersByCount)
            {
                if (!t.MessagesBySender.TryGetValue(s.Key, out var n) || !s.Value.Matches(n))
                {
                    failures.Add($"sender {s.Key}: pflogsumm {s.Value}, MailOps {(t.MessagesBySender.ContainsKey(s.Key) ? n.ToString(CultureInfo.InvariantCulture) : "none")}");
                }
            }

            foreach (var s in t.MessagesBySender.Where(s => !p.SendersByCount.ContainsKey(s.Key)))
            {
                failures.Add($"sender {s.Key}: pflogsumm none, MailOps {s.Value}");
            }

            var domains = t.SendingDomains.OrderBy(d => d, StringComparer.Ordinal).ToList();
            if (!domains.SequenceEqual(p.SendingDomains.Keys.OrderBy(d => d, StringComparer.Ordinal)))
            {
                failures.Add($"sending hosts/domains: pflogsumm {string.Join(" ", p.SendingDomains.Keys.OrderBy(d => d, StringComparer.Ordinal))}; MailOps {string.Join(" ", domains)}");
            }

            Assert.True(failures.Count == 0, $"MailOps and pflogsumm disagree on {log}:\n" + string.Join("\n", failures));
            return (p, t);
        }

        private static long[] Figures(TrafficTotals t) => new[]
        {
            t.Received, t.Delivered, t.Forwarded, t.Deferred, t.Deferrals, t.Bounced, t.Expired, t.Rejected, t.Discarded,
            t.BytesReceived, t.BytesDelivered, t.Senders, t.SendingHostsDomains, t.Recipients, t.RecipientHostsDomains,
        };

        private static TrafficTotals MailOpsTotals(string log, bool totalsOnly = true)
        {
            var agg = new TrafficAggregator(new TrafficOptions { TotalsOnly = totalsOnly, Dimensions = totalsOnly ? new[] { TrafficDimension.Total } : Enum.GetValues<TrafficDimension>() });
            using var reader = File.OpenText(log);
            var parser = new MailLogParser(PflogsummYear(log), TimeZoneInfo.Utc);
            if (totalsOnly)
            {
                agg.AddLog(reader, parser, log); // the big-log way (reused records, read on a second thread)
                // the one-thread loop counts the same
                var single = new TrafficAggregator(new TrafficOptions { TotalsOnly = true }) { Pipelined = false };
                using var again = File.OpenText(log);
                single.AddLog(again, new MailLogParser(PflogsummYear(log), TimeZoneInfo.Utc), log);
                Assert.Equal(Figures(single.Totals), Figures(agg.Totals));
            }
            else
            {
                agg.AddLog(parser.Read(reader, log));
            }

            return agg.Totals;
        }

        /// <summary>
        /// The year pflogsumm gives the log's BSD dates (this year, or last year for a month after this one), so that a
        /// 29 February is a date for both.
        /// </summary>
        private static int PflogsummYear(string log)
        {
            var now = DateTime.Now;
            foreach (var line in File.ReadLines(log))
            {
                var m = Array.IndexOf(CultureInfo.InvariantCulture.DateTimeFormat.AbbreviatedMonthNames, line.Length > 3 ? line.Substring(0, 3) : "");
                if (m >= 0 && line.Length > 4 && line[3] == ' ')
                {
                    return m + 1 > now.Month ? now.Year - 1 : now.Year;
                }
            }

            return now.Year;
        }

        private static string Daemon(string program) => program.Substring(program.LastIndexOf('/') + 1);

        /// <summary>Whether pflogsumm (default syslog name) reads this line's program as what it is.</summary>
        private static bool Hidden(string line)
        {
            var m = Program.Match(line);
            if (!m.Success || !m.Groups["prog"].Value.Contains('/', StringComparison.Ordinal))
            {
                return false;
            }

            var parts = m.Groups["prog"].Value.Split('/');
            if (!parts[0].StartsWith("postfix", StringComparison.Ordinal))
            {
                return false;
            }

            return parts[0] != "postfix" || parts.Length > 3 || (parts.Length == 3 && parts[1] != "smtps" && parts[1] != "submission");
        }

        /// <summary>The line as pflogsumm can read it: another syslog name made postfix/, a tls= field dropped.</summary>
        private static string Visible(string line)
        {
            line = TlsField.Replace(line, "");
            return Hidden(line) && Program.Match(line) is var m ? m.Groups["head"].Value + "postfix/" + Daemon(m.Groups["prog"].Value) + m.Groups["rest"].Value : line;
        }

        private string Write(params string[] lines)
        {
            var path = Path.Combine(_dir, "case-" + Guid.NewGuid().ToString("N").Substring(0, 6) + ".log");
            File.WriteAllText(path, string.Join("\n", lines) + "\n");
            return path;
        }
    }

    /// <summary>A fact on the lab's Postfix logs (mailops-lab-*/postfix-*/log/maillog in the temp folder); skipped loudly without them.</summary>
    public sealed class PflogsummLabFactAttribute : FactAttribute
    {
        public PflogsummLabFactAttribute()
        {
            if (!Pflogsumm.Available)
            {
                Skip = $"PFLOGSUMM MISSING: {Pflogsumm.Program} not found; install the Debian package 'pflogsumm'. This test did not run.";
            }
            else if (Logs().Count == 0)
            {
                Skip = $"LAB LOG MISSING: no mailops-lab-*/postfix-*/log/maillog with mail in {Path.GetTempPath()} (the Pester run of the lab writes them; or set MAILOPS_LAB_MAILLOG). This test did not run.";
            }
        }

        /// <summary>$MAILOPS_LAB_MAILLOG (paths separated by ':'), or the primary and secondary logs of the newest lab run that received mail.</summary>
        public static IReadOnlyList<string> Logs()
        {
            var env = Environment.GetEnvironmentVariable("MAILOPS_LAB_MAILLOG");
            if (!string.IsNullOrEmpty(env))
            {
                return env.Split(':', StringSplitOptions.RemoveEmptyEntries).Where(File.Exists).ToList();
            }

            var labs = new DirectoryInfo(Path.GetTempPath()).GetDirectories("mailops-lab-*").OrderByDescending(d => d.LastWriteTimeUtc);
            foreach (var lab in labs)
            {
                var logs = new[] { "postfix-primary", "postfix-secondary" }.Select(i => Path.Combine(lab.FullName, i, "log", "maillog"))
                    .Where(f => File.Exists(f) && File.ReadLines(f).Any(l => l.Contains(": client=", StringComparison.Ordinal))).ToList();
                if (logs.Count > 0)
                {
                    return logs;
                }
            }

            return Array.Empty<string>();
        }
    }
}
