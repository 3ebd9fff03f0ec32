using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using MailOps.Core.Dmarc;
using Xunit;
using Xunit.Abstractions;

namespace MailOps.Core.Tests.Dmarc
{
    /// <summary>
    /// The DMARC corpora (../shared/corpora/dmarc): parsedmarc's samples, dmarc-report-viewer's test reports and
    /// Mail::DMARC's fixture, read in place; and the totals of summary-computed.tsv (computed beside the corpus with a
    /// plain XML reader) for every file it marks well-formed.
    /// </summary>
    public class DmarcCorpusTests
    {
        private const string Aggregate = "dmarc/parsedmarc/samples/aggregate";
        private const string Summary = "dmarc/summary-computed.tsv";
        private readonly ITestOutputHelper _output;

        public DmarcCorpusTests(ITestOutputHelper output)
        {
            _output = output;
        }

        private void Say(string line)
        {
            _output.WriteLine(line);
            Console.WriteLine(line);
        }

        private static string Corpus(string relative) => Corpora.Find(relative)!;

        /// <summary>Reads a file leniently, collecting errors.</summary>
        private static (List<DmarcAggregateReport> Reports, List<DmarcReportException> Errors) ReadAll(string path)
        {
            var errors = new List<DmarcReportException>();
            var reports = DmarcReportReader.ReadPaths(new[] { path }, errors.Add).ToList();
            return (reports, errors);
        }

        [CorpusFact(Aggregate)]
        public void EveryAggregateSampleParsesAsOneReport()
        {
            var files = Directory.GetFiles(Corpus(Aggregate)).OrderBy(f => f, StringComparer.Ordinal).ToList();
            Assert.Equal(19, files.Count);
            foreach (var file in files)
            {
                var (reports, errors) = ReadAll(file);
                Assert.True(errors.Count == 0, $"{Path.GetFileName(file)}: {string.Join("; ", errors.Select(e => e.Message))}");
                var r = Assert.Single(reports);
                Assert.NotEmpty(r.Records);
                Assert.NotEqual("", r.PolicyDomain);
                Assert.All(r.Records, rec => Assert.NotNull(rec.SourceIp));
                Say($"{Path.GetFileName(file)}: {r.OrgName} / {r.ReportId} / {r.PolicyDomain}, {r.Schema}, {r.Records.Count} records, {r.MessageCount} messages"
                    + (r.ParseWarnings.Count > 0 ? " | " + string.Join(" | ", r.ParseWarnings) : ""));
            }
        }

        [CorpusFact(Aggregate + "/invalid_xml.xml")]
        public void InvalidXmlIsRecoveredWithAWarningNamingTheOriginalError()
        {
            var r = Assert.Single(DmarcReportReader.ReadFile(Path.Combine(Corpus(Aggregate), "invalid_xml.xml")));
            Assert.Equal("veeam.com", r.OrgName);
            Assert.Equal("<bad-xml@bad-xml.net>", r.Email);
            Assert.Contains(r.ParseWarnings, w => w.Contains("not well-formed (line 5, column 18: ", StringComparison.Ordinal) && w.Contains("escaping 2 stray", StringComparison.Ordinal));
            Assert.Equal("bad<xml.net", r.Records[0].HeaderFrom);
            Assert.Equal(1, r.MessageCount);
        }

        [CorpusFact(Aggregate + "/invalid_utf_8.xml")]
        public void InvalidUtf8BytesAreReplacedAndSaid()
        {
            var r = Assert.Single(DmarcReportReader.ReadFile(Path.Combine(Corpus(Aggregate), "invalid_utf_8.xml")));
            Assert.Equal("bad_byte\uFFFD", r.Records[0].HeaderFrom);
            Assert.Contains(r.ParseWarnings, w => w.Contains("not valid utf-8", StringComparison.Ordinal) && w.Contains("U+FFFD", StringComparison.Ordinal));
        }

        [CorpusFact(Aggregate + "/ikea.com!example.de!1538690400!1538776800.xml")]
        public void StraySchemaElementBeforeFeedbackIsPassedOver()
        {
            var r = Assert.Single(DmarcReportReader.ReadFile(Path.Combine(Corpus(Aggregate), "ikea.com!example.de!1538690400!1538776800.xml")));
            Assert.Equal("ikea.com", r.OrgName);
            Assert.Equal("aggr_report_2018_10_05_5bc7e9b4f3e8a", r.ReportId);
            Assert.Empty(r.ParseWarnings);
            Assert.Equal("helo", r.Records[0].SpfResults[0].Scope);
        }

