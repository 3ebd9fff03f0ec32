using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;
using MailKit;
using MailKit.Search;
using MailOps.Core.Config;
using MailOps.Core.Imap;

namespace MailOps.Core.Bounces
{
    /// <summary>Where to read bounces (or DMARC reports) over IMAP.</summary>
    public sealed class ImapSourceOptions
    {
        public string Host { get; set; } = "";
        public int Port { get; set; } = 993;
        public SmtpSecurity Security { get; set; } = SmtpSecurity.Auto;
        public NetworkCredential? Credential { get; set; }
        public string Folder { get; set; } = "INBOX";

        /// <summary>Processed messages are moved here (created if missing); null: left where they are. Nothing is ever deleted.</summary>
        public string? MoveProcessedTo { get; set; }
        public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);
        public bool SkipCertificateCheck { get; set; }
        public IReadOnlyList<X509Certificate2> TrustedCaCertificates { get; set; } = Array.Empty<X509Certificate2>();
        public bool AllowAuthWithoutTls { get; set; }
        public int MaxMessages { get; set; } = 10000;
    }

    /// <summary>Reads bounce mails from an IMAP folder with MailKit.</summary>
    public static class ImapBounceSource
    {
        public static async Task<IReadOnlyList<BounceRecord>> ReadAsync(ImapSourceOptions o, Action<SourceError> onError, Action<int, int>? progress, CancellationToken cancellationToken)
        {
            if (o == null)
            {
                throw new ArgumentNullException(nameof(o));
            }

            var records = new List<BounceRecord>();
            using (var session = await ImapSourceSession.OpenAsync(o, cancellationToken).ConfigureAwait(false))
            {
                var label = session.Label;
                var folder = session.Folder;
                var uids = (await folder.SearchAsync(SearchQuery.All, cancellationToken).ConfigureAwait(false)).Take(o.MaxMessages).ToList();
                var processed = new List<UniqueId>();
                for (var i = 0; i < uids.Count; i++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    progress?.Invoke(i, uids.Count);
                    MimeKit.MimeMessage message;
                    try
                    {
                        message = await folder.GetMessageAsync(uids[i], cancellationToken).ConfigureAwait(false);
                    }
                    catch (FormatException e)
                    {
                        onError(new SourceError($"{label}#{uids[i]}", "malformed message: " + e.Message));
                        continue;
                    }

                    var parsed = BounceParser.Parse(message, $"{label}#{uids[i]}");
                    records.AddRange(parsed);
                    if (parsed.Count > 0)
                    {
                        processed.Add(uids[i]);
                    }
                }

                await session.MoveProcessedAsync(processed, cancellationToken).ConfigureAwait(false);
                await session.DisconnectAsync(cancellationToken).ConfigureAwait(false);
            }

            return records;
        }
    }
}
