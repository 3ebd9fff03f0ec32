using System;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using MailOps.Core.Bounces;
using MailOps.Core.Logs;
using Xunit;
using Xunit.Abstractions;

namespace MailOps.Core.Tests.Logs
{
    /// <summary>Exim's own test-suite logs and mailboxes (../shared/corpora/exim-testsuite).</summary>
    public class EximTestsuiteTests
    {
        private readonly ITestOutputHelper _output;

        public EximTestsuiteTests(ITestOutputHelper output)
        {
            _output = output;
        }

        /// <summary>Every failure (**) and deferral (==) line of Exim's mainlogs becomes an event, as a grep counts them.</summary>
        [CorpusFact("exim-testsuite/test/log")]
        public void EveryFailureAndDeferralLineIsRead()
        {
            var marker = new Regex(@"^\S+ \S+ (?:\[\d+\] )?\S+ (\*\*|==) ", RegexOptions.CultureInvariant);
            int expectedFail = 0, expectedDefer = 0, gotFail = 0, gotDefer = 0;
            foreach (var file in Directory.GetFiles(Corpora.Find("exim-testsuite/test/log")!))
            {
                var lines = File.ReadAllLines(file);
                foreach (var l in lines)
                {
                    var m = marker.Match(l);
                    if (m.Success)
                    {
                        if (m.Groups[1].Value == "**") expectedFail++; else expectedDefer++;
                    }
                }

                using var reader = new StringReader(string.Join("\n", lines));
                foreach (var e in MailLogReader.Read(reader, file))
                {
                    if (e.Status == DeliveryStatus.Bounced) gotFail++;
                    if (e.Status == DeliveryStatus.Deferred) gotDefer++;
                }
            }

            _output.WriteLine($"Exim test-suite logs: failures {gotFail}/{expectedFail}, deferrals {gotDefer}/{expectedDefer}");
            Console.WriteLine($"Exim test-suite logs: failures {gotFail}/{expectedFail}, deferrals {gotDefer}/{expectedDefer}");
            Assert.True(expectedFail > 500);
            Assert.True(gotFail >= expectedFail * 0.95, $"only {gotFail} of {expectedFail} failure lines were read");
            Assert.True(gotDefer >= expectedDefer * 0.95, $"only {gotDefer} of {expectedDefer} deferral lines were read");
        }

        /// <summary>Exim-generated DSNs in the test mailboxes (mbox) give a recipient each, and parse without error.</summary>
        [CorpusFact("exim-testsuite/test/mail")]
        public void EximDsnsInMailboxesGiveRecipients()
        {
            var files = Directory.GetFiles(Corpora.Find("exim-testsuite/test/mail")!).Where(f => File.ReadAllText(f).Contains("X-Failed-Recipients:", StringComparison.Ordinal)).ToList();
            var errors = 0;
            var withRecipient = 0;
            foreach (var f in files)
            {
                var records = BounceSources.FromFiles(new[] { f }, _ => errors++).ToList();
                withRecipient += records.Count > 0 ? 1 : 0;
            }

            _output.WriteLine($"Exim mailboxes with X-Failed-Recipients: {withRecipient}/{files.Count} gave recipients, {errors} errors");
            Assert.True(files.Count > 50);
            Assert.True(withRecipient >= files.Count * 0.9, $"only {withRecipient} of {files.Count}");
        }
    }
}
