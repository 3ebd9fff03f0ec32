using System;
using System.Linq;
using System.Management.Automation;
using MailOps.Core.Config;

namespace MailOps.PowerShell.Commands
{
    [Cmdlet(VerbsCommon.Get, "MailOpsConfig", DefaultParameterSetName = AllSet)]
    [OutputType(typeof(MailOpsConfig), ParameterSetName = new[] { AllSet })]
    [OutputType(typeof(RelayConfig), ParameterSetName = new[] { RelaySet })]
    [OutputType(typeof(FlowConfig), ParameterSetName = new[] { FlowSet })]
    public sealed class GetMailOpsConfigCommand : MailOpsCmdlet
    {
        private const string AllSet = "All";
        private const string RelaySet = "Relay";
        private const string FlowSet = "Flow";

        [Parameter(Position = 0)]
        [ValidateNotNullOrEmpty]
        public string? Path { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = RelaySet)]
        [ArgumentCompleter(typeof(RelayNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string[] Relay { get; set; } = Array.Empty<string>();

        [Parameter(Mandatory = true, ParameterSetName = FlowSet)]
        [ArgumentCompleter(typeof(FlowNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string[] Flow { get; set; } = Array.Empty<string>();

        protected override void EndProcessing()
        {
            var config = LoadConfig(Path, terminating: false);
            if (config == null)
            {
                return;
            }

            switch (ParameterSetName)
            {
                case RelaySet:
                    foreach (var pattern in Relay)
                    {
                        var wildcard = WildcardPattern.Get(pattern, WildcardOptions.IgnoreCase);
                        var found = config.Relays.Where(r => wildcard.IsMatch(r.Name)).ToList();
                        if (found.Count == 0 && !WildcardPattern.ContainsWildcardCharacters(pattern))
                        {
                            WriteError(NotFound("RelayNotFound", $"No relay named '{pattern}' in {config.Path}. Relays: {string.Join(", ", config.Relays.Select(r => r.Name))}.", pattern));
                        }

                        found.ForEach(WriteObject);
                    }

                    break;
                case FlowSet:
                    foreach (var pattern in Flow)
                    {
                        var wildcard = WildcardPattern.Get(pattern, WildcardOptions.IgnoreCase);
                        var found = config.Flows.Where(f => wildcard.IsMatch(f.Name)).ToList();
                        if (found.Count == 0 && !WildcardPattern.ContainsWildcardCharacters(pattern))
                        {
                            WriteError(NotFound("FlowNotFound", $"No flow named '{pattern}' in {config.Path}. Flows: {string.Join(", ", config.Flows.Select(f => f.Name))}.", pattern));
                        }

                        found.ForEach(WriteObject);
                    }

                    break;
                default:
                    WriteObject(config);
                    break;
            }
        }

        private static ErrorRecord NotFound(string id, string message, string target) =>
            new ErrorRecord(new ItemNotFoundException(message), id, ErrorCategory.ObjectNotFound, target);
    }
}
