using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Config;
using MailOps.Core.Dns;
using MailOps.Core.Smtp;

namespace MailOps.Core.Relay
{
    /// <summary>What to check on one relay.</summary>
    public sealed class RelayCheckOptions
    {
        /// <summary>The relay's name in the configuration (null: host:port is used).</summary>
        public string? Name { get; set; }
        public string Host { get; set; } = "";
        public int Port { get; set; } = 587;
        public SmtpSecurity Security { get; set; } = SmtpSecurity.Auto;
        public string? HeloName { get; set; }

        /// <summary>Applies to each network operation (connect, each reply, the TLS handshake).</summary>
        public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);
        public NetworkCredential? Credential { get; set; }
        public string? From { get; set; }
        public IReadOnlyList<string> To { get; set; } = Array.Empty<string>();

        /// <summary>Null: as far as the inputs allow (Rcpt with -To, Mail with -From, Auth with a credential, else Tls).</summary>
        public RelayStage? StopAfter { get; set; }
        public bool SendTestMessage { get; set; }
        public bool SkipCertificateCheck { get; set; }
        public IReadOnlyList<X509Certificate2> TrustedCaCertificates { get; set; } = Array.Empty<X509Certificate2>();
        public bool AllowAuthWithoutTls { get; set; }
        public bool CheckOpenRelay { get; set; } = true;

        /// <summary>The outside recipient the open-relay test asks the relay to accept (never sent: the test stops at RCPT).</summary>
        public string OpenRelayRecipient { get; set; } = "mailops-open-relay-test@example.com";

        /// <summary>The relay's sending address, when it differs from the address MailOps connects to (NAT, pools).</summary>
        public IPAddress? EgressAddress { get; set; }
        public bool CheckDns { get; set; } = true;
        public IReadOnlyList<string> DnsblZones { get; set; } = DnsConfig.DefaultDnsblZones;

        /// <summary>Receives each line of the SMTP conversations, with credentials already redacted.</summary>
        public Action<string>? Transcript { get; set; }

        internal string Label => Name ?? $"{Host}:{Port}";

