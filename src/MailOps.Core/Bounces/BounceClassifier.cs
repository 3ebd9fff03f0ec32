using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;

namespace MailOps.Core.Bounces
{
    /// <summary>
    /// The reasons a delivery fails. The names follow sisimai's (the reference bounce parser), so results compare
    /// directly; docs/bounce-reasons.md says what each means.
    /// </summary>
    public static class BounceReasons
    {
        public const string UserUnknown = "userunknown";
        public const string HostUnknown = "hostunknown";
        public const string MailboxFull = "mailboxfull";
        public const string NetworkError = "networkerror";
        public const string Expired = "expired";
        public const string Blocked = "blocked";
        public const string BadReputation = "badreputation";
        public const string SpamDetected = "spamdetected";
        public const string VirusDetected = "virusdetected";
        public const string PolicyViolation = "policyviolation";
        public const string Rejected = "rejected";
        public const string Filtered = "filtered";
        public const string AuthFailure = "authfailure";
        public const string RequirePtr = "requireptr";
        public const string SecurityError = "securityerror";
        public const string FailedStartTls = "failedstarttls";
        public const string Suspend = "suspend";
        public const string HasMoved = "hasmoved";
        public const string NotAccept = "notaccept";
        public const string NoRelaying = "norelaying";
        public const string MesgTooBig = "mesgtoobig";
        public const string ExceedLimit = "exceedlimit";
        public const string SystemError = "systemerror";
        public const string SystemFull = "systemfull";
        public const string TooManyConn = "toomanyconn";
        public const string Speeding = "speeding";
        public const string SyntaxError = "syntaxerror";
        public const string ContentError = "contenterror";
        public const string NotCompliantRfc = "notcompliantrfc";
        public const string MailerError = "mailererror";
        public const string Suppressed = "suppressed";
        public const string OnHold = "onhold";
        public const string Undefined = "undefined";
        public const string Vacation = "vacation";
        public const string Feedback = "feedback";
        public const string Delivered = "delivered";

        /// <summary>
        /// A hard bounce: the address itself will never work (its mailbox or its domain does not exist, or it moved),
        /// the same rule as sisimai's. Policy and spam rejections are soft: they say nothing about the address. A domain
        /// that accepts no mail (null MX, no MX) is hard unless a 4xx code says the failure is temporary
        /// (<paramref name="replyCode"/> 0: no code at all).
        /// </summary>
        public static bool IsHard(string reason, int replyCode) =>
            reason == UserUnknown || reason == HostUnknown || reason == HasMoved || (reason == NotAccept && (replyCode >= 500 || replyCode == 0));

        /// <summary>
        /// The failure says nothing about the recipient: nothing answered for it (DNS failure, refused or timed-out
        /// connections, retries that expired). What an outage at the recipient's provider produces.
        /// </summary>
        public static bool IsInfrastructure(string reason, bool remoteAnswered) =>
            reason == NetworkError || reason == Expired || (reason == HostUnknown && !remoteAnswered);

        /// <summary>Not failures: auto-replies, complaints and delivery reports.</summary>
        public static bool IsFailure(string reason) => reason != Vacation && reason != Feedback && reason != Delivered;
    }

    /// <summary>
    /// Classifies one failure from its SMTP reply code, enhanced status code and diagnostic text. The text is read
    /// first (servers say more in words than in codes), then the RFC 3463 code, then the reply code. A bare diagnostic
    /// line from a log or an ESP export goes through the same path as a full bounce mail.
    /// </summary>
    public static class BounceClassifier
    {
        private static readonly Regex Enhanced = new Regex(@"(?<![\w.])([245])\.([0-7])\.(\d{1,3})(?!\d|\.\d)", RegexOptions.CultureInvariant);
        private static readonly Regex Reply = new Regex(@"(?:^|[\s:(\[""'])([245]\d\d)(?=[\s\-,;]|$)", RegexOptions.CultureInvariant);