        [CorpusFact(Aggregate + "/mimecast-weird-gzip.eml")]
        public void GzipWithTrailingBytesInAMailIsRead()
        {
            var path = Path.Combine(Corpus(Aggregate), "mimecast-weird-gzip.eml");
            var r = Assert.Single(DmarcReportReader.ReadFile(path));
            Assert.Equal("Mimecast", r.OrgName);
            Assert.Equal("ab.id.au", r.PolicyDomain);
            Assert.StartsWith(path + "#mimecast.org!ab.id.au!", r.SourceName, StringComparison.Ordinal);
            Assert.EndsWith(".xml.gz", r.SourceName, StringComparison.Ordinal);
        }

        [CorpusFact(Aggregate + "/rfc9990-sample.xml")]
        public void Rfc9990SampleHasTheFiguresParsedmarcAsserts()
        {
            var r = Assert.Single(DmarcReportReader.ReadFile(Path.Combine(Corpus(Aggregate), "rfc9990-sample.xml")));
            Assert.Equal("Sample Reporter", r.OrgName);
            Assert.Equal(DmarcReportSchema.DmarcBis, r.Schema);
            Assert.Equal("urn:ietf:params:xml:ns:dmarc-2.0", r.Namespace);
            Assert.Equal("1.0", r.Version);
            Assert.Equal("Example DMARC Aggregate Reporter v1.2", r.Generator);
            Assert.Equal("n", r.PolicyPublished.Testing);
            Assert.Equal("treewalk", r.PolicyPublished.DiscoveryMethod);
            Assert.Equal("none", r.PolicyPublished.Np);
            Assert.Equal(new DateTimeOffset(1979, 8, 7, 0, 0, 0, TimeSpan.Zero), r.DateBegin);
            var rec = Assert.Single(r.Records);
            Assert.Equal(123, rec.Count);
            Assert.Equal("192.0.2.123", rec.SourceIp!.ToString());
            Assert.Equal("pass", rec.Disposition);
            Assert.Equal("pass", rec.PolicyDkim);
            Assert.Equal("fail", rec.PolicySpf);
            Assert.True(rec.DmarcPass);
            Assert.True(rec.DkimAligned);
            Assert.False(rec.SpfAligned);
            Assert.Equal("abc123", rec.DkimResults[0].Selector);
            Assert.Equal("Sample Reporter", rec.OrgName);
            Assert.Equal("example.com", rec.PolicyDomain);
        }

        [CorpusFact(Aggregate + "/rfc9990-example.net!example.com!1700000000!1700086399.xml")]
        public void DmarcBisVersionTwoWithoutNamespaceAndAnOverrideReason()
        {
            var r = Assert.Single(DmarcReportReader.ReadFile(Path.Combine(Corpus(Aggregate), "rfc9990-example.net!example.com!1700000000!1700086399.xml")));
            Assert.Equal(DmarcReportSchema.DmarcBis, r.Schema);
            Assert.Equal("", r.Namespace);
            Assert.Equal("y", r.PolicyPublished.Testing);
            var reason = Assert.Single(r.Records[1].PolicyOverrideReasons);
            Assert.Equal("other", reason.Type);
            Assert.Equal("sender not authorized", reason.Comment);
            Assert.Empty(r.Records[1].DkimResults);
            Assert.Equal(2, r.FailingMessageCount);
        }

        [CorpusFact(Aggregate + "/empty_reason.xml")]
        public void AnEmptyOverrideReasonIsNotKept()
        {
            var r = Assert.Single(DmarcReportReader.ReadFile(Path.Combine(Corpus(Aggregate), "empty_reason.xml")));
            Assert.Empty(r.Records[0].PolicyOverrideReasons);
            Assert.Equal("example.net", r.Records[0].EnvelopeTo);
            Assert.Equal("2048-bit key", r.Records[0].DkimResults[0].HumanResult);
        }

