using System;
using System.Collections.Generic;
using System.Linq;
using MailOps.Core.Providers;

namespace MailOps.Core.Inventory
{
    /// <summary>What the DNS said about a domain's SPF record.</summary>
    public enum SpfRecordStatus
    {
        /// <summary>Exactly one SPF record, read without a syntax error.</summary>
        Found,

        /// <summary>No SPF record: the name does not exist, has no TXT record, or none starts with v=spf1.</summary>
        None,

        /// <summary>Several SPF records: a permerror for every receiver (RFC 7208 section 4.5).</summary>
        Multiple,

        /// <summary>The TXT lookup failed (timeout, SERVFAIL): nothing is known, which is not the same as None.</summary>
        Unknown,

        /// <summary>One SPF record with a syntax error: a permerror for every receiver.</summary>
        Invalid,
    }

    /// <summary>An SPF qualifier, named by the result it gives when its mechanism matches.</summary>
    public enum SpfQualifier
    {
        /// <summary>'+' (the default).</summary>
        Pass,

        /// <summary>'-'.</summary>
        Fail,

        /// <summary>'~'.</summary>
        SoftFail,

        /// <summary>'?'.</summary>
        Neutral,
    }

    /// <summary>What became of one term of the tree.</summary>
    public enum SpfNodeStatus
    {
        /// <summary>Resolved, or needs no lookup (ip4, ip6, all).</summary>
        Ok,

        /// <summary>Its lookup found nothing (no such name, no data): counted as an RFC 7208 void lookup.</summary>
        Void,

        /// <summary>A lookup failed (timeout, SERVFAIL): what the term authorises is unknown.</summary>
        Unknown,

        /// <summary>An include or redirect to a domain without an SPF record (a permerror when evaluated).</summary>
        NoRecord,

        /// <summary>An include or redirect to a domain with several SPF records (a permerror).</summary>
        Multiple,

        /// <summary>An include or redirect to a record with a syntax error (a permerror).</summary>
        Invalid,

        /// <summary>An include or redirect back to a record already being expanded above it: a loop, not followed.</summary>
        Loop,

        /// <summary>The target has macros (%{i}, %{d}...): it depends on each message, so it is reported, not expanded.</summary>
        Macro,

        /// <summary>ptr: it depends on the connecting client's address, so it cannot be listed in advance.</summary>
        ClientDependent,

        /// <summary>Deeper than <see cref="SpfTreeOptions.MaxDepth"/>: not followed.</summary>
        TooDeep,

        /// <summary>More includes than <see cref="SpfTreeOptions.MaxIncludes"/> were already followed: not followed.</summary>
        NotFollowed,

        /// <summary>An mx term whose domain has more than 10 MX names (a permerror, RFC 7208 section 4.6.4).</summary>
        TooManyNames,

        /// <summary>Never evaluated: a term after 'all', or a redirect in a record that has 'all'.</summary>
        Ignored,
    }

    /// <summary>Limits of <see cref="SpfTreeBuilder"/>.</summary>
    public sealed class SpfTreeOptions
    {
        /// <summary>DNS-querying terms an evaluation may use (RFC 7208: 10); more is reported, never refused.</summary>
        public int MaxDnsLookups { get; set; } = 10;

        /// <summary>Lookups that may find nothing (RFC 7208: 2).</summary>
        public int MaxVoidLookups { get; set; } = 2;

        /// <summary>MX names one mx term may resolve (RFC 7208: 10).</summary>
        public int MaxNamesPerMechanism { get; set; } = 10;

        /// <summary>Include/redirect levels followed below the domain's own record.</summary>
        public int MaxDepth { get; set; } = 10;

        /// <summary>Include and redirect targets fetched in one tree (a safety net against records that fan out).</summary>
        public int MaxIncludes { get; set; } = 50;

        /// <summary>DNS queries in flight at once.</summary>
        public int MaxConcurrency { get; set; } = 8;
    }

