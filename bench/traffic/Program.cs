using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Text;
using MailOps.Core.Logs;
using MailOps.Core.Traffic;

namespace MailOps.Bench.Traffic
{
    /// <summary>
    /// generate &lt;path&gt; &lt;megabytes&gt; [seed]: a realistic Postfix log (BSD syslog dates, one week from 1 November).
    /// totals &lt;path&gt;: MailOps' totals of a log, one line of name=value pairs, then the seconds it took.
    /// </summary>
    internal static class Program
    {
        private static int Main(string[] args)
        {
            if (args.Length >= 3 && args[0] == "generate")
            {
                var seed = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 1;
                var bytes = Generator.Write(args[1], long.Parse(args[2], CultureInfo.InvariantCulture) * 1024 * 1024, seed);
                Console.WriteLine($"wrote {bytes} bytes");
                return 0;
            }

            if (args.Length >= 2 && (args[0] == "read" || args[0] == "parse"))
            {
                // profiling aids: the cost of reading lines, and of reading and parsing them
                var sw = Stopwatch.StartNew();
                long n = 0;
                using var reader = new StreamReader(args[1], Encoding.UTF8, true, 1 << 16);
                if (args[0] == "read")
                {
                    while (reader.ReadLine() != null)
                    {
                        n++;
                    }
                }
                else
                {
                    foreach (var r in (Environment.GetEnvironmentVariable("MAILOPS_BENCH_UTC") == "1" ? new MailLogParser(null, TimeZoneInfo.Utc) : new MailLogParser()).Read(reader, args[1]))
                    {
                        n++;
                    }
                }

                Console.WriteLine($"{args[0]}: {n} in {sw.Elapsed.TotalSeconds:0.000} s, {GC.GetTotalAllocatedBytes() / 1048576} MB allocated, {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)} collections");
                return 0;
            }

            if (args.Length >= 2 && args[0] == "totals")
            {
                var sw = Stopwatch.StartNew();
                // what Get-MailTrafficReport -Totals asks for; MAILOPS_BENCH_ROWS=1: hourly rows and reasons as well
                var rows = Environment.GetEnvironmentVariable("MAILOPS_BENCH_ROWS") == "1";
                var agg = new TrafficAggregator(new TrafficOptions { TotalsOnly = !rows, ClassifyReasons = rows });
                var parser = new MailLogParser();
                using (var reader = new StreamReader(args[1], Encoding.UTF8, true, 1 << 16))
                {
                    agg.AddLog(reader, parser, args[1]);
                }

                var t = agg.Totals;
                Console.WriteLine(string.Join(";", new[]
                {
                    "received=" + t.Received, "delivered=" + t.Delivered, "forwarded=" + t.Forwarded, "deferred=" + t.Deferred,
                    "deferrals=" + t.Deferrals, "bounced=" + t.Bounced, "rejected=" + t.Rejected, "discarded=" + t.Discarded,
                    "bytes received=" + t.BytesReceived, "bytes delivered=" + t.BytesDelivered, "senders=" + t.Senders,
                    "sending hosts/domains=" + t.SendingHostsDomains, "recipients=" + t.Recipients,
                    "recipient hosts/domains=" + t.RecipientHostsDomains,
                }));
                Console.WriteLine("seconds=" + sw.Elapsed.TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture) + ";lines=" + t.Lines + ";allocatedMB=" + (GC.GetTotalAllocatedBytes() / 1048576) + ";gc=" + GC.CollectionCount(0) + "/" + GC.CollectionCount(1) + "/" + GC.CollectionCount(2) + ";gcPauseMs=" + (long)GC.GetTotalPauseDuration().TotalMilliseconds);
                return 0;
            }

