using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;

namespace MailOps.Core.Logs
{
    /// <summary>What one MTA log line says, for traffic accounting.</summary>
    public enum MailLogRecordKind
    {
        /// <summary>A message entered the queue from a client (Postfix smtpd <c>client=</c>, Exim <c>&lt;=</c>).</summary>
        Received,

        /// <summary>A message entered the queue locally (Postfix pickup).</summary>
        Pickup,

        /// <summary>The queue manager names a message's sender, size and recipient count (Postfix qmgr <c>from=</c>).</summary>
        QueueSender,

        /// <summary>One recipient's delivery attempt: sent, deferred, bounced (Postfix <c>to=... status=</c>, Exim =&gt; -&gt; ** ==).</summary>
        Delivery,

        /// <summary>Postfix gave up on a queued message (<c>status=expired, returned to sender</c>).</summary>
        Expired,

        /// <summary>A refusal by the server itself (smtpd/postscreen/cleanup <c>reject:</c>, Exim <c>rejected RCPT</c>).</summary>
        Rejected,

        /// <summary>A message was discarded by a rule.</summary>
        Discarded,

        /// <summary>A message left the queue (Postfix <c>removed</c>, Exim <c>Completed</c>).</summary>
        Removed,
    }

    /// <summary>
    /// One line of a Postfix or Exim log that matters for traffic, read without regular expressions (the traffic report
    /// reads gigabytes). Fields a line does not carry are null.
    /// </summary>
    public sealed class MailLogRecord
    {
        public MailLogRecordKind Kind { get; internal set; }
        public DateTimeOffset Time { get; internal set; }

        /// <summary>postfix or exim.</summary>
        public string Mta { get; internal set; } = "postfix";

        /// <summary>The host name in the syslog prefix.</summary>
        public string? Host { get; internal set; }

        /// <summary>The syslog name before the daemon (postfix, postfix-secondary, ...): which Postfix instance wrote it.</summary>
        public string? Instance { get; internal set; }

        /// <summary>smtpd, qmgr, smtp, cleanup, pickup, postscreen, ...</summary>
        public string? Daemon { get; internal set; }

        public string? QueueId { get; internal set; }

        /// <summary>The client (name[address]) that handed the message in, or that was refused.</summary>
        public string? Client { get; internal set; }
        public string? Sender { get; internal set; }
        public long Size { get; internal set; } = -1;

        /// <summary>Recipients of the message (Postfix nrcpt), or -1.</summary>
        public int RecipientCount { get; internal set; } = -1;
        public string? Recipient { get; internal set; }

        public string? Relay
        {
            get => _relay.Value;
            internal set => _relay = new LazySlice(value);
        }

        /// <summary>sent, deferred, bounced (Delivery); "forwarded" for a Postfix sent line that only forwarded.</summary>
        public string? Status { get; internal set; }
        public string? Dsn { get; internal set; }

        /// <summary>The reply or reason text (in brackets on Postfix lines).</summary>
        public string? Text
        {
            get => _text.Value;
            internal set => _text = new LazySlice(value);
        }

        // Cut from the line only when asked for: the traffic report reads millions of lines and never asks for most.
        private LazySlice _relay;
        private LazySlice _text;

        /// <summary>Makes a used record new again (the traffic aggregator reads a big log into one record).</summary>
        internal MailLogRecord Reset()
        {
            Kind = default;
            Time = default;
            Mta = "postfix";
            Host = null;
            Instance = null;
            Daemon = null;
            QueueId = null;
            Client = null;
            Sender = null;
            Size = -1;
            RecipientCount = -1;
            Recipient = null;
            _relay = default;
            Status = null;
            Dsn = null;
            _text = default;
            Delay = 0;
            LineNumber = 0;
            File = null;
            return this;
        }

        internal void SetRelay(string line, int start, int length) => _relay = new LazySlice(line, start, length);

        internal void SetText(string line, int start, int length) => _text = new LazySlice(line, start, length);

        /// <summary>A substring of a line, cut on first use.</summary>
        private struct LazySlice
        {
            private string? _value;
            private string? _line;
            private int _start;
            private int _length;

            public LazySlice(string? value)
            {
                _value = value;
                _line = null;
                _start = 0;
                _length = 0;
            }

            public LazySlice(string line, int start, int length)
            {
                _value = null;
                _line = line;
                _start = start;
                _length = length;
            }

            public string? Value
            {
                get
                {
                    if (_line != null)
                    {
                        _value = _line.Substring(_start, _length);
                        _line = null;
                    }

                    return _value;
                }
            }
        }
        public double Delay { get; internal set; }
        public long LineNumber { get; internal set; }
        public string? File { get; internal set; }

