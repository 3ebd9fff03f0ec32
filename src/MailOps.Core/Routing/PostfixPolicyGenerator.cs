using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using MailOps.Core.Config;

namespace MailOps.Core.Routing
{
    /// <summary>
    /// Turns the configuration's flows, relays and thresholds into the Postfix configuration that enforces them: bulk and
    /// automated senders (and the app servers that send for them) leave through a dedicated transport per secondary relay,
    /// paced by the tightest threshold; person-to-person mail keeps the MTA's own path; per-client limits come from the
    /// thresholds of the flows whose client hosts hand mail in.
    /// </summary>
    /// <remarks>
    /// Two sender maps, because each covers what the other cannot: a FILTER from check_sender_access overrides
    /// transport_maps and relayhost for mail received over SMTP (so bulk can never take the primary's path), but smtpd
    /// never sees mail submitted locally with sendmail; sender_dependent_default_transport_maps sees every message but is
    /// overruled by transport_maps and relay_transport. The output is deterministic (sorted, no time except one header
    /// line that <see cref="PostfixPolicyOptions.Timestamp"/> turns off) so that a diff against the files in place means
    /// something. No secret is ever written: relays name credentials, and the files only say that one is needed.
    /// </remarks>
    public static class PostfixPolicyGenerator
    {
        private static readonly Regex NotName = new Regex("[^a-z0-9_]+", RegexOptions.CultureInvariant);

        /// <summary>Generates the policy.</summary>
        /// <exception cref="ArgumentNullException">config or options is null.</exception>
        /// <exception cref="ArgumentException">options.MapDirectory is not an absolute path, or a concurrency is below 1.</exception>
        public static PostfixPolicy Generate(MailOpsConfig config, PostfixPolicyOptions options)
        {
            if (config == null)
            {
                throw new ArgumentNullException(nameof(config));
            }

            if (options == null)
            {
                throw new ArgumentNullException(nameof(options));
            }

            var dir = (options.MapDirectory ?? "").Trim();
            if (dir.Length == 0 || !dir.StartsWith("/", StringComparison.Ordinal) || dir.IndexOfAny(new[] { ' ', '\t', ',', '\n' }) >= 0)
            {
                throw new ArgumentException($"The map directory must be an absolute path on the MTA without spaces or commas (it is written into main.cf), not '{options.MapDirectory}'.", nameof(options));
            }

            if (options.DefaultConcurrency < 1 || options.InitialConcurrency < 1)
            {
                throw new ArgumentException("Concurrencies must be at least 1.", nameof(options));
            }

            dir = dir.Length > 1 ? dir.TrimEnd('/') : dir;
            return new Builder(config, options, dir).Build();
        }

        /// <summary>The transport name of a relay: mailops_ and the name in [a-z0-9_].</summary>
        public static string TransportName(string relayName)
        {
            var s = NotName.Replace((relayName ?? "").ToLowerInvariant(), "_").Trim('_');
            return "mailops_" + (s.Length == 0 ? "relay" : s);
        }

        /// <summary>A rate delay in whole seconds written with Postfix's units (s, or m/h when exact).</summary>
        public static string FormatDelay(int seconds) =>
            seconds % 3600 == 0 ? (seconds / 3600).ToString(CultureInfo.InvariantCulture) + "h" :
            seconds % 60 == 0 ? (seconds / 60).ToString(CultureInfo.InvariantCulture) + "m" :
            seconds.ToString(CultureInfo.InvariantCulture) + "s";

        /// <summary>Seconds of a threshold period (minute, hour, day).</summary>
        internal static int PeriodSeconds(string per) => per == "minute" ? 60 : per == "day" ? 86400 : 3600;

        private sealed class MapEntry
        {
            public MapEntry(string key, string value, string flow, string comment)
            {
                Key = key;
                Value = value;
                Flow = flow;
                Comment = comment;
            }

            public string Key { get; }
            public string Value { get; }
            public string Flow { get; }
            public string Comment { get; }
        }

        private sealed class FlowState
        {
            public FlowState(FlowConfig flow)
            {
                Flow = flow;
            }

            public FlowConfig Flow { get; }
            public RelayConfig? Relay { get; set; }
            public PolicyRoute? Route { get; set; }
            public string Why { get; set; } = "";
            public PolicyDecisionSeverity Severity { get; set; }
            public List<string> Notes { get; } = new List<string>();
            public List<string> Limits { get; } = new List<string>();
        }

