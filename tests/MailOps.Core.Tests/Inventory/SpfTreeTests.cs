using System;
using System.Linq;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Dns;
using MailOps.Core.Inventory;
using MailOps.Core.Providers;
using MailOps.Core.Spf;
using Xunit;
using Zone = MailOps.Core.Tests.Providers.MailProviderResolverTests.Zone;

namespace MailOps.Core.Tests.Inventory
{
    /// <summary>The SPF tree of the inventory, on zones held in memory.</summary>
    public class SpfTreeTests
    {
        private static Task<SpfTree> Build(Zone z, string domain, SpfTreeOptions? options = null, CancellationToken cancel = default) =>
            new SpfTreeBuilder(z, ProviderCatalog.BuiltIn, options).BuildAsync(domain, cancel);

        /// <summary>example.org: Google, SendGrid (nested three levels) and its own servers.</summary>
        private static Zone Nested()
        {
            var z = new Zone();
            z.Txt["example.org"] = "v=spf1 ip4:192.0.2.0/24 include:_spf.google.com include:spf.example.org -all";
            z.Txt["_spf.google.com"] = "v=spf1 include:_netblocks.google.com ~all";
            z.Txt["_netblocks.google.com"] = "v=spf1 ip4:35.190.247.0/24 ip6:2001:4860:4000::/36 ~all";
            z.Txt["spf.example.org"] = "v=spf1 include:sendgrid.net -ip4:203.0.113.66 ?all";
            z.Txt["sendgrid.net"] = "v=spf1 ip4:167.89.0.0/17 ~all";
            return z;
        }

        [Fact]
        public async Task NestedIncludesAreFlattenedWithTheirPathAndService()
        {
            var t = await Build(Nested(), "Example.ORG.");

            Assert.Equal(SpfRecordStatus.Found, t.Status);
            Assert.Equal("example.org", t.Domain);
            Assert.True(t.IsComplete);
            Assert.Equal(4, t.DnsLookups); // include x2 at the top, one inside Google's, one inside spf.example.org
            Assert.False(t.OverLookupLimit);

            var google = t.Terms[1];
            Assert.Equal(("include", "_spf.google.com", SpfRecordStatus.Found), (google.Mechanism, google.Target, google.TargetStatus));
            Assert.Equal("Google", google.Service!.Name);
            var netblocks = google.Children[0];
            Assert.Equal(2, netblocks.Children[0].Depth); // three levels: example.org > _spf.google.com > _netblocks.google.com
            Assert.Equal(new[] { "example.org", "_spf.google.com", "_netblocks.google.com" }, netblocks.Children[0].Path);
            Assert.Equal("Google", netblocks.Children[0].Service!.Name); // inherited from the include that named it
            Assert.Equal("include:_spf.google.com [Google]", google.ToString());
            Assert.Equal("  include:_netblocks.google.com", netblocks.ToString());

            var v6 = Assert.Single(t.Networks, n => n.Network == "2001:4860:4000::/36");
            Assert.True(v6.IsAuthorized);
            Assert.Equal("example.org > _spf.google.com > _netblocks.google.com", v6.PathText);
            Assert.Equal("Google", v6.Service);

            // a '-' term inside an include only makes that include not match: it decides nothing for example.org
            var denied = Assert.Single(t.Networks, n => n.Network == "203.0.113.66/32");
            Assert.Null(denied.Result);
            Assert.Equal(new[] { "192.0.2.0/24", "35.190.247.0/24", "2001:4860:4000::/36", "167.89.0.0/17" }, t.AuthorizedNetworks.Select(n => n.Network));

            Assert.Equal(new[] { ("Google", "_spf.google.com"), ("SendGrid", "sendgrid.net") }, t.Services.Select(s => (s.Name, s.Via)));
            Assert.All(t.Services, s => Assert.True(s.IsAuthorized));
            Assert.Equal(ProviderKind.Esp, t.Services[1].Kind);
            Assert.Equal("example.org > spf.example.org", t.Services[1].PathText);
            Assert.Empty(t.Problems);
            Assert.Contains("services: Google, SendGrid", t.ToString());
        }

