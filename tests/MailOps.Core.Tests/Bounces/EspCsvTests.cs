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
    }
}
