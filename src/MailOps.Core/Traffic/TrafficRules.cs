using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using MailOps.Core.Config;
using MailOps.Core.Store;

namespace MailOps.Core.Traffic
{
    /// <summary>The figure of one rule for one sender, domain, flow or relay over the rule's rolling window.</summary>
    public sealed class TrafficFigure
    {
        internal TrafficFigure(ThresholdConfig rule, string key, double value, long attempts, DateTimeOffset start, DateTimeOffset end)
        {
            Rule = rule;
            Key = key;
            Value = value;
            Attempts = attempts;
            Start = start;
            End = end;
        }

        public ThresholdConfig Rule { get; }
        public string Key { get; }
        public double Value { get; }

        /// <summary>Delivery attempts in the window (what a rate is computed over).</summary>
        public long Attempts { get; }
        public DateTimeOffset Start { get; }
        public DateTimeOffset End { get; }
        internal Dictionary<string, long> Senders { get; } = new Dictionary<string, long>(StringComparer.OrdinalIgnoreCase);
        internal Dictionary<string, long> Flows { get; } = new Dictionary<string, long>(StringComparer.OrdinalIgnoreCase);
        internal Dictionary<string, long> Reasons { get; } = new Dictionary<string, long>(StringComparer.Ordinal);

        /// <summary>The alert id of this rule and key.</summary>
        public string AlertId => TrafficRules.AlertId(Rule, Key);
    }

    /// <summary>
    /// Evaluates the configuration's thresholds on minute rows: caps (warning at warnAt of the limit, critical at the
    /// limit), rates (bounce and deferral, over at least minVolume attempts), provider push-back (block and spam
    /// replies), the deferred queue, and spikes against a baseline learned from history (median and MAD of the same hour
    /// of the week). Every figure is over a rolling window (the last minute, hour or day before the check time),
    /// counted in whole buckets of the rows given (minutes for checks): the minute the window starts in counts whole.
    /// </summary>
    public static class TrafficRules
    {
        /// <summary>The row dimension a threshold scope counts.</summary>
        public static TrafficDimension DimensionOf(string scope)
        {
            switch (scope)
            {
                case "sender": return TrafficDimension.Sender;
                case "domain": return TrafficDimension.SenderDomain;
                case "flow": return TrafficDimension.Flow;
                case "relay": return TrafficDimension.Relay;
                case "client": return TrafficDimension.Client;
                default: return TrafficDimension.Total;
            }
        }

        /// <summary>The longest window of some rules (how much log a check of them needs; an hour when there are none).</summary>
        public static TimeSpan LongestWindow(IEnumerable<ThresholdConfig> rules)
        {
            var windows = rules.Select(r => WindowOf(r.Per)).ToList();
            return windows.Count == 0 ? TimeSpan.FromHours(1) : windows.Max();
        }

        public static TimeSpan WindowOf(string per) => per == "minute" ? TimeSpan.FromMinutes(1) : per == "day" ? TimeSpan.FromDays(1) : TimeSpan.FromHours(1);

        public static string AlertId(ThresholdConfig rule, string key) => $"{rule.Name}/{rule.Scope}/{key}".ToLowerInvariant();

