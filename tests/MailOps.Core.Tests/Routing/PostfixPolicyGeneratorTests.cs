using System;
using System.Collections.Generic;
using System.Linq;
using MailOps.Core.Config;
using MailOps.Core.Routing;
using Xunit;

namespace MailOps.Core.Tests.Routing
{
    public class PostfixPolicyGeneratorTests
    {
        internal const string Config = @"version: 1
relays:
  - name: primary
    host: 127.0.0.1
    port: 2525
    role: primary
    credential: primary-login
  - name: Secondary-EU
    host: 127.0.0.1
    port: 2526
    role: secondary
    heloName: bulk.lab.test
    security: None
  - name: backup
    host: relay2.lab.test
    port: 465
    security: SslOnConnect
    role: secondary
    credential: backup-login
flows:
  - name: staff
    kind: PersonToPerson
    senders: ['@lab.test']
    clientHosts: [192.0.2.5]
  - name: newsletter
    kind: List
    senders: [news@lab.test, '*.lists.lab.test']
  - name: invoices
    kind: Transactional
    senders: [billing@corp.test]
    relay: backup
  - name: crm
    kind: Campaign
    senders: [crm.test]
    clientHosts: [192.0.2.10, 198.51.100.0/24, 203.0.113.0/25, app1.lab.test]
  - name: alerts
    kind: Automation
    senders: [alerts@legacy.test]
    relay: primary
thresholds:
  - name: eu-cap
    scope: relay
    match: Secondary-EU
    metric: recipients
    per: hour
    limit: 1000
  - name: news-minute
    scope: flow
    match: newsletter
    metric: messages
    per: minute
    limit: 30
  - name: crm-per-client
    scope: flow
    match: crm
    metric: messages
    per: hour
    limit: 600
  - name: app-recipients
    scope: client
    metric: recipients
    per: minute
    limit: 50
  - name: bounces
    scope: flow
    metric: bounceRate
    per: hour
    limit: 0.05
  - name: daily
    scope: relay
    metric: messages
    per: day
    limit: 10
alerts:
  sinks:
    - name: hook
      type: webhook
      url: https://hooks.example.org/services/T000/B000/SECRETTOKEN123
";

        internal static MailOpsConfig Read(string text)
        {
            var result = ConfigReader.Read(text, "routing.yaml");
            Assert.True(result.IsValid, string.Join("\n", result.Issues));
            return result.Config!;
        }

        internal static PostfixPolicy Generate(string text = Config, Action<PostfixPolicyOptions>? tweak = null)
        {
            var options = new PostfixPolicyOptions { MapDirectory = "/etc/postfix/mailops", Timestamp = false };
            tweak?.Invoke(options);
            return PostfixPolicyGenerator.Generate(Read(text), options);
        }

        private static List<string> Entries(PolicyFile file) =>
            file.Text.Split('\n').Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();

        [Fact]
        public void FlowsAreRoutedByRelayAndKind()
        {
            var p = Generate();
            var d = p.Decisions.ToDictionary(x => x.Flow);

            Assert.Null(d["staff"].Route);
            Assert.Equal(PolicyDecisionSeverity.Info, d["staff"].Severity);
            Assert.Equal("Secondary-EU", d["newsletter"].Route!.Relay);
            Assert.Equal("mailops_secondary_eu", d["newsletter"].Route!.Transport);
            Assert.Equal("[127.0.0.1]:2526", d["newsletter"].Route!.Nexthop);
            Assert.Equal("mailops_secondary_eu:[127.0.0.1]:2526", d["crm"].Route!.Target);
            Assert.Equal("mailops_backup:[relay2.lab.test]:465", d["invoices"].Route!.Target);

            // a bulk flow that names the primary stays there, and says so
            Assert.Null(d["alerts"].Route);
            Assert.Equal(PolicyDecisionSeverity.Warning, d["alerts"].Severity);
            Assert.Contains("kept on the primary path", d["alerts"].Why);
            Assert.Equal(new[] { "mailops_backup", "mailops_secondary_eu" }, p.Transports.Select(t => t.Transport));
        }

