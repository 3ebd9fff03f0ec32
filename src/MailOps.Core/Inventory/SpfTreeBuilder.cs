using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Dns;
using MailOps.Core.Providers;
using MailOps.Core.Spf;

namespace MailOps.Core.Inventory
{
    /// <summary>
    /// Expands a domain's SPF record into a tree: every include and redirect followed (at most
    /// <see cref="SpfTreeOptions.MaxDepth"/> levels, loops stopped), a and mx terms resolved to addresses, the DNS lookups
    /// counted as RFC 7208 section 4.6.4 counts them for an evaluation that matches nothing (the worst case, which is what
    /// the limit is about), and each include matched against the provider catalogue. The terms of one record are resolved
    /// concurrently, at most <see cref="SpfTreeOptions.MaxConcurrency"/> queries at a time. Records are read with the same
    /// parser as <see cref="SpfEvaluator"/>; macros are reported, not expanded (they depend on each message).
    /// </summary>
    public sealed class SpfTreeBuilder
    {
        private readonly IDnsResolver _dns;
        private readonly ProviderCatalog _catalog;
        private readonly SpfTreeOptions _options;

        public SpfTreeBuilder(IDnsResolver dns, ProviderCatalog catalog, SpfTreeOptions? options = null)
        {
            _dns = dns ?? throw new ArgumentNullException(nameof(dns));
            _catalog = catalog ?? throw new ArgumentNullException(nameof(catalog));
            _options = options ?? new SpfTreeOptions();
            if (_options.MaxConcurrency < 1 || _options.MaxDepth < 0 || _options.MaxIncludes < 0)
            {
                throw new ArgumentException("MaxConcurrency must be at least 1; MaxDepth and MaxIncludes at least 0.", nameof(options));
            }
        }

        /// <summary>
        /// Builds the tree of <paramref name="domain"/>'s SPF record. DNS failures never throw: they are in the tree as
        /// Unknown. Throws <see cref="OperationCanceledException"/> when cancelled, <see cref="ArgumentException"/> for an
        /// empty domain.
        /// </summary>
        public async Task<SpfTree> BuildAsync(string domain, CancellationToken cancellationToken)
        {
            if (string.IsNullOrWhiteSpace(domain))
            {
                throw new ArgumentException("A domain is required.", nameof(domain));
            }

            domain = domain.Trim().TrimEnd('.').ToLowerInvariant();
            cancellationToken.ThrowIfCancellationRequested();
            using (var run = new Run(_dns, _options, cancellationToken))
            {
                var top = await FetchAsync(run, domain).ConfigureAwait(false);
                var terms = top.Parsed != null
                    ? await ExpandAsync(run, top.Parsed, domain, 0, new[] { domain }).ConfigureAwait(false)
                    : (IReadOnlyList<SpfTreeNode>)Array.Empty<SpfTreeNode>();
                var tree = new SpfTree(domain, top.Status, top.Record, top.Detail, terms, _options);
                Summarise(tree);
                return tree;
            }
        }

        // ---------- one build: its cache, its bound on queries in flight ----------

        private sealed class Run : IDisposable
        {
            private readonly IDnsResolver _dns;
            private readonly SemaphoreSlim _gate;
            private readonly ConcurrentDictionary<string, Lazy<Task<object>>> _cache = new ConcurrentDictionary<string, Lazy<Task<object>>>(StringComparer.OrdinalIgnoreCase);
            private int _followed;

            public Run(IDnsResolver dns, SpfTreeOptions options, CancellationToken cancel)
            {
                _dns = dns;
                Options = options;
                Cancel = cancel;
                _gate = new SemaphoreSlim(options.MaxConcurrency, options.MaxConcurrency);
            }

            public SpfTreeOptions Options { get; }
            public CancellationToken Cancel { get; }

            /// <summary>False once MaxIncludes targets were taken.</summary>
            public bool TakeFollow() => Interlocked.Increment(ref _followed) <= Options.MaxIncludes;

            public Task<DnsResult<string>> TxtAsync(string name) => Cached("TXT " + name, () => _dns.QueryTxtAsync(name, Cancel));

            public Task<DnsResult<MxRecord>> MxAsync(string name) => Cached("MX " + name, () => _dns.QueryMxAsync(name, Cancel));

            public Task<DnsResult<IPAddress>> AddressesAsync(string name, bool v6) => Cached((v6 ? "AAAA " : "A ") + name, () => _dns.QueryAddressesAsync(name, v6, Cancel));

