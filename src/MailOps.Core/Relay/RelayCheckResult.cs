using System;
using System.Collections.Generic;
using System.Linq;

namespace MailOps.Core.Relay
{
    public enum RelayStatus
    {
        Healthy,
        Degraded,
        Failed,
    }

    public enum FindingSeverity
    {
        Info,
        Warning,
        Error,
        Critical,
    }

    /// <summary>The stages of an SMTP conversation, in order (like swaks' --quit-after points).</summary>
    public enum RelayStage
    {
        Connect,
        Ehlo,
        Tls,
        Auth,
        Mail,
        Rcpt,
        Data,
    }

    /// <summary>One thing the check found: how bad, a stable code scripts can match, the stage, and a sentence.</summary>
    public sealed class RelayFinding
    {
        internal RelayFinding(FindingSeverity severity, string code, RelayStage? stage, string message)
        {
            Severity = severity;
            Code = code;
            Stage = stage;
            Message = message;
        }

        public FindingSeverity Severity { get; }
        public string Code { get; }

        /// <summary>The SMTP stage concerned (null for DNS checks).</summary>
        public RelayStage? Stage { get; }
        public string Message { get; }

        public override string ToString() => $"{Severity} {Code}: {Message}";
    }

    /// <summary>What the server announced in its EHLO reply.</summary>
    public sealed class SmtpCapabilities
    {
        internal SmtpCapabilities(IReadOnlyList<string> lines)
        {
            Raw = lines;
            foreach (var line in lines.Skip(1))
            {
                var parts = line.Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length == 0)
                {
                    continue;
                }

                var keyword = parts[0].ToUpperInvariant();
                switch (keyword)
                {
                    case "SIZE":
                        SizeSupported = true;
                        if (parts.Length > 1 && long.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var size))
                        {
                            MaxSize = size;
                        }

                        break;
                    case "PIPELINING":
                        Pipelining = true;
                        break;
                    case "8BITMIME":
                        EightBitMime = true;
                        break;
                    case "SMTPUTF8":
                        SmtpUtf8 = true;
                        break;
                    case "CHUNKING":
                        Chunking = true;
                        break;
                    case "DSN":
                        Dsn = true;
                        break;
                    case "STARTTLS":
                        StartTls = true;
                        break;
                    case "ENHANCEDSTATUSCODES":
                        EnhancedStatusCodes = true;
                        break;
                    case "XCLIENT":
                        XClient = true;
                        break;
                    case "AUTH":
                        AuthMechanisms = AuthMechanisms.Concat(parts.Skip(1).Select(p => p.ToUpperInvariant())).Distinct().ToList();
                        break;
                    default:
                        if (keyword.StartsWith("AUTH=", StringComparison.Ordinal))
                        {
                            AuthMechanisms = AuthMechanisms.Concat(new[] { keyword.Substring(5) }.Concat(parts.Skip(1).Select(p => p.ToUpperInvariant()))).Distinct().ToList();
                        }

                        break;
                }
            }
        }

        /// <summary>The reply lines as received (the first is the greeting line).</summary>
        public IReadOnlyList<string> Raw { get; }
        public bool SizeSupported { get; }

        /// <summary>SIZE's limit in bytes (null: no limit announced).</summary>
        public long? MaxSize { get; }
        public bool Pipelining { get; }
        public bool EightBitMime { get; }
        public bool SmtpUtf8 { get; }
        public bool Chunking { get; }
        public bool Dsn { get; }
        public bool StartTls { get; }
        public bool EnhancedStatusCodes { get; }
        public bool XClient { get; }
        public IReadOnlyList<string> AuthMechanisms { get; } = Array.Empty<string>();

        public override string ToString()
        {
            var names = new List<string>();
            if (SizeSupported)
            {
                names.Add(MaxSize.HasValue ? $"SIZE {MaxSize}" : "SIZE");
            }

            if (Pipelining) names.Add("PIPELINING");
            if (EightBitMime) names.Add("8BITMIME");
            if (SmtpUtf8) names.Add("SMTPUTF8");
            if (Chunking) names.Add("CHUNKING");
            if (Dsn) names.Add("DSN");
            if (StartTls) names.Add("STARTTLS");
            if (AuthMechanisms.Count > 0) names.Add("AUTH " + string.Join(" ", AuthMechanisms));
            return string.Join(", ", names);
        }
    }

    /// <summary>The TLS session and the server's certificate.</summary>
    public sealed class TlsReport
    {
        internal TlsReport(string protocol, string cipherSuite, string subject, string issuer, IReadOnlyList<string> names,
            DateTime notBefore, DateTime notAfter, int daysUntilExpiry, bool hostNameMatches, bool chainValid, string chainStatus,
            string thumbprint, string validatedWith)
        {
            Protocol = protocol;
            CipherSuite = cipherSuite;
            Subject = subject;
            Issuer = issuer;
            Names = names;
            NotBefore = notBefore;
            NotAfter = notAfter;
            DaysUntilExpiry = daysUntilExpiry;
            HostNameMatches = hostNameMatches;
            ChainValid = chainValid;
            ChainStatus = chainStatus;
            Thumbprint = thumbprint;
            ValidatedWith = validatedWith;
        }

        /// <summary>Tls12, Tls13...; empty when the handshake did not complete.</summary>
        public string Protocol { get; }
        public string CipherSuite { get; }
        public string Subject { get; }
        public string Issuer { get; }

        /// <summary>The subject alternative names (DNS names and IP addresses).</summary>
        public IReadOnlyList<string> Names { get; }
        public DateTime NotBefore { get; }
        public DateTime NotAfter { get; }
        public int DaysUntilExpiry { get; }
        public bool HostNameMatches { get; }
        public bool ChainValid { get; }

        /// <summary>Why the chain is not valid ("" when it is).</summary>
        public string ChainStatus { get; }
        public string Thumbprint { get; }

        /// <summary>What the certificate was checked against: system trust, a CA file, or nothing (skipped).</summary>
        public string ValidatedWith { get; }

        public override string ToString() => string.IsNullOrEmpty(Protocol) ? "handshake failed" : $"{Protocol} {CipherSuite}";
    }

    public sealed class AuthReport
    {
        internal AuthReport(bool succeeded, string? mechanism, string reply)
        {
            Succeeded = succeeded;
            Mechanism = mechanism;
            Reply = reply;
        }

        public bool Succeeded { get; }
        public string? Mechanism { get; }

        /// <summary>The server's exact final reply (never the credential).</summary>
        public string Reply { get; }

        public override string ToString() => Succeeded ? $"OK ({Mechanism})" : "Failed: " + Reply;
    }

    public enum RecipientOutcome
    {
        Accepted,
        TemporaryFailure,
        PermanentFailure,
        NotTried,
    }

    public sealed class RecipientReport
    {
        internal RecipientReport(string address, RecipientOutcome outcome, int code, string? enhancedStatusCode, string reply, double milliseconds)
        {
            Address = address;
            Outcome = outcome;
            Code = code;
            EnhancedStatusCode = enhancedStatusCode;
            Reply = reply;
            Milliseconds = milliseconds;
        }

        public string Address { get; }
        public RecipientOutcome Outcome { get; }
        public int Code { get; }
        public string? EnhancedStatusCode { get; }
        public string Reply { get; }
        public double Milliseconds { get; }

        public override string ToString() => $"{Address}: {Outcome} ({Reply})";
    }

    public sealed class OpenRelayReport
    {
        internal OpenRelayReport(bool? isOpen, string recipient, string reply, string? clientAddress)
        {
            IsOpen = isOpen;
            Recipient = recipient;
            Reply = reply;
            ClientAddress = clientAddress;
        }

        /// <summary>True: accepted an outside recipient without authentication. Null: the test could not be made.</summary>
        public bool? IsOpen { get; }
        public string Recipient { get; }
        public string Reply { get; }

        /// <summary>The outside address the test posed as with XCLIENT, when the server allowed it.</summary>
        public string? ClientAddress { get; }

        public override string ToString() => IsOpen == null ? "unknown" : IsOpen.Value ? "OPEN" : "closed";
    }

    public sealed class DnsblReport
    {
        internal DnsblReport(string zone, bool? listed, string? codes, string? text)
        {
            Zone = zone;
            Listed = listed;
            Codes = codes;
            Text = text;
        }

        public string Zone { get; }

        /// <summary>Null: the lookup failed (unknown, not "not listed").</summary>
        public bool? Listed { get; }
        public string? Codes { get; }
        public string? Text { get; }

        public override string ToString() => $"{Zone}: {(Listed == null ? "unknown" : Listed.Value ? "LISTED" : "not listed")}";
    }

    /// <summary>Milliseconds spent in each stage (null: the stage did not run).</summary>
    public sealed class RelayTimings
    {
        internal double? Connect { get; set; }
        internal double? Banner { get; set; }
        internal double? Ehlo { get; set; }
        internal double? Tls { get; set; }
        internal double? Auth { get; set; }
        internal double? Mail { get; set; }
        internal List<double> RcptList { get; } = new List<double>();
        internal double? Data { get; set; }
        internal double Total { get; set; }

        public double? ConnectMs => Connect;
        public double? BannerMs => Banner;
        public double? EhloMs => Ehlo;
        public double? TlsMs => Tls;
        public double? AuthMs => Auth;
        public double? MailMs => Mail;
        public IReadOnlyList<double> RcptMs => RcptList;
        public double? DataMs => Data;
        public double TotalMs => Total;

        public override string ToString() =>
            string.Join(" ", new[] { ("connect", Connect), ("banner", Banner), ("ehlo", Ehlo), ("tls", Tls), ("auth", Auth), ("mail", Mail), ("data", Data) }
                .Where(x => x.Item2.HasValue).Select(x => $"{x.Item1}={x.Item2:0}")) + $" total={Total:0}";
    }

    /// <summary>The result of one relay check.</summary>
    public sealed partial class RelayCheckResult
    {
        private readonly List<RelayFinding> _findings = new List<RelayFinding>();

        internal RelayCheckResult(string relay, string server, int port, string security)
        {
            Relay = relay;
            Server = server;
            Port = port;
            Security = security;
        }

        /// <summary>The relay's name in the configuration, or host:port.</summary>
        public string Relay { get; }
        public string Server { get; }
        public int Port { get; }
        public string Security { get; }
        public RelayStatus Status => ComputeStatus();
        public IReadOnlyList<RelayFinding> Findings => _findings;

        /// <summary>The address connected to.</summary>
        public string? Address { get; internal set; }
        public string? Banner { get; internal set; }
        public string? HeloName { get; internal set; }
        public SmtpCapabilities? Capabilities { get; internal set; }
        public TlsReport? Tls { get; internal set; }
        public AuthReport? Auth { get; internal set; }
        public string? MailReply { get; internal set; }
        public IReadOnlyList<RecipientReport> Recipients { get; internal set; } = Array.Empty<RecipientReport>();

        /// <summary>With -SendTestMessage: the Message-Id of the test message, and the queue id the server gave.</summary>
        public string? TestMessageId { get; internal set; }
        public string? QueueId { get; internal set; }
        public OpenRelayReport? OpenRelay { get; internal set; }
        public RelayTimings Timings { get; } = new RelayTimings();

        /// <summary>The last stage completed.</summary>
        public RelayStage? CompletedStage { get; internal set; }

        /// <summary>The stage at which the conversation failed (null: it did not fail).</summary>
        public RelayStage? FailedStage { get; internal set; }

        internal bool ConversationFailed => FailedStage.HasValue;

        internal void Add(FindingSeverity severity, string code, RelayStage? stage, string message) =>
            _findings.Add(new RelayFinding(severity, code, stage, message));

        internal void Fail(RelayStage stage, string code, string message)
        {
            FailedStage ??= stage;
            Add(FindingSeverity.Error, code, stage, message);
        }

        private RelayStatus ComputeStatus()
        {
            if (FailedStage.HasValue || _findings.Any(f => f.Severity == FindingSeverity.Critical))
            {
                return RelayStatus.Failed;
            }

            return _findings.Any(f => f.Severity == FindingSeverity.Error || f.Severity == FindingSeverity.Warning) ? RelayStatus.Degraded : RelayStatus.Healthy;
        }

        public override string ToString() => $"{Relay}: {Status}";
    }
}
