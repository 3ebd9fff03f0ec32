using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using MailOps.Core.Providers;
using MailOps.Core.Traffic.Sinks;

namespace MailOps.Core.Config
{
    /// <summary>
    /// Reads and validates a MailOps configuration file. Every problem is reported with its file, line and column and
    /// what was expected; unknown keys are errors (a misspelt key would otherwise silently drop a setting); secrets are
    /// refused. Reading never throws for bad content: the result carries the issues.
    /// </summary>
    public static class ConfigReader
    {
        /// <summary>The configuration format version this module reads.</summary>
        public const int CurrentVersion = 1;

        private static readonly Regex SecretKey = new Regex(
            "^(password|passwd|pass|pwd|secret|clientsecret|client_secret|apikey|api_key|api-key|token|accesstoken|privatekey|private_key)$",
            RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        private static readonly Regex DomainName = new Regex(
            @"^(?=.{1,253}$)([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$",
            RegexOptions.CultureInvariant);

        private static readonly string[] Scopes = { "sender", "domain", "flow", "relay", "client", "all" };
        private static readonly string[] Metrics = { "messages", "recipients", "bounceRate", "deferralRate", "blockReplies", "deferredQueue" };
        private static readonly string[] Periods = { "minute", "hour", "day" };
        private static readonly string[] SinkTypes = { "email", "webhook", "syslog" };
        private static readonly string[] WebhookFormats = { "slack", "teams", "generic" };
        private static readonly string[] SyslogProtocols = { "udp", "tcp", "unix" };

        // RFC 6376 section 3.1: selector = sub-domain *( "." sub-domain ); underscores are accepted, as resolvers do
        private static readonly Regex DkimSelector = new Regex(@"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*$", RegexOptions.CultureInvariant);

        private static readonly Regex Name = new Regex(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", RegexOptions.CultureInvariant);

        /// <summary>Reads a file. A missing or unreadable file is an issue, not an exception.</summary>
        public static ConfigReadResult ReadFile(string path)
        {
            string text;
            try
            {
                text = File.ReadAllText(path, new UTF8Encoding(false, true));
            }
            catch (FileNotFoundException)
            {
                return Fail(path, ConfigIssueCodes.FileNotFound, $"The configuration file '{path}' does not exist. Create one with New-MailOpsConfig.");
            }
            catch (DirectoryNotFoundException)
            {
                return Fail(path, ConfigIssueCodes.FileNotFound, $"The configuration file '{path}' does not exist (its folder is missing). Create one with New-MailOpsConfig.");
            }
            catch (DecoderFallbackException)
            {
                return Fail(path, ConfigIssueCodes.FileUnreadable, $"The configuration file '{path}' is not UTF-8 text.");
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                return Fail(path, ConfigIssueCodes.FileUnreadable, $"The configuration file '{path}' cannot be read: {e.Message}");
            }

            return Read(text, path);
        }

        /// <summary>Reads configuration text; <paramref name="path"/> only names it in issues.</summary>
        public static ConfigReadResult Read(string text, string? path = null)
        {
            if (text == null)
            {
                throw new ArgumentNullException(nameof(text));
            }

            var b = new Binder(path);
            YNode? root;
            try
            {
                root = YamlTree.Parse(text, (first, again) => b.Error(again, ConfigIssueCodes.DuplicateKey, again.Value,
                    $"The key '{again.Value}' appears twice in the same mapping (first at line {first.Line}); keep one."));
            }
            catch (YamlTreeException e)
            {
                b.Error(e.Line, e.Column, e.Code, "", e.Message);
                return b.Result(null);
            }

            if (root == null || (root is YScalar s && s.IsNull))
            {
                b.Error(1, 1, ConfigIssueCodes.EmptyDocument, "", "The configuration file is empty: expected at least 'version: 1' and a 'relays:' list. New-MailOpsConfig writes a starter file.");
                return b.Result(null);
            }

            var config = b.BindRoot(root);
            return b.Result(config);
        }

        private static ConfigReadResult Fail(string path, string code, string message) =>
            new ConfigReadResult(null, new[] { new ConfigIssue(path, 0, 0, IssueSeverity.Error, code, "", message) });

        /// <summary>Edit distance with transpositions (optimal string alignment), for "did you mean" hints.</summary>
        internal static int Distance(string a, string b)
        {
            a = a.ToLowerInvariant();
            b = b.ToLowerInvariant();
            var d = new int[a.Length + 1, b.Length + 1];
            for (var i = 0; i <= a.Length; i++)
            {
                d[i, 0] = i;
            }

            for (var j = 0; j <= b.Length; j++)
            {
                d[0, j] = j;
            }

            for (var i = 1; i <= a.Length; i++)
            {
                for (var j = 1; j <= b.Length; j++)
                {
                    var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                    d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                    if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                    {
                        d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1); // a transposition is one typo
                    }
                }
            }

            return d[a.Length, b.Length];
        }

        internal static string? Suggest(string value, IEnumerable<string> choices)
        {
            var best = choices.Select(c => new { c, d = Distance(value, c) }).OrderBy(x => x.d).FirstOrDefault();
            return best != null && best.d <= Math.Max(1, Math.Min(3, value.Length / 3)) ? best.c : null;
        }

        private sealed class Binder
        {
            private readonly string? _file;
            private readonly List<ConfigIssue> _issues = new List<ConfigIssue>();

            public Binder(string? file)
            {
                _file = file;
            }

            public void Error(YNode at, string code, string path, string message) => Error(at.Line, at.Column, code, path, message);

            public void Error(int line, int column, string code, string path, string message) =>
                _issues.Add(new ConfigIssue(_file, line, column, IssueSeverity.Error, code, path, message));

            public void Warn(YNode at, string code, string path, string message) =>
                _issues.Add(new ConfigIssue(_file, at.Line, at.Column, IssueSeverity.Warning, code, path, message));

            public ConfigReadResult Result(MailOpsConfig? config)
            {
                var ordered = _issues.OrderBy(i => i.Line).ThenBy(i => i.Column).ToList();
                var valid = config != null && ordered.All(i => i.Severity != IssueSeverity.Error);
                return new ConfigReadResult(valid ? config : null, ordered);
            }

            // ---------- the document ----------

            public MailOpsConfig? BindRoot(YNode root)
            {
                var map = Map(root, "(top level)");
                if (map == null)
                {
                    return null;
                }

                var r = new MapReader(this, map, "");
                var versionNode = r.Take("version");
                var version = CurrentVersion;
                if (versionNode == null)
                {
                    Error(map, ConfigIssueCodes.MissingKey, "version", $"The key 'version' is missing: add 'version: {CurrentVersion}' at the top of the file.");
                }
                else
                {
                    var v = Int(versionNode, "version", 1, int.MaxValue);
                    if (v.HasValue && v.Value != CurrentVersion)
                    {
                        Error(versionNode, ConfigIssueCodes.UnsupportedVersion, "version", $"This MailOps reads configuration version {CurrentVersion}; the file says version {v.Value}.");
                    }
                }

                var secretVault = OptionalString(r.Take("secretVault"), "secretVault");
                var dns = r.Take("dns") is YNode dnsNode ? BindDns(dnsNode) : DnsConfig.Default;
                var store = r.Take("store") is YNode storeNode ? BindStore(storeNode) : StoreConfig.Default;
                var domains = BindList(r.Take("domains"), "domains", BindDomain);
                var relays = BindList(r.Take("relays"), "relays", BindRelay);
                var flows = BindList(r.Take("flows"), "flows", BindFlow);
                var providers = BindList(r.Take("providers"), "providers", BindProvider);
                var thresholds = BindList(r.Take("thresholds"), "thresholds", BindThreshold);
                var sinks = new List<(YNode, AlertSinkConfig)>();
                int? repeatAfter = null;
                if (r.Take("alerts") is YNode alertsNode && Map(alertsNode, "alerts") is YMapping alertsMap)
                {
                    var ar = new MapReader(this, alertsMap, "alerts");
                    sinks = BindList(ar.Take("sinks"), "alerts.sinks", BindSink);
                    repeatAfter = Int(ar.Take("repeatAfterMinutes"), "alerts.repeatAfterMinutes", 1, 7 * 24 * 60);
                    ar.Finish();
                }

                r.Finish();

                CheckUnique(relays.Select(x => (x.Item1, x.Item2.Name)), "relays", "relay");
                CheckUnique(domains.Select(x => (x.Item1, x.Item2.Name)), "domains", "domain");
                CheckUnique(flows.Select(x => (x.Item1, x.Item2.Name)), "flows", "flow");
                CheckUnique(providers.Select(x => (x.Item1, x.Item2.Name)), "providers", "provider");
                CheckUnique(thresholds.Select(x => (x.Item1, x.Item2.Name)), "thresholds", "threshold");
                CheckUnique(sinks.Select(x => (x.Item1, x.Item2.Name)), "alerts.sinks", "alert sink");

                var relayNames = relays.Select(x => x.Item2.Name).ToList();
                foreach (var (node, flow) in flows)
                {
                    if (flow.Relay != null && !relayNames.Contains(flow.Relay, StringComparer.OrdinalIgnoreCase))
                    {
                        Error(node, ConfigIssueCodes.UnknownReference, $"flows[{flow.Name}].relay", $"The flow '{flow.Name}' names the relay '{flow.Relay}', which is not in 'relays:'{Hint(flow.Relay, relayNames)}.");
                    }
                }

                foreach (var (node, sink) in sinks)
                {
                    if (sink.Relay != null && !relayNames.Contains(sink.Relay, StringComparer.OrdinalIgnoreCase))
                    {
                        Error(node, ConfigIssueCodes.UnknownReference, $"alerts.sinks[{sink.Name}].relay", $"The alert sink '{sink.Name}' names the relay '{sink.Relay}', which is not in 'relays:'{Hint(sink.Relay, relayNames)}.");
                    }
                    else if (sink.Relay != null && thresholds.Any(t => t.Item2.Scope == "relay" && string.Equals(t.Item2.Match, sink.Relay, StringComparison.OrdinalIgnoreCase)))
                    {
                        // the relay in trouble would also carry (or lose) the alert about its trouble
                        Warn(node, ConfigIssueCodes.InvalidValue, $"alerts.sinks[{sink.Name}].relay", $"The alert sink '{sink.Name}' mails through the relay '{sink.Relay}', which a threshold watches: alerts about it could be lost with it. Name another relay.");
                    }
                }

                foreach (var (node, threshold) in thresholds)
                {
                    if (threshold.Scope == "relay" && threshold.Match != null && !relayNames.Contains(threshold.Match, StringComparer.OrdinalIgnoreCase))
                    {
                        Error(node, ConfigIssueCodes.UnknownReference, $"thresholds[{threshold.Name}].match", $"The threshold '{threshold.Name}' applies to the relay '{threshold.Match}', which is not in 'relays:'.");
                    }

                    if (threshold.Scope == "flow" && threshold.Match != null && flows.All(f => !string.Equals(f.Item2.Name, threshold.Match, StringComparison.OrdinalIgnoreCase)))
                    {
                        Error(node, ConfigIssueCodes.UnknownReference, $"thresholds[{threshold.Name}].match", $"The threshold '{threshold.Name}' applies to the flow '{threshold.Match}', which is not in 'flows:'.");
                    }
                }

                if (relays.Count > 0 && relays.All(x => x.Item2.Role != RelayRole.Secondary))
                {
                    Warn(map, ConfigIssueCodes.NoSecondaryRelay, "relays", "No relay has 'role: secondary': bulk and automated mail would have to share the person-to-person relay.");
                }

                return new MailOpsConfig(_file, version, relays.Select(x => x.Item2).ToList(), domains.Select(x => x.Item2).ToList(),
                    dns, store, flows.Select(x => x.Item2).ToList(), providers.Select(x => x.Item2).ToList(),
                    thresholds.Select(x => x.Item2).ToList(), sinks.Select(x => x.Item2).ToList(), secretVault)
                {
                    AlertRepeatAfter = TimeSpan.FromMinutes(repeatAfter ?? 60),
                };
            }

            private static string Hint(string value, IEnumerable<string> choices)
            {
                var s = Suggest(value, choices);
                return s == null ? "" : $" (did you mean '{s}'?)";
            }

            private void CheckUnique(IEnumerable<(YNode node, string name)> items, string path, string what)
            {
                var seen = new Dictionary<string, YNode>(StringComparer.OrdinalIgnoreCase);
                foreach (var (node, name) in items)
                {
                    if (seen.TryGetValue(name, out var first))
                    {
                        Error(node, ConfigIssueCodes.DuplicateName, path, $"Two entries are named '{name}' (the first at line {first.Line}); each {what} needs its own name.");
                    }
                    else
                    {
                        seen.Add(name, node);
                    }
                }
            }

            private List<(YNode, T)> BindList<T>(YNode? node, string path, Func<YNode, string, T?> bind) where T : class
            {
                var result = new List<(YNode, T)>();
                if (node == null || (node is YScalar sc && sc.IsNull))
                {
                    return result;
                }

                if (!(node is YSequence seq))
                {
                    Error(node, ConfigIssueCodes.WrongType, path, $"'{path}' must be a list (lines starting with '- '), not {node.Kind}.");
                    return result;
                }

                for (var i = 0; i < seq.Items.Count; i++)
                {
                    var item = bind(seq.Items[i], $"{path}[{i}]");
                    if (item != null)
                    {
                        result.Add((seq.Items[i], item));
                    }
                }

                return result;
            }

            // ---------- sections ----------

            private DnsConfig BindDns(YNode node)
            {
                var map = Map(node, "dns");
                if (map == null)
                {
                    return DnsConfig.Default;
                }

                var r = new MapReader(this, map, "dns");
                var servers = new List<DnsServerEndpoint>();
                var serversNode = r.Take("servers");
                var list = StringList(serversNode, "dns.servers");
                for (var i = 0; i < list.Count; i++)
                {
                    var (text, at) = list[i];
                    if (TryParseEndpoint(text, 53, out var ep))
                    {
                        servers.Add(ep!);
                    }
                    else
                    {
                        Error(at, ConfigIssueCodes.InvalidValue, $"dns.servers[{i}]", $"'{text}' is not a DNS server address: expected an IP address, optionally with a port (192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:53).");
                    }
                }

                var timeout = Int(r.Take("timeoutSeconds"), "dns.timeoutSeconds", 1, 300) ?? 5;
                var retries = Int(r.Take("retries"), "dns.retries", 0, 10) ?? 1;
                var zonesNode = r.Take("dnsblZones");
                var zones = zonesNode == null ? DnsConfig.DefaultDnsblZones : HostList(zonesNode, "dns.dnsblZones");
                var asnNode = r.Take("asnZone");
                var asn6Node = r.Take("asnZone6");
                var asn = asnNode == null ? DnsConfig.DefaultAsnZone : OptionalString(asnNode, "dns.asnZone");
                var asn6 = asn6Node == null ? DnsConfig.DefaultAsnZone6 : OptionalString(asn6Node, "dns.asnZone6");
                r.Finish();
                return new DnsConfig(servers, timeout, retries, zones, string.IsNullOrWhiteSpace(asn) ? null : asn!.Trim().TrimEnd('.'),
                    string.IsNullOrWhiteSpace(asn6) ? null : asn6!.Trim().TrimEnd('.'));
            }

            private StoreConfig BindStore(YNode node)
            {
                var map = Map(node, "store");
                if (map == null)
                {
                    return StoreConfig.Default;
                }

                var r = new MapReader(this, map, "store");
                var provider = Enum(r.Take("provider"), "store.provider", StoreProvider.Sqlite);
                var path = OptionalString(r.Take("path"), "store.path");
                var csNode = r.Take("connectionString");
                var cs = OptionalString(csNode, "store.connectionString");
                var credential = OptionalString(r.Take("credential"), "store.credential");
                var expireSoft = Int(r.Take("expireSoftAfterDays"), "store.expireSoftAfterDays", 0, 3650) ?? 30;
                var expireHard = Int(r.Take("expireHardAfterDays"), "store.expireHardAfterDays", 0, 36500) ?? 0;
                r.Finish();
                if (cs != null && csNode != null && Regex.IsMatch(cs, @"(^|;)\s*(password|pwd)\s*=", RegexOptions.IgnoreCase))
                {
                    Error(csNode, ConfigIssueCodes.SecretInConfig, "store.connectionString", "The connection string holds a password. Secrets never go in the configuration: remove it and name a credential in 'store.credential' (a SecretManagement secret or a -Credential).");
                }

                if (provider == StoreProvider.PostgreSql && cs == null)
                {
                    Error(map, ConfigIssueCodes.MissingKey, "store.connectionString", "A PostgreSQL store needs 'connectionString' (for example 'Host=db.example.org;Database=mailops;Username=mailops').");
                }

                if (provider == StoreProvider.Sqlite && cs != null && csNode != null)
                {
                    Warn(csNode, ConfigIssueCodes.InvalidValue, "store.connectionString", "'connectionString' is used only with 'provider: postgresql'; the SQLite store uses 'path'.");
                }

                return new StoreConfig(provider, path, cs, credential, expireSoft, expireHard);
            }

            private DomainConfig? BindDomain(YNode node, string path)
            {
                if (node is YScalar s && !s.IsNull)
                {
                    return CheckDomain(s, path) ? new DomainConfig(s.Value.TrimEnd('.').ToLowerInvariant(), Array.Empty<string>()) : null;
                }

                var map = Map(node, path);
                if (map == null)
                {
                    return null;
                }

                var r = new MapReader(this, map, path);
                var nameNode = r.Require("name", "the domain name, for example example.org");
                var selectors = StringList(r.Take("dkimSelectors"), path + ".dkimSelectors").Select(x => x.Item1).ToList();
                r.Finish();
                if (!(nameNode is YScalar ns) || !CheckDomain(ns, path + ".name"))
                {
                    return null;
                }

                return new DomainConfig(ns.Value.TrimEnd('.').ToLowerInvariant(), selectors);
            }

            private RelayConfig? BindRelay(YNode node, string path)
            {
                var map = Map(node, path);
                if (map == null)
                {
                    return null;
                }

                var r = new MapReader(this, map, path);
                var name = RequiredName(r, path);
                var hostNode = r.Require("host", "the relay's host name or IP address");
                var host = hostNode == null ? null : Str(hostNode, path + ".host");
                if (host != null && hostNode != null && !IsHost(host))
                {
                    Error(hostNode, ConfigIssueCodes.InvalidValue, path + ".host", $"'{host}' is not a host name or IP address.");
                    host = null;
                }

                var security = Enum(r.Take("security"), path + ".security", SmtpSecurity.Auto);
                var portNode = r.Take("port");
                var port = Int(portNode, path + ".port", 1, 65535) ?? (security == SmtpSecurity.SslOnConnect ? 465 : 587);
                var role = Enum(r.Take("role"), path + ".role", RelayRole.Primary);
                if (map.Entries.All(e => e.Key.Value != "role"))
                {
                    Error(map, ConfigIssueCodes.MissingKey, path + ".role", $"The relay '{name}' has no 'role': say 'primary' (person-to-person mail) or 'secondary' (bulk and automated mail).");
                }

                var credential = OptionalString(r.Take("credential"), path + ".credential");
                var helo = OptionalString(r.Take("heloName"), path + ".heloName");
                var timeout = Int(r.Take("timeoutSeconds"), path + ".timeoutSeconds", 1, 600) ?? 30;
                var skipNode = r.Take("skipCertificateCheck");
                var skip = Bool(skipNode, path + ".skipCertificateCheck") ?? false;
                var plainNode = r.Take("allowAuthWithoutTls");
                var plainAuth = Bool(plainNode, path + ".allowAuthWithoutTls") ?? false;
                var description = OptionalString(r.Take("description"), path + ".description");
                var caFile = OptionalString(r.Take("caFile"), path + ".caFile");
                var log = OptionalString(r.Take("log"), path + ".log");
                var syslogName = OptionalString(r.Take("syslogName"), path + ".syslogName");
                var egress = new List<System.Net.IPAddress>();
                foreach (var (text, at) in StringList(r.Take("egress"), path + ".egress"))
                {
                    if (System.Net.IPAddress.TryParse(text, out var ip))
                    {
                        egress.Add(ip);
                    }
                    else
                    {
                        Error(at, ConfigIssueCodes.InvalidValue, path + ".egress", $"'{text}' is not an IP address: 'egress' lists the addresses the relay's mail leaves from (what SPF must authorise).");
                    }
                }

                r.Finish();
                if (skip && skipNode != null)
                {
                    Warn(skipNode, ConfigIssueCodes.InsecureSetting, path + ".skipCertificateCheck", $"The relay '{name}' skips certificate validation: a man in the middle could read its credentials and mail.");
                }

                if (plainAuth && plainNode != null)
                {
                    Warn(plainNode, ConfigIssueCodes.InsecureSetting, path + ".allowAuthWithoutTls", $"The relay '{name}' allows AUTH without TLS: its password may cross the network in clear.");
                }

                if (security == SmtpSecurity.None && credential != null && !plainAuth)
                {
                    Error(map, ConfigIssueCodes.InsecureSetting, path + ".security", $"The relay '{name}' has 'security: None' and a credential: its password would cross the network in clear. Use StartTls or SslOnConnect, or set 'allowAuthWithoutTls: true' if you really mean it.");
                }

                if (name == null || host == null)
                {
                    return null;
                }

                if (caFile != null && _file != null && !System.IO.Path.IsPathRooted(caFile))
                {
                    caFile = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(_file)) ?? "", caFile);
                }

                if (log != null && _file != null && !System.IO.Path.IsPathRooted(log))
                {
                    log = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(_file)) ?? "", log);
                }

