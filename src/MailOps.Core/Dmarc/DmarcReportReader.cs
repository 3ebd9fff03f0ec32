using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text;
using System.Threading;
using System.Xml;
using MimeKit;

namespace MailOps.Core.Dmarc
{
    /// <summary>
    /// Reads DMARC aggregate (rua) reports as receivers send them: plain XML, gzip, zip (every report entry), and mails
    /// (.eml, or a message from IMAP) carrying any of these as attachments or as the body. The packing is recognised by
    /// its first bytes, never by the file name.
    /// </summary>
    /// <remarks>
    /// <para>Memory: XML is read with a forward-only reader, never as a DOM, and compressed data is decompressed as it
    /// is read; <see cref="ReadPaths"/> yields each file's reports before opening the next file. A zip inside a mail or
    /// another archive, and a mail part, are held in memory while they are read (they are small).</para>
    /// <para>Lenience: gzip data is read up to the end of its first member, so bytes after it (a trailing CR LF some
    /// gateways add) are ignored, as are other members (its CRC is not checked: a damaged report shows as damaged XML).
    /// Bytes that are not valid in the document's encoding (UTF-8 unless the XML declaration or a byte-order mark says
    /// otherwise) are replaced with U+FFFD and the report says so in ParseWarnings. XML that is not well-formed is read a
    /// second time with stray '&lt;' and '&amp;' characters escaped (the one mistake seen in real reports, an unescaped
    /// &lt;address&gt;); when that reads, the report carries a warning with the original error's line and column,
    /// otherwise the error is raised with them. That second reading holds the document in memory.</para>
    /// </remarks>
    public static class DmarcReportReader
    {
        private const int HeadSize = 1024;
        private const int MaxNesting = 4;

        /// <summary>Every report in a file (several for a zip or a mail with several reports).</summary>
        /// <exception cref="DmarcReportException">The file, or one of its parts, is missing, unreadable or not a report.</exception>
        /// <exception cref="OperationCanceledException">Cancelled.</exception>
        public static IReadOnlyList<DmarcAggregateReport> ReadFile(string path, CancellationToken cancellationToken = default)
        {
            if (path == null)
            {
                throw new ArgumentNullException(nameof(path));
            }

            var reports = new List<DmarcAggregateReport>();
            ReadOneFile(path, reports.Add, e => throw e, cancellationToken);
            return reports;
        }

        /// <summary>
        /// Every report in a stream, named <paramref name="sourceName"/> in reports and errors. A stream that cannot seek
        /// is copied into memory first (the packing is recognised from its first bytes, then read from the start). The
        /// stream is not closed.
        /// </summary>
        /// <exception cref="DmarcReportException">The stream, or one of its parts, is not a report.</exception>
        /// <exception cref="OperationCanceledException">Cancelled.</exception>
        public static IReadOnlyList<DmarcAggregateReport> Read(Stream stream, string sourceName, CancellationToken cancellationToken = default)
        {
            if (stream == null)
            {
                throw new ArgumentNullException(nameof(stream));
            }

            var reports = new List<DmarcAggregateReport>();
            var seekable = stream;
            if (!stream.CanSeek)
            {
                seekable = new MemoryStream();
                stream.CopyTo(seekable);
                seekable.Position = 0;
            }

            var start = seekable.Position;
            ReadPayload(() =>
            {
                seekable.Position = start;
                return new BorrowedStream(seekable);
            }, sourceName ?? "", 0, new Sink(reports.Add, e => throw e, cancellationToken));
            return reports;
        }

