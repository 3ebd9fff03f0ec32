using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Dns;

namespace MailOps.Core.Providers
{
    /// <summary>What a provider does for a domain.</summary>
    public enum ProviderRole
    {
        /// <summary>Its mail hosts receive the domain's mail (MX).</summary>
        MailHosting,

        /// <summary>Its name servers serve the domain's zone (NS).</summary>
        DnsHosting,

        /// <summary>It owns the address domain itself (gmail.com, orange.fr).</summary>
        AddressOwner,
    }

    /// <summary>How sure an attribution is.</summary>
    public enum AttributionConfidence
    {
        /// <summary>Nothing decided it (lookups failed, or nothing matched).</summary>
        None,

        /// <summary>Only the network the mail hosts are in (AS number) matched.</summary>
        Medium,

        /// <summary>A host name pattern or the owner list matched (and the AS, when known, agrees).</summary>
        High,
    }

    /// <summary>The outcome of an attribution.</summary>
    public enum AttributionStatus
    {
        /// <summary>Every lookup answered.</summary>
        Resolved,

        /// <summary>Some lookups failed: what is given is what the others proved.</summary>
        Partial,

        /// <summary>The lookups that decide failed (timeout, SERVFAIL): unknown, never a guess.</summary>
        Unknown,

        /// <summary>The domain does not exist (NXDOMAIN).</summary>
        NxDomain,

        /// <summary>The domain exists but accepts no mail (null MX, RFC 7505), or has neither MX nor address.</summary>
        NoMailHost,
    }

    /// <summary>One fact that decided (or supported) an attribution.</summary>
    public sealed class ProviderEvidence
    {
        public ProviderEvidence(string provider, ProviderRole role, string kind, string value, string rule)
        {
            Provider = provider;
            Role = role;
            Kind = kind;
            Value = value;
            Rule = rule;
        }

        public string Provider { get; }
        public ProviderRole Role { get; }

        /// <summary>MX, NS, ASN or Owner.</summary>
        public string Kind { get; }
        public string Value { get; }
        public string Rule { get; }

        public override string ToString() => $"{Kind} {Value} -> {Provider} ({Rule})";
    }

    /// <summary>Which provider hosts a domain's mail and DNS, with the evidence.</summary>
    public sealed class MailProviderResult
    {
        public MailProviderResult(string input, string domain, AttributionStatus status, string? mailProvider, string? dnsProvider, string? addressOwner,
            AttributionConfidence confidence, IReadOnlyList<string> mxHosts, IReadOnlyList<string> mxAddresses, IReadOnlyList<string> nsHosts,
            IReadOnlyList<int> asNumbers, IReadOnlyList<ProviderEvidence> evidence, IReadOnlyList<string> problems, DateTimeOffset resolvedAt, DateTimeOffset expiresAt)
        {
            Input = input;
            Domain = domain;
            Address = input.Contains("@") ? input : null;
            Status = status;
            MailProvider = mailProvider;
            DnsProvider = dnsProvider;
            AddressOwner = addressOwner;
            Confidence = confidence;
            MxHosts = mxHosts;
            MxAddresses = mxAddresses;
            NsHosts = nsHosts;
            AsNumbers = asNumbers;
            Evidence = evidence;
            Problems = problems;
            ResolvedAt = resolvedAt;
            ExpiresAt = expiresAt;
            Provider = mailProvider ?? addressOwner ?? dnsProvider;
            Role = mailProvider != null ? ProviderRole.MailHosting : addressOwner != null ? ProviderRole.AddressOwner : dnsProvider != null ? ProviderRole.DnsHosting : (ProviderRole?)null;
        }

        /// <summary>The domain or address asked about.</summary>
        public string Input { get; }
        public string Domain { get; }
        public string? Address { get; }
        public AttributionStatus Status { get; }

        /// <summary>The provider that matters most: the mail host, else the address owner, else the DNS host.</summary>
        public string? Provider { get; }
        public ProviderRole? Role { get; }
        public string? MailProvider { get; }
        public string? DnsProvider { get; }
        public string? AddressOwner { get; }
        public AttributionConfidence Confidence { get; }
        public IReadOnlyList<string> MxHosts { get; }
        public IReadOnlyList<string> MxAddresses { get; }
        public IReadOnlyList<string> NsHosts { get; }
        public IReadOnlyList<int> AsNumbers { get; }
        public IReadOnlyList<ProviderEvidence> Evidence { get; }

        /// <summary>Lookups that failed (they make the result partial or unknown, never "no").</summary>
        public IReadOnlyList<string> Problems { get; }
        public DateTimeOffset ResolvedAt { get; }

