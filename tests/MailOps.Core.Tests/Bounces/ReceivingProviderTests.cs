using MailOps.Core.Bounces;
using Xunit;

namespace MailOps.Core.Tests.Bounces
{
    /// <summary>Receiving providers' own codes and words, written here from the providers' published error tables.</summary>
    public class ReceivingProviderTests
    {
        [Theory]
        [InlineData("alice@orange.fr", null, "550 5.5.0 Adresse d'au moins un destinataire invalide. Invalid recipient. LPN007_416", BounceReasons.UserUnknown)]
        [InlineData("alice@wanadoo.fr", null, "550 5.2.0 Mail rejete. Mail rejected. OFR_506 [506]", BounceReasons.SpamDetected)]
        [InlineData("alice@laposte.net", null, "552 5.2.2 Boite du destinataire pleine. Recipient overquota. OFR_417 [417]", BounceReasons.MailboxFull)]
        [InlineData("alice@laposte.net", null, "554 5.7.1 <client.example[192.0.2.1]:4930>: Client host rejected: lpn LPN000_630", BounceReasons.PolicyViolation)]
        [InlineData("bob@cox.net", null, "554 5.7.1 <bounce@example.org> sender rejected. AUP#CXBL", BounceReasons.Blocked)]
        [InlineData("bob@cox.net", null, "421 4.7.0 too many sessions from 192.0.2.1", BounceReasons.TooManyConn)]
        [InlineData("carl@charter.net", null, "550 5.1.0 <bounce@example.org> sender rejected. AUP#In-1310", BounceReasons.TooManyConn)]
        [InlineData("carl@charter.net", null, "550 5.1.0 <bounce@example.org> sender rejected. AUP#In-1110", BounceReasons.RequirePtr)]
        [InlineData("dora@yahoo.com", null, "554 delivery error: dd This user doesn't have a yahoo.com account (dora@yahoo.com) [0]", BounceReasons.UserUnknown)]
        [InlineData("dora@example.org", "mta6.am0.yahoodns.net", "554 delivery error: dd Sorry your message to dora@example.org cannot be delivered. This mailbox is disabled (554.30)", BounceReasons.Suspend)]
        [InlineData("erin@hotmail.com", null, "550 Requested action not taken: mailbox unavailable (-2222)", BounceReasons.UserUnknown)]
        [InlineData("erin@example.com", "example-com.mail.protection.outlook.com", "550 5.7.606 Access denied, banned sending IP [192.0.2.1]", BounceReasons.Blocked)]
        [InlineData("erin@example.com", "example-com.mail.protection.outlook.com", "550 5.4.1 Recipient address rejected: Access denied", BounceReasons.UserUnknown)]
        [InlineData("erin@example.com", "example-com.mail.protection.outlook.com", "550 5.7.504 Recipient address rejected: Access denied", BounceReasons.Suspend)]
        [InlineData("fred@ezweb.ne.jp", null, "550 <fred@ezweb.ne.jp>: User unknown", BounceReasons.UserUnknown)]
        [InlineData("gina@zoho.com", null, "554 5.7.1 Email cannot be delivered. Reason: Email flagged as Spam.", BounceReasons.Rejected)]
        [InlineData("hank@example.com", "us-smtp-inbound-1.mimecast.com", "554 Host network not allowed", BounceReasons.PolicyViolation)]
        [InlineData("ivan@facebook.com", null, "550 5.1.1 RCP-P1 http://postmaster.facebook.com/response_codes?ip=192.0.2.1#rcp Refused due to recipient preferences", BounceReasons.UserUnknown)]
        [InlineData("jane@qq.com", null, "550 Mailbox not found or access denied", BounceReasons.UserUnknown)]
        public void AProvidersOwnCodeGivesItsReason(string recipient, string? host, string diagnostic, string expected)
        {
            var domain = recipient.Substring(recipient.IndexOf('@') + 1);
            Assert.Equal(expected, ReceivingProviders.Classify(domain, host, diagnostic, null, 0));
        }

        [Fact]
        public void ProvidersAreRecognisedByWholeLabelsOnly()
        {
            Assert.Equal("Cox", ReceivingProviders.Recognise("cox.net", null));
            Assert.Equal("Cox", ReceivingProviders.Recognise("east.cox.net", null));
            Assert.Null(ReceivingProviders.Recognise("xcox.net", null));
            Assert.Null(ReceivingProviders.Recognise("", null));
            Assert.Equal("Yahoo", ReceivingProviders.Recognise("example.org", "mta5.am0.yahoodns.net"));
            Assert.Equal("Microsoft", ReceivingProviders.Recognise("example.com", "example-com.mail.protection.outlook.com"));
        }

        [Fact]
        public void AnotherProvidersCodeOrAnUnknownCodeSaysNothing()
        {
            // the Orange code means nothing from a host that is not Orange's, and an unknown code leaves the decision
            Assert.Null(ReceivingProviders.Classify("example.org", "mx.example.org", "550 5.5.0 Invalid recipient. LPN007_416", null, 0));
            // a code the table does not know falls back to the provider's words
            Assert.Equal(BounceReasons.Rejected, ReceivingProviders.Classify("cox.net", null, "550 5.1.0 sender rejected AUP#ZZZZ", null, 0));
            Assert.Null(ReceivingProviders.Classify("orange.fr", null, "421 4.2.1 Veuillez essayer plus tard. LPN105_105", null, 0));
        }

        [Fact]
        public void DocomoRefusingAtDataIsTheRecipientsFilterTurningTheSenderAway()
        {
            var atData = ReceivingProviders.Classify("docomo.ne.jp", "mfsmax.docomo.ne.jp", "550 Unknown user kenji@docomo.ne.jp (in reply to end of DATA command)", "5.0.0", 550);
            var atRcpt = ReceivingProviders.Classify("docomo.ne.jp", "mfsmax.docomo.ne.jp", "550 Unknown user kenji@docomo.ne.jp (in reply to RCPT TO command)", "5.0.0", 550);
            Assert.Equal(BounceReasons.Rejected, atData);
            Assert.Equal(BounceReasons.UserUnknown, atRcpt);
        }

        [Fact]
        public void GooglesHelpArticleKeyNamesTheReasonWhoeverRelaysIt()
        {
            Assert.Equal(BounceReasons.Rejected, ReceivingProviders.Classify("example.org", null, "Unspecified Error (SENT_SECOND_EHLO). Learn more here: https://support.google.com/mail/?p=CustomFromDenied", null, 0));
            Assert.Equal(BounceReasons.Suspend, ReceivingProviders.Classify("example.org", null, "550 5.2.1 The email account that you tried to reach is disabled. https://support.google.com/mail/?p=DisabledUser", null, 0));
        }

        [Fact]
        public void TheProviderTableIsUsedForMailsAndForSingleLines()
        {
            // the same Orange refusal as a log or ESP line and as a non-standard bounce text
            var line = BounceParser.ParseDiagnosticLine("alice@orange.fr", "host smtp-in.orange.fr[192.0.2.5] said: 550 5.5.0 Invalid recipient. LPN007_416");
            Assert.Equal(BounceReasons.UserUnknown, line.Reason);
            Assert.True(line.IsHard);
            var other = BounceParser.ParseDiagnosticLine("alice@example.org", "host mx.example.org[192.0.2.5] said: 550 5.5.0 Invalid recipient. LPN007_416");
            Assert.NotEqual(BounceReasons.UserUnknown, other.Reason);
        }
    }
}