        public override string ToString() => $"{Time:u} {Kind} {QueueId} {Sender ?? Recipient} {Status}";
    }

    /// <summary>
    /// A streaming, allocation-light reader of Postfix (BSD syslog, RFC 3339 syslog and maillog_file formats) and Exim
    /// mainlog lines. Dates without a year take the current year (the previous one for dates that would lie more than
    /// two days in the future); dates without a zone are local time, as syslog writes them.
    /// </summary>
    public sealed class MailLogParser
    {
        private static readonly string[] Months = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
        private readonly int? _year;
        private readonly TimeZoneInfo _zone;
        private readonly DateTimeOffset _now;
        private static readonly string[] Daemons =
        {
            "smtpd", "qmgr", "smtp", "cleanup", "pickup", "local", "virtual", "lmtp", "bounce", "postscreen", "error", "pipe",
            "discard", "retry", "sendmail", "postdrop", "postsuper", "trivial-rewrite",
        };

        private static readonly string[] Statuses = { "sent", "deferred", "bounced", "expired", "undeliverable", "deliverable" };
        private MailLogRecord? _reuse;
        private string? _lastStampLine;
        private int _lastStampStart;
        private int _lastStampLength;
        private DateTimeOffset _lastTime;
        private int _dayKey = -1;
        private DateTime _dayStart;
        private int _hourOffsetHour = -1;
        private TimeSpan _hourOffset;
        private string _lastHost = "";
        private string _lastInstance = "postfix";

        /// <param name="year">The year of BSD-syslog dates (null: guess from today).</param>
        /// <param name="zone">The time zone of dates that carry none (null: local time).</param>
        public MailLogParser(int? year = null, TimeZoneInfo? zone = null)
        {
            _year = year;
            _zone = zone ?? TimeZoneInfo.Local;
            _now = DateTimeOffset.UtcNow;
        }

        /// <summary>Lines that looked like an MTA's but could not be read.</summary>
        public long UnreadableLines { get; private set; }

        /// <summary>The records of a whole log.</summary>
        public IEnumerable<MailLogRecord> Read(TextReader reader, string? file)
        {
            if (reader == null)
            {
                throw new ArgumentNullException(nameof(reader));
            }

            string? line;
            long n = 0;
            while ((line = reader.ReadLine()) != null)
            {
                n++;
                var r = Parse(line);
                if (r != null)
                {
                    r.LineNumber = n;
                    r.File = file;
                    yield return r;
                }
            }
        }

        /// <summary>The record of one line, or null when the line says nothing about traffic.</summary>
        public MailLogRecord? Parse(string line) => Parse(line, null);

