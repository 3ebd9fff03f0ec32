using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.IO.Compression;
using System.Text.RegularExpressions;

namespace MailOps.Core.Logs
{
    /// <summary>What happened to one recipient of one message, as an MTA logged it.</summary>
    public enum DeliveryStatus
    {
        Sent,
        Deferred,
        Bounced,
        Expired,
        Rejected,
    }

    /// <summary>One delivery event from a Postfix or Exim log line.</summary>
    public sealed class DeliveryEvent
    {
        internal DeliveryEvent(DateTimeOffset time, string mta, string host, string? queueId, string? recipient, string? sender, DeliveryStatus status,
            string? dsn, string? relay, string? diagnostic, string? client, long lineNumber, string? file)
        {
            Time = time;
            Mta = mta;
            Host = host;
            QueueId = queueId;
            Recipient = recipient;
            Sender = sender;
            Status = status;
            Dsn = dsn;
            Relay = relay;
            Diagnostic = diagnostic;
            Client = client;
            LineNumber = lineNumber;
            File = file;
        }

        public DateTimeOffset Time { get; }

        /// <summary>postfix or exim.</summary>
        public string Mta { get; }

        /// <summary>The host name in the log line.</summary>
        public string Host { get; }
        public string? QueueId { get; }
        public string? Recipient { get; }
        public string? Sender { get; }
        public DeliveryStatus Status { get; }
        public string? Dsn { get; }
        public string? Relay { get; }
        public string? Diagnostic { get; }
        public string? Client { get; }
        public long LineNumber { get; }
        public string? File { get; }
    }

    /// <summary>A line the reader could not use, with where it was.</summary>
    public sealed class LogLineError
    {
        internal LogLineError(string? file, long lineNumber, string message)
        {
            File = file;
            LineNumber = lineNumber;
            Message = message;
        }

        public string? File { get; }
        public long LineNumber { get; }
        public string Message { get; }

        public override string ToString() => $"{File}:{LineNumber}: {Message}";
    }

    /// <summary>
    /// Streams Postfix and Exim logs line by line (plain or gzip, flat memory whatever the size), yielding delivery
    /// events. Lines of other programs are ignored; lines that look like delivery lines but cannot be read are reported.
    /// Shared by bounce import, the traffic report and the flow inventory.
    /// </summary>
    public static class MailLogReader
    {
        private static readonly Regex SyslogPrefix = new Regex(
            @"^(?:(?<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)|(?<bsd>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d))\s+(?<host>\S+)\s+(?<prog>postfix(?:-[\w.-]+)?/[\w./-]+)\[\d+\]:\s+(?<msg>.*)$",
            RegexOptions.CultureInvariant | RegexOptions.Compiled);

        private static readonly Regex PostfixDelivery = new Regex(
            @"^(?<qid>[0-9A-F]{5,}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,}): to=<(?<to>[^>]*)>,(?: orig_to=<[^>]*>,)? relay=(?<relay>[^,]+),.*?(?: dsn=(?<dsn>[\d.]+),)? status=(?<status>sent|deferred|bounced|expired)(?: \((?<text>.*)\))?\s*$",
            RegexOptions.CultureInvariant | RegexOptions.Compiled);

        private static readonly Regex PostfixReject = new Regex(
            @"^(?:NOQUEUE|[0-9A-Za-z]+): reject: RCPT from (?<client>\S+?):? (?<text>[245]\d\d .*?); from=<(?<from>[^>]*)>,? to=<(?<to>[^>]*)>",
            RegexOptions.CultureInvariant | RegexOptions.Compiled);

        private static readonly Regex PostfixExpired = new Regex(@"^(?<qid>[0-9A-Za-z]+): from=<(?<from>[^>]*)>, status=expired", RegexOptions.CultureInvariant | RegexOptions.Compiled);

        private static readonly Regex PostfixFrom = new Regex(@"^(?<qid>[0-9A-Za-z]+): from=<(?<from>[^>]*)>", RegexOptions.CultureInvariant | RegexOptions.Compiled);

        private static readonly Regex EximLine = new Regex(
            @"^(?<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [+-]\d{4})?) (?:\[\d+\] )?(?<qid>[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}) (?<flag>\*\*|==|=>|->|\*>) (?<to>\S+)(?: <(?<orig>[^>]+)>)?(?<rest>.*)$",
            RegexOptions.CultureInvariant | RegexOptions.Compiled);

        /// <summary>Opens a log file, decompressing .gz.</summary>
        public static TextReader Open(string path)
        {
            Stream stream = File.OpenRead(path);
            if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
            {
                stream = new GZipStream(stream, CompressionMode.Decompress);
            }

            return new StreamReader(stream, System.Text.Encoding.UTF8, true, 1 << 16);
        }

