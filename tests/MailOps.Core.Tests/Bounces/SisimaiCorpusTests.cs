using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using MailOps.Core.Bounces;
using Xunit;
using Xunit.Abstractions;

namespace MailOps.Core.Tests.Bounces
{
    /// <summary>
    /// Agreement with sisimai on its corpus (../shared/corpora/sisimai): reason and hard/soft per recipient, by MTA
    /// family. The issue's goal is 95% on reasons and 98% on hard/soft; the assertions below are floors at the figures
    /// reached so far, so that a change that makes the classifier worse fails, while the printed figures say how far
    /// the goal still is.
    /// </summary>
    public class SisimaiCorpusTests
    {
        private const string Expected = "sisimai/expected.tsv";
        private readonly ITestOutputHelper _output;

        public SisimaiCorpusTests(ITestOutputHelper output)
        {
            _output = output;
        }

        private void Say(string line)
        {
            _output.WriteLine(line);
            Console.WriteLine(line);
        }

        private static string Family(string file)
        {
            var name = Path.GetFileNameWithoutExtension(file);
            var dash = name.LastIndexOf('-');
            return dash > 0 ? name.Substring(0, dash) : name;
        }

        [CorpusFact(Expected)]
        public void AgreementWithSisimaiIsPrinted()
        {
            var root = Corpora.Find("sisimai")!;
            var rows = File.ReadAllLines(Path.Combine(root, "expected.tsv")).Skip(1).Select(l => l.Split('\t'))
                .Where(c => c.Length >= 6 && File.Exists(Path.Combine(root, c[0]))).ToList();
            var byFile = rows.GroupBy(r => r[0]).ToList();
            var total = 0;
            var reasonOk = 0;
            var hardOk = 0;
            var perFamily = new Dictionary<string, (int N, int Reason, int Hard)>();
            var misses = new List<string>();
            foreach (var file in byFile)
            {
                var records = BounceParser.ParseFile(Path.Combine(root, file.Key));
                foreach (var row in file)
                {
                    var index = int.Parse(row[5], System.Globalization.CultureInfo.InvariantCulture) - 1;
                    var got = index < records.Count ? records[index] : null;
                    var expectedReason = row[1];
                    var expectedHard = row[3] == "true";
                    var rOk = got != null && got.Reason == expectedReason;
                    var hOk = got != null ? got.IsHard == expectedHard : !expectedHard;
                    total++;
                    reasonOk += rOk ? 1 : 0;
                    hardOk += hOk ? 1 : 0;
                    var fam = Family(file.Key);
                    perFamily.TryGetValue(fam, out var f);
                    perFamily[fam] = (f.N + 1, f.Reason + (rOk ? 1 : 0), f.Hard + (hOk ? 1 : 0));
                    if (!rOk)
                    {
                        misses.Add($"{Path.GetFileName(file.Key)}#{index + 1}: expected {expectedReason}, got {got?.Reason ?? "(no recipient)"} [{got?.StatusCode}] {Short(got?.Diagnostic)}");
                    }
                }
            }

            var reasonPct = 100.0 * reasonOk / total;
            var hardPct = 100.0 * hardOk / total;
            Say($"Bounce corpus (sisimai, {byFile.Count} mails, {total} recipients): reason {reasonOk}/{total} = {reasonPct:0.0}% (goal 95%), hard/soft {hardOk}/{total} = {hardPct:0.0}% (goal 98%)");
            foreach (var kv in perFamily.OrderByDescending(k => k.Value.N))
            {
                Say($"  {kv.Key,-28} {kv.Value.N,4} recipients  reason {100.0 * kv.Value.Reason / kv.Value.N,5:0.0}%  hard/soft {100.0 * kv.Value.Hard / kv.Value.N,5:0.0}%");
            }

            var showMisses = Environment.GetEnvironmentVariable("MAILOPS_SHOW_MISSES") == "1";
            foreach (var m in misses)
            {
                _output.WriteLine("  miss " + m);
                if (showMisses)
                {
                    Console.WriteLine("  miss " + m);
                }
            }

            Assert.True(total > 300, $"only {total} expectation rows had a mail");
            Assert.True(reasonPct >= ReasonFloor, $"reason agreement {reasonPct:0.0}% fell below the floor {ReasonFloor}%");
            Assert.True(hardPct >= HardFloor, $"hard/soft agreement {hardPct:0.0}% fell below the floor {HardFloor}%");
        }

