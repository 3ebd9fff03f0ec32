using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace MailOps.Core.Spf
{
    /// <summary>One mechanism of an SPF record, parsed (its domain-spec left unexpanded).</summary>
    internal sealed class SpfTerm
    {
        public char Qualifier { get; set; } = '+';
        public string Name { get; set; } = "";
        public string? DomainSpec { get; set; }
        public int Cidr4 { get; set; } = 32;
        public int Cidr6 { get; set; } = 128;
        public IPAddress? Network { get; set; }
        public string Text { get; set; } = "";
    }

    /// <summary>A record's mechanisms in order, and its redirect= and exp= modifiers (unexpanded).</summary>
    internal sealed class SpfParsedRecord
    {
        public SpfParsedRecord(IReadOnlyList<SpfTerm> terms, string? redirect, string? exp)
        {
            Terms = terms;
            Redirect = redirect;
            Exp = exp;
        }

        public IReadOnlyList<SpfTerm> Terms { get; }
        public string? Redirect { get; }
        public string? Exp { get; }
    }

    /// <summary>
    /// A syntax error: at a term (<see cref="AtTerm"/>: the evaluator traces it as "the record of X has a syntax error
    /// at 'term'") or in a macro string (the message alone).
    /// </summary>
    internal sealed class SpfSyntaxException : Exception
    {
        public SpfSyntaxException(string term, string why) : base(why)
        {
            Term = term;
            Why = why;
            AtTerm = true;
        }

        public SpfSyntaxException(string message) : base(message)
        {
            Term = "";
            Why = message;
        }

        public SpfSyntaxException()
        {
            Term = "";
            Why = "";
        }

        public SpfSyntaxException(string message, Exception innerException) : base(message, innerException)
        {
            Term = "";
            Why = message;
        }

        public string Term { get; }
        public string Why { get; }
        public bool AtTerm { get; }
    }

    /// <summary>
    /// RFC 7208 record syntax (section 4.6 and 12): terms, modifiers, CIDR lengths, macro strings. Shared by the evaluator
    /// and the inventory's SPF tree, so that both read a record the same way. Throws <see cref="SpfSyntaxException"/>.
    /// </summary>
    internal static class SpfRecordParser
    {
        private static readonly Regex ModifierName = new Regex(@"^[A-Za-z][A-Za-z0-9\-_\.]*$", RegexOptions.CultureInvariant);
        private static readonly Regex Mechanism = new Regex(@"^(?<q>[+\-~?]?)(?<name>[A-Za-z][A-Za-z0-9\-_\.]*)(?<rest>.*)$", RegexOptions.CultureInvariant);

        internal static SpfParsedRecord Parse(string record)
        {
            var terms = new List<SpfTerm>();
            string? redirect = null;
            string? exp = null;
            foreach (var raw in record.Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries).Skip(1))
            {
                if (raw.Any(ch => ch < 0x21 || ch == 0x7f))
                {
                    throw Perm(raw.Replace("\n", "\\n"), "terms are separated by spaces only; a control character is not allowed");
                }

                var eq = raw.IndexOf('=');
                var colon = raw.IndexOf(':');
                var slash = raw.IndexOf('/');
                if (eq > 0 && (colon < 0 || eq < colon) && (slash < 0 || eq < slash) && ModifierName.IsMatch(raw.Substring(0, eq)))
                {
                    var name = raw.Substring(0, eq).ToLowerInvariant();
                    var value = raw.Substring(eq + 1);
                    ValidateMacroString(value, raw, name == "exp");
                    if (name == "redirect")
                    {
                        if (redirect != null)
                        {
                            throw Perm(raw, "redirect= appears twice");
                        }

                        ValidateDomainSpec(value, raw);
                        redirect = value;
                    }
                    else if (name == "exp")
                    {
                        if (exp != null)
                        {
                            throw Perm(raw, "exp= appears twice");
                        }

                        ValidateDomainSpec(value, raw);
                        exp = value;
                    }

                    continue;
                }

                var m = Mechanism.Match(raw);
                if (!m.Success)
                {
                    throw Perm(raw, "not a mechanism or modifier");
                }

                var term = new SpfTerm { Text = raw, Qualifier = m.Groups["q"].Value.Length > 0 ? m.Groups["q"].Value[0] : '+', Name = m.Groups["name"].Value.ToLowerInvariant() };
                var rest = m.Groups["rest"].Value;
                switch (term.Name)
                {
                    case "all":
                        if (rest.Length > 0)
                        {
                            throw Perm(raw, "'all' takes no argument");
                        }

                        break;
                    case "include":
                    case "exists":
                        if (!rest.StartsWith(":", StringComparison.Ordinal) || rest.Length == 1)
                        {
                            throw Perm(raw, $"'{term.Name}' needs ':domain'");
                        }

                        term.DomainSpec = rest.Substring(1);
                        ValidateMacroString(term.DomainSpec, raw, false);
                        ValidateDomainSpec(term.DomainSpec, raw);
                        break;
                    case "a":
                    case "mx":
                        ParseDualCidr(term, rest);
                        break;
                    case "ptr":
                        if (rest.Length > 0)
                        {
                            if (!rest.StartsWith(":", StringComparison.Ordinal) || rest.Length == 1)
                            {
                                throw Perm(raw, "bad ptr argument");
                            }

                            term.DomainSpec = rest.Substring(1);
                            ValidateMacroString(term.DomainSpec, raw, false);
                            ValidateDomainSpec(term.DomainSpec, raw);
                        }

                        break;
                    case "ip4":
                    case "ip6":
                        ParseNetwork(term, rest);
                        break;
                    default:
                        throw Perm(raw, "unknown mechanism");
                }

                terms.Add(term);
            }

            return new SpfParsedRecord(terms, redirect, exp);
        }

        private static SpfSyntaxException Perm(string term, string why) => new SpfSyntaxException(term, why);

        private static void ParseDualCidr(SpfTerm term, string rest)
        {
            var m = Regex.Match(rest, @"^(?::(?<spec>[^/]*(?:/(?!\d*$|/)[^/]*)*?))?(?:/(?<v4>\d+))?(?://(?<v6>\d+))?$", RegexOptions.CultureInvariant);
            if (!m.Success)
            {
                throw Perm(term.Text, "bad domain or CIDR length");
            }

            if (rest.StartsWith(":", StringComparison.Ordinal))
            {
                var spec = m.Groups["spec"].Value;
                if (spec.Length == 0)
                {
                    throw Perm(term.Text, "empty domain");
                }

                ValidateMacroString(spec, term.Text, false);
                ValidateDomainSpec(spec, term.Text);
                term.DomainSpec = spec;
            }

            if (m.Groups["v4"].Success)
            {
                term.Cidr4 = CidrLength(m.Groups["v4"].Value, 32, term);
            }

            if (m.Groups["v6"].Success)
            {
                term.Cidr6 = CidrLength(m.Groups["v6"].Value, 128, term);
            }
        }

        private static int CidrLength(string text, int max, SpfTerm term)
        {
            if ((text.Length > 1 && text[0] == '0') || !int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n > max)
            {
                throw Perm(term.Text, $"bad CIDR length /{text}");
            }

            return n;
        }

        private static void ParseNetwork(SpfTerm term, string rest)
        {
            if (!rest.StartsWith(":", StringComparison.Ordinal))
            {
                throw Perm(term.Text, $"'{term.Name}' needs ':address'");
            }

            var value = rest.Substring(1);
            var slash = value.IndexOf('/');
            var address = slash >= 0 ? value.Substring(0, slash) : value;
            var v6 = term.Name == "ip6";
            if (!IPAddress.TryParse(address, out var ip) || (ip.AddressFamily == AddressFamily.InterNetworkV6) != v6
                || (!v6 && !Regex.IsMatch(address, @"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\z")))
            {
                throw Perm(term.Text, "not an address of the right family");
            }

            term.Network = ip;
            if (slash >= 0)
            {
                var len = CidrLength(value.Substring(slash + 1), v6 ? 128 : 32, term);
                if (v6)
                {
                    term.Cidr6 = len;
                }
                else
                {
                    term.Cidr4 = len;
                }
            }
        }

        private static void ValidateMacroString(string value, string term, bool isExp)
        {
            for (var i = 0; i < value.Length; i++)
            {
                var c = value[i];
                if (c < 0x21 || c > 0x7e)
                {
                    throw new SpfSyntaxException($"'{term}' holds a character that is not allowed");
                }

                if (c != '%')
                {
                    continue;
                }

                if (i + 1 >= value.Length)
                {
                    throw new SpfSyntaxException($"'{term}' ends with a lone '%'");
                }

                var n = value[i + 1];
                if (n == '%' || n == '_' || n == '-')
                {
                    i++;
                    continue;
                }

                if (n != '{')
                {
                    throw new SpfSyntaxException($"'{term}' has an invalid macro '%{n}'");
                }

                var close = value.IndexOf('}', i);
                if (close < 0 || !Regex.IsMatch(value.Substring(i + 2, close - i - 2), @"^[slodipvhcrtSLODIPVHCRT]\d*r?[.\-+,/_=]*\z", RegexOptions.CultureInvariant))
                {
                    throw new SpfSyntaxException($"'{term}' has an invalid macro");
                }

                if ("crtCRT".IndexOf(value[i + 2]) >= 0)
                {
                    // c, r and t are allowed only in the explanation text (the TXT record exp= points to), never in the record
                    throw new SpfSyntaxException($"'{term}' uses the %{{{value[i + 2]}}} macro, which is allowed only in explanation text");
                }

                i = close;
            }
        }

        private static void ValidateDomainSpec(string spec, string term)
        {
            // domain-end: "." toplabel ["."] or a macro-expand
            var trimmed = spec.EndsWith(".", StringComparison.Ordinal) ? spec.Substring(0, spec.Length - 1) : spec;
            if (trimmed.EndsWith("}", StringComparison.Ordinal) && trimmed.LastIndexOf("%{", StringComparison.Ordinal) >= 0)
            {
                return;
            }

            var lastDot = trimmed.LastIndexOf('.');
            var top = lastDot >= 0 ? trimmed.Substring(lastDot + 1) : "";
            if (lastDot < 0 || !Regex.IsMatch(top, @"^(?=.*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$", RegexOptions.CultureInvariant))
            {
                throw Perm(term, "the domain does not end in a valid top-level label");
            }
        }
    }
}