        /// <summary>The record of one line, written into <paramref name="reuse"/> when given (then valid until the next call).</summary>
        internal MailLogRecord? Parse(string line, MailLogRecord? reuse)
        {
            _reuse = reuse;
            if (line == null || line.Length < 20)
            {
                return null;
            }

            // Exim mainlog: "2026-11-25 09:00:00[.123][ +0100] [pid] 1abcDE-000123-AB <= ..."
            if (IsDigit(line[0]) && line[4] == '-' && line[10] == ' ')
            {
                return ParseExim(line);
            }

            int pos;
            DateTimeOffset time;
            if (IsDigit(line[0]) && line[4] == '-' && line[10] == 'T')
            {
                // RFC 3339: 2026-11-25T09:00:00.123456+01:00 host prog[pid]: msg
                var sp = line.IndexOf(' ');
                if (sp < 0)
                {
                    return null;
                }

                if (!StampTime(line, 0, sp, true, out time))
                {
                    UnreadableLines++;
                    return null;
                }

                pos = sp + 1;
            }
            else if (line[3] == ' ' && line[6] == ' ' && line[9] == ':' && line[12] == ':' && line[15] == ' ')
            {
                // BSD: "Nov 25 09:00:00 host prog[pid]: msg" (day padded with a space or a zero)
                if (!StampTime(line, 0, 15, false, out time))
                {
                    return null;
                }

                pos = 16;
            }
            else if (line[3] == ' ' && IsDigit(line[4]) && line[5] == ' ' && line[8] == ':' && line[11] == ':' && line[14] == ' ')
            {
                // BSD with an unpadded day: "Mar 7 02:09:33 host prog[pid]: msg" (some syslog daemons; pflogsumm reads it)
                if (!StampTime(line, 0, 14, false, out time))
                {
                    return null;
                }

                pos = 15;
            }
            else
            {
                return null;
            }

            var hostEnd = line.IndexOf(' ', pos);
            if (hostEnd < 0)
            {
                return null;
            }

            var progStart = hostEnd + 1;
            // the program: "postfix/smtpd[123]:", "postfix-secondary/qmgr[9]:", "postfix/submission/smtpd[1]:"
            if (string.CompareOrdinal(line, progStart, "postfix", 0, 7) != 0)
            {
                return null;
            }

            var bracket = line.IndexOf('[', progStart);
            var colon = line.IndexOf(": ", progStart, StringComparison.Ordinal);
            if (colon < 0)
            {
                return null;
            }

            var progEnd = bracket > 0 && bracket < colon ? bracket : colon;
            var slash = line.IndexOf('/', progStart, progEnd - progStart);
            if (slash < 0)
            {
                return null;
            }

            var lastSlash = line.LastIndexOf('/', progEnd - 1, progEnd - progStart);
            var msg = colon + 2;

            // queue id: "3F1A2B4C5D: " (hex) or long ids; NOQUEUE
            var qidEnd = msg;
            while (qidEnd < line.Length && qidEnd - msg <= 20 && IsAlnum(line[qidEnd]))
            {
                qidEnd++;
            }

            var hasQid = false;
            var body = msg;
            if (qidEnd + 1 < line.Length && line[qidEnd] == ':' && line[qidEnd + 1] == ' ' && qidEnd - msg <= 20)
            {
                if (IsQueueId(line, msg, qidEnd))
                {
                    hasQid = true;
                    body = qidEnd + 2;
                }
                else if (qidEnd - msg == 7 && string.CompareOrdinal(line, msg, "NOQUEUE", 0, 7) == 0)
                {
                    body = qidEnd + 2;
                }
            }

            // most lines (connect, disconnect, TLS, message-id, statistics, warnings) say nothing about traffic:
            // leave them before anything is allocated
            if (!IsTrafficBody(line, body, hasQid))
            {
                return null;
            }

            var daemon = Intern(line, lastSlash + 1, progEnd - lastSlash - 1, Daemons);
            var qid = hasQid ? line.Substring(msg, qidEnd - msg) : null;
            var r = NewRecord();
            r.Time = time;
            r.Daemon = daemon;
            r.QueueId = qid;
            if (Starts(line, body, "reject: ") || Starts(line, body, "milter-reject: "))
            {
                if (!FillReject(line, body, r))
                {
                    return null;
                }

                r.Kind = MailLogRecordKind.Rejected;
                return Finish(r, line, hostEnd, pos, progStart, slash);
            }

            if (Starts(line, body, "discard: "))
            {
                FillReject(line, body, r);
                r.Kind = MailLogRecordKind.Discarded;
                return Finish(r, line, hostEnd, pos, progStart, slash);
            }

            if (qid == null)
            {
                return null;
            }

            if (Starts(line, body, "client="))
            {
                if (daemon != "smtpd" && daemon != "postscreen")
                {
                    return null;
                }

                var end = line.IndexOf(',', body);
                r.Client = line.Substring(body + 7, (end < 0 ? line.Length : end) - body - 7);
                r.Kind = MailLogRecordKind.Received;
                return Finish(r, line, hostEnd, pos, progStart, slash);
            }

            if (Starts(line, body, "from=<"))
            {
                var close = line.IndexOf('>', body + 6);
                if (close < 0)
                {
                    UnreadableLines++;
                    return null;
                }

                r.Sender = line.Substring(body + 6, close - body - 6);
                if (Starts(line, close + 1, ", status=expired"))
                {
                    r.Kind = MailLogRecordKind.Expired;
                    return Finish(r, line, hostEnd, pos, progStart, slash);
                }

                if (!Starts(line, close + 1, ", size="))
                {
                    return null;
                }

                r.Size = ReadLong(line, close + 8);
                var nr = line.IndexOf("nrcpt=", close, StringComparison.Ordinal);
                r.RecipientCount = nr > 0 ? (int)ReadLong(line, nr + 6) : -1;
                r.Kind = MailLogRecordKind.QueueSender;
                return Finish(r, line, hostEnd, pos, progStart, slash);
            }

            if (Starts(line, body, "to=<"))
            {
                return FillDelivery(line, body, r) ? Finish(r, line, hostEnd, pos, progStart, slash) : null;
            }

            if (daemon == "pickup" && (Starts(line, body, "uid=") || Starts(line, body, "sender=")))
            {
                var f = line.IndexOf("from=<", body, StringComparison.Ordinal);
                if (f > 0)
                {
                    var close = line.IndexOf('>', f + 6);
                    r.Sender = close > 0 ? line.Substring(f + 6, close - f - 6) : null;
                }

                r.Kind = MailLogRecordKind.Pickup;
                return Finish(r, line, hostEnd, pos, progStart, slash);
            }

            if (Starts(line, body, "removed") && line.Length == body + 7)
            {
                r.Kind = MailLogRecordKind.Removed;
                return Finish(r, line, hostEnd, pos, progStart, slash);
            }

            // cleanup header/body checks: "3F1A: reject: header Subject: ..." handled above; "warning"/"hold" are not traffic
            return null;
        }

