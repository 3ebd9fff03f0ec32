using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Bounces;
using MailOps.Core.Config;
using MailOps.Core.Store;
using Xunit;

namespace MailOps.Core.Tests.Store
{
    /// <summary>
    /// The same store tests on SQLite (a temp file) and on the lab's PostgreSQL (build.ps1 starts the lab before xunit
    /// and sets MAILOPS_LAB; without it the PostgreSQL cases are skipped, loudly).
    /// </summary>
    public class BounceStoreTests
    {
        public static IEnumerable<object[]> Providers()
        {
            yield return new object[] { "sqlite" };
            if (PostgresConnectionString() != null)
            {
                yield return new object[] { "postgresql" };
            }
        }

        [LabFact("postgres")]
        public async Task PostgresStoreOfTheLabOpens()
        {
            using var store = await OpenAsync("postgresql");
            Assert.NotNull(store);
            Assert.StartsWith("PostgreSQL 127.0.0.1:", store!.Description, StringComparison.Ordinal);
        }

        internal static string? PostgresConnectionString()
        {
            var lab = Environment.GetEnvironmentVariable("MAILOPS_LAB");
            if (string.IsNullOrEmpty(lab) || !File.Exists(lab))
            {
                return null;
            }

            using var doc = JsonDocument.Parse(File.ReadAllText(lab));
            return doc.RootElement.TryGetProperty("postgres", out var pg) && pg.ValueKind == JsonValueKind.Object ? pg.GetProperty("connectionString").GetString() : null;
        }

        internal static async Task<BounceStore?> OpenAsync(string provider)
        {
            if (provider == "sqlite")
            {
                var path = Path.Combine(Path.GetTempPath(), $"mailops-store-{Guid.NewGuid():N}.db");
                return await BounceStore.OpenAsync(ConfigReader.Read($"version: 1\nstore:\n  provider: sqlite\n  path: '{path}'\n").Config!.Store, null, CancellationToken.None);
            }

            var cs = PostgresConnectionString();
            if (cs == null)
            {
                return null;
            }

            // a schema of its own per test, so tests do not see each other's rows
            var schema = "t" + Guid.NewGuid().ToString("N").Substring(0, 12);
            var b = new Npgsql.NpgsqlConnectionStringBuilder(cs);
            using (var admin = new Npgsql.NpgsqlConnection(b.ConnectionString))
            {
                await admin.OpenAsync();
                using var cmd = admin.CreateCommand();
                cmd.CommandText = $"CREATE SCHEMA {schema}";
                await cmd.ExecuteNonQueryAsync();
            }

            var password = b.Password;
            b.Password = null;
            b.SearchPath = schema;
            var cfg = ConfigReader.Read($"version: 1\nstore:\n  provider: postgresql\n  connectionString: '{b.ConnectionString}'\n").Config!;
            return await BounceStore.OpenAsync(cfg.Store, password, CancellationToken.None);
        }

        private static BounceRecord Line(string rcpt, string diag, string? status, DateTimeOffset time)
        {
            var r = BounceParser.ParseDiagnosticLine(rcpt, diag, status, 0, "test");
            return new BounceRecordBuilder(r).At(time);
        }

        [Theory]
        [MemberData(nameof(Providers))]
        public async Task ImportIsIdempotentAndKeepsEveryEvent(string provider)
        {
            using var store = await OpenAsync(provider);
            if (store == null)
            {
                Assert.Fail("PostgreSQL lab is not available (MAILOPS_LAB unset): run through build.ps1 -Task Test");
                return;
            }

            var t0 = new DateTimeOffset(2026, 11, 20, 7, 30, 0, TimeSpan.Zero);
            var batch = new[]
            {
                Line("Bob@Example.ORG", "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown", "5.1.1", t0),
                Line("bob@example.org", "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown", "5.1.1", t0.AddHours(2)),
                Line("carol@example.net", "452 4.2.2 mailbox full", "4.2.2", t0.AddHours(1)),
                Line("dave@ovh-hosted.test", "connect to mx1.mail.ovh.net[192.0.2.1]:25: Connection timed out", "4.4.1", t0.AddMinutes(30)),
            };

            var first = await store.ImportAsync(batch, "newsletter", CancellationToken.None);
            var second = await store.ImportAsync(batch, "newsletter", CancellationToken.None);

            Assert.Equal((4, 0), (first.Added, first.Duplicates));
            Assert.Equal((0, 4), (second.Added, second.Duplicates));
            Assert.Equal(1, first.Suppressed); // bob, once; soft bounces do not suppress
            var all = await store.QueryAsync(new BounceQuery(), CancellationToken.None);
            Assert.Equal(4, all.Count);
            Assert.Equal(2, all.Count(b => b.Address == "bob@example.org"));
            Assert.Equal(SuppressionStates.Suppressed, await store.GetSuppressionStateAsync("BOB@example.org", CancellationToken.None));
            Assert.Null(await store.GetSuppressionStateAsync("carol@example.net", CancellationToken.None));
            Assert.All(all, b => Assert.Equal("newsletter", b.Flow));
        }