        // Floors at the figures reached so far (the goal is 95 / 98); raise them as the classifier improves.
        private const double ReasonFloor = 95.0;
        private const double HardFloor = 98.0;

        private static string Short(string? s) => s == null ? "" : s.Length > 110 ? s.Substring(0, 110) + "..." : s;

        [CorpusFact("sisimai/diagnostic-lines.tsv")]
        public void DiagnosticLinesClassifyAsTheirReason()
        {
            var lines = File.ReadAllLines(Corpora.Find("sisimai/diagnostic-lines.tsv")!).Skip(1).Select(l => l.Split('\t')).Where(c => c.Length >= 2).ToList();
            var ok = 0;
            foreach (var c in lines)
            {
                var r = BounceParser.ParseDiagnosticLine("user@example.org", c[1]);
                if (r.Reason == c[0])
                {
                    ok++;
                }
                else
                {
                    _output.WriteLine($"  miss {c[0]} -> {r.Reason}: {c[1]}");
                    if (Environment.GetEnvironmentVariable("MAILOPS_SHOW_MISSES") == "1")
                    {
                        Console.WriteLine($"  miss {c[0]} -> {r.Reason}: {c[1]}");
                    }
                }
            }

            Say($"Diagnostic lines (sisimai): {ok}/{lines.Count} = {100.0 * ok / lines.Count:0.0}% classified as their reason");
            Assert.True(100.0 * ok / lines.Count >= LineFloor, "diagnostic-line agreement fell below its floor");
        }

        private const double LineFloor = 88.7;

        /// <summary>Disagreements with the corpus kept on purpose (also listed, with why, in docs/bounce-disagreements.md).</summary>
        private static readonly Dictionary<string, string> KeptDisagreements = new Dictionary<string, string>
        {
            ["rb-issue-368-bug.eml"] = "a German ISP's rejection notice ('reject reason: Mailbox full', 'target mail address: ...'): it is a bounce, "
                + "and MailOps reports it as mailboxfull; the corpus marks its own 'not a bounce' expectation as unverified",
        };

        [CorpusFact("sisimai/set-of-emails/maildir")]
        public void CrlfCrAndBrokenMailsParseWithoutError()
        {
            var root = Corpora.Find("sisimai/set-of-emails/maildir")!;
            var parsed = 0;
            var withRecipients = 0;
            foreach (var dir in new[] { "dos", "mac", "err", "tmp" })
            {
                foreach (var file in Directory.GetFiles(Path.Combine(root, dir)))
                {
                    var records = BounceParser.ParseFile(file);
                    parsed++;
                    withRecipients += records.Count > 0 ? 1 : 0;
                }
            }

            Say($"CRLF/CR/err mails: {parsed} parsed without error, {withRecipients} with at least one recipient");
            Assert.True(parsed >= 190);
            Assert.True(withRecipients >= parsed * 0.9, $"only {withRecipients} of {parsed} gave a recipient");
        }

        [CorpusFact("sisimai/set-of-emails/maildir")]
        public void CrlfAndCrCopiesClassifyLikeTheirLfOriginals()
        {
            // maildir/dos and maildir/mac hold copies of maildir/bsd mails with CRLF and CR line ends: found by their
            // content with the line ends made equal, each copy must give the same recipients, reasons and codes
            var root = Corpora.Find("sisimai/set-of-emails/maildir")!;
            string Key(string file) => Convert.ToBase64String(System.Security.Cryptography.SHA256.HashData(
                Encoding.UTF8.GetBytes(Encoding.Latin1.GetString(File.ReadAllBytes(file)).Replace("\r\n", "\n").Replace('\r', '\n'))));
            var originals = Directory.GetFiles(Path.Combine(root, "bsd")).GroupBy(Key).ToDictionary(g => g.Key, g => g.First());
            string Describe(string file) => string.Join("; ", BounceParser.ParseFile(file).Select(r => $"{r.Recipient} {r.Reason} {r.StatusCode} {r.ReplyCode}"));
            var compared = 0;
            foreach (var dir in new[] { "dos", "mac" })
            {
                foreach (var copy in Directory.GetFiles(Path.Combine(root, dir)))
                {
                    if (originals.TryGetValue(Key(copy), out var original))
                    {
                        Assert.True(Describe(original) == Describe(copy), $"{dir}/{Path.GetFileName(copy)}: {Describe(copy)} | bsd/{Path.GetFileName(original)}: {Describe(original)}");
                        compared++;
                    }
                }
            }

            Say($"CRLF/CR copies compared with their LF originals: {compared}");
            Assert.True(compared >= 100, $"only {compared} copies had an original");
        }

