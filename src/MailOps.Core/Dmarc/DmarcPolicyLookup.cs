using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Dns;

namespace MailOps.Core.Dmarc
{
    /// <summary>What a DMARC policy lookup found.</summary>
    public enum DmarcPolicyStatus
    {
        /// <summary>One valid DMARC record (at the domain or its organisational domain).</summary>
        Found,

        /// <summary>The DNS said there is no DMARC record at either name (NXDOMAIN, or no TXT record starting with v=DMARC1).</summary>
        Absent,

        /// <summary>A lookup failed (SERVFAIL, timeout, network): nothing is known. Never to be read as "no policy".</summary>
        Unknown,

        /// <summary>A record is published but unusable: several DMARC records, or one that does not parse (see Detail).</summary>
        Invalid,
    }

    /// <summary>The outcome of <see cref="DmarcPolicyLookup.LookupAsync"/>.</summary>
    public sealed class DmarcPolicyLookupResult
    {
        internal DmarcPolicyLookupResult(string domain, DmarcPolicyStatus status, string? recordDomain, DmarcRecord? record, string? text, string? detail)
        {
            Domain = domain;
            Status = status;
            RecordDomain = recordDomain;
            Record = record;
            Text = text;
            Detail = detail;
        }

        /// <summary>The domain asked about.</summary>
        public string Domain { get; }
        public DmarcPolicyStatus Status { get; }

        /// <summary>The domain whose _dmarc name gave the answer (the organisational domain after a fallback); null when Absent.</summary>
        public string? RecordDomain { get; }

        /// <summary>The record (Found only).</summary>
        public DmarcRecord? Record { get; }

        /// <summary>The TXT text as published (Found, and Invalid with one record).</summary>
        public string? Text { get; }

        /// <summary>Why the status is Unknown or Invalid, for a human.</summary>
        public string? Detail { get; }

        /// <summary>The policy came from the organisational domain, not the domain itself.</summary>
        public bool FromOrganizationalDomain => RecordDomain != null && !string.Equals(RecordDomain, Domain, StringComparison.OrdinalIgnoreCase);

        public override string ToString() => $"{Domain}: {Status}" + (RecordDomain != null ? $" at _dmarc.{RecordDomain}" : "") + (Text != null ? $" \"{Text}\"" : "") + (Detail != null ? $" ({Detail})" : "");
    }

    /// <summary>Finds the DMARC policy that applies to a domain (RFC 7489 §6.6.3, simplified as said on <see cref="OrganizationalDomain"/>).</summary>
    public static class DmarcPolicyLookup
    {
        /// <summary>
        /// Queries _dmarc.&lt;domain&gt; TXT; when there is none, _dmarc.&lt;organisational domain&gt;. A failed lookup
        /// (SERVFAIL, timeout) at either step gives Unknown, never Absent: "the policy could not be read" is not "there is
        /// no policy". The fallback is only made when the first name definitely has no DMARC record.
        /// </summary>
        /// <exception cref="OperationCanceledException">Cancelled.</exception>
        public static async Task<DmarcPolicyLookupResult> LookupAsync(IDnsResolver dns, string domain, CancellationToken cancellationToken)
        {
            if (dns == null)
            {
                throw new ArgumentNullException(nameof(dns));
            }

            if (string.IsNullOrWhiteSpace(domain))
            {
                throw new ArgumentException("A domain is needed.", nameof(domain));
            }

            var name = domain.Trim().TrimEnd('.').ToLowerInvariant();
            var first = await QueryAsync(dns, name, name, cancellationToken).ConfigureAwait(false);
            if (first.Status != DmarcPolicyStatus.Absent)
            {
                return first;
            }

            var org = OrganizationalDomain(name);
            if (org == name)
            {
                return first;
            }

            return await QueryAsync(dns, name, org, cancellationToken).ConfigureAwait(false);
        }

        /// <summary>
        /// The organisational domain, simplified: the last two labels (mail.example.org → example.org). This is wrong under
        /// multi-label public suffixes (example.co.uk gives co.uk, whose _dmarc normally does not exist, so the lookup says
        /// Absent rather than finding a wrong policy); MailOps ships no Public Suffix List, and DMARCbis replaces this step
        /// with a DNS tree walk anyway.
        /// </summary>
        public static string OrganizationalDomain(string domain)
        {
            if (domain == null)
            {
                throw new ArgumentNullException(nameof(domain));
            }

            var labels = domain.Trim().TrimEnd('.').Split('.');
            return labels.Length <= 2 ? string.Join(".", labels) : labels[labels.Length - 2] + "." + labels[labels.Length - 1];
        }

        private static async Task<DmarcPolicyLookupResult> QueryAsync(IDnsResolver dns, string asked, string at, CancellationToken cancellationToken)
        {
            var answer = await dns.QueryTxtAsync("_dmarc." + at, cancellationToken).ConfigureAwait(false);
            if (answer.IsUnknown)
            {
                return new DmarcPolicyLookupResult(asked, DmarcPolicyStatus.Unknown, at, null, null, $"_dmarc.{at} TXT: {answer.Status}" + (answer.Detail != null ? " " + answer.Detail : ""));
            }

            // records that do not start with v=DMARC1 are not DMARC records (RFC 7489 §6.6.3 step 2)
            var records = answer.IsOk ? answer.Records.Where(IsDmarc).ToList() : new System.Collections.Generic.List<string>();
            if (records.Count == 0)
            {
                return new DmarcPolicyLookupResult(asked, DmarcPolicyStatus.Absent, null, null, null, null);
            }

            if (records.Count > 1)
            {
                return new DmarcPolicyLookupResult(asked, DmarcPolicyStatus.Invalid, at, null, null, $"_dmarc.{at} has {records.Count} DMARC records; receivers apply none (RFC 7489 §6.6.3)");
            }

            return DmarcRecordParser.TryParse(records[0], out var record, out var error)
                ? new DmarcPolicyLookupResult(asked, DmarcPolicyStatus.Found, at, record, records[0], null)
                : new DmarcPolicyLookupResult(asked, DmarcPolicyStatus.Invalid, at, null, records[0], error);
        }

        /// <summary>"v=DMARC1" first, in any case and with white space around '='; "v=DMARC10" is not.</summary>
        private static bool IsDmarc(string text)
        {
            var t = text.TrimStart();
            if (t.Length == 0 || (t[0] != 'v' && t[0] != 'V'))
            {
                return false;
            }

            t = t.Substring(1).TrimStart();
            if (t.Length == 0 || t[0] != '=')
            {
                return false;
            }

            t = t.Substring(1).TrimStart();
            return t.StartsWith("DMARC1", StringComparison.OrdinalIgnoreCase) && (t.Length == 6 || t[6] == ';' || char.IsWhiteSpace(t[6]));
        }
    }
}
