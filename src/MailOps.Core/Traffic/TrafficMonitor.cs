using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Config;
using MailOps.Core.Logs;
using MailOps.Core.Store;

namespace MailOps.Core.Traffic
{
    /// <summary>The outcome of one traffic check.</summary>
    public sealed class TrafficCheckResult
    {
        internal TrafficCheckResult(DateTimeOffset at, IReadOnlyList<TrafficAlert> alerts, IReadOnlyList<AlertDelivery> deliveries, IReadOnlyList<TrafficFigure> figures,
            IReadOnlyList<TrafficAlert> active)
        {
            At = at;
            Alerts = alerts;
            Deliveries = deliveries;
            Figures = figures;
            ActiveAlerts = active;
        }

        public DateTimeOffset At { get; }

        /// <summary>The alerts of this check: raised, repeated, still active (quiet) and resolved.</summary>
        public IReadOnlyList<TrafficAlert> Alerts { get; }

        /// <summary>What each sink did with each alert sent.</summary>
        public IReadOnlyList<AlertDelivery> Deliveries { get; }

        /// <summary>Every rule's figure for every key (also those under their limits).</summary>
        public IReadOnlyList<TrafficFigure> Figures { get; }

        /// <summary>The alerts active after this check (all rules, also those not evaluated now).</summary>
        public IReadOnlyList<TrafficAlert> ActiveAlerts { get; }

        public AlertSeverity? HighestActive => ActiveAlerts.Count == 0 ? (AlertSeverity?)null : ActiveAlerts.Max(a => a.Severity);
    }

    /// <summary>
    /// Counts traffic from MTA logs and the send journal into minute rows and checks the configuration's thresholds,
    /// keeping alert state and history in the store and sending raised, repeated and resolved alerts to the sinks.
    /// Used once by Test-MailTraffic and continuously by Watch-MailTraffic.
    /// </summary>
    public sealed class TrafficMonitor
    {
        private readonly MailOpsConfig _config;
        private readonly BounceStore? _store;
        private readonly List<ThresholdConfig> _rules;
        private readonly Func<TrafficAlert, CancellationToken, Task<IReadOnlyList<AlertDelivery>>>? _dispatch;
        private TrafficAggregator _aggregator;
        private readonly TrafficOptions _options;

        public TrafficMonitor(MailOpsConfig config, BounceStore? store, IEnumerable<ThresholdConfig>? rules,
            Func<TrafficAlert, CancellationToken, Task<IReadOnlyList<AlertDelivery>>>? dispatch, DateTimeOffset? since = null)
        {
            _config = config ?? throw new ArgumentNullException(nameof(config));
            _store = store;
            _rules = (rules ?? config.Thresholds).ToList();
            _dispatch = dispatch;
            _options = new TrafficOptions
            {
                Bucket = TrafficBucket.Minute,
                // client rules (the hosts that hand mail in) need the client dimension, which costs memory: only then
                Dimensions = new[] { TrafficDimension.Sender, TrafficDimension.SenderDomain, TrafficDimension.Flow, TrafficDimension.Relay }
                    .Concat(_rules.Any(r => r.Scope == "client") ? new[] { TrafficDimension.Client } : Array.Empty<TrafficDimension>()).ToArray(),
                Flows = new FlowMatcher(config.Flows),
                RelayByInstance = config.Relays.Where(r => r.SyslogName != null).ToDictionary(r => r.SyslogName!, r => r.Name, StringComparer.OrdinalIgnoreCase),
                Since = since,
            };
            _aggregator = new TrafficAggregator(_options);
        }

        /// <summary>The longest window of the rules (how much log a check needs).</summary>
        public TimeSpan LongestWindow => TrafficRules.LongestWindow(_rules);

        public TrafficAggregator Aggregator => _aggregator;

        public IReadOnlyList<ThresholdConfig> Rules => _rules;

        /// <summary>Adds log records; <paramref name="relay"/> names the relay whose log it is (null: from the syslog name).</summary>
        public void Add(MailLogRecord record, string? relay)
        {
            if (relay != null)
            {
                record.Instance = relay;
            }

            _aggregator.Add(record);
        }

        /// <summary>Reads a whole log file (plain or .gz).</summary>
        public void AddLogFile(string path, string? relay, MailLogParser parser, CancellationToken cancellationToken)
        {
            using (var reader = MailLogReader.Open(path))
            {
                foreach (var r in parser.Read(reader, path))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    Add(r, relay);
                }
            }
        }

        /// <summary>Adds the send journal's items of every job updated since a time.</summary>
        public async Task AddJournalAsync(DateTimeOffset since, CancellationToken cancellationToken)
        {
            if (_store == null)
            {
                return;
            }

            foreach (var job in await _store.ListJobsAsync(null, cancellationToken).ConfigureAwait(false))
            {
                if (job.UpdatedAt < since)
                {
                    continue;
                }

                var items = await _store.LoadItemsAsync(job.Name, null, cancellationToken).ConfigureAwait(false);
                _aggregator.AddJournal(job, items.Where(i => i.UpdatedAt >= since));
            }
        }

        /// <summary>Drops the rows before a time (a long-running watch keeps only what its windows and history need).</summary>
        public void Restart(DateTimeOffset since)
        {
            _options.Since = since;
            _aggregator = new TrafficAggregator(_options);
        }

