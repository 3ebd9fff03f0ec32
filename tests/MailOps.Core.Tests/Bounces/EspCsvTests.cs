using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using MailOps.Core.Bounces;
using Xunit;

namespace MailOps.Core.Tests.Bounces
{
    /// <summary>ESP exports in the layouts their documentation gives (no live ESP account is reachable here).</summary>
    public class EspCsvTests
    {
        private static List<BounceRecord> Read(string csv, EspFormat format, List<SourceError> errors)
        {
            var path = Path.Combine(Path.GetTempPath(), $"mailops-esp-{Guid.NewGuid():N}.csv");
            File.WriteAllText(path, csv);
            try
            {
                return BounceSources.FromCsv(path, format, null, errors.Add).ToList();
            }
            finally
            {
                File.Delete(path);
            }
        }

        [Fact]
        public void SendGridBounceFieldsAreRead()
        {
            // SendGrid's bounce records: created (unix time), email, reason, status
            var errors = new List<SourceError>();
            var r = Read("created,email,reason,status\n1795500000,bob@example.org,\"550 5.1.1 The email account that you tried to reach does not exist.\",5.1.1\n", EspFormat.SendGrid, errors);
            Assert.Empty(errors);
            var b = Assert.Single(r);
            Assert.Equal("bob@example.org", b.Recipient);
            Assert.Equal(BounceReasons.UserUnknown, b.Reason);
            Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1795500000), b.Time);
        }

        [Fact]
        public void MailgunBounceImportColumnsAreRead()
        {
            // Mailgun's bounce import CSV: address, code, error, created_at (RFC 2822)
            var errors = new List<SourceError>();
            var r = Read("address,code,error,created_at\nann@example.org,550,\"No such domain\",\"Fri, 20 Nov 2026 08:00:00 +0000\"\n", EspFormat.Mailgun, errors);
            Assert.Empty(errors);
            var b = Assert.Single(r);
            Assert.Equal(550, b.ReplyCode);
            Assert.Equal(new DateTimeOffset(2026, 11, 20, 8, 0, 0, TimeSpan.Zero), b.Time);
        }

        [Fact]
        public void BrevoBlockedContactsWithTheApiFieldNamesAreRead()
        {
            // Brevo's blocked transactional contacts: email, senderEmail, reason, blockedAt
            var errors = new List<SourceError>();
            var r = Read("email,senderEmail,reason,blockedAt\ncarl@example.org,news@lab.test,hardBounce,2026-11-20T08:30:00Z\n", EspFormat.Brevo, errors);
            Assert.Empty(errors);
            var b = Assert.Single(r);
            Assert.Equal("carl@example.org", b.Recipient);
            Assert.Equal(new DateTimeOffset(2026, 11, 20, 8, 30, 0, TimeSpan.Zero), b.Time);
        }
        [Fact]
        public void MailjetBounceEventsTakeMailjetsOwnErrorWords()
        {
            // Mailjet's bounce event fields (Event API): time (unix), email, error_related_to, error, hard_bounce, blocked;
            // the error words come from Mailjet's documented table, not from an SMTP reply
            var errors = new List<SourceError>();
            var csv = "event,time,email,error_related_to,error,hard_bounce,blocked\n"
                + "bounce,1795500000,ann@example.org,recipient,user unknown,true,true\n"
                + "bounce,1795500060,bob@example.net,domain,no mail host,true,false\n"
                + "bounce,1795500120,cat@example.com,recipient,quota exceeded,false,false\n"
                + "bounce,1795500180,dan@example.com,spam,content blocked,false,false\n";
            var r = Read(csv, EspFormat.Mailjet, errors);
            Assert.Empty(errors);
            Assert.Equal(4, r.Count);
            Assert.Equal(BounceReasons.UserUnknown, r[0].Reason);
            Assert.True(r[0].IsHard);
            Assert.Equal("recipient: user unknown", r[0].Diagnostic);
            Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1795500000), r[0].Time);
            Assert.Equal(BounceReasons.HostUnknown, r[1].Reason);
            Assert.True(r[1].IsInfrastructureFailure, "nobody answered for the domain: what an outage at its provider gives");
            Assert.Equal(BounceReasons.MailboxFull, r[2].Reason);
            Assert.False(r[2].IsHard);
            Assert.Equal(BounceReasons.SpamDetected, r[3].Reason);
        }

        [Fact]
        public void MailjetServerTextIsKeptBesideItsErrorWords()
        {
            var errors = new List<SourceError>();
            var r = Read("time,email,error_related_to,error,comment\n1795500000,ann@example.org,recipient,user unknown,\"550 5.1.1 <ann@example.org>: Recipient address rejected\"\n", EspFormat.Mailjet, errors);
            var b = Assert.Single(r);
            Assert.Equal(BounceReasons.UserUnknown, b.Reason);
            Assert.Contains("550 5.1.1", b.Diagnostic);
            Assert.Contains("Mailjet: recipient: user unknown", b.Diagnostic);
        }

        [Fact]
        public void AnUnknownUserOnAnEspBounceListIsAHardBounceEvenWithoutTheSmtpStep()
        {
            // a bare "550 No such user" could be a content filter's answer after DATA; on Mailgun's and SendGrid's
            // bounce lists it is the receiving server's refusal of the recipient
            var errors = new List<SourceError>();
            var mailgun = Assert.Single(Read("address,code,error,created_at\nann@example.org,550,\"No such user\",\"Fri, 20 Nov 2026 08:00:00 +0000\"\n", EspFormat.Mailgun, errors));
            Assert.Equal(BounceReasons.UserUnknown, mailgun.Reason);
            Assert.True(mailgun.IsHard);
            var generic = Assert.Single(Read("email,reason\nann@example.org,\"550 No such user\"\n", EspFormat.Generic, errors));
            Assert.Equal(BounceReasons.Filtered, generic.Reason);
            Assert.Empty(errors);
        }
    }
}
