using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;

namespace MailOps.Core.Smtp
{
    /// <summary>One SMTP reply: the code, the enhanced status code (RFC 3463) when the server gives one, and the text.</summary>
    public sealed class SmtpReply
    {
        private static readonly Regex Enhanced = new Regex(@"^([245])\.(\d{1,3})\.(\d{1,3})\b", RegexOptions.CultureInvariant);

        internal SmtpReply(int code, IReadOnlyList<string> lines)
        {
            Code = code;
            Lines = lines;
            var first = lines.Count > 0 ? lines[0] : "";
            var m = Enhanced.Match(first);
            EnhancedStatusCode = m.Success ? m.Value : null;
        }

        public int Code { get; }

        /// <summary>The text of each line, without the code and separator.</summary>
        public IReadOnlyList<string> Lines { get; }
        public string? EnhancedStatusCode { get; }
        public string Text => string.Join(" ", Lines);
        public bool IsPositive => Code >= 200 && Code < 400;
        public bool IsTransient => Code >= 400 && Code < 500;
        public bool IsPermanent => Code >= 500;

        /// <summary>As the server wrote it (first line), for messages: "550 5.1.1 User unknown".</summary>
        public override string ToString() => $"{Code} {Text}".Trim();

        internal IEnumerable<string> RawLines() => Lines.Select((l, i) => $"{Code}{(i == Lines.Count - 1 ? ' ' : '-')}{l}");
    }
}
