using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Config;
using MailOps.Core.Dns;
using MailOps.Core.Providers;
using Xunit;

namespace MailOps.Core.Tests.Providers
{
    /// <summary>Attribution rules on a zone held in memory (the lab test runs the same against nsd).</summary>
    public class MailProviderResolverTests
    {
        /// <summary>
        /// A zone held in memory (shared with the inventory tests). Names in Fail answer with that status (key "name" or
        /// "TYPE name"); a name known for another type answers NoData, an unknown one NxDomain. OnQuery, when set, runs
        /// before each answer ("TYPE name", token): a delay, a gate, a count of queries in flight.
        /// </summary>
        internal sealed class Zone : IDnsResolver
        {
            public Dictionary<string, MxRecord[]> Mx { get; } = new Dictionary<string, MxRecord[]>(StringComparer.OrdinalIgnoreCase);
            public Dictionary<string, string[]> Ns { get; } = new Dictionary<string, string[]>(StringComparer.OrdinalIgnoreCase);
            public Dictionary<string, string[]> A { get; } = new Dictionary<string, string[]>(StringComparer.OrdinalIgnoreCase);
            public Dictionary<string, string[]> Aaaa { get; } = new Dictionary<string, string[]>(StringComparer.OrdinalIgnoreCase);
            public Dictionary<string, string> Txt { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

            /// <summary>Names with several TXT records (wins over Txt).</summary>
            public Dictionary<string, string[]> TxtMany { get; } = new Dictionary<string, string[]>(StringComparer.OrdinalIgnoreCase);
            public HashSet<string> Exists { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            public Dictionary<string, DnsStatus> Fail { get; } = new Dictionary<string, DnsStatus>(StringComparer.OrdinalIgnoreCase);
            public Func<string, CancellationToken, Task>? OnQuery { get; set; }
            public int Queries;
            public int MaxInFlight;
            private int _inFlight;

            private DnsResult<T> Get<T>(string name, string type, IReadOnlyList<T>? records)
            {
                Interlocked.Increment(ref Queries);
                if (Fail.TryGetValue(name, out var f) || Fail.TryGetValue(type + " " + name, out f))
                {
                    return DnsResult<T>.Of(f, $"{name} {type}: {f}");
                }

                if (records != null)
                {
                    return new DnsResult<T>(DnsStatus.Ok, records, null, TimeSpan.FromMinutes(30));
                }

                var known = Exists.Contains(name) || Mx.ContainsKey(name) || Ns.ContainsKey(name) || A.ContainsKey(name) || Aaaa.ContainsKey(name) || Txt.ContainsKey(name) || TxtMany.ContainsKey(name);
                return DnsResult<T>.Of(known ? DnsStatus.NoData : DnsStatus.NxDomain);
            }

            private async Task<DnsResult<T>> Answer<T>(string name, string type, Func<DnsResult<T>> get, CancellationToken c)
            {
                c.ThrowIfCancellationRequested();
                if (OnQuery == null)
                {
                    return get();
                }

                var now = Interlocked.Increment(ref _inFlight);
                lock (Fail)
                {
                    MaxInFlight = Math.Max(MaxInFlight, now);
                }

                try
                {
                    await OnQuery(type + " " + name, c).ConfigureAwait(false);
                    return get();
                }
                finally
                {
                    Interlocked.Decrement(ref _inFlight);
                }
            }

            public Task<DnsResult<IPAddress>> QueryAddressesAsync(string name, bool ipv6, CancellationToken c) =>
                Answer(name, ipv6 ? "AAAA" : "A", () => Get(name, ipv6 ? "AAAA" : "A", (ipv6 ? Aaaa : A).TryGetValue(name, out var a) ? a.Select(IPAddress.Parse).ToList() : null), c);

            public Task<DnsResult<string>> QueryTxtAsync(string name, CancellationToken c) =>
                Answer(name, "TXT", () => Get(name, "TXT", TxtMany.TryGetValue(name, out var many) ? many : Txt.TryGetValue(name, out var t) ? new[] { t } : null), c);

            public Task<DnsResult<MxRecord>> QueryMxAsync(string name, CancellationToken c) => Answer(name, "MX", () => Get(name, "MX", Mx.TryGetValue(name, out var m) ? m : null), c);

            public Task<DnsResult<string>> QueryNsAsync(string name, CancellationToken c) => Answer(name, "NS", () => Get(name, "NS", Ns.TryGetValue(name, out var n) ? n : null), c);

            /// <summary>PTR names by address text (anything else is NXDOMAIN; "PTR address" in Fail fails it).</summary>
            public Dictionary<string, string> Ptr { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

            public Task<DnsResult<string>> QueryPtrAsync(IPAddress address, CancellationToken c) =>
                Answer(address.ToString(), "PTR", () => Ptr.TryGetValue(address.ToString(), out var p) ? Get(address.ToString(), "PTR", new[] { p }) : Get<string>(address.ToString(), "PTR", null), c);
        }

        private static Zone Ovh()
        {
            var z = new Zone();
            z.Mx["boulangerie.example"] = new[] { new MxRecord(1, "mx1.mail.ovh.net"), new MxRecord(5, "mx2.mail.ovh.net") };
            z.Ns["boulangerie.example"] = new[] { "dns10.ovh.net", "ns10.ovh.net" };
            z.A["mx1.mail.ovh.net"] = new[] { "198.51.100.1" };
            z.A["mx2.mail.ovh.net"] = new[] { "198.51.100.2" };
            z.Txt["1.100.51.198.origin.asn.cymru.com"] = "16276 | 198.51.100.0/24 | FR | ripencc | 2004-01-01";
            z.Txt["2.100.51.198.origin.asn.cymru.com"] = "16276 | 198.51.100.0/24 | FR | ripencc | 2004-01-01";
            return z;
        }

        private static MailProviderResolver Resolver(Zone z, MailOpsConfig? config = null) =>
            new MailProviderResolver(z, ProviderCatalog.For(config), DnsConfig.DefaultAsnZone, DnsConfig.DefaultAsnZone6);

        [Fact]
        public async Task MxNsAndAsAgreeOnOvh()
        {
            var r = await Resolver(Ovh()).ResolveAsync("Paul@Boulangerie.Example", CancellationToken.None);
            Assert.Equal("boulangerie.example", r.Domain);
            Assert.Equal("Paul@Boulangerie.Example", r.Address);
            Assert.Equal(AttributionStatus.Resolved, r.Status);
            Assert.Equal("OVH", r.Provider);
            Assert.Equal(ProviderRole.MailHosting, r.Role);
            Assert.Equal("OVH", r.DnsProvider);
            Assert.Equal(AttributionConfidence.High, r.Confidence);
            Assert.Equal(new[] { 16276 }, r.AsNumbers);
            Assert.Contains(r.Evidence, e => e.Kind == "MX" && e.Value == "mx1.mail.ovh.net" && e.Rule == "matches *.mail.ovh.net");
            Assert.Contains(r.Evidence, e => e.Kind == "ASN" && e.Value.StartsWith("AS16276", StringComparison.Ordinal));
            Assert.Contains(r.Evidence, e => e.Kind == "NS" && e.Role == ProviderRole.DnsHosting);
            Assert.True(r.ExpiresAt > r.ResolvedAt.AddMinutes(29));
        }

        [Fact]
        public async Task AnAsMatchAloneIsMediumConfidence()
        {
            var z = Ovh();
            z.Mx["vanity.example"] = new[] { new MxRecord(10, "mail.vanity.example") };
            z.A["mail.vanity.example"] = new[] { "198.51.100.1" };
            z.Ns["vanity.example"] = new[] { "ns.vanity.example" };
            var r = await Resolver(z).ResolveAsync("vanity.example", CancellationToken.None);
            Assert.Equal("OVH", r.MailProvider);
            Assert.Null(r.DnsProvider);
            Assert.Equal(AttributionConfidence.Medium, r.Confidence);
        }

        [Fact]
        public async Task ATimeoutIsUnknownNeverAGuess()
        {
            var z = Ovh();
            z.Fail["boulangerie.example"] = DnsStatus.Timeout;
            var r = await Resolver(z).ResolveAsync("boulangerie.example", CancellationToken.None);
            Assert.Equal(AttributionStatus.Unknown, r.Status);
            Assert.Null(r.Provider);
            Assert.Equal(AttributionConfidence.None, r.Confidence);
            Assert.Contains(r.Problems, p => p.Contains("Timeout", StringComparison.Ordinal));
        }

        [Fact]
        public async Task AFailedMxLookupWithKnownNameServersIsPartial()
        {
            var z = Ovh();
            z.Fail["MX boulangerie.example"] = DnsStatus.ServerFailure;
            var r = await Resolver(z).ResolveAsync("boulangerie.example", CancellationToken.None);
            Assert.Equal(AttributionStatus.Partial, r.Status);
            Assert.Null(r.MailProvider);
            Assert.Equal("OVH", r.DnsProvider);
            Assert.Equal(ProviderRole.DnsHosting, r.Role);
            Assert.Equal(AttributionConfidence.Medium, r.Confidence);
        }

        [Fact]
        public async Task NxDomainNullMxAndImplicitMx()
        {
            var z = Ovh();
            z.Mx["nomail.example"] = new[] { new MxRecord(0, "") };
            z.Ns["nomail.example"] = new[] { "dns10.ovh.net" };
            z.A["implicit.example"] = new[] { "198.51.100.2" };
            var r = Resolver(z);
            Assert.Equal(AttributionStatus.NxDomain, (await r.ResolveAsync("gone.example", CancellationToken.None)).Status);
            Assert.Equal(AttributionStatus.NoMailHost, (await r.ResolveAsync("nomail.example", CancellationToken.None)).Status);
            var implicitMx = await r.ResolveAsync("implicit.example", CancellationToken.None);
            Assert.Equal(new[] { "implicit.example" }, implicitMx.MxHosts);
            Assert.Equal("OVH", implicitMx.MailProvider); // by AS only
        }

        [Fact]
        public async Task ASubdomainTakesTheNameServersOfItsZone()
        {
            var z = Ovh();
            z.Mx["shop.boulangerie.example"] = new[] { new MxRecord(1, "mx1.mail.ovh.net") };
            var r = await Resolver(z).ResolveAsync("shop.boulangerie.example", CancellationToken.None);
            Assert.Equal("OVH", r.DnsProvider);
            Assert.Contains(r.Evidence, e => e.Kind == "NS" && e.Value.Contains("(zone boulangerie.example)", StringComparison.Ordinal));
        }

        [Fact]
        public async Task AddressOwnersAndConfiguredProviders()
        {
            var z = new Zone();
            z.Mx["gmail.com"] = new[] { new MxRecord(5, "gmail-smtp-in.l.google.com") };
            z.Mx["client.example"] = new[] { new MxRecord(10, "in.mx.labhost.test") };
            var config = ConfigReader.Read("version: 1\nproviders:\n  - name: LabHost\n    mx: ['*.mx.labhost.test']\n  - name: OVH\n    domains: [ovh-mail.example]\n").Config!;
            var r = Resolver(z, config);
            var gmail = await r.ResolveAsync("someone@gmail.com", CancellationToken.None);
            Assert.Equal("Google", gmail.MailProvider);
            Assert.Equal("Google", gmail.AddressOwner);
            Assert.Equal("LabHost", (await r.ResolveAsync("client.example", CancellationToken.None)).Provider);
            var owned = await r.ResolveAsync("x@ovh-mail.example", CancellationToken.None);
            Assert.Equal("OVH", owned.AddressOwner);
            Assert.True(owned.IsHostedBy("ovh"));
            Assert.Equal("catalogue+configuration", ProviderCatalog.For(config).Find("OVH")!.Origin);
        }

        [Fact]
        public async Task ManyDomainsShareLookupsAndComeBackInInputOrder()
        {
            var z = Ovh();
            var inputs = new List<string>();
            for (var i = 0; i < 300; i++)
            {
                var d = $"d{i}.example";
                z.Mx[d] = new[] { new MxRecord(1, "mx1.mail.ovh.net"), new MxRecord(5, "mx2.mail.ovh.net") };
                z.Ns[d] = new[] { "dns10.ovh.net" };
                inputs.Add(i % 2 == 0 ? d : "user@" + d);
            }

            inputs.Add("d0.example"); // asked twice: resolved once, reported twice
            var results = new List<MailProviderResult>();
            await Resolver(z).ResolveManyAsync(inputs, 16, null, false, r => { lock (results) { results.Add(r); } }, CancellationToken.None);
            Assert.Equal(inputs, results.Select(r => r.Input).ToList());
            Assert.All(results, r => Assert.Equal("OVH", r.Provider));
            // per domain MX + NS; the two MX hosts' addresses and AS once for all
            Assert.Equal(300 * 2 + 2 + 2, z.Queries);
        }

        [Fact]
        public async Task CancellationStopsTheWork()
        {
            var z = Ovh();
            using var cts = new CancellationTokenSource();
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
                Resolver(z).ResolveManyAsync(new[] { "boulangerie.example", "other.example" }, 4, null, false, _ => { }, cts.Token));
        }

        [Fact]
        public void TheShippedCatalogueHasTheProvidersTheIssueNames()
        {
            foreach (var name in new[] { "OVH", "Google", "Microsoft", "Yahoo", "Apple", "IONOS", "Orange", "Free", "Gandi", "Zoho", "Proton" })
            {
                Assert.NotNull(ProviderCatalog.BuiltIn.Find(name));
            }

            // issue 8: the services that send for their customers, in the same catalogue
            foreach (var name in new[] { "SendGrid", "Mailjet", "Brevo", "Mailgun", "AmazonSES", "Mailchimp", "Mandrill", "Postmark", "SparkPost", "HubSpot", "SalesforceMarketingCloud", "Zendesk" })
            {
                Assert.NotNull(ProviderCatalog.BuiltIn.Find(name));
            }

            Assert.Equal(38, ProviderCatalog.BuiltIn.Providers.Count);
            Assert.Equal(ProviderKind.Hosting, ProviderCatalog.BuiltIn.Find("ovh")!.Kind);

            Assert.Equal("OVH", ProviderCatalog.BuiltIn.MatchMx("mx3.mail.ovh.net")!.Value.Provider.Name);
            Assert.Equal("Microsoft", ProviderCatalog.BuiltIn.MatchMx("contoso-com.mail.protection.outlook.com")!.Value.Provider.Name);
            Assert.Equal("Yahoo", ProviderCatalog.BuiltIn.MatchOwner("yahoo.co.uk")!.Name);
            Assert.Null(ProviderCatalog.BuiltIn.MatchMx("mail.example.org"));
        }
    }
}
