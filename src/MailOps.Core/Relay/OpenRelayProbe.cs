using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Smtp;

namespace MailOps.Core.Relay
{
    /// <summary>
    /// Asks the relay, without credentials, to accept a recipient in an outside domain. It never sends a message: the
    /// conversation ends with RSET and QUIT after RCPT. When the server lets this client pose as another address with
    /// XCLIENT (Postfix), the test poses as an address of the TEST-NET-2 range, so that a relay which trusts this
    /// client's own network is still judged as the Internet would see it.
    /// </summary>
    // The open-relay test sends no credential and no message: the relay's certificate is irrelevant to its answer.
#pragma warning disable CA5359
    internal static class OpenRelayProbe
    {
        /// <summary>TEST-NET-2 (RFC 5737): never a real client.</summary>
        internal const string OutsideAddress = "198.51.100.7";

        public static async Task<OpenRelayReport> RunAsync(RelayCheckOptions o, IReadOnlyList<IPAddress> addresses, CancellationToken cancel)
        {
            Action<string>? log = o.Transcript == null ? null : line => o.Transcript($"[{o.Label} open-relay test] {line}");
            var recipient = o.OpenRelayRecipient;
            string? posedAs = null;
            try
            {
                using (var c = await SmtpConnection.ConnectAsync(addresses, o.Port, o.Timeout, log, cancel).ConfigureAwait(false))
                {
                    var implicitTls = o.Security == Config.SmtpSecurity.SslOnConnect || (o.Security == Config.SmtpSecurity.Auto && o.Port == 465);
                    if (implicitTls)
                    {
                        // only the relay's answer matters here, not its certificate (no credential is sent)
                        await c.UpgradeToTlsAsync(o.Host, (s, cert, chain, errors) => true).ConfigureAwait(false);
                    }

                    var banner = await c.ReadReplyAsync("waiting for the banner").ConfigureAwait(false);
                    if (banner.Code != 220)
                    {
                        return new OpenRelayReport(false, recipient, banner.ToString(), null);
                    }

                    var helo = o.HeloName ?? "mailops-probe.invalid";
                    var caps = await EhloAsync(c, helo).ConfigureAwait(false);
                    if (caps == null)
                    {
                        return new OpenRelayReport(null, recipient, "EHLO refused", null);
                    }

                    if (!c.IsTls && caps.StartTls && o.Security != Config.SmtpSecurity.None)
                    {
                        await c.WriteLineAsync("STARTTLS").ConfigureAwait(false);
                        var r = await c.ReadReplyAsync("waiting for the STARTTLS reply").ConfigureAwait(false);
                        if (r.Code == 220)
                        {
                            await c.UpgradeToTlsAsync(o.Host, (s, cert, chain, errors) => true).ConfigureAwait(false);
                            caps = await EhloAsync(c, helo).ConfigureAwait(false);
                            if (caps == null)
                            {
                                return new OpenRelayReport(null, recipient, "EHLO refused after STARTTLS", null);
                            }
                        }
                    }

                    if (caps.XClient)
                    {
                        await c.WriteLineAsync($"XCLIENT ADDR={OutsideAddress} NAME=[UNAVAILABLE]").ConfigureAwait(false);
                        var x = await c.ReadReplyAsync("waiting for the XCLIENT reply").ConfigureAwait(false);
                        if (x.Code == 220)
                        {
                            posedAs = OutsideAddress;
                            if (await EhloAsync(c, helo).ConfigureAwait(false) == null)
                            {
                                return new OpenRelayReport(null, recipient, "EHLO refused after XCLIENT", posedAs);
                            }
                        }
                    }

                    await c.WriteLineAsync("MAIL FROM:<mailops-open-relay-test@example.net>").ConfigureAwait(false);
                    var mail = await c.ReadReplyAsync("waiting for the MAIL FROM reply").ConfigureAwait(false);
                    if (!mail.IsPositive)
                    {
                        await QuitAsync(c).ConfigureAwait(false);
                        return new OpenRelayReport(false, recipient, mail.ToString(), posedAs);
                    }

                    await c.WriteLineAsync($"RCPT TO:<{recipient}>").ConfigureAwait(false);
                    var rcpt = await c.ReadReplyAsync("waiting for the RCPT TO reply").ConfigureAwait(false);
                    await c.WriteLineAsync("RSET").ConfigureAwait(false);
                    await c.ReadReplyAsync("waiting for the RSET reply").ConfigureAwait(false);
                    await QuitAsync(c).ConfigureAwait(false);
                    return new OpenRelayReport(rcpt.IsPositive, recipient, rcpt.ToString(), posedAs);
                }
            }
            catch (Exception e) when (e is SmtpTimeoutException || e is SmtpProtocolException || e is System.Net.Sockets.SocketException
                || e is System.Security.Authentication.AuthenticationException || e is System.IO.IOException)
            {
                return new OpenRelayReport(null, recipient, e.Message, posedAs);
            }
        }

        private static async Task<SmtpCapabilities?> EhloAsync(SmtpConnection c, string helo)
        {
            await c.WriteLineAsync("EHLO " + helo).ConfigureAwait(false);
            var r = await c.ReadReplyAsync("waiting for the EHLO reply").ConfigureAwait(false);
            return r.Code == 250 ? new SmtpCapabilities(r.Lines) : null;
        }

        private static async Task QuitAsync(SmtpConnection c)
        {
            try
            {
                await c.WriteLineAsync("QUIT").ConfigureAwait(false);
                await c.ReadReplyAsync("waiting for the QUIT reply").ConfigureAwait(false);
            }
            catch (Exception e) when (e is SmtpProtocolException || e is SmtpTimeoutException)
            {
            }
        }

        public static void AddFindings(RelayCheckResult result, OpenRelayReport report)
        {
            var who = report.ClientAddress != null ? $"a client posing as {report.ClientAddress} (XCLIENT)" : "this client, without authentication";
            if (report.IsOpen == true)
            {
                result.Add(FindingSeverity.Critical, "OpenRelay", RelayStage.Rcpt,
                    $"OPEN RELAY: the relay accepted RCPT TO:<{report.Recipient}> from {who} ('{report.Reply}'). Spammers will use it and blocklists will list it; restrict relaying to authenticated clients (Postfix: smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination) and to trusted networks.");
            }
            else if (report.IsOpen == null)
            {
                result.Add(FindingSeverity.Warning, "OpenRelayUnknown", RelayStage.Rcpt, $"The open-relay test could not be completed: {report.Reply}.");
            }
        }
    }
#pragma warning restore CA5359
}
