using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.RegularExpressions;

namespace MailOps.Core.Bounces
{
    /// <summary>
    /// What large receiving providers mean by their own rejection codes and wording. Orange answers "LPN007_416" for an
    /// unknown recipient, Cox "AUP#CXBL" for a blocked sending IP, Yahoo "dd This user doesn't have a yahoo.com
    /// account"; the generic words-and-codes classifier cannot know that. A provider is recognised by the recipient's
    /// domain or the host that answered (label-aware suffixes), and its table, taken from the provider's published
    /// error-code documentation (URLs in the comments), is asked before the generic rules. A provider whose table says
    /// nothing leaves the decision to them.
    /// </summary>
    public static class ReceivingProviders
    {
        /// <summary>The facts a provider table looks at.</summary>
        internal sealed class Input
        {
            public Input(string text, string? status, int reply, BounceClassifier.SmtpStage stage)
            {
                Text = text;
                Lower = text.ToLowerInvariant();
                Status = status;
                Reply = reply;
                Stage = stage;
            }

            public string Text { get; }
            public string Lower { get; }
            public string? Status { get; }
            public int Reply { get; }
            public BounceClassifier.SmtpStage Stage { get; }
        }

        internal sealed class Provider
        {
            public Provider(string name, string[] domains, string[] hosts, Func<Input, string?> rule)
            {
                Name = name;
                Domains = domains;
                Hosts = hosts;
                Rule = rule;
            }

            public string Name { get; }
            public string[] Domains { get; }
            public string[] Hosts { get; }
            public Func<Input, string?> Rule { get; }
        }

        /// <summary>The provider whose table applies to a recipient domain or an answering host, or null.</summary>
        public static string? Recognise(string? recipientDomain, string? remoteHost) => Find(recipientDomain, remoteHost)?.Name;

        /// <summary>
        /// The reason the receiving provider's own table gives for this failure, or null when the provider is not
        /// recognised or its table does not cover the text.
        /// </summary>
        public static string? Classify(string? recipientDomain, string? remoteHost, string? diagnostic, string? statusCode, int replyCode) =>
            Classify(recipientDomain, remoteHost, diagnostic, statusCode, replyCode, BounceClassifier.SmtpStage.Unknown);

        internal static string? Classify(string? recipientDomain, string? remoteHost, string? diagnostic, string? statusCode, int replyCode, BounceClassifier.SmtpStage stage)
        {
            var text = BounceClassifier.JoinReplyLines(BounceClassifier.Normalize(diagnostic));
            if (text.Length == 0)
            {
                return null;
            }

            var provider = Find(recipientDomain, remoteHost);
            var helpKey = GoogleHelpKey.Match(text);
            if (helpKey.Success && GoogleHelpKeys.TryGetValue(helpKey.Groups[1].Value, out var byKey))
            {
                // Google links each refusal to its help article: the article's key names the reason, whoever relayed it
                return byKey;
            }

            if (provider == null)
            {
                return null;
            }

            statusCode ??= BounceClassifier.FindStatusCode(text);
            if (replyCode == 0)
            {
                replyCode = BounceClassifier.FindReplyCode(text);
            }

            if (stage == BounceClassifier.SmtpStage.Unknown)
            {
                stage = BounceClassifier.SmtpCommand(text);
            }

            return provider.Rule(new Input(text, statusCode, replyCode, stage));
        }

        private static Provider? Find(string? recipientDomain, string? remoteHost)
        {
            var domain = (recipientDomain ?? "").Trim().TrimEnd('.').ToLowerInvariant();
            var host = (remoteHost ?? "").Trim().TrimEnd('.').ToLowerInvariant();
            if (domain.Length > 0)
            {
                foreach (var p in All)
                {
                    if (p.Domains.Any(d => EndsWithLabels(domain, d)))
                    {
                        return p;
                    }
                }
            }

            if (host.Length > 0)
            {
                foreach (var p in All)
                {
                    if (p.Hosts.Any(h => EndsWithLabels(host, h)))
                    {
                        return p;
                    }
                }
            }

            return null;
        }

        /// <summary>"mx1.mail.icloud.com" ends with the labels "icloud.com"; "xcox.net" does not end with "cox.net".</summary>
        internal static bool EndsWithLabels(string name, string suffix) =>
            name == suffix || (name.EndsWith(suffix, StringComparison.Ordinal) && name[name.Length - suffix.Length - 1] == '.');

        // ---------------------------------------------------------------------------------------------------------
        // helpers for the tables

        private static Func<Input, string?> Phrases(params (string Phrase, string Reason)[] rows) => i =>
        {
            foreach (var (phrase, reason) in rows)
            {
                if (i.Lower.Contains(phrase))
                {
                    return reason;
                }
            }

            return null;
        };

        private static Func<Input, string?> First(params Func<Input, string?>[] rules) => i =>
        {
            foreach (var r in rules)
            {
                var reason = r(i);
                if (reason != null)
                {
                    return reason;
                }
            }

            return null;
        };

        private static bool StatusIs(Input i, string status) =>
            i.Status != null && i.Status.Substring(1) == status.Substring(1); // the class digit (4/5) aside

        // Microsoft: (status, optional range of the detail number, phrase) -> reason
        private static Func<Input, string?> StatusPhrases(params (string Status, int Low, int High, string Phrase, string Reason)[] rows) => i =>
        {
            if (i.Status == null)
            {
                return null;
            }

            var parts = i.Status.Split('.');
            foreach (var (status, low, high, phrase, reason) in rows)
            {
                bool statusMatches;
                if (low < 0)
                {
                    statusMatches = i.Status == status;
                }
                else
                {
                    var prefix = status.Substring(0, status.LastIndexOf('.') + 1);
                    statusMatches = i.Status.StartsWith(prefix, StringComparison.Ordinal) && parts.Length == 3
                        && int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var detail) && detail >= low && detail <= high;
                }

                if (statusMatches && i.Lower.Contains(phrase))
                {
                    return reason;
                }
            }

