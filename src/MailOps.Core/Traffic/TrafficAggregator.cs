using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using MailOps.Core.Bounces;
using MailOps.Core.Logs;
using MailOps.Core.Sending;
using MailOps.Core.Store;

namespace MailOps.Core.Traffic
{
    /// <summary>What a traffic aggregation counts and how.</summary>
    public sealed class TrafficOptions
    {
        public TrafficBucket Bucket { get; set; } = TrafficBucket.Hour;

        /// <summary>The row dimensions to keep (the Total row is always kept).</summary>
        public IReadOnlyCollection<TrafficDimension> Dimensions { get; set; } = new[] { TrafficDimension.Total };

        public DateTimeOffset? Since { get; set; }
        public DateTimeOffset? Until { get; set; }

        /// <summary>Names flows from senders and client hosts (null: no flows).</summary>
        public FlowMatcher? Flows { get; set; }

        /// <summary>
        /// The relay name of a log's Postfix instance (syslog name before the daemon: postfix, postfix-secondary);
        /// null or an unknown instance: the instance name itself.
        /// </summary>
        public IReadOnlyDictionary<string, string>? RelayByInstance { get; set; }

        /// <summary>The relay every log line is counted under (overrides the instance).</summary>
        public string? Relay { get; set; }

        /// <summary>Classify deferral, bounce and rejection texts into reasons (the bounce engine).</summary>
        public bool ClassifyReasons { get; set; } = true;

        /// <summary>
        /// Count only the whole-log <see cref="TrafficAggregator.Totals"/> (no rows, no reasons): what a totals report
        /// needs, several times faster on big logs. The totals are the same either way.
        /// </summary>
        public bool TotalsOnly { get; set; }

        /// <summary>
        /// Queue ids that are the next hop of a message another of your relays already logged (its delivery said "queued as
        /// ID": see <see cref="TrafficAggregator.NextHopQueueId"/>): such a message is not counted again (rows only; the
        /// inventory reads several relays' logs). Null: every message counts, as pflogsumm counts them.
        /// </summary>
        public ICollection<string>? HopQueueIds { get; set; }
    }

    /// <summary>
    /// Counts MTA log records and send-journal items into time buckets per sender, domain, flow, relay, client and
    /// recipient domain, and keeps pflogsumm-compatible totals. Memory stays flat: per-message state is dropped when
    /// the message leaves the queue (and bounded for logs that never say so); only the rows grow, with the buckets.
    /// </summary>
    public sealed class TrafficAggregator
    {
        private const int MaxMessages = 500000;
        private static readonly HashSet<string> PushBackReasons = new HashSet<string>(StringComparer.Ordinal)
        {
            BounceReasons.Blocked, BounceReasons.SpamDetected, BounceReasons.PolicyViolation, BounceReasons.BadReputation,
            BounceReasons.Speeding, BounceReasons.TooManyConn, BounceReasons.Rejected,
        };

        private readonly TrafficOptions _options;
        private readonly bool[] _dims = new bool[7];
        private readonly Dictionary<RowKey, TrafficRow> _rows = new Dictionary<RowKey, TrafficRow>();
        private readonly Dictionary<string, MessageState> _messages = new Dictionary<string, MessageState>(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _reasonCache = new Dictionary<string, string>(StringComparer.Ordinal);
        private readonly Dictionary<string, HashSet<string>> _deferredByRelay = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        // queue id -> time of its last deferral (a message counts once as deferred)
        private DateTimeOffset _nextSweep = DateTimeOffset.MinValue;
        private readonly Dictionary<string, DateTimeOffset> _deferredQids = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        private int _deferredQueue;
        private readonly TrafficRow?[] _scratch = new TrafficRow?[7];

        public TrafficAggregator(TrafficOptions? options = null)
        {
            _options = options ?? new TrafficOptions();
            _dims[(int)TrafficDimension.Total] = true;
            foreach (var d in _options.Dimensions)
            {
                _dims[(int)d] = true;
            }
        }

        public TrafficTotals Totals { get; } = new TrafficTotals();

        /// <summary>Messages whose state is kept (queued: received or deferred, not yet removed); for the tests of flat memory.</summary>
        internal int PendingMessages => _messages.Count + _deferredQids.Count;

        /// <summary>The rows so far, in time order, then dimension, then most messages first.</summary>
        public IReadOnlyList<TrafficRow> Rows =>
            _rows.Values.OrderBy(r => r.Start).ThenBy(r => r.Dimension).ThenByDescending(r => r.Messages + r.Delivered + r.Deferred + r.Bounced + r.Rejected)
                .ThenBy(r => r.Key, StringComparer.OrdinalIgnoreCase).ToList();

        /// <summary>Adds a whole log.</summary>
        public void AddLog(IEnumerable<MailLogRecord> records)
        {
            foreach (var r in records)
            {
                Add(r);
            }
        }

        /// <summary>
        /// Reads and adds a whole log, the way to read a big one: each line is parsed into one reused record (no record
        /// per line to collect). The counts are those of <c>AddLog(parser.Read(reader, file))</c>; memory stays flat.
        /// </summary>
        /// <exception cref="OperationCanceledException">When <paramref name="cancellationToken"/> is cancelled.</exception>
        public void AddLog(TextReader reader, MailLogParser parser, string? file = null, CancellationToken cancellationToken = default)
        {
            if (reader == null || parser == null)
            {
                throw new ArgumentNullException(reader == null ? nameof(reader) : nameof(parser));
            }

            var unreadable = parser.UnreadableLines;
            if (Pipelined ?? Environment.ProcessorCount > 1)
            {
                AddLogPipelined(reader, parser, file, cancellationToken);
                Totals.UnreadableLines += parser.UnreadableLines - unreadable;
                return;
            }

            var record = new MailLogRecord();
            long lineNumber = 0;
            string? line;
            while ((line = reader.ReadLine()) != null)
            {
                lineNumber++;
                if ((lineNumber & 0xFFFF) == 0)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                }

                var r = parser.Parse(line, record);
                if (r != null)
                {
                    r.LineNumber = lineNumber;
                    r.File = file;
                    Add(r);
                }
            }

            Totals.UnreadableLines += parser.UnreadableLines - unreadable;
        }

