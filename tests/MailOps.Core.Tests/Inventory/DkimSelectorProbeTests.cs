using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Dns;
using MailOps.Core.Inventory;
using MailOps.Core.Providers;
using Xunit;
using Zone = MailOps.Core.Tests.Providers.MailProviderResolverTests.Zone;

namespace MailOps.Core.Tests.Inventory
{
    public class DkimSelectorProbeTests
    {
        private static readonly DkimProbeOptions OnlyConfigured = new DkimProbeOptions { ProbeCommonSelectors = false, ProbeCatalogueSelectors = false };

        private static Task<DkimProbeResult> Probe(Zone z, string domain, IEnumerable<string>? configured, DkimProbeOptions? options = null, CancellationToken cancel = default) =>
            new DkimSelectorProbe(z, ProviderCatalog.BuiltIn, options).ProbeAsync(domain, configured, cancel);

        private static string Key(byte[] der) => "v=DKIM1; k=rsa; p=" + Convert.ToBase64String(der);

        [Fact]
        public async Task RsaKeySizesAreReadFromBothDerForms()
        {
            using var rsa1024 = RSA.Create(1024);
            using var rsa2048 = RSA.Create(2048);
            var z = new Zone();
            z.Txt["k1024._domainkey.example.org"] = Key(rsa1024.ExportSubjectPublicKeyInfo());
            z.Txt["k2048._domainkey.example.org"] = Key(rsa2048.ExportSubjectPublicKeyInfo());
            // a bare RSAPublicKey, split by a space as long TXT values often are after joining
            var raw = Convert.ToBase64String(rsa2048.ExportRSAPublicKey());
            z.Txt["raw._domainkey.example.org"] = "k=rsa; p=" + raw.Substring(0, 100) + " " + raw.Substring(100);
            z.Txt["ed._domainkey.example.org"] = "v=DKIM1; k=ed25519; p=" + Convert.ToBase64String(Enumerable.Range(1, 32).Select(i => (byte)i).ToArray());

            var r = await Probe(z, "example.org", new[] { "k1024", "K2048", "raw", "ed" }, OnlyConfigured);

            Assert.Equal(new[] { "k1024", "k2048", "raw", "ed" }, r.Found.Select(f => f.Selector));
            Assert.Equal(new int?[] { 1024, 2048, 2048, 256 }, r.Found.Select(f => f.KeyBits));
            Assert.Equal(new[] { "rsa", "rsa", "rsa", "ed25519" }, r.Found.Select(f => f.KeyType));
            Assert.All(r.Found, f => Assert.True(f.IsUsable, f.ToString()));
            Assert.Equal("k1024._domainkey.example.org: rsa 1024 bits", r.Found[0].ToString());
            Assert.True(r.IsComplete);
        }

        [Fact]
        public async Task RevokedTestingAndBrokenKeysAreSaidSo()
        {
            using var rsa = RSA.Create(1024);
            var z = new Zone();
            z.Txt["old._domainkey.example.org"] = "v=DKIM1; k=rsa; p=";
            z.Txt["new._domainkey.example.org"] = "v=DKIM1; t=y:s; h=sha256; " + Key(rsa.ExportSubjectPublicKeyInfo()).Substring(8);
            z.Txt["junk._domainkey.example.org"] = "v=DKIM1; p=not*base64";
            z.TxtMany["two._domainkey.example.org"] = new[] { "some-verification=abc", Key(rsa.ExportSubjectPublicKeyInfo()) };
            z.Txt["text._domainkey.example.org"] = "hello";

            var r = await Probe(z, "example.org", new[] { "old", "new", "junk", "two", "text" }, OnlyConfigured);
            var f = r.Found.ToDictionary(x => x.Selector);

            Assert.True(f["old"].IsRevoked);
            Assert.False(f["old"].IsUsable);
            Assert.Null(f["old"].KeyBits);
            Assert.Equal("old._domainkey.example.org: revoked", f["old"].ToString());
            Assert.True(f["new"].IsTesting);
            Assert.Equal(new[] { "y", "s" }, f["new"].Flags);
            Assert.Equal(new[] { "sha256" }, f["new"].HashAlgorithms);
            Assert.Equal("p= is not valid base64", f["junk"].Problem);
            Assert.Equal(1024, f["two"].KeyBits); // the key record among the name's TXT records
            Assert.Equal("not a DKIM key record (no p= tag)", f["text"].Problem);
        }