    /// <summary>
    /// One term of an SPF record in the tree: a mechanism, or a redirect= modifier. Include and redirect nodes carry the
    /// record of their target and its terms as children.
    /// </summary>
    public sealed class SpfTreeNode
    {
        private static readonly IReadOnlyList<SpfTreeNode> NoNodes = Array.Empty<SpfTreeNode>();
        private static readonly IReadOnlyList<string> NoStrings = Array.Empty<string>();

        internal SpfTreeNode(string term, string mechanism, SpfQualifier? qualifier, string domain, int depth, IReadOnlyList<string> path)
        {
            Term = term;
            Mechanism = mechanism;
            Qualifier = qualifier;
            Domain = domain;
            Depth = depth;
            Path = path;
        }

        /// <summary>The term as written (include:_spf.google.com, -all, redirect=_spf.example.org).</summary>
        public string Term { get; }

        /// <summary>include, redirect, a, mx, ptr, exists, ip4, ip6 or all.</summary>
        public string Mechanism { get; }

        /// <summary>Null for redirect (a modifier has no qualifier).</summary>
        public SpfQualifier? Qualifier { get; }

        /// <summary>The domain whose record holds this term.</summary>
        public string Domain { get; }

        /// <summary>0 for the terms of the domain's own record, 1 inside its includes and redirect, and so on.</summary>
        public int Depth { get; }

        /// <summary>The records from the domain asked down to <see cref="Domain"/> (the include path).</summary>
        public IReadOnlyList<string> Path { get; }

        /// <summary>The domain the term names (the record's own domain for a bare a or mx); unexpanded when it has macros.</summary>
        public string? Target { get; internal set; }

        /// <summary>ip4/ip6: the network as written, with its prefix length (192.0.2.0/24).</summary>
        public string? Network { get; internal set; }

        public SpfNodeStatus Status { get; internal set; }

        /// <summary>Why the status, in a sentence, when it is not simply Ok.</summary>
        public string? Detail { get; internal set; }

        /// <summary>include/redirect: the status of the target's SPF record.</summary>
        public SpfRecordStatus? TargetStatus { get; internal set; }

        /// <summary>include/redirect: the target's SPF record.</summary>
        public string? TargetRecord { get; internal set; }

        /// <summary>include/redirect: the terms of the target's record.</summary>
        public IReadOnlyList<SpfTreeNode> Children { get; internal set; } = NoNodes;

        /// <summary>a/mx: the addresses found, with the term's prefix length (192.0.2.10/32).</summary>
        public IReadOnlyList<string> Addresses { get; internal set; } = NoStrings;

        /// <summary>mx: the MX host names, by preference.</summary>
        public IReadOnlyList<string> MxHosts { get; internal set; } = NoStrings;

        /// <summary>Whether an evaluation spends one of its DNS lookups on this term (include, a, mx, ptr, exists, redirect).</summary>
        public bool CountsAsLookup { get; internal set; }

        /// <summary>Its place among the DNS-querying terms in evaluation order (1-based); null when it spends none.</summary>
        public int? LookupNumber { get; internal set; }

        /// <summary>The provider this term, or the include it sits in, belongs to (from the catalogue's spf patterns).</summary>
        public ProviderMatch? Service { get; internal set; }

        /// <summary>The include or redirect domain that named <see cref="Service"/> (this node's or an ancestor's).</summary>
        public string? ServiceVia { get; internal set; }

        /// <summary>The include path, written out: example.org &gt; _spf.google.com.</summary>
        public string PathText => string.Join(" > ", Path);

        internal bool IsFollowed => Mechanism == "include" || Mechanism == "redirect";

        public override string ToString()
        {
            var what = Status != SpfNodeStatus.Ok ? Status.ToString()
                : Addresses.Count > 0 ? string.Join(", ", Addresses.Take(3)) + (Addresses.Count > 3 ? $" (+{Addresses.Count - 3})" : "")
                : "";
            var service = Service != null && ServiceVia == Target && IsFollowed ? $" [{Service.Name}]" : "";
            return $"{new string(' ', Depth * 2)}{Term}{(what.Length > 0 ? " -> " + what : "")}{service}";
        }
    }