        /// <summary>
        /// Reads files and folders (recursively, in name order), yielding each report as its file is read. A file that is
        /// missing or cannot be read, and each part of a file that is not a report, is passed to
        /// <paramref name="onError"/> and the rest is read: nothing is skipped silently.
        /// </summary>
        /// <exception cref="OperationCanceledException">Cancelled (between files, and between records of a report).</exception>
        public static IEnumerable<DmarcAggregateReport> ReadPaths(IEnumerable<string> paths, Action<DmarcReportException> onError, CancellationToken cancellationToken = default)
        {
            if (paths == null)
            {
                throw new ArgumentNullException(nameof(paths));
            }

            if (onError == null)
            {
                throw new ArgumentNullException(nameof(onError));
            }

            return ReadPathsIterator(paths, onError, cancellationToken);
        }

        private static IEnumerable<DmarcAggregateReport> ReadPathsIterator(IEnumerable<string> paths, Action<DmarcReportException> onError, CancellationToken cancellationToken)
        {
            var reports = new List<DmarcAggregateReport>();
            foreach (var path in paths)
            {
                cancellationToken.ThrowIfCancellationRequested();
                IEnumerable<string> files;
                if (Directory.Exists(path))
                {
                    try
                    {
                        files = Directory.GetFiles(path, "*", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal).ToList();
                    }
                    catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
                    {
                        onError(new DmarcReportException(DmarcReportErrorKind.Unreadable, path, "the folder cannot be read: " + e.Message, e));
                        continue;
                    }
                }
                else
                {
                    files = new[] { path };
                }

                foreach (var file in files)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    reports.Clear();
                    ReadOneFile(file, reports.Add, onError, cancellationToken);
                    foreach (var r in reports)
                    {
                        yield return r;
                    }
                }
            }
        }

        /// <summary>
        /// The reports a mail carries: every part that is XML, gzip or zip (by content, whatever its declared type; an
        /// application/octet-stream named .xml.gz included), the body too, and attached messages. A part that claims to
        /// be a report but is not is passed to <paramref name="onError"/>.
        /// </summary>
        /// <returns>The reports; empty when the message has no report part (<paramref name="whyNone"/> says what it is).</returns>
        /// <exception cref="OperationCanceledException">Cancelled.</exception>
        public static IReadOnlyList<DmarcAggregateReport> ReadMessage(MimeMessage message, string sourceName, Action<DmarcReportException> onError, out string? whyNone, CancellationToken cancellationToken = default)
        {
            if (message == null)
            {
                throw new ArgumentNullException(nameof(message));
            }

            if (onError == null)
            {
                throw new ArgumentNullException(nameof(onError));
            }

            var reports = new List<DmarcAggregateReport>();
            var errors = 0;
            var sink = new Sink(reports.Add, e =>
            {
                errors++;
                onError(e);
            }, cancellationToken);
            var candidates = ReadMessageParts(message, sourceName ?? "", 0, sink);
            whyNone = reports.Count > 0 || errors > 0 ? null : DescribeNoReport(message, candidates);
            return reports;
        }

        private static void ReadOneFile(string path, Action<DmarcAggregateReport> onReport, Action<DmarcReportException> onError, CancellationToken cancellationToken)
        {
            FileStream stream;
            try
            {
                stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 12);
            }
            catch (Exception e) when (e is FileNotFoundException || e is DirectoryNotFoundException)
            {
                onError(new DmarcReportException(DmarcReportErrorKind.Unreadable, path, "no such file or folder", e));
                return;
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException || e is NotSupportedException || e is ArgumentException)
            {
                onError(new DmarcReportException(DmarcReportErrorKind.Unreadable, path, "cannot be read: " + e.Message, e));
                return;
            }

