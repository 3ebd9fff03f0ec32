using System;
using System.Collections.Generic;
using System.Linq;
using MailOps.Core.Providers;

namespace MailOps.Core.Config
{
    /// <summary>How a client secures its SMTP connection (the names follow MailKit's SecureSocketOptions).</summary>
    public enum SmtpSecurity
    {
        /// <summary>Plain text, never upgraded.</summary>
        None,
        /// <summary>Implicit TLS from the first byte (port 465).</summary>
        SslOnConnect,
        /// <summary>STARTTLS, and fail if the server does not offer it.</summary>
        StartTls,
        /// <summary>STARTTLS if the server offers it, plain text otherwise.</summary>
        StartTlsWhenAvailable,
        /// <summary>SslOnConnect on port 465, StartTlsWhenAvailable elsewhere.</summary>
        Auto,
    }

    /// <summary>What a relay is for: person-to-person mail (primary) or bulk and automated mail (secondary).</summary>
    public enum RelayRole
    {
        Primary,
        Secondary,
    }

    /// <summary>The kinds of email flow an organisation runs.</summary>
    public enum FlowKind
    {
        PersonToPerson,
        Transactional,
        Campaign,
        Automation,
        Dmp,
        List,
    }

    /// <summary>Where the store lives.</summary>
    public enum StoreProvider
    {
        Sqlite,
        PostgreSql,
    }

    /// <summary>The whole configuration file, validated.</summary>
    public sealed class MailOpsConfig
    {
        internal MailOpsConfig(string? path, int version, IReadOnlyList<RelayConfig> relays,
            IReadOnlyList<DomainConfig> domains, DnsConfig dns, StoreConfig store, IReadOnlyList<FlowConfig> flows,
            IReadOnlyList<ProviderConfig> providers, IReadOnlyList<ThresholdConfig> thresholds,
            IReadOnlyList<AlertSinkConfig> alertSinks, string? secretVault)
        {
            Path = path;
            Version = version;
            Relays = relays;
            Domains = domains;
            Dns = dns;
            Store = store;
            Flows = flows;
            Providers = providers;
            Thresholds = thresholds;
            AlertSinks = alertSinks;
            SecretVault = secretVault;
        }

        /// <summary>The file the configuration was read from (null when it was read from text).</summary>
        public string? Path { get; }
        public int Version { get; }
        public IReadOnlyList<RelayConfig> Relays { get; }
        public IReadOnlyList<DomainConfig> Domains { get; }
        public DnsConfig Dns { get; }
        public StoreConfig Store { get; }
        public IReadOnlyList<FlowConfig> Flows { get; }
        public IReadOnlyList<ProviderConfig> Providers { get; }
        public IReadOnlyList<ThresholdConfig> Thresholds { get; }
        public IReadOnlyList<AlertSinkConfig> AlertSinks { get; }

        /// <summary>The SecretManagement vault that credentials named by relays are read from (null: default vault).</summary>
        public string? SecretVault { get; }

        /// <summary>How long an active alert stays quiet before it is sent again (alerts.repeatAfterMinutes, default 60).</summary>
        public TimeSpan AlertRepeatAfter { get; internal set; } = TimeSpan.FromMinutes(60);

        /// <summary>The relay of that name (case-insensitive), or null.</summary>
        public RelayConfig? FindRelay(string name) =>
            Relays.FirstOrDefault(r => string.Equals(r.Name, name, StringComparison.OrdinalIgnoreCase));

        /// <summary>The flow of that name (case-insensitive), or null.</summary>
        public FlowConfig? FindFlow(string name) =>
            Flows.FirstOrDefault(f => string.Equals(f.Name, name, StringComparison.OrdinalIgnoreCase));

        public override string ToString() => Path ?? "(configuration text)";
    }

    /// <summary>An SMTP relay MailOps can check or send through.</summary>
    public sealed class RelayConfig
    {
        internal RelayConfig(string name, string host, int port, SmtpSecurity security, RelayRole role,
            string? credential, string? heloName, int timeoutSeconds, bool skipCertificateCheck,
            bool allowAuthWithoutTls, string? description, string? caFile = null)
        {
            CaFile = caFile;
            Name = name;
            Host = host;
            Port = port;
            Security = security;
            Role = role;
            Credential = credential;
            HeloName = heloName;
            TimeoutSeconds = timeoutSeconds;
            SkipCertificateCheck = skipCertificateCheck;
            AllowAuthWithoutTls = allowAuthWithoutTls;
            Description = description;
        }

