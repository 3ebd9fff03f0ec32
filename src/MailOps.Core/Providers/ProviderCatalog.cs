using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using MailOps.Core.Config;
using YamlDotNet.RepresentationModel;

namespace MailOps.Core.Providers
{
    /// <summary>One provider of the catalogue, with its patterns compiled.</summary>
    public sealed class CatalogProvider
    {
        internal CatalogProvider(string name, IReadOnlyList<string> mx, IReadOnlyList<string> ns, IReadOnlyList<int> asns, IReadOnlyList<string> domains, string origin)
        {
            Name = name;
            MxPatterns = mx;
            NsPatterns = ns;
            AsNumbers = asns;
            Domains = domains;
            Origin = origin;
            MxRegexes = mx.Select(Glob).ToList();
            NsRegexes = ns.Select(Glob).ToList();
        }

        public string Name { get; }
        public IReadOnlyList<string> MxPatterns { get; }
        public IReadOnlyList<string> NsPatterns { get; }
        public IReadOnlyList<int> AsNumbers { get; }
        public IReadOnlyList<string> Domains { get; }

        /// <summary>"catalogue", "configuration" or "catalogue+configuration".</summary>
        public string Origin { get; }

        internal IReadOnlyList<Regex> MxRegexes { get; }
        internal IReadOnlyList<Regex> NsRegexes { get; }

        /// <summary>'*' is any run of characters (dots included); the rest is literal; the whole name must match.</summary>
        internal static Regex Glob(string pattern) =>
            new Regex("^" + Regex.Escape(pattern.Trim().TrimEnd('.').ToLowerInvariant()).Replace(@"\*", ".*") + "$",
                RegexOptions.CultureInvariant | RegexOptions.IgnoreCase);

        public override string ToString() => Name;
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
                    merged[c.Name] = new CatalogProvider(b.Name, b.MxPatterns.Concat(c.MxPatterns).Distinct().ToList(), b.NsPatterns.Concat(c.NsPatterns).Distinct().ToList(),
                        b.AsNumbers.Concat(c.AsNumbers).Distinct().ToList(), b.Domains.Concat(c.Domains).Distinct(StringComparer.OrdinalIgnoreCase).ToList(), "catalogue+configuration");
                }
                else
                {
                    merged[c.Name] = new CatalogProvider(c.Name, c.MxPatterns, c.NsPatterns, c.AsNumbers, c.Domains, "configuration");
                }
            }

            // configuration entries first: a site's own, more specific patterns win over the catalogue's broad ones
            return new ProviderCatalog(merged.Values.OrderBy(p => p.Origin == "catalogue" ? 1 : 0));
        }

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
                yield return new CatalogProvider(name, List("mx"), List("ns"), List("asn").Select(a => int.Parse(a, System.Globalization.CultureInfo.InvariantCulture)).ToList(), List("domains"), "catalogue");
            }
        }
    }
}