        // Ordered: the first rule whose pattern is found in the text wins. Patterns are lower-case fragments or
        // regular expressions of typical server wording; they are not taken from any one corpus.
        private static readonly (string Reason, Regex Pattern)[] TextRules = new[]
        {
            R(BounceReasons.Expired, @"did not accept our requests? to connect|host not reachable"),
            R(BounceReasons.NetworkError, @"name service error.*try again|host not found, try again|temporary failure in name resolution|lost connection with|host name lookup failure|(wasn.?t|was not|were not) able to establish an smtp connection|hop count exceeded"),
            R(BounceReasons.Blocked, @"refused to talk to me|not accepting connections|smtp server of your (isp|provider)|use your (isp|provider).{0,4} (smtp|mail|outgoing) server"),
            R(BounceReasons.Rejected, @"(sender|from|your) (e-?mail )?address (has been|is) (blacklisted|blocked|banned|denied)|purported responsible address|\bfrom:? (address )?domain (is )?(invalid|not valid)|sender('s)? domain (is )?(invalid|not valid)"),
            R(BounceReasons.MailerError, @"\bprocmail:|\bcommand died\b|\bmailer error\b|unknown mailer error"),
            R(BounceReasons.SystemError, @"unable to contact ldap|currently unavailable|loops back to myself"),
            R(BounceReasons.NotCompliantRfc, @"duplicate (header|[a-z-]+ header)|too many ([a-z-]+ )?header (fields|lines)|header (field )?(appears|occurs) (more than once|multiple times)|multiple addresses in (the )?from:? header"),
            R(BounceReasons.Filtered, @"blocked by the recipient|recipient (has )?blocked (you|the sender|your)|\buser reject|refuses? to (receive|accept) (this|your|the) (mail|message)|recipient preferences|message filtered|rejected (due to|by) user rules|only accepting mail from"),
            R(BounceReasons.NoRelaying, @"relay(ing)? (access )?(is )?(denied|not (permitted|allowed))|not (configured|allowed|permitted|authorized) to relay|not permitted to relay|unable to relay|relay not permitted|we do not relay|relaying (mail )?(to|from) .* (is )?(not allowed|denied|prohibited)|no relaying"),
            R(BounceReasons.PolicyViolation, @"\bheader error\b|blocked because (its|of (its|the)) content|denied by policy|rejected due to security polic|(local )?policy violation|organi[sz]ation(al)? (policy|settings)"),
            R(BounceReasons.VirusDetected, @"\bvirus\b|malware|infected|\btrojan\b|phishing attachment"),
            R(BounceReasons.AuthFailure, @"\b(spf|dkim|dmarc|domainkeys|sender policy framework)\b.{0,40}\b(fail(s|ed|ure)?|not pass|did not pass|invalid|error|reject(s|ed)?|policy|violation|check|validation|verification|alignment|unauthori[sz]ed|mismatch|softfail|hardfail)|\b(fail(s|ed)?|not pass|did not pass|failing) (the )?(spf|dkim|dmarc)\b|\bbad (spf|dkim|dmarc)\b|\b(invalid|broken|missing|no) (spf|dkim|dmarc) (record|signature|key)|authentication checks? fail|not (authorized|allowed) to send (mail )?(from|on behalf)|failed (spf|dkim|dmarc)|unauthenticated (email|mail)"),
            R(BounceReasons.RequirePtr, @"reverse (dns|lookup|hostname|dns lookup)|unverif(y|i)able sending (ip|host)|\bptr\b|\brdns\b|no reverse|client host .* (not found|unknown)|cannot find your hostname|hostname (is )?not (found|resolvable)|does not have a reverse|dns hostname|client host rejected: cannot find"),
            R(BounceReasons.BadReputation, @"reputation|unexpected volume or user complaints|sender score"),
            R(BounceReasons.TooManyConn, @"frequency limit(ed)?|sending too frequently|connection rate limit|too many recipients|too many (connections|concurrent|simultaneous|sessions|smtp sessions)|connection (limit|rate) exceeded|maximum (number of )?connections"),
            R(BounceReasons.Speeding, @"rate.?limit|sending rate|too (many|much) (mail|messages|emails|recipients) (from|sent|in)|too fast|throttl|exceeded (the )?(hourly|daily|message) (limit|quota)|slow down|(try again|send|sending) (more )?slow(er|ly)|sending too"),
            R(BounceReasons.MailboxFull, @"mailbox (has )?exceeded (the |its )?(\w+ )?(limit|quota|size|storage)|mailbox (is )?full|mail ?box.{0,20}\bfull\b|over (the )?(mailbox )?quota|quota (exceeded|full|has been exceeded)|exceeded (its |the |his |her )?(storage|quota|mailbox)|storage (allocation|limit|quota)|insufficient (mailbox |disk )?space|not enough (storage|space|disk space)|mailbox size limit|full mailbox|mailfolder is full|user is over|too much mail in|exceeds (its|the) (storage|quota|size)|disk quota"),
            R(BounceReasons.SystemFull, @"insufficient system (storage|resources)|(mail )?system (is )?full|disk (is )?full|out of disk|no space left"),
            R(BounceReasons.ExceedLimit, @"header size exceeds (the )?limit"),
            R(BounceReasons.ContentError, @"headers? (are |is )?too (large|long|big|many)|too many headers"),
            R(BounceReasons.MesgTooBig, @"(message|mail|e-?mail) (size )?(is )?too (big|large)|(message|mail|e-?mail) (size )?exceeds|\bsize (limit|exceeds)|(message|mail) (is )?too large|exceeds (the )?(maximum|max) (message )?size|message length exceeds|mail size|too large for (this|the) recipient"),
            R(BounceReasons.HasMoved, @"has moved|moved to|address (has )?changed|no longer (at|with) (this|our)|forwarding address"),
            R(BounceReasons.Suspend, @"(account|mailbox)\b.{0,40}\bis (disabled|inactive|deactivated|suspended)|(recipient|user)('s)? account is (blocked|locked)|(account|mailbox|user|address|recipient) (has been |is |was )?(temporarily )?(suspended|disabled|deactivated|inactive|frozen)|(domain|account|mailbox|service) .{0,40}\bis (currently |temporarily )?suspended|suspend(s|ed)? (the|its|his|her) (service|account)|(user|account|mailbox|recipient)\b.{0,60}\b(temporar(il)?y )?locked\b|suspended (account|mailbox|user)|(?<!temporarily )suspended by|disabled (account|mailbox|user)|deactivated|inactive (account|mailbox|user)|(account|mailbox) (has been |is )?(locked|closed|frozen|expired|blocked by the administrator)|no longer (active|in use|valid)|account (is )?unavailable|mailbox (is )?unavailable: account"),
            R(BounceReasons.HostUnknown, @"(?<![@.\w])(?:[a-z0-9-]+\.){2,}[a-z]{2,}\.? does not exist|(?<![@.\w])[a-z0-9-]+\.(com|net|org|edu|gov|info|biz)\.? does not exist|host or domain name not found|(host|domain) (name )?(not found|unknown|does not exist|doesn.?t exist)|unknown (host|domain)|no such (host|domain)|name service error|unrouteable (mail )?domain|nxdomain|domain (is )?(invalid|not valid)|unresolvable|domain is not reachable|recipient domain .* not (found|exist)|dns (lookup )?(error|failure) for|cannot (find|resolve) (the )?domain|mail domain .* not"),
            R(BounceReasons.UserUnknown, @"\b5\.4\.1\b.{0,160}recipient address rejected: access denied|user ?(name )?(unknown|not found|doesn.?t exist|does not exist|not exist|invalid|not local)|unknown (user|recipient|local|address|mailbox|alias)|no such (user|recipient|mailbox|person|address|local user|account)|(mailbox|recipient|address|account|addressee) (not found|unknown|does not exist|doesn.?t exist|unavailable|invalid|not valid)|(invalid|bad|unknown) (recipient|mailbox|destination mailbox|address|user)|does not exist|not a valid (recipient|mailbox|user|address)|(?<!sender )address rejected\.?\s*$|(address|recipient) (couldn.?t|could not|cannot|can.?t) be found|no valid recipients?|address is possibly incorrect|(wasn.?t|was not|wasnt) found at the destination|recipient not found|invalid (final )?(delivery )?(userid|user id)|doesn.?t have an? .{0,40}account|unrouteable address|undeliverable address|mailbox not available|no mailbox|is not a known user|(user|recipient) is not (found|known)|couldn.?t find (the|any) (user|recipient|mailbox)|the email account that you tried to reach does not exist|no longer exists|not our customer|user not listed|account (not found|does not exist)|recipient not (found|recognized)|not listed in"),
            R(BounceReasons.NotAccept, @"no smtp service|no mx (record|found)|no mail exchanger|couldn.?t find a mail exchanger|does not accept (e-?)?mail|not accepting (e-?)?mail|null ?mx|accepts no mail|no mail (is )?accepted"),
            R(BounceReasons.FailedStartTls, @"starttls|tls (is )?required|must (issue|use) (a )?starttls|encryption required|requires? (a )?secure connection"),
            R(BounceReasons.SecurityError, @"turn on (smtp )?authentication|smtp auth(entication)? (is )?required|authentication (is )?required|must authenticate|authentication failed|not authenticated|auth(entication)? (credentials )?invalid|security (policy|violation)|submission requires"),
            R(BounceReasons.SpamDetected, @"(black|block)listed (url|link|domain)s? in (the )?(message|body|content)|\buribl\b|\bsurbl\b|\b(anti-?)?spam(s|mer|mers|ming|my)?\b(?!haus|cop|rats)|junk|\bscore\b.{0,30}\b(over|exceeds?|above|too high)|\buce\b|unsolicited|bulk (mail|email)|content (filter|was rejected)|message content rejected|looks like (spam|junk)|scored too high|gtube|classified as|suspicious (content|message)"),
            R(BounceReasons.Suppressed, @"suppression list|suppressed (address|recipient)|on (the|a|our) suppression"),
            R(BounceReasons.Blocked, @"block(ed|list)|black ?list|deny ?list|\brbl\b|dnsbl|spamhaus|spamcop|sorbs|barracuda|mailspike|listed (in|on|at|by)|client host rejected|access (denied|forbidden)|(your|the sending|sender) ip|ip address .* (rejected|not allowed|refused)|refused to talk|not allowed to send|connections? (from|not) .* (rejected|accepted)|invalid ip|poor reputation|banned|rejected because .* ip|(is|as) an open relay"),
            R(BounceReasons.Rejected, @"sender was rejected|sender (address )?(rejected|denied|refused|not allowed|verify failed|unknown|invalid)|(domain of )?sender address|envelope (from|sender)|mail from (address )?(rejected|refused|denied)|from address|return path|bad sender|sender domain|invalid sender|sender is not|(you are|you're|you aren't) not (a )?(member|subscriber)|not (a )?member of (this|the) (mailing )?list|non-?members? (are|is) not (allowed|permitted)"),
            R(BounceReasons.PolicyViolation, @"polic(y|ies)|not accepted for .* reasons|violat|prohibited|not permitted|administrative(ly)? (prohibited|denied)|forbidden"),
            R(BounceReasons.NotCompliantRfc, @"rfc ?5322|rfc ?2822|not compliant|non-compliant|rfc compliance|multiple (from|date|subject) (headers|fields)"),
            R(BounceReasons.ContentError, @"(invalid|bad|malformed|broken|illegal|missing|duplicate) (message )?headers?|headers? (syntax|format|line)|improperly.?formatted|malformed|invalid (message|content|mime|character)|8-?bit|binary content|line too long|bare lf"),
            R(BounceReasons.SyntaxError, @"syntax error|command (unrecognized|not recognized)|(bad|improper|wrong) sequence of commands|out of sequence|unrecognized command|parameter (not recognized|syntax)"),
            R(BounceReasons.MailerError, @"mailer (error|program)|command died|exit (status|code)|procmail|pipe to |\|.*returned|local delivery failed|unknown mailer error"),
            R(BounceReasons.Expired, @"will be retried|connection timed out|not (been )?delivered (for|within|after|in) (the (last|past) )?[0-9]+ (days?|hours?)|(server|host) (is not|did not|does not|isn.?t) respond(ing)?|retry (period|time)|has been delayed|deliver(y|ing) (time|period)? ?(has )?expired|message expired|retry time(out)? (not reached|exceeded)|(could not|couldn.?t|unable to) (be )?deliver(ed)? .* (for|within|after) [0-9]+ (days|hours)|too (long|many retries)|giving up|time limit|expired|undeliverable for|maximum time|queue (lifetime|time)"),
            R(BounceReasons.NetworkError, @"timed? ?out|time-?out|connection (refused|reset|closed|lost|failed|dropped)|lost connection|no route to host|network (is )?unreachable|could not connect|unable to connect|cannot connect|temporary failure in name resolution|\bdns error\b|name server (timeout|failure)|dns (timeout|temporary)|servfail|no answer|conversation with .* (failed|timed)|host is down|connect to .* failed|broken pipe|tls handshake|routing loop|mail loop|too many hops"),
            R(BounceReasons.SystemError, @"system (error|problem|failure)|internal (server )?error|local error|server error|temporar(y|ily) (error|unavailable|rejected|deferred)|try (again )?later|service (is )?(not )?(available|unavailable)|resources temporarily|configuration error|transaction failed|unexpected error"),
            R(BounceReasons.Filtered, @"filter(ed)?|rejected (by|due to) (content|the recipient)|not delivered to recipient|recipient (has|is) (refused|rejected)|refused by recipient"),
        };