        public string Name { get; }
        public string Host { get; }
        public int Port { get; }
        public SmtpSecurity Security { get; }
        public RelayRole Role { get; }

        /// <summary>The name of the credential (a SecretManagement secret, or matched against -Credential); never the secret itself.</summary>
        public string? Credential { get; }
        public string? HeloName { get; }
        public int TimeoutSeconds { get; }

        /// <summary>True only when the file says so explicitly: certificates are validated by default.</summary>
        public bool SkipCertificateCheck { get; }

        /// <summary>True only when the file says so explicitly: AUTH over an unencrypted channel is refused by default.</summary>
        public bool AllowAuthWithoutTls { get; }
        public string? Description { get; }

        /// <summary>PEM file of the CA certificate(s) that signed the relay's certificate (a private CA); validation stays on.</summary>
        public string? CaFile { get; }

        /// <summary>The relay's own MTA log (when MailOps runs on the relay or can read its log): what the traffic watch reads.</summary>
        public string? Log { get; internal set; }

        /// <summary>The syslog name its Postfix writes under (postfix, postfix-secondary...): names the relay in a shared log.</summary>
        public string? SyslogName { get; internal set; }

        /// <summary>
        /// The addresses the relay's mail leaves from towards the recipients' servers (what their SPF checks and what DMARC
        /// reports show). Empty when the configuration does not say: the inventory then uses the host's own addresses.
        /// </summary>
        public IReadOnlyList<System.Net.IPAddress> Egress { get; internal set; } = Array.Empty<System.Net.IPAddress>();

        public override string ToString() => $"{Name} ({Host}:{Port}, {Role})";
    }

    /// <summary>A domain the organisation sends as.</summary>
    public sealed class DomainConfig
    {
        internal DomainConfig(string name, IReadOnlyList<string> dkimSelectors)
        {
            Name = name;
            DkimSelectors = dkimSelectors;
        }

        public string Name { get; }
        public IReadOnlyList<string> DkimSelectors { get; }

        public override string ToString() => Name;
    }

    /// <summary>Which DNS servers MailOps asks, and how patiently.</summary>
    public sealed class DnsConfig
    {
        internal DnsConfig(IReadOnlyList<DnsServerEndpoint> servers, int timeoutSeconds, int retries,
            IReadOnlyList<string> dnsblZones, string? asnZone = DefaultAsnZone, string? asnZone6 = DefaultAsnZone6)
        {
            Servers = servers;
            TimeoutSeconds = timeoutSeconds;
            Retries = retries;
            DnsblZones = dnsblZones;
            AsnZone = asnZone;
            AsnZone6 = asnZone6;
        }

        /// <summary>The DNS zone answering IPv4 address-to-origin-AS questions (Team Cymru's format); null: no AS lookups.</summary>
        public string? AsnZone { get; }

        /// <summary>The same for IPv6 (nibble format); null: no AS lookups for IPv6.</summary>
        public string? AsnZone6 { get; }

        public const string DefaultAsnZone = "origin.asn.cymru.com";
        public const string DefaultAsnZone6 = "origin6.asn.cymru.com";

        /// <summary>Empty: the system's resolvers.</summary>
        public IReadOnlyList<DnsServerEndpoint> Servers { get; }
        public int TimeoutSeconds { get; }
        public int Retries { get; }
        public IReadOnlyList<string> DnsblZones { get; }

        /// <summary>The DNSBL zones checked when the file names none.</summary>
        public static IReadOnlyList<string> DefaultDnsblZones { get; } =
            new[] { "zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org" };

        /// <summary>The system's resolvers, 5 s, one retry, the default DNSBL zones.</summary>
        public static DnsConfig Default { get; } = new DnsConfig(Array.Empty<DnsServerEndpoint>(), 5, 1, DefaultDnsblZones);
    }

    /// <summary>A DNS server address and port.</summary>
    public sealed class DnsServerEndpoint
    {
        public DnsServerEndpoint(string address, int port)
        {
            Address = address;
            Port = port;
        }

        public string Address { get; }
        public int Port { get; }

        public override string ToString() => Address.Contains(":") ? $"[{Address}]:{Port}" : $"{Address}:{Port}";
    }

    /// <summary>Where MailOps keeps what must outlive a process.</summary>
    public sealed class StoreConfig
    {
        internal StoreConfig(StoreProvider provider, string? path, string? connectionString, string? credential, int expireSoftAfterDays = 30, int expireHardAfterDays = 0)
        {
            ExpireSoftAfterDays = expireSoftAfterDays;
            ExpireHardAfterDays = expireHardAfterDays;
            Provider = provider;
            Path = path;
            ConnectionString = connectionString;
            Credential = credential;
        }

