using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Config;
using MailOps.Core.Dmarc;
using MailOps.Core.Dns;
using MailOps.Core.Providers;
using MailOps.Core.Spf;
using MailOps.Core.Traffic;

namespace MailOps.Core.Inventory
{
    /// <summary>What the inventory covers and how hard it may work.</summary>
    public sealed class FlowInventoryOptions
    {
        /// <summary>The sender domains to inventory. Default: the configuration's domains and every declared flow's sender domains.</summary>
        public IReadOnlyCollection<string>? Domains { get; set; }

        /// <summary>Only DMARC reports whose period ends after this time count (logs are filtered by the caller's aggregator).</summary>
        public DateTimeOffset? Since { get; set; }

        /// <summary>How many domains (and DMARC source addresses) are looked up at once.</summary>
        public int MaxConcurrency { get; set; } = 16;

        /// <summary>A sender matched only by a person-to-person flow's domain is flagged past this many recipients.</summary>
        public long BulkRecipientThreshold { get; set; } = 500;

        /// <summary>A flow's DMARC pass rate below this (over at least <see cref="MinDmarcMessages"/> messages) is a finding.</summary>
        public double MinDmarcPassRate { get; set; } = 0.95;

        public long MinDmarcMessages { get; set; } = 10;
    }

    /// <summary>
    /// Reconciles the three views of the email flows that send as your domains: declared (the configuration), authorised
    /// (DNS: SPF tree, DKIM selectors, DMARC policy, MX hosting) and observed (MTA logs and the send journal through the
    /// traffic aggregator; DMARC aggregate reports). Feed it observations, then call <see cref="BuildAsync"/> once.
    /// </summary>
    public sealed class FlowInventoryBuilder
    {
        // local parts that say "a program sends this", not a person
        private static readonly string[] AutomatedLocalParts =
        {
            "noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply", "notification", "notifications", "notify",
            "newsletter", "newsletters", "news", "mailer", "mailer-daemon", "bounce", "bounces", "alert", "alerts", "system", "robot",
            "automated", "auto", "marketing", "campaign", "campaigns", "info", "billing", "invoice", "invoices", "orders", "order", "shop", "crm",
        };

        private readonly MailOpsConfig _config;
        private readonly IDnsResolver _dns;
        private readonly ProviderCatalog _catalog;
        private readonly FlowInventoryOptions _options;
        private readonly FlowMatcher _matcher;
        private readonly Dictionary<string, ObservedSender> _senders = new Dictionary<string, ObservedSender>(StringComparer.OrdinalIgnoreCase);
        private readonly Dictionary<string, Dictionary<string, long>> _clientsBySender = new Dictionary<string, Dictionary<string, long>>(StringComparer.OrdinalIgnoreCase);
        private readonly Dictionary<string, Dictionary<string, long>> _relaysBySender = new Dictionary<string, Dictionary<string, long>>(StringComparer.OrdinalIgnoreCase);
        private readonly Dictionary<(string Domain, string Ip), DmarcSource> _sources = new Dictionary<(string, string), DmarcSource>();
        private readonly HashSet<string> _domains;

        public FlowInventoryBuilder(MailOpsConfig config, IDnsResolver dns, ProviderCatalog catalog, FlowInventoryOptions? options = null)
        {
            _config = config ?? throw new ArgumentNullException(nameof(config));
            _dns = dns ?? throw new ArgumentNullException(nameof(dns));
            _catalog = catalog ?? throw new ArgumentNullException(nameof(catalog));
            _options = options ?? new FlowInventoryOptions();
            _matcher = new FlowMatcher(config.Flows);
            _domains = new HashSet<string>(
                (_options.Domains != null && _options.Domains.Count > 0 ? _options.Domains : DefaultDomains(config)).Select(Normalise).Where(d => d.Length > 0),
                StringComparer.OrdinalIgnoreCase);
        }

        /// <summary>The sender domains the inventory covers.</summary>
        public IReadOnlyCollection<string> Domains => _domains;

        /// <summary>True once logs or the journal were read (then a declared flow nobody saw is Silent, not NotObserved).</summary>
        public bool LogsRead { get; private set; }

        /// <summary>True once DMARC reports were read.</summary>
        public bool DmarcRead { get; private set; }

        /// <summary>DMARC reports counted, and those skipped because they were about other domains or before -Since.</summary>
        public int DmarcReports { get; private set; }
        public int DmarcReportsSkipped { get; private set; }

        /// <summary>The configuration's domains and every declared flow's sender domains.</summary>
        public static IEnumerable<string> DefaultDomains(MailOpsConfig config) =>
            (config ?? throw new ArgumentNullException(nameof(config))).Domains.Select(d => d.Name)
                .Concat(config.Flows.SelectMany(f => f.Senders.Select(SenderDomain)).Where(d => d != null).Select(d => d!))
                .Distinct(StringComparer.OrdinalIgnoreCase);

        /// <summary>The domain a declared sender pattern names (x@d, @d, d, *.d), or null.</summary>
        public static string? SenderDomain(string pattern)
        {
            var v = (pattern ?? "").Trim();
            if (v.StartsWith("*.", StringComparison.Ordinal))
            {
                v = v.Substring(2);
            }

            var at = v.LastIndexOf('@');
            v = at >= 0 ? v.Substring(at + 1) : v;
            return v.Length == 0 || v.IndexOf('.') < 0 ? null : v.ToLowerInvariant();
        }

