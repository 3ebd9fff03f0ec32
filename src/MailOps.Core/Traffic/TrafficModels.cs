using System;
using System.Collections.Generic;
using System.Linq;

namespace MailOps.Core.Traffic
{
    /// <summary>The length of a report's time buckets.</summary>
    public enum TrafficBucket
    {
        Minute,
        Hour,
        Day,
    }

    /// <summary>What a report row counts the traffic of.</summary>
    public enum TrafficDimension
    {
        /// <summary>All traffic in the bucket.</summary>
        Total,
        Sender,
        SenderDomain,

        /// <summary>The configured flow whose senders or client hosts match.</summary>
        Flow,

        /// <summary>The relay (Postfix instance or send job relay) that carried the mail.</summary>
        Relay,

        /// <summary>The client host that handed the message in.</summary>
        Client,
        RecipientDomain,
    }

    /// <summary>The counts of one time bucket for one sender, flow, relay, ... (or for all traffic).</summary>
    public sealed class TrafficRow
    {
        private const int MaxTracked = 500;
        internal readonly Dictionary<string, long> ReasonCounts = new Dictionary<string, long>(StringComparer.Ordinal);
        internal readonly Dictionary<string, long> SenderCounts = new Dictionary<string, long>(StringComparer.OrdinalIgnoreCase);
        internal readonly Dictionary<string, long> FlowCounts = new Dictionary<string, long>(StringComparer.OrdinalIgnoreCase);

        internal TrafficRow(DateTimeOffset start, TrafficBucket bucket, TrafficDimension dimension, string key)
        {
            Start = start;
            Bucket = bucket;
            Dimension = dimension;
            Key = key;
        }

        public DateTimeOffset Start { get; }
        public DateTimeOffset End => Bucket == TrafficBucket.Minute ? Start.AddMinutes(1) : Bucket == TrafficBucket.Hour ? Start.AddHours(1) : Start.AddDays(1);
        public TrafficBucket Bucket { get; }
        public TrafficDimension Dimension { get; }

        /// <summary>The sender, domain, flow, relay, client or recipient domain ("*" for the total).</summary>
        public string Key { get; }

        /// <summary>Messages received (handed in by a client, picked up locally, or submitted by a send job).</summary>
        public long Messages { get; internal set; }

        /// <summary>Recipients of those messages (Postfix nrcpt; one per send job item).</summary>
        public long Recipients { get; internal set; }
        public long BytesReceived { get; internal set; }
        public long Delivered { get; internal set; }
        public long Forwarded { get; internal set; }

        /// <summary>Deferral lines (a recipient deferred N times counts N).</summary>
        public long Deferred { get; internal set; }
        public long Bounced { get; internal set; }

        /// <summary>Recipients given up on after the queue lifetime.</summary>
        public long Expired { get; internal set; }
        public long Rejected { get; internal set; }
        public long Discarded { get; internal set; }

        /// <summary>Deferrals and bounces whose reply means "blocked, spam, policy, reputation or rate": a provider pushing back.</summary>
        public long BlockReplies { get; internal set; }

        /// <summary>The most messages waiting on a deferral at once during the bucket (Total and Relay rows of logs).</summary>
        public long DeferredQueue { get; internal set; }

        /// <summary>Bounced and expired recipients over those with a final outcome.</summary>
        public double BounceRate => Delivered + Bounced + Expired == 0 ? 0 : (double)(Bounced + Expired) / (Delivered + Bounced + Expired);

        /// <summary>Deferrals over delivery attempts.</summary>
        public double DeferralRate => Delivered + Bounced + Expired + Deferred == 0 ? 0 : (double)Deferred / (Delivered + Bounced + Expired + Deferred);

        /// <summary>Classified reasons of deferrals, bounces and rejections, most frequent first.</summary>
        public IReadOnlyList<KeyValuePair<string, long>> Reasons => ReasonCounts.OrderByDescending(x => x.Value).ThenBy(x => x.Key, StringComparer.Ordinal).ToList();

        /// <summary>The three most frequent reasons, as "reason (count)".</summary>
        public string TopReasons => string.Join(", ", Reasons.Take(3).Select(x => $"{x.Key} ({x.Value})"));

        /// <summary>The senders behind the row (recipients they handed in, plus their deferrals, bounces and rejections), most first.</summary>
        public IReadOnlyList<KeyValuePair<string, long>> TopSenders => SenderCounts.OrderByDescending(x => x.Value).ThenBy(x => x.Key, StringComparer.Ordinal).Take(10).ToList();