        /// <summary>When the DNS answers it rests on expire (their TTL); a cached result is used until then.</summary>
        public DateTimeOffset ExpiresAt { get; }

        /// <summary>Read from the store's cache rather than resolved now.</summary>
        public bool FromCache { get; internal set; }

        /// <summary>
        /// When this lookup could not decide: the last attribution recorded in the store for the domain (evidence from
        /// before, for example before the outage), or null.
        /// </summary>
        public MailProviderResult? LastKnown { get; internal set; }

        /// <summary>The provider hosts the domain's mail or DNS, or owns it.</summary>
        public bool IsHostedBy(string provider) =>
            string.Equals(MailProvider, provider, StringComparison.OrdinalIgnoreCase) || string.Equals(DnsProvider, provider, StringComparison.OrdinalIgnoreCase)
            || string.Equals(AddressOwner, provider, StringComparison.OrdinalIgnoreCase);

        /// <summary>The evidence in one line, for messages and -WhatIf.</summary>
        public string EvidenceText => Evidence.Count == 0 ? string.Join("; ", Problems) : string.Join("; ", Evidence.Select(e => e.ToString()));

        public override string ToString() => $"{Domain}: {Provider ?? Status.ToString()}";
    }

    /// <summary>A place to keep attributions between runs (the store); absent, nothing is cached.</summary>
    public interface IAttributionCache
    {
        /// <summary>The cached attributions of these domains (fresh or not; the caller checks ExpiresAt).</summary>
        Task<IReadOnlyDictionary<string, MailProviderResult>> GetAsync(IReadOnlyCollection<string> domains, CancellationToken cancellationToken);

        Task PutAsync(IReadOnlyCollection<MailProviderResult> results, CancellationToken cancellationToken);
    }

    /// <summary>
    /// Attributes domains to providers from DNS: MX hosts and their addresses, the origin AS of those addresses (a
    /// DNS-based IP-to-ASN zone such as Team Cymru's), NS hosts, and the owner list, matched against the catalogue.
    /// Lookups run concurrently (bounded) and are shared between domains (one lookup per MX host, per address).
    /// </summary>
    public sealed class MailProviderResolver
    {
        private static readonly TimeSpan MinTtl = TimeSpan.FromMinutes(1);
        private static readonly TimeSpan MaxTtl = TimeSpan.FromDays(1);
        private readonly IDnsResolver _dns;
        private readonly ProviderCatalog _catalog;
        private readonly string? _asnZone;
        private readonly string? _asnZone6;
        private readonly ConcurrentDictionary<string, Lazy<Task<DnsResult<IPAddress>>>> _hostAddresses = new ConcurrentDictionary<string, Lazy<Task<DnsResult<IPAddress>>>>(StringComparer.OrdinalIgnoreCase);
        private readonly ConcurrentDictionary<string, Lazy<Task<DnsResult<string>>>> _parentNs = new ConcurrentDictionary<string, Lazy<Task<DnsResult<string>>>>(StringComparer.OrdinalIgnoreCase);
        private readonly ConcurrentDictionary<string, Lazy<Task<(int Asn, string? Detail)>>> _asns = new ConcurrentDictionary<string, Lazy<Task<(int, string?)>>>();

        public MailProviderResolver(IDnsResolver dns, ProviderCatalog catalog, string? asnZone, string? asnZone6)
        {
            _dns = dns ?? throw new ArgumentNullException(nameof(dns));
            _catalog = catalog ?? throw new ArgumentNullException(nameof(catalog));
            _asnZone = asnZone;
            _asnZone6 = asnZone6;
        }

        /// <summary>The domain of an address (the part after the last @), or the input as a domain; lower-case.</summary>
        public static string DomainOf(string input)
        {
            var t = (input ?? "").Trim().Trim('<', '>').TrimEnd('.');
            return (t.Contains("@") ? t.Substring(t.LastIndexOf('@') + 1) : t).ToLowerInvariant();
        }

