using System;
using System.Globalization;
using System.IO;
using System.Net;
using System.Text;
using System.Threading;
using System.Xml;

namespace MailOps.Core.Dmarc
{
    /// <summary>
    /// Reads one &lt;feedback&gt; document with a forward-only XmlReader (no DOM: a report of thousands of records is read
    /// record by record). Elements are matched by local name, so the namespace does not matter (RFC 7489 reports have
    /// none, DMARCbis ones urn:ietf:params:xml:ns:dmarc-2.0, some reporters invent their own). Anything before
    /// &lt;feedback&gt; (a stray &lt;xs:schema&gt; wrapper) is passed over, and nothing after &lt;/feedback&gt; is read, so
    /// an unclosed wrapper or trailing bytes do not matter. Unknown elements are skipped.
    /// </summary>
    internal static class DmarcXmlParser
    {
        internal const string DmarcBisNamespace = "urn:ietf:params:xml:ns:dmarc-2.0";
        internal const string DraftNamespace = "http://dmarc.org/dmarc-xml/0.1";

        private static XmlReaderSettings NewSettings() => new XmlReaderSettings
        {
            // no DTD processing and no resolver: a report cannot make the reader fetch or expand anything
            DtdProcessing = DtdProcessing.Ignore,
            XmlResolver = null,
            IgnoreComments = true,
            IgnoreProcessingInstructions = true,
            IgnoreWhitespace = true,
            // control characters in text (seen in the wild) are kept rather than refused
            CheckCharacters = false,
            CloseInput = false,
        };

        /// <summary>Reads the report; XmlException for XML that is not well-formed, DmarcReportException when it is not a report.</summary>
        public static DmarcAggregateReport Parse(TextReader text, string sourceName, CancellationToken cancellationToken)
        {
            var report = new DmarcAggregateReport(sourceName);
            using (var r = XmlReader.Create(text, NewSettings()))
            {
                string? root = null;
                var found = false;
                while (r.Read())
                {
                    if (r.NodeType != XmlNodeType.Element)
                    {
                        continue;
                    }

                    root ??= r.Name;
                    if (r.LocalName == "feedback")
                    {
                        found = true;
                        break;
                    }
                }

                if (!found)
                {
                    throw new DmarcReportException(DmarcReportErrorKind.Invalid, sourceName,
                        root == null ? "no XML element: not a DMARC aggregate report" : $"no <feedback> element (the document is <{root}>): not a DMARC aggregate report");
                }

                report.Namespace = r.NamespaceURI;
                var depth = r.Depth;
                var sawContent = false;
                if (!r.IsEmptyElement)
                {
                    r.Read();
                    // the children of <feedback>; its end tag is not read past (see the class comment)
                    while (!(r.NodeType == XmlNodeType.EndElement && r.Depth == depth))
                    {
                        if (r.NodeType != XmlNodeType.Element || r.Depth != depth + 1)
                        {
                            if (!r.Read())
                            {
                                break;
                            }

                            continue;
                        }

                        switch (r.LocalName)
                        {
                            case "version":
                                report.Version = Optional(ReadText(r));
                                break;
                            case "report_metadata":
                                sawContent = true;
                                ReadMetadata(r, report);
                                break;
                            case "policy_published":
                                sawContent = true;
                                ReadPolicy(r, report);
                                break;
                            case "record":
                                sawContent = true;
                                cancellationToken.ThrowIfCancellationRequested();
                                report.RecordList.Add(ReadRecord(r, report));
                                break;
                            default:
                                r.Skip();
                                break;
                        }
                    }
                }

                if (!sawContent)
                {
                    throw new DmarcReportException(DmarcReportErrorKind.Invalid, sourceName, "<feedback> has no report_metadata, policy_published or record: not a DMARC aggregate report");
                }
            }

            Finish(report);
            return report;
        }

