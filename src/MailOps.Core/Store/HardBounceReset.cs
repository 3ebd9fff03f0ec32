using System;
using System.Collections.Generic;
using System.Linq;
using MailOps.Core.Bounces;

namespace MailOps.Core.Store
{
    /// <summary>Which suppressed addresses a reset applies to.</summary>
    public sealed class ResetCriteria
    {
        /// <summary>The reasons an outage explains (the default of -Reason): DNS failures, unreachable hosts, expired retries.</summary>
        public static IReadOnlyList<string> InfrastructureReasons { get; } = new[] { BounceReasons.HostUnknown, BounceReasons.NetworkError, BounceReasons.Expired };

        public DateTimeOffset? Since { get; set; }
        public DateTimeOffset? Until { get; set; }
        public IReadOnlyList<string> Providers { get; set; } = Array.Empty<string>();

        /// <summary>Empty: <see cref="InfrastructureReasons"/>, and only events MailOps classified as infrastructure failures.</summary>
        public IReadOnlyList<string> Reasons { get; set; } = Array.Empty<string>();
        public IReadOnlyList<string> Domains { get; set; } = Array.Empty<string>();
        public IReadOnlyList<string> Flows { get; set; } = Array.Empty<string>();

        /// <summary>Source patterns ('*' wildcards), matched against where each event came from.</summary>
        public IReadOnlyList<string> Sources { get; set; } = Array.Empty<string>();
        public IReadOnlyList<string> Addresses { get; set; } = Array.Empty<string>();

        internal bool DefaultReasons => Reasons.Count == 0;

        internal bool Matches(ResetEvent e)
        {
            if ((Since.HasValue && e.Time < Since.Value) || (Until.HasValue && e.Time >= Until.Value))
            {
                return false;
            }

            if (DefaultReasons ? !(InfrastructureReasons.Contains(e.Reason) && e.IsInfrastructure) : !Reasons.Contains(e.Reason, StringComparer.OrdinalIgnoreCase))
            {
                return false;
            }

            if (Domains.Count > 0 && !Domains.Contains(e.Domain, StringComparer.OrdinalIgnoreCase))
            {
                return false;
            }

            if (Flows.Count > 0 && !Flows.Contains(e.Flow ?? "", StringComparer.OrdinalIgnoreCase))
            {
                return false;
            }

            if (Sources.Count > 0 && !Sources.Any(p => Wildcard(p, e.Source ?? "")))
            {
                return false;
            }

            return Addresses.Count == 0 || Addresses.Contains(e.Address, StringComparer.OrdinalIgnoreCase);
        }

        private static bool Wildcard(string pattern, string value) =>
            System.Text.RegularExpressions.Regex.IsMatch(value, "^" + System.Text.RegularExpressions.Regex.Escape(pattern).Replace(@"\*", ".*").Replace(@"\?", ".") + "$",
                System.Text.RegularExpressions.RegexOptions.IgnoreCase);

        /// <summary>The criteria in one line, as kept in the audit.</summary>
        public override string ToString()
        {
            var parts = new List<string>();
            if (Since.HasValue)
            {
                parts.Add("Since=" + BounceStore.Iso(Since.Value));
            }

            if (Until.HasValue)
            {
                parts.Add("Until=" + BounceStore.Iso(Until.Value));
            }

            if (Providers.Count > 0)
            {
                parts.Add("Provider=" + string.Join(",", Providers));
            }

            parts.Add(DefaultReasons ? "Reason=" + string.Join(",", InfrastructureReasons) + " (infrastructure failures only)" : "Reason=" + string.Join(",", Reasons));
            if (Domains.Count > 0)
            {
                parts.Add("Domain=" + string.Join(",", Domains));
            }

            if (Flows.Count > 0)
            {
                parts.Add("Flow=" + string.Join(",", Flows));
            }

            if (Sources.Count > 0)
            {
                parts.Add("Source=" + string.Join(",", Sources));
            }

            if (Addresses.Count > 0)
            {
                parts.Add($"Address=({Addresses.Count} given)");
            }

            return string.Join("; ", parts);
        }
    }

    /// <summary>A suppressing bounce event, as the reset planner sees it.</summary>
    internal sealed class ResetEvent
    {
        public long Id { get; set; }
        public string Address { get; set; } = "";
        public string Domain { get; set; } = "";
        public string Reason { get; set; } = "";
        public bool IsInfrastructure { get; set; }
        public DateTimeOffset Time { get; set; }
        public string? Source { get; set; }
        public string? Flow { get; set; }
        public string? RemoteHost { get; set; }
    }

    /// <summary>One address a reset puts back (or would put back) into circulation, and why.</summary>
    public sealed class HardBounceResetItem
    {
        internal HardBounceResetItem(string address, string domain, string? flow, IReadOnlyList<string> reasons, IReadOnlyList<long> eventIds,
            DateTimeOffset firstEvent, DateTimeOffset lastEvent, string? provider, string? evidence, string previousState, string? undoOutcome = null)
        {
            Address = address;
            Domain = domain;
            Flow = flow;
            Reasons = reasons;
            EventIds = eventIds;
            FirstEvent = firstEvent;
            LastEvent = lastEvent;
            Provider = provider;
            ProviderEvidence = evidence;
            PreviousState = previousState;
            UndoOutcome = undoOutcome;
        }

