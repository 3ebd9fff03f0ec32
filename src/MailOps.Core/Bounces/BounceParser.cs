using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using MimeKit;

namespace MailOps.Core.Bounces
{
    /// <summary>What kind of message the bounce was.</summary>
    public enum BounceKind
    {
        /// <summary>An RFC 3464 delivery status notification.</summary>
        Dsn,

        /// <summary>A bounce in the MTA's or provider's own words (no machine-readable report).</summary>
        NonStandard,

        /// <summary>An automatic reply (RFC 3834): out of office, vacation.</summary>
        AutoReply,

        /// <summary>An abuse or opt-out report (ARF, RFC 5965).</summary>
        Feedback,

        /// <summary>A single diagnostic line from a log or an ESP export.</summary>
        DiagnosticLine,
    }

    /// <summary>One failed (or reported) recipient of a bounce.</summary>
    public sealed class BounceRecord
    {
        internal BounceRecord(BounceKind kind, string recipient, string? action, int replyCode, string? statusCode, string? diagnostic,
            string? remoteHost, DateTimeOffset? time, string reason, string? feedbackType, string? originalSender, string? originalMessageId,
            string? bounceMessageId, string? source)
        {
            Kind = kind;
            Recipient = recipient;
            Domain = recipient.Contains("@") ? recipient.Substring(recipient.LastIndexOf('@') + 1).ToLowerInvariant() : "";
            Action = action;
            ReplyCode = replyCode;
            StatusCode = statusCode;
            Diagnostic = diagnostic;
            RemoteHost = remoteHost;
            Time = time;
            Reason = reason;
            IsHard = BounceReasons.IsHard(reason, replyCode != 0 ? replyCode
                : statusCode != null && statusCode.StartsWith("5", StringComparison.Ordinal) ? 550
                : statusCode != null && statusCode.StartsWith("4", StringComparison.Ordinal) ? 450 : 0);
            IsInfrastructureFailure = BounceReasons.IsInfrastructure(reason, RemoteAnswered(diagnostic, remoteHost, replyCode));
            IsFailure = BounceReasons.IsFailure(reason) && !string.Equals(action, "delivered", StringComparison.OrdinalIgnoreCase);
            FeedbackType = feedbackType;
            OriginalSender = originalSender;
            OriginalMessageId = originalMessageId;
            BounceMessageId = bounceMessageId;
            Source = source;
        }

        public BounceKind Kind { get; }
        public string Recipient { get; }
        public string Domain { get; }

        /// <summary>The DSN action (failed, delayed, delivered, relayed, expanded), when the bounce gives one.</summary>
        public string? Action { get; }
        public int ReplyCode { get; }

        /// <summary>The RFC 3463 enhanced status code (5.1.1), when the bounce gives one.</summary>
        public string? StatusCode { get; }
        public string? Diagnostic { get; }
        public string? RemoteHost { get; }
        public DateTimeOffset? Time { get; }
        public string Reason { get; }
        public bool IsHard { get; }

        /// <summary>Nothing answered for the recipient (DNS failure, refused or timed-out connection, expired retries).</summary>
        public bool IsInfrastructureFailure { get; }
        public bool IsFailure { get; }
        public string? FeedbackType { get; }
        public string? OriginalSender { get; }
        public string? OriginalMessageId { get; }
        public string? BounceMessageId { get; }

        /// <summary>Where it came from (a file, an IMAP folder, a log line).</summary>
        public string? Source { get; }

        private static bool RemoteAnswered(string? diagnostic, string? remoteHost, int replyCode)
        {
            // A reply from the recipient's server means it was reached; a local DNS failure has no remote reply.
            var text = diagnostic ?? "";
            if (Regex.IsMatch(text, @"name service error|host or domain name not found|nxdomain|temporary failure in name resolution|no mx|unrouteable mail domain|dns", RegexOptions.IgnoreCase))
            {
                return false;
            }

            return remoteHost != null || Regex.IsMatch(text, @"(said|says|replied|answered|in reply to)", RegexOptions.IgnoreCase);
        }

        public override string ToString() => $"{Recipient}: {Reason}{(StatusCode != null ? " " + StatusCode : "")}";
    }