        public StoreProvider Provider { get; }

        /// <summary>SQLite: the database file (null: the per-user default).</summary>
        public string? Path { get; }

        /// <summary>PostgreSQL: the connection string without a password.</summary>
        public string? ConnectionString { get; }

        /// <summary>PostgreSQL: the name of the credential that holds the password.</summary>
        public string? Credential { get; }

        /// <summary>
        /// A suppression that only soft failures caused (a flow with suppressOn: Failed, an ESP export) expires when no
        /// new failure came for this many days (0: never). Default 30.
        /// </summary>
        public int ExpireSoftAfterDays { get; }

        /// <summary>A suppression caused by a hard bounce expires after this many days without a new one (0, the default: never).</summary>
        public int ExpireHardAfterDays { get; }

        /// <summary>SQLite in the per-user data folder.</summary>
        public static StoreConfig Default { get; } = new StoreConfig(StoreProvider.Sqlite, null, null, null);
    }

    /// <summary>One email flow the organisation runs (declared).</summary>
    public sealed class FlowConfig
    {
        internal FlowConfig(string name, FlowKind kind, string? owner, IReadOnlyList<string> senders,
            IReadOnlyList<string> clientHosts, string? relay, string? esp, string? suppressionList, SuppressOn suppressOn = SuppressOn.Hard)
        {
            SuppressOn = suppressOn;
            Name = name;
            Kind = kind;
            Owner = owner;
            Senders = senders;
            ClientHosts = clientHosts;
            Relay = relay;
            Esp = esp;
            SuppressionList = suppressionList;
        }

        public string Name { get; }
        public FlowKind Kind { get; }
        public string? Owner { get; }

        /// <summary>Sender addresses (user@domain), whole domains (domain or @domain), or the subdomains of one (*.domain).</summary>
        public IReadOnlyList<string> Senders { get; }
        public IReadOnlyList<string> ClientHosts { get; }
        public string? Relay { get; }
        public string? Esp { get; }
        public string? SuppressionList { get; }

        /// <summary>
        /// Which failures put an address of this flow on the suppression list: hard bounces only (the default), or
        /// every failed recipient (what many list managers and ESPs do; mirrored so that Reset-HardBounce can undo it).
        /// </summary>
        public SuppressOn SuppressOn { get; }

        /// <summary>Bulk flows must never share the person-to-person relay.</summary>
        public bool IsBulk => Kind == FlowKind.Campaign || Kind == FlowKind.List || Kind == FlowKind.Automation || Kind == FlowKind.Dmp;

        public override string ToString() => Name;
    }

    /// <summary>A mail or DNS provider added to (or overriding) the catalogue shipped with the module.</summary>
    public sealed class ProviderConfig
    {
        public ProviderConfig(string name, IReadOnlyList<string> mxPatterns, IReadOnlyList<string> nsPatterns,
            IReadOnlyList<int> asNumbers, IReadOnlyList<string>? domains = null, ProviderKind? kind = null,
            IReadOnlyList<string>? spfPatterns = null, IReadOnlyList<string>? ptrPatterns = null, IReadOnlyList<string>? dkimSelectors = null)
        {
            Name = name;
            MxPatterns = mxPatterns;
            NsPatterns = nsPatterns;
            AsNumbers = asNumbers;
            Domains = domains ?? Array.Empty<string>();
            Kind = kind;
            SpfPatterns = spfPatterns ?? Array.Empty<string>();
            PtrPatterns = ptrPatterns ?? Array.Empty<string>();
            DkimSelectors = dkimSelectors ?? Array.Empty<string>();
        }

        /// <summary>What the provider is (null: not said; a catalogue provider keeps its own kind).</summary>
        public ProviderKind? Kind { get; }

        /// <summary>Domains (patterns) named by include: or redirect= in its customers' SPF records.</summary>
        public IReadOnlyList<string> SpfPatterns { get; }

        /// <summary>Patterns for the PTR names of its sending hosts.</summary>
        public IReadOnlyList<string> PtrPatterns { get; }

        /// <summary>The DKIM selectors it has its customers publish ('*' makes a pattern).</summary>
        public IReadOnlyList<string> DkimSelectors { get; }

        /// <summary>Address domains the provider owns (gmail.com, orange.fr): their addresses are its mailboxes.</summary>
        public IReadOnlyList<string> Domains { get; }

        public string Name { get; }
        public IReadOnlyList<string> MxPatterns { get; }
        public IReadOnlyList<string> NsPatterns { get; }
        public IReadOnlyList<int> AsNumbers { get; }

