using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using MailOps.Core.Relay;

namespace MailOps.Core.Smtp
{
    /// <summary>
    /// Judges a server certificate: host-name match (DNS and IP subject alternative names, one left-most wildcard),
    /// chain validity against the system's trust or against CA certificates the administrator names (internal relays
    /// signed by a private CA), and expiry.
    /// </summary>
    internal sealed class CertificateInspector
    {
        private readonly IReadOnlyList<X509Certificate2> _trustedCas;

        public CertificateInspector(IReadOnlyList<X509Certificate2> trustedCas)
        {
            _trustedCas = trustedCas;
        }

        public X509Certificate2? Certificate { get; private set; }
        public bool HostNameMatches { get; private set; }
        public bool ChainValid { get; private set; }
        public bool Expired { get; private set; }
        public string ChainStatus { get; private set; } = "";
        public string ValidatedWith { get; private set; } = "system trust";
        public IReadOnlyList<string> Names { get; private set; } = Array.Empty<string>();

        /// <summary>Records what is wrong with the certificate; returns true when it is acceptable.</summary>
        public bool Inspect(string host, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors, DateTime now)
        {
            if (certificate == null)
            {
                ChainStatus = "the server sent no certificate";
                return false;
            }

            // a copy: SslStream disposes the certificate it hands to the callback when the handshake is abandoned
            var cert = new X509Certificate2(certificate.Export(X509ContentType.Cert));
            Certificate = cert;
            Names = SubjectAlternativeNames(cert);
            HostNameMatches = MatchesHost(host, cert, Names);
            Expired = now > cert.NotAfter.ToUniversalTime() || now < cert.NotBefore.ToUniversalTime();

            if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) == 0)
            {
                ChainValid = true;
            }
            else if (_trustedCas.Count > 0)
            {
                ValidatedWith = "the trusted CA certificate(s) given";
                using (var custom = new X509Chain())
                {
                    custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    custom.ChainPolicy.VerificationFlags = X509VerificationFlags.AllowUnknownCertificateAuthority;
                    foreach (var ca in _trustedCas)
                    {
                        custom.ChainPolicy.ExtraStore.Add(ca);
                    }

                    var built = custom.Build(cert);
                    var root = custom.ChainElements.Count > 0 ? custom.ChainElements[custom.ChainElements.Count - 1].Certificate : null;
                    var rootTrusted = root != null && _trustedCas.Any(ca => string.Equals(ca.Thumbprint, root.Thumbprint, StringComparison.OrdinalIgnoreCase));
                    var problems = custom.ChainStatus.Where(s => s.Status != X509ChainStatusFlags.UntrustedRoot && s.Status != X509ChainStatusFlags.NoError).ToList();
                    ChainValid = built && rootTrusted && problems.Count == 0;
                    if (!ChainValid)
                    {
                        ChainStatus = problems.Count > 0 ? Describe(problems) : rootTrusted ? "the chain could not be built" : "the certificate is not signed by the trusted CA certificate(s) given";
                    }
                }
            }
            else
            {
                ChainValid = false;
                ChainStatus = chain != null && chain.ChainStatus.Length > 0 ? Describe(chain.ChainStatus) : "the chain is not trusted";
            }

            if (Expired && ChainValid)
            {
                ChainValid = false;
                ChainStatus = "the certificate is outside its validity period";
            }