        private sealed class Builder
        {
            private readonly MailOpsConfig _config;
            private readonly PostfixPolicyOptions _options;
            private readonly string _dir;
            private readonly Dictionary<string, string> _transportOf = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            private readonly List<FlowState> _flows = new List<FlowState>();
            private readonly Dictionary<string, MapEntry> _senderFilter = new Dictionary<string, MapEntry>(StringComparer.OrdinalIgnoreCase);
            private readonly Dictionary<string, MapEntry> _senderTransport = new Dictionary<string, MapEntry>(StringComparer.OrdinalIgnoreCase);
            private readonly Dictionary<string, MapEntry> _clientFilter = new Dictionary<string, MapEntry>(StringComparer.OrdinalIgnoreCase);
            private readonly List<string> _senderTransportGaps = new List<string>();
            private readonly List<string> _clientFilterGaps = new List<string>();

            public Builder(MailOpsConfig config, PostfixPolicyOptions options, string dir)
            {
                _config = config;
                _options = options;
                _dir = dir;
                var used = new HashSet<string>(StringComparer.Ordinal);
                foreach (var relay in config.Relays)
                {
                    var name = TransportName(relay.Name);
                    var unique = name;
                    for (var i = 2; !used.Add(unique); i++)
                    {
                        unique = name + "_" + i.ToString(CultureInfo.InvariantCulture);
                    }

                    _transportOf[relay.Name] = unique;
                }
            }

            public PostfixPolicy Build()
            {
                var firstSecondary = _config.Relays.FirstOrDefault(r => r.Role == RelayRole.Secondary);
                foreach (var flow in _config.Flows)
                {
                    _flows.Add(Decide(flow, firstSecondary));
                }

                // loop guard first: mail a relay we route to hands back to this MTA (for a domain this MTA delivers) is
                // already routed; OK ends the check there instead of sending it through FILTER again (a loop)
                foreach (var relay in _flows.Where(f => f.Route != null && f.Relay != null).Select(f => f.Relay!).Distinct())
                {
                    foreach (var egress in relay.Egress)
                    {
                        var key = egress.ToString();
                        if (!_clientFilter.ContainsKey(key))
                        {
                            _clientFilter[key] = new MapEntry(key, "OK", relay.Name, $"relay {relay.Name}'s egress address: mail it hands back is already routed (OK: no FILTER again, no loop)");
                        }
                    }
                }

                foreach (var f in _flows)
                {
                    AddSenders(f);
                    AddClients(f);
                }

                var parameters = new List<PostfixParameter>();
                parameters.Add(new PostfixParameter("smtpd_client_restrictions", $"check_client_access hash:{_dir}/{PostfixPolicy.ClientFilterMap}", new[]
                {
                    "Client hosts of routed flows (app servers): FILTER to the flow's transport (mailops_client_filter).",
                    "Placed in smtpd_client_restrictions so that it runs for mynetworks and SASL-authenticated clients too: it must",
                    "come before any permit (permit_mynetworks, permit_sasl_authenticated...) of a value you already have, or it never runs.",
                    "With smtpd_delay_reject = yes (the default) it is evaluated at RCPT, before the sender restrictions; when both",
                    "maps match, the sender's FILTER (the later one) wins.",
                }));
                parameters.Add(new PostfixParameter("smtpd_sender_restrictions", $"check_client_access hash:{_dir}/{PostfixPolicy.ClientFilterMap}, check_sender_access hash:{_dir}/{PostfixPolicy.SenderFilterMap}", new[]
                {
                    "Senders of routed flows: FILTER to the flow's transport (mailops_sender_filter). A FILTER overrides transport_maps,",
                    "relayhost and content_filter for every recipient of a message received over SMTP, so bulk mail cannot take the",
                    "primary's path. The client map comes first again: mail handed back by a relay we route to (its egress address,",
                    "OK) is not sent through FILTER a second time. Same ordering caveat: before any permit of an existing value.",
                }));
                parameters.Add(new PostfixParameter("sender_dependent_default_transport_maps", $"hash:{_dir}/{PostfixPolicy.SenderTransportMap}", new[]
                {
                    "Senders of routed flows for mail that smtpd never sees (submitted locally with sendmail): mailops_sender_transport.",
                    "It overrides default_transport only: transport_maps and relay_transport (recipients in relay_domains) still win.",
                }));

                var transports = new List<PolicyRoute>();
                var master = new StringBuilder();
                foreach (var group in _flows.Where(f => f.Route != null).GroupBy(f => f.Route!.Transport).OrderBy(g => g.Key, StringComparer.Ordinal))
                {
                    var relay = group.First().Relay!;
                    var route = group.First().Route!;
                    transports.Add(route);
                    AddTransport(relay, route, group.ToList(), parameters, master);
                }

                AddClientLimits(parameters);

                var decisions = _flows.Select(f => new FlowRouteDecision(f.Flow.Name, f.Flow.Kind, f.Route,
                    f.Notes.Count == 0 ? f.Why : f.Why + " " + string.Join(" ", f.Notes),
                    f.Limits.ToList(), f.Severity, f.Flow.Senders.ToList(), f.Flow.ClientHosts.ToList())).ToList();

                var files = new List<PolicyFile>
                {
                    new PolicyFile(PostfixPolicy.MainCfFragment, MainCf(parameters), false),
                    new PolicyFile(PostfixPolicy.MasterCfFragment, Header("master.cf fragment: one dedicated smtp transport per secondary relay in use. Append it to master.cf.") + (master.Length == 0 ? "# (no flow is routed to a secondary relay: no transport)\n" : master.ToString()), false),
                    new PolicyFile(PostfixPolicy.SenderFilterMap, MapText("check_sender_access table (access(5)): sender -> FILTER transport:nexthop. postmap it after every change.", _senderFilter, Array.Empty<string>()), true),
                    new PolicyFile(PostfixPolicy.SenderTransportMap, MapText("sender_dependent_default_transport_maps table: envelope sender (address, then @domain) -> transport:nexthop. postmap it after every change.", _senderTransport, _senderTransportGaps), true),
                    new PolicyFile(PostfixPolicy.ClientFilterMap, MapText("check_client_access table (access(5)): client address, network or verified name -> FILTER transport:nexthop. postmap it after every change.", _clientFilter, _clientFilterGaps), true),
                    new PolicyFile(PostfixPolicy.Readme, ReadmeText(), false),
                };

                return new PostfixPolicy(files.OrderBy(f => f.Name, StringComparer.Ordinal).ToList(), decisions, parameters,
                    master.ToString(), _dir, transports);
            }

