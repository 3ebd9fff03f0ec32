using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Dns;
using MailOps.Core.Providers;

namespace MailOps.Core.Inventory
{
    /// <summary>Where a probed selector came from (several at once when lists overlap).</summary>
    [Flags]
    public enum DkimSelectorSource
    {
        None = 0,

        /// <summary>Given by the caller (the configuration's dkimSelectors for the domain).</summary>
        Configured = 1,

        /// <summary>From <see cref="DkimSelectorProbe.CommonSelectors"/>.</summary>
        Common = 2,

        /// <summary>A selector the provider catalogue says a provider has its customers publish.</summary>
        Catalogue = 4,
    }

    /// <summary>Options of <see cref="DkimSelectorProbe"/>.</summary>
    public sealed class DkimProbeOptions
    {
        /// <summary>TXT queries in flight at once.</summary>
        public int MaxConcurrency { get; set; } = 8;

        /// <summary>Also probe <see cref="DkimSelectorProbe.CommonSelectors"/>.</summary>
        public bool ProbeCommonSelectors { get; set; } = true;

        /// <summary>Also probe the catalogue's selectors (those without a wildcard).</summary>
        public bool ProbeCatalogueSelectors { get; set; } = true;
    }

    /// <summary>A DKIM key record found at &lt;selector&gt;._domainkey.&lt;domain&gt;.</summary>
    public sealed class DkimSelectorRecord
    {
        internal DkimSelectorRecord(string domain, string selector, DkimSelectorSource source, string record, IReadOnlyList<string> providers)
        {
            Domain = domain;
            Selector = selector;
            Source = source;
            Record = record;
            Providers = providers;
            var key = DkimKeyRecord.LooksLikeKey(record) ? DkimKeyRecord.Parse(record) : null;
            Problem = key == null ? "not a DKIM key record (no p= tag)" : key.Problem;
            if (key != null)
            {
                Version = key.Version;
                KeyType = key.KeyType;
                KeyBits = key.KeyBits;
                IsRevoked = key.IsRevoked;
                Flags = key.Flags;
                HashAlgorithms = key.HashAlgorithms;
                ServiceTypes = key.ServiceTypes;
                Notes = key.Notes;
            }
        }

        public string Domain { get; }
        public string Selector { get; }

        /// <summary>The name queried: selector._domainkey.domain.</summary>
        public string Name => Selector + "._domainkey." + Domain;

        public DkimSelectorSource Source { get; }

        /// <summary>The TXT record as published (character-strings joined).</summary>
        public string Record { get; }

        /// <summary>v= (DKIM1), when present.</summary>
        public string? Version { get; }

        /// <summary>k= (rsa when absent, ed25519...); null when the record is not a key record.</summary>
        public string? KeyType { get; }

        /// <summary>The key's size: the RSA modulus in bits, 256 for ed25519; null when revoked or unreadable.</summary>
        public int? KeyBits { get; }

        /// <summary>An empty p=: the key was withdrawn, signatures with it fail.</summary>
        public bool IsRevoked { get; }

        /// <summary>t= flags (y: testing, s: strict).</summary>
        public IReadOnlyList<string> Flags { get; } = Array.Empty<string>();

        /// <summary>t=y: the domain is testing DKIM; verifiers must not treat failures differently from unsigned mail.</summary>
        public bool IsTesting => Flags.Contains("y");

        /// <summary>h= hash algorithms allowed (empty: any).</summary>
        public IReadOnlyList<string> HashAlgorithms { get; } = Array.Empty<string>();

        /// <summary>s= service types (empty: *).</summary>
        public IReadOnlyList<string> ServiceTypes { get; } = Array.Empty<string>();

        public string? Notes { get; }

        /// <summary>Why a verifier would refuse the key; null when none was found.</summary>
        public string? Problem { get; }

        /// <summary>A usable key: readable, not revoked.</summary>
        public bool IsUsable => Problem == null && !IsRevoked;

        /// <summary>The catalogue's providers that have their customers publish this selector (candidates, not proof).</summary>
        public IReadOnlyList<string> Providers { get; }

