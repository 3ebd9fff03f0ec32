using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Bounces;
using MailOps.Core.Config;
using MailOps.Core.Dns;
using MailOps.Core.Providers;
using MailOps.Core.Store;

namespace MailOps.PowerShell.Commands
{
    /// <summary>
    /// Takes false hard bounces off the suppression list after an outage: the bounces of a window whose recipient
    /// domains a provider hosts and whose reasons an outage explains. One audited operation; Undo-HardBounceReset
    /// reverses it.
    /// </summary>
    [Cmdlet(VerbsCommon.Reset, "HardBounce", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(HardBounceResetOperation))]
    public sealed class ResetHardBounceCommand : StoreCmdlet
    {
        [Parameter]
        public DateTimeOffset? Since { get; set; }

        [Parameter]
        public DateTimeOffset? Until { get; set; }

        /// <summary>Providers whose outage it was (domains they host mail or DNS for, or own).</summary>
        [Parameter]
        [ArgumentCompleter(typeof(ProviderNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string[] Provider { get; set; } = Array.Empty<string>();

        /// <summary>Default: hostunknown, networkerror and expired, classified as infrastructure failures. userunknown only when named.</summary>
        [Parameter]
        [ArgumentCompleter(typeof(ReasonCompleter))]
        [ValidateNotNullOrEmpty]
        public string[] Reason { get; set; } = Array.Empty<string>();

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[] Domain { get; set; } = Array.Empty<string>();

        /// <summary>Where the bounces were imported from ('*' wildcards).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[] Source { get; set; } = Array.Empty<string>();

        [Parameter(ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("Recipient", "Email")]
        [ValidateNotNullOrEmpty]
        public string[] Address { get; set; } = Array.Empty<string>();

        /// <summary>Writes, per flow whose suppression list lives at an ESP, the addresses to un-suppress there (CSV in its format).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? EspExportPath { get; set; }

        [Parameter]
        [ValidateRange(1, 1024)]
        public int MaxConcurrency { get; set; } = 64;

        private readonly List<string> _addresses = new List<string>();
        private MailOpsConfig? _config;
        private BounceStore? _store;

        protected override void BeginProcessing()
        {
            if (Since.HasValue && Until.HasValue && Since.Value >= Until.Value)
            {
                ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-Since ({Since:u}) must be before -Until ({Until:u})."), "InvalidWindow", ErrorCategory.InvalidArgument, Since));
            }

            foreach (var r in Reason)
            {
                if (!BounceReasonNames.All.Contains(r.ToLowerInvariant()))
                {
                    ThrowTerminatingError(new ErrorRecord(new ArgumentException($"'{r}' is not a bounce reason. Known reasons: {string.Join(", ", BounceReasonNames.All)}."), "UnknownReason", ErrorCategory.InvalidArgument, r));
                }
            }

            _config = LoadOptionalConfig(ConfigPath);
            var catalog = ProviderCatalog.For(_config);
            foreach (var p in Provider)
            {
                if (catalog.Find(p) == null)
                {
                    ThrowTerminatingError(new ErrorRecord(new ArgumentException($"'{p}' is not a provider of the catalogue or the configuration. Known: {string.Join(", ", catalog.Providers.Select(x => x.Name))}."),
                        "UnknownProvider", ErrorCategory.InvalidArgument, p));
                }
            }

            if (Flow != null && _config != null && _config.FindFlow(Flow) == null)
            {
                WriteWarning($"The flow '{Flow}' is not in the configuration; only bounces stored with that flow name match.");
            }

            _store = OpenStore(_config, StoreCredential);
        }

        protected override void ProcessRecord()
        {
            _addresses.AddRange(Address.Select(a => a.Trim()).Where(a => a.Length > 0));
        }

        protected override void EndProcessing()
        {
            if (!Since.HasValue && !Until.HasValue && Provider.Length == 0 && Domain.Length == 0 && Source.Length == 0 && Flow == null && _addresses.Count == 0)
            {
                ThrowTerminatingError(new ErrorRecord(new ArgumentException("Say what to reset: give -Since/-Until (the outage window), -Provider, -Domain, -Flow, -Source or addresses from the pipeline."),
                    "NoCriteria", ErrorCategory.InvalidArgument, null));
            }

            var criteria = new ResetCriteria
            {
                Since = Since,
                Until = Until,
                Providers = Provider.Select(p => ProviderCatalog.For(_config).Find(p)!.Name).ToList(),
                Reasons = Reason.Select(r => r.ToLowerInvariant()).ToList(),
                Domains = Domain.Select(d => d.Trim().ToLowerInvariant()).ToList(),
                Flows = Flow != null ? new[] { Flow } : Array.Empty<string>(),
                Sources = Source,
                Addresses = _addresses.Select(a => a.ToLowerInvariant()).Distinct().ToList(),
            };
            if (Reason.Any(r => r.Equals(BounceReasons.UserUnknown, StringComparison.OrdinalIgnoreCase)))
            {
                WriteWarning("-Reason includes userunknown: addresses that a server said do not exist will be reset too.");
            }

            var dns = _config?.Dns ?? DnsConfig.Default;
            HardBounceResetPlan plan;
            using (var udp = new UdpDnsResolver(dns))
            {
                var resolver = new MailProviderResolver(udp, ProviderCatalog.For(_config), dns.AsnZone, dns.AsnZone6);
                WriteProgress(new ProgressRecord(1, "Reset-HardBounce", "Finding the suppressed addresses the criteria explain"));
                plan = RunPumped(sink => _store!.PlanResetAsync(criteria, (domains, cancel) => AttributeAsync(resolver, domains, sink, cancel), CancellationToken));
            }

            WriteProgress(new ProgressRecord(1, "Reset-HardBounce", "Planned") { RecordType = ProgressRecordType.Completed });

            // the summary comes before anything changes, with -WhatIf and without
            WriteInformation(new HostInformationMessage { Message = plan.Summary(), NoNewLine = false }, new[] { "PSHOST", "Reset-HardBounce" });
            foreach (var e in plan.Excluded)
            {
                WriteVerbose($"Kept suppressed: {e.Address}: {e.Why}");
            }

            if (plan.Items.Count == 0)
            {
                WriteWarning("Nothing to reset: no suppressed address matches the criteria." + (plan.Excluded.Count > 0 ? $" {plan.Excluded.Count} matched but stay suppressed (see -Verbose)." : ""));
                return;
            }

            if (MyInvocation.BoundParameters.TryGetValue("WhatIf", out var whatIf) && ((SwitchParameter)whatIf).IsPresent)
            {
                foreach (var item in plan.Items)
                {
                    var when = item.FirstEvent == item.LastEvent ? $"on {item.FirstEvent:u}" : $"between {item.FirstEvent:u} and {item.LastEvent:u}";
                    ShouldProcess(item.Address, $"Reset hard bounce ({string.Join(", ", item.Reasons)} {when}; provider {item.Provider ?? "unknown"}: {item.ProviderEvidence})");
                }

                return;
            }

            if (!ShouldProcess($"{plan.Items.Count} suppressed address(es) ({string.Join(", ", plan.ByProvider.Select(k => $"{k.Key} {k.Value}"))})", "Reset hard bounces"))
            {
                return;
            }

            var who = $"{Environment.UserName}@{Environment.MachineName}";
            var op = RunPumped(sink => _store!.ApplyResetAsync(plan, who, n => sink.Post(() =>
                WriteProgress(new ProgressRecord(2, "Reset-HardBounce", $"Resetting: {n} of {plan.Items.Count}") { PercentComplete = (int)(100.0 * n / plan.Items.Count) })), CancellationToken));
            WriteProgress(new ProgressRecord(2, "Reset-HardBounce", "Done") { RecordType = ProgressRecordType.Completed });
            if (EspExportPath != null)
            {
                try
                {
                    WriteEspLists(op);
                }
                catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
                {
                    // the reset itself is done and recorded: say what failed, and still give the operation
                    WriteError(new ErrorRecord(e, "EspExportFailed", ErrorCategory.WriteError, EspExportPath)
                    {
                        ErrorDetails = new ErrorDetails($"The reset {op.Id} is done, but its ESP lists could not be written to '{EspExportPath}': {e.Message}. Get-HardBounceReset -Id {op.Id} has the addresses."),
                    });
                }
            }

            WriteObject(op);
        }

        private async Task<IReadOnlyDictionary<string, MailProviderResult>> AttributeAsync(MailProviderResolver resolver, IReadOnlyCollection<string> domains, CmdletSink sink, CancellationToken cancel)
        {
            var result = new Dictionary<string, MailProviderResult>(StringComparer.OrdinalIgnoreCase);
            var n = 0;
            await resolver.ResolveManyAsync(domains, MaxConcurrency, _store, true, r =>
            {
                lock (result)
                {
                    result[r.Domain] = r;
                    n++;
                }

                if (n % 50 == 0)
                {
                    sink.Post(() => WriteProgress(new ProgressRecord(1, "Reset-HardBounce", $"Attributing domains to providers: {n} of {domains.Count}")));
                }
            }, cancel).ConfigureAwait(false);
            return result;
        }

        private void WriteEspLists(HardBounceResetOperation op)
        {
            var folder = ToFileSystemPath(EspExportPath!);
            Directory.CreateDirectory(folder);
            foreach (var group in op.Items.GroupBy(i => i.Flow ?? ""))
            {
                var flow = group.Key.Length > 0 ? _config?.FindFlow(group.Key) : null;
                if (flow?.Esp == null)
                {
                    continue;
                }

                if (!Enum.TryParse<EspFormat>(flow.Esp, true, out var format))
                {
                    WriteWarning($"The flow '{flow.Name}' names the ESP '{flow.Esp}', whose format MailOps does not know (SendGrid, Mailjet, Brevo, Mailgun): its {group.Count()} address(es) are in the operation's items.");
                    continue;
                }

                var file = Path.Combine(folder, $"{flow.Name}-{format.ToString().ToLowerInvariant()}-unsuppress-{op.Id}.csv");
                using (var writer = new StreamWriter(file, false, new UTF8Encoding(false)))
                {
                    var count = BounceExport.WriteAddressList(writer, group.Select(i => i.Address), format);
                    WriteVerbose($"{count} address(es) of the flow '{flow.Name}' to un-suppress at {format}: {file}");
                }
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _store?.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    /// <summary>Completes bounce reason names.</summary>
    public sealed class ReasonCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            System.Management.Automation.Language.CommandAst commandAst, System.Collections.IDictionary fakeBoundParameters) =>
            BounceReasonNames.All.Where(r => r.StartsWith((wordToComplete ?? "").Trim('\'', '"'), StringComparison.OrdinalIgnoreCase))
                .Select(r => new CompletionResult(r, r, CompletionResultType.ParameterValue, r));
    }
}