            private FlowState Decide(FlowConfig flow, RelayConfig? firstSecondary)
            {
                var s = new FlowState(flow);
                var automated = flow.Kind != FlowKind.PersonToPerson;
                RelayConfig? relay;
                if (flow.Relay != null)
                {
                    relay = _config.FindRelay(flow.Relay);
                    if (relay == null)
                    {
                        s.Why = $"Its relay '{flow.Relay}' is not in the configuration: it keeps the primary path.";
                        s.Severity = PolicyDecisionSeverity.Warning;
                        return s;
                    }
                }
                else if (flow.Esp != null)
                {
                    s.Why = $"It sends through its ESP ({flow.Esp}), not through this MTA: no map entry (name a relay: if its mail does pass here).";
                    return s;
                }
                else if (automated)
                {
                    relay = firstSecondary;
                    if (relay == null)
                    {
                        s.Why = $"A {flow.Kind} flow goes to the first secondary relay, but the configuration has none: it keeps the primary path.";
                        s.Severity = PolicyDecisionSeverity.Warning;
                        return s;
                    }
                }
                else
                {
                    s.Why = "Person-to-person mail keeps the primary path (no map entry).";
                    return s;
                }

                if (relay.Role == RelayRole.Primary)
                {
                    if (automated)
                    {
                        s.Why = $"A {flow.Kind} flow whose relay: is the primary '{relay.Name}': kept on the primary path (no map entry). Bulk and automated mail should not share the person-to-person relay: give it a secondary relay.";
                        s.Severity = PolicyDecisionSeverity.Warning;
                    }
                    else
                    {
                        s.Why = $"Its relay: is the primary '{relay.Name}': the primary path (no map entry).";
                    }

                    return s;
                }

                if (_options.Refused != null && _options.Refused.TryGetValue(flow.Name, out var refused))
                {
                    s.Why = $"Not moved to '{relay.Name}': the readiness check refused it ({refused}). It keeps the primary path until that is fixed.";
                    s.Severity = PolicyDecisionSeverity.Warning;
                    return s;
                }

                s.Relay = relay;
                s.Route = new PolicyRoute(relay.Name, _transportOf[relay.Name], Nexthop(relay));
                s.Why = flow.Relay != null
                    ? $"Its relay: is '{relay.Name}' (secondary): through {s.Route.Transport}."
                    : $"A {flow.Kind} flow goes to the first secondary relay, '{relay.Name}': through {s.Route.Transport}.";
                if (flow.Senders.Count == 0 && flow.ClientHosts.Count == 0)
                {
                    s.Notes.Add("It names neither senders nor clientHosts, so no map entry can route its mail.");
                    s.Severity = PolicyDecisionSeverity.Warning;
                }

                return s;
            }

            private static string Nexthop(RelayConfig relay)
            {
                var host = relay.Host.Trim().TrimStart('[').TrimEnd(']');
                return "[" + host + "]:" + relay.Port.ToString(CultureInfo.InvariantCulture);
            }

