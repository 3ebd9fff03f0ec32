using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;
using MailKit.Net.Smtp;
using MailKit.Security;
using MailOps.Core.Config;
using MimeKit;

namespace MailOps.Core.Smtp
{
    /// <summary>
    /// Hands one message to a configured relay the way the send engine connects: the relay's security mode, its
    /// certificate validated (against its caFile's CAs when given) unless the file says skipCertificateCheck, no password
    /// over an unencrypted channel unless allowAuthWithoutTls, a connect and an overall timeout. Shared by the email alert
    /// sink and the routing probe. Failures are MailKit's or socket exceptions (their messages never carry the password);
    /// a timeout is a <see cref="TimeoutException"/>.
    /// </summary>
    internal static class RelaySubmitter
    {
        /// <returns>The server's reply to the message ("250 2.0.0 Ok: queued as 4XyZ1").</returns>
        public static async Task<string> SendAsync(RelayConfig relay, NetworkCredential? credential, IReadOnlyList<X509Certificate2> trustedCa, MimeMessage message,
            TimeSpan timeout, CancellationToken cancellationToken)
        {
            using (var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            using (var client = new SmtpClient { Timeout = (int)Math.Min(int.MaxValue, timeout.TotalMilliseconds), LocalDomain = relay.HeloName ?? "localhost" })
            {
                limit.CancelAfter(timeout);
                client.ServerCertificateValidationCallback = (s, certificate, chain, errors) =>
                    relay.SkipCertificateCheck || new CertificateInspector(trustedCa).Inspect(relay.Host, certificate, chain, errors, DateTime.UtcNow);
                try
                {
                    await ConnectAsync(client, relay, limit.Token).ConfigureAwait(false);
                    if (credential != null && client.Capabilities.HasFlag(SmtpCapabilities.Authentication))
                    {
                        if (!client.IsSecure && !relay.AllowAuthWithoutTls)
                        {
                            throw new AuthenticationException($"The connection to relay '{relay.Name}' is not encrypted; MailOps will not send the password in clear (allowAuthWithoutTls).");
                        }

                        await client.AuthenticateAsync(credential, limit.Token).ConfigureAwait(false);
                    }

                    var reply = await client.SendAsync(message, limit.Token).ConfigureAwait(false);
                    await client.DisconnectAsync(true, limit.Token).ConfigureAwait(false);
                    return reply;
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new TimeoutException($"The relay '{relay.Name}' ({relay.Host}:{relay.Port}) did not take the message within {timeout.TotalSeconds:0.#} s.");
                }
            }
        }

        /// <summary>Our own socket with a connect timeout, then MailKit with the relay's security mode.</summary>
        private static async Task ConnectAsync(SmtpClient client, RelayConfig relay, CancellationToken cancellationToken)
        {
            var options = relay.Security switch
            {
                SmtpSecurity.None => SecureSocketOptions.None,
                SmtpSecurity.SslOnConnect => SecureSocketOptions.SslOnConnect,
                SmtpSecurity.StartTls => SecureSocketOptions.StartTls,
                SmtpSecurity.StartTlsWhenAvailable => SecureSocketOptions.StartTlsWhenAvailable,
                _ => SecureSocketOptions.Auto,
            };
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                var connect = socket.ConnectAsync(relay.Host, relay.Port);
                if (await Task.WhenAny(connect, Task.Delay(Timeout.Infinite, cancellationToken)).ConfigureAwait(false) != connect)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                }

                await connect.ConfigureAwait(false);
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            await client.ConnectAsync(socket, relay.Host, relay.Port, options, cancellationToken).ConfigureAwait(false);
        }
    }
}
