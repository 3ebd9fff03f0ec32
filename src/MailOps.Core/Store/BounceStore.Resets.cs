using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Providers;

namespace MailOps.Core.Store
{
    public sealed partial class BounceStore
    {
        /// <summary>
        /// Works out which suppressed addresses the criteria reset, without changing anything. An address is reset
        /// only when every bounce that keeps it suppressed is explained by the criteria (a genuine user-unknown from
        /// another day keeps it suppressed). With providers named, each domain is attributed by
        /// <paramref name="attribute"/> (live DNS, else the attribution recorded before); an unknown attribution is never
        /// taken as a match.
        /// </summary>
        public async Task<HardBounceResetPlan> PlanResetAsync(ResetCriteria criteria,
            Func<IReadOnlyCollection<string>, CancellationToken, Task<IReadOnlyDictionary<string, MailProviderResult>>>? attribute, CancellationToken cancellationToken)
        {
            if (criteria == null)
            {
                throw new ArgumentNullException(nameof(criteria));
            }

            // the addresses with at least one suppressing event in the window, then all their suppressing events
            var inner = new List<string> { "i.suppressing = 1" };
            var args = new List<(string, object?)>();
            if (criteria.Since.HasValue)
            {
                inner.Add("i.event_time >= @since");
                args.Add(("@since", Iso(criteria.Since.Value)));
            }

            if (criteria.Until.HasValue)
            {
                inner.Add("i.event_time < @until");
                args.Add(("@until", Iso(criteria.Until.Value)));
            }

            AddIn(inner, args, "i.domain", "dom", criteria.Domains.Select(d => d.ToLowerInvariant()));
            if (criteria.Addresses.Count > 0 && criteria.Addresses.Count <= 500)
            {
                AddIn(inner, args, "i.address", "adr", criteria.Addresses.Select(a => a.ToLowerInvariant()));
            }

            var sql = "SELECT e.id, e.address, e.domain, e.reason, e.is_infrastructure, e.event_time, e.source, e.flow, e.remote_host " +
                "FROM bounce_events e JOIN suppressions s ON s.address = e.address " +
                "WHERE s.state = 'suppressed' AND e.suppressing = 1 AND e.address IN (SELECT i.address FROM bounce_events i WHERE " + string.Join(" AND ", inner) + ") " +
                "ORDER BY e.address, e.event_time, e.id";
            var events = new List<ResetEvent>();
            using (var cmd = Command(sql, null, args.ToArray()))
            using (var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    events.Add(new ResetEvent
                    {
                        Id = reader.GetInt64(0), Address = reader.GetString(1), Domain = reader.GetString(2), Reason = reader.GetString(3),
                        IsInfrastructure = Convert.ToInt32(reader.GetValue(4), CultureInfo.InvariantCulture) != 0, Time = ParseIso(reader.GetString(5)),
                        Source = reader.IsDBNull(6) ? null : reader.GetString(6), Flow = reader.IsDBNull(7) ? null : reader.GetString(7),
                        RemoteHost = reader.IsDBNull(8) ? null : reader.GetString(8),
                    });
                }
            }

            var excluded = new List<HardBounceResetExclusion>();
            var candidates = new List<(string Address, List<ResetEvent> Events)>();
            foreach (var group in events.GroupBy(e => e.Address))
            {
                var matching = group.Where(criteria.Matches).ToList();
                if (matching.Count == 0)
                {
                    continue;
                }

                var other = group.Where(e => !criteria.Matches(e)).ToList();
                if (other.Count > 0)
                {
                    var o = other[other.Count - 1];
                    excluded.Add(new HardBounceResetExclusion(group.Key, "OtherSuppression",
                        $"also suppressed by {o.Reason} on {Iso(o.Time)}{(other.Count > 1 ? $" and {other.Count - 1} other bounce(s)" : "")}, which the criteria do not explain"));
                    continue;
                }

                candidates.Add((group.Key, matching));
            }

            IReadOnlyDictionary<string, MailProviderResult> attribution = new Dictionary<string, MailProviderResult>();
            if (attribute != null && candidates.Count > 0)
            {
                attribution = await attribute(candidates.Select(c => c.Events[0].Domain).Distinct().ToList(), cancellationToken).ConfigureAwait(false);
            }

