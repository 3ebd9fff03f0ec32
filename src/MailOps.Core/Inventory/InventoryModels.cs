using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using MailOps.Core.Config;

namespace MailOps.Core.Inventory
{
    /// <summary>Where a flow stands once the declared, authorised and observed views are reconciled.</summary>
    public enum FlowInventoryStatus
    {
        /// <summary>Declared in the configuration and seen sending (logs, send journal or DMARC reports).</summary>
        Active,

        /// <summary>Declared, but not seen in the logs or reports that were read: retired, or sending by another path.</summary>
        Silent,

        /// <summary>Declared; nothing observed was read (no logs, journal or DMARC reports given), so silence means nothing.</summary>
        NotObserved,

        /// <summary>Seen sending as one of your domains, but no flow declares it: a shadow flow.</summary>
        Shadow,

        /// <summary>A service your SPF authorises that no flow declares and nothing showed sending: a stale or forgotten authorisation.</summary>
        AuthorisedOnly,
    }

    /// <summary>How much a finding matters (the order is the order of urgency).</summary>
    public enum FindingSeverity
    {
        Info,
        Warning,
        High,
        Critical,
    }

    /// <summary>The stable codes of inventory findings (scripts filter on them).</summary>
    public static class InventoryFindingCodes
    {
        public const string ShadowFlow = "ShadowFlow";
        public const string PossibleShadowFlow = "PossibleShadowFlow";
        public const string DeclaredSilent = "DeclaredSilent";
        public const string AuthorisedUnused = "AuthorisedUnused";
        public const string SpfNotAuthorised = "SpfNotAuthorised";
        public const string SpfUnknown = "SpfUnknown";
        public const string SpfMissing = "SpfMissing";
        public const string SpfInvalid = "SpfInvalid";
        public const string SpfOverLookupLimit = "SpfOverLookupLimit";
        public const string EspNotAuthorised = "EspNotAuthorised";
        public const string DkimMissing = "DkimMissing";
        public const string DkimWeakKey = "DkimWeakKey";
        public const string DmarcMissing = "DmarcMissing";
        public const string DmarcPolicyNone = "DmarcPolicyNone";
        public const string DmarcNoReports = "DmarcNoReports";
        public const string DmarcAlignmentFailing = "DmarcAlignmentFailing";
        public const string UnknownSource = "UnknownSource";
    }

    /// <summary>One thing the inventory found wrong or worth knowing, with what to do about it.</summary>
    public sealed class InventoryFinding
    {
        public InventoryFinding(FindingSeverity severity, string code, string? flow, string? domain, string message, string? action)
        {
            Severity = severity;
            Code = code;
            Flow = flow;
            Domain = domain;
            Message = message;
            Action = action;
        }

        public FindingSeverity Severity { get; }

        /// <summary>A stable code from <see cref="InventoryFindingCodes"/>.</summary>
        public string Code { get; }
        public string? Flow { get; }
        public string? Domain { get; }
        public string Message { get; }

        /// <summary>The suggested action, in words an administrator can act on.</summary>
        public string? Action { get; }

        public override string ToString() => $"{Severity} {Code}: {Message}";
    }

    /// <summary>A sender address seen in MTA logs or MailOps' send journal, with its volume and where it came from.</summary>
    public sealed class ObservedSender
    {
        internal ObservedSender(string address)
        {
            Address = address;
            var at = address.LastIndexOf('@');
            Domain = at < 0 ? address.ToLowerInvariant() : address.Substring(at + 1).ToLowerInvariant();
        }

        public string Address { get; }
        public string Domain { get; }

        /// <summary>The configured flow the address matches (by sender, domain or client host), or null.</summary>
        public string? Flow { get; internal set; }
        public long Messages { get; internal set; }
        public long Recipients { get; internal set; }
        public long Delivered { get; internal set; }
        public long Deferred { get; internal set; }
        public long Bounced { get; internal set; }
        public long Rejected { get; internal set; }

