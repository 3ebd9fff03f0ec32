using System;
using System.Management.Automation;
using MailOps.Core.Store;

namespace MailOps.PowerShell.Commands
{
    /// <summary>Bounce events from the store, filtered.</summary>
    [Cmdlet(VerbsCommon.Get, "Bounce")]
    [OutputType(typeof(StoredBounce))]
    public sealed class GetBounceCommand : StoreCmdlet
    {
        [Parameter]
        public DateTimeOffset? Since { get; set; }

        [Parameter]
        public DateTimeOffset? Until { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[] Domain { get; set; } = Array.Empty<string>();

        [Parameter(ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("Recipient", "Email")]
        [ValidateNotNullOrEmpty]
        public string[] Address { get; set; } = Array.Empty<string>();

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[] Reason { get; set; } = Array.Empty<string>();

        [Parameter]
        public SwitchParameter Hard { get; set; }

        [Parameter]
        public SwitchParameter Soft { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? Source { get; set; }

        private BounceStore? _store;

        protected override void BeginProcessing()
        {
            if (Hard && Soft)
            {
                ThrowTerminatingError(new ErrorRecord(new ArgumentException("Give -Hard or -Soft, not both."), "HardAndSoft", ErrorCategory.InvalidArgument, null));
            }

            _store = OpenConfiguredStore();
        }

        protected override void ProcessRecord()
        {
            var query = new BounceQuery
            {
                Since = Since,
                Until = Until,
                Domains = Domain,
                Addresses = Address,
                Reasons = Reason,
                Hard = Hard ? true : Soft ? false : (bool?)null,
                Source = Source,
                Flow = Flow,
            };
            foreach (var b in RunPumped(_ => _store!.QueryAsync(query, CancellationToken)))
            {
                WriteObject(b);
            }
        }

        protected override void EndProcessing() => _store?.Dispose();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _store?.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
