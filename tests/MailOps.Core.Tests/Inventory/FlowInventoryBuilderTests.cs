using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Config;
using MailOps.Core.Dmarc;
using MailOps.Core.Dns;
using MailOps.Core.Inventory;
using MailOps.Core.Logs;
using MailOps.Core.Providers;
using MailOps.Core.Traffic;
using Xunit;
using Zone = MailOps.Core.Tests.Providers.MailProviderResolverTests.Zone;

namespace MailOps.Core.Tests.Inventory
{
    /// <summary>
    /// The reconciliation of declared, authorised and observed flows, on a zone held in memory, Postfix log lines and
    /// DMARC reports written here (the Pester drill does the same against the lab's real servers).
    /// </summary>
    public class FlowInventoryBuilderTests
    {
        private const string Config = @"version: 1
dns:
  asnZone: origin.asn.cymru.com
domains:
  - name: corp.example
    dkimSelectors: [main]
  - name: old.example
relays:
  - name: primary
    host: 192.0.2.25
    role: primary
    egress: [192.0.2.25]
  - name: bulk
    host: 192.0.2.26
    role: secondary
    egress: [192.0.2.26]
flows:
  - name: staff
    kind: PersonToPerson
    senders: ['@staff.corp.example']
    relay: primary
  - name: invoices
    kind: Transactional
    senders: [billing@corp.example]
    relay: bulk
  - name: newsletter
    kind: Campaign
    senders: [news@corp.example]
    esp: SendGrid
  - name: reminders
    kind: Automation
    senders: [remind@old.example]
    relay: primary
providers:
  - name: Mailchimp
    spf: [servers.mcsv.net]
";

        private static MailOpsConfig Cfg(string? text = null)
        {
            var r = ConfigReader.Read(text ?? Config);
            Assert.True(r.IsValid, string.Join("\n", r.Issues));
            return r.Config!;
        }

        private static Zone CorpZone()
        {
            var z = new Zone();
            z.Txt["corp.example"] = "v=spf1 include:_spf.corp.example include:sendgrid.net include:servers.mcsv.net -all";
            z.Txt["_spf.corp.example"] = "v=spf1 ip4:192.0.2.25 -all";
            z.Txt["sendgrid.net"] = "v=spf1 ip4:198.51.100.0/25 -all";
            z.Txt["servers.mcsv.net"] = "v=spf1 ip4:198.51.100.128/25 -all";
            z.Txt["_dmarc.corp.example"] = "v=DMARC1; p=reject; rua=mailto:dmarc@corp.example";
            z.Txt["main._domainkey.corp.example"] = "v=DKIM1; k=rsa; p=" + Key(2048);
            z.Mx["corp.example"] = new[] { new MxRecord(10, "mx.corp.example") };
            z.A["mx.corp.example"] = new[] { "192.0.2.25" };
            z.Txt["old.example"] = "v=spf1 ip4:192.0.2.25 -all";
            z.Exists.Add("old.example");
            z.Ptr["198.51.100.7"] = "o7.ptr1.sendgrid.net";
            z.Ptr["198.51.100.200"] = "mail200.atl1.mcsv.net";
            return z;
        }

        private static string Key(int bits)
        {
            using var rsa = System.Security.Cryptography.RSA.Create(bits);
            return Convert.ToBase64String(rsa.ExportSubjectPublicKeyInfo());
        }

        private static IReadOnlyList<TrafficRow> Logs(MailOpsConfig config, params string[] lines)
        {
            var options = new TrafficOptions
            {
                Bucket = TrafficBucket.Day,
                Dimensions = new[] { TrafficDimension.Sender, TrafficDimension.Client, TrafficDimension.Relay },
                Flows = new FlowMatcher(config.Flows),
                Relay = "primary",
                ClassifyReasons = false,
            };
            var a = new TrafficAggregator(options);
            a.AddLog(new StringReader(string.Join("\n", lines) + "\n"), new MailLogParser(2026), "maillog", CancellationToken.None);
            return a.Rows;
        }