        [CorpusFact("sisimai/expected-not-bounce.tsv")]
        public void MailsThatAreNotBouncesGiveNoRecipient()
        {
            var root = Corpora.Find("sisimai")!;
            foreach (var row in File.ReadAllLines(Path.Combine(root, "expected-not-bounce.tsv")).Skip(1).Select(l => l.Split('\t')))
            {
                var path = Path.Combine(root, row[0]);
                if (KeptDisagreements.ContainsKey(Path.GetFileName(row[0])))
                {
                    continue;
                }

                if (File.Exists(path))
                {
                    Assert.True(BounceParser.ParseFile(path).Count == 0, $"{row[0]} is not a bounce");
                }
            }
        }

        [Fact]
        public void LineEndingsDoNotChangeTheResult()
        {
            const string lf = "From: MAILER-DAEMON@example.org\nTo: a@example.net\nSubject: Undelivered Mail Returned to Sender\nContent-Type: text/plain\n\n<bob@example.com>: host mx.example.com[192.0.2.1] said: 550 5.1.1\n    <bob@example.com>: Recipient address rejected: User unknown (in reply to RCPT\n    TO command)\n";
            var results = new[] { lf, lf.Replace("\n", "\r\n"), lf.Replace("\n", "\r") }
                .Select(t => BounceParser.Parse(new MemoryStream(Encoding.ASCII.GetBytes(t))).Single()).ToList();
            Assert.All(results, r =>
            {
                Assert.Equal("bob@example.com", r.Recipient);
                Assert.Equal(BounceReasons.UserUnknown, r.Reason);
                Assert.Equal("5.1.1", r.StatusCode);
                Assert.Equal(550, r.ReplyCode);
                Assert.True(r.IsHard);
                Assert.False(r.IsInfrastructureFailure);
            });
        }

        [Theory]
        [InlineData("Host or domain name not found. Name service error for name=x.invalid type=A: Host not found", "5.4.4", BounceReasons.HostUnknown, true, true)]
        [InlineData("connect to 127.0.0.1[127.0.0.1]:2599: Connection refused", "4.4.1", BounceReasons.NetworkError, false, true)]
        [InlineData("conversation with 127.0.0.1[127.0.0.1] timed out while receiving the initial server greeting", "4.4.2", BounceReasons.NetworkError, false, true)]
        [InlineData("host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <x@remote.test>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)", "5.1.1", BounceReasons.UserUnknown, true, false)]
        [InlineData("host 127.0.0.1[127.0.0.1] said: 552 5.2.2 <full@remote.test>: Recipient address rejected: Mailbox full (in reply to RCPT TO command)", "5.2.2", BounceReasons.MailboxFull, false, false)]
        [InlineData("host 127.0.0.1[127.0.0.1] said: 554 5.7.1 <spam@remote.test>: Recipient address rejected: Message rejected as spam (in reply to RCPT TO command)", "5.7.1", BounceReasons.SpamDetected, false, false)]
        [InlineData("host 127.0.0.1[127.0.0.1] said: 554 5.7.1 <policy@remote.test>: Recipient address rejected: Message rejected due to local policy (in reply to RCPT TO command)", "5.7.1", BounceReasons.PolicyViolation, false, false)]
        [InlineData("host 127.0.0.1[127.0.0.1] said: 554 5.7.1 <x@remote.test>: Recipient address rejected: Access denied (in reply to RCPT TO command)", "5.7.1", BounceReasons.Blocked, false, false)]
        [InlineData("host mail.protection.outlook.com[192.0.2.1] said: 550 5.4.1 Recipient address rejected: Access denied. AS(201806281) (in reply to RCPT TO command)", "5.4.1", BounceReasons.UserUnknown, true, false)]
        public void PostfixDiagnosticsOfTheLabClassifyAsExpected(string diagnostic, string status, string reason, bool hard, bool infrastructure)
        {
            var r = BounceParser.ParseDiagnosticLine("x@remote.test", diagnostic, status);
            Assert.Equal(reason, r.Reason);
            Assert.Equal(hard, r.IsHard);
            Assert.Equal(infrastructure, r.IsInfrastructureFailure);
        }
    }
}