        [Fact]
        public void SenderMapsHaveTheRightKeysForEachMapType()
        {
            var p = Generate();
            var filter = Entries(p.File(PostfixPolicy.SenderFilterMap)!);
            var transport = Entries(p.File(PostfixPolicy.SenderTransportMap)!);

            Assert.Equal(new[]
            {
                "alerts@legacy.test DUNNO",
                "billing@corp.test FILTER mailops_backup:[relay2.lab.test]:465",
                "crm.test FILTER mailops_secondary_eu:[127.0.0.1]:2526",
                "lab.test DUNNO",
                "lists.lab.test FILTER mailops_secondary_eu:[127.0.0.1]:2526",
                "news@lab.test FILTER mailops_secondary_eu:[127.0.0.1]:2526",
            }, filter);
            Assert.Equal(new[]
            {
                "@crm.test mailops_secondary_eu:[127.0.0.1]:2526",
                "@lab.test DUNNO",
                "alerts@legacy.test DUNNO",
                "billing@corp.test mailops_backup:[relay2.lab.test]:465",
                "news@lab.test mailops_secondary_eu:[127.0.0.1]:2526",
            }, transport);

            // a '*.domain' sender cannot be a key of the transport map, and the decision says so
            Assert.Contains("# not here: flow newsletter (List): '*.lists.lab.test' cannot be a key here", p.File(PostfixPolicy.SenderTransportMap)!.Text);
            var news = p.Decisions.Single(x => x.Flow == "newsletter");
            Assert.Equal(PolicyDecisionSeverity.Warning, news.Severity);
            Assert.Contains("submitted locally", news.Why);

            // without smtpd_access_maps in parent_domain_matches_subdomains, '.domain' keys are the exact form
            var exact = Entries(Generate(tweak: o => o.AccessMapsMatchSubdomains = false).File(PostfixPolicy.SenderFilterMap)!);
            Assert.Contains(".lists.lab.test FILTER mailops_secondary_eu:[127.0.0.1]:2526", exact);
        }

        [Fact]
        public void AFlowThatSendsThroughItsEspIsNotRoutedHere()
        {
            var p = Generate(Config.Replace("  - name: alerts\n", "  - name: promo\n    kind: Campaign\n    senders: [promo@lab.test]\n    esp: SendGrid\n  - name: alerts\n"));
            var promo = p.Decisions.Single(d => d.Flow == "promo");
            Assert.Null(promo.Route);
            Assert.Contains("ESP", promo.Why, StringComparison.Ordinal);
            Assert.DoesNotContain("promo@lab.test FILTER", p.File(PostfixPolicy.SenderFilterMap)!.Text, StringComparison.Ordinal);
        }

        [Fact]
        public void MailARoutedRelayHandsBackIsNotFilteredAgain()
        {
            var p = Generate(Config.Replace("    heloName: bulk.lab.test\n", "    heloName: bulk.lab.test\n    egress: [127.0.0.2]\n"));
            var client = p.File(PostfixPolicy.ClientFilterMap)!.Text;
            Assert.Contains("# relay Secondary-EU's egress address: mail it hands back is already routed (OK: no FILTER again, no loop)\n127.0.0.2 OK\n", client);

            // the sender restrictions ask the client map first, so the OK stops them before the sender's FILTER
            var sender = p.Parameter("smtpd_sender_restrictions")!.Value;
            Assert.True(sender.IndexOf("mailops_client_filter", StringComparison.Ordinal) < sender.IndexOf("mailops_sender_filter", StringComparison.Ordinal), sender);
        }

        [Fact]
        public void EveryMapLineHasACommentNamingItsFlow()
        {
            var p = Generate();
            foreach (var file in p.Files.Where(f => f.IsHashMap))
            {
                var lines = file.Text.Split('\n');
                for (var i = 0; i < lines.Length; i++)
                {
                    if (lines[i].Length > 0 && !lines[i].StartsWith('#'))
                    {
                        Assert.Matches("^# (flow [a-z]+ \\(|relay [A-Za-z-]+'s egress address)", lines[i - 1]);
                    }
                }
            }

            var master = p.File(PostfixPolicy.MasterCfFragment)!.Text;
            Assert.Contains("# relay 'Secondary-EU' (127.0.0.1:2526, Secondary) for the flows: crm (Campaign), newsletter (List)\nmailops_secondary_eu unix - - n - - smtp\n  -o syslog_name=postfix/mailops_secondary_eu\n  -o smtp_helo_name=bulk.lab.test\n  -o smtp_tls_security_level=none\n", master);
            Assert.Contains("mailops_backup unix - - n - - smtp\n  -o syslog_name=postfix/mailops_backup\n  -o smtp_tls_wrappermode=yes\n  -o smtp_tls_security_level=encrypt\n", master);
            var main = p.File(PostfixPolicy.MainCfFragment)!.Text;
            Assert.Contains("smtpd_sender_restrictions = check_client_access hash:/etc/postfix/mailops/mailops_client_filter, check_sender_access hash:/etc/postfix/mailops/mailops_sender_filter\n", main);
            Assert.Contains("smtpd_client_restrictions = check_client_access hash:/etc/postfix/mailops/mailops_client_filter\n", main);
            Assert.Contains("sender_dependent_default_transport_maps = hash:/etc/postfix/mailops/mailops_sender_transport\n", main);
            Assert.Contains("must\n# come before any permit", main);
            Assert.Contains(p.Files, f => f.Name == PostfixPolicy.Readme && f.Text.Contains("postmap hash:/etc/postfix/mailops/mailops_sender_filter"));
        }

