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
        /// the same rule as sisimai's. Policy and spam rejections are soft: they say nothing about the address.
        /// </summary>
        public static bool IsHard(string reason, int replyCode) =>
            reason == UserUnknown || reason == HostUnknown || reason == HasMoved || (reason == NotAccept && replyCode >= 500);

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
        private static readonly Regex Enhanced = new Regex(@"\b([245])\.(\d{1,3})\.(\d{1,3})\b", RegexOptions.CultureInvariant);
        private static readonly Regex Reply = new Regex(@"(?:^|[\s:(\[""'])([245]\d\d)(?=[\s\-]|$)", RegexOptions.CultureInvariant);

        // Ordered: the first rule whose pattern is found in the text wins. Patterns are lower-case fragments or
        // regular expressions of typical server wording; they are not taken from any one corpus.
        private static readonly (string Reason, Regex Pattern)[] TextRules = new[]
        {
            R(BounceReasons.Expired, @"did not accept our requests? to connect|host not reachable"),
            R(BounceReasons.NetworkError, @"name service error.*try again|host not found, try again|temporary failure in name resolution|lost connection with"),
            R(BounceReasons.Blocked, @"refused to talk to me|not accepting connections"),
            R(BounceReasons.SystemError, @"unable to contact ldap|currently unavailable"),
            R(BounceReasons.NoRelaying, @"relay(ing)? (access )?(is )?(denied|not (permitted|allowed))|not permitted to relay|unable to relay|relay not permitted|we do not relay|relaying (mail )?(to|from) .* (is )?(not allowed|denied|prohibited)|no relaying"),
            R(BounceReasons.VirusDetected, @"\bvirus\b|malware|infected|\btrojan\b|phishing attachment"),
            R(BounceReasons.AuthFailure, @"\bspf\b|sender policy framework|\bdkim\b|\bdmarc\b|domainkeys|authentication checks? fail|not (authorized|allowed) to send (mail )?(from|on behalf)|failed (spf|dkim|dmarc)|unauthenticated (email|mail)"),
            R(BounceReasons.RequirePtr, @"reverse (dns|lookup|hostname|dns lookup)|\bptr\b|\brdns\b|no reverse|client host .* (not found|unknown)|cannot find your hostname|hostname (is )?not (found|resolvable)|does not have a reverse|dns hostname|client host rejected: cannot find"),
            R(BounceReasons.BadReputation, @"reputation|unexpected volume or user complaints|sender score"),
            R(BounceReasons.TooManyConn, @"connection rate limit|too many recipients|too many (connections|concurrent|simultaneous|sessions|smtp sessions)|connection (limit|rate) exceeded|maximum (number of )?connections"),
            R(BounceReasons.Speeding, @"rate.?limit|sending rate|too (many|much) (mail|messages|emails|recipients) (from|sent|in)|too fast|throttl|exceeded (the )?(hourly|daily|message) (limit|quota)|slow down|sending too"),
            R(BounceReasons.MailboxFull, @"mailbox (is )?full|mail ?box.{0,20}\bfull\b|over (the )?(mailbox )?quota|quota (exceeded|full|has been exceeded)|exceeded (its |the |his |her )?(storage|quota|mailbox)|storage (allocation|limit|quota)|insufficient (mailbox )?space|not enough (storage|space)|mailbox size limit|full mailbox|mailfolder is full|user is over|too much mail in|exceeds (its|the) (storage|quota|size)|disk quota"),
            R(BounceReasons.SystemFull, @"insufficient system (storage|resources)|(mail )?system (is )?full|disk (is )?full|out of disk|no space left"),
            R(BounceReasons.MesgTooBig, @"message (size )?(is )?too (big|large)|message (size )?exceeds|size (limit|exceeds)|too large|exceeds (the )?(maximum|max) (message )?size|message length exceeds|mail size"),
            R(BounceReasons.HasMoved, @"has moved|moved to|address (has )?changed|no longer (at|with) (this|our)|forwarding address"),
            R(BounceReasons.Suspend, @"(account|mailbox|user|address|recipient) (has been |is |was )?(temporarily )?(suspended|disabled|deactivated|inactive|frozen)|suspended (account|mailbox|user)|(?<!temporarily )suspended by|disabled (account|mailbox|user)|deactivated|inactive (account|mailbox|user)|(account|mailbox) (has been |is )?(locked|closed|frozen|expired|blocked by the administrator)|no longer (active|in use|valid)|account (is )?unavailable|mailbox (is )?unavailable: account"),
            R(BounceReasons.HostUnknown, @"host or domain name not found|(host|domain) (name )?(not found|unknown|does not exist|doesn.?t exist)|unknown (host|domain)|no such (host|domain)|name service error|unrouteable (mail )?domain|nxdomain|domain (is )?(invalid|not valid)|unresolvable|domain is not reachable|recipient domain .* not (found|exist)|dns (lookup )?(error|failure) for|cannot (find|resolve) (the )?domain|mail domain .* not"),
            R(BounceReasons.UserUnknown, @"user ?(name )?(unknown|not found|doesn.?t exist|does not exist|not exist|invalid|not local)|unknown (user|recipient|local|address|mailbox|alias)|no such (user|recipient|mailbox|person|address|local user|account)|(mailbox|recipient|address|account|addressee) (not found|unknown|does not exist|doesn.?t exist|unavailable|invalid|not valid)|(invalid|bad|unknown) (recipient|mailbox|destination mailbox|address|user)|does not exist|not a valid (recipient|mailbox|user|address)|(?<!sender )address rejected\.?\s*$|(address|recipient) (couldn.?t|could not|cannot|can.?t) be found|no valid recipients?|address is possibly incorrect|(wasn.?t|was not|wasnt) found at the destination|recipient not found|invalid (final )?(delivery )?(userid|user id)|doesn.?t have an? .{0,40}account|unrouteable address|undeliverable address|mailbox not available|no mailbox|is not a known user|(user|recipient) is not (found|known)|couldn.?t find (the|any) (user|recipient|mailbox)|the email account that you tried to reach does not exist|no longer exists|not our customer|user not listed|account (not found|does not exist)|recipient not (found|recognized)|not listed in"),
            R(BounceReasons.NotAccept, @"no mx (record|found)|no mail exchanger|couldn.?t find a mail exchanger|does not accept (e-?)?mail|not accepting (e-?)?mail|null ?mx|accepts no mail|no mail (is )?accepted"),
            R(BounceReasons.FailedStartTls, @"starttls|tls (is )?required|must (issue|use) (a )?starttls|encryption required|requires? (a )?secure connection"),
            R(BounceReasons.SecurityError, @"authentication (is )?required|must authenticate|authentication failed|not authenticated|auth(entication)? (credentials )?invalid|security (policy|violation)|submission requires"),
            R(BounceReasons.SpamDetected, @"spam|junk|\buce\b|unsolicited|bulk (mail|email)|content (filter|was rejected)|message content rejected|looks like (spam|junk)|scored too high|gtube|classified as|suspicious (content|message)"),
            R(BounceReasons.Blocked, @"block(ed|list)|black ?list|deny ?list|\brbl\b|dnsbl|spamhaus|spamcop|sorbs|barracuda|mailspike|listed (in|on|at|by)|client host rejected|access (denied|forbidden)|connection refused by|(your|the sending|sender) ip|ip address .* (rejected|not allowed|refused)|refused to talk|not allowed to send|connections? (from|not) .* (rejected|accepted)|invalid ip|poor reputation|banned|rejected because .* ip"),
            R(BounceReasons.Rejected, @"sender was rejected|sender (address )?(rejected|denied|refused|not allowed|verify failed|unknown|invalid)|(domain of )?sender address|envelope (from|sender)|mail from (address )?(rejected|refused|denied)|from address|return path|bad sender|sender domain|invalid sender|sender is not"),
            R(BounceReasons.PolicyViolation, @"polic(y|ies)|not accepted for .* reasons|violat|prohibited|not permitted|administrative(ly)? (prohibited|denied)|forbidden"),
            R(BounceReasons.NotCompliantRfc, @"rfc ?5322|rfc ?2822|not compliant|non-compliant|rfc compliance|multiple (from|date|subject) (headers|fields)"),
            R(BounceReasons.ContentError, @"header|improperly.?formatted|malformed|invalid (message|content|mime|character)|8-?bit|binary content|line too long|bare lf"),
            R(BounceReasons.SyntaxError, @"syntax error|command (unrecognized|not recognized)|bad sequence of commands|unrecognized command|parameter (not recognized|syntax)"),
            R(BounceReasons.MailerError, @"mailer (error|program)|command died|exit (status|code)|procmail|pipe to |\|.*returned|local delivery failed|unknown mailer error"),
            R(BounceReasons.Expired, @"will be retried|retry (period|time)|has been delayed|deliver(y|ing) (time|period)? ?(has )?expired|message expired|retry time(out)? (not reached|exceeded)|(could not|couldn.?t|unable to) (be )?deliver(ed)? .* (for|within|after) [0-9]+ (days|hours)|too (long|many retries)|giving up|time limit|expired|undeliverable for|maximum time|queue (lifetime|time)"),
            R(BounceReasons.NetworkError, @"timed? ?out|time-?out|connection (refused|reset|closed|lost|failed|dropped)|lost connection|no route to host|network (is )?unreachable|could not connect|unable to connect|cannot connect|temporary failure in name resolution|name server (timeout|failure)|dns (timeout|temporary)|servfail|no answer|conversation with .* (failed|timed)|host is down|connect to .* failed|broken pipe|tls handshake|routing loop|mail loop|too many hops"),
            R(BounceReasons.SystemError, @"system (error|problem|failure)|internal (server )?error|local error|server error|temporar(y|ily) (failure|error|unavailable|rejected|deferred)|try (again )?later|service (is )?(not )?(available|unavailable)|resources temporarily|configuration error|transaction failed|unexpected error"),
            R(BounceReasons.Filtered, @"filter(ed)?|rejected (by|due to) (content|the recipient)|not delivered to recipient|delivery not authorized|recipient (has|is) (refused|rejected)|refused by recipient"),
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
        public static string Classify(string? diagnostic, string? statusCode, int replyCode, string? context)
        {
            var text = Normalize(diagnostic);
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

            // the clearest codes win over words
            switch (statusCode)
            {
                case var s when s != null && Regex.IsMatch(s, @"^[45]\.7\.(2[3-9]|20|21|22)$"):
                    return s.EndsWith(".25", StringComparison.Ordinal) ? BounceReasons.RequirePtr : s.EndsWith(".27", StringComparison.Ordinal) ? BounceReasons.NotAccept : BounceReasons.AuthFailure;
            }

            if (text.Length > 0)
            {
                foreach (var (reason, pattern) in TextRules)
                {
                    if (pattern.IsMatch(text))
                    {
                        var adjusted = AdjustForStage(reason, stageText);
                        if (adjusted == BounceReasons.HostUnknown && statusCode != null && statusCode.StartsWith("4.", StringComparison.Ordinal))
                        {
                            // a temporary DNS failure says nothing about whether the domain exists
                            adjusted = BounceReasons.NetworkError;
                        }

                        return adjusted;
                    }
                }
            }

            var byCode = FromStatusCode(statusCode);
            if (byCode != null)
            {
                return byCode;
            }

            return replyCode switch
            {
                421 => BounceReasons.SystemError,
                450 => BounceReasons.SystemError,
                451 => BounceReasons.SystemError,
                452 => BounceReasons.SystemFull,
                552 => BounceReasons.MailboxFull,
                553 => BounceReasons.UserUnknown,
                _ => text.Length > 0 || replyCode > 0 || statusCode != null ? BounceReasons.OnHold : BounceReasons.Undefined,
            };
        }

        private static readonly Regex AfterMailFrom = new Regex(@"after mail from|in reply to mail from|mail from command|smtp command:? mail\b|rejected (the )?sender|\[mail_from\]", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
        private static readonly Regex AfterData = new Regex(@"after end of data|in reply to end of data|end of data command|after data|in reply to data|smtp command:? data\b|-+smtp command data", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        /// <summary>
        /// The SMTP stage changes the meaning: a refusal at MAIL FROM concerns the sender (rejected); an unknown user
        /// reported only after DATA comes from a content filter, not from the mailbox (filtered).
        /// </summary>
        private static string AdjustForStage(string reason, string text)
        {
            if (AfterMailFrom.IsMatch(text) && (reason == BounceReasons.UserUnknown || reason == BounceReasons.HostUnknown || reason == BounceReasons.SpamDetected
                || reason == BounceReasons.Blocked || reason == BounceReasons.PolicyViolation || reason == BounceReasons.OnHold))
            {
                return BounceReasons.Rejected;
            }

            if (reason == BounceReasons.UserUnknown && AfterData.IsMatch(text))
            {
                return BounceReasons.Filtered;
            }

            return reason;
        }

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

            var subject = m.Groups[2].Value;
            var detail = m.Groups[3].Value;
            switch (subject + "." + detail)
            {
                case "1.1": return BounceReasons.UserUnknown;
                case "1.2": return BounceReasons.HostUnknown;
                case "1.3": return BounceReasons.UserUnknown;
                case "1.4": return BounceReasons.UserUnknown;
                case "1.6": return BounceReasons.HasMoved;
                case "1.7": return BounceReasons.Rejected;
                case "1.8": return BounceReasons.Rejected;
                case "1.10": return BounceReasons.NotAccept;
                case "2.1": return BounceReasons.Suspend;
                case "2.2": return BounceReasons.MailboxFull;
                case "2.3": return BounceReasons.MesgTooBig;
                case "2.4": return BounceReasons.SystemError;
                case "3.1": return BounceReasons.SystemFull;
                case "3.2": return BounceReasons.NotAccept;
                case "3.3": return BounceReasons.SystemError;
                case "3.4": return BounceReasons.MesgTooBig;
                case "3.5": return BounceReasons.SystemError;
                case "4.1": return BounceReasons.NetworkError;
                case "4.2": return BounceReasons.NetworkError;
                case "4.3": return BounceReasons.SystemError;
                case "4.4": return BounceReasons.HostUnknown;
                case "4.5": return BounceReasons.TooManyConn;
                case "4.6": return BounceReasons.NetworkError;
                case "4.7": return BounceReasons.Expired;
                case "5.3": return BounceReasons.ExceedLimit;
                case "6.0": return BounceReasons.ContentError;
                case "7.0": return BounceReasons.SecurityError;
                case "7.1": return BounceReasons.Rejected;
                case "7.7": return BounceReasons.SecurityError;
                case "7.8": return BounceReasons.SecurityError;
                case "7.9": return BounceReasons.SecurityError;
                case "7.10": return BounceReasons.FailedStartTls;
                case "7.11": return BounceReasons.FailedStartTls;
            }

            return subject switch
            {
                "5" => BounceReasons.SyntaxError,
                "6" => BounceReasons.ContentError,
                _ => null,
            };
        }

        /// <summary>Folds a multi-line diagnostic into one line of single spaces.</summary>
        public static string Normalize(string? text) =>
            text == null ? "" : Regex.Replace(text, @"\s+", " ").Trim();

        /// <summary>The first enhanced status code (2.x.x, 4.x.x or 5.x.x) in a text.</summary>
        public static string? FindStatusCode(string? text)
        {
            var m = Enhanced.Match(text ?? "");
            return m.Success ? m.Value : null;
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
