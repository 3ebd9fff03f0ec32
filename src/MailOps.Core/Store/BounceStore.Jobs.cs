using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Sending;

namespace MailOps.Core.Store
{
    /// <summary>A send job as its journal records it.</summary>
    public sealed class SendJobRecord
    {
        internal SendJobRecord(string name, DateTimeOffset createdAt, DateTimeOffset updatedAt, string relay, string? flow, string state, DateTimeOffset? pausedUntil,
            string? pauseReason, MessageTemplate template, string templateHash, string? owner, IReadOnlyDictionary<string, int> counts)
        {
            Name = name;
            CreatedAt = createdAt;
            UpdatedAt = updatedAt;
            Relay = relay;
            Flow = flow;
            State = state;
            PausedUntil = pausedUntil;
            PauseReason = pauseReason;
            Template = template;
            TemplateHash = templateHash;
            Owner = owner;
            Counts = counts;
        }

        public string Name { get; }
        public DateTimeOffset CreatedAt { get; }
        public DateTimeOffset UpdatedAt { get; }
        public string Relay { get; }
        public string? Flow { get; }
        public string State { get; }
        public DateTimeOffset? PausedUntil { get; }
        public string? PauseReason { get; }
        public MessageTemplate Template { get; }
        public string TemplateHash { get; }

        /// <summary>user@host (pid) of the run that last started it.</summary>
        public string? Owner { get; }
        public IReadOnlyDictionary<string, int> Counts { get; }
        public int Total => Counts.Values.Sum();
        public int Sent => Counts.TryGetValue(SendItemStates.Sent, out var n) ? n : 0;
        public int Pending => (Counts.TryGetValue(SendItemStates.Pending, out var n) ? n : 0) + (Counts.TryGetValue(SendItemStates.Deferred, out var d) ? d : 0);
        public int PossiblyDuplicated => Counts.TryGetValue(SendItemStates.PossiblyDuplicated, out var n) ? n : 0;

        public override string ToString() => $"{Name}: {State}, {Sent}/{Total} sent";
    }

    public sealed partial class BounceStore
    {
        /// <summary>A stable hash of the message a job sends (a job name cannot be reused for another message).</summary>
        public static string TemplateHash(MessageTemplate template)
        {
            using (var sha = SHA256.Create())
            {
                return BitConverter.ToString(sha.ComputeHash(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(template)))).Replace("-", "").Substring(0, 16).ToLowerInvariant();
            }
        }

        /// <summary>
        /// Creates a job's journal, or opens the existing one of that name (same message: recipients not in it yet are
        /// appended as pending; another message: InvalidOperationException). One transaction.
        /// </summary>
        public async Task<(SendJobRecord Job, bool Created, int Added)> CreateOrOpenJobAsync(string name, string relay, string? flow, MessageTemplate template,
            IReadOnlyList<SendRecipient> recipients, CancellationToken cancellationToken)
        {
            if (template == null || recipients == null)
            {
                throw new ArgumentNullException(template == null ? nameof(template) : nameof(recipients));
            }

            var hash = TemplateHash(template);
            var existing = await GetJobAsync(name, cancellationToken).ConfigureAwait(false);
            if (existing != null && existing.TemplateHash != hash)
            {
                throw new InvalidOperationException($"The send job '{name}' already exists (created {Iso(existing.CreatedAt)}) with another message; give the job another name, or resume it with Resume-MailOpsSendJob.");
            }

            var now = Iso(DateTimeOffset.UtcNow);
            var added = 0;
            using (var tx = _connection.BeginTransaction())
            {
                long seq = 0;
                var known = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
                if (existing == null)
                {
                    await ExecuteAsync("INSERT INTO send_jobs (name, created_at, updated_at, relay, flow, state, template, template_hash) VALUES (@n, @c, @c, @r, @f, @s, @t, @h)", cancellationToken, tx,
                        ("@n", name), ("@c", now), ("@r", relay), ("@f", flow), ("@s", SendJobStates.Interrupted), ("@t", JsonSerializer.Serialize(template)), ("@h", hash)).ConfigureAwait(false);
                }
                else
                {
                    var max = await ScalarAsync("SELECT MAX(seq) FROM send_items WHERE job = @j", cancellationToken, tx, ("@j", name)).ConfigureAwait(false);
                    seq = max == null || max is DBNull ? 0 : Convert.ToInt64(max, CultureInfo.InvariantCulture);
                    using (var cmd = Command("SELECT address FROM send_items WHERE job = @j", tx, ("@j", name)))
                    using (var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                    {
                        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                        {
                            known.Add(reader.GetString(0));
                        }
                    }
                }

                var domain = template.From.Contains("@") ? template.From.Substring(template.From.LastIndexOf('@') + 1) : "mailops.invalid";
                var jobTag = hash.Substring(0, 8) + "." + Uri.EscapeDataString(name).Replace("%", "=");
                foreach (var r in recipients)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (!known.Add(r.Address))
                    {
                        continue;
                    }

                    seq++;
                    await ExecuteAsync("INSERT INTO send_items (job, seq, address, fields, eml_path, state, attempts, message_id, updated_at) VALUES (@j, @q, @a, @f, @e, @s, 0, @m, @u)",
                        cancellationToken, tx, ("@j", name), ("@q", seq), ("@a", r.Address), ("@f", JsonSerializer.Serialize(r.Fields)), ("@e", r.EmlPath), ("@s", SendItemStates.Pending),
                        ("@m", $"<{jobTag}.{seq}@{domain}>"), ("@u", now)).ConfigureAwait(false);
                    added++;
                }

                tx.Commit();
            }

            return ((await GetJobAsync(name, cancellationToken).ConfigureAwait(false))!, existing == null, added);
        }

