using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;

namespace MailOps.Core.Sending
{
    /// <summary>Fills {{Name}} placeholders from a recipient's fields; refuses values that would inject headers.</summary>
    public static class Personalizer
    {
        private static readonly Regex Placeholder = new Regex(@"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}", RegexOptions.CultureInvariant);

        /// <summary>The placeholder names used in the template (case-insensitive, distinct).</summary>
        public static IReadOnlyList<string> Names(MessageTemplate template)
        {
            if (template == null)
            {
                throw new ArgumentNullException(nameof(template));
            }

            return new[] { template.Subject, template.TextBody, template.HtmlBody, template.UnsubscribeUrl, template.UnsubscribeMailto }
                .Where(t => t != null).SelectMany(t => Placeholder.Matches(t!).Cast<Match>().Select(m => m.Groups[1].Value))
                .Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        }

        /// <summary>The placeholders this recipient has no value for (empty: it can be sent).</summary>
        public static IReadOnlyList<string> Missing(MessageTemplate template, IReadOnlyDictionary<string, string> fields) =>
            Names(template).Where(n => !Has(fields, n)).ToList();

        /// <summary>Fills a text; <paramref name="html"/> HTML-encodes the values; <paramref name="header"/> refuses line breaks.</summary>
        public static string Fill(string text, IReadOnlyDictionary<string, string> fields, bool html = false, bool header = false, bool url = false)
        {
            if (text == null)
            {
                throw new ArgumentNullException(nameof(text));
            }

            return Placeholder.Replace(text, m =>
            {
                var value = Get(fields, m.Groups[1].Value) ?? throw new KeyNotFoundException($"no value for {{{{{m.Groups[1].Value}}}}}");
                if (header && value.IndexOfAny(new[] { '\r', '\n', '\0' }) >= 0)
                {
                    throw new FormatException($"the value of {{{{{m.Groups[1].Value}}}}} contains a line break (header injection refused)");
                }

                return url ? Uri.EscapeDataString(value) : html ? HtmlEscape(value) : value;
            });
        }

        /// <summary>Escapes the characters HTML gives a meaning (letters such as é stay as they are: the body is UTF-8).</summary>
        private static string HtmlEscape(string value) =>
            value.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;").Replace("'", "&#39;");

        private static bool Has(IReadOnlyDictionary<string, string> fields, string name) => Get(fields, name) != null;

        private static string? Get(IReadOnlyDictionary<string, string> fields, string name)
        {
            if (fields.TryGetValue(name, out var v))
            {
                return v;
            }

            foreach (var kv in fields)
            {
                if (string.Equals(kv.Key, name, StringComparison.OrdinalIgnoreCase))
                {
                    return kv.Value;
                }
            }

            return null;
        }
    }
}
