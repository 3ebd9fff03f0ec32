using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;
using MailKit;
using MailKit.Net.Imap;
using MailKit.Search;
using MailKit.Security;
using MailOps.Core.Config;

namespace MailOps.Core.Bounces
{
    /// <summary>Where to read bounces over IMAP.</summary>
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

            var label = $"imap://{o.Host}:{o.Port}/{o.Folder}";
            var records = new List<BounceRecord>();
            using (var client = new ImapClient { Timeout = (int)o.Timeout.TotalMilliseconds })
            {
                client.ServerCertificateValidationCallback = (sender, certificate, chain, errors) =>
                {
                    if (o.SkipCertificateCheck)
                    {
                        return true;
                    }

                    var inspector = new Smtp.CertificateInspector(o.TrustedCaCertificates);
                    return inspector.Inspect(o.Host, certificate, chain, errors, DateTime.UtcNow);
                };
                var options = o.Security switch
                {
                    SmtpSecurity.None => SecureSocketOptions.None,
                    SmtpSecurity.SslOnConnect => SecureSocketOptions.SslOnConnect,
                    SmtpSecurity.StartTls => SecureSocketOptions.StartTls,
                    SmtpSecurity.StartTlsWhenAvailable => SecureSocketOptions.StartTlsWhenAvailable,
                    _ => SecureSocketOptions.Auto,
                };
                await client.ConnectAsync(o.Host, o.Port, options, cancellationToken).ConfigureAwait(false);
                if (o.Credential != null)
                {
                    if (!client.IsSecure && !o.AllowAuthWithoutTls)
                    {
                        throw new AuthenticationException($"{label}: the connection is not encrypted; MailOps will not send the password in clear (use -AllowAuthWithoutTls if you must).");
                    }

                    await client.AuthenticateAsync(o.Credential, cancellationToken).ConfigureAwait(false);
                }

                var folder = await client.GetFolderAsync(o.Folder, cancellationToken).ConfigureAwait(false);
                await folder.OpenAsync(o.MoveProcessedTo != null ? FolderAccess.ReadWrite : FolderAccess.ReadOnly, cancellationToken).ConfigureAwait(false);
                IMailFolder? target = null;
                if (o.MoveProcessedTo != null)
                {
                    try
                    {
                        target = await client.GetFolderAsync(o.MoveProcessedTo, cancellationToken).ConfigureAwait(false);
                    }
                    catch (FolderNotFoundException)
                    {
                        var root = client.GetFolder(client.PersonalNamespaces[0]);
                        target = await root.CreateAsync(o.MoveProcessedTo, true, cancellationToken).ConfigureAwait(false);
                    }
                }

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

                if (target != null && processed.Count > 0)
                {
                    await folder.MoveToAsync(processed, target, cancellationToken).ConfigureAwait(false);
                }

                await client.DisconnectAsync(true, cancellationToken).ConfigureAwait(false);
            }

            return records;
        }
    }
}
