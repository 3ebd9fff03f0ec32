using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Bounces;
using MailOps.Core.Config;
using MailOps.Core.Providers;
using MailOps.Core.Store;
using Xunit;

namespace MailOps.Core.Tests.Store
{
    /// <summary>Reset planning, the audited apply, interruption and undo, on SQLite and on the lab's PostgreSQL.</summary>
    public class HardBounceResetTests
    {
        public static IEnumerable<object[]> Providers() => BounceStoreTests.Providers();

        private static readonly DateTimeOffset Start = new DateTimeOffset(2026, 11, 20, 7, 0, 0, TimeSpan.Zero);
        private static readonly DateTimeOffset End = Start.AddHours(4);

        private static BounceRecord Bounce(string address, string diagnostic, DateTimeOffset time, string? status = null) =>
            BounceParser.WithTime(BounceParser.ParseDiagnosticLine(address, diagnostic, status, 0, "test"), time);

        private const string Refused = "connect to mx1.mail.ovh.net[198.51.100.1]:25: Connection refused";
        private const string Unknown = "host mx1.mail.ovh.net[198.51.100.1] said: 550 5.1.1 <x>: Recipient address rejected: User unknown (in reply to RCPT TO command)";

        private static Task<IReadOnlyDictionary<string, MailProviderResult>> Attribute(IReadOnlyCollection<string> domains, CancellationToken c)
        {
            var now = DateTimeOffset.UtcNow;
            var map = new Dictionary<string, MailProviderResult>();
            foreach (var d in domains)
            {
                var provider = d.EndsWith(".ovh.example", StringComparison.Ordinal) ? "OVH" : d.EndsWith(".google.example", StringComparison.Ordinal) ? "Google" : null;
                map[d] = provider == null
                    ? new MailProviderResult(d, d, AttributionStatus.Unknown, null, null, null, AttributionConfidence.None, Array.Empty<string>(), Array.Empty<string>(), Array.Empty<string>(), Array.Empty<int>(),
                        Array.Empty<ProviderEvidence>(), new[] { "MX lookup: Timeout" }, now, now)
                    : new MailProviderResult(d, d, AttributionStatus.Resolved, provider, provider, null, AttributionConfidence.High, new[] { "mx." + d }, Array.Empty<string>(), Array.Empty<string>(), Array.Empty<int>(),
                        new[] { new ProviderEvidence(provider, ProviderRole.MailHosting, "MX", "mx." + d, "test") }, Array.Empty<string>(), now, now.AddHours(1));
            }

            return Task.FromResult<IReadOnlyDictionary<string, MailProviderResult>>(map);
        }

        private static async Task<BounceStore?> Seeded(string provider)
        {
            var store = await BounceStoreTests.OpenAsync(provider);
            if (store == null)
            {
                return null;
            }

            await store.ImportAsync(new[]
            {
                Bounce("a@shop.ovh.example", Refused, Start.AddHours(1), "4.4.1"),            // reset
                Bounce("b@shop.ovh.example", Refused, Start.AddHours(2), "4.4.1"),            // reset
                Bounce("c@shop.ovh.example", Refused, Start.AddHours(2), "4.4.1"),            // kept: genuine unknown after
                Bounce("c@shop.ovh.example", Unknown, End.AddHours(1)),
                Bounce("d@shop.ovh.example", Unknown, Start.AddHours(1)),                     // kept: userunknown
                Bounce("e@shop.google.example", Refused, Start.AddHours(1), "4.4.1"),         // kept: other provider
                Bounce("f@unknown.example", Refused, Start.AddHours(1), "4.4.1"),             // kept: provider unknown
                Bounce("g@shop.ovh.example", Refused, Start.AddHours(-2), "4.4.1"),           // outside the window
            }, "newsletter", SuppressOn.Failed, CancellationToken.None);
            return store;
        }

