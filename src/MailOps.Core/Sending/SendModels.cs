using System;
using System.Collections.Generic;
using System.Linq;
using System.Security.Cryptography.X509Certificates;
using MailOps.Core.Config;

namespace MailOps.Core.Sending
{
    /// <summary>The states of one recipient in a send job's journal.</summary>
    public static class SendItemStates
    {
        /// <summary>Not sent yet.</summary>
        public const string Pending = "pending";

        /// <summary>The message body was being transmitted (DATA) when the state was last written: if the job died here, the server may have the message.</summary>
        public const string InData = "in-data";

        /// <summary>The server accepted it (queue id kept).</summary>
        public const string Sent = "sent";

        /// <summary>A temporary failure; retried with backoff.</summary>
        public const string Deferred = "deferred";

        /// <summary>A permanent failure (recorded as a bounce), or temporary failures until the retries ran out.</summary>
        public const string Failed = "failed";

        /// <summary>Not sent on purpose (suppressed address).</summary>
        public const string Skipped = "skipped";

        /// <summary>The connection dropped after the message body was sent and before the server's reply: the server may or may not have it. Never resent automatically.</summary>
        public const string PossiblyDuplicated = "possibly-duplicated";
    }

    /// <summary>The states of a send job.</summary>
    public static class SendJobStates
    {
        public const string Running = "running";
        public const string Paused = "paused";
        public const string Completed = "completed";
        public const string Interrupted = "interrupted";
    }

    /// <summary>The message of a job, with {{placeholders}} filled per recipient.</summary>
    public sealed class MessageTemplate
    {
        public string From { get; set; } = "";
        public string? FromName { get; set; }
        public string? ReplyTo { get; set; }
        public string Subject { get; set; } = "";
        public string? TextBody { get; set; }
        public string? HtmlBody { get; set; }

        /// <summary>Attachment files (read when each message is built).</summary>
        public IReadOnlyList<string> Attachments { get; set; } = Array.Empty<string>();

        /// <summary>One-click unsubscribe URL (RFC 8058), may hold placeholders.</summary>
        public string? UnsubscribeUrl { get; set; }

        /// <summary>Unsubscribe mailbox (mailto:), may hold placeholders.</summary>
        public string? UnsubscribeMailto { get; set; }

        /// <summary>Bulk (mailing list, campaign: Precedence: bulk, List-Unsubscribe) or automated (Auto-Submitted: auto-generated).</summary>
        public bool Bulk { get; set; } = true;

        /// <summary>A ready .eml per recipient instead of a composed message (the item's EmlPath).</summary>
        public bool FromEml { get; set; }
    }

    /// <summary>One recipient: its address and the values for the placeholders (or a ready .eml).</summary>
    public sealed class SendRecipient
    {
        public SendRecipient(string address, IReadOnlyDictionary<string, string>? fields = null, string? emlPath = null)
        {
            Address = address;
            Fields = fields ?? new Dictionary<string, string>();
            EmlPath = emlPath;
        }

        public string Address { get; }
        public IReadOnlyDictionary<string, string> Fields { get; }
        public string? EmlPath { get; }
    }

    /// <summary>Where a job sends: a relay of the configuration with what it takes to connect.</summary>
    public sealed class SendRelay
    {
        public SendRelay(RelayConfig config, System.Net.NetworkCredential? credential, IReadOnlyList<X509Certificate2>? trustedCa)
        {
            Config = config ?? throw new ArgumentNullException(nameof(config));
            Credential = credential;
            TrustedCa = trustedCa ?? Array.Empty<X509Certificate2>();
        }

        public RelayConfig Config { get; }
        public System.Net.NetworkCredential? Credential { get; }
        public IReadOnlyList<X509Certificate2> TrustedCa { get; }
        public string Name => Config.Name;
    }

    /// <summary>How a job sends.</summary>
    public sealed class SendOptions
    {
        public SendRelay Relay { get; set; } = null!;
        public SendRelay? FailoverRelay { get; set; }
        public int MaxConnections { get; set; } = 4;
        public int MessagesPerConnection { get; set; } = 100;