        private static void Finish(DmarcAggregateReport report)
        {
            // by the namespace or version only: some RFC 7489 reports already carry DMARCbis elements (Google's have <np>)
            report.Schema = report.Namespace == DmarcBisNamespace || (report.Version != null && report.Version.StartsWith("2", StringComparison.Ordinal))
                ? DmarcReportSchema.DmarcBis
                : report.Namespace == DraftNamespace ? DmarcReportSchema.Draft : DmarcReportSchema.Rfc7489;
            if (report.ReportId.Length == 0)
            {
                report.WarningList.Add("the report has no report_id");
            }

            if (report.PolicyDomain.Length == 0)
            {
                report.WarningList.Add("the report has no policy_published domain");
            }

            foreach (var rec in report.RecordList)
            {
                rec.OrgName = report.OrgName;
                rec.ReportId = report.ReportId;
                rec.PolicyDomain = report.PolicyDomain;
                rec.DateBegin = report.DateBegin;
                rec.DateEnd = report.DateEnd;
                rec.SourceName = report.SourceName;
            }
        }

        private static void ReadMetadata(XmlReader r, DmarcAggregateReport report)
        {
            var depth = r.Depth;
            if (Enter(r))
            {
                while (NextChild(r, depth))
                {
                    switch (r.LocalName)
                    {
                        case "org_name":
                            report.OrgName = ReadText(r);
                            break;
                        case "email":
                            report.Email = Optional(ReadText(r));
                            break;
                        case "extra_contact_info":
                            report.ExtraContactInfo = Optional(ReadText(r));
                            break;
                        case "report_id":
                            report.ReportId = ReadText(r);
                            break;
                        case "generator":
                            report.Generator = Optional(ReadText(r));
                            break;
                        case "error":
                            var e = ReadText(r);
                            if (e.Length > 0)
                            {
                                report.ErrorList.Add(e);
                            }

                            break;
                        case "date_range":
                            ReadDateRange(r, report);
                            break;
                        default:
                            r.Skip();
                            break;
                    }
                }
            }
        }

        private static void ReadDateRange(XmlReader r, DmarcAggregateReport report)
        {
            var depth = r.Depth;
            if (Enter(r))
            {
                while (NextChild(r, depth))
                {
                    switch (r.LocalName)
                    {
                        case "begin":
                            report.DateBegin = ReadTime(ReadText(r), "begin", report);
                            break;
                        case "end":
                            report.DateEnd = ReadTime(ReadText(r), "end", report);
                            break;
                        default:
                            r.Skip();
                            break;
                    }
                }
            }
        }

