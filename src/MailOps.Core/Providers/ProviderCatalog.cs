using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using MailOps.Core.Config;
using YamlDotNet.RepresentationModel;

namespace MailOps.Core.Providers
{
    /// <summary>
    /// What a provider is, as far as mail from your domains is concerned. Only a hint for people reading an inventory:
    /// nothing in MailOps decides anything from it.
    /// </summary>
    public enum ProviderKind
    {
        /// <summary>Not said by the catalogue or the configuration.</summary>
        Unspecified,

        /// <summary>Hosts people's mailboxes and sends their mail (Google Workspace, Microsoft 365, Zoho, Proton...).</summary>
        MailboxProvider,

        /// <summary>Web and mail hosting, registrars, DNS hosting (OVH, IONOS, Gandi...).</summary>
        Hosting,

        /// <summary>An email sending service for both transactional and bulk mail, by API or SMTP (SendGrid, Mailjet, Mailgun, Amazon SES...).</summary>
        Esp,

        /// <summary>A marketing platform that sends campaigns for you (Mailchimp, HubSpot, Salesforce Marketing Cloud...).</summary>
        Marketing,

        /// <summary>A service that sends transactional mail only (Postmark, Mandrill...).</summary>
        Transactional,

        /// <summary>An application that sends its own notifications in your name (a help desk such as Zendesk...).</summary>
        Application,

        /// <summary>An email security gateway in front of or behind your mail servers (Mimecast, Proofpoint...).</summary>
        Security,
    }

    /// <summary>One provider of the catalogue, with its patterns compiled.</summary>
    public sealed class CatalogProvider
    {
        internal CatalogProvider(string name, IReadOnlyList<string> mx, IReadOnlyList<string> ns, IReadOnlyList<int> asns, IReadOnlyList<string> domains, string origin,
            ProviderKind kind = ProviderKind.Unspecified, IReadOnlyList<string>? spf = null, IReadOnlyList<string>? ptr = null, IReadOnlyList<string>? dkim = null)
        {
            Name = name;
            MxPatterns = mx;
            NsPatterns = ns;
            AsNumbers = asns;
            Domains = domains;
            Origin = origin;
            Kind = kind;
            SpfPatterns = spf ?? Array.Empty<string>();
            PtrPatterns = ptr ?? Array.Empty<string>();
            DkimSelectors = dkim ?? Array.Empty<string>();
            MxRegexes = mx.Select(Glob).ToList();
            NsRegexes = ns.Select(Glob).ToList();
            SpfRegexes = SpfPatterns.Select(Glob).ToList();
            PtrRegexes = PtrPatterns.Select(Glob).ToList();
            DkimRegexes = DkimSelectors.Select(Glob).ToList();
        }

        public string Name { get; }
        public IReadOnlyList<string> MxPatterns { get; }
        public IReadOnlyList<string> NsPatterns { get; }
        public IReadOnlyList<int> AsNumbers { get; }
        public IReadOnlyList<string> Domains { get; }

        /// <summary>What the provider is (mailbox provider, ESP, hosting...); Unspecified when nobody said.</summary>
        public ProviderKind Kind { get; }

        /// <summary>
        /// Patterns for the domains its customers name in their SPF record (include: or redirect=), for example
        /// spf.protection.outlook.com: an SPF include of one of these means the domain lets this provider send for it.
        /// </summary>
        public IReadOnlyList<string> SpfPatterns { get; }

        /// <summary>Patterns for the PTR (reverse DNS) names of the hosts it sends customers' mail from.</summary>
        public IReadOnlyList<string> PtrPatterns { get; }

        /// <summary>
        /// The DKIM selectors it tells customers to publish (selector1, google...). A selector with '*' is a pattern: it is
        /// matched, never probed.
        /// </summary>
        public IReadOnlyList<string> DkimSelectors { get; }

        /// <summary>"catalogue", "configuration" or "catalogue+configuration".</summary>
        public string Origin { get; }

