using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using MailOps.Core.Config;
using MimeKit;

namespace MailOps.Core.Traffic.Sinks
{
    /// <summary>
    /// Mails alerts through a relay of the configuration, meant to be another relay than the one watched (a relay in
    /// trouble would also lose its own alerts). It connects as the send engine does: the relay's security mode,
    /// certificates validated (against the relay's caFile when it names one) unless the file says
    /// skipCertificateCheck, no password over an unencrypted channel unless allowAuthWithoutTls, a connect timeout.
    /// </summary>
    public sealed class EmailAlertSink : IAlertSink
    {
        private readonly Func<RelayConfig, NetworkCredential?>? _credentials;
        private IReadOnlyList<X509Certificate2>? _trustedCa;

        /// <param name="credentials">Resolves the relay's named credential (SecretManagement, -Credential); called at send time, only when the relay names one. Its result is never logged.</param>
        /// <param name="trustedCa">CA certificates for the relay's certificate; null: read from the relay's caFile when it names one.</param>
        public EmailAlertSink(string name, RelayConfig relay, IReadOnlyList<string> to, string? from = null,
            Func<RelayConfig, NetworkCredential?>? credentials = null, IReadOnlyList<X509Certificate2>? trustedCa = null, TimeSpan? timeout = null)
        {
            Name = name ?? throw new ArgumentNullException(nameof(name));
            Relay = relay ?? throw new ArgumentNullException(nameof(relay));
            if (to == null || to.Count == 0)
            {
                throw new ArgumentException($"The email alert sink '{name}' has no recipient.", nameof(to));
            }

            To = to.Select(t => Mailbox(t, nameof(to))).ToList();
            From = Mailbox(from ?? DefaultFrom(), nameof(from));
            _credentials = credentials;
            _trustedCa = trustedCa;
            Timeout = timeout ?? TimeSpan.FromSeconds(Math.Max(AlertSinkConfig.DefaultTimeoutSeconds, relay.TimeoutSeconds));
        }

        public string Name { get; }
        public string Type => "email";
        public RelayConfig Relay { get; }
        public IReadOnlyList<MailboxAddress> To { get; }
        public MailboxAddress From { get; }

        /// <summary>For the whole delivery: connect, authenticate, send, quit.</summary>
        public TimeSpan Timeout { get; }

