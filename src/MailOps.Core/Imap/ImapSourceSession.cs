using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using MailKit;
using MailKit.Net.Imap;
using MailKit.Security;
using MailOps.Core.Bounces;
using MailOps.Core.Config;

namespace MailOps.Core.Imap
{
    /// <summary>
    /// The IMAP part every mailbox source shares (bounces, DMARC reports): connect with the options' security and
    /// certificate checks, refuse to send a password in clear unless allowed, authenticate, open the folder (read-only
    /// unless processed messages are to be moved) and find or create the folder they move to. Nothing here deletes.
    /// </summary>
    internal sealed class ImapSourceSession : IDisposable
    {
        private readonly ImapClient _client;

        private ImapSourceSession(ImapClient client, string label)
        {
            _client = client;
            Label = label;
        }

        /// <summary>imap://host:port/folder, for messages and error sources.</summary>
        public string Label { get; }

        public IMailFolder Folder { get; private set; } = null!;

        /// <summary>Where processed messages go (null: they stay).</summary>
        public IMailFolder? Target { get; private set; }

        public ImapClient Client => _client;

        /// <exception cref="AuthenticationException">The connection is not encrypted and clear-text AUTH is not allowed, or the server refused the credential.</exception>
        public static async Task<ImapSourceSession> OpenAsync(ImapSourceOptions o, CancellationToken cancellationToken)
        {
            if (o == null)
            {
                throw new ArgumentNullException(nameof(o));
            }

            var label = $"imap://{o.Host}:{o.Port}/{o.Folder}";
            var client = new ImapClient { Timeout = (int)o.Timeout.TotalMilliseconds };
            var session = new ImapSourceSession(client, label);
            try
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

                session.Folder = await client.GetFolderAsync(o.Folder, cancellationToken).ConfigureAwait(false);
                await session.Folder.OpenAsync(o.MoveProcessedTo != null ? FolderAccess.ReadWrite : FolderAccess.ReadOnly, cancellationToken).ConfigureAwait(false);
                if (o.MoveProcessedTo != null)
                {
                    try
                    {
                        session.Target = await client.GetFolderAsync(o.MoveProcessedTo, cancellationToken).ConfigureAwait(false);
                    }
                    catch (FolderNotFoundException)
                    {
                        var root = client.GetFolder(client.PersonalNamespaces[0]);
                        session.Target = await root.CreateAsync(o.MoveProcessedTo, true, cancellationToken).ConfigureAwait(false);
                    }
                }

                return session;
            }
            catch
            {
                session.Dispose();
                throw;
            }
        }

        /// <summary>Moves the processed messages to <see cref="Target"/> (when there is one); returns how many.</summary>
        public async Task<int> MoveProcessedAsync(IList<UniqueId> processed, CancellationToken cancellationToken)
        {
            if (Target == null || processed.Count == 0)
            {
                return 0;
            }

            await Folder.MoveToAsync(processed, Target, cancellationToken).ConfigureAwait(false);
            return processed.Count;
        }

        public Task DisconnectAsync(CancellationToken cancellationToken) => _client.DisconnectAsync(true, cancellationToken);

        public void Dispose() => _client.Dispose();
    }
}