        [Fact]
        public async Task RedirectIsFollowedUnlessTheRecordHasAll()
        {
            var z = new Zone();
            z.Txt["example.org"] = "v=spf1 ip4:192.0.2.1 redirect=_spf.example.net";
            z.Txt["_spf.example.net"] = "v=spf1 include:spf.protection.outlook.com -all";
            z.Txt["spf.protection.outlook.com"] = "v=spf1 ip4:40.92.0.0/15 -all";
            z.Txt["other.example"] = "v=spf1 -all ip4:198.51.100.1 redirect=_spf.example.net";
            var t = await Build(z, "example.org");

            var redirect = t.Terms[t.Terms.Count - 1];
            Assert.Equal(("redirect", (SpfQualifier?)null, "_spf.example.net"), (redirect.Mechanism, redirect.Qualifier, redirect.Target));
            Assert.Equal(2, t.DnsLookups);
            Assert.Equal("Microsoft", Assert.Single(t.Services).Name);
            Assert.True(t.Services[0].IsAuthorized);
            Assert.Contains(t.AuthorizedNetworks, n => n.Network == "40.92.0.0/15" && n.PathText == "example.org > _spf.example.net > spf.protection.outlook.com");

            var ignored = await Build(z, "other.example");
            Assert.Equal(0, ignored.DnsLookups);
            Assert.All(ignored.Terms.Skip(1), n => Assert.Equal(SpfNodeStatus.Ignored, n.Status));
            Assert.Empty(ignored.Terms[ignored.Terms.Count - 1].Children);
            Assert.Empty(ignored.AuthorizedNetworks);
            Assert.Contains(ignored.Problems, p => p.Contains("redirect= is ignored", StringComparison.Ordinal));
        }

        [Fact]
        public async Task AAndMxAreCountedAndResolved()
        {
            var z = new Zone();
            z.Txt["example.org"] = "v=spf1 a mx/28 a:relay.example.org//64 mx:many.example.org -all";
            z.A["example.org"] = new[] { "192.0.2.10" };
            z.Mx["example.org"] = new[] { new MxRecord(20, "mx2.example.org"), new MxRecord(10, "mx1.example.org") };
            z.A["mx1.example.org"] = new[] { "192.0.2.21" };
            z.A["mx2.example.org"] = new[] { "192.0.2.22" };
            z.Aaaa["relay.example.org"] = new[] { "2001:db8::25" };
            z.Mx["many.example.org"] = Enumerable.Range(1, 11).Select(i => new MxRecord(i, $"m{i}.example.org")).ToArray();
            var t = await Build(z, "example.org");

            Assert.Equal(4, t.DnsLookups);
            Assert.Equal(new[] { 1, 2, 3, 4 }, t.Terms.Take(4).Select(n => n.LookupNumber!.Value));
            Assert.Equal(new[] { "192.0.2.10/32" }, t.Terms[0].Addresses);
            Assert.Equal(new[] { "mx1.example.org", "mx2.example.org" }, t.Terms[1].MxHosts);
            Assert.Equal(new[] { "192.0.2.21/28", "192.0.2.22/28" }, t.Terms[1].Addresses);
            Assert.Equal(new[] { "2001:db8::25/64" }, t.Terms[2].Addresses);
            Assert.Equal(SpfNodeStatus.TooManyNames, t.Terms[3].Status); // 11 MX names for one mx term
            Assert.Contains(t.Problems, p => p.Contains("11 MX names", StringComparison.Ordinal));
            Assert.Contains(t.AuthorizedNetworks, n => n.Mechanism == "mx" && n.Network == "192.0.2.22/28");
        }

        private static Zone Chain(int includes)
        {
            var z = new Zone();
            z.Txt["example.org"] = "v=spf1 " + string.Join(" ", Enumerable.Range(1, includes).Select(i => $"include:i{i}.example.org")) + " -all";
            for (var i = 1; i <= includes; i++)
            {
                z.Txt[$"i{i}.example.org"] = $"v=spf1 ip4:198.51.100.{i} -all";
            }

            return z;
        }

