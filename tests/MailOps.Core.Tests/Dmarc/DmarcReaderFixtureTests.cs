using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text;
using MailOps.Core.Dmarc;
using MimeKit;
using Xunit;

namespace MailOps.Core.Tests.Dmarc
{
    /// <summary>Reports written by the tests: each packing, each mail shape, line ends, encodings and broken input.</summary>
    public sealed class DmarcReaderFixtureTests : IDisposable
    {
        private readonly string _dir = Path.Combine(Path.GetTempPath(), "mailops-dmarc-" + Guid.NewGuid().ToString("N").Substring(0, 8));

        public DmarcReaderFixtureTests()
        {
            Directory.CreateDirectory(_dir);
        }

        public void Dispose() => Directory.Delete(_dir, true);

        /// <summary>An RFC 7489 report; rows are (ip, count, disposition, dkim, spf).</summary>
        internal static string ReportXml(string org, string id, params (string Ip, int Count, string Disposition, string Dkim, string Spf)[] rows)
        {
            var sb = new StringBuilder();
            sb.Append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n  <report_metadata>\n");
            sb.Append($"    <org_name>{org}</org_name>\n    <email>dmarc@{org}</email>\n    <report_id>{id}</report_id>\n");
            sb.Append("    <date_range>\n      <begin>1767225600</begin>\n      <end>1767311999</end>\n    </date_range>\n  </report_metadata>\n");
            sb.Append("  <policy_published>\n    <domain>lab.test</domain>\n    <adkim>r</adkim>\n    <aspf>r</aspf>\n    <p>reject</p>\n    <sp>reject</sp>\n    <pct>100</pct>\n  </policy_published>\n");
            foreach (var r in rows)
            {
                sb.Append("  <record>\n    <row>\n");
                sb.Append($"      <source_ip>{r.Ip}</source_ip>\n      <count>{r.Count}</count>\n");
                sb.Append($"      <policy_evaluated>\n        <disposition>{r.Disposition}</disposition>\n        <dkim>{r.Dkim}</dkim>\n        <spf>{r.Spf}</spf>\n      </policy_evaluated>\n    </row>\n");
                sb.Append("    <identifiers>\n      <header_from>lab.test</header_from>\n    </identifiers>\n");
                sb.Append($"    <auth_results>\n      <dkim>\n        <domain>lab.test</domain>\n        <selector>mailops</selector>\n        <result>{r.Dkim}</result>\n      </dkim>\n");
                sb.Append($"      <spf>\n        <domain>lab.test</domain>\n        <scope>mfrom</scope>\n        <result>{r.Spf}</result>\n      </spf>\n    </auth_results>\n  </record>\n");
            }

            sb.Append("</feedback>\n");
            return sb.ToString();
        }

        private static readonly string Sample = ReportXml("receiver.test", "r-1", ("192.0.2.10", 7, "none", "pass", "fail"), ("2001:db8::25", 3, "reject", "fail", "fail"));

        internal static byte[] Gzip(byte[] data)
        {
            using var ms = new MemoryStream();
            using (var gz = new GZipStream(ms, CompressionLevel.Optimal, leaveOpen: true))
            {
                gz.Write(data, 0, data.Length);
            }

            return ms.ToArray();
        }

        internal static byte[] Zip(params (string Name, byte[] Data)[] entries)
        {
            using var ms = new MemoryStream();
            using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
            {
                foreach (var (name, data) in entries)
                {
                    using var s = zip.CreateEntry(name).Open();
                    s.Write(data, 0, data.Length);
                }
            }

            return ms.ToArray();
        }

        private string Write(string name, byte[] data)
        {
            var path = Path.Combine(_dir, name);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, data);
            return path;
        }

        private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

        private static MimeMessage Mail(params MimeEntity[] attachments)
        {
            var m = new MimeMessage();
            m.From.Add(MailboxAddress.Parse("dmarc@receiver.test"));
            m.To.Add(MailboxAddress.Parse("rua@lab.test"));
            m.Subject = "Report domain: lab.test Submitter: receiver.test Report-ID: r-1";
            var mixed = new Multipart("mixed") { new TextPart("plain") { Text = "This is an aggregate report." } };
            foreach (var a in attachments)
            {
                mixed.Add(a);
            }

            m.Body = mixed;
            return m;
        }

        private static MimePart Attachment(string type, string name, byte[] data) => new MimePart(type)
        {
            Content = new MimeContent(new MemoryStream(data)),
            ContentDisposition = new ContentDisposition(ContentDisposition.Attachment),
            ContentTransferEncoding = ContentEncoding.Base64,
            FileName = name,
        };