        private static string[] Message(string qid, string sender, string client, int rcpts)
        {
            var l = new List<string>
            {
                $"Nov 25 10:00:01 mx1 postfix/smtpd[100]: {qid}: client={client}",
                $"Nov 25 10:00:01 mx1 postfix/qmgr[101]: {qid}: from=<{sender}>, size=1000, nrcpt={rcpts} (queue active)",
            };
            for (var i = 0; i < rcpts; i++)
            {
                l.Add($"Nov 25 10:00:02 mx1 postfix/smtp[102]: {qid}: to=<r{i}@x.example>, relay=mx.x.example[203.0.113.9]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)");
            }

            l.Add($"Nov 25 10:00:03 mx1 postfix/qmgr[101]: {qid}: removed");
            return l.ToArray();
        }

        private static DmarcAggregateReport Report(params (string Ip, int Count, string Dkim, string Spf, string Disposition, string DkimDomain)[] rows)
        {
            var sb = new StringBuilder("<?xml version=\"1.0\"?><feedback><report_metadata><org_name>Receiver</org_name><email>r@receiver.example</email><report_id>r1</report_id>"
                + "<date_range><begin>1795000000</begin><end>1795086400</end></date_range></report_metadata><policy_published><domain>corp.example</domain><p>reject</p></policy_published>");
            foreach (var r in rows)
            {
                sb.Append($"<record><row><source_ip>{r.Ip}</source_ip><count>{r.Count}</count><policy_evaluated><disposition>{r.Disposition}</disposition><dkim>{r.Dkim}</dkim><spf>{r.Spf}</spf></policy_evaluated></row>")
                  .Append("<identifiers><header_from>corp.example</header_from></identifiers>")
                  .Append($"<auth_results><dkim><domain>{r.DkimDomain}</domain><result>pass</result></dkim><spf><domain>{r.DkimDomain}</domain><result>pass</result></spf></auth_results></record>");
            }

            sb.Append("</feedback>");
            return Assert.Single(DmarcReportReader.Read(new MemoryStream(Encoding.UTF8.GetBytes(sb.ToString())), "test.xml"));
        }

        private static async Task<IReadOnlyList<EmailFlowInventoryItem>> Build(MailOpsConfig config, Zone zone, IEnumerable<TrafficRow>? rows = null, IEnumerable<DmarcAggregateReport>? reports = null,
            FlowInventoryOptions? options = null)
        {
            var b = new FlowInventoryBuilder(config, zone, ProviderCatalog.For(config), options);
            if (rows != null)
            {
                b.AddTraffic(rows);
            }

            foreach (var r in reports ?? Array.Empty<DmarcAggregateReport>())
            {
                b.AddDmarcReport(r);
            }

            return await b.BuildAsync(null, CancellationToken.None);
        }

        private static EmailFlowInventoryItem Item(IEnumerable<EmailFlowInventoryItem> items, string name) => Assert.Single(items, i => i.Name == name);