        [Fact]
        public async Task TenLookupsAreFineAndTheEleventhIsNamed()
        {
            var ten = await Build(Chain(10), "example.org");
            Assert.Equal(10, ten.DnsLookups);
            Assert.False(ten.OverLookupLimit);
            Assert.Null(ten.LimitExceededAt);

            var z = Chain(9);
            z.Txt["i9.example.org"] = "v=spf1 a:host.example.org include:i10.example.org -all";
            z.Txt["i10.example.org"] = "v=spf1 ip4:198.51.100.10 -all";
            z.A["host.example.org"] = new[] { "198.51.100.99" };
            var eleven = await Build(z, "example.org");
            Assert.Equal(11, eleven.DnsLookups);
            Assert.True(eleven.OverLookupLimit);
            Assert.Equal(("include:i10.example.org", "i9.example.org", 11), (eleven.LimitExceededAt!.Term, eleven.LimitExceededAt.Domain, eleven.LimitExceededAt.LookupNumber!.Value));
            Assert.Contains("lookup 11 is 'include:i10.example.org' in i9.example.org (example.org > i9.example.org)", eleven.Problems[0]);

            // the evaluator spends the same lookups, in the same order, and fails at the same term
            var r = await new SpfEvaluator(z).CheckHostAsync(IPAddress.Parse("203.0.113.1"), "example.org", "a@example.org", null, CancellationToken.None);
            Assert.Equal(SpfResultKind.PermError, r.Result);
            Assert.Contains("reached at 'include:i10.example.org' in i9.example.org", r.Reason);
        }

        [Fact]
        public async Task VoidLookupsAreCountedAndTheThirdIsNamed()
        {
            var z = new Zone();
            z.Txt["example.org"] = "v=spf1 a:gone1.example.org mx:gone2.example.org exists:gone3.example.org ip4:192.0.2.1 -all";
            var t = await Build(z, "example.org");

            Assert.Equal(3, t.VoidLookups);
            Assert.True(t.OverVoidLimit);
            Assert.Equal("exists:gone3.example.org", t.VoidLimitExceededAt!.Term);
            Assert.Equal(3, t.VoidNodes.Count);
            Assert.Empty(t.FailedLookups); // absent is not unknown
            Assert.True(t.IsComplete);

            var r = await new SpfEvaluator(z).CheckHostAsync(IPAddress.Parse("203.0.113.1"), "example.org", "a@example.org", null, CancellationToken.None);
            Assert.Equal((SpfResultKind.PermError, 3), (r.Result, r.VoidLookups));
        }

        [Fact]
        public async Task IncludeLoopsAreStopped()
        {
            var z = new Zone();
            z.Txt["self.example"] = "v=spf1 include:self.example -all";
            z.Txt["a.example"] = "v=spf1 include:b.example -all";
            z.Txt["b.example"] = "v=spf1 ip4:192.0.2.1 include:A.example -all";
            var self = await Build(z, "self.example");
            Assert.Equal(SpfNodeStatus.Loop, Assert.Single(self.Loops).Status);
            Assert.True(self.OverLookupLimit);
            Assert.Same(self.Loops[0], self.LimitExceededAt);

            var two = await Build(z, "a.example");
            var loop = Assert.Single(two.Loops);
            Assert.Equal(("include:A.example", "b.example"), (loop.Term, loop.Domain));
            Assert.Contains("loops back", two.Problems[0]);
            Assert.Contains(two.AuthorizedNetworks, n => n.Network == "192.0.2.1/32");
        }

        [Fact]
        public async Task FailedLookupsAreUnknownNeverAbsent()
        {
            var z = Nested();
            z.Fail["TXT sendgrid.net"] = DnsStatus.Timeout;
            z.Txt["example.net"] = "v=spf1 a:slow.example.net mx:dead.example.net -all";
            z.Fail["A slow.example.net"] = DnsStatus.ServerFailure;
            z.Aaaa["slow.example.net"] = new[] { "2001:db8::1" };
            z.Fail["dead.example.net"] = DnsStatus.Timeout;
            z.Fail["TXT example.com"] = DnsStatus.Timeout;

            var t = await Build(z, "example.org");
            var sendgrid = t.Nodes.Single(n => n.Target == "sendgrid.net");
            Assert.Equal((SpfNodeStatus.Unknown, SpfRecordStatus.Unknown), (sendgrid.Status, sendgrid.TargetStatus!.Value));
            Assert.Equal("SendGrid", sendgrid.Service!.Name); // the include still names the service
            Assert.False(t.IsComplete);
            Assert.Equal(0, t.VoidLookups);
            Assert.Contains(sendgrid, t.FailedLookups);
            Assert.Contains(t.Problems, p => p.Contains("failed (Timeout", StringComparison.Ordinal));

            var net = await Build(z, "example.net");
            Assert.Equal(new[] { SpfNodeStatus.Unknown, SpfNodeStatus.Unknown }, net.Terms.Take(2).Select(n => n.Status));
            Assert.Equal(new[] { "2001:db8::1/128" }, net.Terms[0].Addresses); // what is known is kept
            Assert.Equal(0, net.VoidLookups);

            var top = await Build(z, "example.com");
            Assert.Equal(SpfRecordStatus.Unknown, top.Status);
            Assert.Contains("Timeout", top.Detail, StringComparison.Ordinal);
            Assert.False(top.IsComplete);
        }

