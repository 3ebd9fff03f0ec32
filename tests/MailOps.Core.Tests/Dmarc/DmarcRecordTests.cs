using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Dmarc;
using MailOps.Core.Dns;
using Xunit;
using Xunit.Abstractions;

namespace MailOps.Core.Tests.Dmarc
{
    public class DmarcRecordTests
    {
        private const string Valid = "dmarc/mail-dmarc/dmarc-records-realworld-should-be-valid.txt";
        private const string Unhandled = "dmarc/mail-dmarc/dmarc-records-realworld-unhandled-errors.txt";
        private readonly ITestOutputHelper _output;

        public DmarcRecordTests(ITestOutputHelper output)
        {
            _output = output;
        }

        /// <summary>"domain=&lt;d&gt;;&lt;record&gt;" lines, as Mail::DMARC's test reads them.</summary>
        private static List<(string Domain, string Record)> Lines(string relative) =>
            File.ReadAllLines(Corpora.Find(relative)!).Where(l => l.StartsWith("domain=", StringComparison.Ordinal))
                .Select(l => (l.Substring(7, l.IndexOf(';', StringComparison.Ordinal) - 7), l.Substring(l.IndexOf(';', StringComparison.Ordinal) + 1))).ToList();

        [CorpusFact(Valid)]
        public void EveryRealWorldRecordMailDmarcAcceptsIsAccepted()
        {
            var lines = Lines(Valid);
            Assert.Equal(34, lines.Count);
            foreach (var (domain, text) in lines)
            {
                Assert.True(DmarcRecordParser.TryParse(text, out var record, out var error), $"{domain}: {error}");
                _output.WriteLine($"{domain}: p={record!.P} rua={string.Join(",", record.Rua)} {string.Join(" | ", record.Warnings)}");
            }

            // the sloppy ones, read the way Mail::DMARC reads them
            var map = lines.ToDictionary(l => l.Domain, l => DmarcRecordParser.Parse(l.Record));
            Assert.Equal("0", map["accuquote.com"].Fo);
            Assert.Contains(map["accuquote.com"].Warnings, w => w.Contains("'fo:0' read as fo=0", StringComparison.Ordinal));
            Assert.Equal("1:d", map["teogenes.com.br"].Fo);
            Assert.Equal(DmarcPolicy.None, map["genetex.com"].Sp);
            Assert.Equal(1L << 20, map["genetex.com"].Rua[0].MaxSize);
            Assert.Equal("mailto:postmaster@genetex.com", map["genetex.com"].Rua[0].Uri);
            Assert.Equal(10L << 20, map["cmnet.org"].Rua[0].MaxSize);
            Assert.Contains(map["brightworksgroup.net"].Warnings, w => w.Contains("'0' ignored", StringComparison.Ordinal));
            Assert.Equal(DmarcAlignment.Strict, map["theluxurycloset.info"].Adkim);
            Assert.Equal(DmarcPolicy.Reject, map["theluxurycloset.info"].P);
            Assert.Equal(86000, map["mail-peninsula.com"].Ri);
            Assert.Equal(DmarcPolicy.Quarantine, map["coachingcompass.com"].EffectiveSubdomainPolicy);
        }