            var items = new List<HardBounceResetItem>();
            foreach (var (address, evs) in candidates)
            {
                var domain = evs[0].Domain;
                attribution.TryGetValue(domain, out var a);
                var (provider, evidence, verdict) = Decide(a, criteria.Providers);
                if (verdict != null)
                {
                    excluded.Add(new HardBounceResetExclusion(address, verdict.Value.Category, verdict.Value.Why));
                    continue;
                }

                items.Add(new HardBounceResetItem(address, domain, evs.Select(e => e.Flow).FirstOrDefault(f => f != null), evs.Select(e => e.Reason).Distinct().ToList(),
                    evs.Select(e => e.Id).ToList(), evs.Min(e => e.Time), evs.Max(e => e.Time), provider, evidence, SuppressionStates.Suppressed));
            }

            return new HardBounceResetPlan(criteria, items, excluded);
        }

        private static (string? Provider, string? Evidence, (string Category, string Why)? Excluded) Decide(MailProviderResult? a, IReadOnlyList<string> wanted)
        {
            if (a == null)
            {
                return wanted.Count == 0 ? (null, null, null) : ((string?)null, (string?)null, ("ProviderUnknown", "the domain was not attributed")) ;
            }

            var liveDecides = a.Status == AttributionStatus.Resolved || a.Status == AttributionStatus.NoMailHost || (a.Status == AttributionStatus.Partial && a.Provider != null);
            var live = liveDecides ? a : null;
            var recorded = a.LastKnown;
            if (wanted.Count == 0)
            {
                var source = live ?? recorded;
                return (source?.Provider, source == null ? "attribution unknown: " + string.Join("; ", a.Problems) : Describe(source, source == recorded), null);
            }

            foreach (var p in wanted)
            {
                if (live != null && live.IsHostedBy(p))
                {
                    return (p, Describe(live, false), null);
                }
            }

            if (live == null)
            {
                foreach (var p in wanted)
                {
                    if (recorded != null && recorded.IsHostedBy(p))
                    {
                        return (p, Describe(recorded, true) + $" (live DNS now: {a.Status}{(a.Problems.Count > 0 ? ", " + a.Problems[0] : "")})", null);
                    }
                }

                return (null, null, ("ProviderUnknown", $"the provider of {a.Domain} is unknown (DNS: {a.Status}{(a.Problems.Count > 0 ? ", " + string.Join("; ", a.Problems) : "")})" +
                    (recorded != null ? $"; recorded before as {recorded.Provider}" : "; nothing recorded before") + ": not reset without evidence"));
            }

            var who = new[] { live.MailProvider, live.DnsProvider, live.AddressOwner }.Where(x => x != null).Distinct().ToList();
            return (null, null, ("OtherProvider", who.Count > 0 ? $"{a.Domain} is hosted by {string.Join(" and ", who)}, not {string.Join(" or ", wanted)}" : $"{a.Domain} matches no provider of the catalogue"));
        }

        private static string Describe(MailProviderResult r, bool recorded) =>
            (recorded ? $"recorded {Iso(r.ResolvedAt)}: " : "DNS now: ") + r.EvidenceText;