        internal IReadOnlyList<Regex> MxRegexes { get; }
        internal IReadOnlyList<Regex> NsRegexes { get; }
        internal IReadOnlyList<Regex> SpfRegexes { get; }
        internal IReadOnlyList<Regex> PtrRegexes { get; }
        internal IReadOnlyList<Regex> DkimRegexes { get; }

        /// <summary>'*' is any run of characters (dots included); the rest is literal; the whole name must match.</summary>
        internal static Regex Glob(string pattern) =>
            new Regex("^" + Regex.Escape(pattern.Trim().TrimEnd('.').ToLowerInvariant()).Replace(@"\*", ".*") + "$",
                RegexOptions.CultureInvariant | RegexOptions.IgnoreCase);

        public override string ToString() => Name;
    }

    /// <summary>Which of a provider's patterns matched what: an SPF include, a PTR name or a DKIM selector.</summary>
    public sealed class ProviderMatch
    {
        internal ProviderMatch(CatalogProvider provider, string pattern, string value)
        {
            Provider = provider;
            Pattern = pattern;
            Value = value;
        }

        public CatalogProvider Provider { get; }

        /// <summary>The provider's name (the same as Provider.Name).</summary>
        public string Name => Provider.Name;

        public ProviderKind Kind => Provider.Kind;

        /// <summary>The catalogue or configuration pattern that matched.</summary>
        public string Pattern { get; }

        /// <summary>What was matched (the include domain, host name or selector), in lower case.</summary>
        public string Value { get; }

        public override string ToString() => $"{Provider.Name} ({Pattern})";
    }

    /// <summary>
    /// The provider catalogue: the list shipped with MailOps (providers.yaml, embedded) extended by the configuration's
    /// 'providers' section.
    /// </summary>
    public sealed class ProviderCatalog
    {
        private readonly Dictionary<int, List<CatalogProvider>> _byAsn;
        private readonly Dictionary<string, CatalogProvider> _byDomain;

        public ProviderCatalog(IEnumerable<CatalogProvider> providers)
        {
            Providers = providers.ToList();
            _byAsn = new Dictionary<int, List<CatalogProvider>>();
            _byDomain = new Dictionary<string, CatalogProvider>(StringComparer.OrdinalIgnoreCase);
            foreach (var p in Providers)
            {
                foreach (var a in p.AsNumbers)
                {
                    if (!_byAsn.TryGetValue(a, out var list))
                    {
                        _byAsn[a] = list = new List<CatalogProvider>();
                    }

                    list.Add(p);
                }

                foreach (var d in p.Domains)
                {
                    _byDomain[d] = p;
                }
            }
        }

        public IReadOnlyList<CatalogProvider> Providers { get; }

        /// <summary>The catalogue shipped with MailOps.</summary>
        public static ProviderCatalog BuiltIn { get; } = new ProviderCatalog(LoadBuiltIn());

        /// <summary>The shipped catalogue extended by the configuration (null: the shipped one alone).</summary>
        public static ProviderCatalog For(MailOpsConfig? config)
        {
            if (config == null || config.Providers.Count == 0)
            {
                return BuiltIn;
            }

            var merged = BuiltIn.Providers.ToDictionary(p => p.Name, p => p, StringComparer.OrdinalIgnoreCase);
            foreach (var c in config.Providers)
            {
                if (merged.TryGetValue(c.Name, out var b))
                {
                    // the configuration's kind wins (a site knows how it uses the provider); patterns add up
                    merged[c.Name] = new CatalogProvider(b.Name, b.MxPatterns.Concat(c.MxPatterns).Distinct().ToList(), b.NsPatterns.Concat(c.NsPatterns).Distinct().ToList(),
                        b.AsNumbers.Concat(c.AsNumbers).Distinct().ToList(), b.Domains.Concat(c.Domains).Distinct(StringComparer.OrdinalIgnoreCase).ToList(), "catalogue+configuration",
                        c.Kind ?? b.Kind, Union(b.SpfPatterns, c.SpfPatterns), Union(b.PtrPatterns, c.PtrPatterns), Union(b.DkimSelectors, c.DkimSelectors));
                }
                else
                {
                    merged[c.Name] = new CatalogProvider(c.Name, c.MxPatterns, c.NsPatterns, c.AsNumbers, c.Domains, "configuration",
                        c.Kind ?? ProviderKind.Unspecified, c.SpfPatterns, c.PtrPatterns, c.DkimSelectors);
                }
            }

            // configuration entries first: a site's own, more specific patterns win over the catalogue's broad ones
            return new ProviderCatalog(merged.Values.OrderBy(p => p.Origin == "catalogue" ? 1 : 0));
        }