        /// <summary>The figures of every rule for every key seen in its window (keys filtered by the rule's match).</summary>
        public static IReadOnlyList<TrafficFigure> Figures(IEnumerable<ThresholdConfig> rules, IReadOnlyList<TrafficRow> rows, DateTimeOffset at)
        {
            var result = new List<TrafficFigure>();
            foreach (var rule in rules)
            {
                var dim = DimensionOf(rule.Scope);
                var start = at - WindowOf(rule.Per);
                var groups = new Dictionary<string, List<TrafficRow>>(StringComparer.OrdinalIgnoreCase);
                foreach (var row in rows)
                {
                    // buckets that overlap the window count whole: a figure may cover up to one bucket (a minute) more
                    // than the window, never less (a cap is warned early rather than late)
                    if (row.Dimension != dim || row.End <= start || row.Start >= at)
                    {
                        continue;
                    }

                    if (rule.Match != null && !string.Equals(rule.Match, row.Key, StringComparison.OrdinalIgnoreCase))
                    {
                        continue;
                    }

                    if (rule.Match == null && dim == TrafficDimension.Flow && row.Key == "(none)")
                    {
                        continue;
                    }

                    if (!groups.TryGetValue(row.Key, out var list))
                    {
                        groups[row.Key] = list = new List<TrafficRow>();
                    }

                    list.Add(row);
                }

                if (rule.Match != null && !groups.ContainsKey(rule.Match))
                {
                    groups[rule.Match] = new List<TrafficRow>(); // a named key with no traffic has the figure 0 (and resolves)
                }

                foreach (var g in groups)
                {
                    long delivered = 0, bounced = 0, deferred = 0;
                    double sum = 0, max = 0;
                    foreach (var row in g.Value)
                    {
                        delivered += row.Delivered;
                        bounced += row.Bounced + row.Expired;
                        deferred += row.Deferred;
                        var v = rule.Metric == "bounceRate" || rule.Metric == "deferralRate" ? 0 : row.Metric(rule.Metric);
                        sum += v;
                        max = Math.Max(max, v);
                    }

                    double value;
                    long attempts;
                    switch (rule.Metric)
                    {
                        case "bounceRate":
                            attempts = delivered + bounced;
                            value = attempts == 0 ? 0 : (double)bounced / attempts;
                            break;
                        case "deferralRate":
                            attempts = delivered + bounced + deferred;
                            value = attempts == 0 ? 0 : (double)deferred / attempts;
                            break;
                        case "deferredQueue":
                            attempts = delivered + bounced + deferred;
                            value = max;
                            break;
                        default:
                            attempts = delivered + bounced + deferred;
                            value = sum;
                            break;
                    }

                    var f = new TrafficFigure(rule, g.Key, value, attempts, start, at);
                    foreach (var row in g.Value)
                    {
                        Merge(f.Senders, row.SenderCounts);
                        Merge(f.Flows, row.FlowCounts);
                        Merge(f.Reasons, row.ReasonCounts);
                    }

                    if (dim == TrafficDimension.Sender)
                    {
                        f.Senders[g.Key] = g.Value.Sum(r => r.Messages);
                    }

                    result.Add(f);
                }
            }

            return result;
        }

        /// <summary>
        /// The alerts the figures call for. <paramref name="history"/> gives a spike rule's past hourly figures for a key
        /// (null when there is no history store).
        /// </summary>
        public static IReadOnlyList<TrafficAlert> Evaluate(IReadOnlyList<TrafficFigure> figures, MailOpsConfig? config,
            Func<TrafficFigure, IReadOnlyList<TrafficHistoryPoint>>? history)
        {
            var alerts = new List<TrafficAlert>();
            foreach (var f in figures)
            {
                var rule = f.Rule;
                AlertSeverity? severity = null;
                double? baseline = null, spread = null;
                var limit = rule.Limit;
                switch (rule.Kind)
                {
                    case "rate":
                        if (f.Attempts >= rule.MinVolume && f.Value >= rule.Limit)
                        {
                            severity = f.Value >= Math.Min(1, rule.Limit * 2) ? AlertSeverity.Critical : AlertSeverity.Warning;
                        }

                        break;
                    case "spike":
                    {
                        var points = history?.Invoke(f) ?? Array.Empty<TrafficHistoryPoint>();
                        var how = HourOfWeek(f.End.AddMinutes(-30));
                        var same = points.Where(p => HourOfWeek(p.HourStart) == how).Select(p => p.Value).ToList();
                        if (same.Count < 3)
                        {
                            break; // not enough history for this hour of the week: no guess
                        }

                        var median = Median(same);
                        var mad = Median(same.Select(v => Math.Abs(v - median)).ToList()) * 1.4826;
                        var s = Math.Max(mad, Math.Max(1, median * 0.1));
                        baseline = median;
                        spread = mad;
                        limit = median + rule.Sensitivity * s;
                        if (f.Value > limit && f.Value >= rule.Limit)
                        {
                            severity = f.Value > median + 2 * rule.Sensitivity * s ? AlertSeverity.Critical : AlertSeverity.Warning;
                        }

                        break;
                    }

                    default:
                        // caps, block replies, the deferred queue
                        if (rule.Limit > 0 && f.Value >= rule.Limit)
                        {
                            severity = AlertSeverity.Critical;
                        }
                        else if (rule.Limit > 0 && f.Value >= rule.Limit * rule.WarnAt)
                        {
                            severity = AlertSeverity.Warning;
                        }

                        break;
                }

                if (severity == null)
                {
                    continue;
                }

                var alert = new TrafficAlert
                {
                    Id = f.AlertId,
                    Rule = rule.Name,
                    Kind = rule.Kind,
                    Severity = severity.Value,
                    Scope = rule.Scope,
                    Key = f.Key,
                    Metric = rule.Metric,
                    Per = rule.Per,
                    Value = f.Value,
                    Limit = limit,
                    Baseline = baseline,
                    Spread = spread,
                    WindowStart = f.Start,
                    WindowEnd = f.End,
                    TopSenders = Top(f.Senders),
                    TopFlows = Top(f.Flows),
                };
                alert.Summary = Summarise(alert, rule, f);
                alert.SuggestedAction = rule.Action ?? Suggest(alert, f, config);
                alerts.Add(alert);
            }

            return alerts;
        }

