using System;
using System.Collections.Generic;
using System.Management.Automation;
using MailOps.Core.Store;

namespace MailOps.PowerShell.Commands
{
    /// <summary>Puts the addresses of a hard bounce reset back exactly as they were before it.</summary>
    [Cmdlet(VerbsCommon.Undo, "HardBounceReset", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(HardBounceResetOperation))]
    public sealed class UndoHardBounceResetCommand : OpenStoreCmdlet
    {
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        public string[] Id { get; set; } = Array.Empty<string>();

        protected override void ProcessRecord()
        {
            foreach (var id in Id)
            {
                var ops = RunPumped(_ => Store.GetResetsAsync(id, null, false, CancellationToken));
                if (ops.Count == 0)
                {
                    WriteError(new ErrorRecord(new ItemNotFoundException($"There is no reset operation '{id}' in {Store.Description}."), "ResetNotFound", ErrorCategory.ObjectNotFound, id));
                    continue;
                }

                var op = ops[0];
                if (op.IsUndone)
                {
                    WriteError(new ErrorRecord(new InvalidOperationException($"The reset operation '{id}' was already undone on {op.UndoneAt:u} by {op.UndoneBy}."),
                        "ResetAlreadyUndone", ErrorCategory.InvalidOperation, id));
                    continue;
                }

                if (!ShouldProcess($"reset {id} of {op.CreatedAt:u} by {op.CreatedBy} ({op.ItemCount} address(es); {op.Criteria})", "Undo the hard bounce reset"))
                {
                    continue;
                }

                var who = $"{Environment.UserName}@{Environment.MachineName}";
                var undone = RunPumped(_ => Store.UndoResetAsync(id, who, CancellationToken));
                foreach (var item in undone.Items)
                {
                    if (item.UndoOutcome != "restored")
                    {
                        WriteWarning($"{item.Address}: {item.UndoOutcome}");
                    }
                }

                WriteObject(undone);
            }
        }
    }
}