        /// <summary>
        /// The same as the loop of <see cref="AddLog(TextReader, MailLogParser, string, CancellationToken)"/> on two threads:
        /// one reads and parses lines into batches of reused records, this one counts them, in order. Records are never
        /// kept by the counting, so a batch goes back to the reader once counted: no record is allocated per line.
        /// </summary>
        private void AddLogPipelined(TextReader reader, MailLogParser parser, string? file, CancellationToken cancellationToken)
        {
            const int BatchSize = 2048;
            using var free = new System.Collections.Concurrent.BlockingCollection<Batch>(4);
            using var full = new System.Collections.Concurrent.BlockingCollection<Batch>(4);
            for (var i = 0; i < 4; i++)
            {
                free.Add(new Batch(BatchSize), CancellationToken.None);
            }

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            Exception? failure = null;
            var producer = new Thread(() =>
            {
                try
                {
                    long lineNumber = 0;
                    var batch = free.Take(stop.Token);
                    string? line;
                    while ((line = reader.ReadLine()) != null)
                    {
                        lineNumber++;
                        var r = parser.Parse(line, batch.Records[batch.Count]);
                        if (r == null)
                        {
                            continue;
                        }

                        r.LineNumber = lineNumber;
                        r.File = file;
                        if (++batch.Count == BatchSize)
                        {
                            full.Add(batch, stop.Token);
                            batch = free.Take(stop.Token);
                            batch.Count = 0;
                        }
                    }

                    if (batch.Count > 0)
                    {
                        full.Add(batch, stop.Token);
                    }
                }
                catch (OperationCanceledException)
                {
                    // the counting side stopped (Ctrl+C or a failure)
                }
                catch (Exception e)
                {
                    failure = e;
                }
                finally
                {
                    full.CompleteAdding();
                }
            })
            { IsBackground = true, Name = "MailOps log reader" };
            producer.Start();
            try
            {
                foreach (var batch in full.GetConsumingEnumerable(stop.Token))
                {
                    for (var i = 0; i < batch.Count; i++)
                    {
                        Add(batch.Records[i]);
                    }

                    batch.Count = 0;
                    free.Add(batch, stop.Token);
                }
            }
            finally
            {
                stop.Cancel();
                producer.Join();
            }

            cancellationToken.ThrowIfCancellationRequested();
            if (failure != null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
            }
        }

        private sealed class Batch
        {
            public Batch(int size)
            {
                Records = new MailLogRecord[size];
                for (var i = 0; i < size; i++)
                {
                    Records[i] = new MailLogRecord();
                }
            }

            public MailLogRecord[] Records { get; }
            public int Count;
        }

        /// <summary>Read on two threads (null: when the machine has more than one core). For tests.</summary>
        internal bool? Pipelined { get; set; }