        private MailLogRecord Finish(MailLogRecord r, string line, int hostEnd, int hostStart, int progStart, int slash)
        {
            // a log has few hosts and instances: the last ones are kept rather than cut again from every line
            if (!Same(line, hostStart, hostEnd - hostStart, _lastHost))
            {
                _lastHost = line.Substring(hostStart, hostEnd - hostStart);
            }

            if (!Same(line, progStart, slash - progStart, _lastInstance))
            {
                _lastInstance = line.Substring(progStart, slash - progStart);
            }

            r.Host = _lastHost;
            r.Instance = _lastInstance;
            return r;
        }

        private MailLogRecord NewRecord() => _reuse?.Reset() ?? new MailLogRecord();

        private static bool Same(string line, int start, int length, string value) =>
            value.Length == length && string.CompareOrdinal(line, start, value, 0, length) == 0;

        private static string Intern(string line, int start, int length, string[] known)
        {
            foreach (var k in known)
            {
                if (Same(line, start, length, k))
                {
                    return k;
                }
            }

            return line.Substring(start, length);
        }

        private static bool IsTrafficBody(string line, int body, bool hasQid)
        {
            if (body >= line.Length)
            {
                return false;
            }

            switch (line[body])
            {
                case 'r':
                    return Starts(line, body, "reject: ") || (hasQid && Starts(line, body, "removed"));
                case 'm':
                    return Starts(line, body, "milter-reject: ");
                case 'd':
                    return Starts(line, body, "discard: ");
                case 'c':
                    return hasQid && Starts(line, body, "client=");
                case 'f':
                    return hasQid && Starts(line, body, "from=<");
                case 't':
                    return hasQid && Starts(line, body, "to=<");
                case 'u':
                    return hasQid && Starts(line, body, "uid=");
                case 's':
                    return hasQid && Starts(line, body, "sender=");
                default:
                    return false;
            }
        }