        [CorpusFact(Unhandled)]
        public void TheFourBrokenRecordsAreValidWithTheirBrokenPartsIgnored()
        {
            var map = Lines(Unhandled).ToDictionary(l => l.Domain, l => l.Record);
            Assert.Equal(4, map.Count);
            foreach (var kv in map)
            {
                Assert.True(DmarcRecordParser.TryParse(kv.Value, out var r, out var error), $"{kv.Key}: {error}");
                _output.WriteLine($"{kv.Key}: p={r!.P} pct={r.Pct} rua={r.Rua.Count} | {string.Join(" | ", r.Warnings)}");
            }

            var caasco = DmarcRecordParser.Parse(map["caasco.ca"]);
            Assert.Equal(100, caasco.Pct);
            Assert.Contains(caasco.Warnings, w => w.Contains("'pct100' ignored", StringComparison.Ordinal));
            Assert.Equal(2, caasco.Rua.Count + caasco.Ruf.Count);

            // lower-case v=dmarc1, and a rua mangled by HTML entities: the URI is dropped, the policy stands
            var grocery = DmarcRecordParser.Parse(map["edm.groceryrun.com.au"]);
            Assert.Equal(DmarcPolicy.None, grocery.P);
            Assert.Empty(grocery.Rua);
            Assert.Contains(grocery.Warnings, w => w.Contains("v=dmarc1 read as v=DMARC1", StringComparison.Ordinal));
            Assert.Contains(grocery.Warnings, w => w.Contains("rua URI", StringComparison.Ordinal) && w.Contains("dropped", StringComparison.Ordinal));

            // "pct0" is not read as pct=0: the policy applies to all mail (the stricter reading), with a warning
            var photobook = DmarcRecordParser.Parse(map["reply.myphotobook.de"]);
            Assert.Equal(DmarcPolicy.Reject, photobook.P);
            Assert.Equal(100, photobook.Pct);
            Assert.Equal(DmarcAlignment.Strict, photobook.Adkim);
            Assert.Contains(photobook.Warnings, w => w.Contains("'pct0' ignored", StringComparison.Ordinal));

            var kbh = DmarcRecordParser.Parse(map["email.ex.kbhmaui.com"]);
            Assert.Equal(DmarcPolicy.None, kbh.P);
            Assert.Single(kbh.Rua);
            Assert.Single(kbh.Warnings);
        }

        [Fact]
        public void EveryTagIsRead()
        {
            var r = DmarcRecordParser.Parse("v=DMARC1; p=reject; sp=quarantine; np=none; pct=50; rua=mailto:a@example.org!10m, mailto:b@example.net; ruf=mailto:f@example.org!2k; adkim=s; aspf=s; fo=1:d; rf=afrf; ri=3600; psd=n; t=y");
            Assert.Equal(DmarcPolicy.Reject, r.P);
            Assert.Equal(DmarcPolicy.Quarantine, r.Sp);
            Assert.Equal(DmarcPolicy.None, r.Np);
            Assert.Equal(DmarcPolicy.None, r.EffectiveNonexistentSubdomainPolicy);
            Assert.Equal(50, r.Pct);
            Assert.Equal(new[] { "mailto:a@example.org", "mailto:b@example.net" }, r.Rua.Select(u => u.Uri));
            Assert.Equal(new long?[] { 10L << 20, null }, r.Rua.Select(u => u.MaxSize));
            Assert.Equal(2048, r.Ruf[0].MaxSize);
            Assert.Equal(DmarcAlignment.Strict, r.Adkim);
            Assert.Equal(DmarcAlignment.Strict, r.Aspf);
            Assert.Equal("1:d", r.Fo);
            Assert.Equal(3600, r.Ri);
            Assert.Equal("n", r.Psd);
            Assert.True(r.Testing);
            Assert.Empty(r.Warnings);
        }

        [Fact]
        public void DefaultsApplyToAbsentTags()
        {
            var r = DmarcRecordParser.Parse("v=DMARC1; p=quarantine");
            Assert.Null(r.Sp);
            Assert.Equal(DmarcPolicy.Quarantine, r.EffectiveSubdomainPolicy);
            Assert.Equal(DmarcPolicy.Quarantine, r.EffectiveNonexistentSubdomainPolicy);
            Assert.Equal(100, r.Pct);
            Assert.Equal(DmarcAlignment.Relaxed, r.Adkim);
            Assert.Equal("0", r.Fo);
            Assert.Equal("afrf", r.Rf);
            Assert.Equal(86400, r.Ri);
            Assert.False(r.Testing);
            Assert.Null(r.Psd);
            Assert.Empty(r.Rua);
        }

        [Theory]
        [InlineData("p=none; rua=mailto:a@example.org", "no v=DMARC1")]
        [InlineData("v=spf1 -all", "not a DMARC record: v=spf1 -all")]
        [InlineData("v=DMARC2; p=none", "v=DMARC2")]
        [InlineData("v=DMARC1", "no p tag, and no valid rua")]
        [InlineData("v=DMARC1; p=block", "p=block is not none, quarantine or reject, and no valid rua")]
        [InlineData("v=DMARC1; p=reject; sp=maybe", "sp=maybe is not none")]
        [InlineData("", "no v=DMARC1")]
        public void UnusableRecordsAreRefusedWithTheReason(string text, string reason)
        {
            Assert.False(DmarcRecordParser.TryParse(text, out var record, out var error));
            Assert.Null(record);
            Assert.Contains(reason, error, StringComparison.Ordinal);
            Assert.Throws<FormatException>(() => DmarcRecordParser.Parse(text));
        }