        /// <summary>Adds one log record.</summary>
        public void Add(MailLogRecord r)
        {
            if (r == null)
            {
                throw new ArgumentNullException(nameof(r));
            }

            Totals.Lines++;
            if (r.Time > _nextSweep)
            {
                Sweep(r.Time);
                _nextSweep = r.Time.AddHours(1);
            }

            if ((_options.Since.HasValue && r.Time < _options.Since.Value) || (_options.Until.HasValue && r.Time >= _options.Until.Value))
            {
                if (r.Kind == MailLogRecordKind.Removed && r.QueueId != null)
                {
                    _messages.Remove(r.QueueId);
                }

                // keep the sender and client of messages received before the window: their deliveries may fall inside it
                if (r.Kind == MailLogRecordKind.Received || r.Kind == MailLogRecordKind.Pickup || r.Kind == MailLogRecordKind.QueueSender)
                {
                    Remember(r);
                }

                return;
            }

            if (Totals.First == null || r.Time < Totals.First)
            {
                Totals.First = r.Time;
            }

            if (Totals.Last == null || r.Time > Totals.Last)
            {
                Totals.Last = r.Time;
            }

            if (_options.TotalsOnly)
            {
                AddToTotals(r);
                return;
            }

            var relay = RelayOf(r);
            switch (r.Kind)
            {
                case MailLogRecordKind.Received:
                case MailLogRecordKind.Pickup:
                {
                    var m = Remember(r);
                    if (_options.HopQueueIds != null && r.QueueId != null && _options.HopQueueIds.Contains(r.QueueId))
                    {
                        m.Hop = true; // counted in the log of the relay it came from
                        break;
                    }

                    m.Received = true;
                    Totals.Received++;
                    if (r.Mta == "exim")
                    {
                        // Exim names the sender and size on the arrival line itself
                        m.Counted = true;
                        CountSender(m, r.Sender ?? "", r.Size);
                        Select(r.Time, m.Sender, m.Client, null, relay, m.Flow);
                        ForEach(row => { row.Messages++; row.BytesReceived += Math.Max(0, r.Size); Tag(row, m.Sender, m.Flow); });
                    }
                    else
                    {
                        // the sender is named later (qmgr); count the message now where the sender does not matter
                        SelectWithoutSender(r.Time, m.Client, relay);
                        ForEach(row => row.Messages++);
                    }

                    break;
                }

                case MailLogRecordKind.QueueSender:
                {
                    var m = Remember(r);
                    if (m.Counted || !m.Received)
                    {
                        break; // a second qmgr line for the same message, or a message not received in this log (a forward)
                    }

                    m.Counted = true;
                    CountSender(m, r.Sender ?? "", r.Size);
                    Select(r.Time, m.Sender, m.Client, null, relay, m.Flow);
                    var nrcpt = Math.Max(0, r.RecipientCount);
                    for (var i = 0; i < _scratch.Length; i++)
                    {
                        var row = _scratch[i];
                        if (row == null)
                        {
                            continue;
                        }

                        if (i == (int)TrafficDimension.Sender || i == (int)TrafficDimension.SenderDomain || i == (int)TrafficDimension.Flow)
                        {
                            row.Messages++;
                        }

                        row.Recipients += nrcpt;
                        row.BytesReceived += Math.Max(0, r.Size);
                        Tag(row, m.Sender, m.Flow, Math.Max(1, nrcpt));
                    }

                    break;
                }

                case MailLogRecordKind.Delivery:
                    AddDelivery(r, relay);
                    break;

                case MailLogRecordKind.Expired:
                    // Postfix: the message was returned after its deferrals; its recipients are those still deferred
                    if (r.QueueId != null && _messages.TryGetValue(r.QueueId, out var em) && em.Deferred != null)
                    {
                        foreach (var rcpt in em.Deferred)
                        {
                            Select(r.Time, em.Sender ?? r.Sender, em.Client, rcpt, relay, em.Flow);
                            ForEach(row => row.Expired++);
                            Totals.Expired++;
                        }

                        em.Deferred = null;
                    }

                    Undefer(r.QueueId, relay);
                    break;

                case MailLogRecordKind.Rejected:
                case MailLogRecordKind.Discarded:
                {
                    MessageState? m = null;
                    if (r.QueueId != null)
                    {
                        _messages.TryGetValue(r.QueueId, out m);
                    }

                    var sender = r.Sender ?? m?.Sender;
                    var client = r.Client ?? m?.Client;
                    var flow = _options.Flows?.Match(sender, client);
                    Select(r.Time, sender, client, r.Recipient, relay, flow);
                    var reason = Reason(r.Text, r.Dsn);
                    Refused(r);
                    if (r.Kind == MailLogRecordKind.Rejected)
                    {
                        Totals.Rejected++;
                        ForEach(row => { row.Rejected++; Tag(row, sender, flow); if (reason != null) TrafficRow.Count(row.ReasonCounts, reason); });
                    }
                    else
                    {
                        Totals.Discarded++;
                        ForEach(row => row.Discarded++);
                    }

                    break;
                }

                case MailLogRecordKind.Removed:
                    if (r.QueueId != null)
                    {
                        // the queue id may be used again for another message: it is a new message then (and memory stays flat)
                        _messages.Remove(r.QueueId);
                        _deferredQids.Remove(r.QueueId);
                        Undefer(r.QueueId, relay);
                    }

                    break;
            }
        }