                return new RelayConfig(name, host, port, security, role, credential, helo, timeout, skip, plainAuth, description, caFile) { Log = log, SyslogName = syslogName, Egress = egress };
            }

            private FlowConfig? BindFlow(YNode node, string path)
            {
                var map = Map(node, path);
                if (map == null)
                {
                    return null;
                }

                var r = new MapReader(this, map, path);
                var name = RequiredName(r, path);
                var kindNode = r.Require("kind", "one of: " + string.Join(", ", System.Enum.GetNames(typeof(FlowKind))));
                var kind = Enum(kindNode, path + ".kind", FlowKind.Transactional);
                var owner = OptionalString(r.Take("owner"), path + ".owner");
                var senders = new List<string>();
                foreach (var (text, at) in StringList(r.Take("senders"), path + ".senders"))
                {
                    var t = text.Trim().ToLowerInvariant();
                    var domain = t.Contains("@") ? t.Substring(t.LastIndexOf('@') + 1) : t.StartsWith("*.", StringComparison.Ordinal) ? t.Substring(2) : t;
                    if (!DomainName.IsMatch(domain) || domain.IndexOf('*') >= 0 || (t.Contains("@") && t.IndexOf('@') != t.LastIndexOf('@')))
                    {
                        Error(at, ConfigIssueCodes.InvalidValue, path + ".senders", $"'{text}' is not a sender: expected an address (news@example.org), a domain (example.org or @example.org) or its subdomains (*.example.org).");
                        continue;
                    }

                    senders.Add(t);
                }

                var clientHosts = StringList(r.Take("clientHosts"), path + ".clientHosts").Select(x => x.Item1).ToList();
                var relay = OptionalString(r.Take("relay"), path + ".relay");
                var esp = OptionalString(r.Take("esp"), path + ".esp");
                var suppression = OptionalString(r.Take("suppressionList"), path + ".suppressionList");
                var suppressOnNode = r.Take("suppressOn");
                var suppressOn = suppressOnNode == null ? SuppressOn.Hard : Enum(suppressOnNode, path + ".suppressOn", SuppressOn.Hard);
                r.Finish();
                return name == null || kindNode == null ? null : new FlowConfig(name, kind, owner, senders, clientHosts, relay, esp, suppression, suppressOn);
            }

            private ProviderConfig? BindProvider(YNode node, string path)
            {
                var map = Map(node, path);
                if (map == null)
                {
                    return null;
                }

                var r = new MapReader(this, map, path);
                var name = RequiredName(r, path);
                var mx = StringList(r.Take("mx"), path + ".mx").Select(x => x.Item1.ToLowerInvariant()).ToList();
                var ns = StringList(r.Take("ns"), path + ".ns").Select(x => x.Item1.ToLowerInvariant()).ToList();
                var domains = StringList(r.Take("domains"), path + ".domains").Select(x => x.Item1.ToLowerInvariant().TrimStart('@')).ToList();
                var asns = new List<int>();
                foreach (var (text, at) in StringList(r.Take("asn"), path + ".asn"))
                {
                    var t = text.StartsWith("AS", StringComparison.OrdinalIgnoreCase) ? text.Substring(2) : text;
                    if (int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0)
                    {
                        asns.Add(n);
                    }
                    else
                    {
                        Error(at, ConfigIssueCodes.InvalidValue, path + ".asn", $"'{text}' is not an AS number (expected 16276 or AS16276).");
                    }
                }

                var kindNode = r.Take("kind");
                var kind = kindNode == null ? (ProviderKind?)null : Enum(kindNode, path + ".kind", ProviderKind.Unspecified);
                var spf = PatternList(r.Take("spf"), path + ".spf", "an SPF include domain (spf.example.net, or *.spf.example.net)", spf: true);
                var ptr = PatternList(r.Take("ptr"), path + ".ptr", "a host name pattern (*.out.example.net)", spf: false);
                var dkim = new List<string>();
                foreach (var (text, at) in StringList(r.Take("dkim"), path + ".dkim"))
                {
                    var t = text.Trim().TrimEnd('.').ToLowerInvariant();
                    if (t.EndsWith("._domainkey", StringComparison.Ordinal) || t.Contains("._domainkey."))
                    {
                        Error(at, ConfigIssueCodes.InvalidValue, path + ".dkim", $"'{text}' is a DNS name: give the selector alone ('{t.Substring(0, t.IndexOf("._domainkey", StringComparison.Ordinal))}'), without ._domainkey.");
                    }
                    else if (!DkimSelector.IsMatch(t.Replace("*", "x")))
                    {
                        Error(at, ConfigIssueCodes.InvalidValue, path + ".dkim", $"'{text}' is not a DKIM selector: expected letters, digits and '-' in dot-separated labels (s1, selector1, k1.mail), '*' for any run of characters.");
                    }
                    else
                    {
                        dkim.Add(t);
                    }
                }

                r.Finish();
                if (name != null && mx.Count == 0 && ns.Count == 0 && asns.Count == 0 && domains.Count == 0 && spf.Count == 0 && ptr.Count == 0 && dkim.Count == 0)
                {
                    Error(map, ConfigIssueCodes.MissingKey, path, $"The provider '{name}' has nothing to recognise it by: give 'mx', 'ns', 'asn', 'domains', 'spf', 'ptr' or 'dkim'.");
                    return null;
                }

                return name == null ? null : new ProviderConfig(name, mx, ns, asns, domains, kind, spf, ptr, dkim);
            }

            /// <summary>Domain or host name patterns ('*' any run of characters); SPF ones without their include:/redirect= prefix.</summary>
            private List<string> PatternList(YNode? node, string path, string expected, bool spf)
            {
                var result = new List<string>();
                foreach (var (text, at) in StringList(node, path))
                {
                    var t = text.Trim().TrimEnd('.').ToLowerInvariant();
                    var prefix = new[] { "include:", "redirect=", "+include:", "~include:", "?include:", "-include:" }.FirstOrDefault(x => t.StartsWith(x, StringComparison.Ordinal));
                    if (spf && prefix != null)
                    {
                        Error(at, ConfigIssueCodes.InvalidValue, path, $"'{text}' is an SPF term: give the domain alone ('{t.Substring(prefix.Length)}').");
                    }
                    else if (t.IndexOf('%') >= 0 || !DomainName.IsMatch(t.Replace("*", "x")) || !t.Contains("."))
                    {
                        Error(at, ConfigIssueCodes.InvalidValue, path, $"'{text}' is not {expected}.");
                    }
                    else
                    {
                        result.Add(t);
                    }
                }

                return result;
            }

            private ThresholdConfig? BindThreshold(YNode node, string path)
            {
                var map = Map(node, path);
                if (map == null)
                {
                    return null;
                }

                var r = new MapReader(this, map, path);
                var name = RequiredName(r, path);
                var scope = Choice(r.Require("scope", "sender, domain, flow, relay, client or all"), path + ".scope", Scopes);
                var match = OptionalString(r.Take("match"), path + ".match");
                var metric = Choice(r.Require("metric", "messages, recipients, bounceRate, deferralRate, blockReplies or deferredQueue"), path + ".metric", Metrics);
                var per = Choice(r.Require("per", "minute, hour or day"), path + ".per", Periods);
                var baselineNode = r.Take("baseline");
                var baseline = Bool(baselineNode, path + ".baseline") ?? false;
                var limitNode = baseline ? r.Take("limit") : r.Require("limit", "a number");
                var limit = limitNode == null ? (baseline ? 0 : (double?)null) : Number(limitNode, path + ".limit");
                var warnNode = r.Take("warnAt");
                var warnAt = Number(warnNode, path + ".warnAt");
                var minVolume = Int(r.Take("minVolume"), path + ".minVolume", 0, int.MaxValue);
                var sensitivity = Number(r.Take("sensitivity"), path + ".sensitivity");
                var action = OptionalString(r.Take("action"), path + ".action");
                r.Finish();
                if (warnAt != null && (warnAt <= 0 || warnAt > 1) && warnNode != null)
                {
                    Error(warnNode, ConfigIssueCodes.InvalidValue, path + ".warnAt", $"'warnAt' is the share of the limit at which to warn: a number above 0 and at most 1 (0.8 warns at 80%).");
                }

                if (metric != null && (metric == "bounceRate" || metric == "deferralRate") && limit != null && (limit <= 0 || limit > 1) && limitNode != null)
                {
                    Error(limitNode, ConfigIssueCodes.InvalidValue, path + ".limit", $"The limit of a rate is a share between 0 and 1 (0.05 for 5%), not {limit}.");
                }

                if (baseline && metric != null && metric != "messages" && metric != "recipients")
                {
                    Error(baselineNode!, ConfigIssueCodes.InvalidValue, path + ".baseline", "A baseline (spike) rule counts messages or recipients.");
                }

                if (name == null || scope == null || metric == null || per == null || limit == null)
                {
                    return null;
                }

                return new ThresholdConfig(name, scope, match, metric, per, limit.Value)
                {
                    Baseline = baseline,
                    WarnAt = warnAt ?? 0.8,
                    MinVolume = minVolume ?? 20,
                    Sensitivity = sensitivity ?? 4,
                    Action = action,
                };
            }

            private AlertSinkConfig? BindSink(YNode node, string path)
            {
                var map = Map(node, path);
                if (map == null)
                {
                    return null;
                }

                var r = new MapReader(this, map, path);
                var name = RequiredName(r, path);
                var type = Choice(r.Require("type", "email, webhook or syslog"), path + ".type", SinkTypes);
                var relayNode = r.Take("relay");
                var relay = OptionalString(relayNode, path + ".relay");
                var toNode = r.Take("to");
                var toList = StringList(toNode, path + ".to");
                var to = toList.Select(x => x.Item1.Trim()).ToList();
                var fromNode = r.Take("from");
                var from = OptionalString(fromNode, path + ".from");
                var urlNode = r.Take("url");
                var url = OptionalString(urlNode, path + ".url");
                var formatNode = r.Take("format");
                var format = Choice(formatNode, path + ".format", WebhookFormats);
                var serverNode = r.Take("server");
                var server = OptionalString(serverNode, path + ".server")?.Trim();
                var protocolNode = r.Take("protocol");
                var protocol = Choice(protocolNode, path + ".protocol", SyslogProtocols);
                var facilityNode = r.Take("facility");
                var facility = Choice(facilityNode, path + ".facility", SyslogAlertSink.FacilityNames);
                var timeout = Int(r.Take("timeoutSeconds"), path + ".timeoutSeconds", 1, 300) ?? AlertSinkConfig.DefaultTimeoutSeconds;
                r.Finish();

                // a key that belongs to another type of sink is a mistake worth saying (a webhook 'to' does nothing)
                var unused = new List<(YNode?, string, string)>
                {
                    (relayNode, "relay", "email"), (toNode, "to", "email"), (fromNode, "from", "email"), (urlNode, "url", "webhook"),
                    (formatNode, "format", "webhook"), (serverNode, "server", "syslog"), (protocolNode, "protocol", "syslog"), (facilityNode, "facility", "syslog"),
                };
                foreach (var (at, key, owner) in unused)
                {
                    if (at != null && type != null && type != owner)
                    {
                        Warn(at, ConfigIssueCodes.InvalidValue, path + "." + key, $"'{key}' is used only by {owner} sinks; the {type} sink '{name}' ignores it.");
                    }
                }

                if (type == "email")
                {
                    if (relay == null || to.Count == 0)
                    {
                        Error(map, ConfigIssueCodes.MissingKey, path, $"The email alert sink '{name}' needs 'relay' (a relay other than the one watched) and 'to' (one or more addresses).");
                    }

                    foreach (var (text, at) in toList)
                    {
                        if (!IsMailbox(text))
                        {
                            Error(at, ConfigIssueCodes.InvalidValue, path + ".to", $"'{text}' is not an email address (expected ops@example.org).");
                        }
                    }

                    if (from != null && !IsMailbox(from))
                    {
                        Error(fromNode!, ConfigIssueCodes.InvalidValue, path + ".from", $"'{from}' is not an email address (expected mailops@example.org).");
                    }
                }

                if (type == "webhook")
                {
                    if (url == null)
                    {
                        Error(map, ConfigIssueCodes.MissingKey, path + ".url", $"The webhook alert sink '{name}' needs 'url'.");
                    }
                    else if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != "https" && uri.Scheme != "http"))
                    {
                        // the URL is not repeated: incoming webhook URLs carry their token in the path
                        Error(urlNode!, ConfigIssueCodes.InvalidValue, path + ".url", $"The 'url' of the webhook alert sink '{name}' is not an http(s) URL.");
                    }
                }

                if (type == "syslog" && server != null)
                {
                    var unix = protocol == "unix" || (protocol == null && server.StartsWith("/", StringComparison.Ordinal));
                    if (unix && !server.StartsWith("/", StringComparison.Ordinal))
                    {
                        Error(serverNode!, ConfigIssueCodes.InvalidValue, path + ".server", $"'{server}' is not a Unix socket path: with 'protocol: unix' give an absolute path such as /dev/log.");
                    }
                    else if (!unix && (!SyslogAlertSink.TryParseServer(server, out var host, out _) || !IsHost(host)))
                    {
                        Error(serverNode!, ConfigIssueCodes.InvalidValue, path + ".server", $"'{server}' is not a syslog server: expected host, host:port or [IPv6]:port (the port defaults to 514).");
                    }
                }

                if (type == "syslog" && server == null && (protocol == "udp" || protocol == "tcp"))
                {
                    Error(map, ConfigIssueCodes.MissingKey, path + ".server", $"The syslog alert sink '{name}' says 'protocol: {protocol}' but names no 'server' (host:port).");
                }

                return name == null || type == null ? null : new AlertSinkConfig(name, type, relay, to, url, format, from, server, protocol, facility, timeout);
            }

            private static bool IsMailbox(string text) =>
                MimeKit.MailboxAddress.TryParse(text, out var m) && m.Address.IndexOf('@') > 0 && !text.Any(char.IsControl);

            // ---------- scalar helpers ----------

            private string? RequiredName(MapReader r, string path)
            {
                var node = r.Require("name", "a short name such as 'primary'");
                if (node == null)
                {
                    return null;
                }

                var s = Str(node, path + ".name");
                if (s != null && !Name.IsMatch(s))
                {
                    Error(node, ConfigIssueCodes.InvalidValue, path + ".name", $"'{s}' is not a usable name: use letters, digits, '.', '_' or '-' (up to 64 characters, starting with a letter or digit).");
                    return null;
                }

                return s;
            }

            private bool CheckDomain(YScalar s, string path)
            {
                if (DomainName.IsMatch(s.Value) && s.Value.Contains("."))
                {
                    return true;
                }

                Error(s, ConfigIssueCodes.InvalidValue, path, $"'{s.Value}' is not a domain name (expected something like example.org).");
                return false;
            }

            private YMapping? Map(YNode node, string path)
            {
                if (node is YMapping m)
                {
                    return m;
                }

                Error(node, ConfigIssueCodes.WrongType, path, $"'{path}' must be a mapping (key: value lines), not {node.Kind}.");
                return null;
            }

            private string? Str(YNode node, string path)
            {
                if (node is YScalar s && !s.IsNull)
                {
                    return s.Value;
                }

                Error(node, ConfigIssueCodes.WrongType, path, $"'{path}' must be a single value, not {node.Kind}.");
                return null;
            }

            private string? OptionalString(YNode? node, string path)
            {
                if (node == null || (node is YScalar s && s.IsNull))
                {
                    return null;
                }

                return Str(node, path);
            }

            private int? Int(YNode? node, string path, int min, int max)
            {
                if (node == null || (node is YScalar n && n.IsNull))
                {
                    return null;
                }

                var s = Str(node, path);
                if (s == null)
                {
                    return null;
                }

                if (int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max)
                {
                    return v;
                }

                var range = max == int.MaxValue ? $"a whole number from {min}" : $"a whole number from {min} to {max}";
                Error(node, ConfigIssueCodes.InvalidValue, path, $"'{s}' is not valid for '{path}': expected {range}.");
                return null;
            }

            private double? Number(YNode? node, string path)
            {
                if (node == null)
                {
                    return null;
                }

                var s = Str(node, path);
                if (s == null)
                {
                    return null;
                }

                if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v >= 0 && !double.IsInfinity(v))
                {
                    return v;
                }

                Error(node, ConfigIssueCodes.InvalidValue, path, $"'{s}' is not valid for '{path}': expected a number of 0 or more.");
                return null;
            }

            private bool? Bool(YNode? node, string path)
            {
                if (node == null)
                {
                    return null;
                }

                var s = Str(node, path);
                switch (s?.ToLowerInvariant())
                {
                    case null:
                        return null;
                    case "true":
                    case "yes":
                    case "on":
                        return true;
                    case "false":
                    case "no":
                    case "off":
                        return false;
                    default:
                        Error(node, ConfigIssueCodes.InvalidValue, path, $"'{s}' is not valid for '{path}': expected true or false.");
                        return null;
                }
            }

            private T Enum<T>(YNode? node, string path, T fallback) where T : struct
            {
                if (node == null)
                {
                    return fallback;
                }

                var s = Str(node, path);
                if (s == null)
                {
                    return fallback;
                }

                var names = System.Enum.GetNames(typeof(T));
                var match = names.FirstOrDefault(n => string.Equals(n, s.Replace("-", "").Replace("_", ""), StringComparison.OrdinalIgnoreCase));
                if (match != null)
                {
                    return (T)System.Enum.Parse(typeof(T), match);
                }

                Error(node, ConfigIssueCodes.InvalidValue, path, $"'{s}' is not valid for '{path}': expected one of {string.Join(", ", names)}{Hint(s, names)}.");
                return fallback;
            }

            private string? Choice(YNode? node, string path, string[] choices)
            {
                if (node == null)
                {
                    return null;
                }

                var s = Str(node, path);
                if (s == null)
                {
                    return null;
                }

                var match = choices.FirstOrDefault(c => string.Equals(c, s, StringComparison.OrdinalIgnoreCase));
                if (match == null)
                {
                    Error(node, ConfigIssueCodes.InvalidValue, path, $"'{s}' is not valid for '{path}': expected one of {string.Join(", ", choices)}{Hint(s, choices)}.");
                }

                return match;
            }

            /// <summary>A list of single values; one value alone is taken as a list of one.</summary>
            private List<(string, YNode)> StringList(YNode? node, string path)
            {
                var result = new List<(string, YNode)>();
                if (node == null || (node is YScalar n && n.IsNull))
                {
                    return result;
                }

                if (node is YScalar one)
                {
                    result.Add((one.Value, one));
                    return result;
                }

                if (!(node is YSequence seq))
                {
                    Error(node, ConfigIssueCodes.WrongType, path, $"'{path}' must be a list of values, not {node.Kind}.");
                    return result;
                }

                for (var i = 0; i < seq.Items.Count; i++)
                {
                    var s = Str(seq.Items[i], $"{path}[{i}]");
                    if (s != null)
                    {
                        result.Add((s, seq.Items[i]));
                    }
                }

                return result;
            }

            private List<string> HostList(YNode node, string path)
            {
                var result = new List<string>();
                foreach (var (text, at) in StringList(node, path))
                {
                    if (DomainName.IsMatch(text))
                    {
                        result.Add(text.TrimEnd('.').ToLowerInvariant());
                    }
                    else
                    {
                        Error(at, ConfigIssueCodes.InvalidValue, path, $"'{text}' is not a DNS zone name.");
                    }
                }

                return result;
            }

            private static bool IsHost(string host) =>
                IPAddress.TryParse(host, out _) || (DomainName.IsMatch(host) && !host.StartsWith("-", StringComparison.Ordinal));

            internal static bool TryParseEndpoint(string text, int defaultPort, out DnsServerEndpoint? endpoint)
            {
                endpoint = null;
                text = text.Trim();
                string address;
                var port = defaultPort;
                if (text.StartsWith("[", StringComparison.Ordinal))
                {
                    var close = text.IndexOf(']');
                    if (close < 0)
                    {
                        return false;
                    }

                    address = text.Substring(1, close - 1);
                    var rest = text.Substring(close + 1);
                    if (rest.Length > 0 && (!rest.StartsWith(":", StringComparison.Ordinal) || !int.TryParse(rest.Substring(1), NumberStyles.None, CultureInfo.InvariantCulture, out port)))
                    {
                        return false;
                    }
                }
                else if (text.Count(c => c == ':') == 1)
                {
                    var i = text.IndexOf(':');
                    address = text.Substring(0, i);
                    if (!int.TryParse(text.Substring(i + 1), NumberStyles.None, CultureInfo.InvariantCulture, out port))
                    {
                        return false;
                    }
                }
                else
                {
                    address = text;
                }

                if (!IPAddress.TryParse(address, out var ip) || port < 1 || port > 65535)
                {
                    return false;
                }

                endpoint = new DnsServerEndpoint(ip.ToString(), port);
                return true;
            }

            /// <summary>Reads the keys of one mapping and reports those nobody asked for.</summary>
            private sealed class MapReader
            {
                private readonly Binder _b;
                private readonly YMapping _map;
                private readonly string _path;
                private readonly HashSet<string> _known = new HashSet<string>(StringComparer.Ordinal);

                public MapReader(Binder b, YMapping map, string path)
                {
                    _b = b;
                    _map = map;
                    _path = path;
                }

                public YNode? Take(string key)
                {
                    _known.Add(key);
                    foreach (var e in _map.Entries)
                    {
                        if (e.Key.Value == key)
                        {
                            return e.Value;
                        }
                    }

                    return null;
                }

                public YNode? Require(string key, string what)
                {
                    var node = Take(key);
                    if (node == null || (node is YScalar s && s.IsNull))
                    {
                        var where = _path.Length == 0 ? "the top level" : $"'{_path}'";
                        _b.Error(node ?? _map, ConfigIssueCodes.MissingKey, Join(key), $"The key '{key}' is missing in {where}: expected {what}.");
                        return null;
                    }

                    return node;
                }

                public void Finish()
                {
                    foreach (var e in _map.Entries)
                    {
                        var key = e.Key.Value;
                        if (_known.Contains(key))
                        {
                            continue;
                        }

                        if (SecretKey.IsMatch(key))
                        {
                            _b.Error(e.Key, ConfigIssueCodes.SecretInConfig, Join(key), $"'{key}' looks like a secret. Secrets never go in the configuration: remove it and name a credential instead ('credential: <name>', read from a SecretManagement vault or given with -Credential).");
                            continue;
                        }

                        var caseMatch = _known.FirstOrDefault(k => string.Equals(k, key, StringComparison.OrdinalIgnoreCase));
                        var hint = caseMatch != null ? $" Keys are case-sensitive: did you mean '{caseMatch}'?" :
                            Suggest(key, _known) is string s ? $" Did you mean '{s}'?" : "";
                        var where = _path.Length == 0 ? "at the top level" : $"in '{_path}'";
                        _b.Error(e.Key, ConfigIssueCodes.UnknownKey, Join(key), $"Unknown key '{key}' {where}.{hint} Expected one of: {string.Join(", ", _known)}.");
                    }
                }

                private string Join(string key) => _path.Length == 0 ? key : _path + "." + key;
            }
        }
    }
}