            using (stream)
            {
                ReadPayload(() =>
                {
                    stream.Position = 0;
                    return new BorrowedStream(stream);
                }, path, 0, new Sink(onReport, onError, cancellationToken));
            }
        }

        /// <summary>Where a reading puts what it finds: reports, and problems (which may throw to stop, as ReadFile's does).</summary>
        private sealed class Sink
        {
            public Sink(Action<DmarcAggregateReport> report, Action<DmarcReportException> error, CancellationToken cancellationToken)
            {
                Report = report;
                Error = error;
                CancellationToken = cancellationToken;
            }

            public Action<DmarcAggregateReport> Report { get; }
            public Action<DmarcReportException> Error { get; }
            public CancellationToken CancellationToken { get; }
        }

        private enum Packing
        {
            Empty,
            Xml,
            Gzip,
            Zip,
            Mime,
            Json,
            Unknown,
        }

        /// <summary>
        /// Reads one payload: <paramref name="open"/> gives a fresh stream at its start each time it is called (the first
        /// bytes are looked at, then it is opened again to be read).
        /// </summary>
        private static void ReadPayload(Func<Stream> open, string name, int nesting, Sink sink)
        {
            var ct = sink.CancellationToken;
            ct.ThrowIfCancellationRequested();
            if (nesting > MaxNesting)
            {
                sink.Error(new DmarcReportException(DmarcReportErrorKind.Invalid, name, $"archives nested more than {MaxNesting} deep"));
                return;
            }

            try
            {
                var head = new byte[HeadSize];
                int n;
                using (var s = open())
                {
                    n = ReadFully(s, head);
                }

                switch (Sniff(head, n))
                {
                    case Packing.Empty:
                        sink.Error(new DmarcReportException(DmarcReportErrorKind.Invalid, name, "empty: no XML, not a DMARC aggregate report"));
                        break;
                    case Packing.Xml:
                        var report = ReadXml(open, head, n, name, ct);
                        sink.Report(report);
                        break;
                    case Packing.Gzip:
                        ReadPayload(() => GzipMember.Open(open()), name, nesting + 1, sink);
                        break;
                    case Packing.Zip:
                        ReadZip(open, name, nesting, sink);
                        break;
                    case Packing.Mime:
                        ReadMail(open, name, nesting, n >= 5 && Encoding.ASCII.GetString(head, 0, 5) == "From ", sink);
                        break;
                    case Packing.Json:
                        sink.Error(new DmarcReportException(DmarcReportErrorKind.Invalid, name, "JSON (an SMTP TLS report?), not a DMARC aggregate report"));
                        break;
                    default:
                        sink.Error(new DmarcReportException(DmarcReportErrorKind.Invalid, name, "neither XML, gzip, zip nor a mail message: not a DMARC aggregate report"));
                        break;
                }
            }
            catch (DmarcReportException e)
            {
                sink.Error(e);
            }
            catch (InvalidDataException e)
            {
                // damaged deflate data, a zip without its directory, a gzip header that is not one
                sink.Error(new DmarcReportException(DmarcReportErrorKind.Invalid, name, "damaged compressed data: " + e.Message, e));
            }
            catch (FormatException e)
            {
                sink.Error(new DmarcReportException(DmarcReportErrorKind.Invalid, name, "not a readable mail message: " + e.Message, e));
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                sink.Error(new DmarcReportException(DmarcReportErrorKind.Unreadable, name, "cannot be read: " + e.Message, e));
            }
        }

        /// <summary>A mail (.eml), or an mbox file of them (each message named file#n).</summary>
        private static void ReadMail(Func<Stream> open, string name, int nesting, bool mbox, Sink sink)
        {
            using (var s = open())
            {
                var parser = new MimeParser(s, mbox ? MimeFormat.Mbox : MimeFormat.Entity);
                var number = 0;
                do
                {
                    var message = parser.ParseMessage(sink.CancellationToken);
                    number++;
                    var messageName = mbox ? $"{name}#{number}" : name;
                    var errors = 0;
                    var found = 0;
                    var counting = new Sink(r =>
                    {
                        found++;
                        sink.Report(r);
                    }, e =>
                    {
                        errors++;
                        sink.Error(e);
                    }, sink.CancellationToken);
                    var candidates = ReadMessageParts(message, messageName, nesting + 1, counting);
                    if (found == 0 && errors == 0)
                    {
                        sink.Error(new DmarcReportException(DmarcReportErrorKind.Invalid, messageName, DescribeNoReport(message, candidates)));
                    }
                }
                while (mbox && !parser.IsEndOfStream);
            }
        }

        private static int ReadFully(Stream s, byte[] buffer)
        {
            var n = 0;
            while (n < buffer.Length)
            {
                var k = s.Read(buffer, n, buffer.Length - n);
                if (k == 0)
                {
                    break;
                }

                n += k;
            }

            return n;
        }

        private static Packing Sniff(byte[] b, int n)
        {
            if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b)
            {
                return Packing.Gzip;
            }

            if (n >= 4 && b[0] == (byte)'P' && b[1] == (byte)'K' && ((b[2] == 3 && b[3] == 4) || (b[2] == 5 && b[3] == 6)))
            {
                return Packing.Zip;
            }

            if (n >= 2 && ((b[0] == 0xff && b[1] == 0xfe) || (b[0] == 0xfe && b[1] == 0xff) || (b[0] == (byte)'<' && b[1] == 0) || (b[0] == 0 && b[1] == (byte)'<')))
            {
                return Packing.Xml; // UTF-16
            }

            var i = n >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf ? 3 : 0;
            var lineStart = i;
            while (i < n && (b[i] == (byte)' ' || b[i] == (byte)'\t' || b[i] == (byte)'\r' || b[i] == (byte)'\n'))
            {
                i++;
            }

            if (i == n)
            {
                return n < HeadSize ? Packing.Empty : Packing.Unknown;
            }

            if (b[i] == (byte)'<')
            {
                return Packing.Xml;
            }

            if (b[i] == (byte)'{' || b[i] == (byte)'[')
            {
                return Packing.Json;
            }

            // a mail: a header field name (printable ASCII up to a colon) at the start, or an mbox "From " line
            if (i == lineStart && n - i >= 5 && Encoding.ASCII.GetString(b, i, 5) == "From ")
            {
                return Packing.Mime;
            }

            var j = i;
            while (j < n && b[j] > 32 && b[j] < 127 && b[j] != (byte)':')
            {
                j++;
            }

            return i == lineStart && j > i && j < n && b[j] == (byte)':' ? Packing.Mime : Packing.Unknown;
        }

        private static DmarcAggregateReport ReadXml(Func<Stream> open, byte[] head, int headLength, string name, CancellationToken ct)
        {
            var (encoding, bom, fallback, declared) = ChooseEncoding(head, headLength);
            try
            {
                using (var reader = OpenText(open, encoding, bom))
                {
                    var report = DmarcXmlParser.Parse(reader, name, ct);
                    AddEncodingWarnings(report, declared, encoding, fallback);
                    return report;
                }
            }
            catch (XmlException e)
            {
                // second reading, with stray '<' and '&' escaped (see the class remarks)
                (encoding, bom, fallback, declared) = ChooseEncoding(head, headLength);
                string text;
                using (var reader = OpenText(open, encoding, bom))
                {
                    text = reader.ReadToEnd();
                }

                var repaired = XmlRepair.EscapeStrayMarkup(text, out var escaped);
                if (escaped > 0)
                {
                    try
                    {
                        var report = DmarcXmlParser.Parse(new StringReader(repaired), name, ct);
                        report.WarningList.Insert(0, $"the XML is not well-formed (line {e.LineNumber}, column {e.LinePosition}: {FirstSentence(e.Message)}); read after escaping {escaped} stray '<' or '&' character(s)");
                        AddEncodingWarnings(report, declared, encoding, fallback);
                        return report;
                    }
                    catch (XmlException)
                    {
                        // the original error is the one to report
                    }
                }

                throw new DmarcReportException(DmarcReportErrorKind.Invalid, name, $"not well-formed XML at line {e.LineNumber}, column {e.LinePosition}: {FirstSentence(e.Message)}", e, e.LineNumber, e.LinePosition);
            }
        }

        private static void AddEncodingWarnings(DmarcAggregateReport report, string? declared, Encoding encoding, ReplacementCountingFallback fallback)
        {
            if (declared != null)
            {
                report.WarningList.Add($"the XML declares the encoding '{declared}', which this system does not know; read as UTF-8");
            }

            if (fallback.Used)
            {
                report.WarningList.Add($"the document has bytes that are not valid {encoding.WebName}; they were replaced with U+FFFD");
            }
        }

        /// <summary>XmlException messages end with " Line n, position m." which the report says in its own words.</summary>
        private static string FirstSentence(string message)
        {
            var at = message.IndexOf(" Line ", StringComparison.Ordinal);
            return (at > 0 ? message.Substring(0, at) : message).TrimEnd('.', ' ');
        }

        private static StreamReader OpenText(Func<Stream> open, Encoding encoding, int bom)
        {
            var s = open();
            try
            {
                for (var i = 0; i < bom; i++)
                {
                    s.ReadByte();
                }

                // the byte-order mark was skipped above: detection off, so the decoder (and its fallback) stays ours
                return new StreamReader(s, encoding, false, 1 << 12, leaveOpen: false);
            }
            catch
            {
                s.Dispose();
                throw;
            }
        }

        /// <summary>
        /// The document's encoding: a byte-order mark, else UTF-16 by its first characters, else the XML declaration's
        /// encoding, else UTF-8. Decoding replaces invalid bytes with U+FFFD (and notes it) instead of failing. An XmlReader
        /// over a TextReader ignores the declaration, so a document whose bytes do not match it is still read.
        /// </summary>
        private static (Encoding Encoding, int Bom, ReplacementCountingFallback Fallback, string? UnknownDeclared) ChooseEncoding(byte[] b, int n)
        {
            var fallback = new ReplacementCountingFallback();
            Encoding Make(int codePage) => Encoding.GetEncoding(codePage, EncoderFallback.ReplacementFallback, fallback);
            if (n >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf)
            {
                return (Make(65001), 3, fallback, null);
            }

            if (n >= 2 && b[0] == 0xff && b[1] == 0xfe)
            {
                return (Make(1200), 2, fallback, null);
            }

            if (n >= 2 && b[0] == 0xfe && b[1] == 0xff)
            {
                return (Make(1201), 2, fallback, null);
            }

            if (n >= 2 && b[0] == (byte)'<' && b[1] == 0)
            {
                return (Make(1200), 0, fallback, null);
            }

            if (n >= 2 && b[0] == 0 && b[1] == (byte)'<')
            {
                return (Make(1201), 0, fallback, null);
            }

            var declared = DeclaredEncoding(Encoding.ASCII.GetString(b, 0, Math.Min(n, 200)));
            if (declared == null || declared.Equals("utf-8", StringComparison.OrdinalIgnoreCase) || declared.Equals("utf8", StringComparison.OrdinalIgnoreCase)
                || declared.Equals("us-ascii", StringComparison.OrdinalIgnoreCase) || declared.Equals("ascii", StringComparison.OrdinalIgnoreCase))
            {
                return (Make(65001), 0, fallback, null);
            }

            try
            {
                return (Encoding.GetEncoding(declared, EncoderFallback.ReplacementFallback, fallback), 0, fallback, null);
            }
            catch (ArgumentException)
            {
                // windows-1252 and the other code pages .NET Core only knows through this provider (asked directly: no
                // process-wide registration)
                var codePage = CodePagesEncodingProvider.Instance.GetEncoding(declared, EncoderFallback.ReplacementFallback, fallback);
                return codePage != null ? (codePage, 0, fallback, null) : (Make(65001), 0, fallback, declared);
            }
        }

        /// <summary>The encoding="..." of an XML declaration at the start of <paramref name="start"/>, or null.</summary>
        private static string? DeclaredEncoding(string start)
        {
            var text = start.TrimStart();
            if (!text.StartsWith("<?xml", StringComparison.Ordinal))
            {
                return null;
            }

            var end = text.IndexOf("?>", StringComparison.Ordinal);
            var decl = end > 0 ? text.Substring(0, end) : text;
            var at = decl.IndexOf("encoding", StringComparison.Ordinal);
            if (at < 0)
            {
                return null;
            }

            var rest = decl.Substring(at + "encoding".Length).TrimStart();
            if (rest.Length == 0 || rest[0] != '=')
            {
                return null;
            }

            rest = rest.Substring(1).TrimStart();
            if (rest.Length == 0 || (rest[0] != '"' && rest[0] != '\''))
            {
                return null;
            }

            var close = rest.IndexOf(rest[0], 1);
            return close > 1 ? rest.Substring(1, close - 1).Trim() : null;
        }

        private static void ReadZip(Func<Stream> open, string name, int nesting, Sink sink)
        {
            using (var raw = open())
            {
                Stream seekable = raw;
                MemoryStream? copy = null;
                if (!raw.CanSeek)
                {
                    copy = new MemoryStream();
                    raw.CopyTo(copy);
                    copy.Position = 0;
                    seekable = copy;
                }

                using (copy)
                using (var zip = new ZipArchive(seekable, ZipArchiveMode.Read, leaveOpen: true))
                {
                    var found = false;
                    foreach (var entry in zip.Entries)
                    {
                        sink.CancellationToken.ThrowIfCancellationRequested();
                        var entryName = entry.FullName;
                        if (entryName.EndsWith("/", StringComparison.Ordinal) || entryName.StartsWith("__MACOSX/", StringComparison.Ordinal))
                        {
                            continue;
                        }

                        // every entry that looks like a report by its content; a named .xml entry that is not one is an error
                        var head = new byte[HeadSize];
                        int n;
                        using (var s = entry.Open())
                        {
                            n = ReadFully(s, head);
                        }

                        var packing = Sniff(head, n);
                        var claims = entryName.EndsWith(".xml", StringComparison.OrdinalIgnoreCase) || entryName.EndsWith(".gz", StringComparison.OrdinalIgnoreCase);
                        if (packing != Packing.Xml && packing != Packing.Gzip && packing != Packing.Zip && !claims)
                        {
                            continue;
                        }

                        found = true;
                        ReadPayload(entry.Open, $"{name}#{(entryName.Length == 0 ? "(unnamed entry)" : entryName)}", nesting + 1, sink);
                    }

                    if (!found)
                    {
                        sink.Error(new DmarcReportException(DmarcReportErrorKind.Invalid, name, $"the zip has no XML entry ({zip.Entries.Count} entries): not a DMARC aggregate report"));
                    }
                }
            }
        }

        private static readonly string[] ReportTypes =
        {
            "text/xml", "application/xml", "application/gzip", "application/x-gzip", "application/x-gunzip", "application/gzip-compressed",
            "application/zip", "application/x-zip", "application/x-zip-compressed", "application/octet-stream",
        };

        private static bool HasReportName(string? file) => file != null && (file.EndsWith(".xml", StringComparison.OrdinalIgnoreCase)
            || file.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) || file.EndsWith(".gzip", StringComparison.OrdinalIgnoreCase)
            || file.EndsWith(".zip", StringComparison.OrdinalIgnoreCase));

        /// <summary>
        /// A mail part worth decoding: an XML, gzip, zip or octet-stream type, or a name ending .xml, .gz, .gzip or .zip;
        /// never a TLS report (application/tlsrpt+gzip). Its content decides in the end.
        /// </summary>
        internal static bool MightBeReportPart(string mimeType, string? fileName)
        {
            var type = mimeType.ToLowerInvariant();
            return !type.StartsWith("application/tlsrpt", StringComparison.Ordinal) && (HasReportName(fileName) || Array.IndexOf(ReportTypes, type) >= 0);
        }

        /// <summary>Reads the message's report parts; returns how many parts looked like reports.</summary>
        private static int ReadMessageParts(MimeMessage message, string name, int nesting, Sink sink)
        {
            var candidates = 0;
            var index = 0;
            foreach (var entity in message.BodyParts)
            {
                index++;
                sink.CancellationToken.ThrowIfCancellationRequested();
                if (entity is MessagePart attached && attached.Message != null)
                {
                    // a forwarded report
                    candidates += ReadMessageParts(attached.Message, $"{name}#{index}", nesting + 1, sink);
                    continue;
                }

                if (!(entity is MimePart part) || part.Content == null)
                {
                    continue;
                }

                var type = part.ContentType.MimeType.ToLowerInvariant();
                var file = part.FileName ?? "";
                var named = HasReportName(file);
                if (!MightBeReportPart(type, file))
                {
                    continue;
                }

                byte[] bytes;
                using (var buffer = new MemoryStream())
                {
                    part.Content.DecodeTo(buffer, sink.CancellationToken);
                    bytes = buffer.ToArray();
                }

                var partName = $"{name}#{(file.Length > 0 ? file : "part " + index)}";
                var head = bytes.Length > HeadSize ? HeadSize : bytes.Length;
                var packing = Sniff(bytes, head);
                if (packing != Packing.Xml && packing != Packing.Gzip && packing != Packing.Zip)
                {
                    // an octet-stream that is something else (a PDF) is not a report part; one that says it is a report is an error
                    if (named || (type != "application/octet-stream"))
                    {
                        candidates++;
                        sink.Error(new DmarcReportException(DmarcReportErrorKind.Invalid, partName, packing == Packing.Empty ? "empty attachment" : $"the attachment ({type}) is neither XML, gzip nor zip"));
                    }

                    continue;
                }

                candidates++;
                ReadPayload(() => new MemoryStream(bytes, false), partName, nesting + 1, sink);
            }

            return candidates;
        }

        private static string DescribeNoReport(MimeMessage message, int candidates)
        {
            if (candidates > 0)
            {
                return "no readable DMARC aggregate report in the message";
            }

            foreach (var entity in message.BodyParts.Concat(new[] { message.Body }))
            {
                var type = entity?.ContentType;
                if (type == null)
                {
                    continue;
                }

                if (type.MimeType.StartsWith("application/tlsrpt", StringComparison.OrdinalIgnoreCase))
                {
                    return "an SMTP TLS report (TLS-RPT), not a DMARC aggregate report";
                }

                if (type.MimeType.Equals("message/feedback-report", StringComparison.OrdinalIgnoreCase)
                    || (type.MimeType.Equals("multipart/report", StringComparison.OrdinalIgnoreCase) && type.Parameters.TryGetValue("report-type", out string? reportType)
                        && string.Equals(reportType, "feedback-report", StringComparison.OrdinalIgnoreCase)))
                {
                    return "a DMARC failure (forensic, ruf) report or other ARF feedback, not an aggregate report";
                }
            }

            return "the message has no XML, gzip or zip part: not a DMARC aggregate report";
        }

        /// <summary>A view of a stream that does not close it (the file or the caller's stream is closed by its owner).</summary>
        private sealed class BorrowedStream : Stream
        {
            private readonly Stream _inner;

            public BorrowedStream(Stream inner)
            {
                _inner = inner;
            }

            public override bool CanRead => true;
            public override bool CanSeek => _inner.CanSeek;
            public override bool CanWrite => false;
            public override long Length => _inner.Length;

            public override long Position
            {
                get => _inner.Position;
                set => _inner.Position = value;
            }

            public override void Flush()
            {
            }

            public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);
            public override long Seek(long offset, SeekOrigin origin) => _inner.Seek(offset, origin);
            public override void SetLength(long value) => throw new NotSupportedException();
            public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        }
    }
}
