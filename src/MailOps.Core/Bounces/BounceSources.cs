using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using MailOps.Core.Logs;
using MimeKit;

namespace MailOps.Core.Bounces
{
    /// <summary>An item a source could not read; the rest of the batch goes on.</summary>
    public sealed class SourceError
    {
        public SourceError(string source, string message)
        {
            Source = source;
            Message = message;
        }

        /// <summary>file, file:line, or file#message-number.</summary>
        public string Source { get; }
        public string Message { get; }

        public override string ToString() => $"{Source}: {Message}";
    }

    /// <summary>The ESP suppression export formats Import-Bounce reads (and Export-Bounce writes).</summary>
    public enum EspFormat
    {
        Generic,
        SendGrid,
        Mailjet,
        Brevo,
        Mailgun,
    }

    /// <summary>
    /// Where bounces come from: .eml files, folders and mbox files; Postfix and Exim logs; ESP CSV exports. Each yields
    /// records as it reads (streaming) and reports unreadable items without stopping.
    /// </summary>
    public static class BounceSources
    {
        /// <summary>.eml files, folders (recursively) and mbox files.</summary>
        public static IEnumerable<BounceRecord> FromFiles(IEnumerable<string> paths, Action<SourceError> onError, Action<string>? onNotABounce = null)
        {
            foreach (var path in paths)
            {
                IEnumerable<string> files;
                if (Directory.Exists(path))
                {
                    files = Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal);
                }
                else if (File.Exists(path))
                {
                    files = new[] { path };
                }
                else
                {
                    onError(new SourceError(path, "no such file or folder"));
                    continue;
                }

                foreach (var file in files)
                {
                    foreach (var r in FromFile(file, onError, onNotABounce))
                    {
                        yield return r;
                    }
                }
            }
        }

        private static IEnumerable<BounceRecord> FromFile(string file, Action<SourceError> onError, Action<string>? onNotABounce)
        {
            bool isMbox;
            try
            {
                using (var probe = File.OpenRead(file))
                {
                    var head = new byte[5];
                    var n = probe.Read(head, 0, 5);
                    isMbox = n == 5 && Encoding.ASCII.GetString(head) == "From ";
                }
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                onError(new SourceError(file, "cannot be read: " + e.Message));
                yield break;
            }

            if (!isMbox)
            {
                IReadOnlyList<BounceRecord> records;
                try
                {
                    records = BounceParser.ParseFile(file);
                }
                catch (Exception e) when (e is IOException || e is UnauthorizedAccessException || e is FormatException || e is ArgumentException)
                {
                    onError(new SourceError(file, "cannot be parsed: " + e.Message));
                    yield break;
                }

                if (records.Count == 0)
                {
                    onNotABounce?.Invoke(file);
                }

                foreach (var r in records)
                {
                    yield return r;
                }

                yield break;
            }

            // mbox: one message at a time, so a 100 MB mailbox takes little memory
            using (var stream = File.OpenRead(file))
            {
                var parser = new MimeParser(stream, MimeFormat.Mbox);
                var index = 0;
                while (true)
                {
                    MimeMessage? message;
                    try
                    {
                        if (parser.IsEndOfStream)
                        {
                            break;
                        }

                        message = parser.ParseMessage();
                    }
                    catch (FormatException e)
                    {
                        onError(new SourceError($"{file}#{index + 1}", "malformed message: " + e.Message));
                        break;
                    }

                    index++;
                    IReadOnlyList<BounceRecord> records;
                    try
                    {
                        records = BounceParser.Parse(message, $"{file}#{index}");
                    }
                    catch (Exception e) when (e is FormatException || e is ArgumentException || e is InvalidOperationException)
                    {
                        onError(new SourceError($"{file}#{index}", "cannot be parsed: " + e.Message));
                        continue;
                    }

                    if (records.Count == 0)
                    {
                        onNotABounce?.Invoke($"{file}#{index}");
                    }

                    foreach (var r in records)
                    {
                        yield return r;
                    }
                }
            }
        }

        /// <summary>Bounced and deferred deliveries (and, when asked, rejected recipients) of Postfix or Exim logs.</summary>
        public static IEnumerable<BounceRecord> FromLog(string path, bool includeDeferred, bool includeRejects, Action<SourceError> onError)
        {
            TextReader reader;
            try
            {
                reader = MailLogReader.Open(path);
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                onError(new SourceError(path, "cannot be read: " + e.Message));
                yield break;
            }

            using (reader)
            {
                foreach (var e in MailLogReader.Read(reader, path, err => onError(new SourceError($"{err.File}:{err.LineNumber}", err.Message))))
                {
                    var wanted = e.Status == DeliveryStatus.Bounced || e.Status == DeliveryStatus.Expired
                        || (includeDeferred && e.Status == DeliveryStatus.Deferred) || (includeRejects && e.Status == DeliveryStatus.Rejected);
                    if (!wanted || string.IsNullOrEmpty(e.Recipient))
                    {
                        continue;
                    }

                    var r = BounceParser.ParseDiagnosticLine(e.Recipient!, e.Diagnostic ?? "", e.Dsn, 0, $"{path}:{e.LineNumber}");
                    yield return BounceParser.WithTime(r, e.Time);
                }
            }
        }