        /// <summary>mailops@ the machine's name (lower case, reduced to the characters a domain may hold).</summary>
        public static string DefaultFrom()
        {
            var machine = new string(Environment.MachineName.ToLowerInvariant().Where(c => (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.').ToArray()).Trim('.', '-');
            return "mailops@" + (machine.Length == 0 ? "localhost" : machine);
        }

        /// <summary>
        /// The message: "[MailOps] CRITICAL raised: summary" as subject (from alert fields with every control character
        /// removed, so no header can be injected), a plain text body with all the figures, Auto-Submitted (RFC 3834)
        /// so that autoresponders stay quiet, and X-MailOps-Alert with the incident id.
        /// </summary>
        public MimeMessage BuildMessage(TrafficAlert alert)
        {
            var m = new MimeMessage();
            m.From.Add(From);
            m.To.AddRange(To);
            m.Subject = Truncate("[MailOps] " + AlertText.Headline(alert), 200);
            m.Date = DateTimeOffset.Now;
            m.Headers.Add("Auto-Submitted", "auto-generated");
            m.Headers.Add("X-MailOps-Alert", Truncate(AlertText.OneLine(alert.Id), 200));
            m.Headers.Add("X-MailOps-Severity", alert.Severity.ToString().ToLowerInvariant());
            m.Body = new TextPart("plain") { Text = Body(alert) };
            return m;
        }

        /// <summary>The plain text body: the summary, every figure, who is responsible, what to do.</summary>
        public static string Body(TrafficAlert alert)
        {
            var sb = new StringBuilder();
            sb.Append(AlertText.Summary(alert)).Append("\r\n\r\n");
            var figures = AlertText.Figures(alert);
            var width = figures.Max(f => f.Key.Length) + 1;
            sb.Append("Severity:".PadRight(width + 1)).Append(alert.Severity.ToString().ToUpperInvariant()).Append(" (").Append(alert.State.ToString().ToLowerInvariant()).Append(")\r\n");
            foreach (var f in figures)
            {
                sb.Append((f.Key + ":").PadRight(width + 1)).Append(f.Value).Append("\r\n");
            }

            sb.Append("\r\nTop senders:\r\n");
            AppendTop(sb, alert.TopSenders);
            sb.Append("\r\nTop flows:\r\n");
            AppendTop(sb, alert.TopFlows);
            if (!string.IsNullOrWhiteSpace(alert.SuggestedAction))
            {
                sb.Append("\r\nSuggested action:\r\n  ").Append(AlertText.OneLine(alert.SuggestedAction)).Append("\r\n");
            }

            sb.Append("\r\n-- \r\nMailOps traffic watch on ").Append(AlertText.OneLine(alert.Host)).Append("\r\n");
            return sb.ToString();
        }

        public async Task SendAsync(TrafficAlert alert, CancellationToken cancellationToken)
        {
            var message = BuildMessage(alert);
            var ca = TrustedCa();
            var credential = Relay.Credential == null ? null : _credentials?.Invoke(Relay);
            if (Relay.Credential != null && credential == null)
            {
                throw new AlertSinkException(Name, $"The relay '{Relay.Name}' of the alert sink '{Name}' names the credential '{Relay.Credential}', which could not be found.");
            }

            try
            {
                await Smtp.RelaySubmitter.SendAsync(Relay, credential, ca, message, Timeout, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                throw new AlertSinkException(Name, $"The relay '{Relay.Name}' ({Relay.Host}:{Relay.Port}) of the alert sink '{Name}' did not take the alert within {Timeout.TotalSeconds:0.#} s.");
            }
            catch (System.Security.Authentication.AuthenticationException e)
            {
                throw new AlertSinkException(Name, $"The relay '{Relay.Name}' of the alert sink '{Name}': {e.Message}", e);
            }
            catch (Exception e) when (e is SocketException || e is IOException || e is SmtpProtocolException || e is SmtpCommandException
                || e is SslHandshakeException || e is MailKit.Security.AuthenticationException || e is ServiceNotConnectedException)
            {
                // MailKit's messages quote the server's reply, never the password
                throw new AlertSinkException(Name, $"The relay '{Relay.Name}' ({Relay.Host}:{Relay.Port}) of the alert sink '{Name}' did not take the alert: {e.Message}", e);
            }
        }

        public override string ToString() => $"{Name} (email through {Relay.Name} to {string.Join(", ", To.Select(t => t.Address))})";

        private IReadOnlyList<X509Certificate2> TrustedCa()
        {
            if (_trustedCa != null)
            {
                return _trustedCa;
            }

            if (Relay.CaFile == null)
            {
                return _trustedCa = Array.Empty<X509Certificate2>();
            }

            try
            {
                var collection = new X509Certificate2Collection();
                collection.Import(Relay.CaFile);
                if (collection.Count == 0)
                {
                    throw new InvalidDataException($"'{Relay.CaFile}' holds no certificate.");
                }

                return _trustedCa = collection.Cast<X509Certificate2>().ToList();
            }
            catch (Exception e) when (e is IOException || e is System.Security.Cryptography.CryptographicException || e is UnauthorizedAccessException || e is InvalidDataException)
            {
                throw new AlertSinkException(Name, $"The CA certificate file '{Relay.CaFile}' of the relay '{Relay.Name}' cannot be read: {e.Message}", e);
            }
        }

        private static void AppendTop(StringBuilder sb, IReadOnlyList<KeyValuePair<string, long>> top)
        {
            if (top.Count == 0)
            {
                sb.Append("  none\r\n");
                return;
            }

            foreach (var x in top.Take(10))
            {
                sb.Append("  ").Append(x.Value.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(8)).Append("  ").Append(AlertText.OneLine(x.Key)).Append("\r\n");
            }
        }

        private MailboxAddress Mailbox(string text, string param)
        {
            if (text.Any(char.IsControl) || !MailboxAddress.TryParse(text, out var m) || m.Address.IndexOf('@') <= 0)
            {
                throw new ArgumentException($"'{AlertText.OneLine(text)}' is not an email address (alert sink '{Name}').", param);
            }

            return m;
        }

        private static string Truncate(string s, int max) => s.Length <= max ? s : s.Substring(0, max - 3) + "...";
    }
}