            private static void Put(Dictionary<string, MapEntry> map, MapEntry entry, FlowState f)
            {
                if (map.TryGetValue(entry.Key, out var existing))
                {
                    if (!string.Equals(existing.Value, entry.Value, StringComparison.Ordinal) && !string.Equals(existing.Flow, entry.Flow, StringComparison.OrdinalIgnoreCase))
                    {
                        f.Notes.Add($"Its key '{entry.Key}' is already taken by the flow '{existing.Flow}' ({existing.Value}), which wins (earlier in the configuration).");
                        f.Severity = PolicyDecisionSeverity.Warning;
                    }

                    return;
                }

                map[entry.Key] = entry;
            }

            private void AddSenders(FlowState f)
            {
                var routed = f.Route != null;
                var label = $"flow {f.Flow.Name} ({f.Flow.Kind})";
                var filterValue = routed ? "FILTER " + f.Route!.Target : "DUNNO";
                var transportValue = routed ? f.Route!.Target : "DUNNO";
                var keep = routed ? "" : " keeps the primary path: DUNNO stops the lookup here, so no routed key of a parent domain catches it";
                foreach (var raw in f.Flow.Senders)
                {
                    var sender = raw.Trim().ToLowerInvariant();
                    if (sender.StartsWith("*.", StringComparison.Ordinal))
                    {
                        var parent = sender.Substring(2);
                        if (_options.AccessMapsMatchSubdomains)
                        {
                            Put(_senderFilter, new MapEntry(parent, filterValue, f.Flow.Name,
                                $"{label}: '{raw}'{keep}; key '{parent}' matches senders @{parent} and @any subdomain (parent_domain_matches_subdomains lists smtpd_access_maps, Postfix's default), so {parent} itself is caught too"), f);
                            if (routed)
                            {
                                f.Notes.Add($"'{raw}' also catches {parent} itself in mailops_sender_filter (Postfix's parent_domain_matches_subdomains default; remove smtpd_access_maps from it for an exact '.{parent}' key).");
                            }
                        }
                        else
                        {
                            Put(_senderFilter, new MapEntry("." + parent, filterValue, f.Flow.Name,
                                $"{label}: '{raw}'{keep}; key '.{parent}' matches senders @any subdomain of {parent}, not {parent} itself"), f);
                        }

                        _senderTransportGaps.Add($"{label}: '{raw}' cannot be a key here (this table is looked up by the whole address and @domain only, never a parent domain): mail submitted locally from its subdomains takes the default path; over SMTP mailops_sender_filter routes it.");
                        if (routed)
                        {
                            f.Notes.Add($"Mail submitted locally (sendmail) from '{raw}' is not routed: hash tables cannot match subdomains in sender_dependent_default_transport_maps.");
                            f.Severity = PolicyDecisionSeverity.Warning;
                        }

                        continue;
                    }

                    var at = sender.IndexOf('@');
                    if (at > 0)
                    {
                        Put(_senderFilter, new MapEntry(sender, filterValue, f.Flow.Name, $"{label}: key '{sender}' matches this sender address (and {sender.Substring(0, at)}+anything@{sender.Substring(at + 1)})" + keep), f);
                        Put(_senderTransport, new MapEntry(sender, transportValue, f.Flow.Name, $"{label}: key '{sender}' matches this sender address" + keep), f);
                    }
                    else
                    {
                        var domain = at == 0 ? sender.Substring(1) : sender;
                        var sub = _options.AccessMapsMatchSubdomains ? $" and every subdomain (Postfix's default parent_domain_matches_subdomains; a more specific key wins)" : " (not its subdomains)";
                        Put(_senderFilter, new MapEntry(domain, filterValue, f.Flow.Name, $"{label}: key '{domain}' matches every sender @{domain}{sub}" + keep), f);
                        Put(_senderTransport, new MapEntry("@" + domain, transportValue, f.Flow.Name, $"{label}: key '@{domain}' matches every sender @{domain} (not its subdomains)" + keep), f);
                    }
                }
            }

            private void AddClients(FlowState f)
            {
                var label = $"flow {f.Flow.Name} ({f.Flow.Kind})";
                var value = f.Route != null ? "FILTER " + f.Route.Target : "DUNNO";
                var keep = f.Route != null ? "" : " keeps the primary path (DUNNO: no shorter key is tried)";
                foreach (var raw in f.Flow.ClientHosts)
                {
                    var host = raw.Trim().ToLowerInvariant();
                    var key = ClientKey(host, out var what);
                    if (key == null)
                    {
                        _clientFilterGaps.Add($"{label}: '{raw}' {what}");
                        f.Notes.Add($"Its client host '{raw}' {what}");
                        f.Severity = PolicyDecisionSeverity.Warning;
                        continue;
                    }

                    Put(_clientFilter, new MapEntry(key, value, f.Flow.Name, $"{label}: key '{key}' matches {what}" + keep), f);
                }
            }

