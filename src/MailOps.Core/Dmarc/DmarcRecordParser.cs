using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace MailOps.Core.Dmarc
{
    /// <summary>A DMARC policy (p, sp, np).</summary>
    public enum DmarcPolicy
    {
        None,
        Quarantine,
        Reject,
    }

    /// <summary>Identifier alignment (adkim, aspf).</summary>
    public enum DmarcAlignment
    {
        Relaxed,
        Strict,
    }

    /// <summary>A reporting URI of rua or ruf, with its optional size limit ("mailto:d@example.org!10m").</summary>
    public sealed class DmarcReportUri
    {
        internal DmarcReportUri(string uri, long? maxSize)
        {
            Uri = uri;
            MaxSize = maxSize;
        }

        public string Uri { get; }

        /// <summary>The largest report the domain accepts at that URI, in bytes (k, m, g, t are powers of 1024, RFC 7489 §6.2); null: no limit.</summary>
        public long? MaxSize { get; }

        public override string ToString() => MaxSize == null ? Uri : $"{Uri} (max {MaxSize} bytes)";
    }

    /// <summary>A parsed _dmarc TXT record (RFC 7489 §6.3, with DMARCbis' np, psd and t). Defaults filled in for absent tags.</summary>
    public sealed class DmarcRecord
    {
        internal DmarcRecord(string text)
        {
            Text = text;
        }

        /// <summary>The record as published.</summary>
        public string Text { get; }

        public DmarcPolicy P { get; internal set; }

        /// <summary>The policy for subdomains as written (null: absent, <see cref="EffectiveSubdomainPolicy"/> is p).</summary>
        public DmarcPolicy? Sp { get; internal set; }

        /// <summary>DMARCbis: the policy for non-existent subdomains (null: absent).</summary>
        public DmarcPolicy? Np { get; internal set; }

        /// <summary>Percentage of failing mail the policy applies to (default 100; DMARCbis dropped the tag).</summary>
        public int Pct { get; internal set; } = 100;

        public IReadOnlyList<DmarcReportUri> Rua { get; internal set; } = Array.Empty<DmarcReportUri>();
        public IReadOnlyList<DmarcReportUri> Ruf { get; internal set; } = Array.Empty<DmarcReportUri>();
        public DmarcAlignment Adkim { get; internal set; } = DmarcAlignment.Relaxed;
        public DmarcAlignment Aspf { get; internal set; } = DmarcAlignment.Relaxed;

        /// <summary>Failure reporting options: a colon-separated list of 0, 1, d, s (default "0").</summary>
        public string Fo { get; internal set; } = "0";

        /// <summary>Failure report formats (default "afrf").</summary>
        public string Rf { get; internal set; } = "afrf";

        /// <summary>Requested aggregate report interval in seconds (default 86400).</summary>
        public long Ri { get; internal set; } = 86400;

        /// <summary>DMARCbis psd: y (a public suffix domain), n, or u (default; null when absent).</summary>
        public string? Psd { get; internal set; }

        /// <summary>DMARCbis t=y: the domain owner is testing the policy (default false).</summary>
        public bool Testing { get; internal set; }

        public DmarcPolicy EffectiveSubdomainPolicy => Sp ?? P;

        public DmarcPolicy EffectiveNonexistentSubdomainPolicy => Np ?? Sp ?? P;

        /// <summary>What the parser passed over or read leniently, for a human (empty for a clean record).</summary>
        public IReadOnlyList<string> Warnings => WarningList;

        internal List<string> WarningList { get; } = new List<string>();

        public override string ToString() => Text;
    }

    /// <summary>
    /// Parses _dmarc TXT records, leniently in the way of Mail::DMARC: the sloppy records found in real DNS are read,
    /// each leniency noted in <see cref="DmarcRecord.Warnings"/>.
    /// </summary>
    /// <remarks>
    /// What is accepted beyond RFC 7489's grammar:
    /// <list type="bullet">
    /// <item>white space anywhere around tags and values; empty segments (";;", a trailing ";"); tags in any case; "DMARC1" in any case;</item>
    /// <item>a tag written with ':' or '-' instead of '=' when the word before it is a DMARC tag ("fo:0", "rf:afrf", "sp-none");</item>
    /// <item>segments that are not tag=value pairs ("0", "pct100", "1:d:s", stray bytes or HTML entity debris) and unknown tags
    /// are ignored (RFC 7489 §6.3: unknown tags MUST be ignored); so "pct100" leaves pct at 100;</item>
    /// <item>a tag given twice keeps its first value; an invalid value of an optional tag (pct, adkim, aspf, fo, ri, np, psd,
    /// t) is ignored and the default applies; a reporting URI that is not one (a mailto: without a valid address) is
    /// dropped, the others kept;</item>
    /// <item>v=DMARC1 must be present; when it is not the first tag the record is still read.</item>
    /// </list>
    /// A record without a valid p (or with an invalid sp) is read as p=none when rua has a valid URI, as RFC 7489 §6.6.3
    /// says receivers do; without one it is invalid. The four broken records Mail::DMARC leaves untested (an HTML-entity
    /// rua, "pct100", "pct0" after stray bytes, a stray quotation mark) are therefore all valid, with warnings and the
    /// broken parts ignored.
    /// </remarks>
    public static class DmarcRecordParser
    {
        private static readonly string[] KnownTags = { "v", "p", "sp", "np", "pct", "rua", "ruf", "adkim", "aspf", "fo", "rf", "ri", "psd", "t" };

        /// <summary>Parses a record.</summary>
        /// <exception cref="FormatException">Not a DMARC record (no v=DMARC1), or neither a valid p nor a valid rua.</exception>
        public static DmarcRecord Parse(string text)
        {
            if (!TryParse(text, out var record, out var error))
            {
                throw new FormatException(error);
            }

            return record!;
        }

        /// <summary>Parses a record; false with the reason when it is not a usable DMARC record.</summary>
        public static bool TryParse(string text, out DmarcRecord? record, out string? error)
        {
            record = null;
            error = null;
            if (text == null)
            {
                error = "no record";
                return false;
            }

            var r = new DmarcRecord(text);
            var w = r.WarningList;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var first = true;
            string? version = null;
            string? pText = null, spText = null;
            DmarcPolicy? p = null;
            var spInvalid = false;
            foreach (var raw in text.Split(';'))
            {
                var segment = raw.Trim();
                if (segment.Length == 0)
                {
                    continue;
                }

                string tag, value;
                var eq = segment.IndexOf('=');
                if (eq > 0)
                {
                    tag = segment.Substring(0, eq).Trim().ToLowerInvariant();
                    value = segment.Substring(eq + 1).Trim();
                }
                else
                {
                    var sep = segment.IndexOfAny(new[] { ':', '-' });
                    var candidate = sep > 0 ? segment.Substring(0, sep).Trim().ToLowerInvariant() : "";
                    if (sep > 0 && Array.IndexOf(KnownTags, candidate) >= 0)
                    {
                        tag = candidate;
                        value = segment.Substring(sep + 1).Trim();
                        w.Add($"'{segment}' read as {tag}={value} (tags are written tag=value)");
                    }
                    else
                    {
                        w.Add($"'{segment}' ignored: not a tag=value pair");
                        first = false;
                        continue;
                    }
                }

                if (!seen.Add(tag))
                {
                    w.Add($"{tag} is given twice; the first value is kept");
                    first = false;
                    continue;
                }

                if (tag == "v" && !first)
                {
                    w.Add("v=DMARC1 is not the first tag");
                }

                first = false;
                switch (tag)
                {
                    case "v":
                        version = value;
                        break;
                    case "p":
                        pText = value;
                        p = Policy(value);
                        break;
                    case "sp":
                        spText = value;
                        r.Sp = Policy(value);
                        spInvalid = r.Sp == null;
                        break;
                    case "np":
                        r.Np = Policy(value);
                        if (r.Np == null)
                        {
                            w.Add($"np={value} ignored: not none, quarantine or reject");
                        }

                        break;
                    case "pct":
                        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var pct) && pct <= 100)
                        {
                            r.Pct = pct;
                        }
                        else
                        {
                            w.Add($"pct={value} ignored: not a number from 0 to 100 (100 applies)");
                        }

                        break;
                    case "rua":
                        r.Rua = Uris(tag, value, w);
                        break;
                    case "ruf":
                        r.Ruf = Uris(tag, value, w);
                        break;
                    case "adkim":
                    case "aspf":
                        var mode = value.ToLowerInvariant();
                        if (mode == "r" || mode == "s")
                        {
                            if (tag == "adkim")
                            {
                                r.Adkim = mode == "s" ? DmarcAlignment.Strict : DmarcAlignment.Relaxed;
                            }
                            else
                            {
                                r.Aspf = mode == "s" ? DmarcAlignment.Strict : DmarcAlignment.Relaxed;
                            }
                        }
                        else
                        {
                            w.Add($"{tag}={value} ignored: not r or s (r applies)");
                        }

                        break;
                    case "fo":
                        var options = value.ToLowerInvariant().Split(':').Select(o => o.Trim()).ToList();
                        if (options.All(o => o == "0" || o == "1" || o == "d" || o == "s"))
                        {
                            r.Fo = string.Join(":", options);
                        }
                        else
                        {
                            w.Add($"fo={value} ignored: not a list of 0, 1, d and s (0 applies)");
                        }

                        break;
                    case "rf":
                        r.Rf = value.ToLowerInvariant();
                        break;
                    case "ri":
                        if (long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var ri) && ri <= uint.MaxValue)
                        {
                            r.Ri = ri;
                        }
                        else
                        {
                            w.Add($"ri={value} ignored: not a number of seconds (86400 applies)");
                        }

                        break;
                    case "psd":
                        var psd = value.ToLowerInvariant();
                        if (psd == "y" || psd == "n" || psd == "u")
                        {
                            r.Psd = psd;
                        }
                        else
                        {
                            w.Add($"psd={value} ignored: not y, n or u");
                        }

                        break;
                    case "t":
                        var t = value.ToLowerInvariant();
                        if (t == "y" || t == "n")
                        {
                            r.Testing = t == "y";
                        }
                        else
                        {
                            w.Add($"t={value} ignored: not y or n");
                        }

                        break;
                    default:
                        w.Add($"unknown tag {tag} ignored");
                        break;
                }
            }

            if (version == null)
            {
                error = "not a DMARC record: no v=DMARC1";
                return false;
            }

            if (!version.Equals("DMARC1", StringComparison.OrdinalIgnoreCase))
            {
                error = $"not a DMARC record: v={version} (only DMARC1 exists)";
                return false;
            }

            if (version != "DMARC1")
            {
                w.Add($"v={version} read as v=DMARC1");
            }

            if (p == null || spInvalid)
            {
                // RFC 7489 §6.6.3: without a valid p (or with an invalid sp), a record whose rua has a valid URI is read as p=none
                var what = p == null ? (pText == null ? "no p tag" : $"p={pText} is not none, quarantine or reject") : $"sp={spText} is not none, quarantine or reject";
                if (r.Rua.Count == 0)
                {
                    error = $"invalid DMARC record: {what}, and no valid rua";
                    return false;
                }

                w.Add($"{what}: read as p=none because rua is given (RFC 7489 §6.6.3)");
                p = DmarcPolicy.None;
                r.Sp = null;
            }

            r.P = p.Value;
            record = r;
            return true;
        }

        private static DmarcPolicy? Policy(string value)
        {
            switch (value.ToLowerInvariant())
            {
                case "none":
                    return DmarcPolicy.None;
                case "quarantine":
                    return DmarcPolicy.Quarantine;
                case "reject":
                    return DmarcPolicy.Reject;
                default:
                    return null;
            }
        }

        private static List<DmarcReportUri> Uris(string tag, string value, List<string> warnings)
        {
            var list = new List<DmarcReportUri>();
            foreach (var raw in value.Split(','))
            {
                var item = raw.Trim();
                if (item.Length == 0)
                {
                    continue;
                }

                long? size = null;
                var bang = item.LastIndexOf('!');
                if (bang > 0 && TrySize(item.Substring(bang + 1), out var bytes))
                {
                    size = bytes;
                    item = item.Substring(0, bang);
                }

                if (IsReportUri(item))
                {
                    list.Add(new DmarcReportUri(item, size));
                }
                else
                {
                    warnings.Add($"{tag} URI '{raw.Trim()}' dropped: not a mailto: address or an absolute URI");
                }
            }

            return list;
        }

        /// <summary>"10m" and the like: digits and an optional unit k, m, g or t (powers of 1024).</summary>
        private static bool TrySize(string text, out long bytes)
        {
            bytes = 0;
            if (text.Length == 0)
            {
                return false;
            }

            var unit = char.ToLowerInvariant(text[text.Length - 1]);
            var shift = unit switch
            {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                _ => 0,
            };
            var digits = shift == 0 ? text : text.Substring(0, text.Length - 1);
            if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n > (long.MaxValue >> shift))
            {
                return false;
            }

            bytes = n << shift;
            return true;
        }

        private static bool IsReportUri(string uri)
        {
            if (uri.StartsWith("mailto:", StringComparison.OrdinalIgnoreCase))
            {
                var address = Uri.UnescapeDataString(uri.Substring("mailto:".Length));
                var at = address.LastIndexOf('@');
                if (at <= 0 || at == address.Length - 1)
                {
                    return false;
                }

                var domain = address.Substring(at + 1).TrimEnd('.');
                return domain.Length > 0 && domain.Split('.').All(label => label.Length > 0 && label.Length <= 63
                    && label.All(c => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'));
            }

            return System.Uri.TryCreate(uri, UriKind.Absolute, out var parsed) && parsed.Scheme.Length > 0 && uri.IndexOf(' ') < 0;
        }
    }
}