        /// <summary>The flows behind the row (recipients they handed in, plus their deferrals, bounces and rejections), most first.</summary>
        public IReadOnlyList<KeyValuePair<string, long>> TopFlows => FlowCounts.OrderByDescending(x => x.Value).ThenBy(x => x.Key, StringComparer.Ordinal).Take(10).ToList();

        /// <summary>A figure of the row by metric name (messages, recipients, delivered, deferred, bounced, rejected, bounceRate, deferralRate, blockReplies, deferredQueue).</summary>
        public double Metric(string metric)
        {
            switch (metric.ToLowerInvariant())
            {
                case "messages": return Messages;
                case "recipients": return Recipients;
                case "delivered": return Delivered;
                case "deferred": return Deferred;
                case "bounced": return Bounced + Expired;
                case "rejected": return Rejected;
                case "bouncerate": return BounceRate;
                case "deferralrate": return DeferralRate;
                case "blockreplies": return BlockReplies;
                case "deferredqueue": return DeferredQueue;
                default: throw new ArgumentException($"'{metric}' is not a traffic metric.", nameof(metric));
            }
        }

        internal static void Count(Dictionary<string, long> map, string key, long n = 1)
        {
            if (map.TryGetValue(key, out var v))
            {
                map[key] = v + n;
            }
            else if (map.Count < MaxTracked)
            {
                map[key] = n;
            }
            else
            {
                map.TryGetValue("(others)", out var o);
                map["(others)"] = o + n;
            }
        }

        public override string ToString() => $"{Start:u} {Dimension} {Key}: {Messages} msgs, {Recipients} rcpts, {Delivered} delivered, {Deferred} deferred, {Bounced} bounced, {Rejected} rejected";
    }

    /// <summary>
    /// Whole-log totals counted as pflogsumm counts them (so that the two can be compared line for line):
    /// received = smtpd/postscreen <c>client=</c> and pickup lines; delivered = <c>status=sent</c> lines that did not
    /// forward; deferred = messages with at least one deferral, deferrals = deferral lines; bounced = <c>status=bounced</c>
    /// lines; rejected = smtpd and cleanup <c>reject:</c> lines; senders = distinct qmgr senders of received messages.
    /// The differences of definition (other Postfix instances and services, smtpd milter rejects, queue ids used again,
    /// RFC 3339 stamps pflogsumm skips) are in docs/traffic-pflogsumm.md, each pinned by a test against the real pflogsumm.
    /// </summary>
    public sealed class TrafficTotals
    {
        internal readonly Dictionary<string, long> SenderMessages = new Dictionary<string, long>(StringComparer.Ordinal);
        internal readonly HashSet<string> SendingDomains = new HashSet<string>(StringComparer.Ordinal);
        internal readonly HashSet<string> RecipientSet = new HashSet<string>(StringComparer.Ordinal);
        internal readonly HashSet<string> RecipientDomainSet = new HashSet<string>(StringComparer.Ordinal);

        public long Received { get; internal set; }
        public long Delivered { get; internal set; }
        public long Forwarded { get; internal set; }
        public long Deferred { get; internal set; }
        public long Deferrals { get; internal set; }
        public long Bounced { get; internal set; }
        public long Expired { get; internal set; }
        public long Rejected { get; internal set; }
        public long Discarded { get; internal set; }
        public long BytesReceived { get; internal set; }
        public long BytesDelivered { get; internal set; }
        public long Senders => SenderMessages.Count;
        public long SendingHostsDomains => SendingDomains.Count;
        public long Recipients => RecipientSet.Count;
        public long RecipientHostsDomains => RecipientDomainSet.Count;

        /// <summary>Lines that looked like an MTA's delivery lines but could not be read.</summary>
        public long UnreadableLines { get; internal set; }
        public long Lines { get; internal set; }
        public DateTimeOffset? First { get; internal set; }
        public DateTimeOffset? Last { get; internal set; }

        /// <summary>Received messages per sender ("from=&lt;&gt;" for the null sender), as pflogsumm's "Senders by message count".</summary>
        public IReadOnlyDictionary<string, long> MessagesBySender => SenderMessages;

        public override string ToString() => $"{Received} received, {Delivered} delivered, {Deferred} deferred ({Deferrals} deferrals), {Bounced} bounced, {Rejected} rejected";
    }
}