    /// <summary>
    /// Reads bounce mails: RFC 3464 delivery status notifications, bounces in an MTA's own words (Postfix, Exim, Sendmail,
    /// qmail, Exchange, providers), auto-replies (RFC 3834) and abuse reports (ARF), with CRLF, LF or CR line ends.
    /// </summary>
    public static partial class BounceParser
    {
        private static readonly Regex Address = new Regex(@"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+", RegexOptions.CultureInvariant);
        private static readonly Regex BounceSubject = new Regex(@"undeliver|delivery (status )?(notification|failure|report|problem)|returned mail|failure notice|mail delivery (failed|failure|system|subsystem)|non.?delivery|not delivered|could not be delivered|delivery has failed|rejected|bounce|mail system error|warning: could not send|delayed mail|message not delivered|returned to sender|unzustellbar|no se puede entregar|non remis|mail failure|permanent error|problem delivering|エラー|不達|配信|送信できません|returned mail", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
        private static readonly Regex DaemonSender = new Regex(@"^(mailer-daemon|post_?master|mail delivery (subsystem|system)|microsoftexchange|mail ?daemon|mdaemon|double-bounce|bounce)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
        private static readonly Regex AutoReplySubject = new Regex(@"out of (the )?office|auto(matic|matische)?[ -]?(reply|response|antwort)|vacation|absence|abwesen|autor[eé]ponse|r[eé]ponse automatique|away from|on leave", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        /// <summary>Parses a bounce file (.eml); never throws for malformed content (an empty list means "not a bounce").</summary>
        public static IReadOnlyList<BounceRecord> ParseFile(string path)
        {
            using (var stream = File.OpenRead(path))
            {
                return Parse(stream, path);
            }
        }

        public static IReadOnlyList<BounceRecord> Parse(Stream stream, string? source = null)
        {
            if (stream == null)
            {
                throw new ArgumentNullException(nameof(stream));
            }

            using (var buffer = new MemoryStream())
            {
                stream.CopyTo(buffer);
                var bytes = FixLineEndings(buffer.ToArray());
                if (bytes.Length > 5 && Encoding.ASCII.GetString(bytes, 0, 5) == "From ")
                {
                    return ParseMbox(bytes, source);
                }

                MimeMessage message;
                try
                {
                    message = MimeMessage.Load(new MemoryStream(bytes));
                }
                catch (FormatException)
                {
                    return Array.Empty<BounceRecord>();
                }

                return Parse(message, source);
            }
        }

        private static readonly Regex ComplaintSubject = new Regex(@"\b(complaint|abuse report|spam report|reported as (spam|junk))\b", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        /// <summary>
        /// Complaints that are not ARF: (1) the complained-of message returned whole as message/rfc822 under a
        /// "complaint" subject, with no report part (Microsoft's Junk Mail Reporting Program, JMRP, sends them so and
        /// names the complaining recipient in the returned copy's X-HmXmrOriginalRecipient header, as its sender
        /// documentation describes); (2) an unsubscribe request mailed to a List-Unsubscribe "mailto:" address
        /// (RFC 2369, RFC 8058): subject "unsubscribe", the requester in From.
        /// </summary>
        private static (string Recipient, string Type)? ComplaintWithoutReport(MimeMessage message, MimeMessage? original)
        {
            var subject = (message.Subject ?? "").Trim();
            var hasReport = message.BodyParts.Any(p => p.ContentType.IsMimeType("message", "delivery-status") || p.ContentType.IsMimeType("message", "global-delivery-status"));
            if (hasReport)
            {
                return null;
            }

            if (string.Equals(subject, "unsubscribe", StringComparison.OrdinalIgnoreCase) && message.From.Mailboxes.FirstOrDefault() is MailboxAddress requester)
            {
                return (requester.Address, "opt-out");
            }

            var returned = message.BodyParts.OfType<MessagePart>().Select(p => p.Message).FirstOrDefault(m => m != null);
            if (returned == null)
            {
                return null;
            }

            var named = returned.Headers["X-HmXmrOriginalRecipient"];
            if (named == null && (!ComplaintSubject.IsMatch(subject) || BounceSubject.IsMatch(subject)))
            {
                return null;
            }

            var recipient = CleanAddress(named ?? returned.To.Mailboxes.FirstOrDefault()?.Address ?? original?.To.Mailboxes.FirstOrDefault()?.Address ?? "");
            return recipient.Contains("@") ? (recipient, "abuse") : ((string, string)?)null;
        }

        /// <summary>A file saved from a mailbox (mbox: each mail after a "From " line) may hold several bounces: all are read.</summary>
        private static List<BounceRecord> ParseMbox(byte[] bytes, string? source)
        {
            var result = new List<BounceRecord>();
            var parser = new MimeParser(new MemoryStream(bytes), MimeFormat.Mbox);
            while (!parser.IsEndOfStream)
            {
                MimeMessage message;
                try
                {
                    message = parser.ParseMessage();
                }
                catch (FormatException)
                {
                    break;
                }

                result.AddRange(Parse(message, source));
            }

            return result;
        }

        /// <summary>A mail written with CR line ends only (old Mac) is turned into LF so MIME parsing sees its lines.</summary>
        internal static byte[] FixLineEndings(byte[] bytes)
        {
            if (Array.IndexOf(bytes, (byte)'\n') >= 0 || Array.IndexOf(bytes, (byte)'\r') < 0)
            {
                return bytes;
            }

            var copy = (byte[])bytes.Clone();
            for (var i = 0; i < copy.Length; i++)
            {
                if (copy[i] == (byte)'\r')
                {
                    copy[i] = (byte)'\n';
                }
            }

            return copy;
        }

        public static IReadOnlyList<BounceRecord> Parse(MimeMessage message, string? source = null) => Parse(message, source, 0);

        private static IReadOnlyList<BounceRecord> Parse(MimeMessage message, string? source, int depth)
        {
            if (message == null)
            {
                throw new ArgumentNullException(nameof(message));
            }

            message = RepairBrokenMultipart(message);
            var bounceId = message.MessageId;
            var original = OriginalHeaders(message);
            var originalSender = original?.From.Mailboxes.FirstOrDefault()?.Address;
            var originalId = original?.MessageId;

            // ARF abuse/opt-out reports
            var feedbackText = message.BodyParts.Where(p => p.ContentType.IsMimeType("message", "feedback-report")).Select(PartText).FirstOrDefault()
                ?? message.BodyParts.OfType<TextPart>().Select(t => t.Text ?? "").FirstOrDefault(t => Regex.IsMatch(t, @"^Feedback-Type:\s*\S", RegexOptions.Multiline | RegexOptions.IgnoreCase) && Regex.IsMatch(t, @"^User-Agent:|^Version:", RegexOptions.Multiline | RegexOptions.IgnoreCase));
            if (feedbackText != null)
            {
                var fields = ParseFields(feedbackText);
                var type = Field(fields, "Feedback-Type")?.Trim().ToLowerInvariant();
                var rcpts = Regex.Matches(feedbackText, @"^(?:Original-Rcpt-To|Removal-Recipient):\s*(.+)$", RegexOptions.Multiline | RegexOptions.IgnoreCase)
                    .Cast<Match>().Select(m => CleanAddress(m.Groups[1].Value)).Where(a => a.Length > 0).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
                if (rcpts.Count == 0)
                {
                    rcpts.Add(CleanAddress(original?.To.Mailboxes.FirstOrDefault()?.Address ?? message.To.Mailboxes.FirstOrDefault()?.Address ?? ""));
                }

                return rcpts.Select(r => new BounceRecord(BounceKind.Feedback, r, null, 0, null, null, null, message.Date,
                    BounceReasons.Feedback, type, Field(fields, "Original-Mail-From") ?? originalSender, originalId, bounceId, source)).ToList();
            }

            var complaint = ComplaintWithoutReport(message, original);
            if (complaint != null)
            {
                return new[] { new BounceRecord(BounceKind.Feedback, complaint.Value.Recipient, null, 0, null, null, null, message.Date, BounceReasons.Feedback,
                    complaint.Value.Type, originalSender, originalId, bounceId, source) };
            }

            // RFC 3464 delivery status
            var dsnText = message.BodyParts.Where(p => p.ContentType.IsMimeType("message", "delivery-status") || p.ContentType.IsMimeType("message", "global-delivery-status"))
                .Select(PartText).FirstOrDefault();
            var humanText = HumanText(message);
            if (dsnText == null)
            {
                // some MTAs put the fields in a text part
                var candidate = message.BodyParts.OfType<TextPart>().Select(t => t.Text ?? "").FirstOrDefault(t => Regex.IsMatch(t, @"^(Final|Original)-Recipient:", RegexOptions.Multiline | RegexOptions.IgnoreCase) && Regex.IsMatch(t, @"^Action:", RegexOptions.Multiline | RegexOptions.IgnoreCase));
                dsnText = candidate;
                if (candidate != null)
                {
                    // the fields follow the explanation in the same part: the explanation alone is the human text
                    var fieldsStart = Regex.Match(humanText, @"^(Reporting-MTA|Received-From-MTA|Arrival-Date|Original-Envelope-Id|Final-Recipient|Original-Recipient|Action):", RegexOptions.Multiline | RegexOptions.IgnoreCase);
                    if (fieldsStart.Success && fieldsStart.Index > 0)
                    {
                        humanText = humanText.Substring(0, fieldsStart.Index);
                    }
                }
            }

            if (dsnText != null)
            {
                var records = ParseDsn(dsnText, humanText, message, originalSender, originalId, bounceId, source);
                if (records.Count > 0)
                {
                    return records;
                }
            }

            var ses = ParseSesNotification(humanText, message, source);
            if (ses.Count > 0)
            {
                return ses;
            }

            var from = message.From.Mailboxes.FirstOrDefault();
            var subject = message.Subject ?? "";
            var looksLikeBounce = BounceSubject.IsMatch(subject) || (from != null && (DaemonSender.IsMatch(from.Address) || DaemonSender.IsMatch(from.Name ?? "")))
                || message.Headers.Contains("X-Failed-Recipients")
                || (ReturnsAMessage(message) && FailureWords.IsMatch(humanText));
            var autoSubmitted = message.Headers["Auto-Submitted"] ?? "";
            var isAutoReply = !looksLikeBounce && (autoSubmitted.StartsWith("auto-replied", StringComparison.OrdinalIgnoreCase)
                || message.Headers.Contains("X-Autoreply") || message.Headers.Contains("X-Autorespond") || AutoReplySubject.IsMatch(subject));
            if (isAutoReply && from != null)
            {
                return new[] { new BounceRecord(BounceKind.AutoReply, from.Address, null, 0, null, null, null, message.Date, BounceReasons.Vacation, null,
                    message.To.Mailboxes.FirstOrDefault()?.Address, null, bounceId, source) };
            }

            if (!looksLikeBounce && FromListManager(message) && NotAMember.Match(subject + "\n" + humanText) is Match refusal && refusal.Success)
            {
                // the list refused the post: the list's address is the one that failed, the sender's standing the reason
                var exclude = new HashSet<string>(message.From.Mailboxes.Concat(message.To.Mailboxes).Select(m => m.Address), StringComparer.OrdinalIgnoreCase);
                var list = AddressesIn(humanText, exclude).FirstOrDefault() ?? from?.Address;
                if (list != null)
                {
                    var line = BounceClassifier.Normalize((subject + "\n" + humanText).Split('\n').FirstOrDefault(l => NotAMember.IsMatch(l)) ?? refusal.Value);
                    return new[] { new BounceRecord(BounceKind.NonStandard, list, "failed", 0, null, line, null, message.Date == DateTimeOffset.MinValue ? (DateTimeOffset?)null : message.Date,
                        BounceReasons.Rejected, null, originalSender, originalId, bounceId, source) };
                }
            }

            if (!looksLikeBounce)
            {
                return Array.Empty<BounceRecord>();
            }

            var found = ParseNonStandard(message, humanText, original, originalSender, originalId, bounceId, source);
            if (found.All(r => r.Reason == BounceReasons.OnHold || r.Reason == BounceReasons.Undefined) && original != null && depth < 3
                && (BounceSubject.IsMatch(original.Subject ?? "") || original.BodyParts.Any(p => p.ContentType.IsMimeType("message", "delivery-status"))))
            {
                // a gateway that says nothing itself and returns the bounce it received: the returned bounce tells
                var inner = Parse(original, source, depth + 1);
                if (inner.Count > 0)
                {
                    return inner;
                }
            }

            return found;
        }

        private static readonly Regex BoundaryLine = new Regex(@"^--(?=\S*[^\s-])(\S{6,70}?)(--)?[ \t]*$", RegexOptions.Multiline | RegexOptions.CultureInvariant);

        /// <summary>
        /// A multipart whose declared boundary never occurs in its body (old gateways that announce MIME and write plain
        /// text, a boundary mistyped in the header, a boundary parameter lost to broken header folding) parses as a
        /// multipart with no parts, its whole body in the preamble. Such a part is read again, in place: with the
        /// boundary its body really uses when one occurs at least twice, otherwise as one plain-text part.
        /// </summary>
        internal static MimeMessage RepairBrokenMultipart(MimeMessage message)
        {
            if (message.Body != null)
            {
                message.Body = Repair(message.Body);
            }

            return message;
        }

        private static MimeEntity Repair(MimeEntity entity)
        {
            if (!(entity is Multipart multipart))
            {
                return entity;
            }

            if (multipart.Count > 0)
            {
                for (var i = 0; i < multipart.Count; i++)
                {
                    multipart[i] = Repair(multipart[i]);
                }

                return multipart;
            }

            var preamble = multipart.Preamble;
            if (preamble == null || string.IsNullOrWhiteSpace(preamble))
            {
                return multipart;
            }

            var body = preamble.Replace("\r\n", "\n");
            var used = BoundaryLine.Matches(body).Cast<Match>().GroupBy(m => m.Groups[1].Value).FirstOrDefault(g => g.Count() >= 2)?.Key;
            var header = used != null
                ? "Content-Type: " + multipart.ContentType.MimeType + "; boundary=\"" + used + "\""
                : "Content-Type: text/plain; charset=utf-8";
            try
            {
                var repaired = MimeEntity.Load(new MemoryStream(Encoding.UTF8.GetBytes(header + "\n\n" + body)));
                return repaired is Multipart m && m.Count == 0 ? multipart : Repair(repaired);
            }
            catch (FormatException)
            {
                return multipart;
            }
        }

        /// <summary>One diagnostic line (a log's or an ESP export's), classified exactly as in a bounce mail.</summary>
        public static BounceRecord ParseDiagnosticLine(string recipient, string diagnostic, string? statusCode = null, int replyCode = 0, string? source = null) =>
            ParseDiagnosticLine(recipient, diagnostic, statusCode, replyCode, source, false, null);

        /// <summary>
        /// As <see cref="ParseDiagnosticLine(string, string, string, int, string)"/>, for sources that know more than the
        /// line says: <paramref name="answeredRcpt"/> (the reply refused the recipient at RCPT TO, as in an ESP's bounce
        /// list) and <paramref name="reason"/> (the source's own classification, which then stands).
        /// </summary>
        internal static BounceRecord ParseDiagnosticLine(string recipient, string diagnostic, string? statusCode, int replyCode, string? source, bool answeredRcpt, string? reason)
        {
            var text = BounceClassifier.Normalize(diagnostic);
            statusCode ??= BounceClassifier.FindStatusCode(text);
            if (replyCode == 0)
            {
                replyCode = BounceClassifier.FindReplyCode(text);
            }

            if (reason == null)
            {
                reason = BounceClassifier.Classify(text, statusCode, replyCode, null, answeredRcpt);
                var host = RemoteHostIn.Match(text);
                reason = ByReceivingProvider(reason, recipient, host.Success ? host.Groups[1].Value : null, text, statusCode, replyCode, answeredRcpt ? "in reply to RCPT TO command" : null);
            }

            return new BounceRecord(BounceKind.DiagnosticLine, recipient, null, replyCode, statusCode, text, null, null, reason, null, null, null, null, source);
        }

        // "host mx.example.org[192.0.2.1] said:", "SMTP error from remote mail server after RCPT TO:... host smtp.wanadoo.fr [192.0.2.1]:"
        private static readonly Regex RemoteHostIn = new Regex(@"(?:host|server|mta)\s+([A-Za-z0-9.-]+\.[A-Za-z]{2,})\.?\s*(?:\[[0-9a-fA-F.:]+\])?(?::|\s+(?:said|says|replied))", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        /// <summary>
        /// A failure reported by a receiving provider whose own codes are known (<see cref="ReceivingProviders"/>)
        /// takes the provider's meaning; anything else keeps the generic reason.
        /// </summary>
        private static string ByReceivingProvider(string reason, string recipient, string? answeringHost, string text, string? status, int reply, string? context)
        {
            if (!BounceReasons.IsFailure(reason))
            {
                return reason;
            }

            var domain = recipient.Contains("@") ? recipient.Substring(recipient.LastIndexOf('@') + 1) : null;
            var stage = BounceClassifier.SmtpCommand(context == null ? text : text + " " + BounceClassifier.Normalize(context));
            return ReceivingProviders.Classify(domain, answeringHost, text, status, reply, stage) ?? reason;
        }

        /// <summary>The same record at another time (log lines and exports carry their own time).</summary>
        public static BounceRecord WithTime(BounceRecord r, DateTimeOffset time)
        {
            if (r == null)
            {
                throw new ArgumentNullException(nameof(r));
            }

            return new BounceRecord(r.Kind, r.Recipient, r.Action, r.ReplyCode, r.StatusCode, r.Diagnostic, r.RemoteHost, time, r.Reason, r.FeedbackType,
                r.OriginalSender, r.OriginalMessageId, r.BounceMessageId, r.Source);
        }

        private static List<BounceRecord> ParseDsn(string dsn, string humanText, MimeMessage message, string? originalSender, string? originalId, string? bounceId, string? source)
        {
            var result = new List<BounceRecord>();
            var groups = Regex.Split(dsn.Replace("\r\n", "\n").Trim(), @"\n[ \t]*\n").SelectMany(SplitRecipientBlocks).Select(ParseFields).ToList();
            var perMessage = groups.FirstOrDefault() ?? new Dictionary<string, string>();
            var reportingMta = Field(perMessage, "Reporting-MTA");
            var arrival = Field(perMessage, "Arrival-Date");
            var allRecipients = groups.Select(g => Field(g, "Final-Recipient", "Original-Recipient", "X-Actual-Recipient")).Where(r => r != null)
                .Select(r => CleanAddress(r!)).ToList();
            foreach (var g in groups)
            {
                var rcpt = Field(g, "Final-Recipient", "Original-Recipient", "X-Actual-Recipient");
                if (rcpt == null)
                {
                    continue;
                }

                var address = CleanAddress(rcpt);
                var action = Field(g, "Action")?.Trim().ToLowerInvariant();
                var status = BounceClassifier.FindStatusCode(Field(g, "Status"));
                var diagnostic = Field(g, "Diagnostic-Code");
                if (diagnostic != null)
                {
                    diagnostic = Regex.Replace(diagnostic, @"^\s*(smtp|x-postfix|x-unix|x-local|x-exchange|x-notes|x-ms-exchange|x-gmail)\s*;\s*", "", RegexOptions.IgnoreCase);
                }

                if (string.IsNullOrWhiteSpace(diagnostic) || Regex.IsMatch(diagnostic!, @"^\s*[245]\d\d\s*$"))
                {
                    var window = Window(humanText, address, allRecipients);
                    if (window.Length == 0 && allRecipients.Count == 1)
                    {
                        // the explanation does not name the recipient (it may name the alias or program it expanded to)
                        window = ErrorText(humanText);
                    }

                    diagnostic = (diagnostic ?? "") + " " + window;
                }

                var remote = Field(g, "Remote-MTA");
                if (remote != null)
                {
                    remote = Regex.Replace(remote, @"^\s*dns\s*;\s*", "", RegexOptions.IgnoreCase).Trim();
                }

                var text = BounceClassifier.Normalize(diagnostic);
                var reply = BounceClassifier.FindReplyCode(text);
                var statusText = BounceClassifier.PreferStatusCode(status, BounceClassifier.FindStatusCode(text));

                string reason;
                if (action == "delivered" || action == "relayed" || action == "expanded")
                {
                    reason = BounceReasons.Delivered;
                }

                else
                {
                    var context = Window(humanText, address, allRecipients);
                    reason = BounceClassifier.Classify(text, statusText, reply, context);
                    var answering = remote ?? (RemoteHostIn.Match(text) is Match h && h.Success ? h.Groups[1].Value : null) ?? reportingMta;
                    reason = ByReceivingProvider(reason, address, answering, text, statusText, reply, context);
                    if ((reason == BounceReasons.OnHold || reason == BounceReasons.Undefined || reason == BounceReasons.NetworkError) && (action == "delayed" || Regex.IsMatch(text, @"expired|delayed", RegexOptions.IgnoreCase)))
                    {
                        reason = BounceReasons.Expired;
                    }
                    else if (statusText != null && statusText.StartsWith("4", StringComparison.Ordinal) && action == "failed" && reason == BounceReasons.NetworkError
                        && Regex.IsMatch(text, @"connection refused|connect to .* (failed|connection timed out)", RegexOptions.IgnoreCase))
                    {
                        // nobody answered until the retries ran out (Postfix returns it as status=expired)
                        reason = BounceReasons.Expired;
                    }
                }

                DateTimeOffset? time = null;
                if (MimeKit.Utils.DateUtils.TryParse(Field(g, "Last-Attempt-Date") ?? arrival ?? "", out var parsed))
                {
                    time = parsed;
                }
                else if (message.Date != DateTimeOffset.MinValue)
                {
                    time = message.Date;
                }

                result.Add(new BounceRecord(BounceKind.Dsn, address, action, reply, statusText, text.Length > 0 ? text : null, remote ?? reportingMta,
                    time, reason, null, originalSender, originalId, bounceId, source));
            }

            return result;
        }

        /// <summary>
        /// Some MTAs write the per-recipient blocks of a DSN without the blank line between them: a second
        /// Final-Recipient (with its Original-Recipient just before it) starts a new block.
        /// </summary>
        private static IEnumerable<string> SplitRecipientBlocks(string block)
        {
            var lines = block.Split('\n');
            var current = new List<string>();
            var seenFinal = false;
            for (var i = 0; i < lines.Length; i++)
            {
                var isFinal = Regex.IsMatch(lines[i], @"^Final-Recipient:", RegexOptions.IgnoreCase);
                var isOriginalBeforeFinal = Regex.IsMatch(lines[i], @"^Original-Recipient:", RegexOptions.IgnoreCase)
                    && i + 1 < lines.Length && Regex.IsMatch(lines[i + 1], @"^Final-Recipient:", RegexOptions.IgnoreCase);
                if (seenFinal && (isOriginalBeforeFinal || (isFinal && !(i > 0 && Regex.IsMatch(lines[i - 1], @"^Original-Recipient:", RegexOptions.IgnoreCase)))))
                {
                    yield return string.Join("\n", current);
                    current.Clear();
                    seenFinal = false;
                }

                seenFinal |= isFinal;
                current.Add(lines[i]);
            }

            yield return string.Join("\n", current);
        }

        private static List<BounceRecord> ParseNonStandard(MimeMessage message, string humanText, MimeMessage? original, string? originalSender, string? originalId, string? bounceId, string? source)
        {
            var exclude = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var m in message.From.Mailboxes.Concat(message.To.Mailboxes).Concat(message.Cc.Mailboxes))
            {
                exclude.Add(m.Address);
            }

            if (originalSender != null)
            {
                exclude.Add(originalSender);
            }

            var failed = (message.Headers["X-Failed-Recipients"] ?? "").Split(',').Select(a => CleanAddress(a)).Where(a => a.Contains("@")).ToList();
            var recipients = failed.Count > 0 ? failed : Candidates(humanText, exclude);
            original ??= recipients.Count == 0 ? ReturnedCopyInText(message) : null;
            if (recipients.Count == 0 && original != null)
            {
                // the bounce names no one: the returned copy says to whom it was sent
                recipients = original.To.Mailboxes.Select(m => m.Address).Where(a => !exclude.Contains(a)).Take(1).ToList();
            }

            var result = new List<BounceRecord>();
            foreach (var rcpt in recipients.Distinct(StringComparer.OrdinalIgnoreCase))
            {
                var window = Window(humanText, rcpt, recipients);
                if (recipients.Count == 1 && window.Replace(rcpt, "").Trim(' ', '\n', '<', '>', ':', '.').Length < 8)
                {
                    window = ErrorText(humanText); // nothing after the address: the reason is elsewhere in the text
                }

                var googleGroupRefusal = Regex.IsMatch(humanText, @"groups\.google\.com", RegexOptions.IgnoreCase) && BounceClassifier.FindReplyCode(window) == 0;
                if (window.Length == 0)
                {
                    window = ErrorText(humanText);
                }

                var text = BounceClassifier.Normalize(window);
                var status = BounceClassifier.FindStatusCode(text);
                var reply = BounceClassifier.FindReplyCode(text);
                // Google Groups refuses a post (no such group, or no permission to post) in the sender's own language
                var reason = googleGroupRefusal ? BounceReasons.Rejected : BounceClassifier.Classify(text, status, reply);
                if (recipients.Count == 1 && (reason == BounceReasons.OnHold || reason == BounceReasons.Undefined))
                {
                    // the lines after the address say nothing: some MTAs give the error above the recipient list
                    var wider = BounceClassifier.Normalize(ErrorText(humanText) + "\n" + window);
                    var widerReason = BounceClassifier.Classify(wider, BounceClassifier.FindStatusCode(wider), BounceClassifier.FindReplyCode(wider));
                    if (widerReason != BounceReasons.OnHold && widerReason != BounceReasons.Undefined)
                    {
                        text = wider;
                        status = BounceClassifier.FindStatusCode(wider);
                        reply = BounceClassifier.FindReplyCode(wider);
                        reason = widerReason;
                    }
                }

                if ((reason == BounceReasons.NetworkError || reason == BounceReasons.SystemError || reason == BounceReasons.OnHold || reason == BounceReasons.Undefined)
                    && GaveUpSubject.IsMatch(message.Subject ?? ""))
                {
                    // "Returned mail: Cannot send message for 5 days": the retries ran out
                    reason = BounceReasons.Expired;
                }

                var remote = RemoteHostIn.Match(text);
                reason = ByReceivingProvider(reason, rcpt, remote.Success ? remote.Groups[1].Value : null, text, status, reply, window);
                result.Add(new BounceRecord(BounceKind.NonStandard, rcpt, "failed", reply, status, text.Length > 0 ? Truncate(text, 1000) : null,
                    remote.Success ? remote.Groups[1].Value : null, message.Date == DateTimeOffset.MinValue ? (DateTimeOffset?)null : message.Date,
                    reason, null, originalSender, originalId, bounceId, source));
            }

            return result;
        }

        // a notice that says a message was not delivered (when it also returns that message, it is a bounce whatever its
        // subject and sender)
        private static readonly Regex FailureWords = new Regex(@"(could not|couldn.?t|cannot|can.?t|was not|wasn.?t|has not been|unable to) (be )?deliver(ed)?\b|\bundeliverable\b|delivery (has )?failed|permanent (fatal )?errors?\b|delivery to the following",
            RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        // a mailing list manager refusing a post from someone who is not subscribed (fml, Mailman, ezmlm, Sympa word it so)
        private static readonly Regex NotAMember = new Regex(@"\b(you are|you're|sender is|you aren't) not (a )?(member|subscriber)|\bnot (a )?member of (this|the) (mailing )?list|\bnon-?members? (are|is) not (allowed|permitted)|\bmembers[- ]only\b",
            RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        /// <summary>The mail was written by a mailing list manager (RFC 2369/2919 list fields or a list server's own header).</summary>
        private static bool FromListManager(MimeMessage message) =>
            message.Headers.Any(h => Regex.IsMatch(h.Field, @"^(List-(Id|Post|Subscribe|Unsubscribe|Help|Owner)|X-ML-[A-Za-z]+|X-MLServer|X-Mailman-Version|Mailing-List|X-Sympa-[A-Za-z-]+)$", RegexOptions.IgnoreCase));

        private static bool ReturnsAMessage(MimeMessage message) =>
            message.BodyParts.Any(p => p is MessagePart || p.ContentType.IsMimeType("text", "rfc822-headers"));

        // a subject saying that the message was given up after days or hours of retries (Sendmail's and its heirs')
        private static readonly Regex GaveUpSubject = new Regex(@"\b(cannot|can't|could not|couldn't|unable to) (send|deliver)( the| your)? (message|mail) (for|in|within)( the)?( past| last)? \d+ (day|hour)s?",
            RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        // "did not reach the following recipient(s):", "The following address(es) failed:" and the like
        private static readonly Regex FailedListMarker = new Regex(@"(following|these) (recipients?|addresse?s?)(\((e?s)\))?\b.{0,60}?(:|$)|(could not|couldn.?t|was not|wasn.?t) (be )?delivered to:",
            RegexOptions.IgnoreCase | RegexOptions.Multiline | RegexOptions.CultureInvariant);

        private static List<string> Candidates(string text, HashSet<string> exclude)
        {
            // addresses listed after a "following recipients" heading are the failed ones; the ones above it
            // (a summary of the original message) are not
            var marker = FailedListMarker.Match(text);
            if (marker.Success)
            {
                var after = AddressesIn(text.Substring(marker.Index + marker.Length), exclude);
                if (after.Count > 0)
                {
                    return after;
                }
            }

            return AddressesIn(text, exclude);
        }

        private static List<string> AddressesIn(string text, HashSet<string> exclude)
        {
            // an address mentioned as a sender, a contact or in a URL is not a failed recipient, wherever else it
            // appears ("please contact <support@isp>", then the same address again in a translation of the text)
            var matches = Address.Matches(text).Cast<Match>().ToList();
            var notRecipients = new HashSet<string>(exclude, StringComparer.OrdinalIgnoreCase);
            foreach (var m in matches)
            {
                var before = text.Substring(Math.Max(0, m.Index - 30), Math.Min(30, m.Index));
                if (Regex.IsMatch(before, @"(from|sender|mail from|return-path|reply-to|contact|write to|send mail to|https?://\S*)[:<\s]*$", RegexOptions.IgnoreCase))
                {
                    notRecipients.Add(m.Value.Trim('.'));
                }
            }

            var found = new List<string>();
            foreach (var m in matches)
            {
                var a = m.Value.Trim('.');
                if (notRecipients.Contains(a) || Regex.IsMatch(a, @"^(mailer-daemon|postmaster|double-bounce|root|nobody)@", RegexOptions.IgnoreCase))
                {
                    continue;
                }

                if (!found.Contains(a, StringComparer.OrdinalIgnoreCase))
                {
                    found.Add(a);
                }
            }

            return found.Take(20).ToList();
        }

        /// <summary>
        /// The lines after the first mention of the address: where MTAs put the error for it. The window ends where the
        /// next failed recipient begins, so that one recipient's error is not read for another's.
        /// </summary>
        private static string Window(string text, string address, IReadOnlyCollection<string>? others = null)
        {
            var i = text.IndexOf(address, StringComparison.OrdinalIgnoreCase);
            if (i < 0)
            {
                return "";
            }

            var lines = text.Substring(i).Split('\n').Take(12).ToList();
            var lineStart = text.LastIndexOf('\n', Math.Max(0, i - 1)) + 1;
            // a Sendmail transcript names the recipient in the command it answers (">>> RCPT To:<rcpt>"): that line's
            // start says at which SMTP step the refusal came
            var prefix = text.Substring(lineStart, i - lineStart);
            var kept = new List<string> { (TranscriptLine.IsMatch(prefix) ? prefix : "") + lines[0] };
            var onSummaryLine = SummaryLine.IsMatch(text.Substring(lineStart, i - lineStart + Math.Min(address.Length + 8, text.Length - i)));
            foreach (var line in lines.Skip(1))
            {
                if (others != null && others.Any(o => !o.Equals(address, StringComparison.OrdinalIgnoreCase) && line.IndexOf(o, StringComparison.OrdinalIgnoreCase) >= 0))
                {
                    break;
                }

                if ((SummaryLine.IsMatch(line) && line.IndexOf(address, StringComparison.OrdinalIgnoreCase) < 0)
                    || (onSummaryLine && Regex.IsMatch(line, @"^\s*while talking to\b", RegexOptions.IgnoreCase)))
                {
                    // Sendmail's "550 other.host (smtp)... ..." or a new dialogue starts another target's failure
                    break;
                }

                kept.Add(line);
            }

            // Sendmail writes what the server said ("While talking to", ">>>", "<<<") above the recipient's own
            // "554 <rcpt>... Remote protocol error" line: that dialogue belongs to the recipient
            if (onSummaryLine)
            {
                var domain = address.Substring(address.LastIndexOf('@') + 1);
                var above = text.Substring(0, lineStart).TrimEnd('\n').Split('\n');
                var dialogue = new List<string>();
                for (var k = above.Length - 1; k >= 0 && dialogue.Count < 8; k--)
                {
                    var l = above[k];
                    var sameHost = Regex.IsMatch(l, @"^\s*[245]\d\d " + Regex.Escape(domain) + @" \(", RegexOptions.IgnoreCase);
                    if (!TranscriptLine.IsMatch(l) && !sameHost)
                    {
                        break;
                    }

                    dialogue.Insert(0, l);
                    if (Regex.IsMatch(l, @"^\s*while talking to", RegexOptions.IgnoreCase))
                    {
                        break;
                    }
                }

                if (dialogue.Count > 0)
                {
                    kept.InsertRange(0, dialogue);
                }
            }

            return string.Join("\n", kept);
        }

        // Sendmail's per-target result line: "554 <user@host>... reason" or "550 host.example (smtp)... reason"
        private static readonly Regex SummaryLine = new Regex(@"^\s*[245]\d\d <?[^\s<>]+>?( \([a-z]+\))?\.\.\.\s", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        private static readonly Regex TranscriptLine = new Regex(@"^\s*(>>>|<<<|while talking to\b)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        /// <summary>The part of a bounce's text that explains the failure (lines with codes or error words).</summary>
        private static string ErrorText(string text)
        {
            var lines = text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
            var useful = lines.Where(l => Regex.IsMatch(l, @"\b[245]\d\d\b|\b[245]\.\d{1,3}\.\d{1,3}\b|error|fail|reject|denied|unknown|not found|not listed|no such|does not exist|doesn.?t exist|full|quota|timed? ?out|refused|blocked|spam|expired|invalid|unavailable|suspend|disabled|policy", RegexOptions.IgnoreCase)).Take(12).ToList();
            return string.Join("\n", useful.Count > 0 ? useful : lines.Take(12));
        }

        private static string Truncate(string s, int max) => s.Length <= max ? s : s.Substring(0, max);

        /// <summary>The human-readable text of the bounce (not the returned original).</summary>
        private static string HumanText(MimeMessage message) => CutOriginal(FullText(message));

        /// <summary>All the inline text of the bounce, a copy of the returned message included when it is written inline.</summary>
        private static string FullText(MimeMessage message)
        {
            var sb = new StringBuilder();
            foreach (var part in TopLevelParts(message.Body))
            {
                if (part is TextPart t && !t.IsAttachment)
                {
                    var text = t.Text ?? "";
                    if (t.IsHtml)
                    {
                        text = Regex.Replace(Regex.Replace(text, @"<(br|p|div|tr|li)[^>]*>", "\n", RegexOptions.IgnoreCase), "<[^>]+>", " ");
                        text = System.Net.WebUtility.HtmlDecode(text);
                    }

                    sb.Append(text).Append('\n');
                }
            }

            return sb.ToString().Replace("\r\n", "\n").Replace('\r', '\n');
        }

        /// <summary>
        /// The headers of a returned message copied inline into the bounce's text (no MIME part of its own), as old
        /// MTAs do under "----- Unsent message follows -----".
        /// </summary>
        private static MimeMessage? ReturnedCopyInText(MimeMessage message)
        {
            var text = FullText(message);
            var m = OriginalMarker.Match(text);
            if (!m.Success || m.Index == 0)
            {
                return null;
            }

            var copy = text.Substring(m.Index);
            if (copy.TrimStart().StartsWith("-", StringComparison.Ordinal))
            {
                var eol = copy.IndexOf('\n');
                copy = eol < 0 ? "" : copy.Substring(eol + 1);
            }

            copy = copy.TrimStart('\n', ' ', '\t');
            if (!Regex.IsMatch(copy, @"^[A-Za-z0-9-]+:"))
            {
                return null;
            }

            try
            {
                var returned = MimeMessage.Load(new MemoryStream(Encoding.UTF8.GetBytes(copy)));
                return returned.To.Mailboxes.Any() ? returned : null;
            }
            catch (FormatException)
            {
                return null;
            }
        }

        private static readonly Regex OriginalMarker = new Regex(
            @"^(\s*-+\s*(original message|this is a copy of|below this line|message headers follow|the original message|original message follows|headers of the original|returned message|original mail)|\s*(message headers follow|original message headers|original message follows)|(received|return-path|x-received|dkim-signature|arc-seal|arc-message-signature|authentication-results|x-google-dkim-signature|message-id|mime-version):\s)",
            RegexOptions.IgnoreCase | RegexOptions.Multiline | RegexOptions.CultureInvariant);

        /// <summary>The bounce's own words end where a copy of the returned message begins.</summary>
        private static string CutOriginal(string text)
        {
            var m = OriginalMarker.Match(text);
            return m.Success && m.Index > 0 ? text.Substring(0, m.Index) : text;
        }

        private static IEnumerable<MimeEntity> TopLevelParts(MimeEntity? entity)
        {
            if (entity == null)
            {
                yield break;
            }

            if (entity is Multipart multipart)
            {
                foreach (var child in multipart)
                {
                    foreach (var p in TopLevelParts(child))
                    {
                        yield return p;
                    }
                }
            }
            else if (!(entity is MessagePart))
            {
                yield return entity;
            }
        }

        private static MimeMessage? OriginalHeaders(MimeMessage message)
        {
            foreach (var part in message.BodyParts)
            {
                if (part is MessagePart mp && mp.Message != null && !part.ContentType.IsMimeType("message", "delivery-status"))
                {
                    return mp.Message;
                }

                if (part.ContentType.IsMimeType("text", "rfc822-headers") || part.ContentType.IsMimeType("text", "rfc822-header"))
                {
                    try
                    {
                        return MimeMessage.Load(new MemoryStream(Encoding.UTF8.GetBytes(PartText(part) + "\r\n\r\n")));
                    }
                    catch (FormatException)
                    {
                        return null;
                    }
                }
            }

            return null;
        }

        private static string PartText(MimeEntity part)
        {
            if (part is TextPart t)
            {
                return t.Text ?? "";
            }

            using (var s = new MemoryStream())
            {
                if (part is MimePart mp && mp.Content != null)
                {
                    mp.Content.DecodeTo(s);
                }
                else if (part is MessagePart msg && msg.Message != null)
                {
                    msg.Message.WriteTo(s);
                }
                else
                {
                    part.WriteTo(s, true);
                }

                return Encoding.UTF8.GetString(s.ToArray());
            }
        }

        /// <summary>Header-style "Name: value" lines (with folded continuations), last one wins per name.</summary>
        private static Dictionary<string, string> ParseFields(string text)
        {
            var fields = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            string? current = null;
            foreach (var raw in text.Replace("\r\n", "\n").Replace('\r', '\n').Split('\n'))
            {
                if (raw.Length > 0 && (raw[0] == ' ' || raw[0] == '\t') && current != null)
                {
                    fields[current] += " " + raw.Trim();
                    continue;
                }

                var colon = raw.IndexOf(':');
                if (colon > 0 && Regex.IsMatch(raw.Substring(0, colon), @"^[A-Za-z0-9-]+$"))
                {
                    current = raw.Substring(0, colon);
                    if (!fields.ContainsKey(current))
                    {
                        fields[current] = raw.Substring(colon + 1).Trim();
                    }
                    else
                    {
                        current = null;
                    }
                }
            }

            return fields;
        }

        private static string? Field(Dictionary<string, string> fields, params string[] names)
        {
            foreach (var n in names)
            {
                if (fields.TryGetValue(n, out var v) && v.Trim().Length > 0)
                {
                    return v.Trim();
                }
            }

            return null;
        }

        /// <summary>"rfc822; &lt;User@Example.org&gt;" -> "User@Example.org".</summary>
        internal static string CleanAddress(string value)
        {
            var v = value.Trim();
            var semi = v.IndexOf(';');
            if (semi >= 0 && semi < 12)
            {
                v = v.Substring(semi + 1);
            }

            var m = Address.Match(v);
            return m.Success ? m.Value : v.Trim(' ', '<', '>', '"');
        }
    }
}
