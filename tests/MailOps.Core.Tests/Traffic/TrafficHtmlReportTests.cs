using System;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using MailOps.Core.Config;
using MailOps.Core.Logs;
using MailOps.Core.Traffic;
using Xunit;

namespace MailOps.Core.Tests.Traffic
{
    public class TrafficHtmlReportTests
    {
        private const string Log = @"Nov 25 08:00:02 mx postfix/smtpd[1]: 4A1B2C3D4E: client=app1.example.org[192.0.2.10]
Nov 25 08:00:03 mx postfix/qmgr[2]: 4A1B2C3D4E: from=<news@lab.test>, size=4000, nrcpt=3 (queue active)
Nov 25 08:00:04 mx postfix/smtp[3]: 4A1B2C3D4E: to=<a@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 2.0.0 OK)
Nov 25 08:00:04 mx postfix/smtp[3]: 4A1B2C3D4E: to=<b@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=4.7.28, status=deferred (host gmail-smtp-in.l.google.com[142.250.1.1] said: 421-4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address. (in reply to end of DATA command))
Nov 25 08:00:05 mx postfix/smtp[3]: 4A1B2C3D4E: to=<c@example.net>, relay=mx.example.net[198.51.100.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=5.1.1, status=bounced (host mx.example.net[198.51.100.1] said: 550 5.1.1 <c@example.net>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command))
Nov 25 11:30:00 mx postfix/pickup[4]: 5B2C3D4E5F: uid=0 from=<root>
Nov 25 11:30:00 mx postfix/qmgr[2]: 5B2C3D4E5F: from=<root@lab.test>, size=500, nrcpt=1 (queue active)
Nov 25 11:30:01 mx postfix/local[5]: 5B2C3D4E5F: to=<root@lab.test>, relay=local, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to mailbox)
Nov 25 11:30:01 mx postfix/qmgr[2]: 5B2C3D4E5F: removed
";

        private static TrafficAggregator Aggregate(string log)
        {
            var flows = new FlowMatcher(new[]
            {
                new FlowConfig("newsletter", FlowKind.Campaign, null, new[] { "news@lab.test" }, Array.Empty<string>(), "secondary", null, null),
            });
            var agg = new TrafficAggregator(new TrafficOptions
            {
                Bucket = TrafficBucket.Hour,
                Dimensions = new[] { TrafficDimension.Total, TrafficDimension.Sender, TrafficDimension.Flow, TrafficDimension.Relay, TrafficDimension.RecipientDomain },
                Flows = flows,
            });
            agg.AddLog(new MailLogParser(2026, TimeZoneInfo.Utc).Read(new StringReader(log), "test.log"));
            return agg;
        }

        private static string Render(TrafficAggregator agg, string title)
        {
            var w = new StringWriter();
            TrafficHtmlReport.Write(w, agg.Rows, agg.Totals, title);
            return w.ToString();
        }

        private static XElement[] Svgs(string html) =>
            Regex.Matches(html, "<svg.*?</svg>", RegexOptions.Singleline).Select(m => XElement.Parse(m.Value)).ToArray();

        private static string[] Texts(XElement svg) =>
            svg.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value).ToArray();

        [Fact]
        public void ChartsVolumeAndRatesAsInlineSvg()
        {
            var html = Render(Aggregate(Log), "Traffic of mx");

            Assert.StartsWith("<!DOCTYPE html>", html);
            Assert.DoesNotContain("<script", html);
            Assert.DoesNotContain("http://", html.Replace("http://www.w3.org/", ""));
            var svgs = Svgs(html);
            Assert.Equal(2, svgs.Length);

            var volume = Texts(svgs[0]);
            foreach (var t in new[] { "Messages", "Delivered", "Deferred", "Bounced", "Rejected", "Messages, recipients", "Time (UTC)", "Volume per hour" })
            {
                Assert.Contains(t, volume);
            }

            var rates = Texts(svgs[1]);
            foreach (var t in new[] { "Bounce rate", "Deferral rate", "Percent", "Time (UTC)" })
            {
                Assert.Contains(t, rates);
            }

            // each series is a line of its colour; the volume lines span the 4 hourly buckets 08:00 to 11:00, the two
            // quiet hours filled with zeros: messages at 08:00 and 11:00, deferrals only at 08:00
            var messages = Assert.Single(Lines(svgs[0], "rgb(31,119,180)"));
            var deferred = Assert.Single(Lines(svgs[0], "rgb(255,127,14)"));
            Assert.Equal(4, messages.Length);
            var zero = messages[1].Y;
            Assert.Equal(zero, messages[2].Y);
            Assert.True(messages[0].Y < zero && messages[3].Y < zero);
            Assert.True(deferred[0].Y < zero && deferred[3].Y == zero);
            Assert.True(messages[0].X < messages[1].X && messages[1].X < messages[2].X && messages[2].X < messages[3].X);

            // rates: nothing was attempted at 09:00 and 10:00, so the lines break there (two one-point pieces), and the
            // bounce rate of 08:00 (1 of 2 = 50 %) is above its deferral rate (1 of 3)
            var bounce = Lines(svgs[1], "rgb(214,39,40)");
            var deferral = Lines(svgs[1], "rgb(255,127,14)");
            Assert.Equal(2, bounce.Length);
            Assert.All(bounce, l => Assert.Single(l));
            Assert.True(bounce[0][0].Y < deferral[0][0].Y);
            Assert.Equal(bounce[1][0].Y, deferral[1][0].Y); // 0 % both at 11:00
        }

        /// <summary>The points of the series lines of one colour (OxyPlot writes them as polylines with a line join; axes and legend lines have none).</summary>
        private static (double X, double Y)[][] Lines(XElement svg, string color) =>
            svg.Descendants().Where(e => e.Name.LocalName == "polyline")
                .Where(e => e.Attribute("style")!.Value.Contains("stroke:" + color + ";") && e.Attribute("style")!.Value.Contains("linejoin"))
                .Select(e => e.Attribute("points")!.Value.Trim().Split(' ')
                    .Select(p => p.Split(','))
                    .Select(p => (double.Parse(p[0], System.Globalization.CultureInfo.InvariantCulture), double.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture)))
                    .ToArray())
                .ToArray();

        [Fact]
        public void TablesSumTheDimensionsOverThePeriod()
        {
            var html = Render(Aggregate(Log), "Traffic");

            Assert.Contains("<h2>Totals</h2>", html);
            Assert.Matches(@"<th scope=""row"">Received</th><td class=""n"">2</td>", html);
            Assert.Matches(@"<th scope=""row"">Bounced</th><td class=""n"">1</td>", html);
            Assert.Contains("<h2>Top senders</h2>", html);
            Assert.Matches(@"<tr><td>news@lab\.test</td><td class=""n"">1</td><td class=""n"">3</td><td class=""n"">1</td><td class=""n"">1</td><td class=""n"">1</td>", html);
            Assert.Contains("<h2>Flows</h2>", html);
            Assert.Contains("<td>newsletter</td>", html);
            Assert.Contains("<h2>Relays</h2>", html);
            Assert.Contains("<h2>Recipient domains</h2>", html);
            Assert.Contains("<td>gmail.com</td>", html);
            Assert.Contains("<h2>Top reasons</h2>", html);
            Assert.DoesNotContain("<h2>Client hosts</h2>", html); // not counted: no table
        }

        [Fact]
        public void LogTextIsEncoded()
        {
            var hour = new DateTimeOffset(2026, 11, 25, 8, 0, 0, TimeSpan.Zero);
            var total = new TrafficRow(hour, TrafficBucket.Hour, TrafficDimension.Total, "*") { Messages = 3, Delivered = 2, Bounced = 1 };
            TrafficRow.Count(total.ReasonCounts, "<img src=x onerror=alert(1)>");
            var sender = new TrafficRow(hour, TrafficBucket.Hour, TrafficDimension.Sender, "<script>@x") { Messages = 3 };
            var flow = new TrafficRow(hour, TrafficBucket.Hour, TrafficDimension.Flow, "a&b\"c'") { Messages = 3 };

            var w = new StringWriter();
            TrafficHtmlReport.Write(w, new[] { total, sender, flow }, new TrafficTotals(), "<b>title</b>");
            var html = w.ToString();

            Assert.DoesNotContain("<script>", html);
            Assert.DoesNotContain("<img", html);
            Assert.DoesNotContain("<b>title", html);
            Assert.Contains("&lt;script&gt;@x", html);
            Assert.Contains("&lt;img src=x onerror=alert(1)&gt;", html);
            Assert.Contains("a&amp;b&quot;c&#39;", html);
            Assert.Contains("<title>&lt;b&gt;title&lt;/b&gt;</title>", html);
            Assert.All(Svgs(html), s => Assert.Equal("svg", s.Name.LocalName));
        }

        [Fact]
        public void ThreeDaysOfHourlyBucketsMakeOnePointPerHour()
        {
            var start = new DateTimeOffset(2026, 11, 22, 0, 0, 0, TimeSpan.Zero);
            var rows = Enumerable.Range(0, 72).Select(h =>
                new TrafficRow(start.AddHours(h), TrafficBucket.Hour, TrafficDimension.Total, "*")
                {
                    Messages = 100 + 50 * (h % 24 / 6), Delivered = 90 + 50 * (h % 24 / 6), Deferred = h % 7, Bounced = h % 24 == 9 ? 40 : 2,
                }).ToList();

            var w = new StringWriter();
            TrafficHtmlReport.Write(w, rows, new TrafficTotals(), "3 days");
            var svgs = Svgs(w.ToString());

            Assert.Equal(72, Assert.Single(Lines(svgs[0], "rgb(31,119,180)")).Length);
            var bounce = Assert.Single(Lines(svgs[1], "rgb(214,39,40)"));
            Assert.Equal(72, bounce.Length);
            // the 09:00 bounce peak of each day is the highest point of the bounce rate line (smallest y)
            var peaks = bounce.Select((p, i) => (p.Y, i)).OrderBy(x => x.Y).Take(3).Select(x => x.i).OrderBy(i => i);
            Assert.Equal(new[] { 9, 33, 57 }, peaks);
        }

        [Fact]
        public void NoTrafficWritesAReportWithoutCharts()
        {
            var html = Render(Aggregate(""), "Empty");
            Assert.Empty(Svgs(html));
            Assert.Contains("No traffic in the period", html);
            Assert.EndsWith("</html>\n", html);
        }

        [Fact]
        public void WritesAFile()
        {
            var path = Path.Combine(Path.GetTempPath(), $"mailops-report-{Guid.NewGuid():N}.html");
            try
            {
                var agg = Aggregate(Log);
                TrafficHtmlReport.Write(path, agg.Rows, agg.Totals, "Traffic");
                Assert.Equal(2, Svgs(File.ReadAllText(path)).Length);
            }
            finally
            {
                File.Delete(path);
            }
        }
    }
}