            // the same name is often named several times (diamond includes, a and mx of one host): asked once per build
            private async Task<DnsResult<T>> Cached<T>(string key, Func<Task<DnsResult<T>>> query)
            {
                var lazy = _cache.GetOrAdd(key, _ => new Lazy<Task<object>>(async () =>
                {
                    await _gate.WaitAsync(Cancel).ConfigureAwait(false);
                    try
                    {
                        return await query().ConfigureAwait(false);
                    }
                    finally
                    {
                        _gate.Release();
                    }
                }));
                return (DnsResult<T>)await lazy.Value.ConfigureAwait(false);
            }

            public void Dispose() => _gate.Dispose();
        }

        private sealed class Fetched
        {
            public Fetched(SpfRecordStatus status, string? record, SpfParsedRecord? parsed, string? detail)
            {
                Status = status;
                Record = record;
                Parsed = parsed;
                Detail = detail;
            }

            public SpfRecordStatus Status { get; }
            public string? Record { get; }
            public SpfParsedRecord? Parsed { get; }
            public string? Detail { get; }
        }

        private static async Task<Fetched> FetchAsync(Run run, string domain)
        {
            if (!SpfEvaluator.IsValidDomain(domain, requireMultiLabel: true))
            {
                return new Fetched(SpfRecordStatus.None, null, null, $"'{domain}' is not a valid domain name");
            }

            var txt = await run.TxtAsync(domain).ConfigureAwait(false);
            if (txt.IsUnknown)
            {
                return new Fetched(SpfRecordStatus.Unknown, null, null, $"the TXT lookup of {domain} failed ({txt.Status}{(txt.Detail != null ? ": " + txt.Detail : "")})");
            }

            // record selection as in check_host() (RFC 7208 section 4.5)
            var records = txt.Records.Where(r => r.Equals("v=spf1", StringComparison.OrdinalIgnoreCase) || r.StartsWith("v=spf1 ", StringComparison.OrdinalIgnoreCase)).ToList();
            if (records.Count == 0)
            {
                return new Fetched(SpfRecordStatus.None, null, null, txt.IsAbsent ? $"{domain} has no TXT record ({txt.Status})" : $"{domain} publishes no SPF record");
            }

            if (records.Count > 1)
            {
                return new Fetched(SpfRecordStatus.Multiple, null, null, $"{domain} publishes {records.Count} SPF records: " + string.Join(" | ", records));
            }

            try
            {
                return new Fetched(SpfRecordStatus.Found, records[0], SpfRecordParser.Parse(records[0]), null);
            }
            catch (SpfSyntaxException e)
            {
                var why = e.AtTerm ? $"syntax error at '{e.Term}': {e.Why}" : e.Message;
                return new Fetched(SpfRecordStatus.Invalid, records[0], null, why);
            }
        }

        private async Task<IReadOnlyList<SpfTreeNode>> ExpandAsync(Run run, SpfParsedRecord parsed, string domain, int depth, IReadOnlyList<string> path)
        {
            run.Cancel.ThrowIfCancellationRequested();
            var nodes = new List<SpfTreeNode>();
            var work = new List<Task>();
            var sawAll = false;
            foreach (var term in parsed.Terms)
            {
                var node = new SpfTreeNode(term.Text, term.Name, ToQualifier(term.Qualifier), domain, depth, path);
                nodes.Add(node);
                if (sawAll)
                {
                    // check_host() stops at 'all', which always matches
                    Ignore(node, "after 'all': never evaluated");
                    continue;
                }

                sawAll |= term.Name == "all";
                work.Add(ResolveAsync(run, node, term, depth, path));
            }

            if (parsed.Redirect != null)
            {
                var node = new SpfTreeNode("redirect=" + parsed.Redirect, "redirect", null, domain, depth, path) { Target = Target(parsed.Redirect, domain) };
                nodes.Add(node);
                if (sawAll)
                {
                    Ignore(node, "the record has an 'all' mechanism, so redirect= is ignored (RFC 7208 section 6.1)");
                }
                else
                {
                    node.CountsAsLookup = true;
                    work.Add(FollowAsync(run, node, parsed.Redirect, depth, path));
                }
            }

            await Task.WhenAll(work).ConfigureAwait(false);
            return nodes;
        }

        private static void Ignore(SpfTreeNode node, string why)
        {
            node.Status = SpfNodeStatus.Ignored;
            node.Detail = why;
        }

        private static SpfQualifier ToQualifier(char q) => q switch
        {
            '-' => SpfQualifier.Fail,
            '~' => SpfQualifier.SoftFail,
            '?' => SpfQualifier.Neutral,
            _ => SpfQualifier.Pass,
        };

        private static bool HasMacro(string? spec) => spec != null && spec.IndexOf('%') >= 0;