        [Fact]
        public async Task ReconcilesDeclaredAuthorisedAndObserved()
        {
            var config = Cfg();
            var rows = Logs(config,
                Message("4A1B2C3D01", "crm@corp.example", "crm.corp.example[10.0.0.5]", 3)
                    .Concat(Message("4A1B2C3D02", "billing@corp.example", "app.corp.example[10.0.0.6]", 2))
                    .Concat(Message("4A1B2C3D03", "anna@staff.corp.example", "pc.corp.example[10.0.0.7]", 1))
                    .Concat(Message("4A1B2C3D04", "noreply@staff.corp.example", "app.corp.example[10.0.0.6]", 1)).ToArray());
            var report = Report(
                ("192.0.2.25", 10, "pass", "pass", "none", "corp.example"),
                ("192.0.2.26", 4, "pass", "fail", "none", "corp.example"),
                ("198.51.100.7", 50, "pass", "pass", "none", "corp.example"),
                ("198.51.100.200", 30, "fail", "fail", "reject", "mcsv.net"),
                ("203.0.113.66", 5, "fail", "fail", "reject", "corp.example"));
            var items = await Build(config, CorpZone(), rows, new[] { report });

            // the declared flows
            var invoices = Item(items, "invoices");
            Assert.Equal(FlowInventoryStatus.Active, invoices.Status);
            Assert.False(invoices.SpfAuthorised);
            var spf = Assert.Single(invoices.Findings, f => f.Code == InventoryFindingCodes.SpfNotAuthorised);
            Assert.Equal(FindingSeverity.Warning, spf.Severity); // DKIM keeps DMARC
            Assert.Contains("192.0.2.26", spf.Message, StringComparison.Ordinal);
            Assert.Equal(4, invoices.DmarcMessages);
            Assert.True(invoices.SeenSenders.Single().Clients.Contains("app.corp.example[10.0.0.6]"), string.Join("|", invoices.SeenSenders.Single().Clients) + " " + invoices.SeenSenders.Single().Messages);

            var newsletter = Item(items, "newsletter");
            Assert.Equal(FlowInventoryStatus.Active, newsletter.Status);
            Assert.Equal("SendGrid", newsletter.Service);
            Assert.True(newsletter.SpfAuthorised);
            Assert.Equal(50, newsletter.DmarcMessages);
            Assert.Equal("o7.ptr1.sendgrid.net", newsletter.DmarcSources.Single().Ptr);
            Assert.DoesNotContain(newsletter.Findings, f => f.Code == InventoryFindingCodes.EspNotAuthorised);

            var staff = Item(items, "staff");
            var possible = Assert.Single(staff.Findings, f => f.Code == InventoryFindingCodes.PossibleShadowFlow);
            Assert.Contains("noreply@staff.corp.example", possible.Message, StringComparison.Ordinal);

            var reminders = Item(items, "reminders");
            Assert.Equal(FlowInventoryStatus.Silent, reminders.Status);
            Assert.Contains(reminders.Findings, f => f.Code == InventoryFindingCodes.DeclaredSilent);
            Assert.Contains(reminders.Findings, f => f.Code == InventoryFindingCodes.DmarcMissing);
            Assert.Contains(reminders.Findings, f => f.Code == InventoryFindingCodes.DkimMissing);

            // what nobody declared
            var crm = Item(items, "undeclared: corp.example via relay primary");
            Assert.Equal(FlowInventoryStatus.Shadow, crm.Status);
            Assert.Equal("crm@corp.example", crm.SeenSenders.Single().Address);
            Assert.Equal(3, crm.LogRecipients);
            Assert.Equal(10, crm.DmarcMessages); // the primary's address in the reports, unclaimed by a corp.example flow
            Assert.True(crm.SpfAuthorised);
            Assert.Contains(crm.Findings, f => f.Code == InventoryFindingCodes.ShadowFlow && f.Severity == FindingSeverity.High);

            var mc = Item(items, "undeclared: corp.example via Mailchimp");
            Assert.Equal("mail200.atl1.mcsv.net", mc.DmarcSources.Single().Ptr);
            Assert.Contains(mc.Findings, f => f.Code == InventoryFindingCodes.DmarcAlignmentFailing && f.Severity == FindingSeverity.High);

            var unknown = Item(items, "unknown senders as corp.example");
            Assert.Equal("203.0.113.66", unknown.DmarcSources.Single().Address.ToString());
            Assert.Contains(unknown.Findings, f => f.Code == InventoryFindingCodes.UnknownSource);

            // Mailchimp was seen: not "authorised only"; nothing else is authorised and unused
            Assert.DoesNotContain(items, i => i.Status == FlowInventoryStatus.AuthorisedOnly);
            Assert.Equal(7, items.Count);
        }

        [Fact]
        public void AMessageOneRelayHandsToAnotherIsCountedOnce()
        {
            // the app server hands two messages to the bulk relay, which hands one on to the primary ("queued as 6C00000001")
            var bulk = Message("5B00000001", "billing@corp.example", "app.corp.example[10.0.0.6]", 1).ToList();
            bulk[2] = "Nov 25 10:00:02 mx1 postfix/smtp[102]: 5B00000001: to=<r0@x.example>, relay=mx1.corp.example[192.0.2.25]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 6C00000001)";
            bulk.AddRange(Message("5B00000002", "billing@corp.example", "app.corp.example[10.0.0.6]", 1));
            var primary = Message("6C00000001", "billing@corp.example", "bulk.corp.example[192.0.2.26]", 1).Concat(Message("6C00000002", "anna@corp.example", "pc.corp.example[10.0.0.7]", 1)).ToList();
            var parser = new MailLogParser(2026);
            var hops = new HashSet<string>(parser.Read(new StringReader(string.Join("\n", bulk) + "\n"), "bulk").Select(TrafficAggregator.NextHopQueueId).Where(x => x != null).Select(x => x!));
            Assert.Equal(new[] { "6C00000001" }, hops);

            TrafficAggregator Count(ICollection<string>? hopIds)
            {
                var options = new TrafficOptions { Bucket = TrafficBucket.Day, Dimensions = new[] { TrafficDimension.Sender }, ClassifyReasons = false, HopQueueIds = hopIds };
                var a = new TrafficAggregator(options);
                options.Relay = "bulk";
                a.AddLog(new StringReader(string.Join("\n", bulk) + "\n"), parser);
                options.Relay = "primary";
                a.AddLog(new StringReader(string.Join("\n", primary) + "\n"), parser);
                return a;
            }

            var rows = Count(hops).Rows.ToDictionary(r => r.Key, r => r);
            Assert.Equal(2, rows["billing@corp.example"].Messages);
            Assert.Equal(2, rows["billing@corp.example"].Delivered);
            Assert.Equal(1, rows["anna@corp.example"].Messages);

            // without HopQueueIds (as pflogsumm counts) the relayed message counts in both logs
            Assert.Equal(3, Count(null).Rows.Single(r => r.Key == "billing@corp.example").Messages);
        }