        /// <summary>
        /// Applies a plan as one audited operation, in one transaction: interrupted (Ctrl+C, a killed process), the
        /// store is as before; finished, every item is reset. An address whose state changed since the plan was made
        /// is left alone.
        /// </summary>
        public async Task<HardBounceResetOperation> ApplyResetAsync(HardBounceResetPlan plan, string who, Action<int>? onProgress, CancellationToken cancellationToken)
        {
            if (plan == null)
            {
                throw new ArgumentNullException(nameof(plan));
            }

            var id = Guid.NewGuid().ToString("N").Substring(0, 12);
            var now = DateTimeOffset.UtcNow;
            var done = new List<HardBounceResetItem>();
            using (var tx = _connection.BeginTransaction())
            {
                await ExecuteAsync("INSERT INTO reset_operations (id, created_at, created_by, criteria, item_count) VALUES (@id, @at, @by, @c, 0)", cancellationToken, tx,
                    ("@id", id), ("@at", Iso(now)), ("@by", who), ("@c", plan.Criteria.ToString())).ConfigureAwait(false);
                var n = 0;
                foreach (var item in plan.Items)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    string? state = null, reason = null, updated = null, lastReset = null, lastOp = null;
                    using (var cmd = Command("SELECT state, reason, updated_at, last_reset_at, reset_operation FROM suppressions WHERE address = @a", tx, ("@a", item.Address)))
                    using (var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                    {
                        if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                        {
                            state = reader.GetString(0);
                            reason = reader.GetString(1);
                            updated = reader.GetString(2);
                            lastReset = reader.IsDBNull(3) ? null : reader.GetString(3);
                            lastOp = reader.IsDBNull(4) ? null : reader.GetString(4);
                        }
                    }

                    if (state != SuppressionStates.Suppressed)
                    {
                        continue;
                    }

                    await ExecuteAsync(
                        "INSERT INTO reset_items (operation_id, address, domain, flow, reasons, provider, evidence, event_ids, previous_state, previous_reason, previous_updated_at, previous_last_reset_at, previous_reset_operation) " +
                        "VALUES (@op, @a, @d, @f, @r, @p, @e, @ids, @ps, @pr, @pu, @pl, @po)", cancellationToken, tx,
                        ("@op", id), ("@a", item.Address), ("@d", item.Domain), ("@f", item.Flow), ("@r", string.Join(",", item.Reasons)), ("@p", item.Provider), ("@e", item.ProviderEvidence),
                        ("@ids", string.Join(",", item.EventIds.Select(x => x.ToString(CultureInfo.InvariantCulture)))), ("@ps", state), ("@pr", reason), ("@pu", updated), ("@pl", lastReset), ("@po", lastOp)).ConfigureAwait(false);
                    await ExecuteAsync("UPDATE suppressions SET state = 'reset', updated_at = @n, last_reset_at = @n, reset_operation = @op WHERE address = @a", cancellationToken, tx,
                        ("@n", Iso(now)), ("@op", id), ("@a", item.Address)).ConfigureAwait(false);
                    await SetSuppressingAsync(item.EventIds, 0, tx, cancellationToken).ConfigureAwait(false);
                    done.Add(item);
                    if (++n % 500 == 0)
                    {
                        onProgress?.Invoke(n);
                    }
                }

                await ExecuteAsync("UPDATE reset_operations SET item_count = @n WHERE id = @id", cancellationToken, tx, ("@n", done.Count), ("@id", id)).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                tx.Commit();
            }

            onProgress?.Invoke(done.Count);
            return new HardBounceResetOperation(id, now, who, plan.Criteria.ToString(), done.Count, null, null, done);
        }

        private async Task SetSuppressingAsync(IReadOnlyList<long> ids, int value, System.Data.Common.DbTransaction tx, CancellationToken cancel)
        {
            for (var i = 0; i < ids.Count; i += 200)
            {
                var chunk = ids.Skip(i).Take(200).ToList();
                await ExecuteAsync($"UPDATE bounce_events SET suppressing = {value} WHERE id IN ({string.Join(",", chunk.Select(x => x.ToString(CultureInfo.InvariantCulture)))})", cancel, tx).ConfigureAwait(false);
            }
        }

        /// <summary>The audited reset operations, newest first (one, when <paramref name="id"/> is given).</summary>
        public async Task<IReadOnlyList<HardBounceResetOperation>> GetResetsAsync(string? id, DateTimeOffset? since, bool includeItems, CancellationToken cancellationToken)
        {
            var where = new List<string>();
            var args = new List<(string, object?)>();
            if (id != null)
            {
                where.Add("id = @id");
                args.Add(("@id", id));
            }

            if (since.HasValue)
            {
                where.Add("created_at >= @since");
                args.Add(("@since", Iso(since.Value)));
            }

            var ops = new List<(string Id, DateTimeOffset At, string By, string Criteria, int Count, DateTimeOffset? UndoneAt, string? UndoneBy)>();
            using (var cmd = Command("SELECT id, created_at, created_by, criteria, item_count, undone_at, undone_by FROM reset_operations" +
                (where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : "") + " ORDER BY created_at DESC, id", null, args.ToArray()))
            using (var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    ops.Add((reader.GetString(0), ParseIso(reader.GetString(1)), reader.GetString(2), reader.GetString(3), Convert.ToInt32(reader.GetValue(4), CultureInfo.InvariantCulture),
                        reader.IsDBNull(5) ? (DateTimeOffset?)null : ParseIso(reader.GetString(5)), reader.IsDBNull(6) ? null : reader.GetString(6)));
                }
            }

            var result = new List<HardBounceResetOperation>();
            foreach (var o in ops)
            {
                var items = includeItems ? await ItemsAsync(o.Id, null, cancellationToken).ConfigureAwait(false) : null;
                result.Add(new HardBounceResetOperation(o.Id, o.At, o.By, o.Criteria, o.Count, o.UndoneAt, o.UndoneBy, items));
            }