            Console.Error.WriteLine("usage: TrafficBench generate <path> <megabytes> [seed] | totals <path>");
            return 2;
        }
    }

    /// <summary>
    /// A week of a busy mail hub: inbound and submitted mail from a few thousand senders to a few hundred thousand
    /// recipients, deliveries with retries, bounces and their notifications, local pickup, rejections, and the noise
    /// lines around them (connect, disconnect, TLS, anvil, postscreen, warnings).
    /// </summary>
    internal sealed class Generator
    {
        private static readonly string[] Tlds = { "com", "org", "net", "fr", "de", "co.uk", "info", "io" };
        private readonly Random _rnd;
        private readonly StreamWriter _w;
        private readonly string[] _senderDomains;
        private readonly string[] _senders;
        private readonly string[] _rcptDomains;
        private readonly string[] _clients;
        private readonly string[] _recipients;
        private readonly Queue<(long Due, Action Write)> _later = new Queue<(long, Action)>();
        private DateTime _t = new DateTime(2026, 11, 1, 0, 0, 0);
        private long _sec = -1;
        private string _stamp = "";
        private long _qid = 0x3F1A2B4C5DL;
        private long _n;

        private Generator(StreamWriter w, int seed)
        {
            _w = w;
            _rnd = new Random(seed);
            _senderDomains = new string[1200];
            for (var i = 0; i < _senderDomains.Length; i++)
            {
                _senderDomains[i] = (i % 17 == 0 ? "Corp" : "corp") + i + "." + Tlds[i % Tlds.Length];
            }

            _senders = new string[6000];
            var locals = new[] { "news", "billing", "no-reply", "alerts", "john.doe", "Jane.Roe", "support", "info", "orders", "hr" };
            for (var i = 0; i < _senders.Length; i++)
            {
                _senders[i] = locals[i % locals.Length] + (i / locals.Length) + "@" + _senderDomains[_rnd.Next(_senderDomains.Length)];
            }

            _rcptDomains = new string[8000];
            var big = new[] { "gmail.com", "outlook.com", "yahoo.fr", "orange.fr", "free.fr", "hotmail.com", "gmx.de", "web.de", "laposte.net", "icloud.com" };
            for (var i = 0; i < _rcptDomains.Length; i++)
            {
                _rcptDomains[i] = i < big.Length ? big[i] : "dom" + i + "." + Tlds[i % Tlds.Length];
            }

            // the hub's audience: 200,000 addresses (a real log's recipients are many, but not without end)
            _recipients = new string[200000];
            for (var i = 0; i < _recipients.Length; i++)
            {
                _recipients[i] = "u" + i + "@" + (i % 5 < 3 ? _rcptDomains[i % 10] : _rcptDomains[(int)((i * 7919L) % _rcptDomains.Length)]);
            }

            _clients = new string[3000];
            for (var i = 0; i < _clients.Length; i++)
            {
                _clients[i] = i % 10 == 0 ? $"unknown[203.0.{i / 250 % 250}.{i % 250}]" : $"mail{i % 7}.{_senderDomains[i % _senderDomains.Length]}[198.51.{i / 250 % 250}.{i % 250}]";
            }
        }

        public static long Write(string path, long bytes, int seed)
        {
            using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 20);
            using var w = new StreamWriter(fs, new UTF8Encoding(false), 1 << 20);
            var g = new Generator(w, seed);
            while (fs.Position + (1 << 20) < bytes)
            {
                for (var i = 0; i < 200; i++)
                {
                    g.Next();
                }

                w.Flush();
            }

            while (g._later.Count > 0)
            {
                g._later.Dequeue().Write();
            }

            w.Flush();
            return fs.Length;
        }

        private void Next()
        {
            _n++;
            while (_later.Count > 0 && _later.Peek().Due <= _n)
            {
                _later.Dequeue().Write();
            }

            _t = _t.AddMilliseconds(_rnd.Next(1600));
            var k = _rnd.Next(100);
            if (k < 70)
            {
                Message(_rnd.Next(10) < 8 ? "smtpd" : "submission/smtpd");
            }
            else if (k < 76)
            {
                Pickup();
            }
            else if (k < 88)
            {
                Reject();
            }
            else
            {
                Noise();
            }

            if (_rnd.Next(3) == 0)
            {
                Noise();
            }
        }

        private void Message(string smtpd)
        {
            var q = Qid();
            var client = _clients[_rnd.Next(_clients.Length)];
            var pid = _rnd.Next(1000, 65000);
            Line(smtpd, pid, "connect from " + client);
            if (_rnd.Next(2) == 0)
            {
                Line(smtpd, pid, "Anonymous TLS connection established from " + client + ": TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256");
            }

            Line(smtpd, pid, smtpd == "smtpd" ? q + ": client=" + client : q + ": client=" + client + ", sasl_method=PLAIN, sasl_username=app" + _rnd.Next(50));
            Line("cleanup", 0, q + ": message-id=<" + _n.ToString("x", CultureInfo.InvariantCulture) + "." + q + "@" + _senderDomains[_rnd.Next(_senderDomains.Length)] + ">");
            var sender = _rnd.Next(40) == 0 ? "" : _senders[Skewed(_senders.Length)];
            var n = _rnd.Next(10) < 7 ? 1 : 1 + _rnd.Next(_rnd.Next(10) == 0 ? 40 : 5);
            var size = 800 + _rnd.Next(_rnd.Next(10) == 0 ? 5000000 : 60000);
            var qmgr = q + ": from=<" + sender + ">, size=" + size + ", nrcpt=" + n + " (queue active)";
            Line("qmgr", 0, qmgr);
            Line(smtpd, pid, "disconnect from " + client + " ehlo=2 starttls=1 mail=1 rcpt=" + n + " data=1 quit=1 commands=" + (6 + n));
            var deferred = new List<string>();
            for (var i = 0; i < n; i++)
            {
                var rcpt = Rcpt();
                var o = _rnd.Next(100);
                if (o < 85)
                {
                    Sent(q, rcpt);
                }
                else if (o < 95)
                {
                    Deferred(q, rcpt);
                    deferred.Add(rcpt);
                }
                else
                {
                    Bounced(q, rcpt, sender);
                }
            }

            if (deferred.Count == 0)
            {
                Line("qmgr", 0, q + ": removed");
                return;
            }

            // retried later: qmgr names the message again, then delivers, defers again or gives up
            _later.Enqueue((_n + 50 + _rnd.Next(500), () =>
            {
                Line("qmgr", 0, qmgr);
                var expired = false;
                foreach (var rcpt in deferred)
                {
                    var o = _rnd.Next(10);
                    if (o < 7)
                    {
                        Sent(q, rcpt);
                    }
                    else if (o < 9)
                    {
                        Deferred(q, rcpt);
                        Deferred(q, rcpt);
                        expired = true;
                    }
                    else
                    {
                        Bounced(q, rcpt, sender);
                    }
                }

                if (expired)
                {
                    Line("qmgr", 0, q + ": from=<" + sender + ">, status=expired, returned to sender");
                    if (sender.Length > 0)
                    {
                        Notification(q, sender);
                    }
                }

                Line("qmgr", 0, q + ": removed");
            }));
        }

        private void Pickup()
        {
            var q = Qid();
            var user = _rnd.Next(3) == 0 ? "root" : "www-data";
            Line("pickup", 0, q + ": uid=" + (user == "root" ? 0 : 33) + " from=<" + user + ">");
            Line("cleanup", 0, q + ": message-id=<" + _n.ToString("x", CultureInfo.InvariantCulture) + "@mx1.example.org>");
            Line("qmgr", 0, q + ": from=<" + user + "@mx1.example.org>, size=" + (400 + _rnd.Next(4000)) + ", nrcpt=1 (queue active)");
            Sent(q, _rnd.Next(2) == 0 ? "admin@example.org" : Rcpt());
            Line("qmgr", 0, q + ": removed");
        }

        private void Reject()
        {
            var client = _clients[_rnd.Next(_clients.Length)];
            var pid = _rnd.Next(1000, 65000);
            Line("smtpd", pid, "connect from " + client);
            var rcpt = "user" + _rnd.Next(5000) + "@example.org";
            switch (_rnd.Next(4))
            {
                case 0:
                    Line("smtpd", pid, "NOQUEUE: reject: RCPT from " + client + ": 554 5.7.1 <" + rcpt + ">: Relay access denied; from=<" + _senders[_rnd.Next(_senders.Length)] + "> to=<" + rcpt + "> proto=ESMTP helo=<" + client.Substring(0, client.IndexOf('[')) + ">");
                    break;
                case 1:
                    Line("smtpd", pid, "NOQUEUE: reject: RCPT from " + client + ": 550 5.1.1 <" + rcpt + ">: Recipient address rejected: User unknown in virtual mailbox table; from=<a" + _rnd.Next(100000) + "@spam" + _rnd.Next(300) + ".test> to=<" + rcpt + "> proto=ESMTP helo=<spam>");
                    break;
                case 2:
                    Line("postscreen", 0, "NOQUEUE: reject: RCPT from [192.0.2." + _rnd.Next(250) + "]:" + _rnd.Next(1024, 65000) + ": 550 5.7.1 Service unavailable; client [192.0.2.1] blocked using zen.spamhaus.org; from=<x@spam.test>, to=<" + rcpt + ">, proto=ESMTP, helo=<spam>");
                    break;
                default:
                    Line("smtpd", pid, "NOQUEUE: reject: RCPT from " + client + ": 450 4.7.1 Client host rejected: cannot find your hostname, [198.51.100.9]; from=<b@spam.test> to=<" + rcpt + "> proto=ESMTP helo=<x>");
                    break;
            }

            Line("smtpd", pid, "disconnect from " + client + " ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4");
        }

        private void Noise()
        {
            switch (_rnd.Next(8))
            {
                case 0:
                    Line("anvil", 0, "statistics: max connection rate 3/60s for (smtp:198.51.100." + _rnd.Next(250) + ") at " + _t.ToString("MMM dd HH:mm:ss", CultureInfo.InvariantCulture));
                    break;
                case 1:
                    Line("postscreen", 0, "CONNECT from [192.0.2." + _rnd.Next(250) + "]:" + _rnd.Next(1024, 65000) + " to [203.0.113.1]:25");
                    Line("postscreen", 0, "PASS OLD [192.0.2." + _rnd.Next(250) + "]:" + _rnd.Next(1024, 65000));
                    break;
                case 2:
                    Line("smtpd", 0, "lost connection after AUTH from unknown[192.0.2." + _rnd.Next(250) + "]");
                    break;
                case 3:
                    Line("smtpd", 0, "warning: unknown[192.0.2." + _rnd.Next(250) + "]: SASL LOGIN authentication failed: UGFzc3dvcmQ6");
                    break;
                case 4:
                    Line("smtp", 0, "connect to mx." + _rnd.Next(8000) + ".example[192.0.2." + _rnd.Next(250) + "]:25: Connection timed out");
                    break;
                case 5:
                    Line("tlsmgr", 0, "warning: request to update table btree:/var/lib/postfix/smtpd_scache in non-postfix directory /var/lib/postfix");
                    break;
                case 6:
                    Line("smtp", 0, "Untrusted TLS connection established to mx.dom" + _rnd.Next(8000) + ".com[192.0.2." + _rnd.Next(250) + "]:25: TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)");
                    break;
                default:
                    Line("scache", 0, "statistics: domain lookup hits=" + _rnd.Next(100) + " miss=" + _rnd.Next(100) + " success=" + _rnd.Next(100) + "%");
                    break;
            }
        }

        private void Sent(string q, string rcpt)
        {
            var d = rcpt.Substring(rcpt.IndexOf('@') + 1);
            Line("smtp", 0, q + ": to=<" + rcpt + ">, relay=mx." + d + "[192.0.2." + _rnd.Next(250) + "]:25, delay=" + (_rnd.Next(50) / 10.0).ToString("0.#", CultureInfo.InvariantCulture) + ", delays=0.1/0.01/0.2/0.5, dsn=2.0.0, status=sent (250 2.0.0 OK  1732520000 " + Qid() + " - gsmtp)");
        }

        private void Deferred(string q, string rcpt)
        {
            var d = rcpt.Substring(rcpt.IndexOf('@') + 1);
            Line("smtp", 0, _rnd.Next(2) == 0
                ? q + ": to=<" + rcpt + ">, relay=none, delay=" + _rnd.Next(30, 9000) + ", delays=0.1/0/30/0, dsn=4.4.1, status=deferred (connect to mx." + d + "[192.0.2.1]:25: Connection timed out)"
                : q + ": to=<" + rcpt + ">, relay=mx." + d + "[192.0.2.2]:25, delay=2.1, delays=0.1/0/1/1, dsn=4.7.28, status=deferred (host mx." + d + "[192.0.2.2] said: 421-4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address. (in reply to end of DATA command))");
        }

        private void Bounced(string q, string rcpt, string sender)
        {
            var d = rcpt.Substring(rcpt.IndexOf('@') + 1);
            Line("smtp", 0, q + ": to=<" + rcpt + ">, relay=mx." + d + "[192.0.2.3]:25, delay=0.9, delays=0.1/0/0.3/0.5, dsn=5.1.1, status=bounced (host mx." + d + "[192.0.2.3] said: 550 5.1.1 <" + rcpt + ">: Recipient address rejected: User unknown (in reply to RCPT TO command))");
            if (sender.Length > 0)
            {
                Notification(q, sender);
            }
        }

        private void Notification(string q, string sender)
        {
            var b = Qid();
            Line("bounce", 0, q + ": sender non-delivery notification: " + b);
            Line("qmgr", 0, b + ": from=<>, size=" + (3000 + _rnd.Next(3000)) + ", nrcpt=1 (queue active)");
            Sent(b, sender);
            Line("qmgr", 0, b + ": removed");
        }

        private string Rcpt()
        {
            var r = _recipients[_rnd.Next(_recipients.Length)];
            var at = r.IndexOf('@', StringComparison.Ordinal);
            return _rnd.Next(50) == 0 ? string.Concat(r.AsSpan(0, at), r.AsSpan(at).ToString().ToUpperInvariant()) : r;
        }

        /// <summary>An index where small ones are much more frequent (a few senders send most mail).</summary>
        private int Skewed(int n) => (int)(n * Math.Pow(_rnd.NextDouble(), 3));

        private string Qid() => (_qid += 1 + _rnd.Next(40)).ToString("X", CultureInfo.InvariantCulture);

        private void Line(string daemon, int pid, string text)
        {
            var sec = _t.Ticks / TimeSpan.TicksPerSecond;
            if (sec != _sec)
            {
                _sec = sec;
                _stamp = _t.ToString("MMM", CultureInfo.InvariantCulture) + _t.Day.ToString(CultureInfo.InvariantCulture).PadLeft(3) + _t.ToString(" HH:mm:ss", CultureInfo.InvariantCulture) + " mx1 postfix/";
            }

            _w.Write(_stamp);
            _w.Write(daemon);
            _w.Write('[');
            _w.Write(pid == 0 ? _rnd.Next(1000, 65000) : pid);
            _w.Write("]: ");
            _w.Write(text);
            _w.Write('\n');
        }
    }
}