    /// <summary>A network the SPF tree names, with the path of includes it came from.</summary>
    public sealed class SpfNetwork
    {
        internal SpfNetwork(string network, SpfTreeNode node, SpfQualifier? result)
        {
            Network = network;
            Node = node;
            Result = result;
        }

        /// <summary>Address and prefix length (192.0.2.0/24, 2001:db8::/32).</summary>
        public string Network { get; }

        /// <summary>The term that names it (ip4, ip6, a or mx).</summary>
        public SpfTreeNode Node { get; }

        public string Term => Node.Term;
        public string Mechanism => Node.Mechanism;

        /// <summary>The record that holds the term.</summary>
        public string Domain => Node.Domain;

        public IReadOnlyList<string> Path => Node.Path;
        public string PathText => Node.PathText;

        /// <summary>
        /// The result the domain's policy gives mail from this network when this term is the first to match: Pass for
        /// an authorised sender. Null when it cannot decide the domain's result (a non-pass term inside an include only
        /// makes that include not match).
        /// </summary>
        public SpfQualifier? Result { get; }

        /// <summary>Mail from this network passes SPF (when no earlier term matched it first).</summary>
        public bool IsAuthorized => Result == SpfQualifier.Pass;

        /// <summary>The provider of the include it came from, if the catalogue knows it.</summary>
        public string? Service => Node.Service?.Name;

        public override string ToString() => $"{Network} ({(Result?.ToString() ?? "no effect")}, {PathText}{(Service != null ? ", " + Service : "")})";
    }

    /// <summary>A service the SPF tree lets send as the domain, and the include that does it.</summary>
    public sealed class SpfService
    {
        internal SpfService(ProviderMatch match, SpfTreeNode node)
        {
            Match = match;
            Node = node;
        }

        public ProviderMatch Match { get; }
        public SpfTreeNode Node { get; }

        /// <summary>The provider's name in the catalogue (SendGrid, Google...).</summary>
        public string Name => Match.Name;

        public ProviderKind Kind => Match.Kind;

        /// <summary>The include (or redirect) domain that names it.</summary>
        public string Via => Node.Target ?? "";

        /// <summary>The catalogue pattern that matched.</summary>
        public string Pattern => Match.Pattern;

        public string Term => Node.Term;

        /// <summary>The records from the domain asked down to the one holding the include.</summary>
        public IReadOnlyList<string> Path => Node.Path;

        public string PathText => Node.PathText;

        /// <summary>Whether its include can make mail pass (a '+' include, reached from the top by '+' includes).</summary>
        public bool IsAuthorized { get; internal set; }

        public override string ToString() => $"{Name} via {Node.Term} in {Node.Domain}";
    }

    /// <summary>
    /// A domain's SPF record with every include and redirect expanded: the terms, the DNS lookups an evaluation spends
    /// (RFC 7208 section 4.6.4), the networks named and the services let in. Lookups that failed are reported as unknown,
    /// never as absent: then <see cref="IsComplete"/> is false and the figures are lower bounds.
    /// </summary>
    public sealed class SpfTree
    {
        internal SpfTree(string domain, SpfRecordStatus status, string? record, string? detail, IReadOnlyList<SpfTreeNode> terms, SpfTreeOptions options)
        {
            Domain = domain;
            Status = status;
            Record = record;
            Detail = detail;
            Terms = terms;
            MaxDnsLookups = options.MaxDnsLookups;
            MaxVoidLookups = options.MaxVoidLookups;
        }

        public string Domain { get; }

        /// <summary>The status of the domain's own record.</summary>
        public SpfRecordStatus Status { get; }

        /// <summary>The domain's SPF record (null unless Found or Invalid).</summary>
        public string? Record { get; }