        internal RelayStage EffectiveStopAfter =>
            StopAfter ?? (SendTestMessage ? RelayStage.Data : To.Count > 0 ? RelayStage.Rcpt : From != null ? RelayStage.Mail : Credential != null ? RelayStage.Auth : RelayStage.Tls);
    }

    /// <summary>
    /// One SMTP conversation with a relay, stage by stage (connect, banner, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA),
    /// recording timings, capabilities, the TLS session and every finding. It never throws for what the server does:
    /// a refused connection, a silent server, garbage or a dropped connection become a Failed result with a finding that
    /// names the stage. Only cancellation throws.
    /// </summary>
    internal sealed class RelayProbe
    {
        private readonly RelayCheckOptions _o;
        private readonly IDnsResolver? _dns;
        private readonly RelayCheckResult _r;
        private readonly Action<string>? _log;

        public RelayProbe(RelayCheckOptions options, IDnsResolver? dns, RelayCheckResult result)
        {
            _o = options;
            _dns = dns;
            _r = result;
            _log = options.Transcript == null ? null : line => options.Transcript($"[{options.Label}] {line}");
        }

        public async Task RunAsync(CancellationToken cancel)
        {
            var stopAfter = _o.EffectiveStopAfter;
            var helo = _o.HeloName ?? Environment.MachineName.ToLowerInvariant();
            _r.HeloName = helo;
            SmtpConnection? c = null;
            var stage = RelayStage.Connect;
            try
            {
                // connect
                var addresses = await ResolveAsync(cancel).ConfigureAwait(false);
                if (addresses == null)
                {
                    return;
                }

                var sw = Stopwatch.StartNew();
                c = await SmtpConnection.ConnectAsync(addresses, _o.Port, _o.Timeout, _log, cancel).ConfigureAwait(false);
                _r.Timings.Connect = sw.Elapsed.TotalMilliseconds;
                _r.Address = c.RemoteAddress.ToString();
                var implicitTls = _o.Security == SmtpSecurity.SslOnConnect || (_o.Security == SmtpSecurity.Auto && _o.Port == 465);
                var inspector = new CertificateInspector(_o.TrustedCaCertificates);
                if (implicitTls)
                {
                    stage = RelayStage.Tls;
                    if (!await HandshakeAsync(c, inspector).ConfigureAwait(false))
                    {
                        return;
                    }
                }

                stage = RelayStage.Connect;
                sw.Restart();
                var banner = await c.ReadReplyAsync("waiting for the banner").ConfigureAwait(false);
                _r.Timings.Banner = sw.Elapsed.TotalMilliseconds;
                _r.Banner = banner.ToString();
                if (banner.Code != 220)
                {
                    _r.Fail(RelayStage.Connect, "BannerRejected", $"The server greeted with '{banner}' instead of 220: it refuses this client.");
                    return;
                }

                _r.CompletedStage = RelayStage.Connect;
                if (stopAfter == RelayStage.Connect)
                {
                    await QuitAsync(c).ConfigureAwait(false);
                    return;
                }

                // EHLO
                stage = RelayStage.Ehlo;
                sw.Restart();
                var caps = await EhloAsync(c, helo).ConfigureAwait(false);
                _r.Timings.Ehlo = sw.Elapsed.TotalMilliseconds;
                if (caps == null)
                {
                    return;
                }

                _r.Capabilities = caps;
                _r.CompletedStage = RelayStage.Ehlo;
                if (!c.IsTls && caps.AuthMechanisms.Count > 0)
                {
                    var plain = caps.AuthMechanisms.Any(m => m == "PLAIN" || m == "LOGIN");
                    _r.Add(caps.StartTls ? FindingSeverity.Warning : FindingSeverity.Error, "AuthOfferedBeforeTls", RelayStage.Ehlo,
                        $"The relay offers AUTH ({string.Join(" ", caps.AuthMechanisms)}) before TLS{(plain ? ": clients may send passwords in clear" : "")}; it should offer AUTH only after STARTTLS (Postfix: smtpd_tls_auth_only = yes).");
                }

                if (stopAfter == RelayStage.Ehlo)
                {
                    await QuitAsync(c).ConfigureAwait(false);
                    return;
                }

                // STARTTLS
                stage = RelayStage.Tls;
                if (!c.IsTls)
                {
                    var wantTls = _o.Security == SmtpSecurity.StartTls || _o.Security == SmtpSecurity.StartTlsWhenAvailable || _o.Security == SmtpSecurity.Auto;
                    if (_o.Security == SmtpSecurity.StartTls && !caps.StartTls)
                    {
                        _r.Fail(RelayStage.Tls, "StartTlsNotOffered", "The relay does not offer STARTTLS, and the security mode StartTls requires it.");
                        return;
                    }

                    if (wantTls && caps.StartTls)
                    {
                        sw.Restart();
                        await c.WriteLineAsync("STARTTLS").ConfigureAwait(false);
                        var reply = await c.ReadReplyAsync("waiting for the STARTTLS reply").ConfigureAwait(false);
                        if (reply.Code != 220)
                        {
                            _r.Fail(RelayStage.Tls, "StartTlsRefused", $"STARTTLS was answered '{reply}'.");
                            return;
                        }

                        if (!await HandshakeAsync(c, inspector).ConfigureAwait(false))
                        {
                            return;
                        }

                        _r.Timings.Tls = sw.Elapsed.TotalMilliseconds;
                        caps = await EhloAsync(c, helo).ConfigureAwait(false);
                        if (caps == null)
                        {
                            return;
                        }

                        _r.Capabilities = caps;
                    }
                    else if (_o.Security == SmtpSecurity.None)
                    {
                        _r.Add(caps.StartTls ? FindingSeverity.Info : FindingSeverity.Warning, "NoTls", RelayStage.Tls,
                            caps.StartTls ? "TLS was not used (security mode None), although the relay offers STARTTLS." : "The connection is not encrypted (security mode None).");
                    }
                    else
                    {
                        _r.Add(FindingSeverity.Warning, "NoTls", RelayStage.Tls, "The relay does not offer STARTTLS: mail and credentials to it cross the network in clear.");
                    }
                }

                _r.CompletedStage = RelayStage.Tls;
                if (stopAfter == RelayStage.Tls)
                {
                    await QuitAsync(c).ConfigureAwait(false);
                    return;
                }

                // AUTH
                stage = RelayStage.Auth;
                if (_o.Credential != null)
                {
                    sw.Restart();
                    if (!await AuthenticateAsync(c, caps, cancel).ConfigureAwait(false))
                    {
                        return;
                    }

                    _r.Timings.Auth = sw.Elapsed.TotalMilliseconds;
                }

                _r.CompletedStage = RelayStage.Auth;
                if (stopAfter == RelayStage.Auth)
                {
                    await QuitAsync(c).ConfigureAwait(false);
                    return;
                }

                // MAIL
                stage = RelayStage.Mail;
                var from = _o.From ?? $"mailops-probe@{helo}";
                sw.Restart();
                await c.WriteLineAsync($"MAIL FROM:<{from}>").ConfigureAwait(false);
                var mail = await c.ReadReplyAsync("waiting for the MAIL FROM reply").ConfigureAwait(false);
                _r.Timings.Mail = sw.Elapsed.TotalMilliseconds;
                _r.MailReply = mail.ToString();
                if (!mail.IsPositive)
                {
                    _r.Fail(RelayStage.Mail, mail.IsTransient ? "MailDeferred" : "MailRejected", $"MAIL FROM:<{from}> was answered '{mail}'.");
                    await QuitAsync(c).ConfigureAwait(false);
                    return;
                }

                _r.CompletedStage = RelayStage.Mail;
                if (stopAfter == RelayStage.Mail)
                {
                    await QuitAsync(c).ConfigureAwait(false);
                    return;
                }

                // RCPT
                stage = RelayStage.Rcpt;
                var recipients = new List<RecipientReport>();
                foreach (var to in _o.To)
                {
                    sw.Restart();
                    await c.WriteLineAsync($"RCPT TO:<{to}>").ConfigureAwait(false);
                    var rcpt = await c.ReadReplyAsync("waiting for the RCPT TO reply").ConfigureAwait(false);
                    var ms = sw.Elapsed.TotalMilliseconds;
                    _r.Timings.RcptList.Add(ms);
                    var outcome = rcpt.IsPositive ? RecipientOutcome.Accepted : rcpt.IsTransient ? RecipientOutcome.TemporaryFailure : RecipientOutcome.PermanentFailure;
                    recipients.Add(new RecipientReport(to, outcome, rcpt.Code, rcpt.EnhancedStatusCode, rcpt.ToString(), ms));
                    if (outcome != RecipientOutcome.Accepted)
                    {
                        _r.Add(FindingSeverity.Warning, outcome == RecipientOutcome.TemporaryFailure ? "RecipientDeferred" : "RecipientRejected", RelayStage.Rcpt, $"RCPT TO:<{to}> was answered '{rcpt}'.");
                    }
                }

                _r.Recipients = recipients;
                if (recipients.Count > 0 && recipients.All(x => x.Outcome != RecipientOutcome.Accepted))
                {
                    _r.Fail(RelayStage.Rcpt, "AllRecipientsRefused", "The relay accepted none of the recipients.");
                    await QuitAsync(c).ConfigureAwait(false);
                    return;
                }

                _r.CompletedStage = RelayStage.Rcpt;
                if (stopAfter == RelayStage.Rcpt)
                {
                    await QuitAsync(c).ConfigureAwait(false);
                    return;
                }

                // DATA
                stage = RelayStage.Data;
                if (recipients.Count == 0)
                {
                    _r.Fail(RelayStage.Data, "NoRecipients", "DATA needs at least one recipient: give -To.");
                    await QuitAsync(c).ConfigureAwait(false);
                    return;
                }

                sw.Restart();
                await c.WriteLineAsync("DATA").ConfigureAwait(false);
                var data = await c.ReadReplyAsync("waiting for the DATA reply").ConfigureAwait(false);
                if (data.Code != 354)
                {
                    _r.Fail(RelayStage.Data, "DataRefused", $"DATA was answered '{data}'.");
                    await QuitAsync(c).ConfigureAwait(false);
                    return;
                }

                if (!_o.SendTestMessage)
                {
                    // Nothing is sent without -SendTestMessage: the relay would accept DATA; drop the connection
                    // (an SMTP server discards a message whose data never ended).
                    _r.Timings.Data = sw.Elapsed.TotalMilliseconds;
                    _r.CompletedStage = RelayStage.Data;
                    _r.Add(FindingSeverity.Info, "DataNotSent", RelayStage.Data, "The relay is ready to take the message (354); no message was sent (use -SendTestMessage).");
                    c.Dispose();
                    c = null;
                    return;
                }

                var messageId = $"{Guid.NewGuid():N}@{helo}";
                var bytes = TestMessage.Build(from, recipients.Where(x => x.Outcome == RecipientOutcome.Accepted).Select(x => x.Address).ToList(), messageId, _o.Label, helo);
                await c.WriteDataAsync(bytes, "test message").ConfigureAwait(false);
                var queued = await c.ReadReplyAsync("waiting for the reply to the end of the message").ConfigureAwait(false);
                _r.Timings.Data = sw.Elapsed.TotalMilliseconds;
                _r.TestMessageId = "<" + messageId + ">";
                if (!queued.IsPositive)
                {
                    _r.Fail(RelayStage.Data, queued.IsTransient ? "MessageDeferred" : "MessageRejected", $"The test message was answered '{queued}'.");
                    await QuitAsync(c).ConfigureAwait(false);
                    return;
                }

                var m = System.Text.RegularExpressions.Regex.Match(queued.Text, @"queued as ([A-Za-z0-9]+)");
                _r.QueueId = m.Success ? m.Groups[1].Value : null;
                _r.Add(FindingSeverity.Info, "TestMessageSent", RelayStage.Data, $"The test message {_r.TestMessageId} was accepted: '{queued}'.");
                _r.CompletedStage = RelayStage.Data;
                await QuitAsync(c).ConfigureAwait(false);
            }
            catch (SmtpTimeoutException e)
            {
                _r.Fail(stage, stage == RelayStage.Connect && _r.Address == null ? "ConnectTimeout" : "Timeout", $"{StageName(stage)}: {e.Message}.");
            }
            catch (SmtpProtocolException e)
            {
                _r.Fail(stage, e.ConnectionClosed ? "ConnectionClosed" : "ProtocolError", $"{StageName(stage)}: {e.Message}.");
            }
            catch (SocketException e)
            {
                var code = e.SocketErrorCode == SocketError.ConnectionRefused ? "ConnectionRefused"
                    : e.SocketErrorCode == SocketError.HostNotFound ? "HostNotFound" : "ConnectFailed";
                _r.Fail(RelayStage.Connect, code, $"Connecting to {_o.Host}:{_o.Port} failed: {e.Message} ({e.SocketErrorCode}).");
            }
            finally
            {
                c?.Dispose();
            }
        }

        private static string StageName(RelayStage stage) => stage switch
        {
            RelayStage.Connect => "Connect/banner",
            RelayStage.Ehlo => "EHLO",
            RelayStage.Tls => "TLS",
            RelayStage.Auth => "AUTH",
            RelayStage.Mail => "MAIL FROM",
            RelayStage.Rcpt => "RCPT TO",
            _ => "DATA",
        };

        private async Task<IReadOnlyList<IPAddress>?> ResolveAsync(CancellationToken cancel)
        {
            if (IPAddress.TryParse(_o.Host, out var literal))
            {
                return new[] { literal };
            }

            if (_dns != null)
            {
                var v4 = await _dns.QueryAddressesAsync(_o.Host, false, cancel).ConfigureAwait(false);
                var v6 = await _dns.QueryAddressesAsync(_o.Host, true, cancel).ConfigureAwait(false);
                var all = v4.Records.Concat(v6.Records).ToList();
                if (all.Count > 0)
                {
                    return all;
                }

                if (v4.Status == DnsStatus.NxDomain)
                {
                    _r.Fail(RelayStage.Connect, "HostNotFound", $"The host name {_o.Host} does not exist in DNS (NXDOMAIN).");
                }
                else if (v4.IsAbsent && v6.IsAbsent)
                {
                    _r.Fail(RelayStage.Connect, "HostNotFound", $"The host name {_o.Host} has no A or AAAA record.");
                }
                else
                {
                    _r.Fail(RelayStage.Connect, "HostLookupFailed", $"The address of {_o.Host} is unknown: the DNS lookup failed ({v4}).");
                }

                return null;
            }

            try
            {
                var task = System.Net.Dns.GetHostAddressesAsync(_o.Host);
                var done = await Task.WhenAny(task, Task.Delay(_o.Timeout, cancel)).ConfigureAwait(false);
                cancel.ThrowIfCancellationRequested();
                if (done != task)
                {
                    _r.Fail(RelayStage.Connect, "HostLookupFailed", $"The address of {_o.Host} is unknown: the system resolver did not answer within {_o.Timeout.TotalSeconds:0} s.");
                    return null;
                }

                return await task.ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                _r.Fail(RelayStage.Connect, e.SocketErrorCode == SocketError.HostNotFound ? "HostNotFound" : "HostLookupFailed", $"The address of {_o.Host} could not be found: {e.Message}.");
                return null;
            }
        }

        private async Task<SmtpCapabilities?> EhloAsync(SmtpConnection c, string helo)
        {
            await c.WriteLineAsync("EHLO " + helo).ConfigureAwait(false);
            var ehlo = await c.ReadReplyAsync("waiting for the EHLO reply").ConfigureAwait(false);
            if (ehlo.Code == 250)
            {
                return new SmtpCapabilities(ehlo.Lines);
            }

            if (ehlo.IsPermanent && ehlo.Code != 554)
            {
                await c.WriteLineAsync("HELO " + helo).ConfigureAwait(false);
                var heloReply = await c.ReadReplyAsync("waiting for the HELO reply").ConfigureAwait(false);
                if (heloReply.Code == 250)
                {
                    _r.Add(FindingSeverity.Warning, "EhloNotSupported", RelayStage.Ehlo, $"EHLO was answered '{ehlo}'; only HELO works, so no SMTP extension (STARTTLS, AUTH, SIZE) is available.");
                    return new SmtpCapabilities(heloReply.Lines.Take(1).ToList());
                }
            }

            _r.Fail(RelayStage.Ehlo, "EhloRejected", $"EHLO {helo} was answered '{ehlo}'.");
            return null;
        }

        private async Task<bool> HandshakeAsync(SmtpConnection c, CertificateInspector inspector)
        {
            var accepted = false;
            var sw = Stopwatch.StartNew();
            try
            {
                await c.UpgradeToTlsAsync(_o.Host, (sender, cert, chain, errors) =>
                {
                    accepted = inspector.Inspect(_o.Host, cert, chain, errors, DateTime.UtcNow) || _o.SkipCertificateCheck;
                    return accepted;
                }).ConfigureAwait(false);
            }
            catch (Exception e) when (e is System.Security.Authentication.AuthenticationException || e is SmtpProtocolException || e is IOException)
            {
                var report = inspector.Report(null, DateTime.UtcNow);
                _r.Tls = report;
                if (inspector.Certificate != null && !accepted)
                {
                    inspector.AddFindings(_r, report, false, _o.Host);
                    _r.FailedStage ??= RelayStage.Tls;
                }
                else
                {
                    _r.Fail(RelayStage.Tls, "TlsHandshakeFailed", $"The TLS handshake with {_o.Host} failed: {Innermost(e)}.");
                }

                return false;
            }

            _r.Timings.Tls = sw.Elapsed.TotalMilliseconds;
            var tls = inspector.Report(c.Tls, DateTime.UtcNow);
            _r.Tls = tls;
            inspector.AddFindings(_r, tls, _o.SkipCertificateCheck, _o.Host);
            if (tls.Protocol == "Tls" || tls.Protocol == "Tls11" || tls.Protocol == "Ssl3")
            {
                _r.Add(FindingSeverity.Warning, "WeakTlsProtocol", RelayStage.Tls, $"The relay negotiated {tls.Protocol}; TLS 1.2 or 1.3 is expected.");
            }

            return true;
        }

        private static string Innermost(Exception e)
        {
            while (e.InnerException != null)
            {
                e = e.InnerException;
            }

            return e.Message.TrimEnd('.');
        }

        private async Task<bool> AuthenticateAsync(SmtpConnection c, SmtpCapabilities caps, CancellationToken cancel)
        {
            var cred = _o.Credential!;
            if (!c.IsTls && !_o.AllowAuthWithoutTls)
            {
                _r.Fail(RelayStage.Auth, "AuthRefusedWithoutTls", "MailOps will not send the credential over an unencrypted connection (use StartTls or SslOnConnect, or -AllowAuthWithoutTls if you must).");
                return false;
            }

            if (caps.AuthMechanisms.Count == 0)
            {
                _r.Fail(RelayStage.Auth, "AuthNotOffered", "The relay does not offer AUTH on this connection" + (c.IsTls ? "." : " (it may offer it only after STARTTLS)."));
                return false;
            }

            var preferred = new[] { "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN", "LOGIN", "CRAM-MD5" };
            var mechanismName = preferred.FirstOrDefault(p => caps.AuthMechanisms.Contains(p));
            if (mechanismName == null)
            {
                _r.Fail(RelayStage.Auth, "NoSupportedAuthMechanism", $"The relay offers only {string.Join(", ", caps.AuthMechanisms)}, none of which MailOps supports.");
                return false;
            }

            var sasl = MailKit.Security.SaslMechanism.Create(mechanismName, cred);
            if (sasl == null)
            {
                _r.Fail(RelayStage.Auth, "NoSupportedAuthMechanism", $"MailOps cannot use the {mechanismName} mechanism.");
                return false;
            }

            string? initial = sasl.SupportsInitialResponse ? sasl.Challenge(string.Empty, cancel) : null;
            await c.WriteLineAsync(initial != null ? $"AUTH {mechanismName} {initial}" : $"AUTH {mechanismName}", $"AUTH {mechanismName}{(initial != null ? " <redacted>" : "")}").ConfigureAwait(false);
            var reply = await c.ReadReplyAsync("waiting for the AUTH reply").ConfigureAwait(false);
            var rounds = 0;
            while (reply.Code == 334 && rounds++ < 10)
            {
                var response = sasl.IsAuthenticated ? string.Empty : sasl.Challenge(reply.Text.Trim(), cancel);
                await c.WriteLineAsync(response, "<redacted>").ConfigureAwait(false);
                reply = await c.ReadReplyAsync("waiting for the AUTH reply").ConfigureAwait(false);
            }

            _r.Auth = new AuthReport(reply.Code == 235, mechanismName, reply.ToString());
            if (reply.Code != 235)
            {
                _r.Fail(RelayStage.Auth, reply.IsTransient ? "AuthDeferred" : "AuthFailed", $"AUTH {mechanismName} as '{cred.UserName}' was answered '{reply}'.");
                return false;
            }

            return true;
        }

        private static async Task QuitAsync(SmtpConnection c)
        {
            try
            {
                await c.WriteLineAsync("QUIT").ConfigureAwait(false);
                await c.ReadReplyAsync("waiting for the QUIT reply").ConfigureAwait(false);
            }
            catch (Exception e) when (e is SmtpProtocolException || e is SmtpTimeoutException)
            {
                // the conversation's result is already known; a server that drops the connection at QUIT changes nothing
            }
        }
    }

    /// <summary>The message -SendTestMessage sends: identifiable by its Message-Id and X-MailOps-Test header.</summary>
    internal static class TestMessage
    {
        public static byte[] Build(string from, IReadOnlyList<string> to, string messageId, string relay, string helo)
        {
            var message = new MimeKit.MimeMessage();
            message.From.Add(MimeKit.MailboxAddress.Parse(from));
            foreach (var t in to)
            {
                message.To.Add(MimeKit.MailboxAddress.Parse(t));
            }

            message.Subject = $"MailOps relay test via {relay}";
            message.MessageId = messageId;
            message.Date = DateTimeOffset.UtcNow;
            message.Headers.Add("X-MailOps-Test", $"relay={relay}; helo={helo}");
            message.Headers.Add("Auto-Submitted", "auto-generated");
            message.Body = new MimeKit.TextPart("plain") { Text = $"This message tests the relay {relay}. It was sent by Test-MailRelay -SendTestMessage and needs no action.\n" };
            using (var raw = new MemoryStream())
            {
                message.WriteTo(MimeKit.FormatOptions.Default, raw);
                return DotStuff(raw.ToArray());
            }
        }

        /// <summary>CRLF line ends, a leading '.' doubled (RFC 5321 4.5.2), and the terminating CRLF.CRLF.</summary>
        internal static byte[] DotStuff(byte[] data)
        {
            var text = Encoding.UTF8.GetString(data).Replace("\r\n", "\n").Replace("\r", "\n");
            var sb = new StringBuilder();
            foreach (var line in text.TrimEnd('\n').Split('\n'))
            {
                if (line.StartsWith(".", StringComparison.Ordinal))
                {
                    sb.Append('.');
                }

                sb.Append(line).Append("\r\n");
            }

            sb.Append(".\r\n");
            return Encoding.UTF8.GetBytes(sb.ToString());
        }
    }
}