        /// <summary>
        /// Checks every rule at <paramref name="at"/>: records the complete hours seen since <paramref name="dataSince"/> in
        /// the history (for spike rules), evaluates, applies the alert state, and sends what is to be sent (when
        /// <paramref name="notify"/>).
        /// </summary>
        public async Task<TrafficCheckResult> CheckAsync(DateTimeOffset at, DateTimeOffset dataSince, bool notify, CancellationToken cancellationToken)
        {
            var rows = _aggregator.Rows;
            if (_store != null)
            {
                await _store.RecordTrafficHistoryAsync(HistoryPoints(rows, dataSince, at), cancellationToken).ConfigureAwait(false);
            }

            var figures = TrafficRules.Figures(_rules, rows, at);
            var history = new Dictionary<string, IReadOnlyList<TrafficHistoryPoint>>(StringComparer.OrdinalIgnoreCase);
            if (_store != null)
            {
                foreach (var f in figures.Where(x => x.Rule.Baseline))
                {
                    var key = f.Rule.Scope + "/" + f.Key + "/" + f.Rule.Metric;
                    if (!history.ContainsKey(key))
                    {
                        history[key] = await _store.GetTrafficHistoryAsync(f.Rule.Scope, f.Key, f.Rule.Metric, at.AddDays(-56), cancellationToken).ConfigureAwait(false);
                    }
                }
            }

            // the hour being judged is not its own baseline
            var judged = at.AddHours(-1);
            var findings = TrafficRules.Evaluate(figures, _config, f =>
                history.TryGetValue(f.Rule.Scope + "/" + f.Key + "/" + f.Rule.Metric, out var h) ? h.Where(p => p.HourStart <= judged.AddHours(-1)).ToList() : (IReadOnlyList<TrafficHistoryPoint>)Array.Empty<TrafficHistoryPoint>());
            IReadOnlyList<TrafficAlert> alerts;
            IReadOnlyList<TrafficAlert> active;
            if (_store != null)
            {
                var current = figures.GroupBy(f => f.AlertId).ToDictionary(g => g.Key, g => g.First().Value, StringComparer.OrdinalIgnoreCase);
                alerts = await _store.ApplyTrafficAlertsAsync(findings, _rules.Select(r => r.Name).ToList(), at, _config.AlertRepeatAfter, current, cancellationToken).ConfigureAwait(false);
                foreach (var a in alerts.Where(a => a.State == AlertState.Resolved))
                {
                    a.Summary = TrafficRules.ResolvedSummary(a);
                }

                active = await _store.GetTrafficAlertsAsync(false, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                foreach (var a in findings)
                {
                    a.State = AlertState.Raised;
                    a.RaisedAt = at;
                }

                alerts = findings;
                active = findings;
            }

            var deliveries = new List<AlertDelivery>();
            if (notify && _dispatch != null)
            {
                foreach (var a in alerts.Where(a => a.State != AlertState.Active))
                {
                    deliveries.AddRange(await _dispatch(a, cancellationToken).ConfigureAwait(false));
                }
            }

            return new TrafficCheckResult(at, alerts, deliveries, figures, active);
        }

        private List<TrafficHistoryPoint> HistoryPoints(IReadOnlyList<TrafficRow> rows, DateTimeOffset dataSince, DateTimeOffset at)
        {
            var points = new List<TrafficHistoryPoint>();
            var firstHour = new DateTimeOffset(dataSince.UtcTicks - dataSince.UtcTicks % TimeSpan.TicksPerHour, TimeSpan.Zero);
            if (firstHour < dataSince)
            {
                firstHour = firstHour.AddHours(1); // only hours the data covers completely
            }

            var lastHourEnd = new DateTimeOffset(at.UtcTicks - at.UtcTicks % TimeSpan.TicksPerHour, TimeSpan.Zero);
            if (lastHourEnd <= firstHour)
            {
                return points;
            }

            foreach (var rule in _rules.Where(r => r.Baseline).GroupBy(r => (r.Scope, r.Metric)).Select(g => g.First()))
            {
                var dim = TrafficRules.DimensionOf(rule.Scope);
                var sums = new Dictionary<(string, long), double>();
                var keys = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
                foreach (var row in rows)
                {
                    if (row.Dimension != dim || row.Start < firstHour || row.Start >= lastHourEnd || (dim == TrafficDimension.Flow && row.Key == "(none)"))
                    {
                        continue;
                    }

                    keys.Add(row.Key);
                    var hour = row.Start.UtcTicks - row.Start.UtcTicks % TimeSpan.TicksPerHour;
                    sums.TryGetValue((row.Key.ToLowerInvariant(), hour), out var v);
                    sums[(row.Key.ToLowerInvariant(), hour)] = v + row.Metric(rule.Metric);
                }

                foreach (var key in keys)
                {
                    for (var h = firstHour; h < lastHourEnd; h = h.AddHours(1))
                    {
                        sums.TryGetValue((key.ToLowerInvariant(), h.UtcTicks), out var v);
                        points.Add(new TrafficHistoryPoint(rule.Scope, key, rule.Metric, h, v));
                    }
                }
            }

            return points;
        }
    }
}