        private static List<string> Union(IReadOnlyList<string> a, IReadOnlyList<string> b) => a.Concat(b).Distinct(StringComparer.OrdinalIgnoreCase).ToList();

        /// <summary>The provider of that name (case-insensitive), or null.</summary>
        public CatalogProvider? Find(string name) => Providers.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));

        /// <summary>The first provider whose MX pattern matches the host, and the pattern.</summary>
        public (CatalogProvider Provider, string Pattern)? MatchMx(string host) =>
            _mxMatches.GetOrAdd(host.TrimEnd('.').ToLowerInvariant(), h => Match(h, p => p.MxRegexes, p => p.MxPatterns));

        public (CatalogProvider Provider, string Pattern)? MatchNs(string host) =>
            _nsMatches.GetOrAdd(host.TrimEnd('.').ToLowerInvariant(), h => Match(h, p => p.NsRegexes, p => p.NsPatterns));

        // many domains share a few mail and name server hosts: each host is matched against the patterns once
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (CatalogProvider, string)?> _mxMatches =
            new System.Collections.Concurrent.ConcurrentDictionary<string, (CatalogProvider, string)?>(StringComparer.Ordinal);

        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (CatalogProvider, string)?> _nsMatches =
            new System.Collections.Concurrent.ConcurrentDictionary<string, (CatalogProvider, string)?>(StringComparer.Ordinal);

        /// <summary>
        /// The providers whose SPF pattern matches <paramref name="domain"/> (a domain named by include: or redirect=), each
        /// with the pattern that matched; empty when none does. Several providers can share a domain, so every match is
        /// returned, configuration entries first.
        /// </summary>
        public IReadOnlyList<ProviderMatch> MatchSpfInclude(string domain) =>
            _spfMatches.GetOrAdd(Normalise(domain), d => MatchAll(d, p => p.SpfRegexes, p => p.SpfPatterns));

        /// <summary>The providers whose PTR pattern matches the host name of a sending address (its reverse DNS name).</summary>
        public IReadOnlyList<ProviderMatch> MatchPtr(string host) =>
            _ptrMatches.GetOrAdd(Normalise(host), h => MatchAll(h, p => p.PtrRegexes, p => p.PtrPatterns));

        /// <summary>
        /// The providers that tell their customers to publish this DKIM selector. Common names (selector1, s1, k1) can be
        /// shared by several providers and by anyone's own servers: a match is a candidate, not a proof.
        /// </summary>
        public IReadOnlyList<ProviderMatch> MatchDkimSelector(string selector) =>
            _dkimMatches.GetOrAdd(Normalise(selector), x => MatchAll(x, p => p.DkimRegexes, p => p.DkimSelectors));

        /// <summary>The catalogue's DKIM selectors without a wildcard (those that can be probed in DNS), in lower case, once each.</summary>
        public IReadOnlyList<string> ProbeableDkimSelectors =>
            Providers.SelectMany(p => p.DkimSelectors).Where(x => x.IndexOf('*') < 0).Select(x => x.ToLowerInvariant()).Distinct(StringComparer.Ordinal).ToList();

        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, IReadOnlyList<ProviderMatch>> _spfMatches =
            new System.Collections.Concurrent.ConcurrentDictionary<string, IReadOnlyList<ProviderMatch>>(StringComparer.Ordinal);

        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, IReadOnlyList<ProviderMatch>> _ptrMatches =
            new System.Collections.Concurrent.ConcurrentDictionary<string, IReadOnlyList<ProviderMatch>>(StringComparer.Ordinal);

        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, IReadOnlyList<ProviderMatch>> _dkimMatches =
            new System.Collections.Concurrent.ConcurrentDictionary<string, IReadOnlyList<ProviderMatch>>(StringComparer.Ordinal);

        private static string Normalise(string value) => (value ?? "").Trim().TrimEnd('.').ToLowerInvariant();

        private System.Collections.ObjectModel.ReadOnlyCollection<ProviderMatch> MatchAll(string value, Func<CatalogProvider, IReadOnlyList<Regex>> regexes, Func<CatalogProvider, IReadOnlyList<string>> patterns)
        {
            var result = new List<ProviderMatch>();
            if (value.Length == 0)
            {
                return result.AsReadOnly();
            }

            foreach (var p in Providers)
            {
                var rs = regexes(p);
                for (var i = 0; i < rs.Count; i++)
                {
                    if (rs[i].IsMatch(value))
                    {
                        result.Add(new ProviderMatch(p, patterns(p)[i], value));
                        break; // one match per provider: its first pattern that matches
                    }
                }
            }

            return result.AsReadOnly(); // cached and shared: callers must not be able to change it
        }

        public IReadOnlyList<CatalogProvider> MatchAsn(int asn) => _byAsn.TryGetValue(asn, out var l) ? l : (IReadOnlyList<CatalogProvider>)Array.Empty<CatalogProvider>();

        /// <summary>The provider owning the address domain (or one of its parents: yahoo.co.uk, mail.example.fr).</summary>
        public CatalogProvider? MatchOwner(string domain)
        {
            var d = domain.TrimEnd('.').ToLowerInvariant();
            while (d.Contains("."))
            {
                if (_byDomain.TryGetValue(d, out var p))
                {
                    return p;
                }

                d = d.Substring(d.IndexOf('.') + 1);
            }

            return null;
        }

        private (CatalogProvider, string)? Match(string host, Func<CatalogProvider, IReadOnlyList<Regex>> regexes, Func<CatalogProvider, IReadOnlyList<string>> patterns)
        {
            var h = host.TrimEnd('.').ToLowerInvariant();
            foreach (var p in Providers)
            {
                var rs = regexes(p);
                for (var i = 0; i < rs.Count; i++)
                {
                    if (rs[i].IsMatch(h))
                    {
                        return (p, patterns(p)[i]);
                    }
                }
            }

            return null;
        }

        private static List<CatalogProvider> LoadBuiltIn()
        {
            var asm = typeof(ProviderCatalog).Assembly;
            var name = asm.GetManifestResourceNames().Single(n => n.EndsWith("providers.yaml", StringComparison.Ordinal));
            using (var stream = asm.GetManifestResourceStream(name)!)
            using (var reader = new StreamReader(stream))
            {
                return Parse(reader).ToList();
            }
        }

        /// <summary>Reads a catalogue in the providers.yaml layout.</summary>
        public static IEnumerable<CatalogProvider> Parse(TextReader reader)
        {
            var yaml = new YamlStream();
            yaml.Load(reader);
            var root = (YamlMappingNode)yaml.Documents[0].RootNode;
            foreach (var node in ((YamlSequenceNode)root.Children[new YamlScalarNode("providers")]).Children.Cast<YamlMappingNode>())
            {
                IReadOnlyList<string> List(string key) => node.Children.TryGetValue(new YamlScalarNode(key), out var v) && v is YamlSequenceNode s
                    ? s.Children.Cast<YamlScalarNode>().Select(x => x.Value!.Trim().ToLowerInvariant()).ToList()
                    : (IReadOnlyList<string>)Array.Empty<string>();
                var name = ((YamlScalarNode)node.Children[new YamlScalarNode("name")]).Value!;
                var kind = node.Children.TryGetValue(new YamlScalarNode("kind"), out var k) && k is YamlScalarNode ks
                    ? (ProviderKind)Enum.Parse(typeof(ProviderKind), ks.Value!, ignoreCase: true)
                    : ProviderKind.Unspecified;
                yield return new CatalogProvider(name, List("mx"), List("ns"), List("asn").Select(a => int.Parse(a, System.Globalization.CultureInfo.InvariantCulture)).ToList(), List("domains"), "catalogue",
                    kind, List("spf"), List("ptr"), List("dkim"));
            }
        }
    }
}