        private static readonly Dictionary<EspFormat, (string[] Address, string[] Diagnostic, string[] Status, string[] Time)> Columns =
            new Dictionary<EspFormat, (string[], string[], string[], string[])>
            {
                // the columns of each ESP's suppression/bounce export; the generic list is tried after the format's own
                [EspFormat.SendGrid] = (new[] { "email" }, new[] { "reason" }, new[] { "status" }, new[] { "created" }),
                // Mailjet's bounce event (Event API): time (unix), email, error_related_to, error (its own words, see
                // MailjetErrors), hard_bounce, blocked, and in newer exports comment / smtp_reply with the server's text
                [EspFormat.Mailjet] = (new[] { "email" }, new[] { "comment", "smtp_reply", "error" }, new[] { "status" }, new[] { "time", "arrived_at", "date" }),
                [EspFormat.Brevo] = (new[] { "email", "email address" }, new[] { "reason", "bounce reason", "reason.message" }, new[] { "event", "status", "reason.code" }, new[] { "date", "blocked at", "blockedat", "blocked_at", "blocked_on" }),
                [EspFormat.Mailgun] = (new[] { "address", "recipient" }, new[] { "error" }, new[] { "code" }, new[] { "created_at" }),
                [EspFormat.Generic] = (new[] { "email", "address", "recipient", "e-mail", "email address", "mail" },
                    new[] { "reason", "error", "diagnostic", "diagnostic-code", "description", "bounce reason", "message", "response" },
                    new[] { "status", "code", "status code", "smtp code", "enhanced status", "dsn" },
                    new[] { "created", "created_at", "date", "time", "timestamp", "bounced at", "event time" }),
            };

        /// <summary>
        /// An ESP's CSV export. <paramref name="columnMap"/> (Address, Diagnostic, Status, Time -> column name) overrides
        /// the format's columns. A file without an address column is an error; a row without an address is skipped and
        /// reported.
        /// </summary>
        public static IEnumerable<BounceRecord> FromCsv(string path, EspFormat format, IDictionary<string, string>? columnMap, Action<SourceError> onError)
        {
            TextReader reader;
            try
            {
                reader = new StreamReader(path, Encoding.UTF8, true);
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                onError(new SourceError(path, "cannot be read: " + e.Message));
                yield break;
            }

            using (reader)
            {
                var rows = Csv.Read(reader).GetEnumerator();
                if (!rows.MoveNext())
                {
                    onError(new SourceError(path, "is empty"));
                    yield break;
                }

                var header = rows.Current.Select(h => h.Trim().Trim('\uFEFF').ToLowerInvariant()).ToList();
                int Find(string field, string[] own, string[] generic)
                {
                    if (columnMap != null && columnMap.TryGetValue(field, out var mapped))
                    {
                        return header.IndexOf(mapped.Trim().ToLowerInvariant());
                    }

                    foreach (var name in own.Concat(generic))
                    {
                        var i = header.IndexOf(name);
                        if (i >= 0)
                        {
                            return i;
                        }
                    }

                    return -1;
                }

                var c = Columns[format];
                var g = Columns[EspFormat.Generic];
                var ia = Find("Address", c.Address, g.Address);
                var id = Find("Diagnostic", c.Diagnostic, g.Diagnostic);
                var iS = Find("Status", c.Status, g.Status);
                var it = Find("Time", c.Time, g.Time);
                if (ia < 0)
                {
                    onError(new SourceError(path, $"has no address column for the {format} format (columns: {string.Join(", ", header)}); name it with -ColumnMap @{{ Address = '<column>' }}"));
                    yield break;
                }

                long line = 1;
                while (rows.MoveNext())
                {
                    line++;
                    var row = rows.Current;
                    string? Cell(int i) => i >= 0 && i < row.Count && row[i].Trim().Length > 0 ? row[i].Trim() : null;
                    var address = Cell(ia);
                    if (address == null || !address.Contains("@"))
                    {
                        onError(new SourceError($"{path}:{line}", address == null ? "no address in this row" : $"'{address}' is not an address"));
                        continue;
                    }

                    var status = Cell(iS);
                    var statusCode = BounceClassifier.FindStatusCode(status);
                    var reply = status != null && status.Length == 3 && int.TryParse(status, out var rc) ? rc : 0;
                    var diagnostic = Cell(id);
                    string? reason = null;
                    if (format == EspFormat.Mailjet && Cell(header.IndexOf("error")) is string mjError && MailjetErrors.TryGetValue(mjError, out var mjReason))
                    {
                        // Mailjet's own classification of the failure stands; the server's words (if exported) are kept
                        reason = mjReason;
                        diagnostic ??= mjError;
                        if (Cell(header.IndexOf("error_related_to")) is string related)
                        {
                            diagnostic = diagnostic == mjError ? $"{related}: {mjError}" : $"{diagnostic} (Mailjet: {related}: {mjError})";
                        }
                    }

                    // SendGrid's and Mailgun's bounce lists hold recipients refused by the receiving server: the reply
                    // answered RCPT TO (or the equivalent) even when its text does not say so
                    var answeredRcpt = format == EspFormat.SendGrid || format == EspFormat.Mailgun;
                    var r = BounceParser.ParseDiagnosticLine(address, diagnostic ?? status ?? "", statusCode, reply, $"{path}:{line}", answeredRcpt, reason);
                    var timeText = Cell(it);
                    if (timeText != null && TryParseTime(timeText, out var time))
                    {
                        r = BounceParser.WithTime(r, time);
                    }

                    yield return r;
                }
            }
        }