        [Fact]
        public async Task WithNothingObservedDeclaredFlowsAreNotObservedAndUnusedAuthorisationsShow()
        {
            var items = await Build(Cfg(), CorpZone());
            Assert.All(items.Where(i => i.Declared), i => Assert.Equal(FlowInventoryStatus.NotObserved, i.Status));
            Assert.DoesNotContain(items, i => i.Findings.Any(f => f.Code == InventoryFindingCodes.DeclaredSilent));
            var mc = Item(items, "authorised only: Mailchimp for corp.example");
            Assert.Equal(InventoryFindingCodes.AuthorisedUnused, Assert.Single(mc.Findings).Code);
            Assert.Contains("include:servers.mcsv.net", mc.Findings[0].Message, StringComparison.Ordinal);
            Assert.DoesNotContain(items, i => i.Name.StartsWith("authorised only: SendGrid", StringComparison.Ordinal)); // declared by newsletter
        }

        [Fact]
        public async Task AFailedLookupIsUnknownNeverNo()
        {
            var z = CorpZone();
            z.Fail["TXT corp.example"] = DnsStatus.Timeout;
            z.Fail["TXT _dmarc.corp.example"] = DnsStatus.ServerFailure;
            z.Fail["TXT main._domainkey.corp.example"] = DnsStatus.Timeout;
            var items = await Build(Cfg(), z);
            var invoices = Item(items, "invoices");
            Assert.Null(invoices.SpfAuthorised);
            Assert.Contains(invoices.Findings, f => f.Code == InventoryFindingCodes.SpfUnknown);
            Assert.DoesNotContain(invoices.Findings, f => f.Code == InventoryFindingCodes.SpfNotAuthorised || f.Code == InventoryFindingCodes.SpfMissing
                || f.Code == InventoryFindingCodes.DmarcMissing || f.Code == InventoryFindingCodes.DkimMissing);
            Assert.Null(invoices.DkimPublished);
        }

        [Fact]
        public async Task AnEspWithoutSpfIncludeOrDkimKeyCannotPassDmarc()
        {
            var z = CorpZone();
            z.Txt["corp.example"] = "v=spf1 include:_spf.corp.example -all";
            var newsletter = Item(await Build(Cfg(), z), "newsletter");
            Assert.False(newsletter.SpfAuthorised);
            Assert.Equal(FindingSeverity.High, Assert.Single(newsletter.Findings, f => f.Code == InventoryFindingCodes.EspNotAuthorised).Severity);
        }

        [Fact]
        public async Task AFlowWithARelayIsJudgedByItsRelayEvenWhenItsSuppressionListIsAtAnEsp()
        {
            var z = CorpZone();
            z.Txt["corp.example"] = "v=spf1 include:_spf.corp.example ip4:192.0.2.26 -all"; // no SendGrid include, no SendGrid key
            var text = Config.Replace("    esp: SendGrid\n", "    esp: SendGrid\n    relay: bulk\n");
            var newsletter = Item(await Build(Cfg(text), z), "newsletter");
            Assert.Equal("relay bulk", newsletter.Service);
            Assert.True(newsletter.SpfAuthorised);
            Assert.DoesNotContain(newsletter.Findings, f => f.Code == InventoryFindingCodes.EspNotAuthorised);
        }

