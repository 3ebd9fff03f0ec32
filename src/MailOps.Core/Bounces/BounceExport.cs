using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using MailOps.Core.Store;

namespace MailOps.Core.Bounces
{
    /// <summary>Writes addresses in each ESP's suppression import format (one row per address).</summary>
    public static class BounceExport
    {
        public static int WriteCsv(TextWriter writer, IEnumerable<StoredBounce> bounces, EspFormat format)
        {
            if (writer == null)
            {
                throw new ArgumentNullException(nameof(writer));
            }

            // the latest event of each address
            var rows = bounces.GroupBy(b => b.Address).Select(g => g.OrderBy(b => b.Time).Last()).OrderBy(b => b.Address, StringComparer.Ordinal).ToList();
            switch (format)
            {
                case EspFormat.SendGrid:
                    writer.WriteLine("email,created,reason,status");
                    foreach (var b in rows)
                    {
                        writer.WriteLine(string.Join(",", Q(b.Address), b.Time.ToUnixTimeSeconds(), Q(b.Diagnostic ?? b.Reason), Q(b.StatusCode ?? "")));
                    }

                    break;
                case EspFormat.Mailgun:
                    writer.WriteLine("address,code,error,created_at");
                    foreach (var b in rows)
                    {
                        writer.WriteLine(string.Join(",", Q(b.Address), b.ReplyCode == 0 ? "550" : b.ReplyCode.ToString(System.Globalization.CultureInfo.InvariantCulture), Q(b.Diagnostic ?? b.Reason), Q(b.Time.ToString("r", System.Globalization.CultureInfo.InvariantCulture))));
                    }

                    break;
                case EspFormat.Brevo:
                    writer.WriteLine("EMAIL");
                    foreach (var b in rows)
                    {
                        writer.WriteLine(Q(b.Address));
                    }

                    break;
                case EspFormat.Mailjet:
                    writer.WriteLine("email");
                    foreach (var b in rows)
                    {
                        writer.WriteLine(Q(b.Address));
                    }

                    break;
                default:
                    writer.WriteLine("address,domain,reason,hard,infrastructure,status,reply,time,source,flow,diagnostic");
                    foreach (var b in rows)
                    {
                        writer.WriteLine(string.Join(",", Q(b.Address), Q(b.Domain), Q(b.Reason), b.IsHard ? "true" : "false", b.IsInfrastructureFailure ? "true" : "false",
                            Q(b.StatusCode ?? ""), b.ReplyCode, Q(b.Time.ToString("o", System.Globalization.CultureInfo.InvariantCulture)), Q(b.Source ?? ""), Q(b.Flow ?? ""), Q(b.Diagnostic ?? "")));
                    }

                    break;
            }

            return rows.Count;
        }

        /// <summary>
        /// A list of addresses to take off an ESP's suppression list (after a reset), with the address column that
        /// ESP's import or API tooling expects: email (SendGrid, Mailjet), EMAIL (Brevo), address (Mailgun).
        /// </summary>
        public static int WriteAddressList(TextWriter writer, IEnumerable<string> addresses, EspFormat format)
        {
            if (writer == null || addresses == null)
            {
                throw new ArgumentNullException(writer == null ? nameof(writer) : nameof(addresses));
            }

            writer.WriteLine(format switch
            {
                EspFormat.Brevo => "EMAIL",
                EspFormat.Mailgun => "address",
                EspFormat.Generic => "address",
                _ => "email",
            });
            var list = addresses.Select(a => a.ToLowerInvariant()).Distinct().OrderBy(a => a, StringComparer.Ordinal).ToList();
            foreach (var a in list)
            {
                writer.WriteLine(Q(a));
            }

            return list.Count;
        }

        /// <summary>RFC 4180 quoting; a leading = + - @ is prefixed with ' so that spreadsheets do not run it (CSV injection).</summary>
        private static string Q(string value)
        {
            if (value.Length > 0 && "=+-@".IndexOf(value[0]) >= 0)
            {
                value = "'" + value;
            }

            return value.IndexOfAny(new[] { ',', '"', '\n', '\r' }) >= 0 ? "\"" + value.Replace("\"", "\"\"") + "\"" : value;
        }
    }
}
