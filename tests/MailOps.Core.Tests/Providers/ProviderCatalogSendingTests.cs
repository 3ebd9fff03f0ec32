using System.Linq;
using MailOps.Core.Config;
using MailOps.Core.Providers;
using Xunit;

namespace MailOps.Core.Tests.Providers
{
    /// <summary>The catalogue's sending data (kind, spf, ptr, dkim) and how the configuration extends it.</summary>
    public class ProviderCatalogSendingTests
    {
        private static ProviderCatalog Catalogue => ProviderCatalog.BuiltIn;

        [Theory]
        [InlineData("sendgrid.net", "SendGrid", ProviderKind.Esp)]
        [InlineData("spf.mailjet.com", "Mailjet", ProviderKind.Esp)]
        [InlineData("mailgun.org", "Mailgun", ProviderKind.Esp)]
        [InlineData("amazonses.com", "AmazonSES", ProviderKind.Esp)]
        [InlineData("SPF.Protection.Outlook.com.", "Microsoft", ProviderKind.MailboxProvider)]
        [InlineData("_spf.google.com", "Google", ProviderKind.MailboxProvider)]
        [InlineData("mx.ovh.com", "OVH", ProviderKind.Hosting)]
        [InlineData("_spf.protonmail.ch", "Proton", ProviderKind.MailboxProvider)]
        [InlineData("mail.zendesk.com", "Zendesk", ProviderKind.Application)]
        public void SpfIncludesNameTheirService(string include, string provider, ProviderKind kind)
        {
            var m = Assert.Single(Catalogue.MatchSpfInclude(include));
            Assert.Equal(provider, m.Name);
            Assert.Equal(kind, m.Kind);
            Assert.Equal(include.TrimEnd('.').ToLowerInvariant(), m.Value);
        }

        [Theory]
        [InlineData("o1.ptr1234.sendgrid.net", "SendGrid")]
        [InlineData("a8-30.smtp-out.amazonses.com", "AmazonSES")]
        [InlineData("mail135-1.atl141.mcsv.net", "Mailchimp")]
        [InlineData("mail-dm6nam10on2077.outbound.protection.outlook.com", "Microsoft")]
        [InlineData("mail-sor-f41.google.com", "Google")]
        [InlineData("mo4-p00-ob.smtp.rzone.de", "Strato")]
        public void PtrNamesNameTheirNetwork(string host, string provider)
        {
            Assert.Equal(provider, Assert.Single(Catalogue.MatchPtr(host)).Name);
        }

        [Fact]
        public void SelectorsCanHaveSeveralOrNoCandidates()
        {
            Assert.Equal("Microsoft", Assert.Single(Catalogue.MatchDkimSelector("selector1")).Name);
            Assert.Equal("Google", Assert.Single(Catalogue.MatchDkimSelector("GOOGLE")).Name);
            var ovh = Assert.Single(Catalogue.MatchDkimSelector("ovhex123456-selector2"));
            Assert.Equal(("OVH", "ovhex*-selector2"), (ovh.Name, ovh.Pattern));
            Assert.Empty(Catalogue.MatchDkimSelector("default"));
            Assert.Empty(Catalogue.MatchSpfInclude("spf.example.org"));
            Assert.Empty(Catalogue.MatchPtr(""));

            // a site's own provider that also uses selector1: both are candidates, the configuration's first
            var config = ConfigReader.Read("version: 1\nproviders:\n  - name: InHouse\n    dkim: [selector1]\n").Config!;
            Assert.Equal(new[] { "InHouse", "Microsoft" }, ProviderCatalog.For(config).MatchDkimSelector("selector1").Select(m => m.Name));

            // wildcard selectors are matched, never probed
            Assert.Contains("google", Catalogue.ProbeableDkimSelectors);
            Assert.DoesNotContain(Catalogue.ProbeableDkimSelectors, s => s.Contains('*'));
        }

        [Fact]
        public void TheConfigurationExtendsTheSendingData()
        {
            var r = ConfigReader.Read(@"version: 1
providers:
  - name: sendgrid
    kind: Marketing
    spf: [u123.wl.sendgrid.net]
    dkim: [s1, s2]
  - name: LabRelay
    kind: esp
    spf: ['*.spf.labrelay.test']
    ptr: ['out*.labrelay.test']
");
            Assert.True(r.IsValid, string.Join("\n", r.Issues));
            var catalog = ProviderCatalog.For(r.Config);
            var sendgrid = catalog.Find("SendGrid")!;
            Assert.Equal("catalogue+configuration", sendgrid.Origin);
            Assert.Equal(ProviderKind.Marketing, sendgrid.Kind); // the site's word wins
            Assert.Equal(new[] { "sendgrid.net", "u123.wl.sendgrid.net" }, sendgrid.SpfPatterns);
            Assert.Equal(new[] { "*.sendgrid.net" }, sendgrid.PtrPatterns);
            Assert.Equal("SendGrid", Assert.Single(catalog.MatchDkimSelector("s2")).Name);
            Assert.Equal("LabRelay", Assert.Single(catalog.MatchSpfInclude("eu.spf.labrelay.test")).Name);
            Assert.Equal(ProviderKind.Esp, catalog.Find("labrelay")!.Kind);
            Assert.Equal("LabRelay", Assert.Single(catalog.MatchPtr("out7.labrelay.test")).Name);
            Assert.Equal(ProviderKind.Unspecified, ProviderCatalog.For(ConfigReader.Read("version: 1\nproviders:\n  - { name: X, ptr: ['*.x.test'] }\n").Config).Find("X")!.Kind);
        }

        [Fact]
        public void SendingServicesCannotChangeWhoHostsAMailbox()
        {
            // Resolve-MailProvider matches MX, NS, AS numbers and owner domains only: the entries added for the
            // inventory have none of those, so its answers stay what they were.
            foreach (var name in new[] { "SendGrid", "Mailjet", "Brevo", "Mailgun", "AmazonSES", "Mailchimp", "Mandrill", "Postmark", "SparkPost", "HubSpot", "SalesforceMarketingCloud", "Zendesk" })
            {
                var p = Catalogue.Find(name);
                Assert.NotNull(p);
                Assert.Empty(p!.MxPatterns);
                Assert.Empty(p.NsPatterns);
                Assert.Empty(p.AsNumbers);
                Assert.Empty(p.Domains);
                Assert.NotEqual(ProviderKind.Unspecified, p.Kind);
                Assert.NotEmpty(p.PtrPatterns);
            }

            Assert.All(Catalogue.Providers, p => Assert.True(p.Kind != ProviderKind.Unspecified, p.Name + " has no kind"));
        }
    }
}