        [Theory]
        [MemberData(nameof(Providers))]
        public async Task QueriesFilterByWindowDomainReasonAndHardness(string provider)
        {
            using var store = await OpenAsync(provider);
            if (store == null)
            {
                Assert.Fail("PostgreSQL lab is not available (MAILOPS_LAB unset): run through build.ps1 -Task Test");
                return;
            }

            var t0 = new DateTimeOffset(2026, 11, 20, 7, 0, 0, TimeSpan.Zero);
            await store.ImportAsync(new[]
            {
                Line("a@ovh-hosted.test", "Host or domain name not found. Name service error for name=ovh-hosted.test type=MX: Host not found", "5.4.4", t0.AddHours(1)),
                Line("b@ovh-hosted.test", "550 5.1.1 user unknown", "5.1.1", t0.AddHours(2)),
                Line("c@elsewhere.test", "Host or domain name not found. Name service error", "5.4.4", t0.AddHours(3)),
                Line("d@ovh-hosted.test", "Host or domain name not found. Name service error", "5.4.4", t0.AddHours(9)),
            }, null, CancellationToken.None);

            var window = await store.QueryAsync(new BounceQuery { Since = t0, Until = t0.AddHours(4), Domains = new[] { "OVH-hosted.test" } }, CancellationToken.None);
            Assert.Equal(new[] { "a@ovh-hosted.test", "b@ovh-hosted.test" }, window.Select(b => b.Address));
            var infra = await store.QueryAsync(new BounceQuery { Reasons = new[] { "hostunknown" }, Hard = true }, CancellationToken.None);
            Assert.Equal(3, infra.Count);
            Assert.All(infra, b => Assert.True(b.IsInfrastructureFailure));
        }

        [Theory]
        [MemberData(nameof(Providers))]
        public async Task AnInterruptedBatchLeavesTheStoreAsBefore(string provider)
        {
            using var store = await OpenAsync(provider);
            if (store == null)
            {
                Assert.Fail("PostgreSQL lab is not available (MAILOPS_LAB unset): run through build.ps1 -Task Test");
                return;
            }

            var t0 = new DateTimeOffset(2026, 11, 20, 7, 0, 0, TimeSpan.Zero);
            using var cts = new CancellationTokenSource();
            IEnumerable<BounceRecord> Batch()
            {
                yield return Line("x1@example.org", "550 5.1.1 user unknown", "5.1.1", t0);
                yield return Line("x2@example.org", "550 5.1.1 user unknown", "5.1.1", t0);
                cts.Cancel(); // the process is interrupted in the middle of the batch
                yield return Line("x3@example.org", "550 5.1.1 user unknown", "5.1.1", t0);
            }

            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.ImportAsync(Batch(), null, cts.Token));
            Assert.Empty(await store.QueryAsync(new BounceQuery(), CancellationToken.None));
            Assert.Null(await store.GetSuppressionStateAsync("x1@example.org", CancellationToken.None));
        }
    }

    /// <summary>A fact skipped, loudly, when the lab (build.ps1 -Task Test starts it) is not running.</summary>
    public sealed class LabFactAttribute : FactAttribute
    {
        public LabFactAttribute(string part)
        {
            if (part == "postgres" && BounceStoreTests.PostgresConnectionString() == null)
            {
                Skip = "LAB NOT RUNNING: MAILOPS_LAB is unset or has no PostgreSQL; the PostgreSQL store tests did not run (build.ps1 -Task Test runs them).";
            }
        }
    }

    /// <summary>Gives a diagnostic-line record a time (lines from logs carry their own).</summary>
    internal sealed class BounceRecordBuilder
    {
        private readonly BounceRecord _r;

        public BounceRecordBuilder(BounceRecord r)
        {
            _r = r;
        }

        public BounceRecord At(DateTimeOffset time) => BounceParser.WithTime(_r, time);
    }
}