        [Theory]
        [MemberData(nameof(Providers))]
        public async Task PlanApplyAndUndo(string provider)
        {
            using var store = await Seeded(provider);
            var criteria = new ResetCriteria { Since = Start, Until = End, Providers = new[] { "OVH" } };
            var plan = await store!.PlanResetAsync(criteria, Attribute, CancellationToken.None);
            Assert.Equal(new[] { "a@shop.ovh.example", "b@shop.ovh.example" }, plan.Items.Select(i => i.Address).OrderBy(a => a));
            Assert.Equal("OtherSuppression", plan.Excluded.Single(e => e.Address == "c@shop.ovh.example").Category);
            Assert.Equal("OtherProvider", plan.Excluded.Single(e => e.Address == "e@shop.google.example").Category);
            Assert.Equal("ProviderUnknown", plan.Excluded.Single(e => e.Address == "f@unknown.example").Category);
            Assert.DoesNotContain(plan.Excluded, e => e.Address == "d@shop.ovh.example" || e.Address == "g@shop.ovh.example");
            Assert.Equal(2, plan.ByProvider["OVH"]);
            Assert.Contains("2 address(es) to reset", plan.Summary(), StringComparison.Ordinal);

            var op = await store.ApplyResetAsync(plan, "tester@host", null, CancellationToken.None);
            Assert.Equal(2, op.ItemCount);
            Assert.Equal(SuppressionStates.Reset, await store.GetSuppressionStateAsync("a@shop.ovh.example", CancellationToken.None));
            Assert.Equal(SuppressionStates.Suppressed, await store.GetSuppressionStateAsync("c@shop.ovh.example", CancellationToken.None));

            // a newer hard bounce puts b back on the list; the undo leaves it suppressed and says so
            await store.ImportAsync(new[] { Bounce("b@shop.ovh.example", Unknown, DateTimeOffset.UtcNow.AddMinutes(1)) }, "newsletter", CancellationToken.None);
            var undone = await store.UndoResetAsync(op.Id, "tester@host", CancellationToken.None);
            Assert.Equal("restored", undone.Items.Single(i => i.Address == "a@shop.ovh.example").UndoOutcome);
            Assert.StartsWith("already suppressed", undone.Items.Single(i => i.Address == "b@shop.ovh.example").UndoOutcome, StringComparison.Ordinal);
            Assert.Equal(SuppressionStates.Suppressed, await store.GetSuppressionStateAsync("a@shop.ovh.example", CancellationToken.None));
            await Assert.ThrowsAsync<InvalidOperationException>(() => store.UndoResetAsync(op.Id, "tester@host", CancellationToken.None));
            await Assert.ThrowsAsync<KeyNotFoundException>(() => store.UndoResetAsync("nosuchid", "tester@host", CancellationToken.None));

            var audit = (await store.GetResetsAsync(null, null, true, CancellationToken.None)).Single();
            Assert.True(audit.IsUndone);
            Assert.Equal("tester@host", audit.CreatedBy);
            Assert.Contains("Provider=OVH", audit.Criteria, StringComparison.Ordinal);
        }

        [Theory]
        [MemberData(nameof(Providers))]
        public async Task UserUnknownIsResetOnlyWhenNamed(string provider)
        {
            using var store = await Seeded(provider);
            var plan = await store!.PlanResetAsync(new ResetCriteria { Since = Start, Until = End, Reasons = new[] { BounceReasons.UserUnknown } }, null, CancellationToken.None);
            Assert.Equal(new[] { "d@shop.ovh.example" }, plan.Items.Select(i => i.Address));
        }

        [Theory]
        [MemberData(nameof(Providers))]
        public async Task AnInterruptedResetLeavesTheStoreAsBefore(string provider)
        {
            using var store = await BounceStoreTests.OpenAsync(provider);
            if (store == null)
            {
                return;
            }

            var records = Enumerable.Range(0, 2000).Select(i => Bounce($"u{i}@shop.ovh.example", Refused, Start.AddMinutes(1), "4.4.1")).ToList();
            await store.ImportAsync(records, "newsletter", SuppressOn.Failed, CancellationToken.None);
            var plan = await store.PlanResetAsync(new ResetCriteria { Since = Start, Until = End, Providers = new[] { "OVH" } }, Attribute, CancellationToken.None);
            Assert.Equal(2000, plan.Items.Count);

            // cancelled (Ctrl+C) after 1,000 of 2,000 items were written inside the transaction
            using var cts = new CancellationTokenSource();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.ApplyResetAsync(plan, "tester", n =>
            {
                if (n >= 1000)
                {
                    cts.Cancel();
                }
            }, cts.Token));
            var states = new List<string?>();
            foreach (var r in records.Take(50).Concat(records.Skip(1950)))
            {
                states.Add(await store.GetSuppressionStateAsync(r.Recipient, CancellationToken.None));
            }

