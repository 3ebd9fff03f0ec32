using System;
using System.Collections.Generic;
using System.Data.Common;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Bounces;
using MailOps.Core.Config;

namespace MailOps.Core.Store
{
    /// <summary>The state of an address on the suppression list.</summary>
    public static class SuppressionStates
    {
        public const string Suppressed = "suppressed";
        public const string Reset = "reset";
        public const string Expired = "expired";
    }

    /// <summary>One bounce event as kept in the store (every event is kept, not only the last).</summary>
    public sealed class StoredBounce
    {
        internal StoredBounce(long id, string address, string domain, string reason, bool isHard, bool isInfrastructureFailure, string? statusCode,
            int replyCode, string? diagnostic, string? remoteHost, DateTimeOffset time, DateTimeOffset importedAt, string? source, string? flow, string kind,
            string? suppressionState)
        {
            Id = id;
            Address = address;
            Domain = domain;
            Reason = reason;
            IsHard = isHard;
            IsInfrastructureFailure = isInfrastructureFailure;
            StatusCode = statusCode;
            ReplyCode = replyCode;
            Diagnostic = diagnostic;
            RemoteHost = remoteHost;
            Time = time;
            ImportedAt = importedAt;
            Source = source;
            Flow = flow;
            Kind = kind;
            SuppressionState = suppressionState;
        }

        public long Id { get; }
        public string Address { get; }
        public string Domain { get; }
        public string Reason { get; }
        public bool IsHard { get; }
        public bool IsInfrastructureFailure { get; }
        public string? StatusCode { get; }
        public int ReplyCode { get; }
        public string? Diagnostic { get; }
        public string? RemoteHost { get; }
        public DateTimeOffset Time { get; }
        public DateTimeOffset ImportedAt { get; }
        public string? Source { get; }
        public string? Flow { get; }
        public string Kind { get; }

        /// <summary>The address's current state on the suppression list (null: not listed).</summary>
        public string? SuppressionState { get; }
    }

    public sealed class BounceImportResult
    {
        internal BounceImportResult(int added, int duplicates, int skipped, int suppressed, int read = 0)
        {
            Read = read;
            Added = added;
            Duplicates = duplicates;
            Skipped = skipped;
            Suppressed = suppressed;
        }

        /// <summary>Records read from the source (set by BounceImporter).</summary>
        public int Read { get; }

        /// <summary>New events stored.</summary>
        public int Added { get; }

        /// <summary>Events already in the store (imports are idempotent).</summary>
        public int Duplicates { get; }

        /// <summary>Records that are not failures (auto-replies, delivery reports).</summary>
        public int Skipped { get; }

        /// <summary>Addresses newly put on (or back on) the suppression list.</summary>
        public int Suppressed { get; }
    }

    /// <summary>Which bounces to return.</summary>
    public sealed class BounceQuery
    {
        public DateTimeOffset? Since { get; set; }
        public DateTimeOffset? Until { get; set; }
        public IReadOnlyList<string> Domains { get; set; } = Array.Empty<string>();
        public IReadOnlyList<string> Addresses { get; set; } = Array.Empty<string>();
        public IReadOnlyList<string> Reasons { get; set; } = Array.Empty<string>();
        public bool? Hard { get; set; }
        public string? Source { get; set; }
        public string? Flow { get; set; }
    }

    /// <summary>
    /// The store: bounce events and the suppression list, in SQLite (one file, the default) or PostgreSQL (shared by
    /// several runbook workers). One implementation over ADO.NET; the two differ only in a few words of DDL. Timestamps
    /// are stored as ISO 8601 UTC text, which sorts and compares the same in both.
    /// </summary>
    public sealed partial class BounceStore : IDisposable
    {
        private const int SchemaVersion = 4;
        private readonly DbConnection _connection;
        private readonly bool _postgres;

        private BounceStore(DbConnection connection, bool postgres, string description)
        {
            _connection = connection;
            _postgres = postgres;
            Description = description;
        }

        /// <summary>Where the store is, for messages (never with a password).</summary>
        public string Description { get; }

