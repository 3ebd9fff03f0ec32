using System;

namespace MailOps.Core.Dmarc
{
    /// <summary>Why a source gave no report.</summary>
    public enum DmarcReportErrorKind
    {
        /// <summary>The bytes could not be read: missing file, no permission, an I/O error.</summary>
        Unreadable,

        /// <summary>
        /// The bytes were read but hold no aggregate report: empty, neither XML, gzip, zip nor a mail, damaged compressed
        /// data, XML that is not well-formed (with its line and column), XML that is not a &lt;feedback&gt; report, or a
        /// mail without a report part.
        /// </summary>
        Invalid,
    }

    /// <summary>
    /// A file, zip entry, mail part or message that is not a readable DMARC aggregate report. The message starts with the
    /// source's name and, for XML that is not well-formed, says the line and column.
    /// </summary>
    public sealed class DmarcReportException : Exception
    {
        public DmarcReportException()
        {
        }

        public DmarcReportException(string message) : base(message)
        {
        }

        public DmarcReportException(string message, Exception innerException) : base(message, innerException)
        {
        }

        internal DmarcReportException(DmarcReportErrorKind kind, string sourceName, string problem, Exception? inner = null, int? line = null, int? column = null)
            : base(sourceName + ": " + problem, inner)
        {
            Kind = kind;
            SourceName = sourceName;
            Problem = problem;
            LineNumber = line;
            LinePosition = column;
        }

        public DmarcReportErrorKind Kind { get; } = DmarcReportErrorKind.Invalid;

        /// <summary>The file (and zip entry or attachment, after "#") or IMAP message.</summary>
        public string SourceName { get; } = "";

        /// <summary>What is wrong, without the source's name.</summary>
        public string Problem { get; } = "";

        /// <summary>The line of the XML error (1-based), when there is one.</summary>
        public int? LineNumber { get; }

        /// <summary>The column of the XML error (1-based), when there is one.</summary>
        public int? LinePosition { get; }
    }
}