            Assert.All(states, s => Assert.Equal(SuppressionStates.Suppressed, s));
            Assert.Empty(await store.GetResetsAsync(null, null, false, CancellationToken.None));

            // the same plan then goes through whole
            var op = await store.ApplyResetAsync(plan, "tester", null, CancellationToken.None);
            Assert.Equal(2000, op.ItemCount);
        }

        [Theory]
        [MemberData(nameof(Providers))]
        public async Task AttributionsAreCachedWithTheirExpiry(string provider)
        {
            using var store = await BounceStoreTests.OpenAsync(provider);
            if (store == null)
            {
                return;
            }

            var z = new MailOps.Core.Tests.Providers.MailProviderResolverTests.Zone();
            z.Mx["shop.example"] = new[] { new MailOps.Core.Dns.MxRecord(1, "mx1.mail.ovh.net") };
            var resolver = new MailProviderResolver(z, ProviderCatalog.BuiltIn, null, null);
            var first = new List<MailProviderResult>();
            await resolver.ResolveManyAsync(new[] { "shop.example" }, 4, store, true, first.Add, CancellationToken.None);
            Assert.False(first[0].FromCache);
            var queries = z.Queries;
            var second = new List<MailProviderResult>();
            await resolver.ResolveManyAsync(new[] { "a@shop.example" }, 4, store, true, second.Add, CancellationToken.None);
            Assert.True(second[0].FromCache);
            Assert.Equal("OVH", second[0].Provider);
            Assert.Equal("a@shop.example", second[0].Input);
            Assert.Equal(queries, z.Queries);

            // DNS fails later (the provider's outage): the result is unknown, and carries the recorded attribution
            z.Fail["shop.example"] = MailOps.Core.Dns.DnsStatus.Timeout;
            var third = new List<MailProviderResult>();
            await resolver.ResolveManyAsync(new[] { "shop.example" }, 4, store, false, third.Add, CancellationToken.None);
            Assert.Equal(AttributionStatus.Unknown, third[0].Status);
            Assert.Null(third[0].Provider);
            Assert.Equal("OVH", third[0].LastKnown!.Provider);
            Assert.Contains(third[0].LastKnown!.Evidence, e => e.Kind == "MX" && e.Value == "mx1.mail.ovh.net");
        }

        [Theory]
        [MemberData(nameof(Providers))]
        public async Task SoftSuppressionsExpireHardOnesOnlyWhenConfigured(string provider)
        {
            using var store = await BounceStoreTests.OpenAsync(provider);
            if (store == null)
            {
                return;
            }

            var now = DateTimeOffset.UtcNow;
            await store.ImportAsync(new[]
            {
                Bounce("soft@shop.ovh.example", "host mx said: 552 5.2.2 Mailbox full", now.AddDays(-40)),
                Bounce("hard@shop.ovh.example", Unknown, now.AddDays(-40)),
                Bounce("recent@shop.ovh.example", "host mx said: 552 5.2.2 Mailbox full", now.AddDays(-3)),
            }, "newsletter", SuppressOn.Failed, CancellationToken.None);
            Assert.Equal(1, await store.ExpireSuppressionsAsync(30, 0, now, CancellationToken.None));
            Assert.Equal(SuppressionStates.Expired, await store.GetSuppressionStateAsync("soft@shop.ovh.example", CancellationToken.None));
            Assert.Equal(SuppressionStates.Suppressed, await store.GetSuppressionStateAsync("hard@shop.ovh.example", CancellationToken.None));
            Assert.Equal(SuppressionStates.Suppressed, await store.GetSuppressionStateAsync("recent@shop.ovh.example", CancellationToken.None));
            Assert.Equal(1, await store.ExpireSuppressionsAsync(30, 20, now, CancellationToken.None));
            Assert.Equal(SuppressionStates.Expired, await store.GetSuppressionStateAsync("hard@shop.ovh.example", CancellationToken.None));

            // a new failure puts an expired address back on the list
            await store.ImportAsync(new[] { Bounce("soft@shop.ovh.example", "host mx said: 552 5.2.2 Mailbox full", now) }, "newsletter", SuppressOn.Failed, CancellationToken.None);
            Assert.Equal(SuppressionStates.Suppressed, await store.GetSuppressionStateAsync("soft@shop.ovh.example", CancellationToken.None));
        }
    }
}