            return result;
        }

        private async Task<List<HardBounceResetItem>> ItemsAsync(string operation, System.Data.Common.DbTransaction? tx, CancellationToken cancel)
        {
            var items = new List<HardBounceResetItem>();
            using (var cmd = Command("SELECT address, domain, flow, reasons, provider, evidence, event_ids, previous_state, undo_outcome FROM reset_items WHERE operation_id = @op ORDER BY id", tx, ("@op", operation)))
            using (var reader = await cmd.ExecuteReaderAsync(cancel).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancel).ConfigureAwait(false))
                {
                    var ids = reader.GetString(6).Split(new[] { ',' }, StringSplitOptions.RemoveEmptyEntries).Select(x => long.Parse(x, CultureInfo.InvariantCulture)).ToList();
                    items.Add(new HardBounceResetItem(reader.GetString(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2),
                        reader.GetString(3).Split(','), ids, default, default, reader.IsDBNull(4) ? null : reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5),
                        reader.GetString(7), reader.IsDBNull(8) ? null : reader.GetString(8)));
                }
            }

            return items;
        }

        /// <summary>
        /// Undoes a reset in one transaction: each address the operation reset and nothing changed since goes back to
        /// exactly its previous state; an address re-suppressed or reset again since is reported, not overwritten.
        /// </summary>
        public async Task<HardBounceResetOperation> UndoResetAsync(string id, string who, CancellationToken cancellationToken)
        {
            var found = await GetResetsAsync(id, null, false, cancellationToken).ConfigureAwait(false);
            var op = (found.Count > 0 ? found[0] : null)
                ?? throw new KeyNotFoundException($"There is no reset operation '{id}' in the store {Description}.");
            if (op.IsUndone)
            {
                throw new InvalidOperationException($"The reset operation '{id}' was already undone on {Iso(op.UndoneAt!.Value)} by {op.UndoneBy}.");
            }

            var now = DateTimeOffset.UtcNow;
            using (var tx = _connection.BeginTransaction())
            {
                var rows = new List<(long Row, string Address, string Ids, string PrevState, string PrevReason, string PrevUpdated, string? PrevReset, string? PrevOp)>();
                using (var cmd = Command("SELECT id, address, event_ids, previous_state, previous_reason, previous_updated_at, previous_last_reset_at, previous_reset_operation FROM reset_items WHERE operation_id = @op ORDER BY id", tx, ("@op", id)))
                using (var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        rows.Add((reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.GetString(5),
                            reader.IsDBNull(6) ? null : reader.GetString(6), reader.IsDBNull(7) ? null : reader.GetString(7)));
                    }
                }

                foreach (var r in rows)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var restored = await ExecuteAsync(
                        "UPDATE suppressions SET state = @s, reason = @r, updated_at = @u, last_reset_at = @l, reset_operation = @o WHERE address = @a AND state = 'reset' AND reset_operation = @op",
                        cancellationToken, tx, ("@s", r.PrevState), ("@r", r.PrevReason), ("@u", r.PrevUpdated), ("@l", r.PrevReset), ("@o", r.PrevOp), ("@a", r.Address), ("@op", id)).ConfigureAwait(false);
                    string outcome;
                    if (restored == 1)
                    {
                        outcome = "restored";
                    }
                    else
                    {
                        var current = await ScalarAsync("SELECT state FROM suppressions WHERE address = @a", cancellationToken, tx, ("@a", r.Address)).ConfigureAwait(false) as string;
                        outcome = current == SuppressionStates.Suppressed ? "already suppressed again (a newer bounce)" : $"changed since the reset (now {current ?? "not listed"}); left as it is";
                    }

                    if (restored == 1 || outcome.StartsWith("already", StringComparison.Ordinal))
                    {
                        var ids = r.Ids.Split(new[] { ',' }, StringSplitOptions.RemoveEmptyEntries).Select(x => long.Parse(x, CultureInfo.InvariantCulture)).ToList();
                        await SetSuppressingAsync(ids, 1, tx, cancellationToken).ConfigureAwait(false);
                    }

                    await ExecuteAsync("UPDATE reset_items SET undo_outcome = @o WHERE id = @id", cancellationToken, tx, ("@o", outcome), ("@id", r.Row)).ConfigureAwait(false);
                }

                await ExecuteAsync("UPDATE reset_operations SET undone_at = @n, undone_by = @w WHERE id = @id", cancellationToken, tx, ("@n", Iso(now)), ("@w", who), ("@id", id)).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                tx.Commit();
            }

            var items = await ItemsAsync(id, null, cancellationToken).ConfigureAwait(false);
            return new HardBounceResetOperation(op.Id, op.CreatedAt, op.CreatedBy, op.Criteria, op.ItemCount, now, who, items);
        }
    }
}