        [Fact]
        public async Task ConfiguredCommonAndCatalogueSelectorsAreProbedOnceEach()
        {
            using var rsa = RSA.Create(2048);
            var key = Key(rsa.ExportSubjectPublicKeyInfo());
            var z = new Zone();
            z.Txt["news2024._domainkey.example.org"] = key;
            z.Txt["selector1._domainkey.example.org"] = key;
            z.Txt["google._domainkey.example.org"] = key;
            z.Txt["s1._domainkey.example.org"] = key;
            z.Txt["default._domainkey.example.org"] = key;

            var r = await Probe(z, "example.org", new[] { "news2024", "S1", "s1" }, null);

            Assert.Equal(new[] { "news2024", "s1", "default", "selector1", "google" }, r.Found.Select(f => f.Selector));
            var bySelector = r.Found.ToDictionary(f => f.Selector);
            Assert.Equal(DkimSelectorSource.Configured, bySelector["news2024"].Source);
            Assert.Equal(DkimSelectorSource.Configured | DkimSelectorSource.Common, bySelector["s1"].Source);
            Assert.Equal(DkimSelectorSource.Common, bySelector["default"].Source);
            Assert.Equal(DkimSelectorSource.Common | DkimSelectorSource.Catalogue, bySelector["selector1"].Source);
            Assert.Equal(new[] { "Microsoft" }, bySelector["selector1"].Providers);
            Assert.Equal(new[] { "Google" }, bySelector["google"].Providers);
            Assert.Empty(bySelector["default"].Providers);

            var all = DkimSelectorProbe.CommonSelectors.Concat(ProviderCatalog.BuiltIn.ProbeableDkimSelectors).Append("news2024").Distinct().Count();
            Assert.Equal(all, r.Probed);
            Assert.Equal(all, z.Queries); // each name asked once
            Assert.DoesNotContain(r.Absent, a => a.Contains('*')); // the catalogue's patterns are never probed
        }

        [Fact]
        public async Task FailedLookupsAreUnknownNotAbsent()
        {
            var z = new Zone();
            z.Fail["slow._domainkey.example.org"] = DnsStatus.Timeout;
            z.Fail["broken._domainkey.example.org"] = DnsStatus.ServerFailure;

            var r = await Probe(z, "example.org", new[] { "slow", "broken", "none" }, OnlyConfigured);

            Assert.Empty(r.Found);
            Assert.Equal(new[] { "none" }, r.Absent);
            Assert.Equal(new[] { ("slow", DnsStatus.Timeout), ("broken", DnsStatus.ServerFailure) }, r.Failed.Select(f => (f.Selector, f.Status)));
            Assert.False(r.IsComplete);
            Assert.Contains("2 unknown", r.ToString(), StringComparison.Ordinal);
        }

        [Fact]
        public async Task BadSelectorsAreRefusedAndCancellationStops()
        {
            var e = await Assert.ThrowsAsync<ArgumentException>(() => Probe(new Zone(), "example.org", new[] { "s1", "s1._domainkey.example.org", "two words" }, OnlyConfigured));
            Assert.Contains("'s1._domainkey.example.org', 'two words'", e.Message, StringComparison.Ordinal);
            await Assert.ThrowsAsync<ArgumentException>(() => Probe(new Zone(), " ", null));

            var z = new Zone();
            z.OnQuery = (q, c) => Task.Delay(Timeout.Infinite, c);
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Probe(z, "example.org", null, null, cts.Token));
            Assert.InRange(z.MaxInFlight, 1, new DkimProbeOptions().MaxConcurrency);
        }

        [Fact]
        public async Task QueriesRunConcurrentlyWithinTheBound()
        {
            var z = new Zone();
            z.OnQuery = (q, c) => Task.Delay(20, c);
            var r = await Probe(z, "example.org", null, new DkimProbeOptions { MaxConcurrency = 4 });
            Assert.Equal(r.Probed, r.Absent.Count);
            Assert.InRange(z.MaxInFlight, 2, 4);
        }