        /// <summary>The totals of one record, as <see cref="Add"/> counts them, without rows.</summary>
        private void AddToTotals(MailLogRecord r)
        {
            switch (r.Kind)
            {
                case MailLogRecordKind.Received:
                case MailLogRecordKind.Pickup:
                {
                    var m = Remember(r);
                    m.Received = true;
                    Totals.Received++;
                    if (r.Mta == "exim")
                    {
                        m.Counted = true;
                        CountSender(m, r.Sender ?? "", r.Size);
                    }

                    break;
                }

                case MailLogRecordKind.QueueSender:
                {
                    var m = Remember(r);
                    if (!m.Counted && m.Received)
                    {
                        m.Counted = true;
                        CountSender(m, r.Sender ?? "", r.Size);
                    }

                    break;
                }

                case MailLogRecordKind.Delivery:
                {
                    MessageState? m = null;
                    if (r.QueueId != null)
                    {
                        _messages.TryGetValue(r.QueueId, out m);
                    }

                    CountDelivery(r, m);
                    break;
                }

                case MailLogRecordKind.Expired:
                    if (r.QueueId != null && _messages.TryGetValue(r.QueueId, out var em) && em.Deferred != null)
                    {
                        Totals.Expired += em.Deferred.Count;
                        em.Deferred = null;
                    }

                    break;
                case MailLogRecordKind.Rejected:
                    Totals.Rejected++;
                    Refused(r);
                    break;
                case MailLogRecordKind.Discarded:
                    Totals.Discarded++;
                    Refused(r);
                    break;
                case MailLogRecordKind.Removed:
                    if (r.QueueId != null)
                    {
                        _messages.Remove(r.QueueId);
                        _deferredQids.Remove(r.QueueId);
                    }

                    break;
            }
        }

        /// <summary>
        /// A message cleanup refuses or discards (header, body, end of message) never reaches the queue: no "removed"
        /// follows. (smtpd's refusals with a queue id are of one recipient; the message may go on with the others.)
        /// </summary>
        private void Refused(MailLogRecord r)
        {
            if (r.QueueId != null && r.Daemon == "cleanup")
            {
                _messages.Remove(r.QueueId);
                _deferredQids.Remove(r.QueueId);
            }
        }

        /// <summary>
        /// Drops what a log never closes: a message received but never handed to the queue manager a day later (a
        /// session that broke off), and any message or deferral not heard of for seven days (Postfix gives up after
        /// five by default). Run once an hour of log time: memory stays flat however long the log.
        /// </summary>
        private void Sweep(DateTimeOffset now)
        {
            List<string>? old = null;
            var day = now.AddDays(-1);
            var week = now.AddDays(-7);
            foreach (var m in _messages)
            {
                if (m.Value.Seen < week || (!m.Value.Counted && m.Value.Seen < day))
                {
                    (old ??= new List<string>()).Add(m.Key);
                }
            }

            foreach (var d in _deferredQids)
            {
                if (d.Value < week && !_messages.ContainsKey(d.Key))
                {
                    (old ??= new List<string>()).Add(d.Key);
                }
            }

            if (old != null)
            {
                foreach (var qid in old)
                {
                    _messages.Remove(qid);
                    _deferredQids.Remove(qid);
                }
            }
        }

        /// <summary>The totals of a delivery line (both paths count them here).</summary>
        private void CountDelivery(MailLogRecord r, MessageState? m)
        {
            switch (r.Status)
            {
                case "sent":
                    Totals.Delivered++;
                    if (m != null && m.Size > 0)
                    {
                        Totals.BytesDelivered += m.Size;
                    }

                    if (r.Recipient != null)
                    {
                        // pflogsumm: the address with its domain lower-cased; the domain is what follows the first '@'
                        // (a function of the address: looked at once per distinct recipient)
                        var rcpt = LowerDomain(r.Recipient);
                        if (Totals.RecipientSet.Add(rcpt))
                        {
                            var at = rcpt.IndexOf('@');
                            Totals.RecipientDomainSet.Add(at > 0 ? rcpt.Substring(at + 1) : rcpt);
                        }
                    }

                    m?.Deferred?.Remove(r.Recipient ?? "");
                    break;
                case "forwarded":
                    Totals.Forwarded++;
                    break;
                case "deferred":
                    Totals.Deferrals++;
                    if (r.QueueId != null)
                    {
                        if (!_deferredQids.ContainsKey(r.QueueId))
                        {
                            Totals.Deferred++;
                        }

                        _deferredQids[r.QueueId] = r.Time;
                    }

                    if (m != null)
                    {
                        m.Seen = r.Time;
                    }

                    if (m != null && r.Recipient != null)
                    {
                        (m.Deferred ??= new HashSet<string>(StringComparer.OrdinalIgnoreCase)).Add(r.Recipient);
                    }

                    break;
                case "bounced":
                    Totals.Bounced++;
                    m?.Deferred?.Remove(r.Recipient ?? "");
                    break;
                case "expired":
                    Totals.Expired++;
                    m?.Deferred?.Remove(r.Recipient ?? "");
                    break;
            }
        }