            /// <summary>The hash access-map key of a client host, or null (with the reason) when hash tables cannot express it.</summary>
            private string? ClientKey(string host, out string what)
            {
                var slash = host.IndexOf('/');
                var address = slash < 0 ? host : host.Substring(0, slash);
                if (IPAddress.TryParse(address, out var ip))
                {
                    var bits = ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128;
                    var prefix = bits;
                    if (slash >= 0 && !int.TryParse(host.Substring(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out prefix))
                    {
                        what = "is not an address or network: not in the map.";
                        return null;
                    }

                    if (prefix == bits)
                    {
                        what = "this client address";
                        return ip.ToString();
                    }

                    if (bits == 32 && prefix % 8 == 0 && prefix > 0)
                    {
                        var octets = ip.GetAddressBytes().Take(prefix / 8).Select(b => b.ToString(CultureInfo.InvariantCulture));
                        var key = string.Join(".", octets);
                        what = $"the clients in {host}";
                        return key;
                    }

                    what = $"is a network not on an octet boundary (or IPv6): a hash table cannot express it; add it to a cidr: table of your own. Not in the map.";
                    return null;
                }

                what = _options.AccessMapsMatchSubdomains
                    ? "a client whose verified reverse name is this name or a subdomain of it (parent_domain_matches_subdomains default)"
                    : "a client whose verified reverse name is this name";
                return host.TrimEnd('.');
            }

            private static bool Applies(ThresholdConfig t, string? relay, List<FlowConfig> flows)
            {
                if (t.Baseline || (t.Metric != "messages" && t.Metric != "recipients") || (t.Per != "minute" && t.Per != "hour") || t.Limit <= 0)
                {
                    return false;
                }

                switch (t.Scope)
                {
                    case "flow":
                        return t.Match == null ? flows.Count > 0 : flows.Any(f => string.Equals(f.Name, t.Match, StringComparison.OrdinalIgnoreCase));
                    case "relay":
                        return relay != null && (t.Match == null || string.Equals(t.Match, relay, StringComparison.OrdinalIgnoreCase));
                    case "sender":
                        return t.Match == null ? flows.Any(f => f.Senders.Count > 0) :
                            flows.Any(f => f.Senders.Any(s => SenderMatches(s, t.Match)));
                    default:
                        return false;
                }
            }

            private static bool SenderMatches(string sender, string match)
            {
                var s = sender.Trim().ToLowerInvariant();
                var m = match.Trim().ToLowerInvariant();
                if (s == m)
                {
                    return true;
                }

                var domain = s.StartsWith("@", StringComparison.Ordinal) ? s.Substring(1) : s;
                var md = m.Substring(m.IndexOf('@') + 1);
                return !s.Contains("@") || s.StartsWith("@", StringComparison.Ordinal)
                    ? string.Equals(domain, md, StringComparison.Ordinal) || (domain.StartsWith("*.", StringComparison.Ordinal) && md.EndsWith(domain.Substring(1), StringComparison.Ordinal))
                    : false;
            }

            private static double PerSecond(ThresholdConfig t) => t.Limit / PeriodSeconds(t.Per);

            private static string Describe(ThresholdConfig t) =>
                $"threshold '{t.Name}' (scope {t.Scope}{(t.Match != null ? ", match " + t.Match : "")}): {t.Limit.ToString(CultureInfo.InvariantCulture)} {t.Metric} per {t.Per}";

            private void AddTransport(RelayConfig relay, PolicyRoute route, List<FlowState> flows, List<PostfixParameter> parameters, StringBuilder master)
            {
                var t = route.Transport;
                var flowNames = string.Join(", ", flows.Select(f => $"{f.Flow.Name} ({f.Flow.Kind})").OrderBy(x => x, StringComparer.Ordinal));
                master.Append("# relay '").Append(relay.Name).Append("' (").Append(relay.Host).Append(':').Append(relay.Port.ToString(CultureInfo.InvariantCulture))
                    .Append(", ").Append(relay.Role).Append(") for the flows: ").Append(flowNames).Append('\n');
                if (relay.Credential != null)
                {
                    master.Append("# this relay expects AUTH (credential '").Append(relay.Credential)
                        .Append("'): MailOps never writes secrets; add -o smtp_sasl_auth_enable=yes and -o smtp_sasl_password_maps=... yourself\n");
                }

                master.Append(t).Append(" unix - - n - - smtp\n");
                master.Append("  -o syslog_name=postfix/").Append(t).Append('\n');
                if (!string.IsNullOrWhiteSpace(relay.HeloName))
                {
                    master.Append("  -o smtp_helo_name=").Append(relay.HeloName!.Trim()).Append('\n');
                }

                var wrapper = relay.Security == SmtpSecurity.SslOnConnect || (relay.Security == SmtpSecurity.Auto && relay.Port == 465);
                var level = wrapper || relay.Security == SmtpSecurity.StartTls ? "encrypt" : relay.Security == SmtpSecurity.None ? "none" : "may";
                if (wrapper)
                {
                    master.Append("  -o smtp_tls_wrappermode=yes\n");
                }

                master.Append("  -o smtp_tls_security_level=").Append(level).Append('\n');

                var flowConfigs = flows.Select(f => f.Flow).ToList();
                var applicable = _config.Thresholds.Where(x => Applies(x, relay.Name, flowConfigs)).ToList();
                var tightest = applicable.OrderBy(PerSecond).ThenBy(x => x.Name, StringComparer.Ordinal).FirstOrDefault();
                string? limitText = null;
                if (tightest == null)
                {
                    var c = _options.DefaultConcurrency;
                    parameters.Add(new PostfixParameter(t + "_destination_concurrency_limit", c.ToString(CultureInfo.InvariantCulture), new[]
                    {
                        $"Transport {t} (relay '{relay.Name}'; flows {flowNames}): no messages/recipients threshold per minute or hour",
                        $"applies to these flows or this relay, so no rate delay; {c} parallel deliveries (the generator's default).",
                    }));
                    parameters.Add(new PostfixParameter(t + "_initial_destination_concurrency", Math.Min(_options.InitialConcurrency, c).ToString(CultureInfo.InvariantCulture), new[] { $"Transport {t}: start with this many parallel deliveries." }));
                    limitText = $"{t}: no rate delay (no threshold), concurrency {c}";
                }
                else
                {
                    var period = PeriodSeconds(tightest.Per);
                    var delay = Math.Max(1, (int)Math.Ceiling(period / tightest.Limit - 1e-9));
                    var others = applicable.Where(x => !ReferenceEquals(x, tightest)).Select(x => x.Name).OrderBy(x => x, StringComparer.Ordinal).ToList();
                    parameters.Add(new PostfixParameter(t + "_destination_concurrency_limit", "1", new[]
                    {
                        $"Transport {t} (relay '{relay.Name}'; flows {flowNames}): Postfix delivers one at a time when a rate delay is set;",
                        "saying 1 makes it explicit. All of the transport's mail has one destination (the relay), so the limits below cover it all.",
                    }));
                    parameters.Add(new PostfixParameter(t + "_initial_destination_concurrency", "1", new[] { $"Transport {t}: one delivery at a time from the start." }));
                    var why = new List<string>
                    {
                        $"Transport {t}: from the tightest {Describe(tightest)}",
                        $"-> one delivery every {period}s / {tightest.Limit.ToString(CultureInfo.InvariantCulture)} = {(period / tightest.Limit).ToString("0.###", CultureInfo.InvariantCulture)}s, rounded up to whole seconds (at least 1s).",
                    };
                    if (others.Count > 0)
                    {
                        why.Add("Looser thresholds on the same mail: " + string.Join(", ", others) + ".");
                    }

                    parameters.Add(new PostfixParameter(t + "_destination_rate_delay", FormatDelay(delay), why));
                    limitText = $"{t}: one delivery every {FormatDelay(delay)} (from {Describe(tightest)})";
                    if (tightest.Metric == "recipients")
                    {
                        parameters.Add(new PostfixParameter(t + "_destination_recipient_limit", "1", new[]
                        {
                            $"Transport {t}: the threshold '{tightest.Name}' counts recipients, so each delivery carries one recipient and the rate",
                            "delay paces recipients, not messages of up to 50 recipients.",
                        }));
                        limitText += ", one recipient per delivery";
                    }
                }

                foreach (var f in flows)
                {
                    f.Limits.Add(limitText);
                }
            }

            private void AddClientLimits(List<PostfixParameter> parameters)
            {
                // candidates: client thresholds, and the thresholds of routed flows whose client hosts hand mail in
                var clientFlows = _flows.Where(f => f.Flow.ClientHosts.Count > 0 && f.Flow.Kind != FlowKind.PersonToPerson).ToList();
                var candidates = new List<(ThresholdConfig Rule, string Source)>();
                foreach (var t in _config.Thresholds)
                {
                    if (t.Baseline || (t.Metric != "messages" && t.Metric != "recipients") || (t.Per != "minute" && t.Per != "hour") || t.Limit <= 0)
                    {
                        continue;
                    }

                    if (t.Scope == "client")
                    {
                        candidates.Add((t, "client"));
                    }
                    else if (t.Scope == "flow")
                    {
                        var hit = clientFlows.Where(f => t.Match == null || string.Equals(t.Match, f.Flow.Name, StringComparison.OrdinalIgnoreCase)).Select(f => f.Flow.Name).ToList();
                        if (hit.Count > 0)
                        {
                            candidates.Add((t, "flow " + string.Join(", ", hit)));
                        }
                    }
                }

                if (candidates.Count == 0)
                {
                    return;
                }

                var messages = candidates.Where(c => c.Rule.Metric == "messages").OrderBy(c => PerSecond(c.Rule)).ThenBy(c => c.Rule.Name, StringComparer.Ordinal).FirstOrDefault();
                var recipients = candidates.Where(c => c.Rule.Metric == "recipients").OrderBy(c => PerSecond(c.Rule)).ThenBy(c => c.Rule.Name, StringComparer.Ordinal).FirstOrDefault();
                var chosen = new[] { messages, recipients }.Where(c => c.Rule != null).ToList();
                var unit = chosen.Min(c => PeriodSeconds(c.Rule.Per));
                parameters.Add(new PostfixParameter("anvil_rate_time_unit", unit.ToString(CultureInfo.InvariantCulture) + "s", new[]
                {
                    "Client limits (anvil): one time unit for every smtpd_client_*_rate_limit, the shortest period of the thresholds below.",
                    "It also applies to smtpd_client_connection_rate_limit and the other anvil rate limits you may have.",
                }));
                var applied = new List<string>();
                foreach (var (c, parameter) in new[] { (messages, "smtpd_client_message_rate_limit"), (recipients, "smtpd_client_recipient_rate_limit") })
                {
                    if (c.Rule == null)
                    {
                        continue;
                    }

                    var period = PeriodSeconds(c.Rule.Per);
                    var value = Math.Max(1, (int)Math.Floor(c.Rule.Limit * unit / period + 1e-9));
                    var comments = new List<string>
                    {
                        $"From {Describe(c.Rule)} ({c.Source}).",
                        "Postfix counts per client but has one value for all clients: this is the tightest such threshold, and every client",
                        "not in smtpd_client_event_limit_exceptions gets it.",
                    };
                    if (period != unit)
                    {
                        comments.Add($"Converted to the time unit of {unit}s: {c.Rule.Limit.ToString(CultureInfo.InvariantCulture)} per {period}s -> {value} per {unit}s (rounded down).");
                    }

                    var looser = candidates.Where(x => x.Rule.Metric == c.Rule.Metric && !ReferenceEquals(x.Rule, c.Rule)).Select(x => x.Rule.Name).Distinct().OrderBy(x => x, StringComparer.Ordinal).ToList();
                    if (looser.Count > 0)
                    {
                        comments.Add("Looser thresholds not applied separately: " + string.Join(", ", looser) + ".");
                    }

                    parameters.Add(new PostfixParameter(parameter, value.ToString(CultureInfo.InvariantCulture), comments));
                    applied.Add($"{parameter} = {value} per {unit}s (from threshold '{c.Rule.Name}')");
                }

                // our own relays (those routed to) hand mail back for the domains this MTA delivers: never throttle them
                var relayEgress = _flows.Where(f => f.Route != null && f.Relay != null).Select(f => f.Relay!).Distinct()
                    .SelectMany(r => r.Egress.Select(e => e.ToString())).ToList();
                var exempt = _flows.Where(f => f.Flow.Kind == FlowKind.PersonToPerson).SelectMany(f => f.Flow.ClientHosts).Concat(relayEgress)
                    .Select(h => h.Trim().ToLowerInvariant()).Where(h => h.Length > 0).Distinct(StringComparer.Ordinal).OrderBy(h => h, StringComparer.Ordinal).ToList();
                parameters.Add(new PostfixParameter("smtpd_client_event_limit_exceptions", string.Join(", ", exempt), new[]
                {
                    "Clients in smtpd_authorized_xclient_hosts are exempt whatever this says (Postfix's rule): keep XCLIENT to the hosts that need it.",
                    "Set explicitly: Postfix exempts $mynetworks by default, which would make the limits above do nothing for internal",
                    exempt.Count > 0
                        ? "app servers. Exempt: only the client hosts of person-to-person flows (" + string.Join(", ", _flows.Where(f => f.Flow.Kind == FlowKind.PersonToPerson && f.Flow.ClientHosts.Count > 0).Select(f => f.Flow.Name))
                            + ")" + (relayEgress.Count > 0 ? " and the egress addresses of the relays routed to (" + string.Join(", ", relayEgress) + "), which hand mail back." : ".")
                        : "app servers. Nothing is exempt: no person-to-person flow names client hosts.",
                }));

                foreach (var f in clientFlows)
                {
                    f.Limits.AddRange(applied.Select(a => "clients " + string.Join(", ", f.Flow.ClientHosts) + ": " + a));
                }
            }

            private string Header(string what)
            {
                var sb = new StringBuilder();
                sb.Append("# MailOps routing policy for Postfix: ").Append(what).Append('\n');
                sb.Append("# Generated by Export-MailRoutingPolicy").Append(_options.GeneratorVersion != null ? " " + _options.GeneratorVersion : "")
                    .Append(" from the configuration's flows, relays and thresholds: regenerate rather than edit.\n");
                if (_options.Timestamp)
                {
                    sb.Append(PostfixPolicy.TimestampPrefix).Append((_options.Now ?? DateTimeOffset.UtcNow).ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)).Append('\n');
                }

                sb.Append('\n');
                return sb.ToString();
            }