        /// <summary>
        /// Mail::DKIM's test DNS (t/FAKE_DNS.dat): good keys of several sizes and deliberately broken ones. The sizes are
        /// checked against .NET's own RSA import; the broken and failing ones must be said so.
        /// </summary>
        [CorpusFact("dkim-mail-dkim/t/FAKE_DNS.dat")]
        public async Task TheMailDkimKeyRecordsAreRead()
        {
            var z = new Zone();
            var byDomain = new Dictionary<string, List<string>>(StringComparer.OrdinalIgnoreCase);
            foreach (var line in File.ReadAllLines(Corpora.Find("dkim-mail-dkim/t/FAKE_DNS.dat")!))
            {
                if (line.Length == 0 || line.StartsWith('#'))
                {
                    continue;
                }

                var parts = line.Split(new[] { ' ', '\t' }, 2);
                var name = parts[0];
                var value = parts[1].Trim();
                var at = name.IndexOf("._domainkey.", StringComparison.Ordinal);
                var domain = name.Substring(at + 12);
                if (!byDomain.TryGetValue(domain, out var list))
                {
                    byDomain[domain] = list = new List<string>();
                }

                list.Add(name.Substring(0, at));
                if (value == "NXDOMAIN")
                {
                    continue;
                }

                if (value.StartsWith("~~", StringComparison.Ordinal))
                {
                    z.Fail[name] = value.Contains("SERVFAIL", StringComparison.Ordinal) ? DnsStatus.ServerFailure : DnsStatus.Timeout;
                    continue;
                }

                z.Txt[name] = value == "\"\"" ? "" : value;
            }

            var found = new List<DkimSelectorRecord>();
            var failed = new List<DkimSelectorFailure>();
            var absent = new List<string>();
            foreach (var (domain, selectors) in byDomain)
            {
                var r = await Probe(z, domain, selectors, OnlyConfigured);
                found.AddRange(r.Found);
                failed.AddRange(r.Failed);
                absent.AddRange(r.Absent.Select(a => a + "._domainkey." + domain));
            }

            Assert.Equal(23, found.Count); // 26 names: 1 NXDOMAIN, 2 failing
            var checkedKeys = 0;
            foreach (var f in found.Where(f => f.KeyType == "rsa" && f.KeyBits != null))
            {
                using var oracle = RSA.Create();
                var der = Convert.FromBase64String(f.Record.Substring(f.Record.IndexOf("p=", StringComparison.Ordinal) + 2).Split(';')[0].Trim());
                oracle.ImportSubjectPublicKeyInfo(der, out _);
                Assert.True(oracle.KeySize == f.KeyBits, $"{f.Name}: {f.KeyBits} bits, .NET says {oracle.KeySize}");
                checkedKeys++;
            }

            Assert.True(checkedKeys >= 15, $"only {checkedKeys} RSA keys measured");
            Assert.Contains(found, f => f.KeyBits == 512);
            Assert.Contains(found, f => f.KeyBits == 768);
            Assert.Contains(found, f => f.KeyBits == 1024);

            var byName = found.ToDictionary(f => f.Name);
            Assert.True(byName["testrevoked._domainkey.messiah.edu"].IsRevoked);
            Assert.True(byName["testrevoked._domainkey.messiah.edu"].IsTesting);
            Assert.True(byName["test2._domainkey.messiah.edu"].IsTesting); // "t = y:n:extra", spaces around '=' allowed
            Assert.Equal("unknown version v=DKIM3", byName["testbad1._domainkey.messiah.edu"].Problem);
            Assert.Equal("'t' is not a tag=value pair", byName["testbad2._domainkey.messiah.edu"].Problem);
            Assert.Equal("unknown key type k=foobar", byName["testbad3._domainkey.messiah.edu"].Problem);
            Assert.Equal((256, (string?)null), (byName["2023-05-ed25519._domainkey.wander.science"].KeyBits!.Value, byName["2023-05-ed25519._domainkey.wander.science"].Problem));
            Assert.StartsWith("an ed25519 key is 32 bytes", byName["invalid._domainkey.wander.science"].Problem, StringComparison.Ordinal);
            Assert.Equal("not a DKIM key record (no p= tag)", byName["2023-05-ed25519-empty._domainkey.wander.science"].Problem);
            Assert.Equal(new[] { "nonexistent._domainkey.messiah.edu" }, absent);
            Assert.Equal(new[] { ("test3", DnsStatus.Timeout), ("test3", DnsStatus.ServerFailure) }, failed.Select(f => (f.Selector, f.Status)).OrderByDescending(x => x.Item2 == DnsStatus.Timeout));
        }
    }
}