        [Fact]
        public void AnInvalidPolicyWithARuaIsReadAsNone()
        {
            // RFC 7489 §6.6.3: the receiver acts as if p=none was published, so that reports still flow
            var r = DmarcRecordParser.Parse("v=DMARC1; p=block; rua=mailto:d@example.org");
            Assert.Equal(DmarcPolicy.None, r.P);
            Assert.Contains(r.Warnings, w => w.Contains("read as p=none because rua is given", StringComparison.Ordinal));
            var noP = DmarcRecordParser.Parse("v=DMARC1; rua=mailto:d@example.org");
            Assert.Equal(DmarcPolicy.None, noP.P);
        }

        [Fact]
        public void LenienciesAreNoted()
        {
            var r = DmarcRecordParser.Parse(" V = DMARC1 ;P=Reject;; pct=abc; adkim=x; foo=bar; p=none; rua=mailto:ok@example.org,mailto:broken; ");
            Assert.Equal(DmarcPolicy.Reject, r.P);
            Assert.Equal(100, r.Pct);
            Assert.Single(r.Rua);
            Assert.Contains(r.Warnings, w => w.Contains("pct=abc ignored", StringComparison.Ordinal));
            Assert.Contains(r.Warnings, w => w.Contains("adkim=x ignored", StringComparison.Ordinal));
            Assert.Contains(r.Warnings, w => w.Contains("unknown tag foo ignored", StringComparison.Ordinal));
            Assert.Contains(r.Warnings, w => w.Contains("p is given twice", StringComparison.Ordinal));
            Assert.Contains(r.Warnings, w => w.Contains("'mailto:broken' dropped", StringComparison.Ordinal));
            Assert.Contains(DmarcRecordParser.Parse("p=none; v=DMARC1").Warnings, w => w.Contains("not the first tag", StringComparison.Ordinal));
        }

        /// <summary>name → TXT strings; names in Broken time out, names in Failing give SERVFAIL.</summary>
        private sealed class Zone : IDnsResolver
        {
            public Dictionary<string, string[]> Txt { get; } = new Dictionary<string, string[]>();
            public HashSet<string> Broken { get; } = new HashSet<string>();
            public HashSet<string> Failing { get; } = new HashSet<string>();
            public List<string> Asked { get; } = new List<string>();

            public Task<DnsResult<string>> QueryTxtAsync(string name, CancellationToken c)
            {
                Asked.Add(name);
                if (Broken.Contains(name))
                {
                    return Task.FromResult(DnsResult<string>.Of(DnsStatus.Timeout, "no answer in 2 s"));
                }

                if (Failing.Contains(name))
                {
                    return Task.FromResult(DnsResult<string>.Of(DnsStatus.ServerFailure));
                }

                return Task.FromResult(Txt.TryGetValue(name, out var v)
                    ? (v.Length == 0 ? DnsResult<string>.Of(DnsStatus.NoData) : new DnsResult<string>(DnsStatus.Ok, v))
                    : DnsResult<string>.Of(DnsStatus.NxDomain));
            }

            public Task<DnsResult<IPAddress>> QueryAddressesAsync(string name, bool ipv6, CancellationToken c) => throw new NotSupportedException();
            public Task<DnsResult<MxRecord>> QueryMxAsync(string name, CancellationToken c) => throw new NotSupportedException();
            public Task<DnsResult<string>> QueryNsAsync(string name, CancellationToken c) => throw new NotSupportedException();
            public Task<DnsResult<string>> QueryPtrAsync(IPAddress a, CancellationToken c) => throw new NotSupportedException();
        }

        [Fact]
        public async Task ThePolicyIsFoundAtTheDomain()
        {
            var z = new Zone();
            z.Txt["_dmarc.example.org"] = new[] { "some other text", "v=DMARC1; p=reject; rua=mailto:d@example.org" };
            var r = await DmarcPolicyLookup.LookupAsync(z, "Example.ORG.", CancellationToken.None);
            Assert.Equal(DmarcPolicyStatus.Found, r.Status);
            Assert.Equal("example.org", r.RecordDomain);
            Assert.False(r.FromOrganizationalDomain);
            Assert.Equal(DmarcPolicy.Reject, r.Record!.P);
            Assert.Equal("v=DMARC1; p=reject; rua=mailto:d@example.org", r.Text);
            Assert.Equal(new[] { "_dmarc.example.org" }, z.Asked);
        }