        [Fact]
        public async Task BrokenRecordsAndMacrosAreReported()
        {
            var z = new Zone();
            z.TxtMany["two.example"] = new[] { "v=spf1 -all", "v=spf1 ip4:192.0.2.1 -all", "google-site-verification=x" };
            z.Txt["bad.example"] = "v=spf1 ip4:192.0.2.300 -all";
            z.Txt["none.example"] = "hello";
            z.Txt["example.org"] = "v=spf1 include:two.example include:bad.example include:none.example include:gone.example exists:%{i}._spf.example.org ptr ~all";

            Assert.Equal(SpfRecordStatus.Multiple, (await Build(z, "two.example")).Status);
            var bad = await Build(z, "bad.example");
            Assert.Equal(SpfRecordStatus.Invalid, bad.Status);
            Assert.Contains("syntax error at 'ip4:192.0.2.300'", bad.Detail, StringComparison.Ordinal);
            Assert.Equal(SpfRecordStatus.None, (await Build(z, "none.example")).Status);
            Assert.Equal(SpfRecordStatus.None, (await Build(z, "gone.example")).Status);

            var t = await Build(z, "example.org");
            Assert.Equal(new[] { SpfNodeStatus.Multiple, SpfNodeStatus.Invalid, SpfNodeStatus.NoRecord, SpfNodeStatus.NoRecord, SpfNodeStatus.Macro, SpfNodeStatus.ClientDependent },
                t.Terms.Take(6).Select(n => n.Status));
            Assert.Equal("exists:%{i}._spf.example.org", Assert.Single(t.MacroTerms).Term);
            Assert.Equal(6, t.DnsLookups);
            Assert.False(t.IsComplete);
            Assert.Equal(6, t.Problems.Count);
        }

        [Fact]
        public async Task IncludesAreResolvedConcurrentlyWithinTheBound()
        {
            var z = Chain(10);
            z.OnQuery = (q, c) => Task.Delay(30, c);
            var t = await Build(z, "example.org", new SpfTreeOptions { MaxConcurrency = 3 });
            Assert.Equal(10, t.DnsLookups);
            Assert.InRange(z.MaxInFlight, 2, 3);
        }

        [Fact]
        public async Task CancellationStopsTheBuild()
        {
            var z = Nested();
            var started = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            z.OnQuery = async (q, c) =>
            {
                if (q.Contains("google", StringComparison.Ordinal))
                {
                    started.TrySetResult(true);
                    await Task.Delay(Timeout.Infinite, c);
                }
            };
            using var cts = new CancellationTokenSource();
            var build = Build(z, "example.org", cancel: cts.Token);
            await started.Task;
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => build);
        }

        [Fact]
        public async Task DepthAndFanOutAreBounded()
        {
            var z = new Zone();
            for (var i = 0; i < 15; i++)
            {
                z.Txt[$"l{i}.example"] = $"v=spf1 include:l{i + 1}.example -all";
            }

            var t = await Build(z, "l0.example", new SpfTreeOptions { MaxDepth = 4 });
            var deepest = t.Nodes.Single(n => n.Status == SpfNodeStatus.TooDeep);
            Assert.Equal((SpfNodeStatus.TooDeep, 4), (deepest.Status, deepest.Depth));
            Assert.False(t.IsComplete);

            var wide = await Build(Chain(10), "example.org", new SpfTreeOptions { MaxIncludes = 4 });
            Assert.Equal(6, wide.Nodes.Count(n => n.Status == SpfNodeStatus.NotFollowed));
            Assert.Equal(10, wide.DnsLookups); // not followed, still counted
        }
    }
}
