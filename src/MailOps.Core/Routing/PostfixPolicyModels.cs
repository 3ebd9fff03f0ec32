using System;
using System.Collections.Generic;
using System.Linq;
using MailOps.Core.Config;

namespace MailOps.Core.Routing
{
    /// <summary>How <see cref="PostfixPolicyGenerator"/> writes the policy.</summary>
    public sealed class PostfixPolicyOptions
    {
        /// <summary>
        /// The absolute directory the hash maps will live in on the MTA: main.cf names the maps by this path
        /// (hash:&lt;MapDirectory&gt;/mailops_sender_filter). Required.
        /// </summary>
        public string MapDirectory { get; set; } = "";

        /// <summary>Whether the files carry one "# Generated at" line with the time (the only line that changes between runs).</summary>
        public bool Timestamp { get; set; } = true;

        /// <summary>The time written in the header line (null: now).</summary>
        public DateTimeOffset? Now { get; set; }

        /// <summary>Destination concurrency of a dedicated transport without a rate limit (Postfix's own default is 20).</summary>
        public int DefaultConcurrency { get; set; } = 5;

        /// <summary>Initial destination concurrency of a dedicated transport (at most its concurrency).</summary>
        public int InitialConcurrency { get; set; } = 2;

        /// <summary>
        /// Whether the MTA's parent_domain_matches_subdomains lists smtpd_access_maps (true is Postfix's default): then an
        /// access-map key 'example.org' also matches every subdomain and '.example.org' keys are ignored; otherwise
        /// 'example.org' matches only itself and '.example.org' its subdomains. Decides which keys a '*.example.org'
        /// sender becomes in mailops_sender_filter.
        /// </summary>
        public bool AccessMapsMatchSubdomains { get; set; } = true;

        /// <summary>The version written in the header (null: none).</summary>
        public string? GeneratorVersion { get; set; }

        /// <summary>
        /// Flows the readiness check refused (name → reason, see <see cref="FlowMoveReadiness"/>): they keep the primary path
        /// and their decision says why.
        /// </summary>
        public IDictionary<string, string>? Refused { get; set; }
    }

    /// <summary>One file of the policy: its name in the output folder and its whole text (LF line ends).</summary>
    public sealed class PolicyFile
    {
        internal PolicyFile(string name, string text, bool isHashMap)
        {
            Name = name;
            Text = text;
            IsHashMap = isHashMap;
        }

        public string Name { get; }
        public string Text { get; }

        /// <summary>A source file for a hash: table (postmap turns it into Name.db).</summary>
        public bool IsHashMap { get; }

        public override string ToString() => Name;
    }

    /// <summary>One main.cf parameter the policy sets, with the reason (the comment above it in main.cf.fragment).</summary>
    public sealed class PostfixParameter
    {
        internal PostfixParameter(string name, string value, IReadOnlyList<string> comments)
        {
            Name = name;
            Value = value;
            Comments = comments;
        }

        public string Name { get; }
        public string Value { get; }
        public IReadOnlyList<string> Comments { get; }

        public override string ToString() => $"{Name} = {Value}";
    }

    /// <summary>Where a flow's mail goes: a relay through a dedicated transport.</summary>
    public sealed class PolicyRoute
    {
        internal PolicyRoute(string relay, string transport, string nexthop)
        {
            Relay = relay;
            Transport = transport;
            Nexthop = nexthop;
        }

        /// <summary>The relay's name in the configuration.</summary>
        public string Relay { get; }

        /// <summary>The master.cf service (mailops_&lt;relay&gt;).</summary>
        public string Transport { get; }

        /// <summary>[host]:port (no MX lookup).</summary>
        public string Nexthop { get; }

        /// <summary>transport:nexthop, what the maps return.</summary>
        public string Target => Transport + ":" + Nexthop;

        public override string ToString() => Target;
    }

    /// <summary>How sure a decision is.</summary>
    public enum PolicyDecisionSeverity
    {
        Info,

        /// <summary>The policy does not do what the flow needs (bulk on the primary, a sender or host that cannot be expressed).</summary>
        Warning,
    }

