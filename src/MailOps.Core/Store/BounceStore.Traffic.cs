using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Traffic;

namespace MailOps.Core.Store
{
    /// <summary>One hourly figure of the traffic history (what baselines are learned from).</summary>
    public readonly struct TrafficHistoryPoint
    {
        public TrafficHistoryPoint(string scope, string key, string metric, DateTimeOffset hourStart, double value)
        {
            Scope = scope;
            Key = key;
            Metric = metric;
            HourStart = hourStart;
            Value = value;
        }

        public string Scope { get; }
        public string Key { get; }
        public string Metric { get; }
        public DateTimeOffset HourStart { get; }
        public double Value { get; }
    }

    public sealed partial class BounceStore
    {
        private static readonly JsonSerializerOptions AlertJson = new JsonSerializerOptions { WriteIndented = false };

        /// <summary>Records hourly figures (a figure already recorded for that hour is replaced).</summary>
        public async Task RecordTrafficHistoryAsync(IReadOnlyCollection<TrafficHistoryPoint> points, CancellationToken cancellationToken)
        {
            if (points == null || points.Count == 0)
            {
                return;
            }

            using (var tx = _connection.BeginTransaction())
            {
                foreach (var p in points)
                {
                    await ExecuteAsync("INSERT INTO traffic_history (scope, key, metric, hour_start, value) VALUES (@s, @k, @m, @h, @v) " +
                        "ON CONFLICT (scope, key, metric, hour_start) DO UPDATE SET value = excluded.value",
                        cancellationToken, tx, ("@s", p.Scope), ("@k", p.Key.ToLowerInvariant()), ("@m", p.Metric), ("@h", Iso(p.HourStart)), ("@v", p.Value)).ConfigureAwait(false);
                }

                tx.Commit();
            }
        }

        /// <summary>The recorded hourly figures of one scope, key and metric since a time, oldest first.</summary>
        public async Task<IReadOnlyList<TrafficHistoryPoint>> GetTrafficHistoryAsync(string scope, string key, string metric, DateTimeOffset since, CancellationToken cancellationToken)
        {
            var list = new List<TrafficHistoryPoint>();
            using (var cmd = Command("SELECT hour_start, value FROM traffic_history WHERE scope = @s AND key = @k AND metric = @m AND hour_start >= @h ORDER BY hour_start", null,
                ("@s", scope), ("@k", key.ToLowerInvariant()), ("@m", metric), ("@h", Iso(since))))
            using (var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    list.Add(new TrafficHistoryPoint(scope, key, metric, ParseIso(r.GetString(0)), Convert.ToDouble(r.GetValue(1), CultureInfo.InvariantCulture)));
                }
            }

            return list;
        }

        /// <summary>The alerts recorded by the traffic watch (active ones only unless <paramref name="includeResolved"/>).</summary>
        public async Task<IReadOnlyList<TrafficAlert>> GetTrafficAlertsAsync(bool includeResolved, CancellationToken cancellationToken)
        {
            var list = new List<TrafficAlert>();
            using (var cmd = Command("SELECT data, state, raised_at, resolved_at FROM traffic_alerts" + (includeResolved ? "" : " WHERE state = 'active'") + " ORDER BY raised_at", null))
            using (var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var a = JsonSerializer.Deserialize<TrafficAlert>(r.GetString(0), AlertJson)!;
                    a.State = r.GetString(1) == "active" ? AlertState.Active : AlertState.Resolved;
                    list.Add(a);
                }
            }