        private static string Target(string? spec, string domain) => (spec ?? domain).TrimEnd('.');

        private Task ResolveAsync(Run run, SpfTreeNode node, SpfTerm term, int depth, IReadOnlyList<string> path)
        {
            switch (term.Name)
            {
                case "ip4":
                case "ip6":
                    node.Network = term.Network + "/" + (term.Name == "ip4" ? term.Cidr4 : term.Cidr6).ToString(CultureInfo.InvariantCulture);
                    return Task.CompletedTask;
                case "all":
                    return Task.CompletedTask;
                case "include":
                    node.CountsAsLookup = true;
                    node.Target = Target(term.DomainSpec, node.Domain);
                    return FollowAsync(run, node, term.DomainSpec!, depth, path);
                case "ptr":
                    node.CountsAsLookup = true;
                    node.Target = Target(term.DomainSpec, node.Domain);
                    node.Status = HasMacro(term.DomainSpec) ? SpfNodeStatus.Macro : SpfNodeStatus.ClientDependent;
                    node.Detail = "ptr depends on the reverse DNS of each connecting client: it cannot be listed in advance (and RFC 7208 asks not to use it)";
                    return Task.CompletedTask;
                case "exists":
                    node.CountsAsLookup = true;
                    node.Target = Target(term.DomainSpec, node.Domain);
                    return ExistsAsync(run, node, term);
                case "a":
                case "mx":
                    node.CountsAsLookup = true;
                    node.Target = Target(term.DomainSpec, node.Domain);
                    return term.Name == "a" ? AAsync(run, node, term) : MxAsync(run, node, term);
                default:
                    return Task.CompletedTask;
            }
        }

        private static bool MacroNode(SpfTreeNode node, string? spec)
        {
            if (!HasMacro(spec))
            {
                return false;
            }

            node.Status = SpfNodeStatus.Macro;
            node.Detail = $"'{spec}' has macros: it depends on each message (sender, client address), so it is not expanded";
            return true;
        }

        private async Task FollowAsync(Run run, SpfTreeNode node, string spec, int depth, IReadOnlyList<string> path)
        {
            if (MacroNode(node, spec))
            {
                return;
            }

            var target = Target(spec, node.Domain).ToLowerInvariant();
            var matches = _catalog.MatchSpfInclude(target);
            if (matches.Count > 0)
            {
                node.Service = matches[0];
                node.ServiceVia = node.Target;
            }

            if (path.Contains(target, StringComparer.OrdinalIgnoreCase))
            {
                node.Status = SpfNodeStatus.Loop;
                node.Detail = $"{target} is already being evaluated above ({string.Join(" > ", path)}): a loop, which receivers can only end at the lookup limit";
                return;
            }

            if (depth + 1 > run.Options.MaxDepth)
            {
                node.Status = SpfNodeStatus.TooDeep;
                node.Detail = $"deeper than {run.Options.MaxDepth} levels: not followed";
                return;
            }

            if (!run.TakeFollow())
            {
                node.Status = SpfNodeStatus.NotFollowed;
                node.Detail = $"more than {run.Options.MaxIncludes} includes in this tree: not followed";
                return;
            }

            var fetched = await FetchAsync(run, target).ConfigureAwait(false);
            node.TargetStatus = fetched.Status;
            node.TargetRecord = fetched.Record;
            switch (fetched.Status)
            {
                case SpfRecordStatus.Unknown:
                    node.Status = SpfNodeStatus.Unknown;
                    node.Detail = fetched.Detail;
                    return;
                case SpfRecordStatus.None:
                    node.Status = SpfNodeStatus.NoRecord;
                    node.Detail = $"{fetched.Detail}: receivers return permerror when they reach this {node.Mechanism}";
                    return;
                case SpfRecordStatus.Multiple:
                    node.Status = SpfNodeStatus.Multiple;
                    node.Detail = fetched.Detail;
                    return;
                case SpfRecordStatus.Invalid:
                    node.Status = SpfNodeStatus.Invalid;
                    node.Detail = $"the record of {target} has a {fetched.Detail}";
                    return;
            }

            var childPath = path.Concat(new[] { target }).ToList();
            node.Children = await ExpandAsync(run, fetched.Parsed!, target, depth + 1, childPath).ConfigureAwait(false);
        }

        private static async Task ExistsAsync(Run run, SpfTreeNode node, SpfTerm term)
        {
            if (MacroNode(node, term.DomainSpec))
            {
                return;
            }

            var a = await run.AddressesAsync(node.Target!, false).ConfigureAwait(false);
            SetLookupStatus(node, a, $"the A lookup of {node.Target}");
        }