        /// <summary>
        /// Adds the traffic rows of an aggregator run with the dimensions Sender, Client and Relay (any bucket): the senders
        /// seen, their volumes, the clients and relays behind them.
        /// </summary>
        public void AddTraffic(IEnumerable<TrafficRow> rows)
        {
            if (rows == null)
            {
                throw new ArgumentNullException(nameof(rows));
            }

            LogsRead = true;
            foreach (var row in rows)
            {
                switch (row.Dimension)
                {
                    case TrafficDimension.Sender:
                    {
                        if (row.Key == "<>" || row.Key.IndexOf('@') <= 0)
                        {
                            break; // bounces (null sender) and local names are not flows
                        }

                        if (!_senders.TryGetValue(row.Key, out var s))
                        {
                            _senders[row.Key] = s = new ObservedSender(row.Key.ToLowerInvariant());
                        }

                        s.Messages += row.Messages;
                        s.Recipients += row.Recipients;
                        s.Delivered += row.Delivered;
                        s.Deferred += row.Deferred;
                        s.Bounced += row.Bounced + row.Expired;
                        s.Rejected += row.Rejected;
                        if (s.FirstSeen == null || row.Start < s.FirstSeen)
                        {
                            s.FirstSeen = row.Start;
                        }

                        if (s.LastSeen == null || row.End > s.LastSeen)
                        {
                            s.LastSeen = row.End;
                        }

                        var flow = row.FlowCounts.Where(f => f.Key != "(none)").OrderByDescending(f => f.Value).Select(f => f.Key).FirstOrDefault();
                        if (flow != null)
                        {
                            s.Flow = flow;
                        }

                        break;
                    }

                    case TrafficDimension.Client:
                        Merge(_clientsBySender, row.Key, row.SenderCounts);
                        break;
                    case TrafficDimension.Relay:
                        Merge(_relaysBySender, row.Key, row.SenderCounts);
                        break;
                }
            }
        }

        private static void Merge(Dictionary<string, Dictionary<string, long>> into, string key, Dictionary<string, long> senders)
        {
            foreach (var s in senders)
            {
                if (!into.TryGetValue(s.Key, out var d))
                {
                    into[s.Key] = d = new Dictionary<string, long>(StringComparer.OrdinalIgnoreCase);
                }

                d.TryGetValue(key, out var n);
                d[key] = n + s.Value;
            }
        }

        /// <summary>
        /// Adds one DMARC aggregate report: its records for the covered domains are summed per header From domain and source
        /// address (memory grows with distinct sources, not with reports). Returns false when the report was skipped.
        /// </summary>
        public bool AddDmarcReport(DmarcAggregateReport report)
        {
            if (report == null)
            {
                throw new ArgumentNullException(nameof(report));
            }

            DmarcRead = true;
            if (_options.Since.HasValue && report.DateEnd < _options.Since.Value)
            {
                DmarcReportsSkipped++;
                return false;
            }

            var used = false;
            foreach (var r in report.Records)
            {
                var domain = Normalise(r.HeaderFrom.Length > 0 ? r.HeaderFrom : report.PolicyDomain);
                if (!Covers(domain) || r.SourceIp == null)
                {
                    continue;
                }

                used = true;
                var key = (domain, r.SourceIp.ToString());
                if (!_sources.TryGetValue(key, out var s))
                {
                    _sources[key] = s = new DmarcSource(domain, r.SourceIp);
                }

                s.Messages += r.Count;
                var dkim = string.Equals(r.PolicyDkim, "pass", StringComparison.OrdinalIgnoreCase);
                var spf = string.Equals(r.PolicySpf, "pass", StringComparison.OrdinalIgnoreCase);
                if (dkim)
                {
                    s.DkimAligned += r.Count;
                }

                if (spf)
                {
                    s.SpfAligned += r.Count;
                }

                if (dkim || spf)
                {
                    s.DmarcPass += r.Count;
                }

                if (string.Equals(r.Disposition, "quarantine", StringComparison.OrdinalIgnoreCase))
                {
                    s.Quarantined += r.Count;
                }
                else if (string.Equals(r.Disposition, "reject", StringComparison.OrdinalIgnoreCase))
                {
                    s.Rejected += r.Count;
                }

                foreach (var d in r.DkimResults)
                {
                    if (d.Domain.Length > 0)
                    {
                        s._dkimDomains.Add(d.Domain.ToLowerInvariant());
                    }
                }

                foreach (var d in r.SpfResults)
                {
                    if (d.Domain.Length > 0)
                    {
                        s._spfDomains.Add(d.Domain.ToLowerInvariant());
                    }
                }

                if (report.OrgName.Length > 0)
                {
                    s._reporters.Add(report.OrgName);
                }

                if (s.FirstSeen == null || report.DateBegin < s.FirstSeen)
                {
                    s.FirstSeen = report.DateBegin;
                }

                if (s.LastSeen == null || report.DateEnd > s.LastSeen)
                {
                    s.LastSeen = report.DateEnd;
                }
            }

            if (used)
            {
                DmarcReports++;
            }
            else
            {
                DmarcReportsSkipped++;
            }

            return used;
        }

        private bool Covers(string domain) => _domains.Contains(domain);

