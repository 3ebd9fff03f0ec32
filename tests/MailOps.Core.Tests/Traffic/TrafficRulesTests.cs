using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Config;
using MailOps.Core.Logs;
using MailOps.Core.Store;
using MailOps.Core.Tests.Store;
using MailOps.Core.Traffic;
using Xunit;

namespace MailOps.Core.Tests.Traffic
{
    /// <summary>The traffic rules on logs written here, and the alert state on SQLite and the lab's PostgreSQL.</summary>
    public class TrafficRulesTests
    {
        private static readonly DateTimeOffset T0 = new DateTimeOffset(2026, 11, 23, 10, 0, 0, TimeSpan.Zero); // a Monday

        private static MailOpsConfig Config(string thresholds) => ConfigReader.Read($@"version: 1
relays:
  - name: primary
    host: smtp.example.org
    role: primary
  - name: secondary
    host: bulk.example.org
    role: secondary
flows:
  - name: staff
    kind: PersonToPerson
    senders: ['@example.org']
    relay: primary
  - name: newsletter
    kind: Campaign
    senders: [news@example.org]
    relay: secondary
thresholds:
{thresholds}").Config ?? throw new InvalidOperationException("config");

        /// <summary>A Postfix log: n messages from a sender, one recipient each, at a time, with an outcome.</summary>
        private static void Mail(StringBuilder log, DateTimeOffset at, string sender, int n, string status = "sent", string text = "250 2.0.0 Ok")
        {
            for (var i = 0; i < n; i++)
            {
                var qid = $"{at.ToUnixTimeSeconds() % 100000:X5}{log.Length % 1000000:X6}";
                var u = at.AddSeconds(i % 50).UtcDateTime;
                var t = u.ToString("MMM", System.Globalization.CultureInfo.InvariantCulture) + " " + u.Day.ToString().PadLeft(2) + " " + u.ToString("HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture);
                log.Append(t).Append($" mx postfix/smtpd[1]: {qid}: client=app.example.org[192.0.2.1]\n");
                log.Append(t).Append($" mx postfix/qmgr[2]: {qid}: from=<{sender}>, size=1000, nrcpt=1 (queue active)\n");
                var dsn = status == "sent" ? "2.0.0" : status == "deferred" ? "4.7.0" : "5.1.1";
                log.Append(t).Append($" mx postfix/smtp[3]: {qid}: to=<r{i}@gmail.example>, relay=mx.gmail.example[198.51.100.1]:25, delay=1, delays=0/0/0/1, dsn={dsn}, status={status} ({text})\n");
                if (status != "deferred")
                {
                    log.Append(t).Append($" mx postfix/qmgr[2]: {qid}: removed\n");
                }
            }
        }

        private static TrafficMonitor Monitor(MailOpsConfig config, BounceStore? store, string log, DateTimeOffset? since = null)
        {
            var m = new TrafficMonitor(config, store, null, null, since);
            var parser = new MailLogParser(2026, TimeZoneInfo.Utc);
            foreach (var r in parser.Read(new StringReader(log), "test.log"))
            {
                m.Add(r, "primary");
            }

            return m;
        }

        [Fact]
        public async Task CapWarnsFromWarnAtAndIsCriticalAtTheLimitNamingTheFlow()
        {
            var config = Config("  - { name: cap, scope: relay, match: primary, metric: recipients, per: hour, limit: 100, warnAt: 0.5 }");
            var log = new StringBuilder();
            Mail(log, T0.AddMinutes(-30), "alice@example.org", 10);
            Mail(log, T0.AddMinutes(-20), "news@example.org", 45);
            var warn = await Monitor(config, null, log.ToString()).CheckAsync(T0, T0.AddHours(-1), false, CancellationToken.None);
            var a = Assert.Single(warn.Alerts);
            Assert.Equal(AlertSeverity.Warning, a.Severity);
            Assert.Equal(55, a.Value);
            Assert.Equal("newsletter", a.TopFlows[0].Key);
            Assert.Equal(45, a.TopFlows[0].Value);
            Assert.Contains("Move flow 'newsletter' to the secondary relay 'secondary'", a.SuggestedAction, StringComparison.Ordinal);

            Mail(log, T0.AddMinutes(-10), "news@example.org", 45);
            var crit = await Monitor(config, null, log.ToString()).CheckAsync(T0, T0.AddHours(-1), false, CancellationToken.None);
            Assert.Equal(AlertSeverity.Critical, Assert.Single(crit.Alerts).Severity);

            // an hour later the rolling window has nothing left
            var later = await Monitor(config, null, log.ToString()).CheckAsync(T0.AddMinutes(61), T0.AddHours(-1), false, CancellationToken.None);
            Assert.Empty(later.Alerts);
            Assert.Equal(0, Assert.Single(later.Figures).Value);
        }

        [Fact]
        public async Task RatesNeedTheirMinimumVolumeAndBlockRepliesAreCounted()
        {
            var config = Config(@"  - { name: bounces, scope: flow, metric: bounceRate, per: hour, limit: 0.1, minVolume: 20 }
  - { name: pushback, scope: relay, metric: blockReplies, per: hour, limit: 5 }");
            var small = new StringBuilder();
            Mail(small, T0.AddMinutes(-30), "news@example.org", 5, "bounced", "host mx[198.51.100.1] said: 550 5.1.1 <x>: User unknown");
            Assert.Empty((await Monitor(config, null, small.ToString()).CheckAsync(T0, T0.AddHours(-1), false, CancellationToken.None)).Alerts);

            var log = new StringBuilder();
            Mail(log, T0.AddMinutes(-40), "news@example.org", 20);
            Mail(log, T0.AddMinutes(-30), "news@example.org", 5, "bounced", "host mx[198.51.100.1] said: 550 5.1.1 <x>: User unknown");
            Mail(log, T0.AddMinutes(-20), "news@example.org", 6, "deferred",
                "host mx.yahoo.example[198.51.100.1] said: 421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints");
            var result = await Monitor(config, null, log.ToString()).CheckAsync(T0, T0.AddHours(-1), false, CancellationToken.None);
            var bounce = Assert.Single(result.Alerts, x => x.Rule == "bounces");
            Assert.Equal("newsletter", bounce.Key);
            Assert.Equal(5.0 / 25, bounce.Value, 3);
            Assert.Equal(AlertSeverity.Critical, bounce.Severity); // 20% is twice the 10% limit
            var push = Assert.Single(result.Alerts, x => x.Rule == "pushback");
            Assert.Equal(6, push.Value);
            Assert.Contains("Pause flow 'newsletter'", push.SuggestedAction, StringComparison.Ordinal);
        }

        [Fact]
        public void SpikesAreJudgedAgainstTheMedianAndSpreadOfTheSameHourOfTheWeek()
        {
            var config = Config("  - { name: spike, scope: flow, match: newsletter, metric: recipients, per: hour, baseline: true, sensitivity: 4, limit: 10 }");
            var rule = config.Thresholds[0];
            var log = new StringBuilder();
            Mail(log, T0.AddMinutes(-30), "news@example.org", 60);
            var agg = new TrafficAggregator(new TrafficOptions { Bucket = TrafficBucket.Minute, Dimensions = new[] { TrafficDimension.Flow }, Flows = new FlowMatcher(config.Flows) });
            foreach (var r in new MailLogParser(2026, TimeZoneInfo.Utc).Read(new StringReader(log.ToString()), null))
            {
                agg.Add(r);
            }

            var figures = TrafficRules.Figures(config.Thresholds, agg.Rows, T0);
            IReadOnlyList<TrafficHistoryPoint> History(params double[] values) =>
                values.Select((v, i) => new TrafficHistoryPoint("flow", "newsletter", "recipients", T0.AddHours(-1).AddDays(-7 * (i + 1)), v)).ToList();

            // too little history: no guess
            Assert.Empty(TrafficRules.Evaluate(figures, config, _ => History(50, 55)));
            // usually 50-60 at this hour: 60 is normal
            Assert.Empty(TrafficRules.Evaluate(figures, config, _ => History(50, 55, 60, 52)));
            // usually about 10: 60 is a spike, and a big one
            var spike = Assert.Single(TrafficRules.Evaluate(figures, config, _ => History(9, 10, 11, 10)));
            Assert.Equal(10, spike.Baseline!.Value, 3);
            Assert.Equal(AlertSeverity.Critical, spike.Severity);
            Assert.Equal(60, spike.Value);
            // the same values at other hours of the week do not count
            IReadOnlyList<TrafficHistoryPoint> OtherHours() => new[] { 9.0, 10, 11, 10 }.Select((v, i) => new TrafficHistoryPoint("flow", "newsletter", "recipients", T0.AddHours(-3).AddDays(-7 * (i + 1)), v)).ToList();
            Assert.Empty(TrafficRules.Evaluate(figures, config, _ => OtherHours()));
            Assert.Equal("spike", rule.Kind);
        }

        [Theory]
        [MemberData(nameof(BounceStoreTests.Providers), MemberType = typeof(BounceStoreTests))]
        public async Task AlertsAreRaisedOnceRepeatedAfterTheQuietPeriodAndResolved(string provider)
        {
            using var store = await BounceStoreTests.OpenAsync(provider);
            Assert.NotNull(store);
            var config = Config("  - { name: cap, scope: relay, match: primary, metric: recipients, per: hour, limit: 100, warnAt: 0.5 }");
            var log = new StringBuilder();
            Mail(log, T0.AddMinutes(-20), "news@example.org", 60);
            var text = log.ToString();
            var sent = new List<TrafficAlert>();
            Task<IReadOnlyList<AlertDelivery>> Dispatch(TrafficAlert a, CancellationToken c)
            {
                sent.Add(a);
                return Task.FromResult<IReadOnlyList<AlertDelivery>>(new[] { new AlertDelivery(a.Id, "test", "webhook", true, null, TimeSpan.Zero) });
            }

            async Task<TrafficCheckResult> Check(DateTimeOffset at, string l) =>
                await new TrafficMonitor(config, store, null, Dispatch).Also(m => Feed(m, l)).CheckAsync(at, at.AddHours(-1), true, CancellationToken.None);

            var first = await Check(T0, text);
            Assert.Equal(AlertState.Raised, Assert.Single(first.Alerts).State);
            var second = await Check(T0.AddMinutes(5), text);
            Assert.Equal(AlertState.Active, Assert.Single(second.Alerts).State);
            Assert.Single(sent);
            Assert.Equal(AlertState.Active, Assert.Single((await Check(T0.AddMinutes(59), text + Extra(T0.AddMinutes(50)))).Alerts).State);
            var third = await Check(T0.AddMinutes(60), text + Extra(T0.AddMinutes(50)));
            Assert.Equal(AlertState.Repeated, Assert.Single(third.Alerts).State); // 60 minutes after it was sent
            Assert.Equal(2, sent.Count);
            Assert.Single(await store!.GetTrafficAlertsAsync(false, CancellationToken.None));

            var resolved = await Check(T0.AddHours(3), text);
            var r = Assert.Single(resolved.Alerts);
            Assert.Equal(AlertState.Resolved, r.State);
            Assert.Equal(0, r.Value);
            Assert.StartsWith("Resolved:", r.Summary, StringComparison.Ordinal);
            Assert.Equal(3, sent.Count);
            Assert.Empty(await store.GetTrafficAlertsAsync(false, CancellationToken.None));
            Assert.Single(await store.GetTrafficAlertsAsync(true, CancellationToken.None));

            // a new incident later is raised again
            var again = await Check(T0.AddHours(5), text + Extra(T0.AddHours(4).AddMinutes(30)));
            Assert.Equal(AlertState.Raised, Assert.Single(again.Alerts).State);
        }

        [Theory]
        [MemberData(nameof(BounceStoreTests.Providers), MemberType = typeof(BounceStoreTests))]
        public async Task ChecksRecordCompleteHoursAsHistory(string provider)
        {
            using var store = await BounceStoreTests.OpenAsync(provider);
            var config = Config("  - { name: spike, scope: flow, metric: recipients, per: hour, baseline: true }");
            var log = new StringBuilder();
            Mail(log, T0.AddHours(-3).AddMinutes(10), "news@example.org", 7);
            Mail(log, T0.AddHours(-1).AddMinutes(10), "news@example.org", 3);
            var m = new TrafficMonitor(config, store, null, null);
            Feed(m, log.ToString());
            await m.CheckAsync(T0.AddMinutes(30), T0.AddHours(-4).AddMinutes(-30), false, CancellationToken.None);
            var h = await store!.GetTrafficHistoryAsync("flow", "newsletter", "recipients", T0.AddDays(-1), CancellationToken.None);
            // complete hours only (05h is partly covered, 10h not over): 06h, 07h, 08h and 09h, the quiet ones as 0
            Assert.Equal(new[] { 0.0, 7, 0, 3 }, h.Select(p => p.Value).ToArray());
            Assert.Equal(T0.AddHours(-4), h[0].HourStart);
        }

        [Fact]
        public void TheTemplatesThresholdExamplesAreValidOnceUncommented()
        {
            var text = ConfigTemplate.Render(new[] { "example.org" });
            var start = text.IndexOf("\nthresholds: []\n", StringComparison.Ordinal);
            Assert.True(start > 0);
            var end = text.IndexOf("\n\n", start + 1, StringComparison.Ordinal);
            var block = text.Substring(start + 1, end - start - 1).Split('\n')
                .Select(l => l == "thresholds: []" ? "thresholds:" : l.StartsWith("  # ", StringComparison.Ordinal) ? "  " + l.Substring(4) : l);
            var r = ConfigReader.Read(text.Substring(0, start + 1) + string.Join("\n", block) + text.Substring(end));
            Assert.True(r.IsValid, string.Join("\n", r.Issues));
            Assert.Equal(new[] { "cap", "rate", "spike" }, r.Config!.Thresholds.Select(t => t.Kind));
            Assert.Equal(0.8, r.Config.Thresholds[0].WarnAt);
            Assert.Equal(50, r.Config.Thresholds[1].MinVolume);
            Assert.Equal(TimeSpan.FromMinutes(60), r.Config.AlertRepeatAfter);
        }

        [Fact]
        public void BadThresholdsAreErrorsWithTheirPath()
        {
            var r = ConfigReader.Read(@"version: 1
thresholds:
  - { name: a, scope: relay, metric: bounceRate, per: hour, limit: 5 }
  - { name: b, scope: flow, metric: recipients, per: hour, limit: 10, warnAt: 1.5 }
  - { name: c, scope: galaxy, metric: recipients, per: hour, limit: 10 }
  - { name: d, scope: flow, metric: bounceRate, per: hour, baseline: true }
");
            Assert.False(r.IsValid);
            var paths = r.Errors.Select(e => e.KeyPath).ToList();
            Assert.Contains("thresholds[0].limit", paths);
            Assert.Contains("thresholds[1].warnAt", paths);
            Assert.Contains("thresholds[2].scope", paths);
            Assert.Contains("thresholds[3].baseline", paths);
        }

        private static string Extra(DateTimeOffset at)
        {
            var log = new StringBuilder();
            Mail(log, at, "news@example.org", 60);
            return log.ToString();
        }

        private static void Feed(TrafficMonitor m, string log)
        {
            foreach (var r in new MailLogParser(2026, TimeZoneInfo.Utc).Read(new StringReader(log), null))
            {
                m.Add(r, "primary");
            }
        }
    }

    internal static class TestExtensions
    {
        public static T Also<T>(this T value, Action<T> action)
        {
            action(value);
            return value;
        }
    }
}