            return null;
        };

        private static (string, int, int, string, string) S(string status, string phrase, string reason) => (status, -1, -1, phrase, reason);

        private static (string, int, int, string, string) S(string status, int low, int high, string phrase, string reason) => (status, low, high, phrase, reason);

        private static readonly Regex GoogleHelpKey = new Regex(@"support\.google\.com/mail/\??(?:answer/\d+)?\?p=([A-Za-z]+)", RegexOptions.CultureInvariant);

        // the keys of Google's bounce help articles (https://support.google.com/mail/?p=<key>)
        private static readonly Dictionary<string, string> GoogleHelpKeys = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["NoSuchUser"] = BounceReasons.UserUnknown,
            ["DisabledUser"] = BounceReasons.Suspend,
            ["OverQuotaPerm"] = BounceReasons.MailboxFull,
            ["OverQuotaTemp"] = BounceReasons.MailboxFull,
            ["CustomFromDenied"] = BounceReasons.Rejected,      // the sender's "Send mail as" address was refused
            ["DmarcRejection"] = BounceReasons.AuthFailure,
            ["UnsolicitedMessageError"] = BounceReasons.SpamDetected,
            ["UnsolicitedRateLimitError"] = BounceReasons.Blocked,
            ["ReceivingRate"] = BounceReasons.Speeding,
        };

        private static readonly Regex CoxCode = new Regex(@"AUP#([A-Z0-9]+)", RegexOptions.CultureInvariant);
        private static readonly Regex SpectrumCode = new Regex(@"AUP#[-A-Za-z]*(\d{4})", RegexOptions.CultureInvariant);
        private static readonly Regex OrangeCode = new Regex(@"\b(?:lpn|ofr|ouk)[a-z]*\d*[_-]?(\d{3})\b", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
        private static readonly Regex GoDaddyCode = new Regex(@"\bIB(\d{3})\b", RegexOptions.CultureInvariant);
        private static readonly Regex FacebookCode = new Regex(@"\b(POL|MSG|RCP|DNS|CON|INT)-([PT]\d)\b", RegexOptions.CultureInvariant);
        private static readonly Regex IuaCode = new Regex(@"\.i\.ua/err/(\d+)/", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
        private static readonly Regex OutlookComCode = new Regex(@"\b(RP|SC|DY|OU)-(\d{3})\b", RegexOptions.CultureInvariant);

        private static Func<Input, string?> Coded(Regex pattern, Func<string, string?> lookup) => i =>
        {
            foreach (Match m in pattern.Matches(i.Text))
            {
                var reason = lookup(m.Groups[m.Groups.Count - 1].Value);
                if (reason != null)
                {
                    return reason;
                }
            }

            return null;
        };

        // ---------------------------------------------------------------------------------------------------------
        // the tables

        // Cox: https://www.cox.com/business/support/email-error-codes.html
        private static readonly Dictionary<string, string> CoxCodes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["CXBL"] = BounceReasons.Blocked, ["CDRBL"] = BounceReasons.Blocked, ["CXDNS"] = BounceReasons.RequirePtr,
            ["CXSNDR"] = BounceReasons.AuthFailure, ["CXSMTP"] = BounceReasons.Rejected, ["CXCNCT"] = BounceReasons.TooManyConn,
            ["CXMXRT"] = BounceReasons.TooManyConn, ["CXTHRT"] = BounceReasons.SecurityError, ["CXMJ"] = BounceReasons.SecurityError,
        };

        private static string? Cox(string code) =>
            CoxCodes.TryGetValue(code, out var r) ? r
            : code.StartsWith("IPBL", StringComparison.Ordinal) ? BounceReasons.Blocked
            : code.StartsWith("URLBL", StringComparison.Ordinal) ? BounceReasons.SpamDetected
            : null;

        // Spectrum (Charter): https://www.spectrumbusiness.net/support/internet/understanding-email-error-codes
        private static string? Spectrum(string digits)
        {
            var c = int.Parse(digits, CultureInfo.InvariantCulture);
            return c switch
            {
                1000 => BounceReasons.Blocked,
                1010 => BounceReasons.Rejected,
                >= 1020 and <= 1080 => BounceReasons.Rejected,
                1090 => BounceReasons.SystemError,
                >= 1100 and <= 1150 => BounceReasons.RequirePtr,
                >= 1160 and <= 1190 => BounceReasons.PolicyViolation,
                >= 1200 and <= 1250 => BounceReasons.Blocked,
                1260 => BounceReasons.NetworkError,
                >= 1300 and <= 1340 => BounceReasons.TooManyConn,
                >= 1350 and <= 1490 => BounceReasons.Speeding,
                1500 or 1520 => BounceReasons.Rejected,
                1530 => BounceReasons.MesgTooBig,
                1540 or 1550 or 1580 => BounceReasons.Speeding,
                1560 => BounceReasons.PolicyViolation,
                _ => null,
            };
        }

        // Orange / Wanadoo / La Poste: https://postmaster.orange.fr/index.html (LPNxxx_NNN, OFRxxx_NNN, OUK_NNN)
        private static string? Orange(string digits)
        {
            var c = int.Parse(digits, CultureInfo.InvariantCulture);
            return c switch
            {
                100 or 101 or 102 or 103 => BounceReasons.Blocked,
                104 or 109 => BounceReasons.TooManyConn,
                107 => BounceReasons.RequirePtr,
                >= 200 and <= 209 => BounceReasons.Blocked,         // invalid HELO/EHLO
                305 or 402 => BounceReasons.SecurityError,
                >= 390 and <= 399 => BounceReasons.AuthFailure,     // the sender domain's SPF
                401 or 515 or 517 or 519 => BounceReasons.AuthFailure,
                403 or 405 or 415 or 421 or 425 => BounceReasons.Rejected,
                416 => BounceReasons.UserUnknown,
                417 => BounceReasons.MailboxFull,
                420 or 426 => BounceReasons.Suspend,                // archived or blocked recipient account
                505 => BounceReasons.SystemError,
                506 => BounceReasons.SpamDetected,
                510 => BounceReasons.Blocked,
                514 => BounceReasons.MesgTooBig,
                630 => BounceReasons.PolicyViolation,
                >= 990 and <= 999 => BounceReasons.Blocked,
                _ => null,                                          // 105, 108, 423, 424, 513: "try later", say nothing
            };
        }

        // GoDaddy: https://ca.godaddy.com/help/fix-rejected-email-with-a-bounce-error-40685
        private static string? GoDaddy(string digits) => digits switch
        {
            "401" => BounceReasons.SecurityError,
            "501" or "502" => BounceReasons.NotCompliantRfc,
            "506" => BounceReasons.Rejected,
            "508" => BounceReasons.AuthFailure,
            "108" => BounceReasons.RequirePtr,
            "212" => BounceReasons.SpamDetected,
            "705" => BounceReasons.VirusDetected,
            "605" or "007" => BounceReasons.TooManyConn,
            "101" or "504" or "510" or "607" => BounceReasons.Speeding,
            "110" or "111" or "112" or "113" or "104" or "105" or "106" => BounceReasons.Blocked,
            "103" => BounceReasons.BadReputation,
            _ => null,
        };

        // Facebook: https://www.facebook.com/postmaster/response_codes
        private static string? Facebook(string prefix, string code) => (prefix + "-" + code) switch
        {
            "POL-P7" => BounceReasons.AuthFailure,
            "POL-P1" or "POL-P2" or "POL-P3" or "POL-P4" or "POL-T1" or "POL-T2" or "POL-T3" => BounceReasons.Blocked,
            "MSG-P2" => BounceReasons.ContentError,
            "RCP-P2" or "RCP-P3" => BounceReasons.Filtered,
            "MSG-P1" or "INT-P2" => BounceReasons.MesgTooBig,
            "MSG-P3" => BounceReasons.NotCompliantRfc,
            "DNS-P1" or "DNS-P2" or "DNS-T1" => BounceReasons.Rejected,
            "DNS-P3" or "DNS-T2" => BounceReasons.RequirePtr,
            "POL-P6" => BounceReasons.SpamDetected,
            "RCP-T4" => BounceReasons.Suspend,
            "RCP-T1" => BounceReasons.SystemError,
            "CON-T1" or "CON-T2" or "CON-T3" or "CON-T4" or "MSG-T1" => BounceReasons.TooManyConn,
            "RCP-P1" or "INT-P1" or "INT-P3" or "INT-P4" => BounceReasons.UserUnknown,
            "POL-P5" => BounceReasons.VirusDetected,
            _ => null,
        };

        // i.ua: https://mail.i.ua/err/<n>/
        private static string? Iua(string n) => n switch
        {
            "1" or "6" => BounceReasons.NoRelaying,
            "2" => BounceReasons.UserUnknown,
            "3" => BounceReasons.Suspend,
            "4" => BounceReasons.MailboxFull,
            "5" => BounceReasons.TooManyConn,
            "7" or "9" => BounceReasons.Blocked,
            "8" => BounceReasons.Rejected,
            "10" => BounceReasons.Filtered,
            _ => null,
        };

        // Outlook.com postmaster codes: https://sendersupport.olc.protection.outlook.com/pm/troubleshooting.aspx
        private static string? OutlookCom(Input i)
        {
            foreach (Match m in OutlookComCode.Matches(i.Text))
            {
                var code = m.Value;
                if (code.StartsWith("RP-", StringComparison.Ordinal) && (code == "RP-001" || code == "RP-002" || code == "RP-003") && i.Reply == 421)
                {
                    return BounceReasons.BadReputation;
                }

                if (i.Reply != 550)
                {
                    continue;
                }

                switch (code)
                {
                    case "SC-001":
                    case "OU-002":
                        return BounceReasons.BadReputation;
                    case "SC-002":
                        return BounceReasons.PolicyViolation;
                    case "SC-003":
                    case "SC-004":
                    case "DY-001":
                    case "OU-001":
                        return BounceReasons.Blocked;
                    case "DY-002":
                        return BounceReasons.VirusDetected;
                }
            }

            return null;
        }

        // NTT docomo: a refusal at DATA with a bare 5.0.0 is the recipient's reception filter turning the sender away
        private static string? Docomo(Input i)
        {
            if (i.Status == "5.1.1")
            {
                return BounceReasons.UserUnknown;
            }

            if (i.Status == "5.2.0")
            {
                return BounceReasons.Filtered;
            }

            var byPhrase = Phrases(
                ("552 too much mail data", BounceReasons.MailboxFull),
                ("503 bad sequence of commands", BounceReasons.SyntaxError),
                ("504 command parameter not implemented", BounceReasons.SyntaxError),
                ("552 too many recipients", BounceReasons.TooManyConn))(i);
            if (byPhrase != null)
            {
                return byPhrase;
            }

            if (i.Lower.Contains("550 unknown user"))
            {
                return i.Stage == BounceClassifier.SmtpStage.Data ? BounceReasons.Rejected : BounceReasons.UserUnknown;
            }

            return null;
        }

        // Google Workspace (googlemail.com) DNS answers
        private static string? GoogleWorkspaceDns(Input i)
        {
            var permanent = i.Status != null && i.Status.StartsWith("5", StringComparison.Ordinal) && i.Reply >= 500;
            if (i.Text.Contains("Null MX"))
            {
                return BounceReasons.NotAccept;
            }

            if (i.Text.Contains("responded with code NXDOMAIN") || i.Text.Contains("Domain name not found"))
            {
                return permanent ? BounceReasons.HostUnknown : BounceReasons.NetworkError;
            }

            if (i.Text.Contains(" had no relevant answers."))
            {
                return permanent ? null : BounceReasons.NetworkError;
            }

            return i.Text.Contains("because the address couldn't be found. Check for typos or unnecessary spaces and try again.") ? BounceReasons.UserUnknown : null;
        }

        // Gmail and Google Workspace: https://support.google.com/a/answer/3726730 (the wording of Google's replies)
        private static readonly Func<Input, string?> GoogleText = Phrases(
            ("the spf record of the sending domain", BounceReasons.AuthFailure),
            ("senders to authenticate with either spf or dkim", BounceReasons.AuthFailure),
            ("fails to pass spf checks for an spf record with a hard fail", BounceReasons.AuthFailure),
            ("has an spf record with a hard fail policy", BounceReasons.AuthFailure),
            ("is not accepted due to domain's dmarc policy", BounceReasons.AuthFailure),
            ("fails to pass authentication checks", BounceReasons.AuthFailure),
            ("senders to authenticate with spf", BounceReasons.AuthFailure),
            ("senders to authenticate their email with spf", BounceReasons.AuthFailure),
            ("senders to authenticate their email with dkim", BounceReasons.AuthFailure),
            ("senders to authenticate with dkim", BounceReasons.AuthFailure),
            ("aligned with either the authenticated spf or dkim", BounceReasons.AuthFailure),
            ("to add a dmarc record to ", BounceReasons.AuthFailure),
            ("very low reputation of the sending ip address", BounceReasons.BadReputation),
            ("very low reputation of the sending domain", BounceReasons.BadReputation),
            ("ip not in whitelist for rcpt domain", BounceReasons.Blocked),
            ("empty helo/ehlo argument not allowed", BounceReasons.Blocked),
            ("helo/ehlo argument is invalid", BounceReasons.Blocked),
            ("an unusual rate of unsolicited mail", BounceReasons.Blocked),
            ("an unusual rate of mail", BounceReasons.Blocked),
            ("exceeded google's message header size limits", BounceReasons.ExceedLimit),
            ("bytes per individual header size", BounceReasons.ExceedLimit),
            ("exceeds google's header name limit of", BounceReasons.ExceedLimit),
            ("exceeds google's message header size limit", BounceReasons.ExceedLimit),
            ("exceeds google's limit of", BounceReasons.ExceedLimit),
            ("exceeded google's message size limits", BounceReasons.MesgTooBig),
            ("exceeds google's message size limit of", BounceReasons.MesgTooBig),
            ("must issue a starttls command first", BounceReasons.FailedStartTls),
            ("starttls may not be repeated", BounceReasons.FailedStartTls),
            ("tls required for rcpt domain", BounceReasons.FailedStartTls),
            ("senders to use tls/ssl for smtp", BounceReasons.FailedStartTls),
            ("inbox is out of storage space", BounceReasons.MailboxFull),
            ("is over quota", BounceReasons.MailboxFull),
            ("email quota exceeded", BounceReasons.MailboxFull),
            ("message exceeded 50 hops", BounceReasons.NetworkError),
            ("mail relay denied", BounceReasons.NoRelaying),
            ("invalid credentials for relay", BounceReasons.NoRelaying),
            ("is not authorized to send email directly to our servers", BounceReasons.NoRelaying),
            ("missing a valid address in the from: header", BounceReasons.NotCompliantRfc),
            ("multiple addresses in from: header are not accepted", BounceReasons.NotCompliantRfc),
            ("is not rfc 5322 compliant", BounceReasons.NotCompliantRfc),
            ("missing a valid message-id: header", BounceReasons.NotCompliantRfc),
            ("contains a unicode character in a disallowed header", BounceReasons.NotCompliantRfc),
            ("encoded-word syntax is not permitted", BounceReasons.NotCompliantRfc),
            ("mail message is malformed", BounceReasons.NotCompliantRfc),
            ("illegal attachment on your message", BounceReasons.PolicyViolation),
            ("blocked because its content presents a potential security issue", BounceReasons.PolicyViolation),
            ("has a policy that prohibited", BounceReasons.PolicyViolation),
            ("sending messages with the same message-id:", BounceReasons.PolicyViolation),
            ("mail sending denied", BounceReasons.Rejected),
            ("unauthenticated email is not accepted", BounceReasons.Rejected),
            ("does not have a ptr record", BounceReasons.RequirePtr),
            (" have a ptr record, or the ptr record", BounceReasons.RequirePtr),
            ("does not meet ipv6 sending guidelines regarding ptr records", BounceReasons.RequirePtr),
            ("does not match the ip address of the hostname", BounceReasons.RequirePtr),
            ("too many login attempts", BounceReasons.SecurityError),
            ("no identity changes permitted", BounceReasons.SecurityError),
            ("application-specific password required", BounceReasons.SecurityError),
            ("please log in with your web browser", BounceReasons.SecurityError),
            ("please log in through your web browser", BounceReasons.SecurityError),
            ("username and password not accepted", BounceReasons.SecurityError),
            ("due to the nature of the content or the links within", BounceReasons.SpamDetected),
            ("likely unsolicited mail", BounceReasons.SpamDetected),
            ("is receiving mail too quickly", BounceReasons.Speeding),
            ("peak smtp relay limit exceeded for customer", BounceReasons.Speeding),
            ("rate that prevents additional messages from being delivered", BounceReasons.Speeding),
            ("daily sending quota exceeded", BounceReasons.Speeding),
            ("daily user sending limit exceeded", BounceReasons.Speeding),
            ("daily smtp relay limit exceeded for", BounceReasons.Speeding),
            ("daily smtp relay sending limit exceeded for", BounceReasons.Speeding),
            ("this mail has been rate limited", BounceReasons.Speeding),
            ("account that you tried to reach is disabled", BounceReasons.Suspend),
            ("account that you tried to reach is inactive", BounceReasons.Suspend),
            ("smtp protocol violation", BounceReasons.SyntaxError),
            ("too many unrecognized commands, goodbye", BounceReasons.SyntaxError),
            ("bad sequence of commands", BounceReasons.SyntaxError),
            ("temporary system problem", BounceReasons.SystemError),
            ("multiple destination domains per transaction is unsupported", BounceReasons.SystemError),
            ("mail server temporarily rejected message", BounceReasons.SystemError),
            ("mail server has temporarily rejected this message", BounceReasons.SystemError),
            ("your message has too many recipients", BounceReasons.TooManyConn),
            ("too many recipients for this sender", BounceReasons.TooManyConn),
            ("the email account that you tried to reach does not exist", BounceReasons.UserUnknown),
            ("we weren't able to find the recipient domain", BounceReasons.UserUnknown),
            ("is not a valid rfc 5321 address", BounceReasons.UserUnknown));

        // Microsoft 365 / Exchange Online NDR codes: https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/non-delivery-reports-in-exchange-online/non-delivery-reports-in-exchange-online
        private static readonly Func<Input, string?> MicrosoftTable = StatusPhrases(
            S("4.7.26", "must pass either spf or dkim validation, this message is not signed", BounceReasons.AuthFailure),
            S("5.7.23", "the message was rejected because of sender policy framework violation", BounceReasons.AuthFailure),
            S("5.7.509", "does not pass dmarc verification", BounceReasons.AuthFailure),
            S("5.7.515", "doesn't meet the required authentication level", BounceReasons.AuthFailure),
            S("4.7.650", "has been temporarily rate limited due to ip reputation", BounceReasons.BadReputation),
            S("4.4.2", "connection dropped", BounceReasons.Blocked),
            S("4.7.0", 500, 899, "access denied, please try again later", BounceReasons.Blocked),
            S("5.7.25", "must have a reverse dns record", BounceReasons.Blocked),
            S("5.7.506", "access denied, bad helo", BounceReasons.Blocked),
            S("5.7.507", "access denied, rejected by recipient", BounceReasons.Blocked),
            S("5.7.510", "does not accept email over ipv6", BounceReasons.Blocked),
            S("5.7.511", "access denied, banned sender", BounceReasons.Blocked),
            S("5.7.513", "using customer block list", BounceReasons.Blocked),
            S("5.7.0", 606, 649, "access denied, banned sending ip ", BounceReasons.Blocked),
            S("5.5.4", "invalid domain name", BounceReasons.Blocked),
            S("5.7.1", "part of their network is on our block list", BounceReasons.Blocked),
            S("5.3.0", "too many related errors", BounceReasons.ContentError),
            S("5.6.11", "invalid characters", BounceReasons.ContentError),
            S("5.4.11", "agent generated message depth exceeded", BounceReasons.ContentError),
            S("5.5.6", "invalid message content", BounceReasons.ContentError),
            S("5.2.3", "resolver.rst.recipsizelimit; message too large for this recipient", BounceReasons.ExceedLimit),
            S("5.3.4", "message size exceeds fixed maximum message size", BounceReasons.MesgTooBig),
            S("5.3.4", "message too big for system", BounceReasons.MesgTooBig),
            S("4.4.1", "connection timed out", BounceReasons.Expired),
            S("4.4.7", "message delayed", BounceReasons.Expired),
            S("4.4.7", "message expired", BounceReasons.Expired),
            S("5.4.300", "message expired", BounceReasons.Expired),
            S("5.4.316", "message expired", BounceReasons.Expired),
            S("4.4.8", " failed mta-sts validation", BounceReasons.FailedStartTls),
            S("5.4.8", " failed mta-sts validation", BounceReasons.FailedStartTls),
            S("4.4.317", "starttls is required to send mail", BounceReasons.FailedStartTls),
            S("5.4.317", "starttls is required to send mail", BounceReasons.FailedStartTls),
            S("5.7.51", "restrictdomainstoipaddresses or restrictdomainstocertificate", BounceReasons.FailedStartTls),
            S("5.2.2", "mailbox full", BounceReasons.MailboxFull),
            S("5.4.4", "smtpsend.dns.nonexistentdomain; nonexistent domain", BounceReasons.NetworkError),
            S("5.4.6", "hop count exceeded - possible mail loop", BounceReasons.NetworkError),
            S("5.4.6", "routing loop detected", BounceReasons.NetworkError),
            S("5.4.14", "routing loop detected", BounceReasons.NetworkError),
            S("4.4.312", "dns query failed", BounceReasons.NetworkError),
            S("5.4.312", "dns query failed", BounceReasons.NetworkError),
            S("4.4.316", "connection refused", BounceReasons.NetworkError),
            S("5.4.316", "connection refused", BounceReasons.NetworkError),
            S("5.7.1", "unable to relay", BounceReasons.NoRelaying),
            S("5.4.1", "relay access denied", BounceReasons.NoRelaying),
            S("5.7.64", "tenantattribution; relay access denied", BounceReasons.NoRelaying),
            S("4.3.2", "system not accepting network messages", BounceReasons.NotAccept),
            S("4.4.4", "hosted tenant which has no mail-enabled subscriptions", BounceReasons.NotAccept),
            S("5.0.350", "requested action not taken: policy violation detected", BounceReasons.PolicyViolation),
            S("5.7.0", 900, 999, "delivery not authorized, message refused", BounceReasons.PolicyViolation),
            S("5.1.7", "unknown sender address", BounceReasons.Rejected),
            S("5.1.0", "sender denied", BounceReasons.Rejected),
            S("5.1.8", "access denied, bad outbound sender", BounceReasons.Rejected),
            S("5.7.12", "sender was not authenticated by organization", BounceReasons.Rejected),
            S("5.7.124", "sender not in allowed-senders list", BounceReasons.Rejected),
            S("5.7.133", "sender not authenticated for group", BounceReasons.Rejected),
            S("5.7.134", "sender was not authenticated for mailbox", BounceReasons.Rejected),
            S("5.7.0", 501, 503, "access denied, spam abuse detected", BounceReasons.Rejected),
            S("5.7.0", 501, 503, "access denied, banned sender", BounceReasons.Rejected),
            S("5.7.512", "access denied, message must be rfc 5322 section 3.6.2 compliant", BounceReasons.Rejected),
            S("5.7.750", "client blocked from sending from unregistered domains", BounceReasons.Rejected),
            S("5.7.57", "client was not authenticated to send anonymous mail during mail from", BounceReasons.SecurityError),
            S("5.7.1", "client was not authenticated", BounceReasons.SecurityError),
            S("5.2.1", "content filter agent quarantined this message", BounceReasons.SpamDetected),
            S("5.5.3", "too many recipients", BounceReasons.TooManyConn),
            S("4.5.3", "too many recipients", BounceReasons.TooManyConn),
            S("4.7.652", "has exceeded the maximum number of connections", BounceReasons.TooManyConn),
            S("5.1.90", "reached your daily limit for message recipients", BounceReasons.Speeding),
            S("5.2.121", "recipient's per hour message receive limit", BounceReasons.Speeding),
            S("5.2.122", "recipient's per hour message receive limit", BounceReasons.Speeding),
            S("5.7.508", "has exceeded permitted limits within", BounceReasons.Speeding),
            S("5.7.0", 700, 749, "tenant has exceeded threshold", BounceReasons.Speeding),
            S("5.7.0", 700, 749, "traffic not accepted from this ip", BounceReasons.Speeding),
            S("5.7.504", "recipient address rejected: access denied", BounceReasons.Suspend),
            S("5.7.505", "access denied, banned recipient", BounceReasons.Suspend),
            S("5.2.1", "mailbox cannot be accessed", BounceReasons.Suspend),
            S("4.3.1", "insufficient system resources", BounceReasons.SystemFull),
            S("5.1.1", "resolver.adr.exrecipnotfound", BounceReasons.UserUnknown),
            S("5.1.1", "bad destination mailbox address", BounceReasons.UserUnknown),
            S("5.1.3", "storedrv.submit; invalid recipient address", BounceReasons.UserUnknown),
            S("5.1.10", "recipient not found", BounceReasons.UserUnknown),
            S("5.4.1", "recipient address rejected: access denied", BounceReasons.UserUnknown),
            S("5.5.0", "requested action not taken: mailbox unavailable", BounceReasons.UserUnknown),
            S("5.1.351", "remote server returned unknown recipient or mailbox unavailable", BounceReasons.UserUnknown));

        // Mimecast: https://community.mimecast.com/s/article/email-security-cloud-gateway-mimecast-smtp-error-codes
        private static Func<Input, string?> ReplyPhrases(params (int Reply, string Phrase, string Reason)[] rows) => i =>
        {
            foreach (var (reply, phrase, reason) in rows)
            {
                if (i.Reply == reply && i.Lower.Contains(phrase))
                {
                    return reason;
                }
            }

            return null;
        };

        private static readonly Provider[] All =
        {
            new Provider("AOL", new[] { "aol.com" }, new[] { "mail.aol.com", "mx.aol.com" }, i =>
                i.Text.Contains("Host or domain name not found") ? BounceReasons.HostUnknown
                : i.Text.Contains("type=MX: Malformed or unexpected name server reply") ? BounceReasons.NotAccept : null),

            // https://support.apple.com/en-us/102322
            new Provider("Apple", new[] { "icloud.com", "me.com", "mac.com", "apple.com" }, new[] { "mail.icloud.com", "apple.com", "me.com" }, Phrases(
                ("s dmarc policy", BounceReasons.AuthFailure),
                ("for failing both spf and dkim authentication checks", BounceReasons.AuthFailure),
                ("rejected due to having a domain present in the spamhaus", BounceReasons.Blocked),
                ("rejected due to listing in spamhaus", BounceReasons.Blocked),
                ("not accepting connections", BounceReasons.Blocked),
                ("recipient no longer on server", BounceReasons.HasMoved),
                ("user is over quota", BounceReasons.MailboxFull),
                ("relay access denied", BounceReasons.NoRelaying),
                ("host/domain does not accept mail", BounceReasons.NotAccept),
                ("due to local policy", BounceReasons.PolicyViolation),
                ("due to excessive volume", BounceReasons.Speeding),
                ("sender address rejected", BounceReasons.Rejected),
                ("inactive email address", BounceReasons.Suspend),
                ("user does not exist", BounceReasons.UserUnknown),
                ("unknown or illegal alias", BounceReasons.UserUnknown))),

            // https://developers.cloudflare.com/email-routing/postmaster/
            new Provider("Cloudflare", Array.Empty<string>(), new[] { "mx.cloudflare.net" }, i =>
                i.Text.Contains("found on one or more DNSBLs") ? BounceReasons.Blocked : i.Text.Contains("Upstream error") ? BounceReasons.SystemError : null),

            new Provider("Cox", new[] { "cox.net" }, new[] { "cox.net" }, First(Coded(CoxCode, Cox), Phrases(
                ("cox too many bad commands from", BounceReasons.Blocked),
                ("too many invalid recipients", BounceReasons.Blocked),
                ("dns check failure - try again later", BounceReasons.RequirePtr),
                ("rejected - no rdns", BounceReasons.RequirePtr),
                ("esmtp no data before greeting", BounceReasons.PolicyViolation),
                ("attachment extension is forbidden", BounceReasons.PolicyViolation),
                ("sender rejected", BounceReasons.Rejected),
                ("esmtp server temporarily not available", BounceReasons.SystemError),
                ("too many sessions from", BounceReasons.TooManyConn),
                ("requested action aborted: try again later", BounceReasons.TooManyConn),
                ("message threshold exceeded", BounceReasons.TooManyConn),
                ("recipient rejected", BounceReasons.UserUnknown)))),

            new Provider("Facebook", new[] { "facebook.com" }, new[] { "facebook.com" }, i =>
            {
                var m = FacebookCode.Match(i.Text);
                return m.Success ? Facebook(m.Groups[1].Value, m.Groups[2].Value) : null;
            }),

            new Provider("Orange", new[] { "orange.fr", "wanadoo.fr", "laposte.net" }, new[] { "orange.fr", "wanadoo.fr", "laposte.net" },
                First(Coded(OrangeCode, Orange), i => i.Lower.Contains("spf/dns de votre nom de domaine") ? BounceReasons.AuthFailure : null)),

            new Provider("GoDaddy", new[] { "secureserver.net" }, new[] { "secureserver.net" }, First(Coded(GoDaddyCode, GoDaddy), Phrases(
                ("rbl reject", BounceReasons.Blocked),
                ("www.spamhaus.org/query/bl?ip=", BounceReasons.Blocked),
                ("has been in the queue too long", BounceReasons.Expired),
                ("delivery timeout", BounceReasons.Expired),
                ("account storage limit", BounceReasons.MailboxFull),
                ("message rejected for spam or virus content", BounceReasons.SpamDetected),
                ("account disabled", BounceReasons.Suspend),
                ("message is looping", BounceReasons.SystemError),
                ("recipient not found", BounceReasons.UserUnknown),
                ("account does not exist", BounceReasons.UserUnknown)))),

            new Provider("Google", new[] { "gmail.com", "googlemail.com", "google.com" }, new[] { "google.com", "googlemail.com" }, First(GoogleWorkspaceDns, GoogleText)),

            new Provider("i.ua", new[] { "i.ua", "email.ua" }, new[] { "email.ua" }, Coded(IuaCode, Iua)),

            // https://www.au.com/support/service/internet/trouble/mail/01/
            new Provider("KDDI", new[] { "ezweb.ne.jp", "au.com" }, new[] { "ezweb.ne.jp", "au.com" }, i =>
                i.Lower.Contains("550 : user unknown") ? BounceReasons.Filtered
                : i.Lower.Contains(">: user unknown") ? BounceReasons.UserUnknown : null),

            // https://knowledge.broadcom.com/external/article/169652/email-error-and-bounce-codes-for-email-s.html
            new Provider("MessageLabs", Array.Empty<string>(), new[] { "messagelabs.com" }, i => Phrases(
                ("domain authentication fail", BounceReasons.AuthFailure),
                ("connection rejected by policy", BounceReasons.BadReputation),
                ("mail rejected because your ip is in the pbl", BounceReasons.Blocked),
                ("your ip address has been ", BounceReasons.Blocked),
                ("stray linefeeds in message", BounceReasons.ContentError),
                ("tls/sslv3 connection required", BounceReasons.FailedStartTls),
                (" as a relay, ", BounceReasons.NoRelaying),
                ("550 requested action aborted [4]", BounceReasons.NotCompliantRfc),
                ("has detected that this message is not rfc 5322", BounceReasons.NotCompliantRfc),
                ("sender envelope domain not allowed for sender ip address", BounceReasons.Rejected),
                ("your domain has been blocked", BounceReasons.Rejected),
                ("your email address has been blocked", BounceReasons.Rejected),
                ("your envelope sender is in my badmailfrom list", BounceReasons.Rejected),
                ("your email address has been blacklisted", BounceReasons.Rejected),
                ("your domain has been blacklisted", BounceReasons.Rejected),
                ("please turn on smtp authentication in your mail client", BounceReasons.SecurityError),
                ("message filtered", BounceReasons.SpamDetected),
                ("filtered by outbound scanning", BounceReasons.SpamDetected),
                ("too many recipients received this hour", BounceReasons.TooManyConn),
                ("too many messages", BounceReasons.TooManyConn),
                ("no such user", BounceReasons.UserUnknown),
                ("invalid recipient", BounceReasons.UserUnknown),
                ("recipient mailbox is not allowed", BounceReasons.UserUnknown),
                ("mailbox is not allowed", BounceReasons.UserUnknown))(i)),

            new Provider("Microsoft", new[] { "outlook.com", "onmicrosoft.com", "exchangelabs.com" },
                new[] { "prod.outlook.com", "protection.outlook.com", "onmicrosoft.com", "exchangelabs.com" }, First(MicrosoftTable, OutlookCom)),

            new Provider("Mimecast", Array.Empty<string>(), new[] { "mimecast.com" }, ReplyPhrases(
                (550, "spf sender invalid - envelope rejected", BounceReasons.AuthFailure),
                (550, "dkim sender invalid - envelope rejected", BounceReasons.AuthFailure),
                (550, "dmarc sender invalid - envelope rejected", BounceReasons.AuthFailure),
                (451, "internal resources are temporarily unavailable", BounceReasons.BadReputation),
                (550, "local ct ip reputation - (reject)", BounceReasons.BadReputation),
                (421, "sender address blocked", BounceReasons.Blocked),
                (451, "recipient temporarily unavailable", BounceReasons.Blocked),
                (451, "ip temporarily blacklisted", BounceReasons.Blocked),
                (553, "this route requires encryption (tls)", BounceReasons.FailedStartTls),
                (553, "this route requires tls version 1.2 or greater", BounceReasons.FailedStartTls),
                (553, "this route requires high-strength ciphers", BounceReasons.FailedStartTls),
                (554, "configuration is invalid for this certificate", BounceReasons.FailedStartTls),
                (554, "maximum email size exceeded", BounceReasons.MesgTooBig),
                (451, "the incorrect hostname used for inbounds", BounceReasons.NetworkError),
                (550, "the incorrect hostname used for inbounds", BounceReasons.NetworkError),
                (554, "mail loop detected", BounceReasons.NetworkError),
                (451, "open relay not allowed", BounceReasons.NoRelaying),
                (451, "open relay is not allowed", BounceReasons.NoRelaying),
                (451, "account inbounds disabled", BounceReasons.NotAccept),
                (550, "anti-spoofing policy - inbound not allowed", BounceReasons.PolicyViolation),
                (550, "rejected by header-based anti-spoofing policy", BounceReasons.PolicyViolation),
                (550, "message bounced due to content examination policy", BounceReasons.PolicyViolation),
                (554, "host network not allowed", BounceReasons.PolicyViolation),
                (554, "host network, not allowed", BounceReasons.PolicyViolation),
                (550, "administrative prohibition envelope blocked", BounceReasons.Rejected),
                (550, "envelope blocked - user entry", BounceReasons.Rejected),
                (550, "envelope blocked - user domain entry", BounceReasons.Rejected),
                (550, "rejected by header-based manually blocked senders", BounceReasons.Rejected),
                (550, "rejected by header-based blocked senders", BounceReasons.Rejected),
                (550, "envelope rejected - block policy for envelope from address", BounceReasons.Rejected),
                (535, "incorrect authentication data", BounceReasons.SecurityError),
                (550, "submitter failed to authenticate", BounceReasons.SecurityError),
                (451, "unable to process connection at this time", BounceReasons.SystemError),
                (451, "message ended early", BounceReasons.SystemError),
                (451, "unable to process command", BounceReasons.SystemError),
                (451, "unable to process an email at this time", BounceReasons.SystemError),
                (451, "account service is temporarily unavailable", BounceReasons.TooManyConn),
                (452, "too many recipients", BounceReasons.TooManyConn),
                (550, "exceeding outbound thread limit", BounceReasons.TooManyConn),
                (501, "invalid address", BounceReasons.UserUnknown),
                (503, "user unknown", BounceReasons.UserUnknown),
                (550, "invalid recipient", BounceReasons.UserUnknown),
                (554, "email rejected due to security policies", BounceReasons.VirusDetected))),

            new Provider("NTT docomo", new[] { "docomo.ne.jp" }, new[] { "mfsmax.docomo.ne.jp" }, Docomo),

            // Outlook.com consumer mailboxes (Hotmail): https://sendersupport.olc.protection.outlook.com/pm/troubleshooting.aspx
            new Provider("Outlook.com", new[] { "hotmail.com", "live.com", "msn.com" }, new[] { "hotmail.com" }, First(i =>
                i.Text.Contains("The mail could not be delivered to the recipient because the domain is not reachable") ? BounceReasons.HostUnknown
                : i.Text.Contains("Requested action not taken: mailbox unavailable") ? BounceReasons.UserUnknown : null, OutlookCom)),

            new Provider("Spectrum", new[] { "charter.net", "spectrum.net" }, new[] { "charter.net" }, Coded(SpectrumCode, Spectrum)),

            // https://service.mail.qq.com/detail/122
            new Provider("Tencent", new[] { "qq.com", "foxmail.com" }, new[] { "qq.com" }, Phrases(
                ("spf check failed", BounceReasons.AuthFailure),
                ("dmarc check failed", BounceReasons.AuthFailure),
                ("suspected spam ip", BounceReasons.Blocked),
                ("suspected bounce attacks", BounceReasons.Blocked),
                ("connection denied", BounceReasons.Blocked),
                ("message too large", BounceReasons.MesgTooBig),
                ("suspected spam", BounceReasons.Rejected),
                ("mail is rejected by recipients", BounceReasons.Rejected),
                ("spam is embedded in the email", BounceReasons.SpamDetected),
                ("mail content denied", BounceReasons.SpamDetected),
                ("frequency of receiving messages is limited", BounceReasons.Speeding),
                ("is a deactivated mailbox", BounceReasons.Suspend),
                ("bad address syntax", BounceReasons.SyntaxError),
                ("ip frequency limited", BounceReasons.TooManyConn),
                ("domain frequency limited", BounceReasons.TooManyConn),
                ("sender frequency limited", BounceReasons.TooManyConn),
                ("connection frequency limited", BounceReasons.TooManyConn),
                ("mailbox not found", BounceReasons.UserUnknown))),

            // https://senders.yahooinc.com/smtp-error-codes
            new Provider("Yahoo", new[] { "yahoo.com", "yahoo.co.jp", "ymail.com", "rocketmail.com" }, new[] { "yahoodns.net" }, Phrases(
                ("yahoo requires all senders to authenticate with either spf or dkim", BounceReasons.AuthFailure),
                (" because the ip is in spamhaus's list;", BounceReasons.Blocked),
                ("not accepted from ip addresses on spamhaus xbl", BounceReasons.Blocked),
                ("relaying denied for ", BounceReasons.NoRelaying),
                ("headers are not rfc compliant", BounceReasons.NotCompliantRfc),
                ("not accepted for policy reasons", BounceReasons.PolicyViolation),
                ("due to unresolvable rfc.5321 domain", BounceReasons.Rejected),
                (" will be permanently deferred", BounceReasons.Rejected),
                ("user is receiving mail too quickly", BounceReasons.Speeding),
                (" is no longer valid.", BounceReasons.Suspend),
                ("this mailbox is disabled", BounceReasons.Suspend),
                ("syntax error in parameters or arguments", BounceReasons.SyntaxError),
                ("max message per connection reached", BounceReasons.TooManyConn),
                ("dd this user doesn't have a ", BounceReasons.UserUnknown),
                ("mailbox not found", BounceReasons.UserUnknown))),

            // https://www.zoho.com/mail/help/spam-reason.html
            new Provider("Zoho", new[] { "zoho.com", "zoho.eu", "zohomail.com" }, new[] { "zoho.com", "zoho.eu" }, i =>
                i.Text.Contains("Email rejected per DMARC policy") ? BounceReasons.AuthFailure
                : i.Text.Contains("Greylisted, try again after some time") ? BounceReasons.Blocked
                : i.Text.Contains("Email cannot be delivered. Reason: Email flagged as Spam") ? BounceReasons.Rejected
                : i.Text.Contains("Mail rejected by destination domain") ? BounceReasons.Rejected
                : i.Text.Contains("Email policy violation detected") || i.Text.Contains("Mailbox delivery restricted by policy error") ? BounceReasons.PolicyViolation
                : i.Text.Contains("Temporary System Error") ? BounceReasons.SystemError
                : i.Text.Contains("User does not exist") ? BounceReasons.UserUnknown
                : i.Text.Contains(" detected by Zoho Mail") ? BounceReasons.VirusDetected : null),
        };

        /// <summary>The names of the providers whose tables are known (for documentation and tests).</summary>
        public static IReadOnlyList<string> Names => All.Select(p => p.Name).ToList();
    }
}