        public async Task<SendJobRecord?> GetJobAsync(string name, CancellationToken cancellationToken)
        {
            var jobs = await ListJobsAsync(name, cancellationToken).ConfigureAwait(false);
            return jobs.Count > 0 ? jobs[0] : null;
        }

        /// <summary>The jobs (one, when <paramref name="name"/> is given), newest first, with their counts per state.</summary>
        public async Task<IReadOnlyList<SendJobRecord>> ListJobsAsync(string? name, CancellationToken cancellationToken)
        {
            var rows = new List<(string, string, string, string, string?, string, string?, string?, string, string, string?)>();
            using (var cmd = Command("SELECT name, created_at, updated_at, relay, flow, state, paused_until, pause_reason, template, template_hash, owner FROM send_jobs" +
                (name != null ? " WHERE name = @n" : "") + " ORDER BY created_at DESC", null, name != null ? new[] { ("@n", (object?)name) } : Array.Empty<(string, object?)>()))
            using (var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    string? S(int i) => reader.IsDBNull(i) ? null : reader.GetString(i);
                    rows.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), S(4), reader.GetString(5), S(6), S(7), reader.GetString(8), reader.GetString(9), S(10)));
                }
            }

            var result = new List<SendJobRecord>();
            foreach (var r in rows)
            {
                result.Add(new SendJobRecord(r.Item1, ParseIso(r.Item2), ParseIso(r.Item3), r.Item4, r.Item5, r.Item6, r.Item7 == null ? (DateTimeOffset?)null : ParseIso(r.Item7), r.Item8,
                    JsonSerializer.Deserialize<MessageTemplate>(r.Item9) ?? new MessageTemplate(), r.Item10, r.Item11, await CountItemsAsync(r.Item1, cancellationToken).ConfigureAwait(false)));
            }

            return result;
        }

        public async Task<IReadOnlyDictionary<string, int>> CountItemsAsync(string job, CancellationToken cancellationToken)
        {
            var counts = new Dictionary<string, int>();
            using (var cmd = Command("SELECT state, COUNT(*) FROM send_items WHERE job = @j GROUP BY state", null, ("@j", job)))
            using (var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    counts[reader.GetString(0)] = Convert.ToInt32(reader.GetValue(1), CultureInfo.InvariantCulture);
                }
            }

            return counts;
        }

        /// <summary>The items of a job (all, or those in the given states), in order.</summary>
        public async Task<IReadOnlyList<SendItem>> LoadItemsAsync(string job, IReadOnlyCollection<string>? states, CancellationToken cancellationToken)
        {
            var where = new List<string> { "job = @j" };
            var args = new List<(string, object?)> { ("@j", job) };
            if (states != null && states.Count > 0)
            {
                AddIn(where, args, "state", "st", states);
            }

            var items = new List<SendItem>();
            using (var cmd = Command("SELECT seq, address, fields, eml_path, state, attempts, queue_id, reply, next_attempt_at, message_id, updated_at FROM send_items WHERE " +
                string.Join(" AND ", where) + " ORDER BY seq", null, args.ToArray()))
            using (var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    string? S(int i) => reader.IsDBNull(i) ? null : reader.GetString(i);
                    items.Add(new SendItem(job, reader.GetInt64(0), reader.GetString(1), JsonSerializer.Deserialize<Dictionary<string, string>>(reader.GetString(2)) ?? new Dictionary<string, string>(),
                        S(3), reader.GetString(4), Convert.ToInt32(reader.GetValue(5), CultureInfo.InvariantCulture), S(6), S(7), S(8) == null ? (DateTimeOffset?)null : ParseIso(S(8)!),
                        reader.GetString(9), ParseIso(reader.GetString(10))));
                }
            }

            return items;
        }

        /// <summary>Writes one item's state (its own transaction: durable before the next step of the send).</summary>
        public Task UpdateItemAsync(SendItem item, CancellationToken cancellationToken)
        {
            if (item == null)
            {
                throw new ArgumentNullException(nameof(item));
            }

            item.UpdatedAt = DateTimeOffset.UtcNow;
            return ExecuteAsync("UPDATE send_items SET state = @s, attempts = @a, queue_id = @q, reply = @r, next_attempt_at = @n, updated_at = @u WHERE job = @j AND seq = @seq",
                cancellationToken, null, ("@s", item.State), ("@a", item.Attempts), ("@q", item.QueueId), ("@r", item.Reply), ("@n", item.NextAttempt.HasValue ? Iso(item.NextAttempt.Value) : null),
                ("@u", Iso(item.UpdatedAt)), ("@j", item.Job), ("@seq", item.Seq));
        }

        /// <summary>
        /// As <see cref="UpdateItemAsync"/>, synchronously: for the moment inside the SMTP transfer when the message body
        /// has gone out (blocking a thread-pool thread there on an async call would starve the pool).
        /// </summary>
        public void UpdateItem(SendItem item)
        {
            if (item == null)
            {
                throw new ArgumentNullException(nameof(item));
            }

            item.UpdatedAt = DateTimeOffset.UtcNow;
            using (var cmd = Command("UPDATE send_items SET state = @s, attempts = @a, queue_id = @q, reply = @r, next_attempt_at = @n, updated_at = @u WHERE job = @j AND seq = @seq", null,
                ("@s", item.State), ("@a", item.Attempts), ("@q", item.QueueId), ("@r", item.Reply), ("@n", item.NextAttempt.HasValue ? Iso(item.NextAttempt.Value) : null),
                ("@u", Iso(item.UpdatedAt)), ("@j", item.Job), ("@seq", item.Seq)))
            {
                cmd.ExecuteNonQuery();
            }
        }

        /// <summary>Writes several items' states in one transaction (the send engine's group commit).</summary>
        public void UpdateItems(IReadOnlyList<SendItem> items)
        {
            if (items == null)
            {
                throw new ArgumentNullException(nameof(items));
            }

            using (var tx = _connection.BeginTransaction())
            using (var cmd = Command("UPDATE send_items SET state = @s, attempts = @a, queue_id = @q, reply = @r, next_attempt_at = @n, updated_at = @u WHERE job = @j AND seq = @seq", tx,
                ("@s", ""), ("@a", 0), ("@q", ""), ("@r", ""), ("@n", ""), ("@u", ""), ("@j", ""), ("@seq", 0L)))
            {
                // one statement prepared once for the batch, its parameters set per item
                foreach (var item in items)
                {
                    item.UpdatedAt = DateTimeOffset.UtcNow;
                    cmd.Parameters["@s"].Value = item.State;
                    cmd.Parameters["@a"].Value = item.Attempts;
                    cmd.Parameters["@q"].Value = (object?)item.QueueId ?? DBNull.Value;
                    cmd.Parameters["@r"].Value = (object?)item.Reply ?? DBNull.Value;
                    cmd.Parameters["@n"].Value = item.NextAttempt.HasValue ? Iso(item.NextAttempt.Value) : (object)DBNull.Value;
                    cmd.Parameters["@u"].Value = Iso(item.UpdatedAt);
                    cmd.Parameters["@j"].Value = item.Job;
                    cmd.Parameters["@seq"].Value = item.Seq;
                    cmd.ExecuteNonQuery();
                }

                tx.Commit();
            }
        }

        /// <summary>Sets a job's state (and its pause).</summary>
        public Task SetJobStateAsync(string job, string state, DateTimeOffset? pausedUntil, string? pauseReason, string? owner, CancellationToken cancellationToken) =>
            ExecuteAsync("UPDATE send_jobs SET state = @s, paused_until = @p, pause_reason = @r, owner = COALESCE(@o, owner), updated_at = @u WHERE name = @n", cancellationToken, null,
                ("@s", state), ("@p", pausedUntil.HasValue ? Iso(pausedUntil.Value) : null), ("@r", pauseReason), ("@o", owner), ("@u", Iso(DateTimeOffset.UtcNow)), ("@n", job));

        /// <summary>Which of these addresses are on the suppression list (state suppressed).</summary>
        public async Task<ISet<string>> SuppressedAmongAsync(IReadOnlyCollection<string> addresses, CancellationToken cancellationToken)
        {
            var result = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            var list = addresses.Select(a => a.ToLowerInvariant()).Distinct().ToList();
            for (var i = 0; i < list.Count; i += 500)
            {
                var where = new List<string>();
                var args = new List<(string, object?)>();
                AddIn(where, args, "address", "a", list.Skip(i).Take(500));
                using (var cmd = Command("SELECT address FROM suppressions WHERE state = 'suppressed' AND " + where[0], null, args.ToArray()))
                using (var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        result.Add(reader.GetString(0));
                    }
                }
            }

            return result;
        }
    }
}
