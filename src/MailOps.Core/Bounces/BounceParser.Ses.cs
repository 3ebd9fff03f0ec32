using System;
using System.Collections.Generic;
using System.Text.RegularExpressions;
using MimeKit;

namespace MailOps.Core.Bounces
{
    public static partial class BounceParser
    {
        private static readonly Regex SesDiagnostic = new Regex("\"diagnosticCode\"\\s*:\\s*\"([^\"]*)\"", RegexOptions.CultureInvariant);
        private static readonly Regex SesStatus = new Regex("\"status\"\\s*:\\s*\"([245]\\.\\d{1,3}\\.\\d{1,3})\"", RegexOptions.CultureInvariant);
        private static readonly Regex SesAddress = new Regex("\"emailAddress\"\\s*:\\s*\"([^\"]+@[^\"]+)\"", RegexOptions.CultureInvariant);

        /// <summary>An Amazon SES bounce notification delivered by SNS as e-mail (JSON in the body, often as an escaped string).</summary>
        private static List<BounceRecord> ParseSesNotification(string text, MimeMessage message, string? source)
        {
            var result = new List<BounceRecord>();
            if (text.IndexOf("notificationType", StringComparison.Ordinal) < 0 || text.IndexOf("Bounce", StringComparison.Ordinal) < 0)
            {
                return result;
            }

            var json = text.Replace("\\\"", "\"").Replace("\\n", " ");
            var diagnostic = SesDiagnostic.Match(json).Groups[1].Value;
            var status = SesStatus.Match(json).Groups[1].Value;
            foreach (Match m in SesAddress.Matches(json))
            {
                var r = ParseDiagnosticLine(CleanAddress(m.Groups[1].Value), diagnostic, status.Length > 0 ? status : null, 0, source);
                result.Add(WithTime(r, message.Date));
            }

            return result;
        }
    }
}