        [CorpusFact(Aggregate + "/old_draft_from_wiki.xml")]
        public void TheWikiDraftIsReadAsRfc7489()
        {
            var r = Assert.Single(DmarcReportReader.ReadFile(Path.Combine(Corpus(Aggregate), "old_draft_from_wiki.xml")));
            Assert.Equal(DmarcReportSchema.Rfc7489, r.Schema);
            Assert.Null(r.Records[0].DkimResults[0].HumanResult);
            Assert.Equal("http://acme.com/dmarc/support", r.ExtraContactInfo);
        }

        [CorpusFact("dmarc/parsedmarc/samples/aggregate_invalid/report_with_upper_cased_pass.xml")]
        public void UpperCaseResultWordsAreLowerCased()
        {
            var r = Assert.Single(DmarcReportReader.ReadFile(Corpus("dmarc/parsedmarc/samples/aggregate_invalid/report_with_upper_cased_pass.xml")));
            var rec = Assert.Single(r.Records);
            Assert.Equal("none", rec.Disposition);
            Assert.Equal("pass", rec.PolicyDkim);
            Assert.Equal("pass", rec.PolicySpf);
            Assert.Equal("pass", rec.DkimResults[0].Result);
            Assert.Equal("pass", rec.SpfResults[0].Result);
            Assert.True(rec.DmarcPass);
            Assert.Equal("example.com", r.OrgName); // trimmed ("example.com ")
        }

        [CorpusFact("dmarc/parsedmarc/samples/empty.xml")]
        public void EmptyFileIsRefused()
        {
            var path = Corpus("dmarc/parsedmarc/samples/empty.xml");
            var e = Assert.Throws<DmarcReportException>(() => DmarcReportReader.ReadFile(path));
            Assert.Equal(DmarcReportErrorKind.Invalid, e.Kind);
            Assert.Equal(path, e.SourceName);
            Assert.Contains("empty", e.Message, StringComparison.Ordinal);
        }

        [CorpusFact("dmarc/parsedmarc/samples/failure")]
        public void FailureAndTlsReportsAreRefusedSayingWhatTheyAre()
        {
            foreach (var file in Directory.GetFiles(Corpus("dmarc/parsedmarc/samples/failure")))
            {
                var (reports, errors) = ReadAll(file);
                Assert.Empty(reports);
                var e = Assert.Single(errors);
                Say($"{Path.GetFileName(file)}: {e.Problem}");
                Assert.Equal(DmarcReportErrorKind.Invalid, e.Kind);
            }

            foreach (var file in Directory.GetFiles(Corpus("dmarc/parsedmarc/samples/smtp_tls")))
            {
                var (reports, errors) = ReadAll(file);
                Assert.Empty(reports);
                var e = Assert.Single(errors);
                Say($"{Path.GetFileName(file)}: {e.Problem}");
                Assert.Contains("TLS", e.Problem, StringComparison.Ordinal);
            }
        }

        [CorpusFact("dmarc/parsedmarc/samples/extract_report")]
        public void ExtractReportSamplesAreTheSameReportInEachPacking()
        {
            var dir = Corpus("dmarc/parsedmarc/samples/extract_report");
            var xml = Assert.Single(DmarcReportReader.ReadFile(Path.Combine(dir, "nice-input.xml")));
            var gz = Assert.Single(DmarcReportReader.ReadFile(Path.Combine(dir, "nice-input.xml.gz")));
            var zip = Assert.Single(DmarcReportReader.ReadFile(Path.Combine(dir, "nice-input.xml.zip")));
            var changed = Assert.Single(DmarcReportReader.ReadFile(Path.Combine(dir, "changed-input.xml")));
            Assert.Equal(Fingerprint(xml), Fingerprint(gz));
            Assert.Equal(Fingerprint(xml), Fingerprint(zip));
            Assert.NotEqual(Fingerprint(xml), Fingerprint(changed));
            Assert.Equal("google.com", xml.OrgName);
            Assert.Equal("fred.com", changed.OrgName);
            Assert.Equal(20, xml.Records.Count);
            Assert.Equal(3047, xml.MessageCount);
        }