        /// <summary>
        /// Attributes every input (domains or addresses; duplicates resolved once), at most <paramref name="maxConcurrency"/>
        /// domains at a time, calling <paramref name="onResult"/> as each finishes (from any thread). Cached results whose
        /// TTL has not run out are used unless <paramref name="useCache"/> is false; every new result is written back.
        /// </summary>
        public async Task ResolveManyAsync(IEnumerable<string> inputs, int maxConcurrency, IAttributionCache? cache, bool useCache,
            Action<MailProviderResult> onResult, CancellationToken cancellationToken)
        {
            if (inputs == null || onResult == null)
            {
                throw new ArgumentNullException(inputs == null ? nameof(inputs) : nameof(onResult));
            }

            var list = inputs.Where(i => !string.IsNullOrWhiteSpace(i)).ToList();
            var domains = list.Select(DomainOf).Distinct().ToList();
            var cached = cache != null ? await cache.GetAsync(domains, cancellationToken).ConfigureAwait(false) : new Dictionary<string, MailProviderResult>();
            var now = DateTimeOffset.UtcNow;
            var fresh = new ConcurrentBag<MailProviderResult>();
            using (var gate = new SemaphoreSlim(Math.Max(1, maxConcurrency)))
            {
                var tasks = domains.ToDictionary(d => d, async d =>
                {
                    if (useCache && cached.TryGetValue(d, out var c) && c.ExpiresAt > now && c.Status != AttributionStatus.Unknown)
                    {
                        c.FromCache = true;
                        return c;
                    }

                    await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
                    try
                    {
                        var r = await ResolveAsync(d, cancellationToken).ConfigureAwait(false);
                        if ((r.Status == AttributionStatus.Unknown || r.Status == AttributionStatus.Partial) && cached.TryGetValue(d, out var last) && last.Provider != null)
                        {
                            r.LastKnown = last;
                        }

                        if (r.Status != AttributionStatus.Unknown)
                        {
                            fresh.Add(r);
                        }

                        return r;
                    }
                    finally
                    {
                        gate.Release();
                    }
                });

                // report in input order as results complete (a domain asked twice is reported for each input): each
                // input waits for its own domain's task, so nothing polls and nothing waits longer than needed
                var all = Task.WhenAll(tasks.Values);
                ExceptionDispatchInfo? failed = null;
                try
                {
                    foreach (var next in list)
                    {
                        var done = await tasks[DomainOf(next)].ConfigureAwait(false);
                        onResult(next.Contains("@") || !string.Equals(next.Trim(), done.Input, StringComparison.OrdinalIgnoreCase) ? For(next, done) : done);
                    }
                }
                catch (Exception e)
                {
                    failed = ExceptionDispatchInfo.Capture(e); // cancellation, or onResult threw: let the others end first (they hold the gate)
                }

                await Task.WhenAny(all).ConfigureAwait(false);
                failed?.Throw();
                await all.ConfigureAwait(false);
            }

            if (cache != null && !fresh.IsEmpty)
            {
                await cache.PutAsync(fresh.ToList(), CancellationToken.None).ConfigureAwait(false);
            }
        }

        private static MailProviderResult For(string input, MailProviderResult r)
        {
            var copy = new MailProviderResult(input.Trim(), r.Domain, r.Status, r.MailProvider, r.DnsProvider, r.AddressOwner, r.Confidence, r.MxHosts, r.MxAddresses,
                r.NsHosts, r.AsNumbers, r.Evidence, r.Problems, r.ResolvedAt, r.ExpiresAt) { FromCache = r.FromCache, LastKnown = r.LastKnown };
            return copy;
        }