        public override string ToString() =>
            $"{Name}: " + (IsRevoked ? "revoked" : Problem ?? $"{KeyType} {KeyBits} bits") + (IsTesting ? ", testing" : "")
            + (Providers.Count > 0 ? $" [{string.Join(", ", Providers)}]" : "");
    }

    /// <summary>A selector whose lookup failed: whether it has a key is unknown (never read as "no key").</summary>
    public sealed class DkimSelectorFailure
    {
        internal DkimSelectorFailure(string domain, string selector, DkimSelectorSource source, DnsStatus status, string? detail)
        {
            Domain = domain;
            Selector = selector;
            Source = source;
            Status = status;
            Detail = detail;
        }

        public string Domain { get; }
        public string Selector { get; }
        public string Name => Selector + "._domainkey." + Domain;
        public DkimSelectorSource Source { get; }
        public DnsStatus Status { get; }
        public string? Detail { get; }

        public override string ToString() => $"{Name}: {Status}{(Detail != null ? " (" + Detail + ")" : "")}";
    }

    /// <summary>What probing a domain's DKIM selectors found.</summary>
    public sealed class DkimProbeResult
    {
        internal DkimProbeResult(string domain, IReadOnlyList<DkimSelectorRecord> found, IReadOnlyList<string> absent, IReadOnlyList<DkimSelectorFailure> failed)
        {
            Domain = domain;
            Found = found;
            Absent = absent;
            Failed = failed;
        }

        public string Domain { get; }

        /// <summary>Selectors with a record, in the order probed (configured first).</summary>
        public IReadOnlyList<DkimSelectorRecord> Found { get; }

        /// <summary>Selectors whose name does not exist or has no TXT record.</summary>
        public IReadOnlyList<string> Absent { get; }

        /// <summary>Selectors whose lookup failed: unknown, kept apart from Absent.</summary>
        public IReadOnlyList<DkimSelectorFailure> Failed { get; }

        /// <summary>How many selectors were asked.</summary>
        public int Probed => Found.Count + Absent.Count + Failed.Count;

        /// <summary>Every lookup was answered.</summary>
        public bool IsComplete => Failed.Count == 0;

        public override string ToString() =>
            $"{Domain}: {Found.Count} of {Probed} selectors found ({string.Join(", ", Found.Select(f => f.Selector))}){(Failed.Count > 0 ? $", {Failed.Count} unknown" : "")}";
    }

    /// <summary>
    /// Finds a domain's DKIM keys by asking for &lt;selector&gt;._domainkey.&lt;domain&gt; TXT records: the selectors the
    /// caller knows, a list of commonly published ones, and those the provider catalogue names. DKIM has no way to list a
    /// domain's selectors, so this finds what it guesses and no more: a selector not asked is not a selector absent.
    /// Queries run concurrently within <see cref="DkimProbeOptions.MaxConcurrency"/>.
    /// </summary>
    public sealed class DkimSelectorProbe
    {
        private static readonly Regex SelectorSyntax = new Regex(@"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*$", RegexOptions.CultureInvariant);

        private readonly IDnsResolver _dns;
        private readonly ProviderCatalog _catalog;
        private readonly DkimProbeOptions _options;

        public DkimSelectorProbe(IDnsResolver dns, ProviderCatalog catalog, DkimProbeOptions? options = null)
        {
            _dns = dns ?? throw new ArgumentNullException(nameof(dns));
            _catalog = catalog ?? throw new ArgumentNullException(nameof(catalog));
            _options = options ?? new DkimProbeOptions();
            if (_options.MaxConcurrency < 1)
            {
                throw new ArgumentException("MaxConcurrency must be at least 1.", nameof(options));
            }
        }

        /// <summary>
        /// Selectors commonly published by mail software, hosting panels and sending services, probed for every domain:
        /// defaults of signing software (default, dkim, mail, smtp...), generic rotation pairs (selector1/2, s1/s2, k1..k3,
        /// key1/2, dkim1/2), and names seen for services (google, mailjet, pm, mandrill, mte1/2, zendesk1/2,
        /// protonmail..3, zmail). Finding one says nothing by itself about who holds the key: only the catalogue's dkim
        /// entries name providers.
        /// </summary>
        public static IReadOnlyList<string> CommonSelectors { get; } = new[]
        {
            "default", "dkim", "mail", "email", "smtp", "selector", "selector1", "selector2", "s1", "s2", "k1", "k2", "k3",
            "key1", "key2", "dkim1", "dkim2", "sig1", "google", "mailjet", "pm", "mandrill", "mte1", "mte2", "zendesk1",
            "zendesk2", "protonmail", "protonmail2", "protonmail3", "zmail",
        };