        /// <summary>Client hosts that handed its mail to the relays ("mailops" for the send journal), busiest first.</summary>
        public IReadOnlyList<string> Clients { get; internal set; } = Array.Empty<string>();

        /// <summary>Relays (configured names) whose logs or jobs carried its mail.</summary>
        public IReadOnlyList<string> Relays { get; internal set; } = Array.Empty<string>();
        public DateTimeOffset? FirstSeen { get; internal set; }
        public DateTimeOffset? LastSeen { get; internal set; }

        public override string ToString() => $"{Address}: {Messages} messages, {Recipients} recipients via {string.Join(", ", Relays)}";
    }

    /// <summary>
    /// A sending source seen in DMARC aggregate reports for one of your domains: one address, named by PTR, origin AS and
    /// the catalogue, with the reports' message counts and results.
    /// </summary>
    public sealed class DmarcSource
    {
        internal DmarcSource(string domain, IPAddress address)
        {
            Domain = domain;
            Address = address;
        }

        /// <summary>The header From domain the reports were about.</summary>
        public string Domain { get; }
        public IPAddress Address { get; }
        public string? Ptr { get; internal set; }

        /// <summary>Origin AS (0 when unknown).</summary>
        public int Asn { get; internal set; }

        /// <summary>The service that sent (a catalogue provider, a configured relay, or null when nothing names it).</summary>
        public string? Service { get; internal set; }

        /// <summary>What named the service: "relay primary (egress 192.0.2.25)", "PTR o1.sendgrid.net matches *.sendgrid.net"...</summary>
        public string? ServiceEvidence { get; internal set; }

        /// <summary>The configured relay whose egress address this is, if any.</summary>
        public string? Relay { get; internal set; }
        public long Messages { get; internal set; }
        public long DmarcPass { get; internal set; }
        public long DkimAligned { get; internal set; }
        public long SpfAligned { get; internal set; }
        public long Quarantined { get; internal set; }
        public long Rejected { get; internal set; }

        /// <summary>DKIM signing domains seen on its mail (aligned or not).</summary>
        public IReadOnlyList<string> DkimDomains => _dkimDomains.ToList();

        /// <summary>Envelope (SPF) domains seen on its mail.</summary>
        public IReadOnlyList<string> SpfDomains => _spfDomains.ToList();

        /// <summary>Who reported it (the receivers' organisations).</summary>
        public IReadOnlyList<string> Reporters => _reporters.ToList();
        public DateTimeOffset? FirstSeen { get; internal set; }
        public DateTimeOffset? LastSeen { get; internal set; }
        public double PassRate => Messages == 0 ? 0 : (double)DmarcPass / Messages;

        internal readonly SortedSet<string> _dkimDomains = new SortedSet<string>(StringComparer.OrdinalIgnoreCase);
        internal readonly SortedSet<string> _spfDomains = new SortedSet<string>(StringComparer.OrdinalIgnoreCase);
        internal readonly SortedSet<string> _reporters = new SortedSet<string>(StringComparer.OrdinalIgnoreCase);

        public override string ToString() => $"{Address} ({Service ?? Ptr ?? "unknown"}): {Messages} messages, {PassRate:P0} DMARC pass";
    }

    /// <summary>What DNS says about one sender domain: SPF (as a tree, with the services it authorises), DKIM, DMARC, MX.</summary>
    public sealed class DomainAuthorisation
    {
        internal DomainAuthorisation(string domain)
        {
            Domain = domain;
        }

        public string Domain { get; }

        /// <summary>The SPF record's tree (includes flattened, lookups counted, services named).</summary>
        public SpfTree? Spf { get; internal set; }

        /// <summary>The DKIM selectors probed and what was found.</summary>
        public DkimProbeResult? Dkim { get; internal set; }

        /// <summary>The DMARC policy record (or its absence, or unknown).</summary>
        public Dmarc.DmarcPolicyLookupResult? Dmarc { get; internal set; }

        /// <summary>Who hosts the domain's mail and DNS (the provider attribution of Resolve-MailProvider).</summary>
        public Providers.MailProviderResult? Hosting { get; internal set; }