        /// <summary>Adds the items of a MailOps send job (its journal): sent, deferred and failed recipients.</summary>
        public void AddJournal(SendJobRecord job, IEnumerable<SendItem> items)
        {
            if (job == null || items == null)
            {
                throw new ArgumentNullException(job == null ? nameof(job) : nameof(items));
            }

            var sender = job.Template.From;
            var flow = job.Flow ?? _options.Flows?.Match(sender, null);
            foreach (var item in items)
            {
                if ((_options.Since.HasValue && item.UpdatedAt < _options.Since.Value) || (_options.Until.HasValue && item.UpdatedAt >= _options.Until.Value))
                {
                    continue;
                }

                Totals.Lines++;
                Select(item.UpdatedAt, sender, "mailops", item.Address, job.Relay, flow);
                switch (item.State)
                {
                    case SendItemStates.Sent:
                    case SendItemStates.PossiblyDuplicated:
                        ForEach(row => { row.Messages++; row.Recipients++; row.Delivered++; Tag(row, sender, flow); });
                        Totals.Received++;
                        Totals.Delivered++;
                        break;
                    case SendItemStates.Deferred:
                    {
                        var reason = Reason(item.Reply, null);
                        ForEach(row => { row.Deferred++; Tag(row, sender, flow); if (reason != null) { TrafficRow.Count(row.ReasonCounts, reason); if (PushBackReasons.Contains(reason)) row.BlockReplies++; } });
                        Totals.Deferrals++;
                        break;
                    }

                    case SendItemStates.Failed:
                    {
                        var reason = Reason(item.Reply, null);
                        ForEach(row => { row.Messages++; row.Recipients++; row.Bounced++; Tag(row, sender, flow); if (reason != null) { TrafficRow.Count(row.ReasonCounts, reason); if (PushBackReasons.Contains(reason)) row.BlockReplies++; } });
                        Totals.Received++;
                        Totals.Bounced++;
                        break;
                    }
                }

                Totals.First = Totals.First == null || item.UpdatedAt < Totals.First ? item.UpdatedAt : Totals.First;
                Totals.Last = Totals.Last == null || item.UpdatedAt > Totals.Last ? item.UpdatedAt : Totals.Last;
            }
        }

        private void AddDelivery(MailLogRecord r, string relay)
        {
            MessageState? m = null;
            if (r.QueueId != null)
            {
                _messages.TryGetValue(r.QueueId, out m);
            }

            if (m != null && m.Hop)
            {
                return;
            }

            var sender = m?.Sender;
            var flow = m?.Flow;
            Select(r.Time, sender, m?.Client, r.Recipient, relay, flow);
            if (r.Mta == "exim" && m != null && r.Recipient != null)
            {
                // Exim has no recipient count on arrival: count each recipient at its first delivery line
                m.SeenRecipients ??= new HashSet<string>(StringComparer.OrdinalIgnoreCase);
                if (m.SeenRecipients.Add(r.Recipient))
                {
                    ForEach(row => row.Recipients++);
                }
            }

            CountDelivery(r, m);
            switch (r.Status)
            {
                case "sent":
                    ForEach(row => row.Delivered++); // the message was tagged when it was received
                    break;
                case "forwarded":
                    ForEach(row => row.Forwarded++);
                    break;
                case "deferred":
                {
                    var reason = Reason(r.Text, r.Dsn);
                    var pushBack = reason != null && PushBackReasons.Contains(reason);
                    var queued = Defer(r.QueueId, relay);
                    ForEach(row =>
                    {
                        row.Deferred++;
                        Tag(row, sender, flow);
                        if (reason != null)
                        {
                            TrafficRow.Count(row.ReasonCounts, reason);
                        }

                        if (pushBack)
                        {
                            row.BlockReplies++;
                        }

                        if (row.Dimension == TrafficDimension.Total || row.Dimension == TrafficDimension.Relay)
                        {
                            row.DeferredQueue = Math.Max(row.DeferredQueue, row.Dimension == TrafficDimension.Total ? _deferredQueue : queued);
                        }
                    });
                    break;
                }

                case "bounced":
                case "expired":
                {
                    var reason = Reason(r.Text, r.Dsn);
                    var pushBack = reason != null && PushBackReasons.Contains(reason);
                    var bounced = r.Status == "bounced";
                    ForEach(row =>
                    {
                        if (bounced)
                        {
                            row.Bounced++;
                        }
                        else
                        {
                            row.Expired++;
                        }

                        Tag(row, sender, flow);
                        if (reason != null)
                        {
                            TrafficRow.Count(row.ReasonCounts, reason);
                        }

                        if (pushBack)
                        {
                            row.BlockReplies++;
                        }
                    });
                    break;
                }
            }
        }