        /// <summary>Attributes one domain (or the domain of one address).</summary>
        public async Task<MailProviderResult> ResolveAsync(string input, CancellationToken cancellationToken)
        {
            var domain = DomainOf(input);
            var evidence = new List<ProviderEvidence>();
            var problems = new List<string>();
            var ttls = new List<TimeSpan>();
            var now = DateTimeOffset.UtcNow;

            string? owner = null;
            var ownerMatch = _catalog.MatchOwner(domain);
            if (ownerMatch != null)
            {
                owner = ownerMatch.Name;
                evidence.Add(new ProviderEvidence(owner, ProviderRole.AddressOwner, "Owner", domain, "address domain of " + owner));
            }

            var mxTask = _dns.QueryMxAsync(domain, cancellationToken);
            var nsTask = NsOfAsync(domain, cancellationToken);
            var mx = await mxTask.ConfigureAwait(false);
            var (ns, nsZone) = await nsTask.ConfigureAwait(false);

            if (mx.Status == DnsStatus.NxDomain)
            {
                return new MailProviderResult(input, domain, AttributionStatus.NxDomain, null, null, owner, owner != null ? AttributionConfidence.High : AttributionConfidence.None,
                    Array.Empty<string>(), Array.Empty<string>(), Array.Empty<string>(), Array.Empty<int>(), evidence, new[] { mx.Detail ?? domain + " does not exist" },
                    now, now + Clamp(mx.Ttl ?? TimeSpan.FromMinutes(5)));
            }

            // mail hosts: the MX targets, or the domain itself when it has no MX (RFC 5321 section 5.1)
            var mxHosts = new List<string>();
            var noMail = false;
            if (mx.IsOk)
            {
                ttls.Add(mx.Ttl ?? MaxTtl);
                var ordered = mx.Records.OrderBy(r => r.Preference).ToList();
                if (ordered.Count == 1 && (ordered[0].Exchange.Length == 0 || ordered[0].Exchange == "."))
                {
                    noMail = true;
                }
                else
                {
                    mxHosts.AddRange(ordered.Select(r => r.Exchange.ToLowerInvariant()).Distinct());
                }
            }
            else if (mx.Status == DnsStatus.NoData)
            {
                mxHosts.Add(domain);
            }
            else
            {
                problems.Add("MX lookup: " + mx.Status + (mx.Detail != null ? " (" + mx.Detail + ")" : ""));
            }

            // MX host names against the catalogue, weighted by preference order (the first host decides ties)
            var mxVotes = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
            for (var i = 0; i < mxHosts.Count; i++)
            {
                var m = _catalog.MatchMx(mxHosts[i]);
                if (m != null)
                {
                    evidence.Add(new ProviderEvidence(m.Value.Provider.Name, ProviderRole.MailHosting, "MX", mxHosts[i], "matches " + m.Value.Pattern));
                    mxVotes[m.Value.Provider.Name] = (mxVotes.TryGetValue(m.Value.Provider.Name, out var v) ? v : 0) + (mxHosts.Count - i) * 2;
                }
            }

            // the mail hosts' addresses and their origin AS
            var mxAddresses = new List<string>();
            var asns = new List<int>();
            var asnVotes = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
            foreach (var host in mxHosts.Take(5))
            {
                var a = await AddressesOfAsync(host, cancellationToken).ConfigureAwait(false);
                if (a.IsOk)
                {
                    ttls.Add(a.Ttl ?? MaxTtl);
                    foreach (var ip in a.Records)
                    {
                        mxAddresses.Add(ip.ToString());
                        if (_asnZone == null && _asnZone6 == null)
                        {
                            continue;
                        }

                        var (asn, detail) = await AsnOfAsync(ip, cancellationToken).ConfigureAwait(false);
                        if (asn > 0)
                        {
                            asns.Add(asn);
                            foreach (var p in _catalog.MatchAsn(asn))
                            {
                                evidence.Add(new ProviderEvidence(p.Name, ProviderRole.MailHosting, "ASN", $"AS{asn} ({ip} of {host})", "AS of " + p.Name));
                                asnVotes[p.Name] = (asnVotes.TryGetValue(p.Name, out var v) ? v : 0) + 1;
                            }
                        }
                        else if (detail != null)
                        {
                            problems.Add(detail);
                        }
                    }
                }
                else if (a.IsUnknown)
                {
                    problems.Add($"address of {host}: {a.Status}");
                }
            }

            // name servers
            string? dnsProvider = null;
            if (ns.IsOk)
            {
                ttls.Add(ns.Ttl ?? MaxTtl);
                var nsVotes = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
                foreach (var host in ns.Records.Select(h => h.ToLowerInvariant()).Distinct())
                {
                    var m = _catalog.MatchNs(host);
                    if (m != null)
                    {
                        evidence.Add(new ProviderEvidence(m.Value.Provider.Name, ProviderRole.DnsHosting, "NS", host + (nsZone != domain ? $" (zone {nsZone})" : ""), "matches " + m.Value.Pattern));
                        nsVotes[m.Value.Provider.Name] = (nsVotes.TryGetValue(m.Value.Provider.Name, out var v) ? v : 0) + 1;
                    }
                }

                dnsProvider = nsVotes.OrderByDescending(k => k.Value).Select(k => k.Key).FirstOrDefault();
            }
            else if (ns.IsUnknown)
            {
                problems.Add("NS lookup: " + ns.Status + (ns.Detail != null ? " (" + ns.Detail + ")" : ""));
            }

            string? mailProvider = null;
            var confidence = AttributionConfidence.None;
            if (mxVotes.Count > 0)
            {
                mailProvider = mxVotes.OrderByDescending(k => k.Value).First().Key;
                confidence = AttributionConfidence.High;
            }
            else if (asnVotes.Count > 0)
            {
                mailProvider = asnVotes.OrderByDescending(k => k.Value).First().Key;
                confidence = AttributionConfidence.Medium;
            }

            if (owner != null)
            {
                confidence = AttributionConfidence.High;
            }
            else if (mailProvider == null && dnsProvider != null)
            {
                confidence = AttributionConfidence.Medium;
            }

            var status = noMail ? AttributionStatus.NoMailHost
                : problems.Count == 0 ? AttributionStatus.Resolved
                : (mx.IsUnknown && dnsProvider == null && owner == null) ? AttributionStatus.Unknown
                : AttributionStatus.Partial;
            if (status == AttributionStatus.Unknown)
            {
                confidence = AttributionConfidence.None;
            }

            var ttl = Clamp(ttls.Count > 0 ? ttls.Min() : MinTtl);
            return new MailProviderResult(input, domain, status, mailProvider, dnsProvider, owner, confidence, mxHosts, mxAddresses.Distinct().ToList(),
                ns.IsOk ? ns.Records.Select(h => h.ToLowerInvariant()).Distinct().ToList() : (IReadOnlyList<string>)Array.Empty<string>(),
                asns.Distinct().ToList(), evidence, problems, now, now + (problems.Count > 0 ? MinTtl : ttl));
        }