        /// <summary>Services the SPF record authorises (catalogue names), each once.</summary>
        public IReadOnlyList<string> AuthorisedServices { get; internal set; } = Array.Empty<string>();

        /// <summary>DKIM selectors that have a published key.</summary>
        public IReadOnlyList<string> DkimSelectors { get; internal set; } = Array.Empty<string>();

        public override string ToString() => Domain;
    }

    /// <summary>One email flow with its evidence from the three views and what reconciling them found.</summary>
    public sealed class EmailFlowInventoryItem
    {
        internal EmailFlowInventoryItem(string name, FlowInventoryStatus status)
        {
            Name = name;
            Status = status;
        }

        /// <summary>The flow's name (a declared flow), or a name made up for what was found undeclared.</summary>
        public string Name { get; }
        public FlowInventoryStatus Status { get; internal set; }
        public bool Declared => Status == FlowInventoryStatus.Active || Status == FlowInventoryStatus.Silent || Status == FlowInventoryStatus.NotObserved;
        public FlowKind? Kind { get; internal set; }
        public string? Owner { get; internal set; }

        /// <summary>The sender domains the flow sends as.</summary>
        public IReadOnlyList<string> Domains { get; internal set; } = Array.Empty<string>();

        /// <summary>The declared sender addresses and domains (empty for what was found undeclared).</summary>
        public IReadOnlyList<string> Senders { get; internal set; } = Array.Empty<string>();
        public string? Relay { get; internal set; }
        public string? Esp { get; internal set; }
        public string? SuppressionList { get; internal set; }

        /// <summary>The service that sends it: the ESP, the relay, or the service DNS and reports name for an undeclared flow.</summary>
        public string? Service { get; internal set; }

        /// <summary>Sender addresses seen in the logs and the send journal for this flow.</summary>
        public IReadOnlyList<ObservedSender> SeenSenders { get; internal set; } = Array.Empty<ObservedSender>();

        /// <summary>Messages seen in the logs and the send journal.</summary>
        public long LogMessages => SeenSenders.Sum(s => s.Messages);
        public long LogRecipients => SeenSenders.Sum(s => s.Recipients);

        /// <summary>DMARC report sources attributed to this flow.</summary>
        public IReadOnlyList<DmarcSource> DmarcSources { get; internal set; } = Array.Empty<DmarcSource>();
        public long DmarcMessages => DmarcSources.Sum(s => s.Messages);
        public double? DmarcPassRate => DmarcMessages == 0 ? (double?)null : (double)DmarcSources.Sum(s => s.DmarcPass) / DmarcMessages;

        /// <summary>What DNS says about the flow's domains.</summary>
        public IReadOnlyList<DomainAuthorisation> Authorisation { get; internal set; } = Array.Empty<DomainAuthorisation>();

        /// <summary>Whether SPF authorises the flow's sending path: true, false, or null when it could not be told.</summary>
        public bool? SpfAuthorised { get; internal set; }

        /// <summary>How SPF authorises (or not) the flow's path, in words.</summary>
        public string? SpfEvidence { get; internal set; }

        /// <summary>Whether a DKIM key the flow's sender can sign with is published: true, false, or null when unknown.</summary>
        public bool? DkimPublished { get; internal set; }
        public string? DkimEvidence { get; internal set; }
        public IReadOnlyList<InventoryFinding> Findings { get; internal set; } = Array.Empty<InventoryFinding>();

        /// <summary>The worst finding's severity (null when nothing was found).</summary>
        public FindingSeverity? Severity => Findings.Count == 0 ? (FindingSeverity?)null : Findings.Max(f => f.Severity);
        public DateTimeOffset? FirstSeen { get; internal set; }
        public DateTimeOffset? LastSeen { get; internal set; }

        /// <summary>The findings' codes, comma-separated (for tables and CSV).</summary>
        public string FindingCodes => string.Join(", ", Findings.Select(f => f.Code).Distinct());

        public override string ToString() => $"{Name} ({Status}){(Findings.Count > 0 ? ": " + FindingCodes : "")}";
    }
}