        private int Defer(string? qid, string relay)
        {
            if (!_deferredByRelay.TryGetValue(relay, out var set))
            {
                _deferredByRelay[relay] = set = new HashSet<string>(StringComparer.Ordinal);
            }

            if (qid != null && set.Add(qid))
            {
                _deferredQueue++;
            }

            return set.Count;
        }

        private void Undefer(string? qid, string relay)
        {
            if (qid != null && _deferredByRelay.TryGetValue(relay, out var set) && set.Remove(qid))
            {
                _deferredQueue--;
            }
        }

        private void CountSender(MessageState m, string sender, long size)
        {
            // pflogsumm: the domain part lower-cased, "from=<>" for the null sender; the sending domain is what follows
            // "local@" or, without one, the client's domain (the address itself for a message picked up locally)
            var key = sender.Length == 0 ? "from=<>" : LowerDomain(sender);
            var at = key.IndexOf('@');
            var ownDomain = at > 0 && at < key.Length - 1;
            Totals.SenderMessages.TryGetValue(key, out var n);
            Totals.SenderMessages[key] = n + 1;
            if (!ownDomain)
            {
                Totals.SendingDomains.Add(m.Client == "pickup" ? key : ClientDomain(m.Client) ?? key);
            }
            else if (n == 0)
            {
                Totals.SendingDomains.Add(key.Substring(at + 1)); // a function of the address: once per sender
            }

            Totals.BytesReceived += Math.Max(0, size);
        }

        private MessageState Remember(MailLogRecord r)
        {
            var qid = r.QueueId ?? "";
            if (!_messages.TryGetValue(qid, out var m))
            {
                if (_messages.Count >= MaxMessages)
                {
                    _messages.Clear(); // a log that never says "removed": bounded memory; later lines of these messages lose their sender
                }

                _messages[qid] = m = new MessageState();
            }

            m.Seen = r.Time;
            if (r.Kind == MailLogRecordKind.Received)
            {
                m.Client = r.Client;
            }
            else if (r.Kind == MailLogRecordKind.Pickup)
            {
                m.Client = "pickup";
            }

            if (r.Sender != null && (r.Kind == MailLogRecordKind.QueueSender || r.Mta == "exim"))
            {
                m.Sender = r.Sender.Length == 0 ? "" : r.Sender;
                m.Size = r.Size;
            }

            if (m.Sender != null || m.Client != null)
            {
                m.Flow = _options.Flows?.Match(m.Sender, m.Client);
            }

            return m;
        }

        private string RelayOf(MailLogRecord r)
        {
            if (_options.Relay != null)
            {
                return _options.Relay;
            }

            var instance = r.Instance ?? r.Mta;
            return _options.RelayByInstance != null && _options.RelayByInstance.TryGetValue(instance, out var name) ? name : instance;
        }

        private string? Reason(string? text, string? dsn)
        {
            if (!_options.ClassifyReasons || string.IsNullOrEmpty(text))
            {
                return null;
            }

            var key = (dsn ?? "") + "|" + text;
            if (_reasonCache.TryGetValue(key, out var reason))
            {
                return reason;
            }

            var code = ReplyCode(text!);
            reason = BounceClassifier.Classify(text, dsn, code);
            if (_reasonCache.Count > 20000)
            {
                _reasonCache.Clear();
            }

            _reasonCache[key] = reason;
            return reason;
        }

        /// <summary>The SMTP reply code in a log text: at its start, or after "said: ".</summary>
        internal static int ReplyCode(string text)
        {
            var i = text.IndexOf("said: ", StringComparison.Ordinal);
            var at = i >= 0 ? i + 6 : 0;
            if (text.Length >= at + 3 && char.IsDigit(text[at]) && char.IsDigit(text[at + 1]) && char.IsDigit(text[at + 2]) &&
                (text.Length == at + 3 || text[at + 3] == ' ' || text[at + 3] == '-'))
            {
                return (text[at] - '0') * 100 + (text[at + 1] - '0') * 10 + (text[at + 2] - '0');
            }

            return 0;
        }

        private void SelectWithoutSender(DateTimeOffset time, string? client, string relay)
        {
            Array.Clear(_scratch, 0, _scratch.Length);
            var start = Floor(time);
            _scratch[0] = Row(start, TrafficDimension.Total, "*");
            if (_dims[(int)TrafficDimension.Relay])
            {
                _scratch[(int)TrafficDimension.Relay] = Row(start, TrafficDimension.Relay, relay);
            }

            if (_dims[(int)TrafficDimension.Client] && client != null)
            {
                _scratch[(int)TrafficDimension.Client] = Row(start, TrafficDimension.Client, client);
            }
        }

