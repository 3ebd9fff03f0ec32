using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using MailOps.Core.Bounces;
using MailOps.Core.Config;
using MailOps.Core.Store;
using MimeKit;
using MimeKit.Cryptography;

namespace MailOps.Core.Sending
{
    /// <summary>What a running job tells its caller (from any thread).</summary>
    public interface ISendObserver
    {
        void Progress(int done, int total, double perSecond);

        /// <summary>Something an administrator should know (failover, a pause, a relay down).</summary>
        void Warning(string message);

        void Verbose(string message);
    }

    /// <summary>
    /// Sends a job's pending recipients through a pool of SMTP connections (MailKit; several messages per connection,
    /// PIPELINING when offered), paced by rate limits, retrying temporary failures with exponential backoff and jitter,
    /// recording permanent failures as bounces, and stopping the whole job when replies say the relay or provider
    /// treats it as spam or throttles it (circuit breaker). Every state change of a recipient is written to the
    /// journal before the next step, so a job killed at any point resumes without losing or silently repeating a
    /// message: a recipient whose message body had been fully transmitted when the connection (or the process) died
    /// is marked possibly-duplicated, never resent.
    /// </summary>
    public sealed class SendEngine : IDisposable
    {
        private static readonly Regex QueueId = new Regex(@"queued as ([A-Za-z0-9]+)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
        private static readonly HashSet<string> BreakerReasons = new HashSet<string>
        {
            BounceReasons.Blocked, BounceReasons.SpamDetected, BounceReasons.PolicyViolation, BounceReasons.BadReputation,
            BounceReasons.Speeding, BounceReasons.TooManyConn, BounceReasons.Rejected,
        };

        private static readonly HashSet<int> BreakerCodes = new HashSet<int> { 421, 450, 451, 550, 553, 554 };

        private readonly BounceStore _store;
        private readonly SendOptions _options;
        private readonly SemaphoreSlim _storeLock = new SemaphoreSlim(1, 1);
        private readonly List<string> _notes = new List<string>();
        private volatile bool _paused;
        private volatile bool _relayDown;
        private string? _pauseReason;
        private DateTimeOffset? _pausedUntil;
        private volatile SendRelay _relay;
        private int _sentThisRun;
        private int _done;
        private JournalWriter? _journal;

        public SendEngine(BounceStore store, SendOptions options)
        {
            _store = store ?? throw new ArgumentNullException(nameof(store));
            _options = options ?? throw new ArgumentNullException(nameof(options));
            _relay = options.Relay ?? throw new ArgumentException("A relay is needed.", nameof(options));
        }

        public void Dispose()
        {
            _journal?.Dispose();
            _journal = null;
            _storeLock.Dispose();
        }

        /// <summary>True when a reply (code and classified reason) means "stop sending": blocked, spam, policy, reputation, rate.</summary>
        public static bool TripsBreaker(int code, string reason) => BreakerCodes.Contains(code) && BreakerReasons.Contains(reason);

        /// <summary>Runs the job until nothing is left to send now, the breaker trips, the relay is down, or Ctrl+C.</summary>
        public async Task<SendJobSummary> RunAsync(SendJobRecord job, ISendObserver observer, CancellationToken cancellationToken)
        {
            if (job == null || observer == null)
            {
                throw new ArgumentNullException(job == null ? nameof(job) : nameof(observer));
            }

            var clock = System.Diagnostics.Stopwatch.StartNew();
            var template = job.Template;
            await Locked(() => _store.SetJobStateAsync(job.Name, SendJobStates.Running, null, null, $"{Environment.UserName}@{Environment.MachineName} ({System.Diagnostics.Process.GetCurrentProcess().Id})", CancellationToken.None)).ConfigureAwait(false);

            // a message whose body was on the wire when the last run died may have been delivered: report, never resend
            foreach (var item in await _store.LoadItemsAsync(job.Name, new[] { SendItemStates.InData }, cancellationToken).ConfigureAwait(false))
            {
                item.State = SendItemStates.PossiblyDuplicated;
                item.Reply = "the previous run stopped after this message's body was sent and before the server's reply";
                await _store.UpdateItemAsync(item, CancellationToken.None).ConfigureAwait(false);
                Note(observer, $"{item.Address}: possibly duplicated (the previous run stopped while its message was being accepted)");
            }

            var work = (await _store.LoadItemsAsync(job.Name, new[] { SendItemStates.Pending, SendItemStates.Deferred }, cancellationToken).ConfigureAwait(false)).ToList();
            var suppressed = await _store.SuppressedAmongAsync(work.Select(i => i.Address).ToList(), cancellationToken).ConfigureAwait(false);
            foreach (var item in work.Where(i => suppressed.Contains(i.Address)).ToList())
            {
                item.State = SendItemStates.Skipped;
                item.Reply = "suppressed in the MailOps store";
                await _store.UpdateItemAsync(item, CancellationToken.None).ConfigureAwait(false);
                work.Remove(item);
            }

            if (suppressed.Count > 0)
            {
                observer.Verbose($"{suppressed.Count} suppressed address(es) skipped.");
            }

            var total = work.Count;
            var dkim = CreateSigner(template);
            _journal = new JournalWriter(items =>
            {
                _storeLock.Wait();
                try
                {
                    _store.UpdateItems(items);
                }
                finally
                {
                    _storeLock.Release();
                }
            });
            var channel = Channel.CreateBounded<SendItem>(new BoundedChannelOptions(Math.Max(1, _options.MaxConnections)) { SingleReader = false, SingleWriter = true });
            var returned = new ConcurrentQueue<SendItem>();
            var inFlight = 0;
            var workers = Enumerable.Range(0, Math.Max(1, _options.MaxConnections))
                .Select(w => Task.Run(() => WorkerAsync(w, job, template, dkim, channel.Reader, returned, observer, total, clock, cancellationToken), CancellationToken.None)).ToList();

            // the dispatcher: the rate limits, per-domain pacing and retry times decide which recipient goes next
            var queue = new List<SendItem>(work);
            var domainReady = new Dictionary<string, DateTimeOffset>(StringComparer.OrdinalIgnoreCase);
            var globalInterval = Interval(_options.PerMinute, 60, _options.PerHour, 3600);
            var domainInterval = Interval(_options.PerDomainPerMinute, 60, 0, 0);
            var nextSlot = DateTimeOffset.MinValue;
            var retryDeadline = DateTimeOffset.UtcNow + _options.RetryWindow;
            try
            {
                while (!cancellationToken.IsCancellationRequested && !_paused && !_relayDown)
                {
                    while (returned.TryDequeue(out var back))
                    {
                        Interlocked.Decrement(ref inFlight);
                        if (back.State == SendItemStates.Pending || back.State == SendItemStates.Deferred)
                        {
                            queue.Add(back);
                        }
                    }

                    var now = DateTimeOffset.UtcNow;
                    SendItem? next = null;
                    foreach (var candidate in queue)
                    {
                        if ((candidate.NextAttempt ?? DateTimeOffset.MinValue) <= now && (!domainReady.TryGetValue(candidate.Domain, out var ready) || ready <= now))
                        {
                            next = candidate;
                            break;
                        }
                    }

                    if (next == null)
                    {
                        if (queue.Count == 0 && Volatile.Read(ref inFlight) == 0 && returned.IsEmpty)
                        {
                            break;
                        }

                        if (queue.Count > 0 && Volatile.Read(ref inFlight) == 0 && now > retryDeadline && queue.All(i => (i.NextAttempt ?? now) > now))
                        {
                            break; // only retries later than the retry window: they stay deferred in the journal
                        }

                        var wake = queue.Select(i => Max(i.NextAttempt ?? now, domainReady.TryGetValue(i.Domain, out var r) ? r : now)).DefaultIfEmpty(now.AddMilliseconds(20)).Min();
                        var wait = wake - now;
                        await Task.Delay(wait < TimeSpan.FromMilliseconds(2) ? TimeSpan.FromMilliseconds(2) : wait > TimeSpan.FromMilliseconds(200) ? TimeSpan.FromMilliseconds(200) : wait, cancellationToken).ConfigureAwait(false);
                        continue;
                    }

                    if (globalInterval > TimeSpan.Zero)
                    {
                        var slot = Max(nextSlot, DateTimeOffset.UtcNow);
                        var delay = slot - DateTimeOffset.UtcNow;
                        if (delay > TimeSpan.Zero)
                        {
                            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                        }

                        nextSlot = slot + globalInterval;
                        if (_paused || _relayDown)
                        {
                            break;
                        }
                    }

                    if (domainInterval > TimeSpan.Zero)
                    {
                        domainReady[next.Domain] = DateTimeOffset.UtcNow + domainInterval;
                    }

                    queue.Remove(next);
                    Interlocked.Increment(ref inFlight);
                    await channel.Writer.WriteAsync(next, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // Ctrl+C: what is in flight finishes its current step below; the rest stays pending in the journal
            }
            finally
            {
                channel.Writer.TryComplete();
            }

            await Task.WhenAll(workers).ConfigureAwait(false);
            _journal.Dispose(); // the last states are written before anything counts them
            _journal = null;
            var state = _paused ? SendJobStates.Paused : cancellationToken.IsCancellationRequested || _relayDown ? SendJobStates.Interrupted : SendJobStates.Completed;
            var counts = await _store.CountItemsAsync(job.Name, CancellationToken.None).ConfigureAwait(false);
            if (state == SendJobStates.Completed && ((counts.TryGetValue(SendItemStates.Pending, out var p) && p > 0) || (counts.TryGetValue(SendItemStates.Deferred, out var d) && d > 0)))
            {
                state = SendJobStates.Interrupted; // deferred retries left for a later run
            }

            await Locked(() => _store.SetJobStateAsync(job.Name, state, _pausedUntil, _pauseReason, null, CancellationToken.None)).ConfigureAwait(false);
            return new SendJobSummary(job.Name, state, _relay.Name, counts, clock.Elapsed, _sentThisRun, _pauseReason, _pausedUntil, _notes.ToList());
        }

        private static TimeSpan Interval(int perA, int secondsA, int perB, int secondsB)
        {
            var a = perA > 0 ? TimeSpan.FromTicks(TimeSpan.FromSeconds(secondsA).Ticks / perA) : TimeSpan.Zero;
            var b = perB > 0 ? TimeSpan.FromTicks(TimeSpan.FromSeconds(secondsB).Ticks / perB) : TimeSpan.Zero;
            return a > b ? a : b;
        }

        private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

        private void Note(ISendObserver observer, string message)
        {
            lock (_notes)
            {
                _notes.Add(message);
            }

            observer.Warning(message);
        }

        private async Task Locked(Func<Task> action)
        {
            await _storeLock.WaitAsync().ConfigureAwait(false);
            try
            {
                await action().ConfigureAwait(false);
            }
            finally
            {
                _storeLock.Release();
            }
        }

        private DkimSigner? CreateSigner(MessageTemplate template)
        {
            if (_options.DkimKeyFile == null)
            {
                return null;
            }

            var domain = _options.DkimDomain ?? template.From.Substring(template.From.LastIndexOf('@') + 1);
            return new DkimSigner(_options.DkimKeyFile, domain, _options.DkimSelector ?? "default", DkimSignatureAlgorithm.RsaSha256)
            {
                HeaderCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed,
                BodyCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed,
            };
        }

        private static readonly HeaderId[] SignedHeaders =
        {
            HeaderId.From, HeaderId.To, HeaderId.Subject, HeaderId.Date, HeaderId.MessageId, HeaderId.ReplyTo, HeaderId.MimeVersion, HeaderId.ContentType,
            HeaderId.ListUnsubscribe, HeaderId.ListUnsubscribePost,
        };

        /// <summary>The message for one recipient: the template filled in, bulk headers, the job header, DKIM.</summary>
        public static MimeMessage Build(MessageTemplate template, SendItem item, string jobName, DkimSigner? dkim)
        {
            if (template == null || item == null)
            {
                throw new ArgumentNullException(template == null ? nameof(template) : nameof(item));
            }

            MimeMessage message;
            if (item.EmlPath != null)
            {
                message = MimeMessage.Load(item.EmlPath);
            }
            else
            {
                message = new MimeMessage();
                message.From.Add(new MailboxAddress(template.FromName ?? "", template.From));
                if (template.ReplyTo != null)
                {
                    message.ReplyTo.Add(MailboxAddress.Parse(template.ReplyTo));
                }

                message.To.Add(MailboxAddress.Parse(item.Address));
                message.Subject = Personalizer.Fill(template.Subject, item.Fields, header: true);
                var body = new BodyBuilder
                {
                    TextBody = template.TextBody == null ? null : Personalizer.Fill(template.TextBody, item.Fields),
                    HtmlBody = template.HtmlBody == null ? null : Personalizer.Fill(template.HtmlBody, item.Fields, html: true),
                };
                foreach (var a in template.Attachments)
                {
                    body.Attachments.Add(a);
                }

                message.Body = body.ToMessageBody();
                message.MessageId = item.MessageId.Trim('<', '>');
            }

            message.Date = DateTimeOffset.UtcNow;
            message.Headers.Replace("X-MailOps-Job", jobName);
            if (template.Bulk)
            {
                message.Headers.Replace(HeaderId.Precedence, "bulk");
                var parts = new List<string>();
                if (template.UnsubscribeMailto != null)
                {
                    parts.Add("<mailto:" + Personalizer.Fill(template.UnsubscribeMailto, item.Fields, header: true, url: false) + ">");
                }

                if (template.UnsubscribeUrl != null)
                {
                    parts.Add("<" + Personalizer.Fill(template.UnsubscribeUrl, item.Fields, header: true, url: true) + ">");
                }

                if (parts.Count > 0)
                {
                    message.Headers.Replace(HeaderId.ListUnsubscribe, string.Join(", ", parts));
                }

                if (template.UnsubscribeUrl != null && template.UnsubscribeUrl.StartsWith("https:", StringComparison.OrdinalIgnoreCase))
                {
                    message.Headers.Replace(HeaderId.ListUnsubscribePost, "List-Unsubscribe=One-Click"); // RFC 8058
                }
            }
            else
            {
                message.Headers.Replace("Auto-Submitted", "auto-generated"); // RFC 3834
            }

            if (dkim != null)
            {
                message.Prepare(EncodingConstraint.SevenBit);
                dkim.Sign(message, SignedHeaders.Where(h => message.Headers.Contains(h)).ToList());
            }

            return message;
        }

        /// <summary>
        /// Group commit for the journal: the workers' state changes are written by one thread, as many as are waiting
        /// in one transaction. A durable write (before the final dot) waits for its commit; the others do not block.
        /// </summary>
        private sealed class JournalWriter : IDisposable
        {
            private readonly System.Collections.Concurrent.BlockingCollection<(SendItem Item, ManualResetEventSlim? Done, TaskCompletionSource<bool>? Task)> _queue =
                new System.Collections.Concurrent.BlockingCollection<(SendItem, ManualResetEventSlim?, TaskCompletionSource<bool>?)>();

            private readonly Action<IReadOnlyList<SendItem>> _write;
            private readonly Thread _thread;
            private Exception? _error;

            public JournalWriter(Action<IReadOnlyList<SendItem>> write)
            {
                _write = write;
                _thread = new Thread(Run) { IsBackground = true, Name = "MailOps journal" };
                _thread.Start();
            }

            public void WriteDurably(SendItem item)
            {
                using (var done = new ManualResetEventSlim())
                {
                    _queue.Add((item, done, null));
                    done.Wait();
                }

                if (_error != null)
                {
                    throw new IOException("The send journal could not be written: " + _error.Message, _error);
                }
            }

            public Task<bool> WriteAsync(SendItem item)
            {
                var tcs = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                _queue.Add((item, null, tcs));
                return tcs.Task;
            }

            private void Run()
            {
                var batch = new List<(SendItem Item, ManualResetEventSlim? Done, TaskCompletionSource<bool>? Task)>();
                foreach (var first in _queue.GetConsumingEnumerable())
                {
                    batch.Clear();
                    batch.Add(first);
                    while (batch.Count < 256 && _queue.TryTake(out var next))
                    {
                        batch.Add(next);
                    }

                    Exception? error = null;
                    try
                    {
                        _write(batch.Select(b => b.Item).Distinct().ToList());
                    }
                    catch (Exception e) when (e is System.Data.Common.DbException || e is InvalidOperationException || e is IOException)
                    {
                        error = e;
                        _error = e;
                    }

                    foreach (var b in batch)
                    {
                        b.Done?.Set();
                        if (error != null)
                        {
                            b.Task?.TrySetException(error);
                        }
                        else
                        {
                            b.Task?.TrySetResult(true);
                        }
                    }
                }
            }

            public void Dispose()
            {
                if (_queue.IsAddingCompleted)
                {
                    return;
                }

                _queue.CompleteAdding();
                _thread.Join();
                _queue.Dispose();
            }
        }

        /// <summary>Notes when the message body has been handed over completely (only the final dot and the reply remain).</summary>
        private sealed class DataProgress : ITransferProgress
        {
            private readonly Action _onComplete;
            private bool _fired;

            public DataProgress(Action onComplete)
            {
                _onComplete = onComplete;
            }

            public bool Started { get; private set; }
            public bool Complete { get; private set; }

            public void Report(long bytesTransferred, long totalSize)
            {
                Started = true;
                if (totalSize > 0 && bytesTransferred >= totalSize)
                {
                    Fire();
                }
            }

            public void Report(long bytesTransferred) => Started = true;

            public void Fire()
            {
                if (_fired)
                {
                    return;
                }

                _fired = true;
                Complete = true;
                _onComplete();
            }
        }

        private async Task WorkerAsync(int worker, SendJobRecord job, MessageTemplate template, DkimSigner? dkim, ChannelReader<SendItem> reader, ConcurrentQueue<SendItem> returned,
            ISendObserver observer, int total, System.Diagnostics.Stopwatch clock, CancellationToken cancellationToken)
        {
            SmtpClient? client = null;
            var onThisConnection = 0;
            var random = new Random(Guid.NewGuid().GetHashCode());
            try
            {
                while (await reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
                {
                    if (!reader.TryRead(out var item))
                    {
                        continue;
                    }

                    if (_paused || _relayDown || cancellationToken.IsCancellationRequested)
                    {
                        returned.Enqueue(item); // untouched: stays pending in the journal
                        continue;
                    }

                    if (client == null || !client.IsConnected || onThisConnection >= _options.MessagesPerConnection)
                    {
                        await CloseAsync(client).ConfigureAwait(false);
                        client = await ConnectAsync(observer, cancellationToken).ConfigureAwait(false);
                        onThisConnection = 0;
                        if (client == null)
                        {
                            returned.Enqueue(item);
                            continue;
                        }
                    }

                    MimeMessage message;
                    try
                    {
                        message = Build(template, item, job.Name, dkim);
                    }
                    catch (Exception e) when (e is FormatException || e is KeyNotFoundException || e is IOException || e is ParseException)
                    {
                        item.State = SendItemStates.Failed;
                        item.Reply = "the message could not be built: " + e.Message;
                        await _journal!.WriteAsync(item).ConfigureAwait(false);
                        returned.Enqueue(item);
                        continue;
                    }

                    var progress = new DataProgress(() =>
                    {
                        // durable before the final dot goes out: a crash from here on is reported, never resent
                        item.State = SendItemStates.InData;
                        _journal!.WriteDurably(item);
                    });
                    var sender = item.EmlPath != null ? message.From.Mailboxes.FirstOrDefault() ?? MailboxAddress.Parse(template.From) : MailboxAddress.Parse(template.From);
                    try
                    {
                        onThisConnection++;
                        var response = await client.SendAsync(FormatOptions.Default, message, sender, new[] { MailboxAddress.Parse(item.Address) }, cancellationToken, progress).ConfigureAwait(false);
                        item.State = SendItemStates.Sent;
                        item.Attempts++;
                        item.Reply = response;
                        item.NextAttempt = null;
                        var q = QueueId.Match(response ?? "");
                        item.QueueId = q.Success ? q.Groups[1].Value : null;
                        await _journal!.WriteAsync(item).ConfigureAwait(false);
                        Interlocked.Increment(ref _sentThisRun);
                    }
                    catch (SmtpCommandException e)
                    {
                        await HandleReplyAsync(item, (int)e.StatusCode, e.Message, observer, random).ConfigureAwait(false);
                        if (!client.IsConnected)
                        {
                            await CloseAsync(client).ConfigureAwait(false);
                            client = null;
                        }
                    }
                    catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && !progress.Started)
                    {
                        // Ctrl+C before the message was offered: it stays pending
                        await CloseAsync(client).ConfigureAwait(false);
                        client = null;
                        returned.Enqueue(item);
                        continue;
                    }
                    catch (Exception e) when (e is SmtpProtocolException || e is IOException || e is SocketException || e is ServiceNotConnectedException
                        || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested) || (e is OperationCanceledException && progress.Started))
                    {
                        // the connection broke (or Ctrl+C came during the transfer)
                        await CloseAsync(client).ConfigureAwait(false);
                        client = null;
                        if (progress.Complete)
                        {
                            item.State = SendItemStates.PossiblyDuplicated;
                            item.Reply = "the connection dropped after the message was sent and before the server replied: " + e.Message;
                            Note(observer, $"{item.Address}: possibly duplicated ({e.Message})");
                        }
                        else
                        {
                            item.Attempts++;
                            item.Reply = "connection lost before the message was accepted: " + e.Message;
                            item.State = item.Attempts >= _options.MaxAttempts ? SendItemStates.Deferred : SendItemStates.Pending;
                            item.NextAttempt = DateTimeOffset.UtcNow + Backoff(item.Attempts, random);
                        }

                        await _journal!.WriteAsync(item).ConfigureAwait(false);
                    }

                    var done = Interlocked.Increment(ref _done);
                    if (item.State != SendItemStates.Pending && item.State != SendItemStates.Deferred && (done % 25 == 0 || done == total))
                    {
                        observer.Progress(done, total, done / Math.Max(0.001, clock.Elapsed.TotalSeconds));
                    }

                    returned.Enqueue(item);
                }
            }
            finally
            {
                await CloseAsync(client).ConfigureAwait(false);
            }
        }

        private TimeSpan Backoff(int attempts, Random random)
        {
            var ticks = _options.RetryDelay.Ticks * Math.Pow(2, Math.Max(0, attempts - 1));
            ticks = Math.Min(ticks, _options.MaxRetryDelay.Ticks);
            lock (random)
            {
                ticks *= 0.8 + (random.NextDouble() * 0.4); // jitter: +-20%
            }

            return TimeSpan.FromTicks((long)ticks);
        }

        private async Task HandleReplyAsync(SendItem item, int code, string text, ISendObserver observer, Random random)
        {
            var reply = Regex.Replace($"{code} {text}", @"\s+", " ").Trim();
            var record = BounceParser.ParseDiagnosticLine(item.Address, reply, null, code, "send:" + item.Job);
            item.Reply = reply;
            if (TripsBreaker(code, record.Reason))
            {
                // about the sender, not the recipient: this one is retried when the job resumes
                item.State = SendItemStates.Deferred;
                item.NextAttempt = null;
                await _journal!.WriteAsync(item).ConfigureAwait(false);
                if (!_paused)
                {
                    _pausedUntil = DateTimeOffset.UtcNow + _options.PauseDuration;
                    _pauseReason = $"{_relay.Name} answered '{reply}' ({record.Reason}) for {item.Address}";
                    _paused = true;
                    Note(observer, $"Circuit breaker: the job '{item.Job}' is paused until {_pausedUntil:u}: {_pauseReason}. Resume-MailOpsSendJob -Name '{item.Job}' resumes it earlier.");
                }

                return;
            }

            item.Attempts++;
            if (code >= 400 && code < 500 && item.Attempts < _options.MaxAttempts)
            {
                item.State = SendItemStates.Deferred;
                item.NextAttempt = DateTimeOffset.UtcNow + Backoff(item.Attempts, random);
                await _journal!.WriteAsync(item).ConfigureAwait(false);
                return;
            }

            // permanent (or retries exhausted): a bounce in the store
            item.State = SendItemStates.Failed;
            item.NextAttempt = null;
            await _journal!.WriteAsync(item).ConfigureAwait(false);
            await Locked(() => _store.ImportAsync(new[] { BounceParser.WithTime(record, DateTimeOffset.UtcNow) }, _options.Flow, CancellationToken.None)).ConfigureAwait(false);
        }

        private async Task<SmtpClient?> ConnectAsync(ISendObserver observer, CancellationToken cancellationToken)
        {
            for (var attempt = 0; attempt < 4 && !cancellationToken.IsCancellationRequested && !_relayDown; attempt++)
            {
                var relay = _relay;
                var client = new SmtpClient { Timeout = relay.Config.TimeoutSeconds * 1000, LocalDomain = relay.Config.HeloName ?? "localhost" };
                client.ServerCertificateValidationCallback = (s, certificate, chain, errors) =>
                    relay.Config.SkipCertificateCheck || new Smtp.CertificateInspector(relay.TrustedCa).Inspect(relay.Config.Host, certificate, chain, errors, DateTime.UtcNow);
                try
                {
                    var options = relay.Config.Security switch
                    {
                        SmtpSecurity.None => SecureSocketOptions.None,
                        SmtpSecurity.SslOnConnect => SecureSocketOptions.SslOnConnect,
                        SmtpSecurity.StartTls => SecureSocketOptions.StartTls,
                        SmtpSecurity.StartTlsWhenAvailable => SecureSocketOptions.StartTlsWhenAvailable,
                        _ => SecureSocketOptions.Auto,
                    };
                    // our own socket, with Nagle's algorithm off: a message ends in small writes (the final dot, then the next
                    // MAIL FROM) that would otherwise wait for the server's delayed ACK, 40 ms each on Linux
                    var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    try
                    {
                        using (var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                        {
                            connectTimeout.CancelAfter(TimeSpan.FromSeconds(relay.Config.TimeoutSeconds));
                            var connect = socket.ConnectAsync(relay.Config.Host, relay.Config.Port);
                            if (await Task.WhenAny(connect, Task.Delay(Timeout.Infinite, connectTimeout.Token)).ConfigureAwait(false) != connect)
                            {
                                cancellationToken.ThrowIfCancellationRequested();
                                throw new SocketException((int)SocketError.TimedOut);
                            }

                            await connect.ConfigureAwait(false);
                        }
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }

                    await client.ConnectAsync(socket, relay.Config.Host, relay.Config.Port, options, cancellationToken).ConfigureAwait(false);
                    if (relay.Credential != null && client.Capabilities.HasFlag(SmtpCapabilities.Authentication))
                    {
                        if (!client.IsSecure && !relay.Config.AllowAuthWithoutTls)
                        {
                            throw new AuthenticationException($"{relay.Name}: the connection is not encrypted; MailOps will not send the password in clear (allowAuthWithoutTls).");
                        }

                        await client.AuthenticateAsync(relay.Credential, cancellationToken).ConfigureAwait(false);
                    }

                    return client;
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    client.Dispose();
                    return null;
                }
                catch (Exception e) when (e is SocketException || e is IOException || e is SmtpProtocolException || e is SmtpCommandException || e is OperationCanceledException || e is SslHandshakeException)
                {
                    client.Dispose();
                    if (_options.FailoverRelay != null && _relay == _options.Relay && attempt >= 1)
                    {
                        _relay = _options.FailoverRelay;
                        Note(observer, $"Failover: {_options.Relay.Name} is down ({e.Message}); sending through {_options.FailoverRelay.Name}.");
                        attempt = -1;
                        continue;
                    }

                    observer.Verbose($"{relay.Name}: cannot connect ({e.Message}); attempt {attempt + 1} of 4.");
                    try
                    {
                        await Task.Delay(TimeSpan.FromMilliseconds(500 * Math.Pow(2, attempt)), cancellationToken).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        return null;
                    }
                }
                catch (AuthenticationException e)
                {
                    client.Dispose();
                    if (!_relayDown)
                    {
                        _relayDown = true;
                        Note(observer, $"{relay.Name}: authentication failed ({e.Message}); the job stops.");
                    }

                    return null;
                }
            }

            if (!_relayDown && !cancellationToken.IsCancellationRequested)
            {
                _relayDown = true;
                Note(observer, $"{_relay.Name} cannot be reached; the job stops (the rest stays pending in the journal).");
            }

            return null;
        }

        private static async Task CloseAsync(SmtpClient? client)
        {
            if (client == null)
            {
                return;
            }

            try
            {
                if (client.IsConnected)
                {
                    using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
                    {
                        await client.DisconnectAsync(true, cts.Token).ConfigureAwait(false);
                    }
                }
            }
            catch (Exception e) when (e is IOException || e is SocketException || e is SmtpProtocolException || e is OperationCanceledException || e is SmtpCommandException)
            {
                // closing a connection that is already gone
            }
            finally
            {
                client.Dispose();
            }
        }
    }
}