        private static TimeSpan Clamp(TimeSpan t) => t < MinTtl ? MinTtl : t > MaxTtl ? MaxTtl : t;

        /// <summary>The NS of the domain, or of its closest parent zone (a subdomain has none of its own).</summary>
        private async Task<(DnsResult<string> Result, string Zone)> NsOfAsync(string domain, CancellationToken cancel)
        {
            var name = domain;
            DnsResult<string> result = DnsResult<string>.Of(DnsStatus.NoData);
            for (var level = 0; level < 4 && name.Contains("."); level++)
            {
                // the domain's own NS are asked for each domain; a parent zone's once for all its subdomains
                result = level == 0 ? await _dns.QueryNsAsync(name, cancel).ConfigureAwait(false)
                    : await _parentNs.GetOrAdd(name, n => new Lazy<Task<DnsResult<string>>>(() => _dns.QueryNsAsync(n, cancel))).Value.ConfigureAwait(false);
                if (result.IsOk || result.IsUnknown)
                {
                    return (result, name);
                }

                name = name.Substring(name.IndexOf('.') + 1);
            }

            return (result, name);
        }

        private Task<DnsResult<IPAddress>> AddressesOfAsync(string host, CancellationToken cancel) =>
            _hostAddresses.GetOrAdd(host, h => new Lazy<Task<DnsResult<IPAddress>>>(() => _dns.QueryAddressesAsync(h, false, cancel))).Value;

        /// <summary>
        /// The origin AS of an address from the configured IP-to-AS zone (0 when there is no zone or no answer; the detail
        /// says why when the lookup failed rather than found nothing). Shared with the attribution's own lookups.
        /// </summary>
        public Task<(int Asn, string? Detail)> OriginAsAsync(IPAddress ip, CancellationToken cancellationToken) => AsnOfAsync(ip ?? throw new ArgumentNullException(nameof(ip)), cancellationToken);

        private Task<(int, string?)> AsnOfAsync(IPAddress ip, CancellationToken cancel) =>
            _asns.GetOrAdd(ip.ToString(), _ => new Lazy<Task<(int, string?)>>(() => LookupAsnAsync(ip, cancel))).Value;

        /// <summary>Team Cymru's format: TXT "AS | prefix | CC | registry | date" at the reversed address under the zone.</summary>
        private async Task<(int, string?)> LookupAsnAsync(IPAddress ip, CancellationToken cancel)
        {
            var v4 = ip.AddressFamily == AddressFamily.InterNetwork || ip.IsIPv4MappedToIPv6;
            var zone = v4 ? _asnZone : _asnZone6;
            if (zone == null)
            {
                return (0, null);
            }

            var reverse = DnsClientResolver.ReverseName(ip);
            var name = reverse.Substring(0, reverse.Length - (v4 ? ".in-addr.arpa".Length : ".ip6.arpa".Length)) + "." + zone;
            var txt = await _dns.QueryTxtAsync(name, cancel).ConfigureAwait(false);
            if (!txt.IsOk)
            {
                return (0, txt.IsUnknown ? $"origin AS of {ip}: {txt.Status}" : null);
            }

            // "16276 | 51.68.0.0/16 | FR | ripencc | 2012-04-05" (several AS numbers may come space-separated)
            var first = txt.Records[0].Split('|')[0].Trim().Split(' ')[0];
            return int.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out var asn) ? (asn, null) : (0, $"origin AS of {ip}: unreadable answer '{txt.Records[0]}'");
        }
    }
}