        public string Address { get; }
        public string Domain { get; }
        public string? Flow { get; }

        /// <summary>The reasons of the bounces being reset (hostunknown, networkerror, expired...).</summary>
        public IReadOnlyList<string> Reasons { get; }
        public IReadOnlyList<long> EventIds { get; }
        public DateTimeOffset FirstEvent { get; }
        public DateTimeOffset LastEvent { get; }
        public string? Provider { get; }

        /// <summary>What attributed the domain to the provider (MX/NS/AS matches, live or recorded).</summary>
        public string? ProviderEvidence { get; }
        public string PreviousState { get; }

        /// <summary>After an undo: restored, or why not (changed since the reset).</summary>
        public string? UndoOutcome { get; }

        public override string ToString() => $"{Address}: {string.Join(",", Reasons)}{(Provider != null ? " at " + Provider : "")}";
    }

    /// <summary>A suppressed address the criteria reached but that stays suppressed, and why.</summary>
    public sealed class HardBounceResetExclusion
    {
        internal HardBounceResetExclusion(string address, string category, string why)
        {
            Address = address;
            Category = category;
            Why = why;
        }

        public string Address { get; }

        /// <summary>OtherSuppression, OtherProvider, ProviderUnknown.</summary>
        public string Category { get; }
        public string Why { get; }

        public override string ToString() => $"{Address}: {Why}";
    }

    /// <summary>What a reset will do: the items, the addresses kept and why, and counts.</summary>
    public sealed class HardBounceResetPlan
    {
        internal HardBounceResetPlan(ResetCriteria criteria, IReadOnlyList<HardBounceResetItem> items, IReadOnlyList<HardBounceResetExclusion> excluded)
        {
            Criteria = criteria;
            Items = items;
            Excluded = excluded;
        }

        public ResetCriteria Criteria { get; }
        public IReadOnlyList<HardBounceResetItem> Items { get; }
        public IReadOnlyList<HardBounceResetExclusion> Excluded { get; }

        public IReadOnlyDictionary<string, int> ByProvider => Count(i => i.Provider ?? "(unknown)");
        public IReadOnlyDictionary<string, int> ByReason => Items.SelectMany(i => i.Reasons.Distinct()).GroupBy(r => r).OrderByDescending(g => g.Count()).ToDictionary(g => g.Key, g => g.Count());
        public IReadOnlyDictionary<string, int> ByFlow => Count(i => i.Flow ?? "(no flow)");

        private Dictionary<string, int> Count(Func<HardBounceResetItem, string> key) =>
            Items.GroupBy(key).OrderByDescending(g => g.Count()).ToDictionary(g => g.Key, g => g.Count());

        /// <summary>The counts in a few lines, shown before anything changes.</summary>
        public string Summary()
        {
            string Line(IReadOnlyDictionary<string, int> d) => d.Count == 0 ? "-" : string.Join(", ", d.Select(k => $"{k.Key} {k.Value}"));
            var kept = Excluded.GroupBy(e => e.Category).Select(g => $"{g.Key} {g.Count()}");
            return $"Hard bounce reset: {Items.Count} address(es) to reset, {Excluded.Count} kept suppressed ({string.Join(", ", kept)})\n" +
                $"  criteria:    {Criteria}\n" +
                $"  by provider: {Line(ByProvider)}\n" +
                $"  by reason:   {Line(ByReason)}\n" +
                $"  by flow:     {Line(ByFlow)}";
        }
    }

    /// <summary>One audited reset operation.</summary>
    public sealed class HardBounceResetOperation
    {
        internal HardBounceResetOperation(string id, DateTimeOffset createdAt, string createdBy, string criteria, int itemCount, DateTimeOffset? undoneAt, string? undoneBy,
            IReadOnlyList<HardBounceResetItem>? items)
        {
            Id = id;
            CreatedAt = createdAt;
            CreatedBy = createdBy;
            Criteria = criteria;
            ItemCount = itemCount;
            UndoneAt = undoneAt;
            UndoneBy = undoneBy;
            Items = items ?? Array.Empty<HardBounceResetItem>();
        }

        public string Id { get; }
        public DateTimeOffset CreatedAt { get; }
        public string CreatedBy { get; }
        public string Criteria { get; }
        public int ItemCount { get; }
        public DateTimeOffset? UndoneAt { get; }
        public string? UndoneBy { get; }
        public bool IsUndone => UndoneAt.HasValue;

        /// <summary>The addresses reset (loaded when asked for: Get-HardBounceReset -Id, or after a reset or undo).</summary>
        public IReadOnlyList<HardBounceResetItem> Items { get; }

        public override string ToString() => $"{Id} {CreatedAt:u} {ItemCount} item(s){(IsUndone ? " (undone)" : "")}";
    }
}