        private static bool IsAlnum(char c) => (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');

        private bool FillDelivery(string line, int body, MailLogRecord r)
        {
            var close = line.IndexOf('>', body + 4);
            if (close < 0)
            {
                UnreadableLines++;
                return false;
            }

            r.Recipient = line.Substring(body + 4, close - body - 4);
            var relay = line.IndexOf(" relay=", close, StringComparison.Ordinal);
            var status = line.IndexOf(" status=", close, StringComparison.Ordinal);
            if (relay < 0 || status < 0)
            {
                UnreadableLines++;
                return false;
            }

            var relayEnd = line.IndexOf(',', relay);
            r.SetRelay(line, relay + 7, (relayEnd < 0 ? status : relayEnd) - relay - 7);
            var delay = line.IndexOf(" delay=", close, StringComparison.Ordinal);
            if (delay > 0)
            {
                r.Delay = ReadDouble(line, delay + 7);
            }

            var dsn = line.IndexOf(" dsn=", close, StringComparison.Ordinal);
            if (dsn > 0 && dsn < status)
            {
                var dsnEnd = line.IndexOf(',', dsn);
                r.Dsn = line.Substring(dsn + 5, (dsnEnd < 0 ? status : dsnEnd) - dsn - 5);
            }

            var s = status + 8;
            var se = s;
            while (se < line.Length && line[se] != ' ' && line[se] != ',')
            {
                se++;
            }

            string? st = null;
            foreach (var known in Statuses)
            {
                if (Same(line, s, se - s, known))
                {
                    st = known;
                    break;
                }
            }

            if (st == null)
            {
                UnreadableLines++;
                return false;
            }

            if (st == "undeliverable" || st == "deliverable")
            {
                return false; // address verification probes (sendmail -bv), not traffic
            }

            var paren = line.IndexOf(" (", se, StringComparison.Ordinal);
            if (paren >= 0 && line[line.Length - 1] == ')')
            {
                r.SetText(line, paren + 2, line.Length - paren - 3);
                if (st == "sent" && line.IndexOf("forwarded as ", paren + 2, StringComparison.Ordinal) >= 0)
                {
                    st = "forwarded";
                }
            }

            r.Status = st;
            r.Kind = MailLogRecordKind.Delivery;
            return true;
        }

        private static bool FillReject(string line, int body, MailLogRecord r)
        {
            // smtpd: "reject: RCPT from host[1.2.3.4]: 554 5.7.1 <x>: Relay access denied; from=<a> to=<b> proto=ESMTP helo=<h>"
            // cleanup: "reject: header Subject: ... from host[1.2.3.4]; from=<a> to=<b> proto=ESMTP helo=<h>: 5.7.1 text"
            var fromClient = line.IndexOf(" from ", body, StringComparison.Ordinal);
            if (fromClient > 0)
            {
                var cEnd = line.IndexOf(']', fromClient);
                if (cEnd > 0)
                {
                    r.Client = line.Substring(fromClient + 6, cEnd + 1 - fromClient - 6);
                }
            }

            var semi = line.IndexOf("; from=<", body, StringComparison.Ordinal);
            if (semi > 0)
            {
                var close = line.IndexOf('>', semi + 8);
                if (close > 0)
                {
                    r.Sender = line.Substring(semi + 8, close - semi - 8);
                    var to = line.IndexOf(" to=<", close, StringComparison.Ordinal);
                    if (to > 0)
                    {
                        var tClose = line.IndexOf('>', to + 5);
                        if (tClose > 0)
                        {
                            r.Recipient = line.Substring(to + 5, tClose - to - 5);
                        }
                    }
                }
            }

            var textStart = r.Client != null ? line.IndexOf("]: ", fromClient, StringComparison.Ordinal) : -1;
            if (textStart > 0 && (semi < 0 || textStart < semi))
            {
                r.Text = line.Substring(textStart + 3, (semi > 0 ? semi : line.Length) - textStart - 3);
            }
            else
            {
                r.Text = line.Substring(body, (semi > 0 ? semi : line.Length) - body);
            }

            var code = r.Text.Length > 9 ? r.Text : "";
            if (code.Length > 6 && IsDigit(code[0]) && code[3] == ' ' && IsDigit(code[4]) && code[5] == '.')
            {
                var e = code.IndexOf(' ', 4);
                r.Dsn = e > 0 ? code.Substring(4, e - 4) : null;
            }

            r.Status = "rejected";
            return true;
        }

        private MailLogRecord? ParseExim(string line)
        {
            // 2026-11-25 09:00:00[.123][ +0100] [[pid]] 1abcDE-000123-AB <= sender H=host [ip] P=esmtp S=1234
            var p = 19;
            if (p < line.Length && line[p] == '.')
            {
                while (p + 1 < line.Length && IsDigit(line[p + 1]))
                {
                    p++;
                }

                p++;
            }

            var stampEnd = p;
            if (p + 6 < line.Length && line[p] == ' ' && (line[p + 1] == '+' || line[p + 1] == '-') && IsDigit(line[p + 2]))
            {
                stampEnd = p + 6;
                p += 6;
            }

            if (p >= line.Length || line[p] != ' ')
            {
                return null;
            }

            p++;
            if (p < line.Length && line[p] == '[')
            {
                var e = line.IndexOf("] ", p, StringComparison.Ordinal);
                if (e < 0)
                {
                    return null;
                }

                p = e + 2;
            }

            if (!StampTime(line, 0, stampEnd, true, out var time))
            {
                UnreadableLines++;
                return null;
            }

            var r = NewRecord();
            r.Time = time;
            r.Mta = "exim";
            r.Instance = "exim";
            var idEnd = line.IndexOf(' ', p);
            if (idEnd < 0)
            {
                return null;
            }

            var id = line.Substring(p, idEnd - p);
            if (!IsEximId(id))
            {
                // "H=host [1.2.3.4] F=<a> rejected RCPT <b>: text" (no message id)
                var rej = line.IndexOf(" rejected RCPT ", p, StringComparison.Ordinal);
                if (rej < 0)
                {
                    return null;
                }

                r.Kind = MailLogRecordKind.Rejected;
                r.Status = "rejected";
                r.Client = EximField(line, p, "H=");
                var f = EximField(line, p, "F=");
                r.Sender = f?.Trim('<', '>');
                var rcptStart = rej + 15;
                var rcptEnd = line.IndexOf(": ", rcptStart, StringComparison.Ordinal);
                r.Recipient = line.Substring(rcptStart, (rcptEnd < 0 ? line.Length : rcptEnd) - rcptStart).Trim('<', '>');
                r.Text = rcptEnd < 0 ? null : line.Substring(rcptEnd + 2);
                return r;
            }

            r.QueueId = id;
            var flagStart = idEnd + 1;
            if (flagStart + 3 > line.Length)
            {
                return null;
            }

            var flag = line.Substring(flagStart, 2);
            var rest = flagStart + 3;
            switch (flag)
            {
                case "<=":
                {
                    var se = line.IndexOf(' ', rest);
                    var sender = line.Substring(rest, (se < 0 ? line.Length : se) - rest);
                    r.Sender = sender == "<>" ? "" : sender;
                    r.Client = EximField(line, rest, " H=") is string h ? h : null;
                    if (r.Client != null)
                    {
                        var ip = line.IndexOf(" [", line.IndexOf(" H=", rest, StringComparison.Ordinal) + 3, StringComparison.Ordinal);
                        if (ip > 0)
                        {
                            var ipe = line.IndexOf(']', ip);
                            if (ipe > 0 && !r.Client.EndsWith("]", StringComparison.Ordinal))
                            {
                                r.Client = r.Client + line.Substring(ip + 1, ipe - ip);
                            }
                        }
                    }

                    var size = line.IndexOf(" S=", rest, StringComparison.Ordinal);
                    r.Size = size > 0 ? ReadLong(line, size + 3) : -1;
                    r.Kind = r.Client == null && line.IndexOf(" U=", rest, StringComparison.Ordinal) > 0 ? MailLogRecordKind.Pickup : MailLogRecordKind.Received;
                    return r;
                }

                case "=>":
                case "->":
                case "*>":
                case "**":
                case "==":
                {
                    var te = line.IndexOf(' ', rest);
                    var to = line.Substring(rest, (te < 0 ? line.Length : te) - rest);
                    // "=> local@x <original@y> R=..." names the original address in angle brackets
                    if (te > 0 && te + 1 < line.Length && line[te + 1] == '<')
                    {
                        var oe = line.IndexOf('>', te + 1);
                        if (oe > 0)
                        {
                            to = line.Substring(te + 2, oe - te - 2);
                        }
                    }

                    r.Recipient = to;
                    r.Status = flag == "**" ? "bounced" : flag == "==" ? "deferred" : "sent";
                    r.Relay = EximField(line, rest, " H=");
                    if (flag == "**" || flag == "==")
                    {
                        var c = line.IndexOf(": ", rest, StringComparison.Ordinal);
                        r.Text = c > 0 ? line.Substring(c + 2) : null;
                        var d = r.Text == null ? -1 : FindDsn(r.Text);
                        r.Dsn = d >= 0 ? r.Text!.Substring(d, Math.Min(r.Text.IndexOf(' ', d) is var de && de > 0 ? de - d : r.Text.Length - d, 9)) : null;
                    }

                    r.Kind = MailLogRecordKind.Delivery;
                    return r;
                }

                default:
                    if (string.CompareOrdinal(line, flagStart, "Completed", 0, 9) == 0)
                    {
                        r.Kind = MailLogRecordKind.Removed;
                        return r;
                    }

                    if (line.IndexOf(" rejected after DATA", flagStart, StringComparison.Ordinal) > 0 || line.IndexOf(" rejected RCPT", flagStart, StringComparison.Ordinal) > 0)
                    {
                        r.Kind = MailLogRecordKind.Rejected;
                        r.Status = "rejected";
                        r.Client = EximField(line, flagStart, "H=");
                        r.Sender = EximField(line, flagStart, "F=")?.Trim('<', '>');
                        var c = line.IndexOf(": ", flagStart, StringComparison.Ordinal);
                        r.Text = c > 0 ? line.Substring(c + 2) : null;
                        return r;
                    }

                    return null;
            }
        }

        private static int FindDsn(string text)
        {
            for (var i = 0; i + 4 < text.Length; i++)
            {
                if ((text[i] == '4' || text[i] == '5') && text[i + 1] == '.' && IsDigit(text[i + 2]) && (i == 0 || text[i - 1] == ' '))
                {
                    return i;
                }
            }

            return -1;
        }

        private static string? EximField(string line, int from, string name)
        {
            var i = line.IndexOf(name, from, StringComparison.Ordinal);
            if (i < 0)
            {
                return null;
            }

            var s = i + name.Length;
            var e = line.IndexOf(' ', s);
            return line.Substring(s, (e < 0 ? line.Length : e) - s);
        }

        private static bool IsEximId(string id)
        {
            // old: 1abcDE-00012A-AB (6-6-2); new (4.97+): 1abcDE-000000005vi-0000 (6-11-4)
            var a = id.IndexOf('-');
            var b = a < 0 ? -1 : id.IndexOf('-', a + 1);
            return a == 6 && b > a + 6 && id.Length - b - 1 >= 2 && id.Length - b - 1 <= 4;
        }

        private static bool IsQueueId(string line, int start, int end)
        {
            if (end - start < 5)
            {
                return false;
            }

            // hex ids are upper case, long ids mix digits and both cases: a word in lower case ("reject: ", "warning: ",
            // "discard: " right after the program) is not a queue id
            var lowerOnly = true;
            for (var i = start; i < end; i++)
            {
                var c = line[i];
                if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
                {
                    return false;
                }

                lowerOnly &= c >= 'a' && c <= 'z';
            }

            return !lowerOnly && (string.CompareOrdinal(line, start, "NOQUEUE", 0, 7) != 0 || end - start != 7);
        }

        private bool StampTime(string line, int start, int end, bool iso, out DateTimeOffset time)
        {
            // lines of the same second have the same stamp: compared in place, nothing cut
            var len = end - start;
            if (len == _lastStampLength && _lastStampLine != null && string.CompareOrdinal(line, start, _lastStampLine, _lastStampStart, len) == 0)
            {
                time = _lastTime;
                return true;
            }

            if (!(iso ? IsoTime(line, start, end, out time) : BsdTime(line, start, len, out time)) && !SlowTime(line, start, end, iso, out time))
            {
                return false;
            }

            _lastStampLine = line;
            _lastStampStart = start;
            _lastStampLength = len;
            _lastTime = time;
            return true;
        }

        /// <summary>"Nov 25 09:00:00", "Nov  5 09:00:00", "Nov 05 09:00:00" (15 characters) or "Nov 5 09:00:00" (14).</summary>
        private bool BsdTime(string line, int start, int len, out DateTimeOffset time)
        {
            time = default;
            var month = Month(line, start);
            var d = len == 14 ? -1 : 0;
            var day = len == 14 ? line[start + 4] - '0' : (line[start + 4] == ' ' ? 0 : (line[start + 4] - '0') * 10) + (line[start + 5] - '0');
            var h = Two(line, start + 7 + d);
            var mi = Two(line, start + 10 + d);
            var s = Two(line, start + 13 + d);
            if (month == 0 || day < 1 || day > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60)
            {
                return false;
            }

            var year = _year ?? _now.Year;
            if (!Day(year, month, day))
            {
                return false;
            }

            time = At(h, mi, Math.Min(s, 59), 0, null);
            if (_year == null && time > _now.AddDays(2))
            {
                // a date of last year (the log has no year): the slow way, once
                return false;
            }

            return true;
        }

        /// <summary>"2026-11-25T09:00:00[.123456](Z|+01:00|+0100|)" read digit by digit; anything else: false.</summary>
        private bool IsoTime(string line, int start, int end, out DateTimeOffset time)
        {
            time = default;
            if (end - start < 19 || line[start + 4] != '-' || line[start + 7] != '-' || line[start + 13] != ':' || line[start + 16] != ':')
            {
                return false;
            }

            var year = Two(line, start) * 100 + Two(line, start + 2);
            var month = Two(line, start + 5);
            var day = Two(line, start + 8);
            var h = Two(line, start + 11);
            var mi = Two(line, start + 14);
            var s = Two(line, start + 17);
            if (year < 1 || month < 1 || month > 12 || day < 1 || day > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60)
            {
                return false;
            }

            var p = start + 19;
            long fraction = 0;
            if (p < end && line[p] == '.')
            {
                p++;
                var scale = TimeSpan.TicksPerSecond;
                while (p < end && IsDigit(line[p]))
                {
                    scale /= 10;
                    fraction += (line[p] - '0') * scale;
                    p++;
                }
            }

            if (p + 1 < end && line[p] == ' ')
            {
                p++; // Exim: "2026-11-25 09:00:00 +0100"
            }

            TimeSpan? offset = null;
            if (p < end)
            {
                if (line[p] == 'Z' && p + 1 == end)
                {
                    offset = TimeSpan.Zero;
                }
                else if ((line[p] == '+' || line[p] == '-') && (end - p == 6 && line[p + 3] == ':' || end - p == 5))
                {
                    var oh = Two(line, p + 1);
                    var om = Two(line, end - 2);
                    if (oh < 0 || oh > 14 || om < 0 || om > 59)
                    {
                        return false;
                    }

                    offset = new TimeSpan(line[p] == '-' ? -oh : oh, line[p] == '-' ? -om : om, 0);
                }
                else
                {
                    return false;
                }
            }

            if (!Day(year, month, day))
            {
                return false;
            }

            time = At(h, mi, Math.Min(s, 59), fraction, offset);
            return true;
        }

        /// <summary>Sets the day the next times fall on (kept from line to line: a log's lines are mostly of one day).</summary>
        private bool Day(int year, int month, int day)
        {
            var key = (year * 13 + month) * 32 + day;
            if (key != _dayKey)
            {
                if (day > DateTime.DaysInMonth(year, month))
                {
                    return false;
                }

                _dayKey = key;
                _dayStart = new DateTime(year, month, day, 0, 0, 0, DateTimeKind.Unspecified);
                _hourOffsetHour = -1;
            }

            return true;
        }

        private DateTimeOffset At(int h, int mi, int s, long fraction, TimeSpan? offset)
        {
            var ticks = _dayStart.Ticks + ((h * 60L + mi) * 60 + s) * TimeSpan.TicksPerSecond + fraction;
            if (offset == null)
            {
                // the zone's offset, looked up once an hour (zones change offset on the hour)
                if (h != _hourOffsetHour)
                {
                    _hourOffset = _zone.GetUtcOffset(_dayStart.AddHours(h));
                    _hourOffsetHour = h;
                }

                offset = _hourOffset;
            }

            return new DateTimeOffset(ticks, offset.Value);
        }

        private static int Two(string line, int at) => IsDigit(line[at]) && IsDigit(line[at + 1]) ? (line[at] - '0') * 10 + (line[at + 1] - '0') : -1;

        private static int Month(string line, int at)
        {
            for (var i = 0; i < Months.Length; i++)
            {
                if (string.CompareOrdinal(line, at, Months[i], 0, 3) == 0)
                {
                    return i + 1;
                }
            }

            return 0;
        }

        /// <summary>The general reading of a stamp (what the fast readers leave: other ISO shapes, last year's dates).</summary>
        private bool SlowTime(string line, int start, int end, bool iso, out DateTimeOffset time)
        {
            var len = end - start;
            var stamp = line.Substring(start, len);
            if (iso)
            {
                var hasZone = stamp.EndsWith("Z", StringComparison.Ordinal) || (stamp.Length > 19 && (stamp.IndexOf('+', 19) > 0 || stamp.IndexOf('-', 19) > 0));
                var text = stamp.Replace(' ', 'T').Replace("T+", "+").Replace("T-", "-");
                if (text.Length > 5 && (text[text.Length - 5] == '+' || text[text.Length - 5] == '-') && IsDigit(text[text.Length - 1]) && text.IndexOf(':', text.Length - 5) < 0)
                {
                    text = text.Insert(text.Length - 2, ":"); // +0100 -> +01:00
                }

                if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture,
                        hasZone ? DateTimeStyles.None : DateTimeStyles.AssumeLocal, out time))
                {
                    return false;
                }

                if (!hasZone)
                {
                    time = Local(time.DateTime);
                }
            }
            else
            {
                var month = Array.IndexOf(Months, stamp.Substring(0, 3)) + 1;
                if (month == 0)
                {
                    time = default;
                    return false;
                }

                var d = len == 14 ? -1 : 0;
                var day = len == 14 ? stamp[4] - '0' : (stamp[4] == ' ' ? 0 : (stamp[4] - '0') * 10) + (stamp[5] - '0');
                var h = (stamp[7 + d] - '0') * 10 + (stamp[8 + d] - '0');
                var mi = (stamp[10 + d] - '0') * 10 + (stamp[11 + d] - '0');
                var s = (stamp[13 + d] - '0') * 10 + (stamp[14 + d] - '0');
                var year = _year ?? _now.Year;
                if (day < 1 || day > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60 || day > DateTime.DaysInMonth(year, month))
                {
                    time = default;
                    return false;
                }

                time = Local(new DateTime(year, month, day, h, mi, Math.Min(s, 59)));
                if (_year == null && time > _now.AddDays(2))
                {
                    time = Local(new DateTime(year - 1, month, Math.Min(day, DateTime.DaysInMonth(year - 1, month)), h, mi, Math.Min(s, 59)));
                }
            }