    /// <summary>What the policy does with one flow, and why.</summary>
    public sealed class FlowRouteDecision
    {
        internal FlowRouteDecision(string flow, FlowKind kind, PolicyRoute? route, string why, IReadOnlyList<string> limits,
            PolicyDecisionSeverity severity, IReadOnlyList<string> senders, IReadOnlyList<string> clientHosts)
        {
            Flow = flow;
            Kind = kind;
            Route = route;
            Why = why;
            Limits = limits;
            Severity = severity;
            Senders = senders;
            ClientHosts = clientHosts;
        }

        public string Flow { get; }
        public FlowKind Kind { get; }

        /// <summary>The dedicated transport the flow's mail takes; null: the MTA's own (primary) path, no map entry.</summary>
        public PolicyRoute? Route { get; }

        public string Why { get; }

        /// <summary>The Postfix limits that apply to the flow's mail, each with the threshold it comes from.</summary>
        public IReadOnlyList<string> Limits { get; }

        public PolicyDecisionSeverity Severity { get; }
        public IReadOnlyList<string> Senders { get; }
        public IReadOnlyList<string> ClientHosts { get; }

        /// <summary>The relay name, or "(primary path)".</summary>
        public string Path => Route?.Relay ?? "(primary path)";

        public override string ToString() => $"{Flow}: {Path} ({Why})";
    }

    /// <summary>
    /// The Postfix configuration that enforces the routing policy: the files to write (fragments, hash map sources, a
    /// README), the main.cf parameters and master.cf services they hold, and one decision per flow.
    /// </summary>
    public sealed class PostfixPolicy
    {
        /// <summary>The main.cf fragment.</summary>
        public const string MainCfFragment = "main.cf.fragment";

        /// <summary>The master.cf fragment (the dedicated transports).</summary>
        public const string MasterCfFragment = "master.cf.fragment";

        /// <summary>check_sender_access map: sender → FILTER transport:nexthop (mail received over SMTP).</summary>
        public const string SenderFilterMap = "mailops_sender_filter";

        /// <summary>sender_dependent_default_transport_maps: sender → transport:nexthop (mail submitted locally too).</summary>
        public const string SenderTransportMap = "mailops_sender_transport";

        /// <summary>check_client_access map: client host → FILTER transport:nexthop.</summary>
        public const string ClientFilterMap = "mailops_client_filter";

        /// <summary>How to include the fragments by hand.</summary>
        public const string Readme = "README.txt";

        /// <summary>The first line of the master.cf block that -Apply writes (and replaces on the next apply).</summary>
        public const string MasterBlockBegin = "# BEGIN MailOps routing policy (Export-MailRoutingPolicy -Apply replaces this block)";

        /// <summary>The last line of that block.</summary>
        public const string MasterBlockEnd = "# END MailOps routing policy";

        /// <summary>The header line that carries the time (ignored when files are compared).</summary>
        public const string TimestampPrefix = "# Generated at ";

        internal PostfixPolicy(IReadOnlyList<PolicyFile> files, IReadOnlyList<FlowRouteDecision> decisions,
            IReadOnlyList<PostfixParameter> parameters, string masterCfServices, string mapDirectory, IReadOnlyList<PolicyRoute> transports)
        {
            Files = files;
            Decisions = decisions;
            Parameters = parameters;
            MasterCfServices = masterCfServices;
            MapDirectory = mapDirectory;
            Transports = transports;
        }

        /// <summary>Every file, sorted by name.</summary>
        public IReadOnlyList<PolicyFile> Files { get; }

        /// <summary>One decision per flow, in the configuration's order.</summary>
        public IReadOnlyList<FlowRouteDecision> Decisions { get; }

        /// <summary>The main.cf parameters (what main.cf.fragment sets), in the fragment's order.</summary>
        public IReadOnlyList<PostfixParameter> Parameters { get; }

        /// <summary>The master.cf entries (comments included), without the header: what goes between the block markers.</summary>
        public string MasterCfServices { get; }

        /// <summary>The directory main.cf names the maps in.</summary>
        public string MapDirectory { get; }

        /// <summary>One per dedicated transport, sorted by name.</summary>
        public IReadOnlyList<PolicyRoute> Transports { get; }

        /// <summary>The file of that name, or null.</summary>
        public PolicyFile? File(string name) => Files.FirstOrDefault(f => f.Name == name);

        /// <summary>The parameter of that name, or null.</summary>
        public PostfixParameter? Parameter(string name) => Parameters.FirstOrDefault(p => p.Name == name);
    }
}