        [CorpusFact("dmarc/mail-dmarc/t/fixtures/test_dmarc.xml")]
        public void MailDmarcFixtureGivesIdenticalReportsAsXmlGzipAndZip()
        {
            var dir = Corpus("dmarc/mail-dmarc/t/fixtures");
            var prints = new[] { "test_dmarc.xml", "test_dmarc.xml.gz", "test_dmarc.xml.zip" }
                .Select(f => Fingerprint(Assert.Single(DmarcReportReader.ReadFile(Path.Combine(dir, f))))).ToList();
            Assert.Equal(prints[0], prints[1]);
            Assert.Equal(prints[0], prints[2]);
            Assert.Contains("Test Sender|1234567890|example.com", prints[0], StringComparison.Ordinal);
            // the zip's one entry has an empty name: read by its content
            var zip = Assert.Single(DmarcReportReader.ReadFile(Path.Combine(dir, "test_dmarc.xml.zip")));
            Assert.EndsWith("#(unnamed entry)", zip.SourceName, StringComparison.Ordinal);
        }

        [CorpusFact("dmarc/dmarc-report-viewer/testdata/dmarc-reports")]
        public void EveryReportViewerSampleParses()
        {
            var files = Directory.GetFiles(Corpus("dmarc/dmarc-report-viewer/testdata/dmarc-reports")).OrderBy(f => f, StringComparer.Ordinal).ToList();
            Assert.Equal(10, files.Count);
            foreach (var file in files)
            {
                var (reports, errors) = ReadAll(file);
                Assert.Empty(errors);
                var r = Assert.Single(reports);
                Assert.Empty(r.ParseWarnings);
                Say($"{Path.GetFileName(file)}: {r.OrgName} {r.PolicyDomain} {r.Schema} {r.Records.Count} records");
            }

            Assert.Equal(DmarcReportSchema.DmarcBis, Assert.Single(DmarcReportReader.ReadFile(files.Single(f => f.EndsWith("gmxnet.xml", StringComparison.Ordinal)))).Schema);
            Assert.Equal(DmarcReportSchema.DmarcBis, Assert.Single(DmarcReportReader.ReadFile(files.Single(f => f.EndsWith("webde.xml", StringComparison.Ordinal)))).Schema);
            // Google's RFC 7489 reports carry DMARCbis' <np> already: read, and still RFC 7489
            var google = Assert.Single(DmarcReportReader.ReadFile(files.Single(f => f.EndsWith("google.xml", StringComparison.Ordinal))));
            Assert.Equal(DmarcReportSchema.Rfc7489, google.Schema);
            Assert.Equal("reject", google.PolicyPublished.Np);
        }

        [CorpusFact("dmarc/parsedmarc/samples/aggregate/!large-example.com!1711897200!1711983600.xml")]
        public void TheLargeSampleHasAllItsRecords()
        {
            var r = Assert.Single(DmarcReportReader.ReadFile(Corpus("dmarc/parsedmarc/samples/aggregate/!large-example.com!1711897200!1711983600.xml")));
            Assert.Equal(2286, r.Records.Count);
            Assert.Equal(2286, r.MessageCount);
            Assert.Equal(2286, r.Records.Select(x => x.SourceIp).Distinct().Count());
            Assert.Equal("", r.OrgName);
            Assert.Empty(r.ParseWarnings);
        }

        [CorpusFact("dmarc/parsedmarc/samples/aggregate/!large-example.com!1711897200!1711983600.xml")]
        public void ReadingStopsWhenCancelled()
        {
            var path = Corpus("dmarc/parsedmarc/samples/aggregate/!large-example.com!1711897200!1711983600.xml");
            using (var cancelled = new CancellationTokenSource())
            {
                cancelled.Cancel();
                Assert.ThrowsAny<OperationCanceledException>(() => DmarcReportReader.ReadFile(path, cancelled.Token));
            }

            // cancelled while the paths are being read: the enumeration stops, nothing more is yielded
            using (var cts = new CancellationTokenSource())
            {
                var seen = 0;
                var errors = new List<DmarcReportException>();
                Assert.ThrowsAny<OperationCanceledException>(() =>
                {
                    foreach (var unused in DmarcReportReader.ReadPaths(new[] { Corpus(Aggregate) }, errors.Add, cts.Token))
                    {
                        seen++;
                        cts.Cancel();
                    }
                });
                Assert.Equal(1, seen);
                Assert.Empty(errors);
            }
        }