        /// <summary>0: no limit.</summary>
        public int PerMinute { get; set; }
        public int PerHour { get; set; }
        public int PerDomainPerMinute { get; set; }

        /// <summary>Attempts per recipient for temporary failures (4xx, dropped connections before DATA).</summary>
        public int MaxAttempts { get; set; } = 5;
        public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMinutes(1);
        public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromHours(1);

        /// <summary>How long the job keeps waiting for deferred retries before it returns (they stay in the journal).</summary>
        public TimeSpan RetryWindow { get; set; } = TimeSpan.FromMinutes(10);

        /// <summary>How long a circuit-breaker pause lasts.</summary>
        public TimeSpan PauseDuration { get; set; } = TimeSpan.FromMinutes(30);

        public string? DkimKeyFile { get; set; }
        public string? DkimSelector { get; set; }
        public string? DkimDomain { get; set; }
        public string? Flow { get; set; }
    }

    /// <summary>What a job did (this run and in total).</summary>
    public sealed class SendJobSummary
    {
        internal SendJobSummary(string name, string state, string relay, IReadOnlyDictionary<string, int> counts, TimeSpan duration, int sentThisRun,
            string? pauseReason, DateTimeOffset? pausedUntil, IReadOnlyList<string> notes)
        {
            Name = name;
            State = state;
            Relay = relay;
            Counts = counts;
            Duration = duration;
            SentThisRun = sentThisRun;
            PauseReason = pauseReason;
            PausedUntil = pausedUntil;
            Notes = notes;
        }

        public string Name { get; }
        public string State { get; }
        public string Relay { get; }
        public IReadOnlyDictionary<string, int> Counts { get; }
        public int Total => Counts.Values.Sum();
        public int Sent => Get(SendItemStates.Sent);
        public int Deferred => Get(SendItemStates.Deferred);
        public int Failed => Get(SendItemStates.Failed);
        public int Skipped => Get(SendItemStates.Skipped);
        public int Pending => Get(SendItemStates.Pending);
        public int PossiblyDuplicated => Get(SendItemStates.PossiblyDuplicated);
        public TimeSpan Duration { get; }
        public int SentThisRun { get; }
        public double MessagesPerSecond => Duration.TotalSeconds > 0 ? SentThisRun / Duration.TotalSeconds : 0;
        public string? PauseReason { get; }
        public DateTimeOffset? PausedUntil { get; }

        /// <summary>What happened on the way (failover, circuit breaker, relay down).</summary>
        public IReadOnlyList<string> Notes { get; }

        private int Get(string state) => Counts.TryGetValue(state, out var n) ? n : 0;

        public override string ToString() => $"{Name}: {State}, sent {Sent}, deferred {Deferred}, failed {Failed}, skipped {Skipped}";
    }

    /// <summary>One recipient's line in the journal.</summary>
    public sealed class SendItem
    {
        internal SendItem(string job, long seq, string address, IReadOnlyDictionary<string, string> fields, string? emlPath, string state, int attempts,
            string? queueId, string? reply, DateTimeOffset? nextAttempt, string messageId, DateTimeOffset updatedAt)
        {
            Job = job;
            Seq = seq;
            Address = address;
            Fields = fields;
            EmlPath = emlPath;
            State = state;
            Attempts = attempts;
            QueueId = queueId;
            Reply = reply;
            NextAttempt = nextAttempt;
            MessageId = messageId;
            UpdatedAt = updatedAt;
        }

        public string Job { get; }
        public long Seq { get; }
        public string Address { get; }
        public string Domain => Address.Substring(Address.LastIndexOf('@') + 1).ToLowerInvariant();
        public IReadOnlyDictionary<string, string> Fields { get; }
        public string? EmlPath { get; }
        public string State { get; internal set; }
        public int Attempts { get; internal set; }
        public string? QueueId { get; internal set; }
        public string? Reply { get; internal set; }
        public DateTimeOffset? NextAttempt { get; internal set; }

        /// <summary>The Message-Id every attempt of this message carries (so a receiver can tell a duplicate).</summary>
        public string MessageId { get; }
        public DateTimeOffset UpdatedAt { get; internal set; }

        public override string ToString() => $"{Address}: {State}";
    }
}