        /// <summary>A sentence for a resolved alert.</summary>
        public static string ResolvedSummary(TrafficAlert a) =>
            $"Resolved: {Subject(a)} is back to {Figure(a.Metric, a.Value)} {What(a.Metric)} in the last {a.Per} (rule '{a.Rule}', limit {Figure(a.Metric, a.Limit)}).";

        private static string Summarise(TrafficAlert a, ThresholdConfig rule, TrafficFigure f)
        {
            var who = a.TopFlows.Count > 0 && a.Scope != "flow" && a.TopFlows[0].Key != "(none)" ? $" Most of it from flow '{a.TopFlows[0].Key}' ({a.TopFlows[0].Value})." :
                a.TopSenders.Count > 0 && a.Scope != "sender" ? $" Most of it from {a.TopSenders[0].Key} ({a.TopSenders[0].Value})." : "";
            switch (a.Kind)
            {
                case "rate":
                    return $"{Subject(a)}: {What(a.Metric)} {Figure(a.Metric, a.Value)} over {f.Attempts} attempts in the last {a.Per}, above the {Figure(a.Metric, rule.Limit)} of rule '{a.Rule}'.{who}{TopReasons(f)}";
                case "spike":
                    return $"{Subject(a)} sent {a.Value:0} {What(a.Metric)} in the last hour, against a usual {a.Baseline:0} for this hour of the week (spike above {a.Limit:0}, rule '{a.Rule}').{who}";
                case "blockReplies":
                    return $"{Subject(a)} got {a.Value:0} block, spam or rate-limit replies in the last {a.Per} (rule '{a.Rule}', limit {rule.Limit:0}).{who}{TopReasons(f)}";
                case "deferredQueue":
                    return $"{Subject(a)} had up to {a.Value:0} messages waiting on deferrals in the last {a.Per} (rule '{a.Rule}', limit {rule.Limit:0}).{TopReasons(f)}";
                default:
                    var share = rule.Limit > 0 ? (a.Value / rule.Limit).ToString("P0", CultureInfo.InvariantCulture) : "";
                    return $"{Subject(a)} sent {a.Value:0} {What(a.Metric)} in the last {a.Per}: {share} of the {rule.Limit:0} cap of rule '{a.Rule}'{(a.Severity == AlertSeverity.Warning ? $" (warning from {rule.WarnAt:P0})" : "")}.{who}";
            }
        }