            private string MainCf(List<PostfixParameter> parameters)
            {
                var sb = new StringBuilder(Header($"main.cf fragment. The maps live in {_dir}. Add these lines to main.cf (or run Export-MailRoutingPolicy -Apply)."));
                foreach (var p in parameters)
                {
                    foreach (var c in p.Comments)
                    {
                        sb.Append("# ").Append(c).Append('\n');
                    }

                    sb.Append(p.Name).Append(" = ").Append(p.Value).Append("\n\n");
                }

                return sb.ToString();
            }

            private string MapText(string what, Dictionary<string, MapEntry> map, IReadOnlyCollection<string> gaps)
            {
                var sb = new StringBuilder(Header(what));
                foreach (var gap in gaps.Distinct(StringComparer.Ordinal).OrderBy(g => g, StringComparer.Ordinal))
                {
                    sb.Append("# not here: ").Append(gap).Append('\n');
                }

                if (gaps.Count > 0)
                {
                    sb.Append('\n');
                }

                if (map.Count == 0)
                {
                    sb.Append("# (no entry)\n");
                }

                foreach (var e in map.Values.OrderBy(e => e.Key, StringComparer.Ordinal))
                {
                    sb.Append("# ").Append(e.Comment).Append('\n');
                    sb.Append(e.Key).Append(' ').Append(e.Value).Append('\n');
                }

                return sb.ToString();
            }