        private static void SetLookupStatus<T>(SpfTreeNode node, DnsResult<T> result, string what)
        {
            if (result.IsUnknown)
            {
                node.Status = SpfNodeStatus.Unknown;
                node.Detail = $"{what} failed ({result.Status})";
            }
            else if (result.IsAbsent)
            {
                node.Status = SpfNodeStatus.Void;
                node.Detail = $"{what} found nothing ({result.Status}): a void lookup";
            }
        }

        private static async Task AAsync(Run run, SpfTreeNode node, SpfTerm term)
        {
            if (MacroNode(node, term.DomainSpec))
            {
                return;
            }

            var (addresses, unknown, absent) = await AddressesAsync(run, node.Target!, term).ConfigureAwait(false);
            node.Addresses = addresses;
            if (unknown != null)
            {
                node.Status = SpfNodeStatus.Unknown;
                node.Detail = unknown;
            }
            else if (absent)
            {
                node.Status = SpfNodeStatus.Void;
                node.Detail = $"{node.Target} has no A or AAAA record: a void lookup";
            }
        }

        /// <summary>A and AAAA of a host, with the term's prefix lengths; the failure, if any; whether both were absent.</summary>
        private static async Task<(List<string> Addresses, string? Unknown, bool Absent)> AddressesAsync(Run run, string host, SpfTerm term)
        {
            var v4 = run.AddressesAsync(host, false);
            var v6 = run.AddressesAsync(host, true);
            var results = await Task.WhenAll(v4, v6).ConfigureAwait(false);
            var list = new List<string>();
            list.AddRange(results[0].Records.Select(a => a + "/" + term.Cidr4.ToString(CultureInfo.InvariantCulture)));
            list.AddRange(results[1].Records.Select(a => a + "/" + term.Cidr6.ToString(CultureInfo.InvariantCulture)));
            var failed = results.Where(r => r.IsUnknown).Select(r => r.Status.ToString()).ToList();
            var unknown = failed.Count > 0 ? $"the address lookup of {host} failed ({string.Join(", ", failed)})" : null;
            return (list, unknown, results.All(r => r.IsAbsent));
        }

        private static async Task MxAsync(Run run, SpfTreeNode node, SpfTerm term)
        {
            if (MacroNode(node, term.DomainSpec))
            {
                return;
            }

            var mx = await run.MxAsync(node.Target!).ConfigureAwait(false);
            SetLookupStatus(node, mx, $"the MX lookup of {node.Target}");
            if (!mx.IsOk)
            {
                return;
            }

            var hosts = mx.Records.OrderBy(r => r.Preference).Select(r => r.Exchange.TrimEnd('.').ToLowerInvariant()).ToList();
            node.MxHosts = hosts;
            var limit = run.Options.MaxNamesPerMechanism;
            var lookups = hosts.Take(limit).Select(h => AddressesAsync(run, h, term)).ToList();
            var found = await Task.WhenAll(lookups).ConfigureAwait(false);
            node.Addresses = found.SelectMany(f => f.Addresses).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
            var failures = found.Where(f => f.Unknown != null).Select(f => f.Unknown!).ToList();
            if (hosts.Count > limit)
            {
                node.Status = SpfNodeStatus.TooManyNames;
                node.Detail = $"{node.Target} has {hosts.Count} MX names; RFC 7208 allows {limit} per mx term (a permerror)";
            }
            else if (failures.Count > 0)
            {
                node.Status = SpfNodeStatus.Unknown;
                node.Detail = string.Join("; ", failures);
            }
        }

        // ---------- the figures: counted on the finished tree, in evaluation order ----------

