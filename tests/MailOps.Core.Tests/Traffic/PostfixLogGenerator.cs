using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace MailOps.Core.Tests.Traffic
{
    /// <summary>
    /// Writes a Postfix log with the cases traffic counting must get right (seeded, so every run writes the same log):
    /// smtpd client= and pickup, qmgr from= with several recipients (and again after a deferral), sent, repeated
    /// deferrals, bounces and their notifications, forwards, expiry, NOQUEUE, postscreen, cleanup and milter rejects,
    /// discards, the null sender, senders without a domain, mixed-case domains, unknown and IPv6 clients, RFC 3339 and
    /// BSD dates (padded and unpadded days), a second instance (postfix-secondary/) and master.cf services
    /// (postfix/submission/, postfix/limited/), and the noise around them (connect, disconnect, anvil, TLS, warnings).
    /// It also tallies what it wrote, as MailOps counts it.
    /// </summary>
    internal sealed class PostfixLogGenerator
    {
        private static readonly string[] SenderPool =
        {
            "news@Lab.Test", "news@lab.test", "John.Doe@Example.ORG", "john.doe@example.org", "billing@shop.example.com",
            "alerts@monitor.example.net", "MAILER-DAEMON@mx.lab.test", "no-reply@App.Example.CO.UK", "ceo@corp.example.de",
            "root", "www-data", "info@verein.example.info", "x@a.b",
        };

        private static readonly string[] RecipientPool =
        {
            "User@GMail.Com", "user@gmail.com", "alice@outlook.com", "bob@Yahoo.fr", "carol@orange.fr", "dave@ovh.net",
            "erin@example.co.uk", "frank@lab.test", "root@lab.test", "Grace@Sub.Example.ORG", "heidi@free.fr", "root",
        };

        private static readonly string[] Clients =
        {
            "app1.example.org[192.0.2.10]", "mail.corp.example.de[192.0.2.20]", "smtp.example.co.uk[192.0.2.30]",
            "unknown[203.0.113.9]", "localhost[127.0.0.1]", "mx.example.net[2001:db8::25]", "relay.Example.COM[198.51.100.4]",
            "a.b.c.example.info[192.0.2.40]",
        };

        private readonly Random _rnd;
        private readonly StringBuilder _log = new StringBuilder();
        private DateTime _t;
        private int _qid = 0x3A0000;
        private int _pid = 1000;

        public PostfixLogGenerator(int seed, DateTime start)
        {
            _rnd = new Random(seed);
            _t = start;
        }

        public long Received { get; private set; }
        public long Delivered { get; private set; }
        public long Deferrals { get; private set; }
        public long Bounced { get; private set; }
        public long Rejected { get; private set; }
        public long Forwarded { get; private set; }

        /// <summary>Writes <paramref name="messages"/> message lifecycles and the noise around them.</summary>
        public string Write(int messages)
        {
            // the log starts mid-stream: a message received before it
            var early = NextQid();
            Line("postfix", "qmgr", $"{early}: from=<early@lab.test>, size=1200, nrcpt=1 (queue active)");
            Line("postfix", "smtp", $"{early}: to=<late@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.26]:25, delay=3600, delays=3599/0/0.4/0.5, dsn=2.0.0, status=sent (250 2.0.0 OK 1700000000 x)");
            Delivered++;
            Line("postfix", "qmgr", $"{early}: removed");

            for (var i = 0; i < messages; i++)
            {
                Noise();
                var k = _rnd.Next(100);
                if (k < 55)
                {
                    Smtpd(i % 9 == 0 ? "postfix-secondary" : "postfix", i % 7 == 0 ? "submission/smtpd" : i % 11 == 0 ? "limited/smtpd" : i % 13 == 0 ? "smtps/smtpd" : "smtpd");
                }
                else if (k < 68)
                {
                    Pickup();
                }
                else if (k < 74)
                {
                    NullSender();
                }
                else if (k < 82)
                {
                    Reject();
                }
                else if (k < 86)
                {
                    CleanupReject();
                }
                else if (k < 89)
                {
                    Discard();
                }
                else if (k < 94)
                {
                    Forward();
                }
                else
                {
                    ExpiringMessage();
                }
            }

            return _log.ToString();
        }

        private void Smtpd(string instance, string daemon)
        {
            var qid = NextQid();
            var client = Pick(Clients);
            var pid = _pid++;
            Line(instance, daemon, $"connect from {client}", pid);
            Line(instance, daemon, daemon.StartsWith("submission", StringComparison.Ordinal)
                ? $"{qid}: client={client}, sasl_method=PLAIN, sasl_username=app"
                : $"{qid}: client={client}", pid);
            Received++;
            Line(instance, "cleanup", $"{qid}: message-id=<{qid}@example.org>");
            var sender = Pick(SenderPool);
            var n = 1 + _rnd.Next(4);
            var size = 300 + _rnd.Next(40000);
            Line(instance, "qmgr", $"{qid}: from=<{sender}>, size={size}, nrcpt={n} (queue active)");
            Line(instance, daemon, $"disconnect from {client} ehlo=1 mail=1 rcpt={n} data=1 quit=1 commands=5", pid);
            var retry = new List<string>();
            for (var r = 0; r < n; r++)
            {
                var rcpt = Pick(RecipientPool);
                var o = _rnd.Next(10);
                if (o < 6)
                {
                    Sent(instance, qid, rcpt, _rnd.Next(4) == 0);
                }
                else if (o < 8)
                {
                    Deferred(instance, qid, rcpt);
                    retry.Add(rcpt);
                }
                else
                {
                    Bounce(instance, qid, rcpt, sender);
                }
            }

            if (retry.Count > 0)
            {
                // a deferred message comes back to the active queue: qmgr names it again
                _t = _t.AddMinutes(5);
                Line(instance, "qmgr", $"{qid}: from=<{sender}>, size={size}, nrcpt={n} (queue active)");
                foreach (var rcpt in retry)
                {
                    if (_rnd.Next(3) == 0)
                    {
                        Deferred(instance, qid, rcpt);
                    }

                    Sent(instance, qid, rcpt, false);
                }
            }

            Line(instance, "qmgr", $"{qid}: removed");
        }

        private void Pickup()
        {
            var qid = NextQid();
            var user = _rnd.Next(2) == 0 ? "root" : "Backup";
            Line("postfix", "pickup", $"{qid}: uid={_rnd.Next(1000)} from=<{user}>");
            Received++;
            Line("postfix", "cleanup", $"{qid}: message-id=<{qid}@mx.lab.test>");
            var from = _rnd.Next(3) == 0 ? user : user + "@MX.Lab.Test";
            Line("postfix", "qmgr", $"{qid}: from=<{from}>, size={200 + _rnd.Next(3000)}, nrcpt=1 (queue active)");
            Line("postfix", "local", $"{qid}: to=<root@lab.test>, orig_to=<{user}>, relay=local, delay=0.1, delays=0.05/0.01/0/0.04, dsn=2.0.0, status=sent (delivered to mailbox)");
            Delivered++;
            Line("postfix", "qmgr", $"{qid}: removed");
        }

        private void NullSender()
        {
            var qid = NextQid();
            var client = _rnd.Next(2) == 0 ? "unknown[198.51.100.77]" : Pick(Clients);
            Line("postfix", "smtpd", $"{qid}: client={client}");
            Received++;
            Line("postfix", "qmgr", $"{qid}: from=<>, size={1500 + _rnd.Next(5000)}, nrcpt=1 (queue active)");
            Line("postfix", "virtual", $"{qid}: to=<{Pick(RecipientPool)}>, relay=virtual, delay=0.2, delays=0.1/0/0/0.1, dsn=2.0.0, status=sent (delivered to maildir)");
            Delivered++;
            Line("postfix", "qmgr", $"{qid}: removed");
        }

        private void Reject()
        {
            var client = Pick(Clients);
            switch (_rnd.Next(5))
            {
                case 0:
                    Line("postfix", "smtpd", $"NOQUEUE: reject: RCPT from {client}: 554 5.7.1 <x@elsewhere.test>: Relay access denied; from=<spam@Bad.Example> to=<x@elsewhere.test> proto=ESMTP helo=<bad>");
                    break;
                case 1:
                    Line("postfix", "postscreen", "NOQUEUE: reject: RCPT from [203.0.113.50]:60591: 550 5.7.1 Service unavailable; client [203.0.113.50] blocked using zen.spamhaus.org; from=<a@spam.test>, to=<frank@lab.test>, proto=ESMTP, helo=<spam>");
                    break;
                case 2:
                    Line("postfix-secondary", "smtpd", $"NOQUEUE: reject: RCPT from {client}: 450 4.1.8 <s@nxdomain.test>: Sender address rejected: Domain not found; from=<s@nxdomain.test> to=<frank@lab.test> proto=ESMTP helo=<h>");
                    break;
                case 3:
                    Line("postfix", "smtpd", $"NOQUEUE: reject: CONNECT from {client}: 554 5.7.1 <{client}>: Client host rejected: Access denied; proto=SMTP");
                    break;
                default:
                    Line("postfix", "submission/smtpd", $"NOQUEUE: reject: MAIL from {client}: 553 5.7.1 <ceo@corp.example.de>: Sender address rejected: not owned by user app; proto=ESMTP helo=<app>");
                    break;
            }

            Rejected++;
        }

        private void CleanupReject()
        {
            var qid = NextQid();
            var client = Pick(Clients);
            Line("postfix", "smtpd", $"{qid}: client={client}");
            Received++;
            var k = _rnd.Next(3);
            if (k == 0)
            {
                // a milter refusing DATA: smtpd logs it (pflogsumm does not count it: docs/traffic-pflogsumm.md)
                Line("postfix", "smtpd", $"{qid}: milter-reject: DATA from {client}: 550 5.7.1 Command rejected; from=<win@lottery.test> to=<frank@lab.test> proto=ESMTP helo=<lottery>");
            }
            else if (k == 1)
            {
                Line("postfix", "cleanup", $"{qid}: reject: header Subject: You won!!! from {client}; from=<win@lottery.test> to=<frank@lab.test> proto=ESMTP helo=<lottery>: 5.7.1 No spam");
            }
            else
            {
                Line("postfix", "cleanup", $"{qid}: milter-reject: END-OF-MESSAGE from {client}: 5.7.1 Spam message rejected; from=<win@lottery.test> to=<frank@lab.test> proto=ESMTP helo=<lottery>");
            }

            Rejected++;
        }

        private void Discard()
        {
            var client = Pick(Clients);
            Line("postfix", "smtpd", $"NOQUEUE: discard: RCPT from {client}: <trap@lab.test>: Recipient address triggers DISCARD action; from=<a@spam.test> to=<trap@lab.test> proto=ESMTP helo=<spam>");
        }

        private void Forward()
        {
            var qid = NextQid();
            var fwd = NextQid();
            Line("postfix", "smtpd", $"{qid}: client={Pick(Clients)}");
            Received++;
            Line("postfix", "qmgr", $"{qid}: from=<{Pick(SenderPool)}>, size={900 + _rnd.Next(900)}, nrcpt=1 (queue active)");
            Line("postfix", "cleanup", $"{fwd}: message-id=<{qid}@example.org>");
            Line("postfix", "qmgr", $"{fwd}: from=<{Pick(SenderPool)}>, size=1900, nrcpt=1 (queue active)");
            Line("postfix", "local", $"{qid}: to=<frank@lab.test>, relay=local, delay=0.1, delays=0.1/0/0/0, dsn=2.0.0, status=sent (forwarded as {fwd})");
            Forwarded++;
            Line("postfix", "qmgr", $"{qid}: removed");
            Line("postfix", "smtp", $"{fwd}: to=<frank.private@gmail.com>, orig_to=<frank@lab.test>, relay=gmail-smtp-in.l.google.com[142.250.1.26]:25, delay=1.2, delays=0/0/0.5/0.7, dsn=2.0.0, status=sent (250 2.0.0 OK)");
            Delivered++;
            Line("postfix", "qmgr", $"{fwd}: removed");
        }

        private void ExpiringMessage()
        {
            var qid = NextQid();
            Line("postfix", "smtpd", $"{qid}: client={Pick(Clients)}");
            Received++;
            Line("postfix", "qmgr", $"{qid}: from=<billing@shop.example.com>, size=5000, nrcpt=1 (queue active)");
            Deferred("postfix", qid, "old@dead.example");
            Deferred("postfix", qid, "old@dead.example");
            Line("postfix", "qmgr", $"{qid}: from=<billing@shop.example.com>, status=expired, returned to sender");
            var dsn = NextQid();
            Line("postfix", "bounce", $"{qid}: sender non-delivery notification: {dsn}");
            Line("postfix", "qmgr", $"{qid}: removed");
            Line("postfix", "qmgr", $"{dsn}: from=<>, size=7000, nrcpt=1 (queue active)");
            Line("postfix", "smtp", $"{dsn}: to=<billing@shop.example.com>, relay=mx.shop.example.com[192.0.2.99]:25, conn_use=2, delay=0.5, delays=0/0/0.2/0.3, dsn=2.0.0, status=sent (250 Ok)");
            Delivered++;
            Line("postfix", "qmgr", $"{dsn}: removed");
        }

        private void Sent(string instance, string qid, string rcpt, bool lmtp)
        {
            if (lmtp)
            {
                Line(instance, "lmtp", $"{qid}: to=<{rcpt}>, relay=mail.lab.test[private/dovecot-lmtp], delay=0.3, delays=0.1/0/0.1/0.1, dsn=2.0.0, status=sent (250 2.0.0 <{rcpt}> Saved)");
            }
            else
            {
                Line(instance, "smtp", $"{qid}: to=<{rcpt}>, relay=mx.{Domain(rcpt)}[192.0.2.{_rnd.Next(250)}]:25, delay={_rnd.Next(30)}.{_rnd.Next(10)}, delays=0.1/0/0.3/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {NextQid()})");
            }

            Delivered++;
        }

        private void Deferred(string instance, string qid, string rcpt)
        {
            if (_rnd.Next(2) == 0)
            {
                Line(instance, "smtp", $"{qid}: to=<{rcpt}>, relay=none, delay=30, delays=0.1/0/30/0, dsn=4.4.1, status=deferred (connect to mx.{Domain(rcpt)}[192.0.2.1]:25: Connection timed out)");
            }
            else
            {
                Line(instance, "smtp", $"{qid}: to=<{rcpt}>, relay=mx.{Domain(rcpt)}[192.0.2.1]:25, delay=2, delays=0.1/0/1/0.9, dsn=4.7.28, status=deferred (host mx.{Domain(rcpt)}[192.0.2.1] said: 421-4.7.28 Unusual rate of unsolicited mail (in reply to end of DATA command))");
            }

            Deferrals++;
            _t = _t.AddMinutes(1 + _rnd.Next(20));
        }

        private void Bounce(string instance, string qid, string rcpt, string sender)
        {
            Line(instance, "smtp", $"{qid}: to=<{rcpt}>, relay=mx.{Domain(rcpt)}[192.0.2.2]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=5.1.1, status=bounced (host mx.{Domain(rcpt)}[192.0.2.2] said: 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown (in reply to RCPT TO command))");
            Bounced++;
            var dsn = NextQid();
            Line(instance, "bounce", $"{qid}: sender non-delivery notification: {dsn}");
            Line(instance, "qmgr", $"{dsn}: from=<>, size=3000, nrcpt=1 (queue active)");
            if (sender.IndexOf('@') < 0)
            {
                Line(instance, "local", $"{dsn}: to=<{sender}@lab.test>, relay=local, delay=0, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)");
            }
            else
            {
                Line(instance, "smtp", $"{dsn}: to=<{sender}>, relay=mx.{Domain(sender)}[192.0.2.3]:25, delay=0.4, delays=0/0/0.2/0.2, dsn=2.0.0, status=sent (250 Ok)");
            }

            Delivered++;
            Line(instance, "qmgr", $"{dsn}: removed");
        }

        private void Noise()
        {
            switch (_rnd.Next(8))
            {
                case 0:
                    Line("postfix", "anvil", "statistics: max connection rate 1/60s for (smtp:192.0.2.10) at Nov 25 08:00:02");
                    break;
                case 1:
                    Line("postfix", "smtp", "Trusted TLS connection established to gmail-smtp-in.l.google.com[142.250.1.26]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)");
                    break;
                case 2:
                    Line("postfix", "smtpd", "warning: hostname mail.bad.test does not resolve to address 192.0.2.66: Name or service not known");
                    break;
                case 3:
                    Line("postfix", "smtpd", "lost connection after AUTH from unknown[192.0.2.67]");
                    break;
                case 4:
                    Line("postfix", "postscreen", "CONNECT from [192.0.2.68]:4321 to [192.0.2.1]:25");
                    break;
                case 5:
                    Line("postfix", "smtp", $"connect to mx.dead.example[192.0.2.1]:25: Connection refused");
                    break;
                case 6:
                    Line("postfix", "scache", "statistics: start interval Nov 25 08:00:02");
                    break;
                default:
                    Line("postfix", "tlsmgr", "warning: request to update table btree:/var/lib/postfix/smtpd_scache in non-postfix directory /var/lib/postfix");
                    break;
            }
        }

        private void Line(string instance, string daemon, string text, int pid = 0)
        {
            _t = _t.AddSeconds(_rnd.Next(1, 40));
            var program = $"{instance}/{daemon}[{(pid == 0 ? _rnd.Next(100, 30000) : pid)}]";
            var style = _rnd.Next(10);
            if (style < 3)
            {
                _log.Append(_t.ToString("yyyy-MM-ddTHH:mm:ss.ffffff", CultureInfo.InvariantCulture)).Append("+00:00");
            }
            else
            {
                _log.Append(_t.ToString("MMM", CultureInfo.InvariantCulture))
                    .Append(style == 3 && _t.Day < 10 ? " " + _t.Day.ToString(CultureInfo.InvariantCulture) : _t.Day.ToString(CultureInfo.InvariantCulture).PadLeft(3))
                    .Append(_t.ToString(" HH:mm:ss", CultureInfo.InvariantCulture));
            }

            _log.Append(' ').Append(instance == "postfix-secondary" ? "mx2" : "mx1").Append(' ').Append(program).Append(": ").Append(text).Append('\n');
        }

        private string NextQid() => (_qid++).ToString("X", CultureInfo.InvariantCulture) + ((char)('A' + _rnd.Next(6))).ToString() + _rnd.Next(16).ToString("X", CultureInfo.InvariantCulture);

        private T Pick<T>(T[] pool) => pool[_rnd.Next(pool.Length)];

        private static string Domain(string address)
        {
            var at = address.IndexOf('@', StringComparison.Ordinal);
            return at < 0 ? "lab.test" : address.Substring(at + 1).ToLowerInvariant();
        }
    }
}
