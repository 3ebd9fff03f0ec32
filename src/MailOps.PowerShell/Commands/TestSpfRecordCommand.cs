using System;
using System.Collections.Generic;
using System.Management.Automation;
using System.Net;
using MailOps.Core.Config;
using MailOps.Core.Dns;
using MailOps.Core.Spf;

namespace MailOps.PowerShell.Commands
{
    [Cmdlet(VerbsDiagnostic.Test, "SpfRecord")]
    [OutputType(typeof(SpfCheck))]
    public sealed class TestSpfRecordCommand : MailOpsCmdlet
    {
        private DnsClientResolver? _dns;

        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        public string Domain { get; set; } = "";

        [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("Address", "IP")]
        public IPAddress[] IPAddress { get; set; } = Array.Empty<IPAddress>();

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? Sender { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? HeloName { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? ConfigPath { get; set; }

        protected override void BeginProcessing()
        {
            _dns = new DnsClientResolver(LoadOptionalConfig(ConfigPath)?.Dns ?? DnsConfig.Default);
        }

        protected override void ProcessRecord()
        {
            var domain = Domain.Trim().TrimEnd('.');
            if (Sender != null && !InputValidation.IsSafeAddress(Sender, out var why))
            {
                ThrowTerminatingError(new ErrorRecord(new ArgumentException($"'{Sender}' is not usable as a sender: {why}"), "InvalidAddress", ErrorCategory.InvalidArgument, Sender));
            }

            var sender = Sender ?? "postmaster@" + domain;
            var evaluator = new SpfEvaluator(_dns!);
            foreach (var ip in IPAddress)
            {
                var result = RunPumped(_ => evaluator.CheckHostAsync(ip, domain, sender, HeloName, CancellationToken));
                WriteVerbose($"{domain} for {ip}: {result}");
                WriteObject(new SpfCheck(ip.ToString(), sender, result));
            }
        }
    }
}