            return list;
        }

        /// <summary>
        /// Applies one check's findings to the alerts' state and says what to send: a finding with no active alert is
        /// <see cref="AlertState.Raised"/>; an active alert whose severity rose is raised again; one that has been quiet for
        /// <paramref name="repeatAfter"/> is <see cref="AlertState.Repeated"/>; otherwise <see cref="AlertState.Active"/>
        /// (not sent). An active alert of an evaluated rule with no finding any more is <see cref="AlertState.Resolved"/>.
        /// One transaction: two workers checking at once never both raise the same incident.
        /// </summary>
        public async Task<IReadOnlyList<TrafficAlert>> ApplyTrafficAlertsAsync(IReadOnlyList<TrafficAlert> findings, IReadOnlyCollection<string> evaluatedRules,
            DateTimeOffset at, TimeSpan repeatAfter, IReadOnlyDictionary<string, double>? currentValues, CancellationToken cancellationToken)
        {
            var result = new List<TrafficAlert>();
            using (var tx = _connection.BeginTransaction())
            {
                var active = new Dictionary<string, (TrafficAlert Alert, DateTimeOffset LastNotified)>(StringComparer.OrdinalIgnoreCase);
                using (var cmd = Command("SELECT id, data, last_notified_at FROM traffic_alerts WHERE state = 'active'" + (_postgres ? " FOR UPDATE" : ""), tx))
                using (var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                {
                    while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        active[r.GetString(0)] = (JsonSerializer.Deserialize<TrafficAlert>(r.GetString(1), AlertJson)!, ParseIso(r.GetString(2)));
                    }
                }

                foreach (var f in findings)
                {
                    if (active.TryGetValue(f.Id, out var prev))
                    {
                        active.Remove(f.Id);
                        f.RaisedAt = prev.Alert.RaisedAt;
                        var notify = true;
                        if (f.Severity > prev.Alert.Severity)
                        {
                            f.State = AlertState.Raised;
                        }
                        else if (at - prev.LastNotified >= repeatAfter)
                        {
                            f.State = AlertState.Repeated;
                        }
                        else
                        {
                            f.State = AlertState.Active;
                            notify = false;
                        }

                        await ExecuteAsync("UPDATE traffic_alerts SET severity = @sev, data = @d" + (notify ? ", last_notified_at = @n" : "") + " WHERE id = @id",
                            cancellationToken, tx, ("@sev", f.Severity.ToString()), ("@d", JsonSerializer.Serialize(f, AlertJson)), ("@n", Iso(at)), ("@id", f.Id)).ConfigureAwait(false);
                    }
                    else
                    {
                        f.State = AlertState.Raised;
                        f.RaisedAt = at;
                        await ExecuteAsync("INSERT INTO traffic_alerts (id, rule, scope, key, severity, state, raised_at, last_notified_at, data) VALUES (@id, @r, @s, @k, @sev, 'active', @t, @t, @d) " +
                            "ON CONFLICT (id) DO UPDATE SET rule = excluded.rule, severity = excluded.severity, state = 'active', raised_at = excluded.raised_at, last_notified_at = excluded.last_notified_at, resolved_at = NULL, data = excluded.data",
                            cancellationToken, tx, ("@id", f.Id), ("@r", f.Rule), ("@s", f.Scope), ("@k", f.Key), ("@sev", f.Severity.ToString()), ("@t", Iso(at)), ("@d", JsonSerializer.Serialize(f, AlertJson))).ConfigureAwait(false);
                    }

                    result.Add(f);
                }

                var evaluated = new HashSet<string>(evaluatedRules, StringComparer.OrdinalIgnoreCase);
                foreach (var (alert, _) in active.Values)
                {
                    if (!evaluated.Contains(alert.Rule))
                    {
                        continue; // not checked this time: stays as it was
                    }

                    alert.State = AlertState.Resolved;
                    alert.ResolvedAt = at;
                    alert.Value = currentValues != null && currentValues.TryGetValue(alert.Id, out var v) ? v : 0;
                    await ExecuteAsync("UPDATE traffic_alerts SET state = 'resolved', resolved_at = @t, data = @d WHERE id = @id",
                        cancellationToken, tx, ("@t", Iso(at)), ("@d", JsonSerializer.Serialize(alert, AlertJson)), ("@id", alert.Id)).ConfigureAwait(false);
                    result.Add(alert);
                }

                tx.Commit();
            }

            return result;
        }
    }
}