            return ChainValid && HostNameMatches && !Expired;
        }

        private static string Describe(IEnumerable<X509ChainStatus> statuses) =>
            string.Join("; ", statuses.Select(s => string.IsNullOrWhiteSpace(s.StatusInformation) ? s.Status.ToString() : s.StatusInformation.Trim()).Distinct());

        /// <summary>DNS names as "name", IP addresses as "IP:address" would be ambiguous: both are returned as plain text.</summary>
        internal static IReadOnlyList<string> SubjectAlternativeNames(X509Certificate2 cert)
        {
            var result = new List<string>();
            foreach (var ext in cert.Extensions)
            {
                if (ext.Oid?.Value != "2.5.29.17")
                {
                    continue;
                }

                // Formats differ by platform: "DNS Name=a, IP Address=1.2.3.4" (Windows) or "DNS:a, IP Address:1.2.3.4" (OpenSSL).
                foreach (var part in ext.Format(false).Split(new[] { ',', '\n' }, StringSplitOptions.RemoveEmptyEntries))
                {
                    var p = part.Trim();
                    var sep = p.IndexOfAny(new[] { '=', ':' });
                    if (sep <= 0)
                    {
                        continue;
                    }

                    var kind = p.Substring(0, sep).Trim();
                    var value = p.Substring(sep + 1).Trim();
                    if (kind.StartsWith("DNS", StringComparison.OrdinalIgnoreCase) || kind.StartsWith("IP", StringComparison.OrdinalIgnoreCase))
                    {
                        result.Add(value);
                    }
                }
            }

            return result;
        }

        internal static bool MatchesHost(string host, X509Certificate2 cert, IReadOnlyList<string> names)
        {
            host = host.TrimEnd('.');
            if (IPAddress.TryParse(host, out var ip))
            {
                return names.Any(n => IPAddress.TryParse(n, out var other) && other.Equals(ip));
            }

            var candidates = names.Count > 0 ? names : new[] { cert.GetNameInfo(X509NameType.DnsName, false) };
            foreach (var name in candidates.Where(n => !string.IsNullOrEmpty(n)))
            {
                if (string.Equals(name, host, StringComparison.OrdinalIgnoreCase))
                {
                    return true;
                }

                if (name.StartsWith("*.", StringComparison.Ordinal))
                {
                    var dot = host.IndexOf('.');
                    if (dot > 0 && string.Equals(host.Substring(dot + 1), name.Substring(2), StringComparison.OrdinalIgnoreCase))
                    {
                        return true;
                    }
                }
            }

            return false;
        }

        public TlsReport Report(SslStream? ssl, DateTime now)
        {
            var cert = Certificate;
            var protocol = ssl != null && ssl.IsAuthenticated ? ssl.SslProtocol.ToString() : "";
            var cipher = "";
            if (ssl != null && ssl.IsAuthenticated)
            {
                // NegotiatedCipherSuite exists from .NET Core 3.0; netstandard2.0 cannot name it.
                cipher = ssl.GetType().GetProperty("NegotiatedCipherSuite")?.GetValue(ssl)?.ToString()
                    ?? $"{ssl.CipherAlgorithm} {ssl.CipherStrength}";
            }

            if (cert == null)
            {
                return new TlsReport(protocol, cipher, "", "", Array.Empty<string>(), DateTime.MinValue, DateTime.MinValue, 0, false, false, ChainStatus, "", ValidatedWith);
            }

            var days = (int)Math.Floor((cert.NotAfter.ToUniversalTime() - now).TotalDays);
            return new TlsReport(protocol, cipher, cert.Subject, cert.Issuer, Names, cert.NotBefore.ToUniversalTime(), cert.NotAfter.ToUniversalTime(),
                days, HostNameMatches, ChainValid, ChainStatus, cert.Thumbprint, ValidatedWith);
        }

        public void AddFindings(RelayCheckResult result, TlsReport report, bool skipped, string host)
        {
            var severity = skipped ? FindingSeverity.Warning : FindingSeverity.Error;
            var suffix = skipped ? " (accepted because certificate checks are skipped)" : "";
            if (Expired)
            {
                result.Add(severity, "CertificateExpired", RelayStage.Tls, $"The certificate of {host} is outside its validity period ({report.NotBefore:yyyy-MM-dd} to {report.NotAfter:yyyy-MM-dd}){suffix}.");
            }
            else if (!ChainValid)
            {
                result.Add(severity, "CertificateUntrusted", RelayStage.Tls, $"The certificate of {host} ({report.Subject}, issued by {report.Issuer}) is not trusted: {ChainStatus}{suffix}.");
            }

            if (!HostNameMatches)
            {
                result.Add(severity, "CertificateNameMismatch", RelayStage.Tls, $"The certificate names {(report.Names.Count > 0 ? string.Join(", ", report.Names) : report.Subject)}, not {host}{suffix}.");
            }

            if (!Expired && report.DaysUntilExpiry < 21)
            {
                result.Add(FindingSeverity.Warning, "CertificateExpiresSoon", RelayStage.Tls, $"The certificate of {host} expires in {report.DaysUntilExpiry} day(s), on {report.NotAfter:yyyy-MM-dd}.");
            }

            if (skipped)
            {
                result.Add(FindingSeverity.Warning, "CertificateCheckSkipped", RelayStage.Tls, "Certificate validation was skipped on request: a man in the middle would not be noticed.");
            }
        }
    }
}