            private string ReadmeText()
            {
                var sb = new StringBuilder(Header("how to include these files by hand."));
                sb.Append(
$@"Files
  main.cf.fragment          main.cf parameters (each with a comment saying which flow or threshold it comes from)
  master.cf.fragment        one dedicated smtp transport per secondary relay in use (mailops_<relay>)
  mailops_sender_filter     check_sender_access table: sender -> FILTER mailops_<relay>:[host]:port
  mailops_sender_transport  sender_dependent_default_transport_maps table: sender -> mailops_<relay>:[host]:port
  mailops_client_filter     check_client_access table: app server -> FILTER mailops_<relay>:[host]:port

By hand (as root, CONF = the directory of main.cf):
  1. Copy the three mailops_* tables to {_dir} (main.cf names them there) and run
       postmap hash:{_dir}/mailops_sender_filter
       postmap hash:{_dir}/mailops_sender_transport
       postmap hash:{_dir}/mailops_client_filter
  2. Append master.cf.fragment to CONF/master.cf (or replace the block between the MailOps markers).
  3. Set every parameter of main.cf.fragment, for example with postconf -c CONF -e 'name = value'.
     smtpd_client_restrictions and smtpd_sender_restrictions: if main.cf already has a value, put the MailOps
     check_*_access entry FIRST, before any permit (permit_mynetworks, permit_sasl_authenticated...), or it never
     runs for trusted clients; keep the rest of your value after it.
  4. postfix -c CONF check (it must print nothing), then postfix -c CONF reload.

Export-MailRoutingPolicy -Apply -PostfixConfig CONF does all of this, keeps a backup in CONF/mailops-backup-<time>/,
refuses to reload when postfix check fails (and restores the backup), and -Rollback restores the latest backup.

What routes what
  - Mail received over SMTP from a routed sender: the FILTER of mailops_sender_filter, for every recipient of the
    message (it overrides transport_maps and relayhost). From a routed app server: mailops_client_filter. When both
    match, the sender's FILTER (evaluated later) wins.
  - Mail submitted locally (sendmail, pickup): sender_dependent_default_transport_maps. It overrides default_transport
    only: recipients matched by transport_maps, and those in relay_domains (relay_transport), keep their route.
  - Person-to-person senders have DUNNO entries: the lookup stops there, and they keep the primary path.
  - mailops_<relay>_destination_rate_delay paces the transport from the tightest threshold (period / limit, whole
    seconds); smtpd_client_*_rate_limit defers clients over their limit with Postfix's own 450 4.7.1 reply.
");
                return sb.ToString();
            }
        }
    }
}
