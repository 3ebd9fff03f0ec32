using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Security.Cryptography.X509Certificates;
using MailOps.Core.Config;
using MailOps.Core.Dns;
using MailOps.Core.Providers;
using MailOps.Core.Relay;
using MailOps.Core.Routing;

namespace MailOps.PowerShell.Commands
{
    /// <summary>
    /// Which relay and transport a message would take through the MTA with the generated routing policy, and the limits on
    /// that way (postmap -q on the generated maps; with -Probe, a marked message through the MTA and its log); or, with
    /// -Flow, whether a flow is ready to move to a relay (the relay's check, SPF, DKIM, DMARC alignment).
    /// </summary>
    [Cmdlet(VerbsDiagnostic.Test, "MailRouting", DefaultParameterSetName = RouteSet)]
    [OutputType(typeof(MailRoute), ParameterSetName = new[] { RouteSet })]
    [OutputType(typeof(FlowReadiness), ParameterSetName = new[] { ReadinessSet })]
    public sealed class TestMailRoutingCommand : MailOpsCmdlet
    {
        private const string RouteSet = "Route";
        private const string ReadinessSet = "Readiness";
        private MailOpsConfig? _config;

        /// <summary>The envelope sender.</summary>
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = RouteSet, ValueFromPipelineByPropertyName = true)]
        [Alias("From")]
        [ValidateNotNullOrEmpty]
        public string? Sender { get; set; }

        /// <summary>The recipient (needed by -Probe).</summary>
        [Parameter(Position = 1, ParameterSetName = RouteSet, ValueFromPipelineByPropertyName = true)]
        [Alias("To")]
        [ValidateNotNullOrEmpty]
        public string? Recipient { get; set; }

        /// <summary>The address of the client that hands the message to the MTA (an app server).</summary>
        [Parameter(ParameterSetName = RouteSet, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        public string? ClientAddress { get; set; }

        /// <summary>The folder Export-MailRoutingPolicy wrote (the maps must be postmapped: -Apply does it).</summary>
        [Parameter(ParameterSetName = RouteSet)]
        [ValidateNotNullOrEmpty]
        public string? Path { get; set; }

        /// <summary>Also send a marked message through the MTA (-ProbeRelay) and read in its log which relay delivered it.</summary>
        [Parameter(ParameterSetName = RouteSet)]
        public SwitchParameter Probe { get; set; }

        /// <summary>The relay (the MTA under test) the probe goes through; it needs a 'log:'. Default: the first primary relay.</summary>
        [Parameter(ParameterSetName = RouteSet)]
        [ArgumentCompleter(typeof(RelayNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string? ProbeRelay { get; set; }

        /// <summary>How long to wait for the probe's delivery line in the log (default 60 s).</summary>
        [Parameter(ParameterSetName = RouteSet)]
        [ValidateRange(1, 3600)]
        public int ProbeTimeoutSeconds { get; set; } = 60;

        /// <summary>The flow whose move is checked.</summary>
        [Parameter(Mandatory = true, ParameterSetName = ReadinessSet, ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(FlowNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string? Flow { get; set; }

        /// <summary>The relay the flow would move to. Default: the flow's relay, else the first secondary relay.</summary>
        [Parameter(ParameterSetName = ReadinessSet)]
        [ArgumentCompleter(typeof(RelayNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string? Relay { get; set; }

        /// <summary>Do not probe the relay itself (only SPF, DKIM and DMARC).</summary>
        [Parameter(ParameterSetName = ReadinessSet)]
        public SwitchParameter SkipRelayCheck { get; set; }

        /// <summary>The credential of the relay (-ProbeRelay, or the relay checked), when its named credential is not in a vault.</summary>
        [Parameter]
        [Credential]
        public PSCredential? Credential { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? ConfigPath { get; set; }

        protected override void BeginProcessing() => _config = LoadConfig(ConfigPath, terminating: true);

        protected override void ProcessRecord()
        {
            var config = _config!;
            if (ParameterSetName == ReadinessSet)
            {
                Readiness(config);
                return;
            }

            if (!Probe && Path == null)
            {
                ThrowTerminatingError(new ErrorRecord(new ArgumentException("Give -Path (the folder Export-MailRoutingPolicy wrote) to ask its maps, or -Probe to send a marked message through the MTA."),
                    "NothingToAsk", ErrorCategory.InvalidArgument, null));
            }

            if (Probe && Recipient == null)
            {
                ThrowTerminatingError(new ErrorRecord(new ArgumentException("-Probe needs -Recipient."), "ProbeNeedsRecipient", ErrorCategory.InvalidArgument, null));
            }

            foreach (var (value, name) in new[] { (Sender!, "Sender"), (Recipient, "Recipient") })
            {
                if (value != null && (value.IndexOf('@') <= 0 || value.Any(c => char.IsControl(c) || char.IsWhiteSpace(c))))
                {
                    WriteError(new ErrorRecord(new ArgumentException($"-{name} '{value.Replace("\r", "\\r").Replace("\n", "\\n")}' is not an email address."), "InvalidAddress", ErrorCategory.InvalidArgument, value));
                    return;
                }
            }

            string? folder = null;
            PostfixTools? tools = null;
            if (Path != null)
            {
                folder = ToFileSystemPath(Path);
                if (!Directory.Exists(folder))
                {
                    WriteError(new ErrorRecord(new DirectoryNotFoundException($"There is no policy folder '{folder}': write one with Export-MailRoutingPolicy."), "PolicyNotFound", ErrorCategory.ObjectNotFound, Path));
                    return;
                }

                tools = PostfixTools.Locate();
                if (!File.Exists(tools.Postmap))
                {
                    ThrowTerminatingError(new ErrorRecord(new FileNotFoundException($"postmap is not installed ({tools.Postmap}): it answers from the generated maps."), "PostfixNotFound", ErrorCategory.ObjectNotFound, tools.Postmap));
                }
            }

            RelayConfig? via = null;
            System.Net.NetworkCredential? credential = null;
            IReadOnlyList<X509Certificate2> ca = Array.Empty<X509Certificate2>();
            if (Probe)
            {
                via = ProbeRelay != null ? config.FindRelay(ProbeRelay) : config.Relays.FirstOrDefault(r => r.Role == RelayRole.Primary);
                if (via == null)
                {
                    ThrowTerminatingError(new ErrorRecord(new ArgumentException(ProbeRelay != null ? $"There is no relay '{ProbeRelay}' in the configuration." : "The configuration has no primary relay to probe through: name one with -ProbeRelay."),
                        "RelayNotFound", ErrorCategory.ObjectNotFound, ProbeRelay));
                }

                (credential, ca) = RelayAccess(via!, config, Credential);
            }

            var route = RunPumped(async sink =>
            {
                MailRoute r;
                if (folder != null)
                {
                    var query = new RouteQuery(config, folder, new ProcessCommandRunner(), tools!);
                    try
                    {
                        r = await query.QueryAsync(Sender!, Recipient, ClientAddress, CancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        query.Cleanup();
                    }
                }
                else
                {
                    r = RouteQuery.Unanswered(config, Sender!, Recipient, ClientAddress);
                }

                if (via != null)
                {
                    sink.Post(() => WriteProgress(new ProgressRecord(3, "Test-MailRouting", $"Probe through {via.Name}: waiting for its delivery line")));
                    await RouteProbe.ProbeAsync(r, via, credential, ca, config.Relays, TimeSpan.FromSeconds(ProbeTimeoutSeconds), CancellationToken).ConfigureAwait(false);
                    sink.Post(() => WriteProgress(new ProgressRecord(3, "Test-MailRouting", "Done") { RecordType = ProgressRecordType.Completed }));
                }

                return r;
            }, e => new ErrorRecord(e, e is PostfixApplyException ? "PostmapFailed" : "ProbeFailed", e is PostfixApplyException ? ErrorCategory.InvalidResult : ErrorCategory.ConnectionError, Sender));
            if (route != null)
            {
                if (Probe && route.DeliveredBy == null)
                {
                    WriteWarning($"The probe {route.ProbeQueueId} was not delivered within {ProbeTimeoutSeconds} s: see ProbeEvidence.");
                }

                WriteObject(route);
            }
        }

        private T? RunPumped<T>(Func<CmdletSink, System.Threading.Tasks.Task<T>> work, Func<Exception, ErrorRecord> error)
            where T : class
        {
            try
            {
                return RunPumped(work);
            }
            catch (Exception e) when (e is PostfixApplyException || e is IOException || e is InvalidOperationException || e is TimeoutException
                || e is System.Net.Sockets.SocketException || e is MailKit.Net.Smtp.SmtpCommandException || e is MailKit.Net.Smtp.SmtpProtocolException
                || e is MailKit.Security.AuthenticationException || e is System.Security.Authentication.AuthenticationException || e is MailKit.Security.SslHandshakeException)
            {
                WriteError(error(e));
                return null;
            }
        }

        private void Readiness(MailOpsConfig config)
        {
            var flow = config.Flows.FirstOrDefault(f => string.Equals(f.Name, Flow, StringComparison.OrdinalIgnoreCase));
            if (flow == null)
            {
                WriteError(new ErrorRecord(new ArgumentException($"There is no flow '{Flow}' in the configuration ({string.Join(", ", config.Flows.Select(f => f.Name))})."), "FlowNotFound", ErrorCategory.ObjectNotFound, Flow));
                return;
            }

            var name = Relay ?? flow.Relay;
            var target = name != null ? config.FindRelay(name) : config.Relays.FirstOrDefault(r => r.Role == RelayRole.Secondary);
            if (target == null)
            {
                WriteError(new ErrorRecord(new ArgumentException(name != null ? $"There is no relay '{name}' in the configuration." : "The configuration has no secondary relay: name one with -Relay."),
                    "RelayNotFound", ErrorCategory.ObjectNotFound, name));
                return;
            }

            System.Net.NetworkCredential? credential = null;
            IReadOnlyList<X509Certificate2> ca = Array.Empty<X509Certificate2>();
            if (!SkipRelayCheck)
            {
                (credential, ca) = RelayAccess(target, config, Credential);
            }

            var dns = new UdpDnsResolver(config.Dns);
            var result = RunPumped(sink => FlowMoveReadiness.CheckAsync(config, flow, target, dns, ProviderCatalog.For(config),
                SkipRelayCheck ? null : (Func<System.Threading.CancellationToken, System.Threading.Tasks.Task<RelayCheckResult>>)(c => RelayChecker.CheckOneAsync(new RelayCheckOptions
                {
                    Name = target.Name,
                    Host = target.Host,
                    Port = target.Port,
                    Security = target.Security,
                    HeloName = target.HeloName,
                    Timeout = TimeSpan.FromSeconds(target.TimeoutSeconds),
                    Credential = credential,
                    SkipCertificateCheck = target.SkipCertificateCheck,
                    TrustedCaCertificates = ca,
                    AllowAuthWithoutTls = target.AllowAuthWithoutTls,

                    // the MTA-to-MTA relay accepts the primary by address: that is not an open relay worth refusing a move for
                    CheckOpenRelay = false,
                    CheckDns = false,
                }, dns, c)), CancellationToken), e => new ErrorRecord(e, "ReadinessCheckFailed", ErrorCategory.ConnectionError, flow.Name));
            if (result != null)
            {
                WriteObject(result);
            }
        }
    }
}
