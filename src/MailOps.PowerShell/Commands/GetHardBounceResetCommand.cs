using System;
using System.Management.Automation;
using MailOps.Core.Store;

namespace MailOps.PowerShell.Commands
{
    /// <summary>The audited hard bounce resets, newest first.</summary>
    [Cmdlet(VerbsCommon.Get, "HardBounceReset")]
    [OutputType(typeof(HardBounceResetOperation))]
    public sealed class GetHardBounceResetCommand : OpenStoreCmdlet
    {
        [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        public string[] Id { get; set; } = Array.Empty<string>();

        [Parameter]
        public DateTimeOffset? Since { get; set; }

        /// <summary>Also load each operation's items (always loaded with -Id).</summary>
        [Parameter]
        public SwitchParameter IncludeItems { get; set; }

        protected override void ProcessRecord()
        {
            if (Id.Length == 0)
            {
                foreach (var op in RunPumped(_ => Store.GetResetsAsync(null, Since, IncludeItems, CancellationToken)))
                {
                    WriteObject(op);
                }

                return;
            }

            foreach (var id in Id)
            {
                var ops = RunPumped(_ => Store.GetResetsAsync(id, Since, true, CancellationToken));
                if (ops.Count == 0)
                {
                    WriteError(new ErrorRecord(new ItemNotFoundException($"There is no reset operation '{id}' in {Store.Description}."), "ResetNotFound", ErrorCategory.ObjectNotFound, id));
                    continue;
                }

                WriteObject(ops[0]);
            }
        }
    }
}