        /// <summary>
        /// The delivery events of a log. <paramref name="year"/> completes BSD-syslog dates (which have none; default:
        /// the current year, or the previous one for dates that would lie in the future).
        /// </summary>
        public static IEnumerable<DeliveryEvent> Read(TextReader reader, string? file, Action<LogLineError>? onError = null, int? year = null)
        {
            if (reader == null)
            {
                throw new ArgumentNullException(nameof(reader));
            }

            var senders = new Dictionary<string, string>(StringComparer.Ordinal);
            // the last deferral of each recipient of each queued message: Postfix logs the expiry of a message
            // ("status=expired, returned to sender") without its recipients, which only the deferrals name
            var deferrals = new Dictionary<string, Dictionary<string, DeliveryEvent>>(StringComparer.Ordinal);
            var now = DateTimeOffset.UtcNow;
            string? line;
            long n = 0;
            while ((line = reader.ReadLine()) != null)
            {
                n++;
                if (line.Length == 0)
                {
                    continue;
                }

                var exim = EximLine.Match(line);
                if (exim.Success)
                {
                    if (!DateTimeOffset.TryParse(exim.Groups["time"].Value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var et))
                    {
                        onError?.Invoke(new LogLineError(file, n, "an Exim line with an unreadable time"));
                        continue;
                    }

                    var flag = exim.Groups["flag"].Value;
                    var rest = exim.Groups["rest"].Value;
                    var status = flag == "**" ? DeliveryStatus.Bounced : flag == "==" ? DeliveryStatus.Deferred : DeliveryStatus.Sent;
                    var text = rest.Contains(": ") ? rest.Substring(rest.IndexOf(": ", StringComparison.Ordinal) + 2).Trim() : rest.Trim();
                    var host = Regex.Match(rest, @"H=(\S+)").Groups[1].Value;
                    yield return new DeliveryEvent(et, "exim", "", exim.Groups["qid"].Value, exim.Groups["orig"].Success ? exim.Groups["orig"].Value : exim.Groups["to"].Value,
                        null, status, Regex.Match(text, @"\b[245]\.\d{1,3}\.\d{1,3}\b").Value is var d && d.Length > 0 ? d : null, host.Length > 0 ? host : null,
                        status == DeliveryStatus.Sent ? null : text, null, n, file);
                    continue;
                }

                var m = SyslogPrefix.Match(line);
                if (!m.Success)
                {
                    continue; // another program's line
                }

                DateTimeOffset time;
                if (m.Groups["iso"].Success)
                {
                    if (!DateTimeOffset.TryParse(m.Groups["iso"].Value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out time))
                    {
                        onError?.Invoke(new LogLineError(file, n, "a Postfix line with an unreadable time"));
                        continue;
                    }
                }
                else
                {
                    var y = year ?? now.Year;
                    if (!DateTime.TryParseExact($"{y} {Regex.Replace(m.Groups["bsd"].Value, " +", " ")}", "yyyy MMM d HH:mm:ss", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var dt))
                    {
                        onError?.Invoke(new LogLineError(file, n, "a Postfix line with an unreadable date"));
                        continue;
                    }

                    time = new DateTimeOffset(dt, TimeSpan.Zero);
                    if (year == null && time > now.AddDays(2))
                    {
                        time = time.AddYears(-1);
                    }
                }

                var msg = m.Groups["msg"].Value;
                var hostName = m.Groups["host"].Value;
                var expired = PostfixExpired.Match(msg);
                if (expired.Success)
                {
                    if (deferrals.TryGetValue(expired.Groups["qid"].Value, out var pending))
                    {
                        deferrals.Remove(expired.Groups["qid"].Value);
                        foreach (var d in pending.Values)
                        {
                            yield return new DeliveryEvent(time, "postfix", hostName, d.QueueId, d.Recipient, expired.Groups["from"].Value, DeliveryStatus.Expired,
                                d.Dsn, d.Relay, d.Diagnostic, null, n, file);
                        }
                    }

                    continue;
                }

                var from = PostfixFrom.Match(msg);
                if (from.Success)
                {
                    senders[from.Groups["qid"].Value] = from.Groups["from"].Value;
                    if (senders.Count > 200000)
                    {
                        senders.Clear(); // bounded memory on huge logs; a lost sender only leaves Sender empty
                    }
                }

                var delivery = PostfixDelivery.Match(msg);
                if (delivery.Success)
                {
                    var qid = delivery.Groups["qid"].Value;
                    senders.TryGetValue(qid, out var sender);
                    var status = (DeliveryStatus)Enum.Parse(typeof(DeliveryStatus), delivery.Groups["status"].Value, true);
                    var ev = new DeliveryEvent(time, "postfix", hostName, qid, delivery.Groups["to"].Value, sender, status,
                        delivery.Groups["dsn"].Success ? delivery.Groups["dsn"].Value : null, delivery.Groups["relay"].Value,
                        delivery.Groups["text"].Success ? delivery.Groups["text"].Value : null, null, n, file);
                    if (status == DeliveryStatus.Deferred)
                    {
                        if (!deferrals.TryGetValue(qid, out var list))
                        {
                            if (deferrals.Count > 100000)
                            {
                                deferrals.Clear(); // bounded memory on huge logs; an expiry then has no recipients to name
                            }

                            deferrals[qid] = list = new Dictionary<string, DeliveryEvent>(StringComparer.OrdinalIgnoreCase);
                        }

                        list[ev.Recipient ?? ""] = ev;
                    }
                    else if (deferrals.TryGetValue(qid, out var list))
                    {
                        list.Remove(ev.Recipient ?? ""); // delivered or bounced in the end: not part of an expiry
                    }

                    yield return ev;
                    continue;
                }

                var reject = PostfixReject.Match(msg);
                if (reject.Success)
                {
                    var text = reject.Groups["text"].Value;
                    yield return new DeliveryEvent(time, "postfix", hostName, null, reject.Groups["to"].Value, reject.Groups["from"].Value, DeliveryStatus.Rejected,
                        Regex.Match(text, @"\b[245]\.\d{1,3}\.\d{1,3}\b").Value is var rd && rd.Length > 0 ? rd : null, null, text, reject.Groups["client"].Value, n, file);
                    continue;
                }

                if (msg.Contains(" to=<") && msg.Contains("status="))
                {
                    onError?.Invoke(new LogLineError(file, n, "a Postfix delivery line MailOps could not read: " + (msg.Length > 120 ? msg.Substring(0, 120) + "..." : msg)));
                }
            }
        }
    }
}
