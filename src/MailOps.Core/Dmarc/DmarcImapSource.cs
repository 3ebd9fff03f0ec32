using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using MailKit;
using MailKit.Search;
using MailOps.Core.Bounces;
using MailOps.Core.Imap;

namespace MailOps.Core.Dmarc
{
    /// <summary>What one reading of an IMAP folder found.</summary>
    public sealed class DmarcImapResult
    {
        internal DmarcImapResult(string source, IReadOnlyList<DmarcAggregateReport> reports, IReadOnlyList<DmarcReportException> errors, int examined, IReadOnlyList<string> skipped, int moved)
        {
            Source = source;
            Reports = reports;
            Errors = errors;
            MessagesExamined = examined;
            Skipped = skipped;
            MessagesMoved = moved;
        }

        /// <summary>imap://host:port/folder.</summary>
        public string Source { get; }

        /// <summary>The reports, each named imap://host:port/folder#uid (and #attachment).</summary>
        public IReadOnlyList<DmarcAggregateReport> Reports { get; }

        /// <summary>Messages, and parts of messages, that claimed to carry a report and could not be read.</summary>
        public IReadOnlyList<DmarcReportException> Errors { get; }

        public int MessagesExamined { get; }

        /// <summary>The messages without a report ("source: why"), left where they are.</summary>
        public IReadOnlyList<string> Skipped { get; }

        /// <summary>Messages moved to MoveProcessedTo: those that gave at least one report.</summary>
        public int MessagesMoved { get; }
    }

    /// <summary>
    /// Reads DMARC aggregate reports from an IMAP folder (MailKit), with the same options as the bounce source. Never
    /// deletes: with <see cref="ImapSourceOptions.MoveProcessedTo"/>, the messages that gave a report are moved there,
    /// and the others (no report, or a report that could not be read) stay for a human.
    /// </summary>
    public static class DmarcImapSource
    {
        /// <summary>
        /// Reads up to <see cref="ImapSourceOptions.MaxMessages"/> messages. Their structure is fetched first, so only
        /// messages with an XML, gzip, zip or octet-stream part (or one named like a report) are downloaded.
        /// </summary>
        /// <param name="options">Server, credential, folder, timeout (each IMAP command), certificate checks.</param>
        /// <param name="progress">Called with (messages done, messages to read).</param>
        /// <param name="cancellationToken">Stops between messages and aborts the command under way.</param>
        /// <exception cref="MailKit.Security.AuthenticationException">Clear-text AUTH refused by MailOps, or the credential by the server.</exception>
        /// <exception cref="FolderNotFoundException">No such folder.</exception>
        /// <exception cref="System.IO.IOException">The connection failed or timed out.</exception>
        /// <exception cref="OperationCanceledException">Cancelled.</exception>
        public static async Task<DmarcImapResult> ReadAsync(ImapSourceOptions options, Action<int, int>? progress, CancellationToken cancellationToken)
        {
            if (options == null)
            {
                throw new ArgumentNullException(nameof(options));
            }

            var reports = new List<DmarcAggregateReport>();
            var errors = new List<DmarcReportException>();
            var skipped = new List<string>();
            int examined;
            int moved;
            string label;
            using (var session = await ImapSourceSession.OpenAsync(options, cancellationToken).ConfigureAwait(false))
            {
                label = session.Label;
                var folder = session.Folder;
                var uids = (await folder.SearchAsync(SearchQuery.All, cancellationToken).ConfigureAwait(false)).Take(options.MaxMessages).ToList();
                var summaries = uids.Count == 0
                    ? new List<IMessageSummary>()
                    : (await folder.FetchAsync(uids, MessageSummaryItems.UniqueId | MessageSummaryItems.BodyStructure, cancellationToken).ConfigureAwait(false)).ToList();
                var bodies = summaries.Where(s => s.UniqueId.IsValid).ToDictionary(s => s.UniqueId, s => s.Body);
                var processed = new List<UniqueId>();
                examined = uids.Count;
                for (var i = 0; i < uids.Count; i++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    progress?.Invoke(i, uids.Count);
                    var uid = uids[i];
                    var name = $"{label}#{uid}";
                    if (bodies.TryGetValue(uid, out var body) && body != null && !HasReportPart(body))
                    {
                        skipped.Add($"{name}: no XML, gzip or zip part");
                        continue;
                    }

                    MimeKit.MimeMessage message;
                    try
                    {
                        message = await folder.GetMessageAsync(uid, cancellationToken).ConfigureAwait(false);
                    }
                    catch (FormatException e)
                    {
                        errors.Add(new DmarcReportException(DmarcReportErrorKind.Invalid, name, "malformed message: " + e.Message, e));
                        continue;
                    }

                    var found = DmarcReportReader.ReadMessage(message, name, errors.Add, out var whyNone, cancellationToken);
                    reports.AddRange(found);
                    if (found.Count > 0)
                    {
                        processed.Add(uid);
                    }
                    else if (whyNone != null)
                    {
                        skipped.Add($"{name}: {whyNone}");
                    }
                }

                progress?.Invoke(uids.Count, uids.Count);
                moved = await session.MoveProcessedAsync(processed, cancellationToken).ConfigureAwait(false);
                await session.DisconnectAsync(cancellationToken).ConfigureAwait(false);
            }

            return new DmarcImapResult(label, reports, errors, examined, skipped, moved);
        }

        private static bool HasReportPart(BodyPart part)
        {
            switch (part)
            {
                case BodyPartMultipart multipart:
                    return multipart.BodyParts.Any(HasReportPart);
                case BodyPartMessage attached:
                    return attached.Body != null && HasReportPart(attached.Body);
                case BodyPartBasic basic:
                    return DmarcReportReader.MightBeReportPart(basic.ContentType.MimeType, basic.FileName);
                default:
                    return true;
            }
        }
    }
}