        private void Select(DateTimeOffset time, string? sender, string? client, string? recipient, string relay, string? flow)
        {
            Array.Clear(_scratch, 0, _scratch.Length);
            var start = Floor(time);
            _scratch[0] = Row(start, TrafficDimension.Total, "*");
            if (_dims[(int)TrafficDimension.Sender] && sender != null)
            {
                _scratch[(int)TrafficDimension.Sender] = Row(start, TrafficDimension.Sender, sender.Length == 0 ? "<>" : sender);
            }

            if (_dims[(int)TrafficDimension.SenderDomain] && sender != null)
            {
                _scratch[(int)TrafficDimension.SenderDomain] = Row(start, TrafficDimension.SenderDomain, sender.Length == 0 ? "<>" : Domain(sender));
            }

            if (_dims[(int)TrafficDimension.Flow])
            {
                _scratch[(int)TrafficDimension.Flow] = Row(start, TrafficDimension.Flow, flow ?? "(none)");
            }

            if (_dims[(int)TrafficDimension.Relay])
            {
                _scratch[(int)TrafficDimension.Relay] = Row(start, TrafficDimension.Relay, relay);
            }

            if (_dims[(int)TrafficDimension.Client] && client != null)
            {
                _scratch[(int)TrafficDimension.Client] = Row(start, TrafficDimension.Client, client);
            }

            if (_dims[(int)TrafficDimension.RecipientDomain] && recipient != null)
            {
                _scratch[(int)TrafficDimension.RecipientDomain] = Row(start, TrafficDimension.RecipientDomain, Domain(recipient));
            }
        }

        private void ForEach(Action<TrafficRow> action)
        {
            foreach (var row in _scratch)
            {
                if (row != null)
                {
                    action(row);
                }
            }
        }

        /// <summary>Who is behind a row: the recipients each sender and flow handed in, and each failure of theirs.</summary>
        private static void Tag(TrafficRow row, string? sender, string? flow, long n = 1)
        {
            if (row.Dimension != TrafficDimension.Sender && sender != null)
            {
                TrafficRow.Count(row.SenderCounts, sender.Length == 0 ? "<>" : sender, n);
            }

            if (row.Dimension != TrafficDimension.Flow)
            {
                TrafficRow.Count(row.FlowCounts, flow ?? "(none)", n);
            }
        }

        private TrafficRow Row(DateTimeOffset start, TrafficDimension dimension, string key)
        {
            var k = new RowKey(start.UtcTicks, dimension, key);
            if (!_rows.TryGetValue(k, out var row))
            {
                _rows[k] = row = new TrafficRow(start, _options.Bucket, dimension, key);
            }

            return row;
        }

        /// <summary>The start of the bucket a time falls in (days start at midnight in the time's own offset).</summary>
        public DateTimeOffset Floor(DateTimeOffset t)
        {
            switch (_options.Bucket)
            {
                case TrafficBucket.Minute:
                    return new DateTimeOffset(t.Ticks - (t.Ticks % TimeSpan.TicksPerMinute), t.Offset);
                case TrafficBucket.Hour:
                    return new DateTimeOffset(t.Ticks - (t.Ticks % TimeSpan.TicksPerHour), t.Offset);
                default:
                    return new DateTimeOffset(t.Date, t.Offset);
            }
        }

        private static string Domain(string? address)
        {
            if (string.IsNullOrEmpty(address))
            {
                return "";
            }

            var at = address!.LastIndexOf('@');
            return (at >= 0 ? address.Substring(at + 1) : address).ToLowerInvariant();
        }

        private static string LowerDomain(string address)
        {
            var at = address.IndexOf('@');
            if (at < 0)
            {
                return address;
            }

            for (var i = at + 1; i < address.Length; i++)
            {
                if (address[i] >= 'A' && address[i] <= 'Z' || address[i] > 127)
                {
                    return address.Substring(0, at) + address.Substring(at).ToLowerInvariant();
                }
            }

            return address; // already lower case: no copy
        }