            return true;
        }

        private DateTimeOffset Local(DateTime dt)
        {
            dt = DateTime.SpecifyKind(dt, DateTimeKind.Unspecified);
            return new DateTimeOffset(dt, _zone.GetUtcOffset(dt));
        }

        private static bool Starts(string line, int at, string what) =>
            at + what.Length <= line.Length && string.CompareOrdinal(line, at, what, 0, what.Length) == 0;

        private static bool IsDigit(char c) => c >= '0' && c <= '9';

        private static long ReadLong(string line, int at)
        {
            long v = 0;
            var any = false;
            while (at < line.Length && IsDigit(line[at]))
            {
                v = v * 10 + (line[at] - '0');
                at++;
                any = true;
            }

            return any ? v : -1;
        }

        private static double ReadDouble(string line, int at)
        {
            // "12", "0.35", "1.2e-05" is not written by Postfix; digits, then a point and digits
            double v = 0;
            var e = at;
            while (e < line.Length && IsDigit(line[e]))
            {
                v = v * 10 + (line[e] - '0');
                e++;
            }

            if (e < line.Length && line[e] == '.')
            {
                var scale = 0.1;
                e++;
                while (e < line.Length && IsDigit(line[e]))
                {
                    v += (line[e] - '0') * scale;
                    scale /= 10;
                    e++;
                }
            }

            return v;
        }
    }
}