        /// <summary>
        /// Probes <paramref name="domain"/>'s selectors: <paramref name="configuredSelectors"/> (may be null), then the
        /// common ones and the catalogue's, each asked once. Failed lookups are in <see cref="DkimProbeResult.Failed"/>,
        /// never in Absent. Throws <see cref="ArgumentException"/> for an empty domain or a configured selector that is
        /// not a DNS label sequence, <see cref="OperationCanceledException"/> when cancelled.
        /// </summary>
        public async Task<DkimProbeResult> ProbeAsync(string domain, IEnumerable<string>? configuredSelectors, CancellationToken cancellationToken)
        {
            if (string.IsNullOrWhiteSpace(domain))
            {
                throw new ArgumentException("A domain is required.", nameof(domain));
            }

            domain = domain.Trim().TrimEnd('.').ToLowerInvariant();
            var order = new List<string>();
            var sources = new Dictionary<string, DkimSelectorSource>(StringComparer.Ordinal);
            void Add(string selector, DkimSelectorSource source)
            {
                if (!sources.TryGetValue(selector, out var s))
                {
                    order.Add(selector);
                    s = DkimSelectorSource.None;
                }

                sources[selector] = s | source;
            }

            var bad = new List<string>();
            foreach (var raw in configuredSelectors ?? Enumerable.Empty<string>())
            {
                var selector = (raw ?? "").Trim().TrimEnd('.').ToLowerInvariant();
                if (SelectorSyntax.IsMatch(selector) && !selector.Split('.').Contains("_domainkey"))
                {
                    Add(selector, DkimSelectorSource.Configured);
                }
                else
                {
                    bad.Add("'" + raw + "'");
                }
            }

            if (bad.Count > 0)
            {
                throw new ArgumentException($"Not a DKIM selector: {string.Join(", ", bad)} (expected labels such as s1 or k1.mail, without ._domainkey).", nameof(configuredSelectors));
            }

            if (_options.ProbeCommonSelectors)
            {
                foreach (var s in CommonSelectors)
                {
                    Add(s, DkimSelectorSource.Common);
                }
            }

            if (_options.ProbeCatalogueSelectors)
            {
                foreach (var s in _catalog.ProbeableDkimSelectors.Where(x => SelectorSyntax.IsMatch(x)))
                {
                    Add(s, DkimSelectorSource.Catalogue);
                }
            }

            using (var gate = new SemaphoreSlim(_options.MaxConcurrency, _options.MaxConcurrency))
            {
                var answers = await Task.WhenAll(order.Select(async selector =>
                {
                    await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
                    try
                    {
                        return await _dns.QueryTxtAsync(selector + "._domainkey." + domain, cancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        gate.Release();
                    }
                })).ConfigureAwait(false);

                var found = new List<DkimSelectorRecord>();
                var absent = new List<string>();
                var failed = new List<DkimSelectorFailure>();
                for (var i = 0; i < order.Count; i++)
                {
                    var selector = order[i];
                    var txt = answers[i];
                    if (txt.IsUnknown)
                    {
                        failed.Add(new DkimSelectorFailure(domain, selector, sources[selector], txt.Status, txt.Detail));
                    }
                    else if (!txt.IsOk || txt.Records.Count == 0)
                    {
                        absent.Add(selector);
                    }
                    else
                    {
                        // several TXT records at one name: the key record is the one that looks like one
                        var record = txt.Records.FirstOrDefault(DkimKeyRecord.LooksLikeKey) ?? txt.Records[0];
                        var providers = _catalog.MatchDkimSelector(selector).Select(m => m.Name).ToList();
                        found.Add(new DkimSelectorRecord(domain, selector, sources[selector], record, providers));
                    }
                }

                return new DkimProbeResult(domain, found, absent, failed);
            }
        }
    }
}