        /// <summary>
        /// pflogsumm's gimme_domain, to the letter: the address of "unknown[1.2.3.4]" (or of a client without a name);
        /// else the name, shortened and lower-cased to its last two labels when the last is three letters long
        /// ("mail.example.org" -> "example.org") or to its last three when they end in a two-letter label after a
        /// two- or three-letter one ("smtp.example.co.uk" -> "example.co.uk"); any other name is kept as it is
        /// ("mail.example.de", "a.b.example.info").
        /// </summary>
        internal static string? ClientDomain(string? client)
        {
            if (client == null)
            {
                return null;
            }

            string? name = null;
            string? address = null;
            var b = client.IndexOf('[');
            var slash = client.IndexOf('/');
            if (b >= 0 && IsIPv4Then(client, b + 1, ']'))
            {
                // "name[1.2.3.4]"
                name = client.Substring(0, b);
                address = client.Substring(b + 1, client.IndexOf(']', b) - b - 1);
            }
            else if (slash >= 0 && slash + 1 < client.Length && IsHexDotColon(client[slash + 1]))
            {
                // older Postfix: "name/1.2.3.4"
                var e = slash + 1;
                while (e < client.Length && IsHexDotColon(client[e]))
                {
                    e++;
                }

                name = client.Substring(0, slash);
                address = client.Substring(slash + 1, e - slash - 1);
            }
            else
            {
                // "name[2001:db8::1]", "name(addr)", "name[addr]:port"
                var open = client.IndexOfAny(OpenBrackets);
                var close = open < 0 ? -1 : client.IndexOfAny(CloseBrackets, open + 1);
                if (close > open + 1 && IsPortTail(client, close + 1))
                {
                    name = client.Substring(0, open);
                    address = client.Substring(open + 1, close - open - 1);
                }
            }

            if (string.IsNullOrEmpty(name) || name == "unknown")
            {
                return address;
            }

            var labels = name!.Split('.');
            var n = labels.Length;
            if (n >= 3 && labels[n - 1].Length == 3 && labels[n - 2].Length > 0)
            {
                return (labels[n - 2] + "." + labels[n - 1]).ToLowerInvariant();
            }

            if (n >= 4 && labels[n - 3].Length > 0 && (labels[n - 2].Length == 2 || labels[n - 2].Length == 3) && labels[n - 1].Length == 2)
            {
                return (labels[n - 3] + "." + labels[n - 2] + "." + labels[n - 1]).ToLowerInvariant();
            }

            return name;
        }

        private static readonly char[] OpenBrackets = { '[', '(', '/' };
        private static readonly char[] CloseBrackets = { ']', ')' };

        private static bool IsHexDotColon(char c) => (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.' || c == ':';

        private static bool IsPortTail(string s, int i)
        {
            if (i < s.Length && s[i] == ':')
            {
                i++;
            }

            for (; i < s.Length; i++)
            {
                if (s[i] < '0' || s[i] > '9')
                {
                    return false;
                }
            }

            return true;
        }

        /// <summary>Whether s holds a dotted IPv4 address (1-3 digits per part) from i, followed by <paramref name="end"/>.</summary>
        private static bool IsIPv4Then(string s, int i, char end)
        {
            for (var part = 0; part < 4; part++)
            {
                var digits = 0;
                while (i < s.Length && s[i] >= '0' && s[i] <= '9' && digits < 4)
                {
                    i++;
                    digits++;
                }

                if (digits < 1 || digits > 3 || i >= s.Length || s[i] != (part < 3 ? '.' : end))
                {
                    return false;
                }

                i++;
            }

            return true;
        }

        /// <summary>
        /// The queue id the next server gave a delivered message ("250 2.0.0 Ok: queued as 4XyZ12", Exim's "id=..."
        /// is not read), or null: how a message handed from one of your relays to another is recognised in the second log.
        /// </summary>
        public static string? NextHopQueueId(MailLogRecord record)
        {
            if (record == null || record.Kind != MailLogRecordKind.Delivery || record.Status != "sent")
            {
                return null;
            }

            var text = record.Text;
            var at = text == null ? -1 : text.IndexOf("queued as ", StringComparison.Ordinal);
            if (at < 0)
            {
                return null;
            }

            var start = at + "queued as ".Length;
            var end = start;
            while (end < text!.Length && (char.IsLetterOrDigit(text[end])))
            {
                end++;
            }

            return end > start ? text.Substring(start, end - start) : null;
        }

        private sealed class MessageState
        {
            public bool Received;

            /// <summary>The next hop of a message another relay logged (see <see cref="TrafficOptions.HopQueueIds"/>): not counted again.</summary>
            public bool Hop;
            public bool Counted;
            public string? Sender;
            public string? Client;
            public string? Flow;
            public long Size;
            public HashSet<string>? Deferred;
            public HashSet<string>? SeenRecipients;

            /// <summary>The time of the message's last line that named its sender, client or a deferral.</summary>
            public DateTimeOffset Seen;
        }

        private readonly struct RowKey : IEquatable<RowKey>
        {
            private readonly long _ticks;
            private readonly TrafficDimension _dimension;
            private readonly string _key;

            public RowKey(long ticks, TrafficDimension dimension, string key)
            {
                _ticks = ticks;
                _dimension = dimension;
                _key = key;
            }

            public bool Equals(RowKey other) => _ticks == other._ticks && _dimension == other._dimension && string.Equals(_key, other._key, StringComparison.OrdinalIgnoreCase);

            public override bool Equals(object? obj) => obj is RowKey k && Equals(k);

            public override int GetHashCode() => unchecked((_ticks.GetHashCode() * 397) ^ ((int)_dimension * 31) ^ StringComparer.OrdinalIgnoreCase.GetHashCode(_key));
        }
    }
}