        [Fact]
        public async Task OverTheLookupLimitIsAFindingForEveryFlowOfTheDomain()
        {
            var z = CorpZone();
            z.Txt["old.example"] = "v=spf1 " + string.Join(" ", Enumerable.Range(1, 11).Select(i => $"a:h{i}.old.example")) + " -all";
            for (var i = 1; i <= 11; i++)
            {
                z.A[$"h{i}.old.example"] = new[] { "192.0.2." + (100 + i) };
            }

            var reminders = Item(await Build(Cfg(), z), "reminders");
            var f = Assert.Single(reminders.Findings, x => x.Code == InventoryFindingCodes.SpfOverLookupLimit);
            Assert.Equal(FindingSeverity.High, f.Severity);
            Assert.Contains("11 DNS lookups", f.Message, StringComparison.Ordinal);
        }

        [Fact]
        public async Task DomainsAreLookedUpConcurrently()
        {
            var text = Config.Replace("domains:\n", "domains:\n" + string.Join("", Enumerable.Range(0, 20).Select(i => $"  - name: d{i}.example\n")));
            var z = CorpZone();
            z.OnQuery = (q, c) => Task.Delay(20, c);
            var sw = Stopwatch.StartNew();
            var items = await Build(Cfg(text), z, options: new FlowInventoryOptions { MaxConcurrency = 16 });
            sw.Stop();
            Assert.True(z.MaxInFlight > 8, $"at most {z.MaxInFlight} queries in flight");

            // sequentially: every query of every domain one after the other
            Assert.True(sw.ElapsedMilliseconds < z.Queries * 20 / 4, $"{sw.ElapsedMilliseconds} ms for {z.Queries} queries of 20 ms");
            Assert.NotEmpty(items);
        }

        [Fact]
        public async Task CancellationStopsTheLookups()
        {
            var z = CorpZone();
            z.OnQuery = (q, c) => Task.Delay(TimeSpan.FromSeconds(30), c);
            using var cts = new CancellationTokenSource(200);
            var b = new FlowInventoryBuilder(Cfg(), z, ProviderCatalog.BuiltIn);
            var sw = Stopwatch.StartNew();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => b.BuildAsync(null, cts.Token));
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5));
        }

        [Fact]
        public async Task ReportsAboutOtherDomainsOrBeforeSinceAreSkipped()
        {
            var b = new FlowInventoryBuilder(Cfg(), CorpZone(), ProviderCatalog.BuiltIn, new FlowInventoryOptions { Domains = new[] { "old.example" } });
            Assert.False(b.AddDmarcReport(Report(("192.0.2.25", 10, "pass", "pass", "none", "corp.example"))));
            var since = new FlowInventoryBuilder(Cfg(), CorpZone(), ProviderCatalog.BuiltIn, new FlowInventoryOptions { Since = DateTimeOffset.UtcNow });
            Assert.False(since.AddDmarcReport(Report(("192.0.2.25", 10, "pass", "pass", "none", "corp.example"))));
            var items = await b.BuildAsync(null, CancellationToken.None);
            Assert.Equal(new[] { "reminders" }, items.Where(i => i.Declared).Select(i => i.Name));
            Assert.Equal(1, b.DmarcReportsSkipped);
        }

        [Fact]
        public async Task ExportsEncodeWhatTheyWrite()
        {
            var config = Cfg(Config.Replace("senders: [remind@old.example]", "senders: [remind@old.example]\n    owner: '=HYPERLINK(\"http://evil\")<script>alert(1)</script>'"));
            var items = await Build(config, CorpZone());
            var html = new StringWriter();
            FlowInventoryExport.WriteHtml(html, items, "T & <b>", DateTimeOffset.UtcNow);
            Assert.DoesNotContain("<script>", html.ToString(), StringComparison.Ordinal);
            Assert.Contains("&lt;script&gt;", html.ToString(), StringComparison.Ordinal);
            Assert.Contains("T &amp; &lt;b&gt;", html.ToString(), StringComparison.Ordinal);
            var csv = new StringWriter();
            FlowInventoryExport.WriteCsv(csv, items);
            Assert.Contains("\"'=HYPERLINK(\"\"http://evil\"\")", csv.ToString(), StringComparison.Ordinal);
            Assert.Equal(items.Count + 1, csv.ToString().Split(new[] { "\r\n" }, StringSplitOptions.RemoveEmptyEntries).Length);
            var json = new StringWriter();
            FlowInventoryExport.WriteJson(json, items, DateTimeOffset.UtcNow);
            using var doc = System.Text.Json.JsonDocument.Parse(json.ToString());
            Assert.Equal(items.Count, doc.RootElement.GetProperty("flows").GetArrayLength());
        }
    }
}