        /// <summary>
        /// The "error" values of Mailjet's bounce events, as its Event API documentation lists them (error_related_to:
        /// recipient, domain, spam, system, mailjet), with the reason each one means.
        /// </summary>
        internal static readonly IReadOnlyDictionary<string, string> MailjetErrors = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
        {
            ["user unknown"] = BounceReasons.UserUnknown,          // the address does not exist
            ["mailbox inactive"] = BounceReasons.Suspend,          // inactive for too long
            ["quota exceeded"] = BounceReasons.MailboxFull,
            ["invalid domain"] = BounceReasons.HostUnknown,        // the domain does not exist (or expired)
            ["no mail host"] = BounceReasons.HostUnknown,          // nobody answers for the domain: DNS or mail hosts gone
            ["relay/access denied"] = BounceReasons.Blocked,       // the receiving server refuses to talk to Mailjet
            ["greylisted"] = BounceReasons.Blocked,                // temporary refusal of an unknown sender
            ["sender blocked"] = BounceReasons.Blocked,
            ["content blocked"] = BounceReasons.SpamDetected,      // an anti-spam filter refused the content
            ["policy issue"] = BounceReasons.PolicyViolation,
            ["system issue"] = BounceReasons.SystemError,
            ["protocol issue"] = BounceReasons.SystemError,
            ["connection issue"] = BounceReasons.NetworkError,
            ["preblocked"] = BounceReasons.Suppressed,             // not sent: the address bounced before
            ["duplicate in campaign"] = BounceReasons.Suppressed,  // not sent: deduplicated
        };

        private static bool TryParseTime(string text, out DateTimeOffset time)
        {
            if (long.TryParse(text, out var unix))
            {
                time = unix > 100000000000 ? DateTimeOffset.FromUnixTimeMilliseconds(unix) : DateTimeOffset.FromUnixTimeSeconds(unix);
                return true;
            }

            return DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out time);
        }
    }

    /// <summary>An RFC 4180 CSV reader: quoted fields, doubled quotes, line breaks inside quotes.</summary>
    internal static class Csv
    {
        public static IEnumerable<List<string>> Read(TextReader reader)
        {
            var row = new List<string>();
            var field = new StringBuilder();
            var quoted = false;
            var any = false;
            int ch;
            while ((ch = reader.Read()) >= 0)
            {
                var c = (char)ch;
                any = true;
                if (quoted)
                {
                    if (c == '"')
                    {
                        if (reader.Peek() == '"')
                        {
                            field.Append('"');
                            reader.Read();
                        }
                        else
                        {
                            quoted = false;
                        }
                    }
                    else
                    {
                        field.Append(c);
                    }
                }
                else if (c == '"' && field.Length == 0)
                {
                    quoted = true;
                }
                else if (c == ',')
                {
                    row.Add(field.ToString());
                    field.Clear();
                }
                else if (c == '\n' || c == '\r')
                {
                    if (c == '\r' && reader.Peek() == '\n')
                    {
                        reader.Read();
                    }

                    row.Add(field.ToString());
                    field.Clear();
                    if (row.Count > 1 || row[0].Length > 0)
                    {
                        yield return row;
                    }

                    row = new List<string>();
                    any = false;
                }
                else
                {
                    field.Append(c);
                }
            }

            if (any)
            {
                row.Add(field.ToString());
                yield return row;
            }
        }
    }
}
