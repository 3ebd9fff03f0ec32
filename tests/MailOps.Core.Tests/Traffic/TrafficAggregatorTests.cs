using System;
using System.IO;
using System.Linq;
using MailOps.Core.Config;
using MailOps.Core.Logs;
using MailOps.Core.Traffic;
using Xunit;

namespace MailOps.Core.Tests.Traffic
{
    public class TrafficAggregatorTests
    {
        private const string Log = @"Nov 25 08:00:02 mx postfix/smtpd[1]: 4A1B2C3D4E: client=app1.example.org[192.0.2.10]
Nov 25 08:00:03 mx postfix/qmgr[2]: 4A1B2C3D4E: from=<news@lab.test>, size=4000, nrcpt=3 (queue active)
Nov 25 08:00:04 mx postfix/smtp[3]: 4A1B2C3D4E: to=<a@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 2.0.0 OK)
Nov 25 08:00:04 mx postfix/smtp[3]: 4A1B2C3D4E: to=<b@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=4.7.28, status=deferred (host gmail-smtp-in.l.google.com[142.250.1.1] said: 421-4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. (in reply to end of DATA command))
Nov 25 08:00:05 mx postfix/smtp[3]: 4A1B2C3D4E: to=<c@example.net>, relay=mx.example.net[198.51.100.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=5.1.1, status=bounced (host mx.example.net[198.51.100.1] said: 550 5.1.1 <c@example.net>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command))
Nov 25 08:30:00 mx postfix/pickup[4]: 5B2C3D4E5F: uid=0 from=<root>
Nov 25 08:30:00 mx postfix/qmgr[2]: 5B2C3D4E5F: from=<root@lab.test>, size=500, nrcpt=1 (queue active)
Nov 25 08:30:01 mx postfix/local[5]: 5B2C3D4E5F: to=<root@lab.test>, relay=local, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to mailbox)
Nov 25 08:30:01 mx postfix/qmgr[2]: 5B2C3D4E5F: removed
Nov 25 09:10:00 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[203.0.113.9]: 554 5.7.1 <x@lab.test>: Relay access denied; from=<spam@bad.example> to=<x@lab.test> proto=ESMTP helo=<bad>
Nov 25 12:00:00 mx postfix/qmgr[2]: 4A1B2C3D4E: from=<news@lab.test>, status=expired, returned to sender
Nov 25 12:00:00 mx postfix/qmgr[2]: 4A1B2C3D4E: removed
";

        private static TrafficAggregator Run(string log, params TrafficDimension[] dims)
        {
            var flows = new FlowMatcher(new[]
            {
                new FlowConfig("staff", FlowKind.PersonToPerson, null, new[] { "@lab.test" }, Array.Empty<string>(), "primary", null, null),
                new FlowConfig("newsletter", FlowKind.Campaign, null, new[] { "news@lab.test" }, Array.Empty<string>(), "secondary", null, null),
            });
            var agg = new TrafficAggregator(new TrafficOptions { Bucket = TrafficBucket.Hour, Dimensions = dims, Flows = flows });
            agg.AddLog(new MailLogParser(2026, TimeZoneInfo.Utc).Read(new StringReader(log), "test.log"));
            return agg;
        }

        [Fact]
        public void ReadingOnTwoThreadsCountsTheSameAndStopsWhenCancelled()
        {
            var big = new System.Text.StringBuilder();
            for (var i = 0; i < 2000; i++)
            {
                big.Append(Log.Replace("4A1B2C3D4E", $"4A{i:X8}").Replace("5B2C3D4E5F", $"5B{i:X8}"));
            }

            TrafficTotals Count(bool pipelined)
            {
                var agg = new TrafficAggregator(new TrafficOptions { Dimensions = new[] { TrafficDimension.Flow } }) { Pipelined = pipelined };
                agg.AddLog(new StringReader(big.ToString()), new MailLogParser(2026, TimeZoneInfo.Utc), "big.log");
                return agg.Totals;
            }

            var one = Count(false);
            var two = Count(true);
            Assert.Equal(4000, two.Received);
            Assert.Equal((one.Received, one.Delivered, one.Deferred, one.Bounced, one.Rejected, one.Expired, one.Senders),
                (two.Received, two.Delivered, two.Deferred, two.Bounced, two.Rejected, two.Expired, two.Senders));

            using var cts = new System.Threading.CancellationTokenSource();
            cts.Cancel();
            var cancelled = new TrafficAggregator() { Pipelined = true };
            Assert.ThrowsAny<OperationCanceledException>(() => cancelled.AddLog(new StringReader(big.ToString()), new MailLogParser(2026), "big.log", cts.Token));
        }

        [Fact]
        public void TotalsCountAsPflogsummCounts()
        {
            var t = Run(Log).Totals;
            Assert.Equal(2, t.Received);
            Assert.Equal(2, t.Delivered);
            Assert.Equal(1, t.Deferred);
            Assert.Equal(1, t.Deferrals);
            Assert.Equal(1, t.Bounced);
            Assert.Equal(1, t.Rejected);
            Assert.Equal(1, t.Expired);
            Assert.Equal(2, t.Senders);
            Assert.Equal(4500, t.BytesReceived);
            Assert.Equal(1, t.MessagesBySender["news@lab.test"]);
        }

        [Fact]
        public void RowsPerFlowNameTheMostSpecificFlowAndClassifyReasons()
        {
            var rows = Run(Log, TrafficDimension.Flow, TrafficDimension.RecipientDomain).Rows;
            var news = rows.Single(r => r.Dimension == TrafficDimension.Flow && r.Key == "newsletter" && r.Start.Hour == 8);
            Assert.Equal(new DateTimeOffset(2026, 11, 25, 8, 0, 0, TimeSpan.Zero), news.Start);
            Assert.Equal(1, news.Messages);
            Assert.Equal(3, news.Recipients);
            Assert.Equal(1, news.Delivered);
            Assert.Equal(1, news.Deferred);
            Assert.Equal(1, news.Bounced);
            Assert.Equal(1, news.BlockReplies); // Gmail's 421-4.7.28 rate limit is a push-back
            Assert.Contains(news.Reasons, x => x.Key == "userunknown");
            var staff = rows.Single(r => r.Dimension == TrafficDimension.Flow && r.Key == "staff");
            Assert.Equal(1, staff.Messages);
            var expired = rows.Single(r => r.Dimension == TrafficDimension.Flow && r.Key == "newsletter" && r.Start.Hour == 12);
            Assert.Equal(1, expired.Expired); // the still-deferred Gmail recipient
            var gmail = rows.Where(r => r.Dimension == TrafficDimension.RecipientDomain && r.Key == "gmail.com").ToList();
            Assert.Equal(1, gmail.Sum(r => r.Delivered));
            Assert.Equal(1, gmail.Sum(r => r.Expired));
            var total8 = rows.Single(r => r.Dimension == TrafficDimension.Total && r.Start.Hour == 8);
            Assert.Equal(1, total8.DeferredQueue);
            Assert.Equal("newsletter", total8.TopFlows[0].Key);
            Assert.Equal(5, total8.TopFlows[0].Value); // 3 recipients handed in, then 1 deferral and 1 bounce of theirs
        }

        /// <summary>Streaming: a message's state goes when Postfix removes it, so a long log leaves nothing behind.</summary>
        [Theory]
        [InlineData(false)]
        [InlineData(true)]
        public void MessageStateIsDroppedWhenTheMessageLeavesTheQueue(bool totalsOnly)
        {
            var log = new PostfixLogGenerator(5, new DateTime(2026, 11, 2)).Write(5000);
            var agg = new TrafficAggregator(new TrafficOptions { TotalsOnly = totalsOnly });
            var seen = 0;
            var most = 0;
            foreach (var r in new MailLogParser(2026, TimeZoneInfo.Utc).Read(new StringReader(log), "generated"))
            {
                agg.Add(r);
                if (++seen % 100 == 0)
                {
                    most = Math.Max(most, agg.PendingMessages);
                }
            }

            // about ten days of mail; a message refused by a milter in smtpd is never removed by Postfix: it is dropped
            // a day later
            Assert.True(agg.Totals.Received > 3000 && agg.Totals.Last - agg.Totals.First > TimeSpan.FromDays(5), agg.Totals.ToString());
            Assert.True(most < 40, $"{most} messages held at once");
            Assert.True(agg.PendingMessages < 20, $"{agg.PendingMessages} messages held at the end");
        }

        [Fact]
        public void RfcAndEximTimestampsAndIdsAreRead()
        {
            var p = new MailLogParser(null, TimeZoneInfo.Utc);
            var iso = p.Parse("2026-11-25T09:00:01.123456+01:00 mx postfix-secondary/smtpd[9]: 4A1B2C3D4E: client=localhost[127.0.0.1]")!;
            Assert.Equal(MailLogRecordKind.Received, iso.Kind);
            Assert.Equal("postfix-secondary", iso.Instance);
            Assert.Equal(new DateTimeOffset(2026, 11, 25, 8, 0, 1, TimeSpan.Zero), iso.Time.ToUniversalTime().AddTicks(-(iso.Time.Ticks % TimeSpan.TicksPerSecond)));
            var exim = p.Parse("2026-11-25 09:00:00 +0100 1vABCd-000ABC-Xy <= news@lab.test H=app [192.0.2.1] P=esmtp S=1234")!;
            Assert.Equal(MailLogRecordKind.Received, exim.Kind);
            Assert.Equal("news@lab.test", exim.Sender);
            Assert.Equal(1234, exim.Size);
            Assert.Equal(TimeSpan.FromHours(1), exim.Time.Offset);
            var bounce = p.Parse("2026-11-25 09:00:01 1vABCd-000ABC-Xy ** x@example.net R=dnslookup T=remote_smtp H=mx.example.net [198.51.100.1]: SMTP error from remote mail server after RCPT TO:<x@example.net>: 550 5.1.1 No such user")!;
            Assert.Equal("bounced", bounce.Status);
            Assert.Equal("5.1.1", bounce.Dsn);
            Assert.Equal("mx.example.net", bounce.Relay);
        }
    }
}