        [Fact]
        public void RateDelaysComeFromTheTightestThreshold()
        {
            var p = Generate();

            // Secondary-EU: eu-cap 1000 recipients/hour (0.28/s) vs news-minute 30/minute (0.5/s) vs crm 600/hour (0.17/s): crm wins
            Assert.Equal("6s", p.Parameter("mailops_secondary_eu_destination_rate_delay")!.Value);
            Assert.Contains("threshold 'crm-per-client'", string.Join(" ", p.Parameter("mailops_secondary_eu_destination_rate_delay")!.Comments));
            Assert.Contains("eu-cap, news-minute", string.Join(" ", p.Parameter("mailops_secondary_eu_destination_rate_delay")!.Comments));
            Assert.Equal("1", p.Parameter("mailops_secondary_eu_destination_concurrency_limit")!.Value);
            Assert.Equal("1", p.Parameter("mailops_secondary_eu_initial_destination_concurrency")!.Value);
            Assert.Null(p.Parameter("mailops_secondary_eu_destination_recipient_limit"));

            // backup: no threshold applies (the day cap and the bounce rate do not pace): default concurrency, no delay
            Assert.Null(p.Parameter("mailops_backup_destination_rate_delay"));
            Assert.Equal("5", p.Parameter("mailops_backup_destination_concurrency_limit")!.Value);
            Assert.Equal("2", p.Parameter("mailops_backup_initial_destination_concurrency")!.Value);
            Assert.Equal("7", Generate(tweak: o => o.DefaultConcurrency = 7).Parameter("mailops_backup_destination_concurrency_limit")!.Value);
        }

        [Theory]
        [InlineData("recipients", "hour", 1000, "4s", true)]      // 3.6 s rounded up
        [InlineData("messages", "minute", 300, "1s", false)]      // 0.2 s: at least 1 s
        [InlineData("messages", "hour", 60, "1m", false)]         // 60 s in Postfix's units
        [InlineData("messages", "hour", 1, "1h", false)]
        [InlineData("messages", "hour", 7, "515s", false)]        // 514.3 rounded up
        public void RateDelayArithmetic(string metric, string per, int limit, string delay, bool oneRecipient)
        {
            var text = $"version: 1\nrelays:\n  - name: p\n    host: a.test\n    role: primary\n  - name: s\n    host: b.test\n    port: 25\n    role: secondary\nflows:\n  - name: f\n    kind: List\n    senders: [l@x.test]\nthresholds:\n  - name: t\n    scope: flow\n    match: f\n    metric: {metric}\n    per: {per}\n    limit: {limit}\n";
            var p = Generate(text);

            Assert.Equal(delay, p.Parameter("mailops_s_destination_rate_delay")!.Value);
            Assert.Equal(oneRecipient, p.Parameter("mailops_s_destination_recipient_limit") != null);
            Assert.Contains("mailops_s: one delivery every " + delay, Assert.Single(p.Decisions).Limits[0]);
        }