        private static string Suggest(TrafficAlert a, TrafficFigure f, MailOpsConfig? config)
        {
            var topFlow = a.Scope == "flow" ? a.Key : a.TopFlows.FirstOrDefault(x => x.Key != "(none)" && x.Key != "(others)").Key;
            var flow = topFlow == null ? null : config?.FindFlow(topFlow);
            var relay = a.Scope == "relay" ? config?.FindRelay(a.Key) : null;
            var secondary = config?.Relays.FirstOrDefault(r => r.Role == RelayRole.Secondary);
            switch (a.Kind)
            {
                case "rate" when a.Metric == "bounceRate":
                    return flow != null
                        ? $"Pause flow '{flow.Name}' and clean its list: check Get-Bounce -Flow {flow.Name} and the reasons above before sending again."
                        : "Find the list behind these bounces (Get-MailTrafficReport -By Sender) and clean it before sending again.";
                case "rate":
                case "deferredQueue":
                    return $"Look at the deferred queue of {(a.Scope == "relay" ? $"relay '{a.Key}'" : "the relay")} (postqueue -p) and the reasons above; if one provider defers, slow down mail to it.";
                case "blockReplies":
                    return flow != null
                        ? $"Pause flow '{flow.Name}' now (its send jobs pause themselves on such replies); check the relay's reputation with Test-MailRelay before resuming."
                        : "Pause bulk sending through this relay and check its reputation with Test-MailRelay.";
            }

            // caps and spikes: move bulk off the person-to-person relay
            if (flow != null && flow.IsBulk)
            {
                if (relay != null && relay.Role == RelayRole.Primary && secondary != null)
                {
                    return $"Move flow '{flow.Name}' to the secondary relay '{(flow.Relay != null && !string.Equals(flow.Relay, relay.Name, StringComparison.OrdinalIgnoreCase) ? flow.Relay : secondary.Name)}' " +
                        $"(Send-ViaSecondaryRelay), so that it cannot get '{relay.Name}' suspended.";
                }

                return $"Slow flow '{flow.Name}' down (Send-ViaSecondaryRelay -MaxPerHour) or spread it over more hours.";
            }

            if (flow != null)
            {
                return $"Check flow '{flow.Name}' ({flow.Owner ?? "no owner"}): this is not its usual volume; a compromised account or a loop looks like this.";
            }

            return a.TopSenders.Count > 0
                ? $"Check sender {a.TopSenders[0].Key}: unknown to the flow inventory and sending the most; a compromised account or a script looks like this."
                : "Check who is sending (Get-MailTrafficReport -By Sender, Flow).";
        }

        private static string Subject(TrafficAlert a) => a.Scope == "all" ? "All traffic" : $"{(a.Scope == "domain" ? "Sender domain" : char.ToUpperInvariant(a.Scope[0]) + a.Scope.Substring(1))} '{a.Key}'";

        private static string What(string metric) =>
            metric == "bounceRate" ? "bounce rate" : metric == "deferralRate" ? "deferral rate" : metric == "blockReplies" ? "block replies" : metric == "deferredQueue" ? "deferred messages" : metric;

        private static string Figure(string metric, double v) => metric == "bounceRate" || metric == "deferralRate" ? v.ToString("P1", CultureInfo.InvariantCulture) : v.ToString("0", CultureInfo.InvariantCulture);

        private static string TopReasons(TrafficFigure f) =>
            f.Reasons.Count == 0 ? "" : " Top reasons: " + string.Join(", ", f.Reasons.OrderByDescending(x => x.Value).Take(3).Select(x => $"{x.Key} ({x.Value})")) + ".";

        private static List<KeyValuePair<string, long>> Top(Dictionary<string, long> map) =>
            map.OrderByDescending(x => x.Value).ThenBy(x => x.Key, StringComparer.Ordinal).Take(5).ToList();

        private static void Merge(Dictionary<string, long> into, Dictionary<string, long> from)
        {
            foreach (var kv in from)
            {
                into.TryGetValue(kv.Key, out var n);
                into[kv.Key] = n + kv.Value;
            }
        }

        /// <summary>0..167: the local hour of the week (Monday 00h = 0).</summary>
        public static int HourOfWeek(DateTimeOffset t)
        {
            var local = t.ToLocalTime();
            return ((int)local.DayOfWeek + 6) % 7 * 24 + local.Hour;
        }

        internal static double Median(IReadOnlyList<double> values)
        {
            var sorted = values.OrderBy(v => v).ToList();
            var n = sorted.Count;
            return n == 0 ? 0 : n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
        }
    }
}