        [Fact]
        public async Task WhenAbsentTheOrganisationalDomainsPolicyApplies()
        {
            var z = new Zone();
            z.Txt["_dmarc.example.org"] = new[] { "v=DMARC1; p=quarantine; sp=reject" };
            z.Txt["_dmarc.news.mail.example.org"] = new[] { "not dmarc" };
            var r = await DmarcPolicyLookup.LookupAsync(z, "news.mail.example.org", CancellationToken.None);
            Assert.Equal(DmarcPolicyStatus.Found, r.Status);
            Assert.Equal("example.org", r.RecordDomain);
            Assert.True(r.FromOrganizationalDomain);
            Assert.Equal(DmarcPolicy.Reject, r.Record!.EffectiveSubdomainPolicy);
            Assert.Equal(new[] { "_dmarc.news.mail.example.org", "_dmarc.example.org" }, z.Asked);

            var none = await DmarcPolicyLookup.LookupAsync(new Zone(), "www.nowhere.test", CancellationToken.None);
            Assert.Equal(DmarcPolicyStatus.Absent, none.Status);
            Assert.Null(none.RecordDomain);
        }

        [Fact]
        public async Task AFailedLookupIsUnknownNeverAbsent()
        {
            var z = new Zone();
            z.Broken.Add("_dmarc.mail.example.org");
            z.Txt["_dmarc.example.org"] = new[] { "v=DMARC1; p=none" };
            var r = await DmarcPolicyLookup.LookupAsync(z, "mail.example.org", CancellationToken.None);
            Assert.Equal(DmarcPolicyStatus.Unknown, r.Status);
            Assert.Contains("Timeout", r.Detail, StringComparison.Ordinal);
            Assert.Single(z.Asked); // no fallback past a failure: the domain's own record may exist

            var z2 = new Zone();
            z2.Failing.Add("_dmarc.example.org");
            var r2 = await DmarcPolicyLookup.LookupAsync(z2, "mail.example.org", CancellationToken.None);
            Assert.Equal(DmarcPolicyStatus.Unknown, r2.Status);
            Assert.Equal("example.org", r2.RecordDomain);
        }

        [Fact]
        public async Task SeveralRecordsOrAnUnusableOneAreInvalid()
        {
            var z = new Zone();
            z.Txt["_dmarc.two.test"] = new[] { "v=DMARC1; p=none", "v=DMARC1; p=reject" };
            z.Txt["_dmarc.bad.test"] = new[] { "v=DMARC1; p=block" };
            z.Txt["_dmarc.empty.test"] = Array.Empty<string>();
            var two = await DmarcPolicyLookup.LookupAsync(z, "two.test", CancellationToken.None);
            Assert.Equal(DmarcPolicyStatus.Invalid, two.Status);
            Assert.Contains("2 DMARC records", two.Detail, StringComparison.Ordinal);
            var bad = await DmarcPolicyLookup.LookupAsync(z, "bad.test", CancellationToken.None);
            Assert.Equal(DmarcPolicyStatus.Invalid, bad.Status);
            Assert.Equal("v=DMARC1; p=block", bad.Text);
            Assert.Contains("p=block", bad.Detail, StringComparison.Ordinal);
            Assert.Equal(DmarcPolicyStatus.Absent, (await DmarcPolicyLookup.LookupAsync(z, "empty.test", CancellationToken.None)).Status);
        }

        [Theory]
        [InlineData("example.org", "example.org")]
        [InlineData("a.b.example.org", "example.org")]
        [InlineData("example.org.", "example.org")]
        [InlineData("localhost", "localhost")]
        [InlineData("shop.example.co.uk", "co.uk")] // the documented limit of the last-two-labels rule
        public void OrganisationalDomainIsTheLastTwoLabels(string domain, string expected)
        {
            Assert.Equal(expected, DmarcPolicyLookup.OrganizationalDomain(domain));
        }
    }
}