        [Fact]
        public void ClientLimitsTakeTheTightestAndExemptOnlyPersonToPersonHosts()
        {
            var p = Generate();

            Assert.Equal("60s", p.Parameter("anvil_rate_time_unit")!.Value);
            // crm-per-client: 600 per hour -> 10 per minute in the common unit
            Assert.Equal("10", p.Parameter("smtpd_client_message_rate_limit")!.Value);
            Assert.Contains(p.Parameter("smtpd_client_message_rate_limit")!.Comments, c => c.Contains("threshold 'crm-per-client'") && c.Contains("flow crm"));
            Assert.Contains(p.Parameter("smtpd_client_message_rate_limit")!.Comments, c => c.Contains("600 per 3600s -> 10 per 60s"));
            Assert.Contains(p.Parameter("smtpd_client_message_rate_limit")!.Comments, c => c.Contains("one value for all clients"));
            Assert.Equal("50", p.Parameter("smtpd_client_recipient_rate_limit")!.Value);
            Assert.Contains("threshold 'app-recipients' (scope client)", p.Parameter("smtpd_client_recipient_rate_limit")!.Comments[0]);
            Assert.Equal("192.0.2.5", p.Parameter("smtpd_client_event_limit_exceptions")!.Value);
            Assert.Contains(p.Parameter("smtpd_client_event_limit_exceptions")!.Comments, c => c.Contains("$mynetworks by default"));
            Assert.Contains(p.Parameter("smtpd_client_event_limit_exceptions")!.Comments, c => c.Contains("smtpd_authorized_xclient_hosts"));

            var client = Entries(p.File(PostfixPolicy.ClientFilterMap)!);
            Assert.Equal(new[]
            {
                "192.0.2.10 FILTER mailops_secondary_eu:[127.0.0.1]:2526",
                "192.0.2.5 DUNNO",
                "198.51.100 FILTER mailops_secondary_eu:[127.0.0.1]:2526",
                "app1.lab.test FILTER mailops_secondary_eu:[127.0.0.1]:2526",
            }, client);
            Assert.Contains("203.0.113.0/25' is a network not on an octet boundary", p.File(PostfixPolicy.ClientFilterMap)!.Text);
            Assert.Contains(p.Decisions.Single(x => x.Flow == "crm").Limits, l => l.StartsWith("clients 192.0.2.10", StringComparison.Ordinal) && l.Contains("smtpd_client_message_rate_limit = 10"));

            // no client threshold at all: no client limits and no exceptions
            var none = Generate(Config.Substring(0, Config.IndexOf("thresholds:", StringComparison.Ordinal)));
            Assert.Null(none.Parameter("smtpd_client_message_rate_limit"));
            Assert.Null(none.Parameter("smtpd_client_event_limit_exceptions"));
        }

        [Fact]
        public void OutputIsDeterministicAndOnlyTheHeaderCarriesTime()
        {
            var a = Generate(tweak: o => { o.Timestamp = true; o.Now = new DateTimeOffset(2026, 11, 20, 7, 0, 0, TimeSpan.Zero); });
            var b = Generate(tweak: o => { o.Timestamp = true; o.Now = new DateTimeOffset(2027, 1, 2, 3, 4, 5, TimeSpan.Zero); });
            var c = Generate();

            Assert.Equal(new[] { "README.txt", "mailops_client_filter", "mailops_sender_filter", "mailops_sender_transport", "main.cf.fragment", "master.cf.fragment" }, a.Files.Select(f => f.Name));
            foreach (var (fa, fb) in a.Files.Zip(b.Files, (x, y) => (x, y)))
            {
                var diff = PolicyFileDiff.Compare(fa.Text, fb.Text);
                Assert.Equal(PolicyFileStatus.Unchanged, diff.Status);
                Assert.Single(fa.Text.Split('\n'), l => l.StartsWith("# Generated at 2026-11-20T07:00:00Z", StringComparison.Ordinal));
            }

            Assert.All(c.Files, f => Assert.DoesNotContain("Generated at", f.Text));
            Assert.Equal(c.Files.Select(f => f.Text), Generate().Files.Select(f => f.Text));

            // flows in another order give the same files
            var reordered = Config.Replace("  - name: staff\n    kind: PersonToPerson\n    senders: ['@lab.test']\n    clientHosts: [192.0.2.5]\n", "")
                .Replace("thresholds:", "  - name: staff\n    kind: PersonToPerson\n    senders: ['@lab.test']\n    clientHosts: [192.0.2.5]\nthresholds:");
            Assert.Equal(c.Files.Where(f => f.IsHashMap).Select(f => f.Text), Generate(reordered).Files.Where(f => f.IsHashMap).Select(f => f.Text));
        }

        [Fact]
        public void NoSecretIsWritten()
        {
            var p = Generate();
            foreach (var f in p.Files)
            {
                Assert.DoesNotContain("SECRETTOKEN123", f.Text);
                Assert.DoesNotContain("hooks.example.org", f.Text);
                Assert.DoesNotContain("primary-login", f.Text); // the primary is not a transport here
            }

            // a relay that needs AUTH is named with its credential's name only
            Assert.Contains("credential 'backup-login'): MailOps never writes secrets", p.File(PostfixPolicy.MasterCfFragment)!.Text);
        }

