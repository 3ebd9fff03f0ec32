using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;

namespace MailOps.Core.Dmarc
{
    /// <summary>Which aggregate report schema a report follows, as far as the report says.</summary>
    public enum DmarcReportSchema
    {
        /// <summary>
        /// RFC 7489 Appendix C (no namespace): reports without the DMARCbis namespace or version, including the pre-RFC draft
        /// the DMARC wiki shows (its elements are a subset).
        /// </summary>
        Rfc7489,

        /// <summary>
        /// DMARCbis (RFC 9990): the namespace urn:ietf:params:xml:ns:dmarc-2.0 or a version 2.x. Its elements (np, testing,
        /// discovery_method, generator) are read in any report; some RFC 7489 reports already carry them.
        /// </summary>
        DmarcBis,

        /// <summary>The draft schema's namespace http://dmarc.org/dmarc-xml/0.1 on &lt;feedback&gt;.</summary>
        Draft,
    }

    /// <summary>
    /// One DMARC aggregate (rua) report: who sent it, for which domain and period, the policy the reporter saw published,
    /// and one record per group of messages (source address, identifiers, results). Result words are lower-cased as
    /// read (some reporters write "Pass"); domains are kept as written.
    /// </summary>
    public sealed class DmarcAggregateReport
    {
        internal DmarcAggregateReport(string sourceName)
        {
            SourceName = sourceName;
        }

        /// <summary>Where the report was read: the file, then "#" and the zip entry or mail attachment (imap://.../folder#uid for IMAP).</summary>
        public string SourceName { get; internal set; }

        public DmarcReportSchema Schema { get; internal set; }

        /// <summary>The namespace of &lt;feedback&gt; ("" for RFC 7489 reports, which have none).</summary>
        public string Namespace { get; internal set; } = "";

        /// <summary>The report's &lt;version&gt; (null when absent, as in most RFC 7489 reports).</summary>
        public string? Version { get; internal set; }

        public string OrgName { get; internal set; } = "";
        public string? Email { get; internal set; }
        public string? ExtraContactInfo { get; internal set; }
        public string ReportId { get; internal set; } = "";

        /// <summary>DMARCbis: the software that wrote the report.</summary>
        public string? Generator { get; internal set; }

        /// <summary>Start of the reported period, UTC (DateTimeOffset.MinValue when the report has none; see <see cref="ParseWarnings"/>).</summary>
        public DateTimeOffset DateBegin { get; internal set; } = DateTimeOffset.MinValue;

        /// <summary>End of the reported period, UTC.</summary>
        public DateTimeOffset DateEnd { get; internal set; } = DateTimeOffset.MinValue;

        /// <summary>The reporter's own &lt;error&gt; lines (report_metadata), as written.</summary>
        public IReadOnlyList<string> Errors => ErrorList;

        /// <summary>The domain of policy_published: the domain the report is about.</summary>
        public string PolicyDomain { get; internal set; } = "";

        public DmarcPublishedPolicy PolicyPublished { get; internal set; } = new DmarcPublishedPolicy();

        public IReadOnlyList<DmarcReportRecord> Records => RecordList;

        /// <summary>
        /// What the reader had to repair or could not read, for a human: bytes that were not valid in the document's encoding
        /// (replaced with U+FFFD), XML that was not well-formed and was repaired, a source address or count it could not read.
        /// Empty for a clean report.
        /// </summary>
        public IReadOnlyList<string> ParseWarnings => WarningList;

        /// <summary>Messages the report covers: the sum of the records' counts.</summary>
        public long MessageCount => RecordList.Sum(r => r.Count);

        /// <summary>Messages that passed neither DKIM nor SPF with alignment (policy_evaluated).</summary>
        public long FailingMessageCount => RecordList.Where(r => !r.DmarcPass).Sum(r => r.Count);

        internal List<string> ErrorList { get; } = new List<string>();
        internal List<DmarcReportRecord> RecordList { get; } = new List<DmarcReportRecord>();
        internal List<string> WarningList { get; } = new List<string>();

        public override string ToString() => $"{OrgName} {ReportId} for {PolicyDomain} ({RecordList.Count} records, {MessageCount} messages)";
    }

    /// <summary>The DMARC policy the reporter found published (policy_published). Words lower-cased; null when absent.</summary>
    public sealed class DmarcPublishedPolicy
    {
        internal DmarcPublishedPolicy()
        {
        }

        /// <summary>none, quarantine or reject.</summary>
        public string? P { get; internal set; }
        public string? Sp { get; internal set; }

        /// <summary>DMARCbis: the policy for non-existent subdomains.</summary>
        public string? Np { get; internal set; }
        public int? Pct { get; internal set; }

        /// <summary>r (relaxed) or s (strict).</summary>
        public string? Adkim { get; internal set; }
        public string? Aspf { get; internal set; }
        public string? Fo { get; internal set; }

        /// <summary>DMARCbis: y when the domain owner is testing its policy (t=y).</summary>
        public string? Testing { get; internal set; }

        /// <summary>DMARCbis: how the policy was found (psl or treewalk).</summary>
        public string? DiscoveryMethod { get; internal set; }

