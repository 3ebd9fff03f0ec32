using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text;
using System.Xml.Linq;
using MailOps.Core.Dmarc;

namespace MailOps.Bench.Dmarc
{
    /// <summary>
    /// generate &lt;folder&gt; &lt;count&gt; &lt;corpus dmarc folder&gt; [seed]: count reports made from the corpus' well-formed
    /// plain XML samples (report ids, source addresses, counts and number of records varied), written in turn as .xml,
    /// .xml.gz and .zip; prints the totals a reader must find.
    /// read &lt;folder&gt;: MailOps.Core's DmarcReportReader over the folder, one line of totals, then the seconds it took.
    /// </summary>
    internal static class Program
    {
        private static int Main(string[] args)
        {
            if (args.Length >= 4 && args[0] == "generate")
            {
                var seed = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 1;
                Generate(args[1], int.Parse(args[2], CultureInfo.InvariantCulture), args[3], seed);
                return 0;
            }

            if (args.Length >= 2 && args[0] == "read")
            {
                var sw = Stopwatch.StartNew();
                long reports = 0, records = 0, messages = 0;
                var errors = 0;
                foreach (var r in DmarcReportReader.ReadPaths(new[] { args[1] }, e =>
                {
                    errors++;
                    Console.Error.WriteLine(e.Message);
                }))
                {
                    reports++;
                    records += r.Records.Count;
                    messages += r.MessageCount;
                }

                Console.WriteLine($"reports={reports};records={records};messages={messages};errors={errors}");
                Console.WriteLine($"seconds={sw.Elapsed.TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture)}");
                return errors == 0 ? 0 : 1;
            }

            Console.Error.WriteLine("usage: generate <folder> <count> <corpus dmarc folder> [seed] | read <folder>");
            return 2;
        }

        private static void Generate(string folder, int count, string corpus, int seed)
        {
            // the corpus' well-formed plain XML reports (the broken ones and the 2,286-record one left out)
            var templates = Directory.GetFiles(Path.Combine(corpus, "parsedmarc", "samples", "aggregate"), "*.xml")
                .Concat(Directory.GetFiles(Path.Combine(corpus, "dmarc-report-viewer", "testdata", "dmarc-reports"), "*.xml"))
                .Concat(new[] { Path.Combine(corpus, "parsedmarc", "samples", "extract_report", "nice-input.xml") })
                .Where(f => !Path.GetFileName(f).StartsWith("invalid", StringComparison.Ordinal) && !Path.GetFileName(f).StartsWith("!large", StringComparison.Ordinal))
                .OrderBy(f => f, StringComparer.Ordinal)
                .Select(Load).Where(d => d != null).Select(d => d!).ToList();
            if (templates.Count == 0)
            {
                throw new InvalidOperationException("no template report in " + corpus);
            }

            Directory.CreateDirectory(folder);
            var random = new Random(seed);
            long records = 0, messages = 0, bytes = 0;
            for (var i = 0; i < count; i++)
            {
                var doc = new XDocument(templates[i % templates.Count]);
                var feedback = doc.Root!;
                foreach (var id in feedback.Descendants().Where(e => e.Name.LocalName == "report_id"))
                {
                    id.Value = $"bench-{seed}-{i}";
                }

                var template = feedback.Elements().Where(e => e.Name.LocalName == "record").ToList();
                var wanted = 1 + random.Next(40);
                var last = template[template.Count - 1];
                for (var k = template.Count; k < wanted; k++)
                {
                    var copy = new XElement(template[k % template.Count]);
                    last.AddAfterSelf(copy);
                    last = copy;
                }

                var all = feedback.Elements().Where(e => e.Name.LocalName == "record").ToList();
                for (var k = 0; k < all.Count; k++)
                {
                    var row = all[k].Elements().First(e => e.Name.LocalName == "row");
                    row.Elements().First(e => e.Name.LocalName == "source_ip").Value = random.Next(3) == 0
                        ? $"2001:db8:{i:x}::{k + 1:x}"
                        : $"10.{i / 65536 % 256}.{i / 256 % 256}.{(i + k) % 256}";
                    var n = 1 + random.Next(500);
                    row.Elements().First(e => e.Name.LocalName == "count").Value = n.ToString(CultureInfo.InvariantCulture);
                    messages += n;
                }

                records += all.Count;
                var xml = Encoding.UTF8.GetBytes(doc.Declaration + "\n" + doc.ToString(SaveOptions.DisableFormatting));
                var name = Path.Combine(folder, $"receiver{i % 97}.test!example.com!{1767225600 + 86400 * (i / 97)}!bench-{i}");
                switch (i % 3)
                {
                    case 0:
                        File.WriteAllBytes(name + ".xml", xml);
                        bytes += xml.Length;
                        break;
                    case 1:
                        using (var fs = File.Create(name + ".xml.gz"))
                        {
                            using (var gz = new GZipStream(fs, CompressionLevel.Optimal))
                            {
                                gz.Write(xml, 0, xml.Length);
                            }
                        }

                        bytes += new FileInfo(name + ".xml.gz").Length;
                        break;
                    default:
                        using (var fs = File.Create(name + ".zip"))
                        {
                            using (var zip = new ZipArchive(fs, ZipArchiveMode.Create))
                            {
                                using (var s = zip.CreateEntry(Path.GetFileName(name) + ".xml").Open())
                                {
                                    s.Write(xml, 0, xml.Length);
                                }
                            }
                        }

                        bytes += new FileInfo(name + ".zip").Length;
                        break;
                }
            }

            Console.WriteLine($"reports={count};records={records};messages={messages};bytes={bytes};templates={templates.Count}");
        }

        private static XDocument? Load(string path)
        {
            XDocument doc;
            try
            {
                doc = XDocument.Load(path);
            }
            catch (System.Xml.XmlException)
            {
                return null; // the ikea sample's unclosed <xs:schema> wrapper: not a template
            }

            if (doc.Root == null || doc.Root.Name.LocalName != "feedback" || !doc.Root.Elements().Any(e => e.Name.LocalName == "record"))
            {
                return null;
            }

            doc.Declaration ??= new XDeclaration("1.0", "UTF-8", null);
            return doc;
        }
    }
}