        public override string ToString() => Name;
    }

    /// <summary>Which failures put an address on the suppression list.</summary>
    public enum SuppressOn
    {
        /// <summary>Hard bounces (the address does not exist) and complaints.</summary>
        Hard,

        /// <summary>Every failed recipient, as many list managers and ESPs do.</summary>
        Failed,
    }

    /// <summary>A traffic limit (for example a provider's recipients per hour).</summary>
    public sealed class ThresholdConfig
    {
        internal ThresholdConfig(string name, string scope, string? match, string metric, string per, double limit)
        {
            Name = name;
            Scope = scope;
            Match = match;
            Metric = metric;
            Per = per;
            Limit = limit;
        }

        public string Name { get; }

        /// <summary>sender, domain, flow, relay, client (the host that hands mail in) or all.</summary>
        public string Scope { get; }

        /// <summary>Which sender, domain, flow, relay or client (null: each of them).</summary>
        public string? Match { get; }

        /// <summary>messages, recipients, bounceRate or deferralRate.</summary>
        public string Metric { get; }

        /// <summary>minute, hour or day: the rolling window the figure is counted over.</summary>
        public string Per { get; }

        /// <summary>The cap (messages, recipients, blockReplies, deferredQueue), the rate (0..1), or for a spike rule the least figure worth an alert.</summary>
        public double Limit { get; }

        /// <summary>Caps: the share of the limit at which a warning is raised (default 0.8); reaching the limit is critical.</summary>
        public double WarnAt { get; internal set; } = 0.8;

        /// <summary>Rates: the least number of delivery attempts before a rate means anything (default 20).</summary>
        public int MinVolume { get; internal set; } = 20;

        /// <summary>A spike rule: the figure is compared with the median and spread (MAD) of the same hour of the week in the history.</summary>
        public bool Baseline { get; internal set; }

        /// <summary>Spike rules: how many spreads above the median is a spike (default 4).</summary>
        public double Sensitivity { get; internal set; } = 4;

        /// <summary>The suggested action to print instead of the one MailOps works out.</summary>
        public string? Action { get; internal set; }

        /// <summary>cap, rate, spike, blockReplies or deferredQueue.</summary>
        public string Kind => Baseline ? "spike" : Metric == "bounceRate" || Metric == "deferralRate" ? "rate" : Metric == "blockReplies" || Metric == "deferredQueue" ? Metric : "cap";

        public override string ToString() => Name;
    }

    /// <summary>Where alerts go: email through a named relay, a webhook, or the system log.</summary>
    public sealed class AlertSinkConfig
    {
        /// <summary>Seconds one alert may take to reach a sink when the file says nothing.</summary>
        public const int DefaultTimeoutSeconds = 15;

        internal AlertSinkConfig(string name, string type, string? relay, IReadOnlyList<string> to, string? url,
            string? format = null, string? from = null, string? server = null, string? protocol = null,
            string? facility = null, int timeoutSeconds = DefaultTimeoutSeconds)
        {
            Name = name;
            Type = type;
            Relay = relay;
            To = to;
            Url = url;
            Format = format;
            From = from;
            Server = server;
            Protocol = protocol;
            Facility = facility;
            TimeoutSeconds = timeoutSeconds;
        }

        public string Name { get; }

        /// <summary>email, webhook or syslog.</summary>
        public string Type { get; }

        /// <summary>email: the relay the alerts go through (not the one watched).</summary>
        public string? Relay { get; }

        /// <summary>email: the recipients.</summary>
        public IReadOnlyList<string> To { get; }

        /// <summary>webhook: the incoming webhook URL (it often holds a token: never written to logs or errors).</summary>
        public string? Url { get; }

        /// <summary>webhook: slack, teams or generic (Mattermost and others); null: guessed from the URL's host.</summary>
        public string? Format { get; }

        /// <summary>email: the From address; null: mailops@ the machine's name.</summary>
        public string? From { get; }

        /// <summary>syslog: host:port (udp or tcp) or a Unix socket path; null: the local syslog socket (the Event Log on Windows).</summary>
        public string? Server { get; }

        /// <summary>syslog: udp, tcp or unix; null: unix for a path or no server, udp for host:port.</summary>
        public string? Protocol { get; }

        /// <summary>syslog: the facility name (mail, daemon, local0 ... local7...); null: mail.</summary>
        public string? Facility { get; }

        /// <summary>How long one alert may take to reach this sink.</summary>
        public int TimeoutSeconds { get; }

        public override string ToString() => Name;
    }
}