        [Fact]
        public void RelayNamesAreSanitisedAndKeptApart()
        {
            Assert.Equal("mailops_secondary_eu", PostfixPolicyGenerator.TransportName("Secondary-EU"));
            Assert.Equal("mailops_bulk_relay_2", PostfixPolicyGenerator.TransportName("Bulk Relay #2"));
            Assert.Equal("mailops_relay", PostfixPolicyGenerator.TransportName("---"));

            var text = "version: 1\nrelays:\n  - name: p\n    host: a.test\n    role: primary\n  - name: bulk-1\n    host: b.test\n    role: secondary\n  - name: bulk.1\n    host: c.test\n    role: secondary\nflows:\n  - name: a\n    kind: List\n    senders: [a@x.test]\n    relay: bulk-1\n  - name: b\n    kind: List\n    senders: [b@x.test]\n    relay: bulk.1\n";
            var p = Generate(text);
            Assert.Equal(new[] { "mailops_bulk_1", "mailops_bulk_1_2" }, p.Transports.Select(t => t.Transport));
            Assert.Matches("(?m)^mailops_bulk_1_2 unix - - n - - smtp$", p.File(PostfixPolicy.MasterCfFragment)!.Text);
        }

        [Fact]
        public void WithoutASecondaryRelayBulkStaysOnThePrimaryWithAWarning()
        {
            var text = "version: 1\nrelays:\n  - name: p\n    host: a.test\n    role: primary\nflows:\n  - name: l\n    kind: List\n    senders: [l@x.test]\n";
            var p = PostfixPolicyGenerator.Generate(ConfigReader.Read(text).Config!, new PostfixPolicyOptions { MapDirectory = "/m", Timestamp = false });
            var d = Assert.Single(p.Decisions);

            Assert.Null(d.Route);
            Assert.Equal(PolicyDecisionSeverity.Warning, d.Severity);
            Assert.Contains("has none", d.Why);
            Assert.Contains("# (no flow is routed", p.File(PostfixPolicy.MasterCfFragment)!.Text);
            Assert.Equal("l@x.test DUNNO", Assert.Single(Entries(p.File(PostfixPolicy.SenderFilterMap)!)));
        }

        [Theory]
        [InlineData("")]
        [InlineData("relative/dir")]
        [InlineData("/with space")]
        public void TheMapDirectoryMustBeAnAbsolutePath(string dir)
        {
            Assert.Throws<ArgumentException>(() => PostfixPolicyGenerator.Generate(Read(Config), new PostfixPolicyOptions { MapDirectory = dir }));
        }

        [Fact]
        public void DiffShowsAddedAndRemovedLines()
        {
            var d = PolicyFileDiff.Compare("# Generated at 2020\na\nb\nc\n", "# Generated at 2021\na\nx\nc\nd\n");
            Assert.Equal(PolicyFileStatus.Changed, d.Status);
            Assert.Equal(2, d.Added);
            Assert.Equal(1, d.Removed);
            Assert.Equal(new[] { "@@ line 2", "+ x", "- b", "@@ line 4", "+ d" }, d.Lines);
            Assert.Equal(PolicyFileStatus.Created, PolicyFileDiff.Compare(null, "a\n").Status);
        }

        [Fact]
        public void ExistingRestrictionsKeepTheirOrderAfterTheMailOpsCheck()
        {
            const string ours = "check_sender_access hash:/m/mailops_sender_filter";
            Assert.Equal(ours, PostfixPolicyApplier.Merge(ours, "", "mailops_sender_filter"));
            Assert.Equal(ours + ", permit_mynetworks, reject_unknown_sender_domain",
                PostfixPolicyApplier.Merge(ours, "permit_mynetworks, reject_unknown_sender_domain", "mailops_sender_filter"));
            // an earlier MailOps check (another directory) is replaced, other checks stay whole
            Assert.Equal(ours + ", check_sender_access hash:/etc/postfix/other, permit_mynetworks",
                PostfixPolicyApplier.Merge(ours, "check_sender_access hash:/old/mailops_sender_filter, check_sender_access hash:/etc/postfix/other permit_mynetworks", "mailops_sender_filter"));
        }

        [Fact]
        public void MasterBlockIsReplacedNotDuplicated()
        {
            var once = PostfixPolicyApplier.ReplaceBlock("smtp unix - - n - - smtp\n", "x unix - - n - - smtp\n");
            var twice = PostfixPolicyApplier.ReplaceBlock(once, "y unix - - n - - smtp\n");

            Assert.Equal("smtp unix - - n - - smtp\n" + PostfixPolicy.MasterBlockBegin + "\ny unix - - n - - smtp\n" + PostfixPolicy.MasterBlockEnd + "\n", twice);
            Assert.Equal("smtp unix - - n - - smtp\n", PostfixPolicyApplier.ReplaceBlock(twice, ""));
        }
    }
}