        /// <summary>Unix seconds as the RFC says; a fractional or ISO 8601 time is accepted too (some reporters write them).</summary>
        private static DateTimeOffset ReadTime(string text, string which, DmarcAggregateReport report)
        {
            if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds) && seconds >= -62135596800 && seconds <= 253402300799)
            {
                return DateTimeOffset.FromUnixTimeSeconds(seconds);
            }

            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var fractional) && fractional >= -62135596800 && fractional <= 253402300799)
            {
                return DateTimeOffset.FromUnixTimeMilliseconds((long)(fractional * 1000));
            }

            if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var iso))
            {
                return iso.ToUniversalTime();
            }

            report.WarningList.Add($"date_range {which} '{text}' is not a time");
            return DateTimeOffset.MinValue;
        }

        private static void ReadPolicy(XmlReader r, DmarcAggregateReport report)
        {
            var p = report.PolicyPublished;
            var depth = r.Depth;
            if (Enter(r))
            {
                while (NextChild(r, depth))
                {
                    switch (r.LocalName)
                    {
                        case "domain":
                            report.PolicyDomain = ReadText(r);
                            break;
                        case "p":
                            p.P = Word(ReadText(r));
                            break;
                        case "sp":
                            p.Sp = Word(ReadText(r));
                            break;
                        case "np":
                            p.Np = Word(ReadText(r));
                            break;
                        case "pct":
                            var pct = ReadText(r);
                            if (int.TryParse(pct, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n))
                            {
                                p.Pct = n;
                            }
                            else if (pct.Length > 0)
                            {
                                report.WarningList.Add($"policy_published pct '{pct}' is not a number");
                            }

                            break;
                        case "adkim":
                            p.Adkim = Word(ReadText(r));
                            break;
                        case "aspf":
                            p.Aspf = Word(ReadText(r));
                            break;
                        case "fo":
                            p.Fo = Word(ReadText(r));
                            break;
                        case "testing":
                            p.Testing = Word(ReadText(r));
                            break;
                        case "discovery_method":
                            p.DiscoveryMethod = Word(ReadText(r));
                            break;
                        default:
                            r.Skip();
                            break;
                    }
                }
            }
        }

        private static DmarcReportRecord ReadRecord(XmlReader r, DmarcAggregateReport report)
        {
            var rec = new DmarcReportRecord();
            var number = report.RecordList.Count + 1;
            var depth = r.Depth;
            if (Enter(r))
            {
                while (NextChild(r, depth))
                {
                    switch (r.LocalName)
                    {
                        case "row":
                            ReadRow(r, rec, number, report);
                            break;
                        case "identifiers":
                            ReadIdentifiers(r, rec);
                            break;
                        case "auth_results":
                            ReadAuthResults(r, rec);
                            break;
                        default:
                            r.Skip();
                            break;
                    }
                }
            }

            return rec;
        }

        private static void ReadRow(XmlReader r, DmarcReportRecord rec, int number, DmarcAggregateReport report)
        {
            var depth = r.Depth;
            if (!Enter(r))
            {
                return;
            }

            var sawCount = false;
            while (NextChild(r, depth))
            {
                switch (r.LocalName)
                {
                    case "source_ip":
                        var ip = ReadText(r);
                        // IPAddress.TryParse also takes "1" or "10.1" (as inet_aton does): an address must have its dots or colons
                        if ((ip.IndexOf('.') >= 0 || ip.IndexOf(':') >= 0) && IPAddress.TryParse(ip, out var address))
                        {
                            rec.SourceIp = address;
                        }
                        else
                        {
                            report.WarningList.Add($"record {number}: source_ip '{ip}' is not an IP address");
                        }

                        break;
                    case "count":
                        var count = ReadText(r);
                        sawCount = true;
                        if (long.TryParse(count, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 0)
                        {
                            rec.Count = n;
                        }
                        else
                        {
                            report.WarningList.Add($"record {number}: count '{count}' is not a number (counted as 0)");
                        }

                        break;
                    case "policy_evaluated":
                        ReadPolicyEvaluated(r, rec);
                        break;
                    default:
                        r.Skip();
                        break;
                }
            }

            if (!sawCount)
            {
                report.WarningList.Add($"record {number}: no count (counted as 0)");
            }
        }

        private static void ReadPolicyEvaluated(XmlReader r, DmarcReportRecord rec)
        {
            var depth = r.Depth;
            if (!Enter(r))
            {
                return;
            }

            while (NextChild(r, depth))
            {
                switch (r.LocalName)
                {
                    case "disposition":
                        rec.Disposition = Word(ReadText(r)) ?? "";
                        break;
                    case "dkim":
                        rec.PolicyDkim = Word(ReadText(r)) ?? "";
                        break;
                    case "spf":
                        rec.PolicySpf = Word(ReadText(r)) ?? "";
                        break;
                    case "reason":
                        string? type = null;
                        string? comment = null;
                        var reasonDepth = r.Depth;
                        if (Enter(r))
                        {
                            while (NextChild(r, reasonDepth))
                            {
                                if (r.LocalName == "type")
                                {
                                    type = Word(ReadText(r));
                                }
                                else if (r.LocalName == "comment")
                                {
                                    comment = Optional(ReadText(r));
                                }
                                else
                                {
                                    r.Skip();
                                }
                            }
                        }

                        // an empty <reason><type/><comment/></reason> (seen in the wild) says nothing: not kept
                        if (type != null || comment != null)
                        {
                            rec.ReasonList.Add(new DmarcPolicyOverrideReason(type, comment));
                        }

                        break;
                    default:
                        r.Skip();
                        break;
                }
            }
        }

        private static void ReadIdentifiers(XmlReader r, DmarcReportRecord rec)
        {
            var depth = r.Depth;
            if (!Enter(r))
            {
                return;
            }

            while (NextChild(r, depth))
            {
                switch (r.LocalName)
                {
                    case "header_from":
                        rec.HeaderFrom = ReadText(r);
                        break;
                    case "envelope_from":
                        rec.EnvelopeFrom = Optional(ReadText(r));
                        break;
                    case "envelope_to":
                        rec.EnvelopeTo = Optional(ReadText(r));
                        break;
                    default:
                        r.Skip();
                        break;
                }
            }
        }

        private static void ReadAuthResults(XmlReader r, DmarcReportRecord rec)
        {
            var depth = r.Depth;
            if (!Enter(r))
            {
                return;
            }

            while (NextChild(r, depth))
            {
                var isDkim = r.LocalName == "dkim";
                if (!isDkim && r.LocalName != "spf")
                {
                    r.Skip();
                    continue;
                }

                string domain = "", result = "";
                string? selectorOrScope = null, human = null;
                var resultDepth = r.Depth;
                if (Enter(r))
                {
                    while (NextChild(r, resultDepth))
                    {
                        switch (r.LocalName)
                        {
                            case "domain":
                                domain = ReadText(r);
                                break;
                            case "result":
                                result = Word(ReadText(r)) ?? "";
                                break;
                            case "selector" when isDkim:
                                selectorOrScope = Optional(ReadText(r));
                                break;
                            case "scope" when !isDkim:
                                selectorOrScope = Word(ReadText(r));
                                break;
                            case "human_result":
                                human = Optional(ReadText(r));
                                break;
                            default:
                                r.Skip();
                                break;
                        }
                    }
                }

                if (isDkim)
                {
                    rec.DkimList.Add(new DmarcDkimAuthResult(domain, selectorOrScope, result, human));
                }
                else
                {
                    rec.SpfList.Add(new DmarcSpfAuthResult(domain, selectorOrScope, result, human));
                }
            }
        }

        /// <summary>Moves into a container element; false (and moved past it) when it is empty.</summary>
        private static bool Enter(XmlReader r)
        {
            if (r.IsEmptyElement)
            {
                r.Read();
                return false;
            }

            r.Read();
            return true;
        }

        /// <summary>
        /// Moves to the next child element of the container at <paramref name="depth"/>; false once past its end tag. The
        /// caller reads or skips each child, so the reader always moves forward.
        /// </summary>
        private static bool NextChild(XmlReader r, int depth)
        {
            while (true)
            {
                if (r.NodeType == XmlNodeType.EndElement && r.Depth == depth)
                {
                    r.Read();
                    return false;
                }

                if (r.NodeType == XmlNodeType.Element && r.Depth == depth + 1)
                {
                    return true;
                }

                if (!r.Read())
                {
                    return false;
                }
            }
        }

        /// <summary>The trimmed text of an element (nested elements' text included); the reader ends past its end tag.</summary>
        private static string ReadText(XmlReader r)
        {
            if (r.IsEmptyElement)
            {
                r.Read();
                return "";
            }

            var depth = r.Depth;
            string? first = null;
            StringBuilder? more = null;
            while (r.Read())
            {
                if (r.NodeType == XmlNodeType.EndElement && r.Depth == depth)
                {
                    r.Read();
                    break;
                }

                if (r.NodeType == XmlNodeType.Text || r.NodeType == XmlNodeType.CDATA || r.NodeType == XmlNodeType.SignificantWhitespace || r.NodeType == XmlNodeType.Whitespace)
                {
                    if (first == null)
                    {
                        first = r.Value;
                    }
                    else
                    {
                        (more ??= new StringBuilder(first)).Append(r.Value);
                    }
                }
            }

            return (more?.ToString() ?? first ?? "").Trim();
        }

        private static string? Optional(string text) => text.Length == 0 ? null : text;

        /// <summary>A result or policy word: lower-cased (some reporters write "Pass" or "None"); null when empty.</summary>
        private static string? Word(string text) => text.Length == 0 ? null : text.ToLowerInvariant();
    }
}