        private static byte[] Bytes(MimeMessage m, NewLineFormat newLine)
        {
            using var ms = new MemoryStream();
            m.WriteTo(new FormatOptions { NewLineFormat = newLine }, ms);
            return ms.ToArray();
        }

        private static DmarcAggregateReport Single(string path) => Assert.Single(DmarcReportReader.ReadFile(path));

        [Fact]
        public void PlainXmlIsReadWithItsRecords()
        {
            var r = Single(Write("plain.xml", Utf8(Sample)));
            Assert.Equal("receiver.test", r.OrgName);
            Assert.Equal("r-1", r.ReportId);
            Assert.Equal(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero), r.DateBegin);
            Assert.Equal(TimeSpan.Zero, r.DateBegin.Offset);
            Assert.Equal(2, r.Records.Count);
            Assert.Equal(10, r.MessageCount);
            Assert.Equal(3, r.FailingMessageCount);
            Assert.Equal("2001:db8::25", r.Records[1].SourceIp!.ToString());
            Assert.Equal(DmarcReportSchema.Rfc7489, r.Schema);
            Assert.Empty(r.ParseWarnings);
            Assert.Equal("r-1", r.Records[1].ReportId);
            Assert.Equal("mailops", r.Records[0].DkimResults[0].Selector);
        }

        [Fact]
        public void GzipIsRecognisedByItsBytesNotItsName()
        {
            var asText = Single(Write("report.txt", Gzip(Utf8(Sample))));
            var xmlNamedGz = Single(Write("really-xml.xml.gz", Utf8(Sample)));
            var plain = Single(Write("plain.xml", Utf8(Sample)));
            Assert.Equal(DmarcCorpusTests.Fingerprint(plain), DmarcCorpusTests.Fingerprint(asText));
            Assert.Equal(DmarcCorpusTests.Fingerprint(plain), DmarcCorpusTests.Fingerprint(xmlNamedGz));
        }

        [Fact]
        public void BytesAfterTheGzipMemberAreIgnored()
        {
            var garbage = Enumerable.Range(0, 300).Select(i => (byte)(i * 7)).ToArray();
            var gz = Gzip(Utf8(Sample)).Concat(new byte[] { 13, 10 }).Concat(garbage).ToArray();
            var r = Single(Write("trailing.xml.gz", gz));
            Assert.Equal(10, r.MessageCount);
        }

        [Fact]
        public void DamagedGzipIsInvalid()
        {
            var gz = Gzip(Utf8(Sample));
            for (var i = 20; i < 60; i++)
            {
                gz[i] ^= 0x5a;
            }

            var e = Assert.Throws<DmarcReportException>(() => DmarcReportReader.ReadFile(Write("damaged.xml.gz", gz)));
            Assert.Equal(DmarcReportErrorKind.Invalid, e.Kind);
        }

        [Fact]
        public void ZipGivesEveryReportEntryAndSkipsOtherFiles()
        {
            var second = ReportXml("receiver.test", "r-2", ("198.51.100.1", 1, "none", "pass", "pass"));
            var path = Write("two.zip", Zip(("README.txt", Utf8("not a report")), ("a.xml", Utf8(Sample)), ("b.xml.gz", Gzip(Utf8(second)))));
            var reports = DmarcReportReader.ReadFile(path);
            Assert.Equal(new[] { "r-1", "r-2" }, reports.Select(r => r.ReportId));
            Assert.Equal(path + "#a.xml", reports[0].SourceName);
            Assert.Equal(path + "#b.xml.gz", reports[1].SourceName);

            var none = Write("none.zip", Zip(("README.txt", Utf8("not a report"))));
            var e = Assert.Throws<DmarcReportException>(() => DmarcReportReader.ReadFile(none));
            Assert.Contains("no XML entry", e.Message, StringComparison.Ordinal);
        }

        [Theory]
        [InlineData(NewLineFormat.Dos)]
        [InlineData(NewLineFormat.Unix)]
        public void MailWithAZipAttachmentIsRead(NewLineFormat newLine)
        {
            var mail = Mail(Attachment("application/zip", "receiver.test!lab.test!1767225600!1767311999.zip", Zip(("receiver.test!lab.test!1767225600!1767311999.xml", Utf8(Sample)))));
            var path = Write($"zip-{newLine}.eml", Bytes(mail, newLine));
            var r = Single(path);
            Assert.Equal(path + "#receiver.test!lab.test!1767225600!1767311999.zip#receiver.test!lab.test!1767225600!1767311999.xml", r.SourceName);
            Assert.Equal(DmarcCorpusTests.Fingerprint(Single(Write("plain.xml", Utf8(Sample)))), DmarcCorpusTests.Fingerprint(r));
        }

        [Fact]
        public void OctetStreamNamedXmlGzAndAGzipBodyAreRead()
        {
            var octet = Mail(Attachment("application/octet-stream", "report.xml.gz", Gzip(Utf8(Sample))));
            Assert.Equal("r-1", Single(Write("octet.eml", Bytes(octet, NewLineFormat.Dos))).ReportId);

            // the whole body is the report (Mimecast, some others)
            var bodyOnly = new MimeMessage { Subject = "Report" };
            bodyOnly.From.Add(MailboxAddress.Parse("dmarc@receiver.test"));
            bodyOnly.Body = Attachment("application/gzip", "report.xml.gz", Gzip(Utf8(Sample)));
            Assert.Equal("r-1", Single(Write("body.eml", Bytes(bodyOnly, NewLineFormat.Unix))).ReportId);

            // an unrelated octet-stream (a PDF) beside a report is not an error
            var pdf = Mail(Attachment("application/octet-stream", null!, Utf8("%PDF-1.4 ...")), Attachment("text/xml", "r.xml", Utf8(Sample)));
            var errors = new List<DmarcReportException>();
            var reports = DmarcReportReader.ReadPaths(new[] { Write("pdf.eml", Bytes(pdf, NewLineFormat.Dos)) }, errors.Add).ToList();
            Assert.Single(reports);
            Assert.Empty(errors);
        }

        [Fact]
        public void ABrokenAttachmentIsAnErrorAndTheOthersAreStillRead()
        {
            var mail = Mail(
                Attachment("text/xml", "good.xml", Utf8(Sample)),
                Attachment("application/gzip", "bad.xml.gz", Utf8("<feedback><report_metadata>")),
                Attachment("application/zip", "second.zip", Zip(("second.xml", Utf8(ReportXml("other.test", "r-9", ("203.0.113.5", 2, "quarantine", "fail", "fail")))))));
            var path = Write("mixed.eml", Bytes(mail, NewLineFormat.Dos));
            var errors = new List<DmarcReportException>();
            var reports = DmarcReportReader.ReadPaths(new[] { path }, errors.Add).ToList();
            Assert.Equal(new[] { "r-1", "r-9" }, reports.Select(r => r.ReportId));
            var e = Assert.Single(errors);
            Assert.Equal(path + "#bad.xml.gz", e.SourceName);
            Assert.Equal(DmarcReportErrorKind.Invalid, e.Kind);
            Assert.NotNull(e.LineNumber);

            // ReadFile is strict: the first problem is thrown
            Assert.Throws<DmarcReportException>(() => DmarcReportReader.ReadFile(path));
        }

        [Fact]
        public void AMailWithoutReportIsRefusedSayingSo()
        {
            var path = Write("hello.eml", Bytes(Mail(), NewLineFormat.Dos));
            var e = Assert.Throws<DmarcReportException>(() => DmarcReportReader.ReadFile(path));
            Assert.Contains("no XML, gzip or zip part", e.Message, StringComparison.Ordinal);

            var m = Mail();
            var reports = DmarcReportReader.ReadMessage(m, "imap://x/INBOX#1", _ => throw new InvalidOperationException("no error expected"), out var whyNone);
            Assert.Empty(reports);
            Assert.Contains("no XML, gzip or zip part", whyNone, StringComparison.Ordinal);
        }

        [Fact]
        public void AnMboxOfReportMailsGivesEachMessagesReports()
        {
            var one = Bytes(Mail(Attachment("text/xml", "one.xml", Utf8(Sample))), NewLineFormat.Unix);
            var two = Bytes(Mail(Attachment("application/gzip", "two.xml.gz", Gzip(Utf8(ReportXml("x.test", "r-2", ("192.0.2.1", 1, "none", "pass", "pass")))))), NewLineFormat.Unix);
            var mbox = Utf8("From dmarc@receiver.test Thu Jan  1 00:00:00 2026\n").Concat(one).Concat(Utf8("\nFrom dmarc@x.test Thu Jan  1 00:00:01 2026\n")).Concat(two).Concat(Utf8("\n")).ToArray();
            var path = Write("reports.mbox", mbox);
            var reports = DmarcReportReader.ReadFile(path);
            Assert.Equal(new[] { "r-1", "r-2" }, reports.Select(r => r.ReportId));
            Assert.Equal(path + "#1#one.xml", reports[0].SourceName);
            Assert.Equal(path + "#2#two.xml.gz", reports[1].SourceName);
        }

        [Fact]
        public void LineEndsAndAByteOrderMarkDoNotChangeTheReport()
        {
            var lf = DmarcCorpusTests.Fingerprint(Single(Write("lf.xml", Utf8(Sample))));
            Assert.Equal(lf, DmarcCorpusTests.Fingerprint(Single(Write("crlf.xml", Utf8(Sample.Replace("\n", "\r\n"))))));
            Assert.Equal(lf, DmarcCorpusTests.Fingerprint(Single(Write("cr.xml", Utf8(Sample.Replace("\n", "\r"))))));
            Assert.Equal(lf, DmarcCorpusTests.Fingerprint(Single(Write("bom.xml", new byte[] { 0xef, 0xbb, 0xbf }.Concat(Utf8(Sample)).ToArray()))));
            Assert.Equal(lf, DmarcCorpusTests.Fingerprint(Single(Write("crlf.xml.gz", Gzip(Utf8(Sample.Replace("\n", "\r\n")))))));
        }

        [Fact]
        public void Utf16AndADeclaredLatin1AreDecoded()
        {
            var org = "Soci\u00e9t\u00e9 G\u00e9n\u00e9rale";
            var xml = ReportXml(org, "r-1", ("192.0.2.10", 1, "none", "pass", "pass"));
            var utf16 = Encoding.Unicode.GetPreamble().Concat(Encoding.Unicode.GetBytes(xml.Replace("UTF-8", "UTF-16"))).ToArray();
            Assert.Equal(org, Single(Write("utf16.xml", utf16)).OrgName);
            var latin1 = Encoding.GetEncoding("iso-8859-1").GetBytes(xml.Replace("UTF-8", "ISO-8859-1"));
            var r = Single(Write("latin1.xml", latin1));
            Assert.Equal(org, r.OrgName);
            Assert.Empty(r.ParseWarnings);
            // windows-1252 (a code page .NET Core only has through CodePagesEncodingProvider): the euro sign is 0x80
            var cp1252 = ReportXml("Caf\u00e9 \u20ac", "r-1", ("192.0.2.10", 1, "none", "pass", "pass")).Replace("UTF-8", "windows-1252");
            var euro = Single(Write("cp1252.xml", CodePagesEncodingProvider.Instance.GetEncoding(1252)!.GetBytes(cp1252)));
            Assert.Equal("Caf\u00e9 \u20ac", euro.OrgName);
            Assert.Empty(euro.ParseWarnings);
            // an encoding nobody knows: read as UTF-8, said
            var unknown = Single(Write("unknown.xml", Utf8(xml.Replace("UTF-8", "x-no-such-charset"))));
            Assert.Equal(org, unknown.OrgName);
            Assert.Contains(unknown.ParseWarnings, w => w.Contains("'x-no-such-charset'", StringComparison.Ordinal));
            // the same bytes declared as UTF-8: the é bytes are not UTF-8, replaced and said
            var wrong = Single(Write("wrong.xml", Encoding.GetEncoding("iso-8859-1").GetBytes(xml)));
            Assert.Equal("Soci\uFFFDt\uFFFD G\uFFFDn\uFFFDrale", wrong.OrgName);
            Assert.Contains(wrong.ParseWarnings, w => w.Contains("U+FFFD", StringComparison.Ordinal));
        }

        [Fact]
        public void XmlThatCannotBeRepairedGivesTheFileLineAndColumn()
        {
            var broken = Sample.Replace("</row>", "</rowx>");
            var path = Write("broken.xml", Utf8(broken));
            var e = Assert.Throws<DmarcReportException>(() => DmarcReportReader.ReadFile(path));
            Assert.Equal(DmarcReportErrorKind.Invalid, e.Kind);
            Assert.Equal(path, e.SourceName);
            Assert.Equal(29, e.LineNumber);
            Assert.NotNull(e.LinePosition);
            Assert.StartsWith(path + ": not well-formed XML at line 29, column ", e.Message, StringComparison.Ordinal);
        }

        [Fact]
        public void StrayAmpersandAndLessThanAreRepairedWithAWarning()
        {
            var path = Write("amp.xml", Utf8(Sample.Replace("<org_name>receiver.test</org_name>", "<org_name>Smith & Sons <smith@x.test></org_name>")));
            var r = Single(path);
            Assert.Equal("Smith & Sons <smith@x.test>", r.OrgName);
            Assert.Contains(r.ParseWarnings, w => w.StartsWith("the XML is not well-formed (line 4, column ", StringComparison.Ordinal) && w.Contains("escaping 2 stray", StringComparison.Ordinal));
            Assert.Equal(10, r.MessageCount);
        }

        [Theory]
        [InlineData("<html><body>hello</body></html>", "no <feedback> element (the document is <html>)")]
        [InlineData("<feedback/>", "<feedback> has no report_metadata")]
        [InlineData("<feedback><version>1.0</version></feedback>", "<feedback> has no report_metadata")]
        [InlineData("   \r\n  ", "empty")]
        [InlineData("{\"organization-name\": \"x\"}", "JSON")]
        [InlineData("\u0001\u0002binary", "neither XML, gzip, zip nor a mail message")]
        public void WhatIsNotAReportIsRefusedWithAClearMessage(string content, string expected)
        {
            var e = Assert.Throws<DmarcReportException>(() => DmarcReportReader.ReadFile(Write("not.xml", Utf8(content))));
            Assert.Equal(DmarcReportErrorKind.Invalid, e.Kind);
            Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        }

        [Fact]
        public void NoExternalEntityIsResolved()
        {
            var xml = Sample.Replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "<?xml version=\"1.0\"?><!DOCTYPE feedback [<!ENTITY x SYSTEM \"file:///etc/hostname\">]>")
                .Replace("<org_name>receiver.test</org_name>", "<org_name>&x;</org_name>");
            var path = Write("xxe.xml", Utf8(xml));
            try
            {
                var r = Single(path);
                Assert.DoesNotContain(File.Exists("/etc/hostname") ? File.ReadAllText("/etc/hostname").Trim() : "\u0000", r.OrgName, StringComparison.Ordinal);
            }
            catch (DmarcReportException e)
            {
                Assert.Equal(DmarcReportErrorKind.Invalid, e.Kind);
            }
        }

        [Fact]
        public void ReadPathsReportsEachProblemAndCarriesOn()
        {
            Write("folder/1-good.xml", Utf8(Sample));
            Write("folder/2-broken.xml", Utf8("<feedback><report_metadata><org_name>x</org_name>"));
            Write("folder/3-empty.xml", Array.Empty<byte>());
            Write("folder/sub/4-good.xml.gz", Gzip(Utf8(ReportXml("r.test", "r-4", ("192.0.2.4", 4, "none", "pass", "pass")))));
            var missing = Path.Combine(_dir, "missing.xml");
            var errors = new List<DmarcReportException>();
            var reports = DmarcReportReader.ReadPaths(new[] { Path.Combine(_dir, "folder"), missing, Path.Combine(_dir, "folder/1-good.xml") }, errors.Add).ToList();
            Assert.Equal(new[] { "r-1", "r-4", "r-1" }, reports.Select(r => r.ReportId));
            Assert.Equal(3, errors.Count);
            Assert.EndsWith("2-broken.xml", errors[0].SourceName, StringComparison.Ordinal);
            Assert.Equal(DmarcReportErrorKind.Invalid, errors[0].Kind);
            Assert.EndsWith("3-empty.xml", errors[1].SourceName, StringComparison.Ordinal);
            Assert.Equal(missing, errors[2].SourceName);
            Assert.Equal(DmarcReportErrorKind.Unreadable, errors[2].Kind);
        }

        [Fact]
        public void AStreamThatCannotSeekIsRead()
        {
            using var s = new OneWayStream(Gzip(Utf8(Sample)));
            var r = Assert.Single(DmarcReportReader.Read(s, "stdin"));
            Assert.Equal("stdin", r.SourceName);
            Assert.Equal(10, r.MessageCount);
        }

        [Fact]
        public void ManyRecordsAreReadRecordByRecord()
        {
            var rows = Enumerable.Range(0, 20000).Select(i => ($"10.{i / 65536}.{i / 256 % 256}.{i % 256}", 1 + (i % 5), i % 3 == 0 ? "quarantine" : "none", i % 2 == 0 ? "pass" : "fail", "fail")).ToArray();
            var path = Write("big.xml.gz", Gzip(Utf8(ReportXml("big.test", "big", rows))));
            var r = Single(path);
            Assert.Equal(20000, r.Records.Count);
            Assert.Equal(rows.Sum(x => (long)x.Item2), r.MessageCount);
        }

        private sealed class OneWayStream : MemoryStream
        {
            public OneWayStream(byte[] data) : base(data)
            {
            }

            public override bool CanSeek => false;
        }
    }
}
