using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace MailOps.Core.Config
{
    /// <summary>The commented starter configuration that New-MailOpsConfig writes.</summary>
    public static class ConfigTemplate
    {
        public static string Render(IReadOnlyList<string>? domains = null)
        {
            var names = domains != null && domains.Count > 0 ? domains.Select(d => d.Trim().TrimEnd('.').ToLowerInvariant()).ToList() : new List<string> { "example.org" };
            var first = names[0];
            var sb = new StringBuilder();
            sb.Append(@"# MailOps configuration (format version 1).
# Check it with Test-MailOpsConfig; read it with Get-MailOpsConfig. Keys are case-sensitive, and unknown keys are
# errors, so a misspelt setting is never silently ignored. Secrets never go in this file: a relay names a
# credential, which comes from -Credential or from a SecretManagement vault (secretVault below).
version: 1

# SecretManagement vault holding the credentials named below (remove to use the default vault).
# secretVault: MailOps

# DNS servers MailOps asks (empty: the system's resolvers). An unanswered lookup is reported as unknown.
dns:
  servers: []            # for example ['192.0.2.53', '192.0.2.54:5353']
  timeoutSeconds: 5
  retries: 1
  # DNSBL zones a relay's address is checked against (these are the defaults).
  dnsblZones: [zen.spamhaus.org, bl.spamcop.net, b.barracudacentral.org]
  # DNS zones that map an address to its origin AS (Team Cymru's service; empty: no AS lookups).
  asnZone: origin.asn.cymru.com
  asnZone6: origin6.asn.cymru.com

# Where MailOps keeps the suppression list, send journals, reset audit and alert state.
store:
  provider: sqlite       # sqlite (one file, per user) or postgresql (shared by several runbook workers)
  # path: /var/lib/mailops/mailops.db
  # provider: postgresql
  # connectionString: 'Host=db.example.org;Database=mailops;Username=mailops'
  # credential: mailops-db
  # A suppression caused only by soft failures expires after this many days without a new one (0: never);
  # hard bounces never expire unless expireHardAfterDays says so.
  expireSoftAfterDays: 30
  expireHardAfterDays: 0

# The domains you send as.
domains:
");
            foreach (var d in names)
            {
                sb.Append("  - name: ").Append(d).Append('\n');
                sb.Append("    dkimSelectors: [selector1]\n");
            }

            sb.Append(@"
# Relays. role: primary carries person-to-person mail; role: secondary carries mailing lists and automated mail,
# so that a bulk mailing judged as spam can never suspend everyone's mail.
# security: None, SslOnConnect, StartTls, StartTlsWhenAvailable or Auto. Certificates are validated unless
# skipCertificateCheck: true (caFile names the CA of a relay signed by a private CA: validation stays on);
# AUTH without TLS is refused unless allowAuthWithoutTls: true.
relays:
  - name: primary
    host: smtp." + first + @"
    port: 587
    security: StartTls
    role: primary
    credential: relay-primary
  - name: secondary
    host: bulk." + first + @"
    port: 587
    security: StartTls
    role: secondary
    credential: relay-secondary
  # log: /var/log/mail.log     # the relay's MTA log, when MailOps can read it: what the traffic watch reads
  # syslogName: postfix        # the name its Postfix logs under, when several relays share one log
  # egress: [192.0.2.25]       # the addresses its mail leaves from (what SPF must authorise; default: the host's)

# Every email flow you run. kind: PersonToPerson, Transactional, Campaign, Automation, Dmp or List.
flows:
  - name: staff
    kind: PersonToPerson
    owner: it@" + first + @"
    senders: ['@" + first + @"']
    relay: primary
  # - name: newsletter
  #   kind: Campaign
  #   owner: marketing@" + first + @"
  #   senders: [news@" + first + @"]
  #   relay: secondary
  #   esp: sendgrid            # where its suppression list lives, if not in the MailOps store
  #   suppressOn: Failed       # its list manager suppresses every failed recipient (default: Hard)

# Providers added to the catalogue shipped with MailOps (matched by MX or NS host patterns, AS numbers and the
# address domains they own; and, in the inventory of who sends as your domains, by the SPF includes, PTR names
# and DKIM selectors they use when they send for you). A name already in the catalogue extends that provider.
# kind: MailboxProvider, Hosting, Esp, Marketing, Transactional, Application or Security. '*' in a pattern stands
# for any run of characters.
providers: []
  # - name: ExampleHost
  #   kind: Hosting
  #   mx: ['*.mx.examplehost.net']
  #   ns: ['*.dns.examplehost.net']
  #   asn: [64500]
  #   domains: [examplehost-mail.net]
  #   spf: [spf.examplehost.net]        # the domain of its include: in your SPF record
  #   ptr: ['*.out.examplehost.net']    # the reverse DNS names of its sending hosts
  #   dkim: [eh1, eh2]                  # the DKIM selectors it has you publish

# Traffic rules (Test-MailTraffic, Watch-MailTraffic). scope: sender, domain, flow, relay, client or all (each key unless
# match names one); metric: messages, recipients, bounceRate, deferralRate, blockReplies or deferredQueue; per:
# minute, hour or day (a rolling window before the check).
thresholds: []
  # - name: provider-cap         # what your provider tolerates: a warning from warnAt, critical at the limit
  #   scope: relay
  #   match: primary
  #   metric: recipients
  #   per: hour
  #   limit: 1000
  #   warnAt: 0.8
  # - name: list-bounces         # a rate (0..1) over at least minVolume attempts
  #   scope: flow
  #   metric: bounceRate
  #   per: hour
  #   limit: 0.05
  #   minVolume: 50
  # - name: flow-spike           # against the median and spread of the same hour of the week in the history
  #   scope: flow
  #   metric: recipients
  #   per: hour
  #   baseline: true
  #   sensitivity: 4
  #   limit: 50                  # the least figure worth an alert

# Where alerts go: email (through a relay other than the one watched), webhook (Teams, Slack, Mattermost) or syslog.
# Every sink gets every alert; a failing sink is reported and the others still fire. timeoutSeconds: 15 by default.
alerts:
  repeatAfterMinutes: 60       # an active alert is sent again after this quiet period
  sinks: []
    # - name: ops-mail
    #   type: email
    #   relay: secondary                      # not the relay being watched
    #   to: [postmaster@" + first + @"]
    #   from: mailops@" + first + @"            # default: mailops@<this machine>
    # - name: chat
    #   type: webhook
    #   url: https://chat.example.org/hooks/xxxxxxxx   # the URL holds the hook's token: keep this file private
    #   format: generic                       # slack, teams or generic (Mattermost); default: guessed from the URL
    # - name: log
    #   type: syslog                          # default: the local /dev/log (the Event Log on Windows)
    #   server: syslog." + first + @":514          # or a Unix socket path; optional
    #   protocol: udp                         # udp, tcp or unix
    #   facility: mail                        # mail by default; local0 ... local7, daemon, user...
");
            return sb.ToString();
        }
    }
}