        private static (string, Regex) R(string reason, string pattern) =>
            (reason, new Regex(pattern, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.Compiled));

        /// <summary>The reason, from whatever is known of the failure (any argument may be missing).</summary>
        public static string Classify(string? diagnostic, string? statusCode, int replyCode) => Classify(diagnostic, statusCode, replyCode, null);

        /// <summary>
        /// As <see cref="Classify(string, string, int)"/>, with the text around the recipient in the bounce
        /// (<paramref name="context"/>), which tells the SMTP stage when the diagnostic alone does not ("in reply to end
        /// of DATA command").
        /// </summary>
        public static string Classify(string? diagnostic, string? statusCode, int replyCode, string? context) =>
            Classify(diagnostic, statusCode, replyCode, context, false);

        /// <summary>
        /// As <see cref="Classify(string, string, int, string)"/>; <paramref name="answeredRcpt"/> says the source knows
        /// the reply answered RCPT TO even though the text does not say so (an ESP's list of recipient bounces).
        /// </summary>
        internal static string Classify(string? diagnostic, string? statusCode, int replyCode, string? context, bool answeredRcpt)
        {
            var text = JoinReplyLines(Normalize(diagnostic));
            if (ReportUnavailable.IsMatch(text))
            {
                // Postfix writes this in place of the report when it has lost the delivery log: nothing is known
                return BounceReasons.Undefined;
            }

            var stageText = context == null ? text : text + " " + Normalize(context);
            if (statusCode == null && text.Length > 0)
            {
                var m = Enhanced.Match(text);
                statusCode = m.Success ? m.Value : null;
            }

            if (replyCode == 0 && text.Length > 0)
            {
                var m = Reply.Match(text);
                replyCode = m.Success ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
            }

            var command = SmtpCommand(stageText);
            if (answeredRcpt && command == SmtpStage.Unknown)
            {
                command = SmtpStage.RcptTo;
            }
            string? byText = null;
            if (text.Length > 0)
            {
                foreach (var (reason, pattern) in TextRules)
                {
                    if (pattern.IsMatch(text))
                    {
                        byText = reason;
                        break;
                    }
                }
            }

            var byCode = FromStatusCode(statusCode);
            var decided = Decide(byText, byCode, command);
            if (decided != null)
            {
                decided = AdjustForStage(decided, byCode, statusCode, replyCode, command, text);
                if (decided == BounceReasons.UserUnknown && command != SmtpStage.RcptTo && statusCode != null && Regex.IsMatch(statusCode, @"^[45]\.7\."))
                {
                    // "unknown user" under a security/policy code (x.7.x), not in answer to RCPT TO: a policy filter
                    // refused the message, the code does not say that the address is unknown
                    decided = BounceReasons.Filtered;
                }
                if (decided == BounceReasons.HostUnknown && statusCode != null && statusCode.StartsWith("4.", StringComparison.Ordinal))
                {
                    // a temporary DNS failure says nothing about whether the domain exists
                    decided = BounceReasons.NetworkError;
                }

                return decided;
            }

            if (Regex.IsMatch(text, @"^x-unix;", RegexOptions.IgnoreCase))
            {
                // a local delivery program's exit status (Diagnostic-Code: X-Unix; 255)
                return BounceReasons.MailerError;
            }

            if (AwayWords.IsMatch(text))
            {
                return BounceReasons.Vacation;
            }

            if (command == SmtpStage.Connect || command == SmtpStage.Helo)
            {
                // refused before any mail was offered: the client (its address or its name) was turned away
                return BounceReasons.Blocked;
            }

            if (command == SmtpStage.MailFrom && (text.Length > 0 || replyCode >= 500))
            {
                // refused at MAIL FROM: the sender, unless the words name the sending host ("messages from 192.0.2.1")
                return ClientWords.IsMatch(text) ? BounceReasons.Blocked : BounceReasons.Rejected;
            }

            return replyCode switch
            {
                421 => BounceReasons.SystemError,
                451 => BounceReasons.SystemError,                // RFC 5321: local error in processing
                452 => BounceReasons.SystemFull,
                >= 500 and <= 504 => BounceReasons.SyntaxError, // command not understood or out of sequence
                552 => BounceReasons.MailboxFull,
                556 => BounceReasons.NotAccept,                  // RFC 7504: the domain does not accept mail
                553 => BounceReasons.UserUnknown,
                _ => text.Length > 0 || replyCode > 0 || statusCode != null ? BounceReasons.OnHold : BounceReasons.Undefined,
            };
        }