        [CorpusFact(Summary)]
        public void TotalsAgreeWithSummaryComputedForEveryWellFormedFile()
        {
            var root = Corpus("dmarc");
            var lines = File.ReadAllLines(Path.Combine(root, "summary-computed.tsv"));
            var header = lines[0].Split('\t').ToList();
            int Col(string name)
            {
                var i = header.IndexOf(name);
                Assert.True(i >= 0, $"summary-computed.tsv has no column {name}");
                return i;
            }

            int file = Col("file"), status = Col("parse_status"), org = Col("org_name"), id = Col("report_id"), domain = Col("policy_domain"), p = Col("policy_p"),
                begin = Col("date_begin"), end = Col("date_end"), records = Col("records"), total = Col("total_message_count"),
                byDisposition = Col("count_by_disposition"), byResults = Col("count_by_policy_evaluated_dkim_spf"), ips = Col("distinct_source_ips");
            var compared = 0;
            var notWellFormed = new List<string>();
            foreach (var line in lines.Skip(1).Where(l => l.Length > 0))
            {
                var c = line.Split('\t');
                var path = Path.Combine(root, c[file]);
                if (!c[status].StartsWith("ok", StringComparison.Ordinal) && !c[status].StartsWith("recovered", StringComparison.Ordinal))
                {
                    notWellFormed.Add($"{c[file]} ({c[status]})");
                    continue;
                }

                var (reports, errors) = ReadAll(path);
                Assert.True(errors.Count == 0, $"{c[file]}: {string.Join("; ", errors.Select(e => e.Message))}");
                var r = Assert.Single(reports);
                var where = c[file] + ": ";
                Assert.Equal(where + c[org], where + r.OrgName);
                Assert.Equal(where + c[id], where + r.ReportId);
                Assert.Equal(where + c[domain], where + r.PolicyDomain);
                Assert.Equal(where + c[p], where + r.PolicyPublished.P);
                Assert.Equal(where + c[begin], where + r.DateBegin.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture));
                Assert.Equal(where + c[end], where + r.DateEnd.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture));
                Assert.Equal(where + c[records], where + r.Records.Count.ToString(CultureInfo.InvariantCulture));
                Assert.Equal(where + c[total], where + r.MessageCount.ToString(CultureInfo.InvariantCulture));
                // the summary keeps the words as written ("None", "Pass"); MailOps lower-cases them
                var dispositions = string.Join(";", r.Records.GroupBy(x => x.Disposition).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key}={g.Sum(x => x.Count)}"));
                Assert.Equal(where + c[byDisposition].ToLowerInvariant(), where + dispositions);
                var results = string.Join(";", r.Records.GroupBy(x => $"dkim:{x.PolicyDkim}/spf:{x.PolicySpf}").OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key}={g.Sum(x => x.Count)}"));
                Assert.Equal(where + c[byResults].ToLowerInvariant(), where + results);
                Assert.Equal(where + c[ips], where + r.Records.Select(x => x.SourceIp).Distinct().Count().ToString(CultureInfo.InvariantCulture));
                compared++;
            }

            Say($"summary-computed.tsv: totals agree for {compared} well-formed files; not compared (not well-formed there): {string.Join(", ", notWellFormed)}");
            Assert.Equal(35, compared);
            Assert.Equal(3, notWellFormed.Count);
        }

        /// <summary>Everything a report says, as one string (the source name apart).</summary>
        internal static string Fingerprint(DmarcAggregateReport r)
        {
            var p = r.PolicyPublished;
            var head = string.Join("|", r.OrgName, r.ReportId, r.PolicyDomain, r.Email, r.ExtraContactInfo, r.DateBegin.ToUnixTimeSeconds(), r.DateEnd.ToUnixTimeSeconds(),
                r.Version, r.Namespace, r.Schema, p.P, p.Sp, p.Np, p.Pct, p.Adkim, p.Aspf, p.Fo, p.Testing, p.DiscoveryMethod, string.Join(",", r.Errors), string.Join(",", r.ParseWarnings));
            var rows = r.Records.Select(x => string.Join("|", x.SourceIp, x.Count, x.Disposition, x.PolicyDkim, x.PolicySpf, x.HeaderFrom, x.EnvelopeFrom, x.EnvelopeTo,
                string.Join(",", x.PolicyOverrideReasons), string.Join(",", x.DkimResults.Select(d => d + "/" + d.HumanResult)), string.Join(",", x.SpfResults.Select(s => s + "/" + s.HumanResult))));
            return head + "\n" + string.Join("\n", rows);
        }
    }
}