        /// <summary>Why the status, when it is not Found.</summary>
        public string? Detail { get; }

        /// <summary>The terms of the domain's record (redirect last), each with its subtree.</summary>
        public IReadOnlyList<SpfTreeNode> Terms { get; }

        /// <summary>Every node, in evaluation order (depth first, redirect after the terms).</summary>
        public IReadOnlyList<SpfTreeNode> Nodes { get; internal set; } = Array.Empty<SpfTreeNode>();

        /// <summary>DNS-querying terms an evaluation that matches nothing would spend (include, a, mx, ptr, exists, redirect).</summary>
        public int DnsLookups { get; internal set; }

        /// <summary>The RFC 7208 limit used (10).</summary>
        public int MaxDnsLookups { get; }

        /// <summary>More lookups than the limit: receivers return permerror, so SPF fails for every message.</summary>
        public bool OverLookupLimit { get; internal set; }

        /// <summary>The term that spends the lookup past the limit (the 11th), or the loop that would.</summary>
        public SpfTreeNode? LimitExceededAt { get; internal set; }

        /// <summary>Lookups that found nothing (a, mx and exists targets without records).</summary>
        public int VoidLookups { get; internal set; }

        public int MaxVoidLookups { get; }

        /// <summary>More void lookups than the limit (RFC 7208 section 4.6.4): a permerror too.</summary>
        public bool OverVoidLimit { get; internal set; }

        public SpfTreeNode? VoidLimitExceededAt { get; internal set; }

        /// <summary>Every network named (ip4, ip6, and the addresses of a and mx terms), with its path and result.</summary>
        public IReadOnlyList<SpfNetwork> Networks { get; internal set; } = Array.Empty<SpfNetwork>();

        /// <summary>The networks whose mail passes.</summary>
        public IReadOnlyList<SpfNetwork> AuthorizedNetworks => Networks.Where(n => n.IsAuthorized).ToList();

        /// <summary>The catalogue's services the tree includes, each with the include that names it.</summary>
        public IReadOnlyList<SpfService> Services { get; internal set; } = Array.Empty<SpfService>();

        /// <summary>Nodes whose lookup failed: their part of the tree is unknown.</summary>
        public IReadOnlyList<SpfTreeNode> FailedLookups { get; internal set; } = Array.Empty<SpfTreeNode>();

        /// <summary>Nodes whose lookup found nothing (void lookups).</summary>
        public IReadOnlyList<SpfTreeNode> VoidNodes { get; internal set; } = Array.Empty<SpfTreeNode>();

        /// <summary>Includes or redirects that lead back to a record being expanded.</summary>
        public IReadOnlyList<SpfTreeNode> Loops { get; internal set; } = Array.Empty<SpfTreeNode>();

        /// <summary>Terms with macros, reported as written and not expanded.</summary>
        public IReadOnlyList<SpfTreeNode> MacroTerms { get; internal set; } = Array.Empty<SpfTreeNode>();

        /// <summary>Every problem found, one sentence each.</summary>
        public IReadOnlyList<string> Problems { get; internal set; } = Array.Empty<string>();

        /// <summary>
        /// False when part of the tree could not be known: a failed lookup, a macro, a ptr term, or a target not followed
        /// (too deep, too many includes). Counts, networks and services are then lower bounds.
        /// </summary>
        public bool IsComplete { get; internal set; }

        public override string ToString()
        {
            if (Status != SpfRecordStatus.Found)
            {
                return $"{Domain}: {Status}{(Detail != null ? " (" + Detail + ")" : "")}";
            }

            var services = Services.Select(s => s.Name).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
            return $"{Domain}: {DnsLookups}/{MaxDnsLookups} DNS lookups{(OverLookupLimit ? " (over the limit)" : "")}, {AuthorizedNetworks.Count} authorised networks"
                + (services.Count > 0 ? ", services: " + string.Join(", ", services) : "") + (IsComplete ? "" : " (incomplete)");
        }
    }
}