        public override string ToString() => $"p={P ?? "?"}" + (Sp != null ? $" sp={Sp}" : "") + (Np != null ? $" np={Np}" : "") + (Pct != null ? $" pct={Pct}" : "");
    }

    /// <summary>
    /// One row of a report: messages from one source address with the same identifiers and results. The report's org,
    /// id, policy domain and period are copied onto each record so that records stand alone (Get-DmarcReport -Expand).
    /// </summary>
    public sealed class DmarcReportRecord
    {
        internal DmarcReportRecord()
        {
        }

        /// <summary>The sending address (null when the report's text is not an address; see the report's ParseWarnings).</summary>
        public IPAddress? SourceIp { get; internal set; }
        public long Count { get; internal set; }

        /// <summary>What the receiver did: none, quarantine, reject (or pass, in DMARCbis reports).</summary>
        public string Disposition { get; internal set; } = "";

        /// <summary>The DMARC DKIM result (aligned DKIM pass): pass or fail.</summary>
        public string PolicyDkim { get; internal set; } = "";

        /// <summary>The DMARC SPF result (aligned SPF pass): pass or fail.</summary>
        public string PolicySpf { get; internal set; } = "";

        /// <summary>Why the receiver did not apply the policy (forwarded, sampled_out, local_policy, ...).</summary>
        public IReadOnlyList<DmarcPolicyOverrideReason> PolicyOverrideReasons => ReasonList;

        public string HeaderFrom { get; internal set; } = "";
        public string? EnvelopeFrom { get; internal set; }
        public string? EnvelopeTo { get; internal set; }
        public IReadOnlyList<DmarcDkimAuthResult> DkimResults => DkimList;
        public IReadOnlyList<DmarcSpfAuthResult> SpfResults => SpfList;

        /// <summary>DMARC passed: aligned DKIM or aligned SPF passed, as policy_evaluated reports.</summary>
        public bool DmarcPass => DkimAligned || SpfAligned;

        /// <summary>DKIM passed with alignment (policy_evaluated dkim = pass).</summary>
        public bool DkimAligned => PolicyDkim == "pass";

        /// <summary>SPF passed with alignment (policy_evaluated spf = pass).</summary>
        public bool SpfAligned => PolicySpf == "pass";

        /// <summary>The report's reporter (org_name).</summary>
        public string OrgName { get; internal set; } = "";
        public string ReportId { get; internal set; } = "";
        public string PolicyDomain { get; internal set; } = "";
        public DateTimeOffset DateBegin { get; internal set; }
        public DateTimeOffset DateEnd { get; internal set; }

        /// <summary>The report's source (file, entry or message).</summary>
        public string SourceName { get; internal set; } = "";

        internal List<DmarcPolicyOverrideReason> ReasonList { get; } = new List<DmarcPolicyOverrideReason>();
        internal List<DmarcDkimAuthResult> DkimList { get; } = new List<DmarcDkimAuthResult>();
        internal List<DmarcSpfAuthResult> SpfList { get; } = new List<DmarcSpfAuthResult>();

        public override string ToString() => $"{SourceIp} x{Count} {Disposition} dkim={PolicyDkim} spf={PolicySpf} from={HeaderFrom}";
    }

    /// <summary>A reason the receiver gave for not applying the policy.</summary>
    public sealed class DmarcPolicyOverrideReason
    {
        internal DmarcPolicyOverrideReason(string? type, string? comment)
        {
            Type = type;
            Comment = comment;
        }

        /// <summary>forwarded, sampled_out, trusted_forwarder, mailing_list, local_policy or other (lower-cased).</summary>
        public string? Type { get; }
        public string? Comment { get; }

        public override string ToString() => Comment == null ? Type ?? "" : $"{Type}: {Comment}";
    }

    /// <summary>One DKIM signature's result (auth_results), aligned or not.</summary>
    public sealed class DmarcDkimAuthResult
    {
        internal DmarcDkimAuthResult(string domain, string? selector, string result, string? humanResult)
        {
            Domain = domain;
            Selector = selector;
            Result = result;
            HumanResult = humanResult;
        }

        public string Domain { get; }
        public string? Selector { get; }

        /// <summary>none, pass, fail, policy, neutral, temperror or permerror (lower-cased).</summary>
        public string Result { get; }
        public string? HumanResult { get; }

        public override string ToString() => $"{Domain}{(Selector != null ? "/" + Selector : "")}={Result}";
    }

    /// <summary>One SPF check's result (auth_results), aligned or not.</summary>
    public sealed class DmarcSpfAuthResult
    {
        internal DmarcSpfAuthResult(string domain, string? scope, string result, string? humanResult)
        {
            Domain = domain;
            Scope = scope;
            Result = result;
            HumanResult = humanResult;
        }

        public string Domain { get; }

        /// <summary>mfrom or helo (lower-cased; null when the reporter did not say).</summary>
        public string? Scope { get; }

        /// <summary>none, neutral, pass, fail, softfail, temperror or permerror (lower-cased).</summary>
        public string Result { get; }

        /// <summary>DMARCbis: the receiver's words about the result.</summary>
        public string? HumanResult { get; }

        public override string ToString() => $"{Domain}{(Scope != null ? "/" + Scope : "")}={Result}";
    }
}