        /// <summary>Opens (and on first use creates) the store the configuration names.</summary>
        public static async Task<BounceStore> OpenAsync(StoreConfig config, string? password, CancellationToken cancellationToken)
        {
            if (config == null)
            {
                throw new ArgumentNullException(nameof(config));
            }

            BounceStore store;
            if (config.Provider == StoreProvider.PostgreSql)
            {
                var builder = new Npgsql.NpgsqlConnectionStringBuilder(config.ConnectionString) { Timeout = 15, CommandTimeout = 60 };
                if (password != null)
                {
                    builder.Password = password;
                }

                var conn = new Npgsql.NpgsqlConnection(builder.ConnectionString);
                await conn.OpenAsync(cancellationToken).ConfigureAwait(false);
                store = new BounceStore(conn, true, $"PostgreSQL {builder.Host}:{builder.Port}/{builder.Database}");
            }
            else
            {
                var path = config.Path ?? Path.Combine(ConfigLocator.UserDataFolder(), "mailops.db");
                var folder = Path.GetDirectoryName(Path.GetFullPath(path));
                if (!string.IsNullOrEmpty(folder))
                {
                    Directory.CreateDirectory(folder);
                }

                SQLitePCL.Batteries_V2.Init();
                var conn = new Microsoft.Data.Sqlite.SqliteConnection(new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
                await conn.OpenAsync(cancellationToken).ConfigureAwait(false);
                store = new BounceStore(conn, false, "SQLite " + path);
                // WAL with synchronous=NORMAL: a commit survives a killed process (what the journal and resets need); only a power
                // loss can lose the last commits. FULL would fsync every commit: two per message sent.
                await store.ExecuteAsync("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;", cancellationToken).ConfigureAwait(false);
            }

            await store.EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
            return store;
        }

        private async Task EnsureSchemaAsync(CancellationToken cancel)
        {
            var id = _postgres ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT";
            await ExecuteAsync($@"
CREATE TABLE IF NOT EXISTS mailops_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bounce_events (
  id {id},
  dedupe_key TEXT NOT NULL UNIQUE,
  address TEXT NOT NULL,
  domain TEXT NOT NULL,
  reason TEXT NOT NULL,
  is_hard INTEGER NOT NULL,
  is_infrastructure INTEGER NOT NULL,
  status_code TEXT,
  reply_code INTEGER NOT NULL,
  diagnostic TEXT,
  remote_host TEXT,
  event_time TEXT NOT NULL,
  imported_at TEXT NOT NULL,
  source TEXT,
  flow TEXT,
  kind TEXT NOT NULL,
  bounce_message_id TEXT,
  original_message_id TEXT);
CREATE INDEX IF NOT EXISTS ix_bounce_events_address ON bounce_events (address);
CREATE INDEX IF NOT EXISTS ix_bounce_events_time ON bounce_events (event_time);
CREATE INDEX IF NOT EXISTS ix_bounce_events_domain ON bounce_events (domain);
CREATE TABLE IF NOT EXISTS suppressions (
  address TEXT PRIMARY KEY,
  domain TEXT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT NOT NULL,
  first_seen TEXT NOT NULL,
  last_seen TEXT NOT NULL,
  event_count INTEGER NOT NULL,
  flow TEXT,
  source TEXT,
  updated_at TEXT NOT NULL);", cancel).ConfigureAwait(false);
            var version = await ScalarAsync("SELECT MAX(version) FROM mailops_schema", cancel).ConfigureAwait(false);
            var current = version == null || version is DBNull ? 0 : Convert.ToInt32(version, CultureInfo.InvariantCulture);
            if (current > SchemaVersion)
            {
                throw new InvalidOperationException($"The store {Description} was written by a newer MailOps (schema {version}); this one knows schema {SchemaVersion}.");
            }

            if (current < 2)
            {
                // schema 2: which events suppressed their address, resets with their audit, cached provider attributions
                using (var tx = _connection.BeginTransaction())
                {
                    await ExecuteAsync($@"
ALTER TABLE bounce_events ADD COLUMN suppressing INTEGER NOT NULL DEFAULT 0;
UPDATE bounce_events SET suppressing = 1 WHERE is_hard = 1 OR kind = 'Feedback';
ALTER TABLE suppressions ADD COLUMN last_reset_at TEXT;
ALTER TABLE suppressions ADD COLUMN reset_operation TEXT;
CREATE TABLE reset_operations (
  id TEXT PRIMARY KEY,
  created_at TEXT NOT NULL,
  created_by TEXT NOT NULL,
  criteria TEXT NOT NULL,
  item_count INTEGER NOT NULL,
  undone_at TEXT,
  undone_by TEXT);
CREATE TABLE reset_items (
  id {id},
  operation_id TEXT NOT NULL,
  address TEXT NOT NULL,
  domain TEXT NOT NULL,
  flow TEXT,
  reasons TEXT NOT NULL,
  provider TEXT,
  evidence TEXT,
  event_ids TEXT NOT NULL,
  previous_state TEXT NOT NULL,
  previous_reason TEXT NOT NULL,
  previous_updated_at TEXT NOT NULL,
  previous_last_reset_at TEXT,
  previous_reset_operation TEXT,
  undo_outcome TEXT);
CREATE INDEX ix_reset_items_operation ON reset_items (operation_id);
CREATE TABLE provider_attributions (
  domain TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  data TEXT NOT NULL,
  resolved_at TEXT NOT NULL,
  expires_at TEXT NOT NULL);
INSERT INTO mailops_schema (version) VALUES (2);", cancel, tx).ConfigureAwait(false);
                    tx.Commit();
                }
            }

            if (current < 3)
            {
                // schema 3: send jobs and their journals
                using (var tx = _connection.BeginTransaction())
                {
                    await ExecuteAsync(@"
CREATE TABLE send_jobs (
  name TEXT PRIMARY KEY,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  relay TEXT NOT NULL,
  flow TEXT,
  state TEXT NOT NULL,
  paused_until TEXT,
  pause_reason TEXT,
  template TEXT NOT NULL,
  template_hash TEXT NOT NULL,
  owner TEXT);
CREATE TABLE send_items (
  job TEXT NOT NULL,
  seq INTEGER NOT NULL,
  address TEXT NOT NULL,
  fields TEXT NOT NULL,
  eml_path TEXT,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  queue_id TEXT,
  reply TEXT,
  next_attempt_at TEXT,
  message_id TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (job, seq));
CREATE INDEX ix_send_items_state ON send_items (job, state);
INSERT INTO mailops_schema (version) VALUES (3);", cancel, tx).ConfigureAwait(false);
                    tx.Commit();
                }
            }

            if (current < 4)
            {
                // schema 4: the traffic watch's hourly history (for baselines) and its alerts' state
                using (var tx = _connection.BeginTransaction())
                {
                    await ExecuteAsync(@"
CREATE TABLE traffic_history (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  metric TEXT NOT NULL,
  hour_start TEXT NOT NULL,
  value REAL NOT NULL,
  PRIMARY KEY (scope, key, metric, hour_start));
CREATE TABLE traffic_alerts (
  id TEXT PRIMARY KEY,
  rule TEXT NOT NULL,
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  severity TEXT NOT NULL,
  state TEXT NOT NULL,
  raised_at TEXT NOT NULL,
  last_notified_at TEXT NOT NULL,
  resolved_at TEXT,
  data TEXT NOT NULL);
INSERT INTO mailops_schema (version) VALUES (4);", cancel, tx).ConfigureAwait(false);
                    tx.Commit();
                }
            }
        }

        /// <summary>
        /// Stores bounce events, once each (a second import of the same bounce changes nothing), and keeps the
        /// suppression list: a hard bounce or a complaint suppresses the address. The whole batch is one transaction:
        /// a crash leaves the store as before the batch.
        /// </summary>
        public Task<BounceImportResult> ImportAsync(IEnumerable<BounceRecord> records, string? flow, CancellationToken cancellationToken) =>
            ImportAsync(records, flow, SuppressOn.Hard, cancellationToken);

        /// <summary>
        /// As <see cref="ImportAsync(IEnumerable{BounceRecord}, string, CancellationToken)"/>; <paramref name="suppressOn"/>
        /// Failed suppresses every failed recipient (what the flow's list manager or ESP did), not only hard bounces.
        /// </summary>
        public async Task<BounceImportResult> ImportAsync(IEnumerable<BounceRecord> records, string? flow, SuppressOn suppressOn, CancellationToken cancellationToken)
        {
            var added = 0;
            var duplicates = 0;
            var skipped = 0;
            var suppressed = 0;
            var now = Iso(DateTimeOffset.UtcNow);
            using (var tx = _connection.BeginTransaction())
            {
                foreach (var r in records)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (!r.IsFailure && r.Reason != BounceReasons.Feedback)
                    {
                        skipped++;
                        continue;
                    }

                    var time = Iso(r.Time ?? DateTimeOffset.UtcNow);
                    var key = DedupeKey(r);
                    var suppressing = r.IsHard || r.Reason == BounceReasons.Feedback || (suppressOn == SuppressOn.Failed && r.IsFailure);
                    var inserted = await ExecuteAsync(
                        "INSERT INTO bounce_events (dedupe_key, address, domain, reason, is_hard, is_infrastructure, status_code, reply_code, diagnostic, remote_host, event_time, imported_at, source, flow, kind, bounce_message_id, original_message_id, suppressing) " +
                        "VALUES (@k, @a, @d, @r, @h, @i, @s, @c, @t, @m, @e, @n, @src, @f, @kind, @bid, @oid, @sup) ON CONFLICT (dedupe_key) DO NOTHING",
                        cancellationToken, tx,
                        ("@k", key), ("@a", r.Recipient.ToLowerInvariant()), ("@d", r.Domain), ("@r", r.Reason), ("@h", r.IsHard ? 1 : 0), ("@i", r.IsInfrastructureFailure ? 1 : 0),
                        ("@s", r.StatusCode), ("@c", r.ReplyCode), ("@t", r.Diagnostic), ("@m", r.RemoteHost), ("@e", time), ("@n", now), ("@src", r.Source), ("@f", flow),
                        ("@kind", r.Kind.ToString()), ("@bid", r.BounceMessageId), ("@oid", r.OriginalMessageId), ("@sup", suppressing ? 1 : 0)).ConfigureAwait(false);
                    if (inserted == 0)
                    {
                        duplicates++;
                        continue;
                    }

                    added++;
                    if (suppressing)
                    {
                        // (re)suppress: a new hard bounce after a reset puts the address back on the list. An event from
                        // before the last reset that a reset explains (an infrastructure failure, or a soft one) is kept
                        // but does not undo the reset: importing the outage's log again must not re-suppress everyone.
                        string? before = null;
                        string? lastReset = null;
                        using (var cmd = Command("SELECT state, last_reset_at FROM suppressions WHERE address = @a", tx, ("@a", r.Recipient.ToLowerInvariant())))
                        using (var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                        {
                            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                            {
                                before = reader.GetString(0);
                                lastReset = reader.IsDBNull(1) ? null : reader.GetString(1);
                            }
                        }

                        var explainedByReset = lastReset != null && string.CompareOrdinal(time, lastReset) <= 0 && (r.IsInfrastructureFailure || !r.IsHard);
                        var state = explainedByReset ? before! : SuppressionStates.Suppressed;
                        await ExecuteAsync(
                            "INSERT INTO suppressions (address, domain, state, reason, first_seen, last_seen, event_count, flow, source, updated_at) " +
                            "VALUES (@a, @d, @state, @r, @e, @e, 1, @f, @src, @n) " +
                            "ON CONFLICT (address) DO UPDATE SET state = excluded.state, " +
                            "reason = CASE WHEN excluded.state = suppressions.state AND excluded.last_seen < suppressions.last_seen THEN suppressions.reason ELSE excluded.reason END, " +
                            "last_seen = CASE WHEN excluded.last_seen > suppressions.last_seen THEN excluded.last_seen ELSE suppressions.last_seen END, " +
                            "first_seen = CASE WHEN excluded.first_seen < suppressions.first_seen THEN excluded.first_seen ELSE suppressions.first_seen END, " +
                            "event_count = suppressions.event_count + 1, updated_at = excluded.updated_at",
                            cancellationToken, tx, ("@a", r.Recipient.ToLowerInvariant()), ("@d", r.Domain), ("@state", state), ("@r", r.Reason), ("@e", time), ("@f", flow), ("@src", r.Source), ("@n", now)).ConfigureAwait(false);
                        if (explainedByReset)
                        {
                            await ExecuteAsync("UPDATE bounce_events SET suppressing = 0 WHERE dedupe_key = @k", cancellationToken, tx, ("@k", key)).ConfigureAwait(false);
                        }

                        suppressed += before != SuppressionStates.Suppressed && state == SuppressionStates.Suppressed ? 1 : 0;
                    }
                }

                tx.Commit();
            }

            return new BounceImportResult(added, duplicates, skipped, suppressed);
        }

        public async Task<IReadOnlyList<StoredBounce>> QueryAsync(BounceQuery query, CancellationToken cancellationToken)
        {
            if (query == null)
            {
                throw new ArgumentNullException(nameof(query));
            }

            var where = new List<string>();
            var args = new List<(string, object?)>();
            if (query.Since.HasValue)
            {
                where.Add("e.event_time >= @since");
                args.Add(("@since", Iso(query.Since.Value)));
            }

            if (query.Until.HasValue)
            {
                where.Add("e.event_time < @until");
                args.Add(("@until", Iso(query.Until.Value)));
            }

            AddIn(where, args, "e.domain", "dom", query.Domains.Select(d => d.ToLowerInvariant()));
            AddIn(where, args, "e.address", "adr", query.Addresses.Select(a => a.ToLowerInvariant()));
            AddIn(where, args, "e.reason", "rsn", query.Reasons.Select(r => r.ToLowerInvariant()));
            if (query.Hard.HasValue)
            {
                where.Add("e.is_hard = @hard");
                args.Add(("@hard", query.Hard.Value ? 1 : 0));
            }

            if (query.Source != null)
            {
                where.Add("e.source LIKE @src");
                args.Add(("@src", query.Source.Replace('*', '%')));
            }

            if (query.Flow != null)
            {
                where.Add("e.flow = @flow");
                args.Add(("@flow", query.Flow));
            }

            var sql = "SELECT e.id, e.address, e.domain, e.reason, e.is_hard, e.is_infrastructure, e.status_code, e.reply_code, e.diagnostic, e.remote_host, e.event_time, e.imported_at, e.source, e.flow, e.kind, s.state " +
                "FROM bounce_events e LEFT JOIN suppressions s ON s.address = e.address" +
                (where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : "") + " ORDER BY e.event_time, e.id";
            var result = new List<StoredBounce>();
            using (var cmd = Command(sql, null, args.ToArray()))
            using (var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    result.Add(new StoredBounce(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), Convert.ToInt32(reader.GetValue(4), CultureInfo.InvariantCulture) != 0,
                        Convert.ToInt32(reader.GetValue(5), CultureInfo.InvariantCulture) != 0, reader.IsDBNull(6) ? null : reader.GetString(6), Convert.ToInt32(reader.GetValue(7), CultureInfo.InvariantCulture),
                        reader.IsDBNull(8) ? null : reader.GetString(8), reader.IsDBNull(9) ? null : reader.GetString(9), ParseIso(reader.GetString(10)), ParseIso(reader.GetString(11)),
                        reader.IsDBNull(12) ? null : reader.GetString(12), reader.IsDBNull(13) ? null : reader.GetString(13), reader.GetString(14), reader.IsDBNull(15) ? null : reader.GetString(15)));
                }
            }

            return result;
        }

        /// <summary>
        /// The ageing policy: a suppression that only soft failures caused expires after <paramref name="softDays"/>
        /// without a new one, a hard one after <paramref name="hardDays"/> (0: never). Expired addresses may be mailed
        /// again; a new failure suppresses them again. Returns how many expired now.
        /// </summary>
        public async Task<int> ExpireSuppressionsAsync(int softDays, int hardDays, DateTimeOffset now, CancellationToken cancellationToken)
        {
            var expired = 0;
            using (var tx = _connection.BeginTransaction())
            {
                if (softDays > 0)
                {
                    expired += await ExecuteAsync(
                        "UPDATE suppressions SET state = 'expired', updated_at = @n WHERE state = 'suppressed' AND last_seen < @cut " +
                        "AND NOT EXISTS (SELECT 1 FROM bounce_events e WHERE e.address = suppressions.address AND e.suppressing = 1 AND (e.is_hard = 1 OR e.kind = 'Feedback'))",
                        cancellationToken, tx, ("@n", Iso(now)), ("@cut", Iso(now.AddDays(-softDays)))).ConfigureAwait(false);
                }

                if (hardDays > 0)
                {
                    expired += await ExecuteAsync("UPDATE suppressions SET state = 'expired', updated_at = @n WHERE state = 'suppressed' AND last_seen < @cut",
                        cancellationToken, tx, ("@n", Iso(now)), ("@cut", Iso(now.AddDays(-hardDays)))).ConfigureAwait(false);
                }

                tx.Commit();
            }

            return expired;
        }

        /// <summary>The suppression state of an address (null: not listed).</summary>
        public async Task<string?> GetSuppressionStateAsync(string address, CancellationToken cancellationToken)
        {
            var v = await ScalarAsync("SELECT state FROM suppressions WHERE address = @a", cancellationToken, null, ("@a", address.ToLowerInvariant())).ConfigureAwait(false);
            return v as string;
        }

        private static void AddIn(List<string> where, List<(string, object?)> args, string column, string prefix, IEnumerable<string> values)
        {
            var list = values.ToList();
            if (list.Count == 0)
            {
                return;
            }

            var names = list.Select((v, i) => $"@{prefix}{i}").ToList();
            where.Add($"{column} IN ({string.Join(", ", names)})");
            args.AddRange(names.Zip(list, (n, v) => (n, (object?)v)));
        }

        internal static string DedupeKey(BounceRecord r)
        {
            var text = string.Join("\u001f", r.Recipient.ToLowerInvariant(), r.Time.HasValue ? Iso(r.Time.Value).Substring(0, 19) : "", r.StatusCode ?? "", r.ReplyCode.ToString(CultureInfo.InvariantCulture),
                BounceClassifier.Normalize(r.Diagnostic), r.BounceMessageId ?? "", r.Kind.ToString());
            using (var sha = SHA256.Create())
            {
                return BitConverter.ToString(sha.ComputeHash(Encoding.UTF8.GetBytes(text))).Replace("-", "").ToLowerInvariant();
            }
        }

        internal static string Iso(DateTimeOffset t) => t.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

        private static DateTimeOffset ParseIso(string s) => DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

        private DbCommand Command(string sql, DbTransaction? tx, params (string Name, object? Value)[] args)
        {
            var cmd = _connection.CreateCommand();
            cmd.CommandText = sql;
            cmd.Transaction = tx;
            foreach (var (name, value) in args)
            {
                var p = cmd.CreateParameter();
                p.ParameterName = name;
                p.Value = value ?? DBNull.Value;
                if (value == null)
                {
                    p.DbType = System.Data.DbType.String;
                }

                cmd.Parameters.Add(p);
            }

            return cmd;
        }

        private async Task<int> ExecuteAsync(string sql, CancellationToken cancel, DbTransaction? tx = null, params (string, object?)[] args)
        {
            using (var cmd = Command(sql, tx, args))
            {
                return await cmd.ExecuteNonQueryAsync(cancel).ConfigureAwait(false);
            }
        }

        private async Task<object?> ScalarAsync(string sql, CancellationToken cancel, DbTransaction? tx = null, params (string, object?)[] args)
        {
            using (var cmd = Command(sql, tx, args))
            {
                return await cmd.ExecuteScalarAsync(cancel).ConfigureAwait(false);
            }
        }

        public void Dispose() => _connection.Dispose();
    }
}