        private static void Summarise(SpfTree tree)
        {
            var nodes = new List<SpfTreeNode>();
            var networks = new List<SpfNetwork>();
            var services = new List<SpfService>();
            var lookups = 0;
            var voids = 0;

            // context maps the result a term gives inside its record to the result of the domain asked: identity at the
            // top and through a redirect; through an include, only Pass goes up (as the include's own qualifier)
            void Walk(IReadOnlyList<SpfTreeNode> list, Func<SpfQualifier, SpfQualifier?> context, ProviderMatch? service, string? via)
            {
                foreach (var node in list)
                {
                    nodes.Add(node);
                    if (node.Service == null && service != null)
                    {
                        node.Service = service;
                        node.ServiceVia = via;
                    }

                    if (node.Status == SpfNodeStatus.Ignored)
                    {
                        continue;
                    }

                    if (node.CountsAsLookup)
                    {
                        node.LookupNumber = ++lookups;
                        if (lookups == tree.MaxDnsLookups + 1)
                        {
                            tree.LimitExceededAt = node;
                        }
                    }

                    if (node.Status == SpfNodeStatus.Void && ++voids == tree.MaxVoidLookups + 1)
                    {
                        tree.VoidLimitExceededAt = node;
                    }

                    var result = node.Qualifier.HasValue ? context(node.Qualifier.Value) : null;
                    if (node.Network != null)
                    {
                        networks.Add(new SpfNetwork(node.Network, node, result));
                    }

                    networks.AddRange(node.Addresses.Select(a => new SpfNetwork(a, node, result)));
                    var own = node.IsFollowed && node.ServiceVia == node.Target ? node.Service : null;
                    if (own != null)
                    {
                        services.Add(new SpfService(own, node) { IsAuthorized = node.Mechanism == "redirect" ? context(SpfQualifier.Pass) == SpfQualifier.Pass : result == SpfQualifier.Pass });
                    }

                    if (node.Children.Count > 0)
                    {
                        var inner = node.Mechanism == "redirect"
                            ? context
                            : r => r == SpfQualifier.Pass ? context(node.Qualifier ?? SpfQualifier.Pass) : null;
                        Walk(node.Children, inner, node.Service, node.ServiceVia);
                    }
                }
            }

            Walk(tree.Terms, q => q, null, null);
            tree.Nodes = nodes;
            tree.DnsLookups = lookups;
            tree.VoidLookups = voids;
            tree.Networks = networks;
            tree.Services = services;
            tree.FailedLookups = nodes.Where(n => n.Status == SpfNodeStatus.Unknown).ToList();
            tree.VoidNodes = nodes.Where(n => n.Status == SpfNodeStatus.Void).ToList();
            tree.Loops = nodes.Where(n => n.Status == SpfNodeStatus.Loop).ToList();
            tree.MacroTerms = nodes.Where(n => n.Status == SpfNodeStatus.Macro).ToList();
            tree.OverLookupLimit = lookups > tree.MaxDnsLookups || tree.Loops.Count > 0;
            tree.LimitExceededAt ??= tree.Loops.Count > 0 ? tree.Loops[0] : null;
            tree.OverVoidLimit = voids > tree.MaxVoidLookups;
            tree.IsComplete = tree.Status == SpfRecordStatus.Found && !nodes.Any(n =>
                n.Status == SpfNodeStatus.Unknown || n.Status == SpfNodeStatus.Macro || n.Status == SpfNodeStatus.ClientDependent
                || n.Status == SpfNodeStatus.TooDeep || n.Status == SpfNodeStatus.NotFollowed);
            tree.Problems = Problems(tree);
        }

        private static List<string> Problems(SpfTree tree)
        {
            var problems = new List<string>();
            if (tree.Status != SpfRecordStatus.Found)
            {
                problems.Add(tree.Status switch
                {
                    SpfRecordStatus.Unknown => $"The SPF record of {tree.Domain} is unknown: {tree.Detail}.",
                    SpfRecordStatus.None => $"{tree.Domain} has no SPF record ({tree.Detail}).",
                    SpfRecordStatus.Multiple => $"{tree.Detail}: receivers return permerror.",
                    _ => $"The SPF record of {tree.Domain} has a {tree.Detail}: receivers return permerror.",
                });
                return problems;
            }

            if (tree.OverLookupLimit)
            {
                var at = tree.LimitExceededAt;
                problems.Add(tree.DnsLookups > tree.MaxDnsLookups
                    ? $"An evaluation needs {tree.DnsLookups} DNS lookups; RFC 7208 allows {tree.MaxDnsLookups}: lookup {tree.MaxDnsLookups + 1} is '{at!.Term}' in {at.Domain} ({at.PathText}), and receivers return permerror there."
                    : $"'{at!.Term}' in {at.Domain} loops back to a record being evaluated: receivers run past the {tree.MaxDnsLookups}-lookup limit and return permerror.");
            }

            if (tree.OverVoidLimit)
            {
                var at = tree.VoidLimitExceededAt!;
                problems.Add($"{tree.VoidLookups} lookups find nothing; RFC 7208 allows {tree.MaxVoidLookups}: the next one, '{at.Term}' in {at.Domain}, is a permerror.");
            }

            foreach (var n in tree.Nodes.Where(n => n.Status != SpfNodeStatus.Ok && n.Status != SpfNodeStatus.Loop))
            {
                problems.Add($"'{n.Term}' in {n.Domain}: {n.Detail ?? n.Status.ToString()}.");
            }

            return problems;
        }
    }
}