        private static readonly Regex ReportUnavailable = new Regex(@"^-*\s*delivery report unavailable\s*-*$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        // an auto-reply's own words, when that is all a diagnostic says
        private static readonly Regex AwayWords = new Regex(
            @"\b(i am|i'm|i will be|i'll be)\b.{0,30}\b(away|out of (the )?office|on (vacation|holiday|leave)|travell?ing|out of town)\b",
            RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        /// <summary>Reasons a status code names too vaguely to stand against the server's words.</summary>
        private static readonly HashSet<string> VagueByCode = new HashSet<string>
        {
            BounceReasons.SystemError, BounceReasons.SecurityError, BounceReasons.NetworkError, BounceReasons.Expired,
            BounceReasons.OnHold, BounceReasons.Undefined,
        };

        /// <summary>
        /// Reasons in the order in which they win when the words and the code disagree: the ones about the
        /// recipient's mailbox first, then the address, then the message, then the sending host.
        /// </summary>
        private static readonly string[] Precedence =
        {
            BounceReasons.MailboxFull, BounceReasons.MesgTooBig, BounceReasons.ExceedLimit, BounceReasons.Suspend, BounceReasons.HasMoved,
            BounceReasons.NoRelaying, BounceReasons.AuthFailure, BounceReasons.UserUnknown, BounceReasons.Filtered, BounceReasons.RequirePtr,
            BounceReasons.NotCompliantRfc, BounceReasons.BadReputation, BounceReasons.ContentError, BounceReasons.Rejected,
            BounceReasons.HostUnknown, BounceReasons.SpamDetected, BounceReasons.Speeding, BounceReasons.TooManyConn, BounceReasons.Blocked,
        };

        private static int Rank(string reason)
        {
            var i = Array.IndexOf(Precedence, reason);
            return i < 0 ? int.MaxValue : i;
        }

        /// <summary>
        /// Words and code together. A precise code (mailbox full, message too big, sender rejected...) stands unless the
        /// words name a reason that comes first in <see cref="Precedence"/>; a vague code (system error, security
        /// error, x.0.0) gives way to the words; "unknown user/host" codes give way only to words that explain the
        /// refusal otherwise (a block, a rejected sender, a full mailbox, a DNS failure).
        /// </summary>
        private static string? Decide(string? byText, string? byCode, SmtpStage command)
        {
            if (byCode == null)
            {
                return byText;
            }

            if (byText == null || byText == byCode)
            {
                return byCode;
            }

            if (VagueByCode.Contains(byCode))
            {
                return byText;
            }

            if (IsSizeReason(byText) && IsSizeReason(byCode))
            {
                // both say "too big": the code tells which limit (message size or administrative limit)
                return byCode;
            }

            if (byCode == BounceReasons.UserUnknown)
            {
                return Rank(byText) < Rank(byCode) || byText == BounceReasons.Blocked || byText == BounceReasons.Rejected
                    || byText == BounceReasons.NotAccept || byText == BounceReasons.Filtered || byText == BounceReasons.MailerError ? byText : byCode;
            }

            if (byCode == BounceReasons.HostUnknown)
            {
                return Rank(byText) < Rank(byCode) || byText == BounceReasons.NetworkError || byText == BounceReasons.NotAccept ? byText : byCode;
            }

            if (byCode == BounceReasons.Filtered)
            {
                // x.2.0 / x.2.1 say only "the mailbox would not take it": "unknown user" words make it a refusal of the
                // recipient at RCPT and a filter after it; other words say more than the code
                return byText == BounceReasons.UserUnknown ? (command == SmtpStage.RcptTo ? byText : byCode) : byText;
            }

            if (byText == BounceReasons.UserUnknown)
            {
                // "does not exist" may be about the sender's domain or anything else; a precise code says what, except
                // when the words answered RCPT TO (or the code is x.1.10, which Microsoft uses for unknown recipients)
                return command == SmtpStage.RcptTo || byCode == BounceReasons.NotAccept ? byText : byCode;
            }

            return Rank(byText) < Rank(byCode) ? byText : byCode;
        }

        private static bool IsSizeReason(string reason) => reason == BounceReasons.MesgTooBig || reason == BounceReasons.ExceedLimit;

        /// <summary>The SMTP step at which the remote server refused, as far as the bounce tells.</summary>
        internal enum SmtpStage
        {
            Unknown,
            Connect,
            Helo,
            MailFrom,
            RcptTo,
            Data,
        }

        // "in reply to RCPT TO command" (Postfix), "after RCPT TO:" / "after end of data" (Exim), "did not like our RCPT TO"
        // (qmail-like), "SMTP command: RCPT", ">>> DATA" followed by "<<< 550 ..." (Sendmail transcripts).
        private static readonly Regex StageWords = new Regex(
            @"in reply to (?:the )?(?<c>rcpt to|rcpt|mail from|mail|end of data|data|helo|ehlo|starttls|auth|quit)\b"
            + @"|after (?:pipelined )?(?<c>rcpt to|rcpt|mail from|mail|end of data|data|initial connection|helo|ehlo|starttls|auth)\b"
            + @"|did not like our (?<c>rcpt to|mail from|final data|data|helo|ehlo)\b"
            + @"|smtp command:? (?<c>rcpt|mail|data|helo|ehlo)\b"
            + @"|most progress was (?<c>rcpt to|mail from|data|helo|ehlo)\b"
            + @"|\bsmtp:(?<c>rcpt|mail|data|helo|ehlo)\b"
            + @"|(?<c>rcpt to|mail from|data) command (?:failed|rejected)"
            + @"|\[(?<c>rcpt_to|mail_from|data)\]",
            RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        private static readonly Regex TranscriptCommand = new Regex(@">>>\s*(?<c>ehlo|helo|mail from|mail|rcpt to|rcpt|data|bdat|starttls|auth)\b", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        private static readonly Regex StagePhrases = new Regex(
            @"(?<conn>refused to talk to me|greeting (was )?(refused|rejected))|(?<mail>sender was rejected|rejected the sender|sender address rejected)|(?<helo>my name was rejected|helo command rejected|greeting)|(?<rcpt>does not like recipient|recipient address rejected)",
            RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        internal static SmtpStage SmtpCommand(string text)
        {
            var m = StageWords.Match(text);
            if (m.Success)
            {
                return StageOf(m.Groups["c"].Value);
            }

            // a transcript: the last command sent before the refusal
            var last = TranscriptCommand.Matches(text).Cast<Match>().LastOrDefault();
            if (last != null)
            {
                return StageOf(last.Groups["c"].Value);
            }

            var p = StagePhrases.Match(text);
            if (p.Success)
            {
                return p.Groups["conn"].Success ? SmtpStage.Connect : p.Groups["mail"].Success ? SmtpStage.MailFrom : p.Groups["helo"].Success ? SmtpStage.Helo : SmtpStage.RcptTo;
            }

            return SmtpStage.Unknown;
        }

        private static SmtpStage StageOf(string command)
        {
            var c = command.ToLowerInvariant();
            if (c.StartsWith("rcpt", StringComparison.Ordinal))
            {
                return SmtpStage.RcptTo;
            }

            if (c.StartsWith("mail", StringComparison.Ordinal))
            {
                return SmtpStage.MailFrom;
            }

            if (c.Contains("data") || c == "bdat")
            {
                return SmtpStage.Data;
            }

            if (c == "helo" || c == "ehlo" || c == "starttls" || c == "auth")
            {
                return SmtpStage.Helo;
            }

            return c == "initial connection" ? SmtpStage.Connect : SmtpStage.Unknown;
        }

        /// <summary>
        /// The SMTP stage changes the meaning: a refusal at MAIL FROM concerns the sender (rejected); "unknown user"
        /// words that were not the answer to RCPT TO come from a filter that read the message (filtered), unless the
        /// status code itself says the address is unknown.
        /// </summary>
        // a refusal that names the connecting client (its IP, its network, its provider) is about the client, whatever the stage
        private static readonly Regex ClientWords = new Regex(@"\b(your|client|sending|connecting) (ip|host|network|server)\b|\bisp\b|internet service provider|dynamic ip|\bdnsbl\b|\brbl\b|open relay|\b(messages?|mail|e-?mail|connections?) from \[?\d{1,3}(\.\d{1,3}){3}\b",
            RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        private static string AdjustForStage(string reason, string? byCode, string? statusCode, int replyCode, SmtpStage command, string text)
        {
            if (command == SmtpStage.MailFrom && (reason == BounceReasons.UserUnknown || reason == BounceReasons.HostUnknown || reason == BounceReasons.SpamDetected
                || reason == BounceReasons.PolicyViolation || reason == BounceReasons.OnHold
                || (reason == BounceReasons.Blocked && !ClientWords.IsMatch(text))))
            {
                return BounceReasons.Rejected;
            }

            if (command == SmtpStage.Connect && (reason == BounceReasons.SystemError || reason == BounceReasons.SystemFull))
            {
                // the server's greeting itself refused us ("try later", "service refused"): the client was turned away
                return BounceReasons.Blocked;
            }

            if (reason == BounceReasons.UserUnknown && byCode != BounceReasons.UserUnknown && !IsAddressStatus(statusCode)
                && (command == SmtpStage.Data || command == SmtpStage.Unknown) && !DirectoryLookupWords.IsMatch(text))
            {
                // "Unknown user" proves that the address does not exist when it answered RCPT TO or came with an address
                // status code (x.1.x). Said after DATA, or without the step it answered and without such a code, it may
                // come from a filter that read the message (content gateways answer "550 Unknown user" to whatever they
                // refuse): filtered, a soft bounce, as sisimai reads it. A mail system's report that its own directory
                // has no such recipient ("not listed in Domino Directory", "The recipient name is not recognized") is
                // not a filter's answer and stays userunknown.
                return BounceReasons.Filtered;
            }

            return reason;
        }

        // the receiving system's directory lookup found no such recipient (Lotus Domino/Notes, Exchange's categorizer,
        // IMail, Microsoft 365's "address couldn't be found", an MMS gateway's "no valid recipients")
        private static readonly Regex DirectoryLookupWords = new Regex(
            @"not listed in (the )?(domino directory|public name (&|and) address book|[a-z ]{0,30}(directory|address book))|recipient name is not recognized|invalid final delivery userid|no valid recipients? for|address (couldn.?t|could not) be found|^unknown user:",
            RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        /// <summary>An addressing status about the recipient (x.1.x, but not x.1.7/x.1.8, which are about the sender).</summary>
        private static bool IsAddressStatus(string? status) =>
            status != null && status.Length > 4 && status[1] == '.' && status[2] == '1' && status[3] == '.' && status.Substring(4) != "7" && status.Substring(4) != "8";

        /// <summary>RFC 3463's meaning of an enhanced status code, as a reason (null when it says nothing specific).</summary>
        /// <remarks>The stage also refines a reason found from codes alone: see <see cref="AdjustForStage"/>.</remarks>
        public static string? FromStatusCode(string? status)
        {
            if (status == null)
            {
                return null;
            }

            var m = Regex.Match(status, @"^([245])\.(\d{1,3})\.(\d{1,3})$");
            if (!m.Success)
            {
                return null;
            }

            var permanent = m.Groups[1].Value == "5";
            var subject = m.Groups[2].Value;
            var detail = m.Groups[3].Value;
            switch (subject + "." + detail)
            {
                // x.1.x: addressing
                case "1.0": return BounceReasons.UserUnknown;
                case "1.1": return BounceReasons.UserUnknown;
                case "1.2": return BounceReasons.HostUnknown;
                case "1.3": return BounceReasons.UserUnknown;
                case "1.4": return BounceReasons.Filtered;       // ambiguous: the server would not pick a mailbox
                case "1.6": return BounceReasons.HasMoved;
                case "1.7": return BounceReasons.Rejected;       // the sender's address
                case "1.8": return BounceReasons.Rejected;
                case "1.9": return BounceReasons.SystemError;
                case "1.10": return BounceReasons.NotAccept;     // null MX

                // x.2.x: the mailbox
                case "2.0": return permanent ? BounceReasons.Filtered : null;
                case "2.1": return permanent ? BounceReasons.Filtered : BounceReasons.Blocked; // disabled, not accepting (from us)
                case "2.2": return BounceReasons.MailboxFull;
                case "2.3": return BounceReasons.ExceedLimit;
                case "2.4": return BounceReasons.Filtered;       // mailing-list expansion

                // x.3.x: the receiving system
                case "3.0": return permanent ? BounceReasons.SystemError : null;
                case "3.1": return BounceReasons.SystemFull;
                case "3.2": return BounceReasons.NotAccept;
                case "3.3": return BounceReasons.SystemError;
                case "3.4": return BounceReasons.MesgTooBig;
                case "3.5": return BounceReasons.SystemError;

                // x.4.x: network and routing
                case "4.0": return permanent ? BounceReasons.NetworkError : null;
                case "4.1": return BounceReasons.Expired;        // no answer from the host
                case "4.2": return BounceReasons.NetworkError;
                case "4.3": return BounceReasons.SystemError;    // directory server failure
                case "4.4": return permanent ? BounceReasons.HostUnknown : BounceReasons.NetworkError;
                case "4.5": return BounceReasons.SystemFull;     // congestion
                case "4.6": return BounceReasons.NetworkError;   // routing loop
                case "4.7": return BounceReasons.Expired;
                case "4.8": return BounceReasons.NetworkError;

                // x.5.x: the protocol
                case "5.2": return BounceReasons.SyntaxError;
                case "5.3": return permanent ? BounceReasons.TooManyConn : BounceReasons.SystemError;
                case "5.4": return BounceReasons.SystemError;
                case "5.5": return BounceReasons.SystemError;
                case "5.6": return BounceReasons.SyntaxError;

                // x.7.x: security and policy
                case "7.1": return permanent ? BounceReasons.SecurityError : BounceReasons.Blocked;
                case "7.2": return permanent ? BounceReasons.SecurityError : BounceReasons.Blocked;
                case "7.13": return BounceReasons.Suspend;       // user account disabled
                case "7.16": return BounceReasons.MesgTooBig;
                case "7.17": return BounceReasons.HasMoved;      // mailbox owner changed
                case "7.18": return BounceReasons.HasMoved;
                case "7.20":
                case "7.21":
                case "7.22":
                case "7.23":
                case "7.24":
                case "7.26":
                case "7.29":
                    return BounceReasons.AuthFailure;            // SPF, DKIM, DMARC, ARC
                case "7.25": return BounceReasons.RequirePtr;
                case "7.27": return BounceReasons.NotAccept;     // null MX
                case "7.28": return BounceReasons.SpamDetected;  // mail flood
                case "7.30": return BounceReasons.FailedStartTls;
            }

            return subject switch
            {
                "6" => BounceReasons.ContentError,
                "7" when detail != "0" => BounceReasons.SecurityError,
                "7" when permanent => BounceReasons.SecurityError,
                _ => null,
            };
        }

        private static readonly Regex ReplyPrefix = new Regex(@"(?<![\w.])([245]\d\d)[ -](?:([245]\.\d{1,3}\.\d{1,3}) )?", RegexOptions.CultureInvariant);

        /// <summary>
        /// A multi-line SMTP reply folded into one line ("550-5.7.1 Messages with multiple 550-5.7.1 addresses in From:
        /// 550 5.7.1 header are not accepted") reads as its words once the repeated code prefixes of the continuation
        /// lines are taken out; the first prefix stays.
        /// </summary>
        internal static string JoinReplyLines(string text)
        {
            var first = ReplyPrefix.Match(text);
            if (!first.Success)
            {
                return text;
            }

            var code = first.Groups[1].Value;
            var status = first.Groups[2].Value;
            var rest = text.Substring(first.Index + first.Length);
            var joined = ReplyPrefix.Replace(rest, m => m.Groups[1].Value == code && m.Groups[2].Value == status && status.Length > 0 ? "" : m.Value);
            return text.Substring(0, first.Index + first.Length) + joined;
        }

        /// <summary>Folds a multi-line diagnostic into one line of single spaces.</summary>
        public static string Normalize(string? text) =>
            text == null ? "" : Regex.Replace(text, @"\s+", " ").Trim();

        /// <summary>
        /// The enhanced status code (2.x.x, 4.x.x or 5.x.x) a text gives for the failure. Servers often quote several
        /// (a relay's own "5.1.0 Unknown address error" wrapped round the remote's "5.7.1 ... Access denied"): the first
        /// specific one wins over codes that only name a class or subject (x.0.0, x.y.0) and over codes RFC 3463 itself
        /// calls a fallback (4.4.7 "delivery time expired", 4.7.0, 5.3.x, x.5.1/2/4/5); when every code is vague, the
        /// first one that is not x.0.0, else the first.
        /// </summary>
        public static string? FindStatusCode(string? text)
        {
            string? first = null;
            string? firstNotClassOnly = null;
            foreach (Match m in Enhanced.Matches(text ?? ""))
            {
                var code = m.Value;
                first ??= code;
                if (!IsVagueCode(code))
                {
                    return code;
                }

                if (!code.EndsWith(".0.0", StringComparison.Ordinal))
                {
                    firstNotClassOnly ??= code;
                }
            }

            return firstNotClassOnly ?? first;
        }

        /// <summary>
        /// The more telling of the Status field of a DSN and the code in its diagnostic text: a vague Status (x.0.0,
        /// x.y.0, 4.4.7...) gives way to a specific code in the text; a specific Status stands.
        /// </summary>
        public static string? PreferStatusCode(string? statusField, string? codeInText)
        {
            if (statusField == null)
            {
                return codeInText;
            }

            if (codeInText == null || codeInText == statusField)
            {
                return statusField;
            }

            if (statusField.EndsWith(".0.0", StringComparison.Ordinal))
            {
                return codeInText;
            }

            return IsVagueCode(statusField) && !IsVagueCode(codeInText) ? codeInText : statusField;
        }

        /// <summary>A code that names only a class or subject, or one RFC 3463 says to use when nothing better is known.</summary>
        internal static bool IsVagueCode(string code)
        {
            var parts = code.Split('.');
            if (parts.Length != 3)
            {
                return true;
            }

            return parts[2] == "0" || code == "4.4.7" || code == "4.7.0" || code.StartsWith("5.3.", StringComparison.Ordinal)
                || (parts[1] == "5" && (parts[2] == "1" || parts[2] == "2" || parts[2] == "4" || parts[2] == "5"));
        }

        /// <summary>The first SMTP reply code in a text (0: none).</summary>
        public static int FindReplyCode(string? text)
        {
            var m = Reply.Match(Normalize(text));
            return m.Success ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        }

        internal static IEnumerable<string> ReasonsInOrder => TextRules.Select(r => r.Reason);
    }
}