        private static string Normalise(string domain) => (domain ?? "").Trim().TrimEnd('.').ToLowerInvariant();

        /// <summary>
        /// Looks up every covered domain (SPF tree, DKIM selectors, DMARC policy, hosting) and every DMARC source (PTR,
        /// origin AS), concurrently and bounded, then reconciles: one item per declared flow, per undeclared path seen
        /// (shadow flows), and per service authorised but neither declared nor seen. <paramref name="progress"/> is called
        /// with (what, done, total) from any thread.
        /// </summary>
        public async Task<IReadOnlyList<EmailFlowInventoryItem>> BuildAsync(Action<string, int, int>? progress, CancellationToken cancellationToken)
        {
            var attribution = new MailProviderResolver(_dns, _catalog, _config.Dns.AsnZone, _config.Dns.AsnZone6);
            var domains = _domains.OrderBy(d => d, StringComparer.Ordinal).ToList();
            var auth = new ConcurrentDictionary<string, DomainAuthorisation>(StringComparer.OrdinalIgnoreCase);
            var done = 0;
            var total = domains.Count + _sources.Count;
            using (var gate = new SemaphoreSlim(Math.Max(1, _options.MaxConcurrency)))
            {
                var work = domains.Select(async d =>
                {
                    await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
                    try
                    {
                        auth[d] = await LookUpDomainAsync(d, attribution, cancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        gate.Release();
                    }

                    progress?.Invoke(d, Interlocked.Increment(ref done), total);
                }).Concat(_sources.Values.Select(async s =>
                {
                    await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
                    try
                    {
                        await NameSourceAsync(s, attribution, cancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        gate.Release();
                    }

                    progress?.Invoke(s.Address.ToString(), Interlocked.Increment(ref done), total);
                })).ToList();
                await Task.WhenAll(work).ConfigureAwait(false);
            }

            return await ReconcileAsync(auth, cancellationToken).ConfigureAwait(false);
        }

        private async Task<DomainAuthorisation> LookUpDomainAsync(string domain, MailProviderResolver attribution, CancellationToken cancel)
        {
            var result = new DomainAuthorisation(domain);
            var configured = _config.Domains.Where(d => string.Equals(d.Name, domain, StringComparison.OrdinalIgnoreCase)).SelectMany(d => d.DkimSelectors).ToList();
            var spf = new SpfTreeBuilder(_dns, _catalog).BuildAsync(domain, cancel);
            var dkim = new DkimSelectorProbe(_dns, _catalog).ProbeAsync(domain, configured, cancel);
            var dmarc = DmarcPolicyLookup.LookupAsync(_dns, domain, cancel);
            MailProviderResult? hosting = null;
            var hostingTask = attribution.ResolveManyAsync(new[] { domain }, 1, null, false, r => hosting = r, cancel);
            await Task.WhenAll(spf, dkim, dmarc, hostingTask).ConfigureAwait(false);
            result.Spf = spf.Result;
            result.Dkim = dkim.Result;
            result.Dmarc = dmarc.Result;
            result.Hosting = hosting;
            result.AuthorisedServices = result.Spf.Services.Select(s => s.Name).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
            result.DkimSelectors = result.Dkim.Found.Where(k => k.IsUsable).Select(k => k.Selector).ToList();
            return result;
        }

        private async Task NameSourceAsync(DmarcSource s, MailProviderResolver attribution, CancellationToken cancel)
        {
            var relay = _config.Relays.FirstOrDefault(r => r.Egress.Any(e => e.Equals(s.Address)));
            var ptr = await _dns.QueryPtrAsync(s.Address, cancel).ConfigureAwait(false);
            if (ptr.IsOk && ptr.Records.Count > 0)
            {
                s.Ptr = ptr.Records[0].TrimEnd('.');
            }

            var asn = await attribution.OriginAsAsync(s.Address, cancel).ConfigureAwait(false);
            s.Asn = asn.Asn;
            if (relay != null)
            {
                s.Relay = relay.Name;
                s.Service = "relay " + relay.Name;
                s.ServiceEvidence = $"egress address of relay '{relay.Name}'";
                return;
            }

            if (s.Ptr != null)
            {
                var byPtr = _catalog.MatchPtr(s.Ptr);
                if (byPtr.Count > 0)
                {
                    s.Service = byPtr[0].Name;
                    s.ServiceEvidence = $"PTR {s.Ptr} matches {byPtr[0].Pattern}";
                    return;
                }
            }

            if (s.Asn > 0)
            {
                var byAsn = _catalog.MatchAsn(s.Asn);
                if (byAsn.Count == 1)
                {
                    s.Service = byAsn[0].Name;
                    s.ServiceEvidence = $"origin AS{s.Asn.ToString(CultureInfo.InvariantCulture)} belongs to {byAsn[0].Name}";
                }
            }
        }

        private async Task<IReadOnlyList<EmailFlowInventoryItem>> ReconcileAsync(ConcurrentDictionary<string, DomainAuthorisation> auth, CancellationToken cancel)
        {
            var items = new List<EmailFlowInventoryItem>();
            var observed = LogsRead || DmarcRead;
            var claimedSources = new HashSet<DmarcSource>();
            var declaredServices = new HashSet<(string Domain, string Service)>();
            var evaluator = new SpfEvaluator(_dns, new SpfOptions());

            foreach (var flow in _config.Flows)
            {
                var flowDomains = flow.Senders.Select(SenderDomain).Where(d => d != null).Select(d => d!).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
                var seen = _senders.Values.Where(s => string.Equals(s.Flow, flow.Name, StringComparison.OrdinalIgnoreCase)).ToList();
                flowDomains = flowDomains.Concat(seen.Select(s => s.Domain)).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
                if (!flowDomains.Any(Covers))
                {
                    continue; // -Domain narrowed the inventory to other domains
                }

                flowDomains = flowDomains.Where(Covers).ToList();
                // 'esp' says where the suppression list lives; it is the sending path only when no relay is named
                var esp = flow.Esp != null && flow.Relay == null ? _catalog.Find(flow.Esp) : null;
                var serviceName = flow.Relay == null ? esp?.Name ?? flow.Esp : null;
                var item = new EmailFlowInventoryItem(flow.Name, FlowInventoryStatus.NotObserved)
                {
                    Kind = flow.Kind,
                    Owner = flow.Owner,
                    Domains = flowDomains,
                    Senders = flow.Senders,
                    Relay = flow.Relay,
                    Esp = flow.Esp,
                    SuppressionList = flow.SuppressionList,
                    Service = flow.Relay != null ? "relay " + flow.Relay : serviceName,
                    SeenSenders = seen.OrderByDescending(s => s.Messages).ToList(),
                    Authorisation = flowDomains.Where(auth.ContainsKey).Select(d => auth[d]).ToList(),
                };
                foreach (var d in flowDomains)
                {
                    if (flow.Relay != null)
                    {
                        declaredServices.Add((d, "relay " + flow.Relay));
                    }

                    if (serviceName != null)
                    {
                        declaredServices.Add((d, serviceName));
                    }
                }

                var sources = _sources.Values.Where(s => flowDomains.Contains(s.Domain, StringComparer.OrdinalIgnoreCase)
                    && ((flow.Relay != null && string.Equals(s.Relay, flow.Relay, StringComparison.OrdinalIgnoreCase))
                        || (serviceName != null && string.Equals(s.Service, serviceName, StringComparison.OrdinalIgnoreCase)))).ToList();
                foreach (var s in sources)
                {
                    claimedSources.Add(s);
                }

                item.DmarcSources = sources;
                item.Status = seen.Count > 0 || sources.Count > 0 ? FlowInventoryStatus.Active : observed ? FlowInventoryStatus.Silent : FlowInventoryStatus.NotObserved;
                SetSeen(item);
                var findings = new List<InventoryFinding>();
                if (item.Status == FlowInventoryStatus.Silent)
                {
                    findings.Add(new InventoryFinding(FindingSeverity.Info, InventoryFindingCodes.DeclaredSilent, flow.Name, null,
                        $"Flow '{flow.Name}' is declared but nothing read shows it sending ({Observations()}).",
                        "Check that it still runs (and through the declared path); remove it from the configuration if it was retired."));
                }

                await CheckAuthorisationAsync(item, flow, esp, evaluator, findings, cancel).ConfigureAwait(false);
                AddDomainFindings(item, findings);
                AddDmarcFindings(item, sources, findings);
                if (flow.Kind == FlowKind.PersonToPerson)
                {
                    foreach (var s in seen.Where(LooksAutomated(flow)))
                    {
                        findings.Add(new InventoryFinding(FindingSeverity.Warning, InventoryFindingCodes.PossibleShadowFlow, flow.Name, s.Domain,
                            $"{s.Address} sends through the person-to-person flow '{flow.Name}' but looks automated ({s.Messages} messages, {s.Recipients} recipients, from {Describe(s.Clients)}).",
                            $"Declare it as its own flow (kind Transactional, Automation or List) and route it through a secondary relay, so that bulk can never block '{flow.Name}'."));
                    }
                }

                item.Findings = Sorted(findings);
                items.Add(item);
            }

            items.AddRange(await ShadowFlowsAsync(auth, claimedSources, declaredServices, evaluator, cancel).ConfigureAwait(false));
            items.AddRange(AuthorisedOnly(auth, declaredServices));
            return items;
        }

        private Func<ObservedSender, bool> LooksAutomated(FlowConfig flow) => s =>
        {
            // the flow names this address explicitly: someone declared it on purpose
            if (flow.Senders.Any(p => string.Equals(p.Trim(), s.Address, StringComparison.OrdinalIgnoreCase)))
            {
                return false;
            }

            var local = s.Address.Substring(0, Math.Max(0, s.Address.LastIndexOf('@'))).ToLowerInvariant();
            var plus = local.IndexOf('+');
            if (plus > 0)
            {
                local = local.Substring(0, plus);
            }

            return AutomatedLocalParts.Contains(local) || s.Recipients >= _options.BulkRecipientThreshold;
        };

        private string Observations()
        {
            var parts = new List<string>();
            if (LogsRead)
            {
                parts.Add("MTA logs and send journal");
            }

            if (DmarcRead)
            {
                parts.Add($"{DmarcReports} DMARC report(s)");
            }

            return string.Join(", ", parts);
        }

        private void SetSeen(EmailFlowInventoryItem item)
        {
            var times = item.SeenSenders.Select(s => s.FirstSeen).Concat(item.DmarcSources.Select(s => s.FirstSeen)).Where(t => t.HasValue).Select(t => t!.Value).ToList();
            var last = item.SeenSenders.Select(s => s.LastSeen).Concat(item.DmarcSources.Select(s => s.LastSeen)).Where(t => t.HasValue).Select(t => t!.Value).ToList();
            item.FirstSeen = times.Count > 0 ? times.Min() : (DateTimeOffset?)null;
            item.LastSeen = last.Count > 0 ? last.Max() : (DateTimeOffset?)null;
            foreach (var s in item.SeenSenders)
            {
                s.Clients = Top(s.Address, null);
                s.Relays = Top(s.Address, _relaysBySender);
            }
        }

        private IReadOnlyList<string> Top(string sender, Dictionary<string, Dictionary<string, long>>? map) =>
            (map ?? _clientsBySender).TryGetValue(sender, out var d) ? d.OrderByDescending(x => x.Value).ThenBy(x => x.Key, StringComparer.Ordinal).Select(x => x.Key).ToList() : (IReadOnlyList<string>)Array.Empty<string>();

        private static string Describe(IReadOnlyList<string> list) => list.Count == 0 ? "an unknown client" : string.Join(", ", list.Take(3));

        /// <summary>SPF (and DKIM as the alignment that remains) for a declared flow's path.</summary>
        private async Task CheckAuthorisationAsync(EmailFlowInventoryItem item, FlowConfig flow, CatalogProvider? esp, SpfEvaluator evaluator, List<InventoryFinding> findings, CancellationToken cancel)
        {
            var relay = flow.Relay != null ? _config.FindRelay(flow.Relay) : null;
            var evidence = new List<string>();
            bool? authorised = null;
            foreach (var a in item.Authorisation)
            {
                var sender = flow.Senders.FirstOrDefault(p => p.IndexOf('@') > 0 && string.Equals(SenderDomain(p), a.Domain, StringComparison.OrdinalIgnoreCase)) ?? "postmaster@" + a.Domain;
                if (relay != null)
                {
                    var egress = relay.Egress.Count > 0 ? relay.Egress : await HostAddressesAsync(relay.Host, cancel).ConfigureAwait(false);
                    if (egress.Count == 0)
                    {
                        evidence.Add($"the egress address of relay '{relay.Name}' is unknown (set 'egress' on the relay)");
                        continue;
                    }

                    foreach (var ip in egress)
                    {
                        var r = await evaluator.CheckHostAsync(ip, a.Domain, sender, null, cancel).ConfigureAwait(false);
                        evidence.Add($"SPF of {a.Domain} for {ip} (relay {relay.Name}): {r.Result.ToString().ToLowerInvariant()}{(r.Mechanism != null ? " by " + r.Mechanism : "")}");
                        if (r.Result == SpfResultKind.Pass)
                        {
                            authorised ??= true;
                        }
                        else if (r.Result == SpfResultKind.TempError)
                        {
                            findings.Add(new InventoryFinding(FindingSeverity.Warning, InventoryFindingCodes.SpfUnknown, flow.Name, a.Domain,
                                $"Could not tell whether SPF of {a.Domain} authorises {ip} (relay '{relay.Name}'): {r.Reason}.", "Run the inventory again when DNS answers."));
                        }
                        else
                        {
                            authorised = false;
                            var dkimOk = a.DkimSelectors.Count > 0;
                            findings.Add(new InventoryFinding(dkimOk ? FindingSeverity.Warning : FindingSeverity.High, InventoryFindingCodes.SpfNotAuthorised, flow.Name, a.Domain,
                                $"Flow '{flow.Name}' sends as {a.Domain} through relay '{relay.Name}' from {ip}, which SPF of {a.Domain} does not authorise ({r.Result.ToString().ToLowerInvariant()}: {r.Reason})."
                                + (dkimOk ? " DKIM alone keeps its DMARC alignment." : " Without DKIM its mail fails DMARC."),
                                $"Add ip{(ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "6" : "4")}:{ip} (or an include that covers it) to the SPF record of {a.Domain}, or move the flow to a relay it authorises."));
                        }
                    }
                }

                if (esp != null)
                {
                    var inSpf = a.Spf != null && a.Spf.Services.Any(s => string.Equals(s.Name, esp.Name, StringComparison.OrdinalIgnoreCase));
                    var keys = a.Dkim?.Found.Where(k => k.IsUsable && k.Providers.Contains(esp.Name, StringComparer.OrdinalIgnoreCase)).Select(k => k.Selector).ToList() ?? new List<string>();
                    evidence.Add(inSpf ? $"SPF of {a.Domain} includes {esp.Name}" : $"SPF of {a.Domain} does not include {esp.Name}");
                    if (inSpf)
                    {
                        authorised ??= true;
                    }
                    else
                    {
                        authorised = false;
                    }

                    if (keys.Count > 0)
                    {
                        item.DkimPublished = true;
                        item.DkimEvidence = $"{esp.Name} selector(s) {string.Join(", ", keys)} published at {a.Domain}";
                    }

                    if (!inSpf && keys.Count == 0 && a.Spf?.Status != SpfRecordStatus.Unknown)
                    {
                        findings.Add(new InventoryFinding(FindingSeverity.High, InventoryFindingCodes.EspNotAuthorised, flow.Name, a.Domain,
                            $"Flow '{flow.Name}' sends as {a.Domain} through {esp.Name}, but the SPF record of {a.Domain} does not include it and no {esp.Name} DKIM selector ({string.Join(", ", esp.DkimSelectors.DefaultIfEmpty("none known"))}) is published: its mail cannot pass DMARC.",
                            $"Publish the DKIM records {esp.Name} gives you for {a.Domain} (aligned DKIM), and add its SPF include if it sends with your domain as envelope sender."));
                    }
                }

                if (item.DkimPublished == null)
                {
                    if (a.Dkim == null || a.Dkim.Found.Count == 0 && a.Dkim.Failed.Count > 0)
                    {
                        item.DkimEvidence = $"DKIM of {a.Domain}: unknown (lookups failed)";
                    }
                    else if (a.DkimSelectors.Count > 0)
                    {
                        item.DkimPublished = true;
                        item.DkimEvidence = $"selector(s) {string.Join(", ", a.DkimSelectors)} published at {a.Domain}";
                    }
                    else
                    {
                        item.DkimPublished = false;
                        item.DkimEvidence = $"no DKIM selector found at {a.Domain} (probed {a.Dkim.Probed} selectors)";
                    }
                }
            }

            item.SpfAuthorised = authorised;
            item.SpfEvidence = evidence.Count == 0 ? null : string.Join("; ", evidence);
            if (item.DkimPublished == false)
            {
                var domains = string.Join(", ", item.Authorisation.Select(x => x.Domain));
                findings.Add(new InventoryFinding(authorised == false ? FindingSeverity.High : FindingSeverity.Warning, InventoryFindingCodes.DkimMissing, flow.Name, domains,
                    $"No DKIM key is published for {domains}: '{flow.Name}' relies on SPF alone{(authorised == false ? ", which does not authorise it either: its mail fails DMARC" : ", which breaks when mail is forwarded")}.",
                    $"Sign the flow's mail with DKIM (d={item.Authorisation.Select(x => x.Domain).FirstOrDefault()}) and publish the key; list its selector in the configuration's domains[].dkimSelectors."));
            }
        }

        private async Task<IReadOnlyList<IPAddress>> HostAddressesAsync(string host, CancellationToken cancel)
        {
            if (IPAddress.TryParse(host, out var ip))
            {
                return new[] { ip };
            }

            var r = await _dns.QueryAddressesAsync(host, false, cancel).ConfigureAwait(false);
            return r.IsOk ? r.Records : (IReadOnlyList<IPAddress>)Array.Empty<IPAddress>();
        }

        /// <summary>Findings every flow of a domain shares: SPF missing, broken or over its lookup limit; no DKIM; DMARC missing or p=none.</summary>
        private static void AddDomainFindings(EmailFlowInventoryItem item, List<InventoryFinding> findings)
        {
            foreach (var a in item.Authorisation)
            {
                var spf = a.Spf;
                if (spf != null)
                {
                    switch (spf.Status)
                    {
                        case SpfRecordStatus.None:
                            findings.Add(new InventoryFinding(FindingSeverity.High, InventoryFindingCodes.SpfMissing, item.Name, a.Domain,
                                $"{a.Domain} publishes no SPF record: receivers cannot tell its senders from forgers.", $"Publish an SPF record for {a.Domain} that lists every path of its flows."));
                            break;
                        case SpfRecordStatus.Unknown:
                            findings.Add(new InventoryFinding(FindingSeverity.Warning, InventoryFindingCodes.SpfUnknown, item.Name, a.Domain,
                                $"The SPF record of {a.Domain} could not be read ({Problem(spf)}).", "Run the inventory again when DNS answers."));
                            break;
                        case SpfRecordStatus.Multiple:
                        case SpfRecordStatus.Invalid:
                            findings.Add(new InventoryFinding(FindingSeverity.High, InventoryFindingCodes.SpfInvalid, item.Name, a.Domain,
                                $"The SPF record of {a.Domain} is broken ({Problem(spf)}): receivers treat it as a permanent error.", $"Fix the SPF record of {a.Domain}."));
                            break;
                    }

                    if (spf.OverLookupLimit)
                    {
                        findings.Add(new InventoryFinding(FindingSeverity.High, InventoryFindingCodes.SpfOverLookupLimit, item.Name, a.Domain,
                            $"The SPF record of {a.Domain} needs {spf.DnsLookups} DNS lookups (the limit is 10): receivers stop with a permanent error{(spf.LimitExceededAt != null ? " at " + spf.LimitExceededAt.Term + " in " + spf.LimitExceededAt.Domain : "")}, so SPF fails for every flow of {a.Domain}.",
                            $"Remove includes that no flow uses, replace a/mx mechanisms by ip4/ip6 ranges, or move a service to a subdomain of {a.Domain}."));
                    }
                }

                if (a.Dkim != null)
                {
                    foreach (var weak in a.Dkim.Found.Where(k => k.IsUsable && k.KeyBits.HasValue && k.KeyBits < 1024 && string.Equals(k.KeyType ?? "rsa", "rsa", StringComparison.OrdinalIgnoreCase)))
                    {
                        findings.Add(new InventoryFinding(FindingSeverity.Warning, InventoryFindingCodes.DkimWeakKey, item.Name, a.Domain,
                            $"The DKIM key at {weak.Name} has {weak.KeyBits} bits: receivers may ignore signatures from keys under 1024 bits.", $"Publish a 2048-bit key under a new selector and sign with it, then revoke {weak.Selector}."));
                    }
                }

                var dmarc = a.Dmarc;
                if (dmarc != null)
                {
                    if (dmarc.Status == DmarcPolicyStatus.Absent)
                    {
                        findings.Add(new InventoryFinding(FindingSeverity.Warning, InventoryFindingCodes.DmarcMissing, item.Name, a.Domain,
                            $"{a.Domain} publishes no DMARC record: no policy protects it and no receiver sends you reports.",
                            $"Publish \"v=DMARC1; p=none; rua=mailto:...\" at _dmarc.{a.Domain} to receive reports, then tighten the policy."));
                    }
                    else if (dmarc.Status == DmarcPolicyStatus.Found && dmarc.Record != null)
                    {
                        if (dmarc.Record.P == DmarcPolicy.None)
                        {
                            findings.Add(new InventoryFinding(FindingSeverity.Info, InventoryFindingCodes.DmarcPolicyNone, item.Name, a.Domain,
                                $"The DMARC policy of {a.Domain} is p=none: forged mail is delivered.", "Once every flow passes DMARC in the reports, move to p=quarantine, then p=reject."));
                        }

                        if (dmarc.Record.Rua.Count == 0)
                        {
                            findings.Add(new InventoryFinding(FindingSeverity.Info, InventoryFindingCodes.DmarcNoReports, item.Name, a.Domain,
                                $"The DMARC record of {a.Domain} asks for no aggregate reports (no rua): nobody sees who sends as {a.Domain}.", $"Add rua=mailto:... to _dmarc.{a.Domain} and read the reports with Get-EmailFlowInventory -DmarcReports."));
                        }
                    }
                }
            }
        }

        private void AddDmarcFindings(EmailFlowInventoryItem item, IReadOnlyList<DmarcSource> sources, List<InventoryFinding> findings)
        {
            foreach (var g in sources.GroupBy(s => s.Domain, StringComparer.OrdinalIgnoreCase))
            {
                var messages = g.Sum(s => s.Messages);
                var pass = g.Sum(s => s.DmarcPass);
                if (messages < _options.MinDmarcMessages || (double)pass / messages >= _options.MinDmarcPassRate)
                {
                    continue;
                }

                var refused = g.Sum(s => s.Quarantined + s.Rejected);
                var worst = g.OrderBy(s => s.PassRate).First();
                findings.Add(new InventoryFinding(refused > 0 ? FindingSeverity.High : FindingSeverity.Warning, InventoryFindingCodes.DmarcAlignmentFailing, item.Name, g.Key,
                    $"DMARC reports show {messages - pass} of {messages} messages of '{item.Name}' as {g.Key} failing DMARC ({(double)pass / messages:P0} pass; {refused} quarantined or rejected); "
                    + $"worst source {worst.Address} ({worst.Service ?? worst.Ptr ?? "unknown"}): DKIM by {string.Join(", ", worst.DkimDomains.DefaultIfEmpty("nobody"))}, SPF for {string.Join(", ", worst.SpfDomains.DefaultIfEmpty("nothing"))}.",
                    $"Make {worst.Service ?? "the service"} sign with a DKIM key of {g.Key} (aligned d=), or send with an envelope sender under {g.Key} that SPF authorises."));
            }
        }

        private async Task<IReadOnlyList<EmailFlowInventoryItem>> ShadowFlowsAsync(ConcurrentDictionary<string, DomainAuthorisation> auth, HashSet<DmarcSource> claimed,
            HashSet<(string Domain, string Service)> declared, SpfEvaluator evaluator, CancellationToken cancel)
        {
            // group undeclared senders (logs) and unclaimed DMARC sources by (domain, path): one shadow flow per path
            var groups = new Dictionary<(string Domain, string Path), (List<ObservedSender> Senders, List<DmarcSource> Sources)>();
            (List<ObservedSender>, List<DmarcSource>) Group(string domain, string path)
            {
                if (!groups.TryGetValue((domain, path), out var g))
                {
                    groups[(domain, path)] = g = (new List<ObservedSender>(), new List<DmarcSource>());
                }

                return g;
            }

            foreach (var s in _senders.Values.Where(s => s.Flow == null && Covers(s.Domain)))
            {
                s.Clients = Top(s.Address, null);
                s.Relays = Top(s.Address, _relaysBySender);
                var path = s.Relays.Count > 0 ? "relay " + s.Relays[0] : "unknown path";
                Group(s.Domain, path).Item1.Add(s);
            }

            foreach (var s in _sources.Values.Where(s => !claimed.Contains(s)))
            {
                Group(s.Domain, s.Service ?? "unknown sources").Item2.Add(s);
            }

            var items = new List<EmailFlowInventoryItem>();
            foreach (var g in groups.OrderBy(g => g.Key.Domain, StringComparer.Ordinal).ThenBy(g => g.Key.Path, StringComparer.Ordinal))
            {
                var (domain, path) = g.Key;
                var (senders, sources) = g.Value;
                var unknown = path == "unknown sources";
                var name = unknown ? $"unknown senders as {domain}" : $"undeclared: {domain} via {path}";
                var item = new EmailFlowInventoryItem(name, FlowInventoryStatus.Shadow)
                {
                    Domains = new[] { domain },
                    Service = unknown ? null : path,
                    Relay = path.StartsWith("relay ", StringComparison.Ordinal) ? path.Substring(6) : null,
                    SeenSenders = senders.OrderByDescending(s => s.Messages).ToList(),
                    DmarcSources = sources.OrderByDescending(s => s.Messages).ToList(),
                    Authorisation = auth.TryGetValue(domain, out var a) ? new[] { a } : Array.Empty<DomainAuthorisation>(),
                };
                SetSeen(item);
                var findings = new List<InventoryFinding>();
                var what = string.Join("; ", new[]
                {
                    senders.Count > 0 ? $"{senders.Sum(s => s.Messages)} messages from {string.Join(", ", senders.Take(5).Select(s => s.Address))} in the logs (clients {Describe(senders.SelectMany(s => s.Clients).Distinct().ToList())})" : null,
                    sources.Count > 0 ? $"{sources.Sum(s => s.Messages)} messages from {string.Join(", ", sources.Take(5).Select(s => s.Address + (s.Ptr != null ? " (" + s.Ptr + ")" : "")))} in DMARC reports" : null,
                }.Where(x => x != null));
                if (unknown)
                {
                    var failing = sources.Where(s => s.PassRate < _options.MinDmarcPassRate).ToList();
                    findings.Add(new InventoryFinding(failing.Count > 0 ? FindingSeverity.High : FindingSeverity.Warning, InventoryFindingCodes.UnknownSource, name, domain,
                        $"Mail as {domain} comes from sources nothing names: {what}; {sources.Sum(s => s.Messages - s.DmarcPass)} of {sources.Sum(s => s.Messages)} fail DMARC.",
                        $"Find out who runs these addresses: an undeclared service (declare it and authorise it), or forgery (keep or tighten the DMARC policy of {domain})."));
                }
                else
                {
                    var authorisedBySpf = item.Relay != null || item.Authorisation.Any(x => x.AuthorisedServices.Contains(path, StringComparer.OrdinalIgnoreCase));
                    findings.Add(new InventoryFinding(FindingSeverity.High, InventoryFindingCodes.ShadowFlow, name, domain,
                        $"Mail as {domain} goes through {path} but no flow declares it: {what}."
                        + (authorisedBySpf ? "" : $" The SPF record of {domain} does not name {path} either."),
                        $"Declare the flow (its owner, kind, senders{(item.Relay != null ? ", relay" : ", esp")}) so that it is watched, routed and counted; bulk or automated mail belongs on a secondary relay."));
                    if (item.Relay != null)
                    {
                        var relay = _config.FindRelay(item.Relay);
                        if (relay != null)
                        {
                            var pseudo = new FlowConfig(name, FlowKind.Transactional, null, senders.Select(s => s.Address).ToList(), Array.Empty<string>(), item.Relay, null, null);
                            await CheckAuthorisationAsync(item, pseudo, null, evaluator, findings, cancel).ConfigureAwait(false);
                        }
                    }
                }

                AddDmarcFindings(item, sources, findings);
                item.Findings = Sorted(findings);
                items.Add(item);
                declared.Add((domain, path));
            }

            return items;
        }

        private IEnumerable<EmailFlowInventoryItem> AuthorisedOnly(ConcurrentDictionary<string, DomainAuthorisation> auth, HashSet<(string Domain, string Service)> used)
        {
            foreach (var a in auth.Values.OrderBy(a => a.Domain, StringComparer.Ordinal))
            {
                if (a.Spf == null)
                {
                    continue;
                }

                foreach (var svc in a.Spf.Services.GroupBy(s => s.Name, StringComparer.OrdinalIgnoreCase))
                {
                    if (used.Contains((a.Domain, svc.Key)))
                    {
                        continue;
                    }

                    var via = string.Join(", ", svc.Select(s => s.Term).Distinct());
                    var name = $"authorised only: {svc.Key} for {a.Domain}";
                    var item = new EmailFlowInventoryItem(name, FlowInventoryStatus.AuthorisedOnly)
                    {
                        Domains = new[] { a.Domain },
                        Service = svc.Key,
                        Authorisation = new[] { a },
                        SpfAuthorised = true,
                        SpfEvidence = $"SPF of {a.Domain} includes {via}",
                    };
                    item.Findings = new[]
                    {
                        new InventoryFinding(FindingSeverity.Warning, InventoryFindingCodes.AuthorisedUnused, name, a.Domain,
                            $"The SPF record of {a.Domain} authorises {svc.Key} ({via}), but no flow declares it{(LogsRead || DmarcRead ? " and nothing read shows it sending" : "")}.",
                            $"Declare the flow that uses {svc.Key}, or remove {via} from the SPF record of {a.Domain} (every authorised service can send as {a.Domain}, and each include costs DNS lookups)."),
                    };
                    yield return item;
                }
            }
        }

        private static string Problem(SpfTree spf) => spf.Problems.Count > 0 ? string.Join("; ", spf.Problems) : spf.Detail ?? spf.Status.ToString();

        private static List<InventoryFinding> Sorted(List<InventoryFinding> findings) =>
            findings.OrderByDescending(f => f.Severity).ThenBy(f => f.Code, StringComparer.Ordinal).ToList();
    }
}
