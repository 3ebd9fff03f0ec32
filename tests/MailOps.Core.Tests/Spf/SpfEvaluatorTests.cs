using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Dns;
using MailOps.Core.Spf;
using Xunit;

namespace MailOps.Core.Tests.Spf
{
    public class SpfEvaluatorTests
    {
        /// <summary>A tiny in-memory zone: name -> TXT, A; names in Broken time out.</summary>
        private sealed class Zone : IDnsResolver
        {
            public Dictionary<string, string> Txt { get; } = new Dictionary<string, string>();
            public Dictionary<string, string> A { get; } = new Dictionary<string, string>();
            public HashSet<string> Broken { get; } = new HashSet<string>();
            public int Queries { get; private set; }

            private DnsResult<T> Get<T>(string name, Dictionary<string, string> map, System.Func<string, T> f)
            {
                Queries++;
                if (Broken.Contains(name)) return DnsResult<T>.Of(DnsStatus.Timeout);
                if (map.TryGetValue(name, out var v)) return new DnsResult<T>(DnsStatus.Ok, new[] { f(v) });
                return DnsResult<T>.Of(Txt.ContainsKey(name) || A.ContainsKey(name) ? DnsStatus.NoData : DnsStatus.NxDomain);
            }

            public Task<DnsResult<IPAddress>> QueryAddressesAsync(string name, bool ipv6, CancellationToken c) => Task.FromResult(ipv6 ? DnsResult<IPAddress>.Of(DnsStatus.NoData) : Get(name, A, IPAddress.Parse));
            public Task<DnsResult<string>> QueryTxtAsync(string name, CancellationToken c) => Task.FromResult(Get(name, Txt, x => x));
            public Task<DnsResult<MxRecord>> QueryMxAsync(string name, CancellationToken c) => Task.FromResult(DnsResult<MxRecord>.Of(DnsStatus.NoData));
            public Task<DnsResult<string>> QueryNsAsync(string name, CancellationToken c) => Task.FromResult(DnsResult<string>.Of(DnsStatus.NoData));
            public Task<DnsResult<string>> QueryPtrAsync(IPAddress a, CancellationToken c) => Task.FromResult(DnsResult<string>.Of(DnsStatus.NxDomain));
        }

        private static Task<SpfResult> Check(Zone z, string ip, string domain) =>
            new SpfEvaluator(z).CheckHostAsync(IPAddress.Parse(ip), domain, "user@" + domain, "helo.test", CancellationToken.None);

        [Fact]
        public async Task IncludeChainIsTracedWithDepthAndMechanism()
        {
            var z = new Zone();
            z.Txt["example.org"] = "v=spf1 include:_spf.example.org -all";
            z.Txt["_spf.example.org"] = "v=spf1 ip4:192.0.2.0/24 -all";
            var r = await Check(z, "192.0.2.9", "example.org");

            Assert.Equal(SpfResultKind.Pass, r.Result);
            Assert.Equal("include:_spf.example.org", r.Mechanism);
            Assert.Equal(1, r.DnsLookups);
            Assert.Contains(r.Trace, t => t.Depth == 1 && t.Domain == "_spf.example.org" && t.Term == "ip4:192.0.2.0/24" && t.Outcome == "match");
            Assert.Equal("v=spf1 include:_spf.example.org -all", r.Record);
        }

        [Fact]
        public async Task MoreThanTenLookupsIsPermError()
        {
            var z = new Zone();
            z.Txt["example.org"] = "v=spf1 " + string.Join(" ", Enumerable.Range(1, 11).Select(i => $"include:i{i}.example.org")) + " -all";
            for (var i = 1; i <= 11; i++)
            {
                z.Txt[$"i{i}.example.org"] = "v=spf1 -all";
            }

            var r = await Check(z, "192.0.2.9", "example.org");
            Assert.Equal(SpfResultKind.PermError, r.Result);
            Assert.Equal(11, r.DnsLookups);
            Assert.Contains("more than 10 DNS lookups", r.Reason);
        }

        [Fact]
        public async Task ThirdVoidLookupIsPermError()
        {
            var z = new Zone();
            z.Txt["example.org"] = "v=spf1 a:n1.example.org a:n2.example.org a:n3.example.org -all";
            var r = await Check(z, "192.0.2.9", "example.org");
            Assert.Equal(SpfResultKind.PermError, r.Result);
            Assert.Equal(3, r.VoidLookups);
        }

        [Fact]
        public async Task TimeoutIsTempErrorNeverFailOrNone()
        {
            var z = new Zone();
            z.Txt["example.org"] = "v=spf1 include:slow.example.org -all";
            z.Broken.Add("slow.example.org");
            Assert.Equal(SpfResultKind.TempError, (await Check(z, "192.0.2.9", "example.org")).Result);

            z.Broken.Add("example.org");
            Assert.Equal(SpfResultKind.TempError, (await Check(z, "192.0.2.9", "example.org")).Result);
        }

        [Fact]
        public async Task ExplanationIsExpandedForFail()
        {
            var z = new Zone();
            z.Txt["example.org"] = "v=spf1 -all exp=why.example.org";
            z.Txt["why.example.org"] = "%{c} may not send for %{d} (%{l})";
            var r = await Check(z, "192.0.2.9", "example.org");
            Assert.Equal(SpfResultKind.Fail, r.Result);
            Assert.Equal("192.0.2.9 may not send for example.org (user)", r.Explanation);
        }

        [Fact]
        public async Task MacrosExpandWithTransformersAndDelimiters()
        {
            var z = new Zone();
            z.Txt["example.org"] = "v=spf1 exists:%{ir}.%{l1r-}.x.example.org -all";
            z.A["9.2.0.192.some.x.example.org"] = "127.0.0.2";
            var r = await new SpfEvaluator(z).CheckHostAsync(IPAddress.Parse("192.0.2.9"), "example.org", "some-user@example.org", "h", CancellationToken.None);
            Assert.Equal(SpfResultKind.Pass, r.Result);
        }
    }
}
