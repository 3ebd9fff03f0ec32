using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Config;
using MailOps.Core.Dns;
using MailOps.Core.Providers;
using MailOps.Core.Relay;
using MailOps.Core.Routing;
using Xunit;
using Zone = MailOps.Core.Tests.Providers.MailProviderResolverTests.Zone;

namespace MailOps.Core.Tests.Routing
{
    /// <summary>The readiness check before a flow moves to another relay, on a zone held in memory.</summary>
    public class FlowMoveReadinessTests
    {
        private const string Config = @"version: 1
domains:
  - name: corp.example
    dkimSelectors: [main]
relays:
  - name: primary
    host: 192.0.2.25
    role: primary
  - name: bulk
    host: bulk.corp.example
    role: secondary
    egress: [192.0.2.26]
flows:
  - name: newsletter
    kind: Campaign
    senders: [news@corp.example]
    relay: primary
";

        private static MailOpsConfig Cfg()
        {
            var r = ConfigReader.Read(Config);
            Assert.True(r.IsValid, string.Join("\n", r.Issues));
            return r.Config!;
        }

        private static Zone Zone(string spf, bool dkim, string? dmarc = "v=DMARC1; p=reject")
        {
            var z = new Zone();
            z.Txt["corp.example"] = spf;
            if (dkim)
            {
                using var rsa = System.Security.Cryptography.RSA.Create(2048);
                z.Txt["main._domainkey.corp.example"] = "v=DKIM1; k=rsa; p=" + Convert.ToBase64String(rsa.ExportSubjectPublicKeyInfo());
            }

            if (dmarc != null)
            {
                z.Txt["_dmarc.corp.example"] = dmarc;
            }

            return z;
        }

        private static Task<FlowReadiness> Check(Zone z, Func<CancellationToken, Task<RelayCheckResult>>? relay = null)
        {
            var c = Cfg();
            return FlowMoveReadiness.CheckAsync(c, c.Flows[0], c.FindRelay("bulk")!, z, ProviderCatalog.For(c), relay, CancellationToken.None);
        }

        [Fact]
        public async Task ReadyWhenSpfAuthorisesTheNewRelay()
        {
            var r = await Check(Zone("v=spf1 ip4:192.0.2.25 ip4:192.0.2.26 -all", dkim: false));
            Assert.True(r.Ready, r.Reason);
            Assert.True(r.Checks.Single(c => c.Name == "SPF").Passed);
            Assert.False(r.Checks.Single(c => c.Name == "DKIM").Passed);
            Assert.True(r.Checks.Single(c => c.Name == "DMARC").Passed);
        }

        [Fact]
        public async Task ReadyThroughDkimAloneWhenSpfDoesNotCoverTheRelay()
        {
            var r = await Check(Zone("v=spf1 ip4:192.0.2.25 -all", dkim: true));
            Assert.True(r.Ready, r.Reason);
            Assert.False(r.Checks.Single(c => c.Name == "SPF").Passed);
            Assert.Contains("DKIM", r.Checks.Single(c => c.Name == "DMARC").Detail, StringComparison.Ordinal);
        }

        [Fact]
        public async Task RefusedWhenTheMailWouldFailDmarc()
        {
            var r = await Check(Zone("v=spf1 ip4:192.0.2.25 -all", dkim: false));
            Assert.False(r.Ready);
            Assert.Contains("would fail DMARC", r.Reason, StringComparison.Ordinal);
            Assert.Contains("192.0.2.26", r.Reason, StringComparison.Ordinal);
            Assert.False(r.Checks.Single(c => c.Name == "DMARC").Passed);
        }

        [Fact]
        public async Task AFailedLookupRefusesWithUnknownNeverNo()
        {
            var z = Zone("v=spf1 ip4:192.0.2.26 -all", dkim: false);
            z.Fail["TXT corp.example"] = DnsStatus.Timeout;
            z.Fail["TXT main._domainkey.corp.example"] = DnsStatus.ServerFailure;
            var r = await Check(z);
            Assert.False(r.Ready);
            Assert.Contains("could not tell", r.Reason, StringComparison.Ordinal);
            Assert.Null(r.Checks.Single(c => c.Name == "SPF").Passed);
            Assert.Null(r.Checks.Single(c => c.Name == "DMARC").Passed);
        }

        [Fact]
        public async Task RefusedWhenTheRelayFailsItsCheck()
        {
            var failed = new RelayCheckResult("bulk", "bulk.corp.example", 587, "StartTls");
            failed.Add(MailOps.Core.Relay.FindingSeverity.Critical, "ConnectFailed", RelayStage.Connect, "connection refused");
            var r = await Check(Zone("v=spf1 ip4:192.0.2.26 -all", dkim: true), _ => Task.FromResult(failed));
            Assert.False(r.Ready);
            Assert.Contains("fails its check", r.Reason, StringComparison.Ordinal);
            Assert.False(r.Checks.Single(c => c.Name == "Relay").Passed);
        }
    }
}
