using System;
using System.Collections.Generic;
using System.IO;
using System.Management.Automation;
using System.Text;
using MailOps.Core.Bounces;
using MailOps.Core.Store;

namespace MailOps.PowerShell.Commands
{
    /// <summary>Writes bounced addresses as CSV in an ESP's suppression import format.</summary>
    [Cmdlet(VerbsData.Export, "Bounce", SupportsShouldProcess = true)]
    [OutputType(typeof(FileInfo))]
    public sealed class ExportBounceCommand : StoreCmdlet
    {
        private readonly List<StoredBounce> _piped = new List<StoredBounce>();

        [Parameter(Mandatory = true, Position = 0)]
        [ValidateNotNullOrEmpty]
        public string Path { get; set; } = "";

        [Parameter]
        public EspFormat Format { get; set; } = EspFormat.Generic;

        [Parameter(ValueFromPipeline = true)]
        public StoredBounce[] InputObject { get; set; } = Array.Empty<StoredBounce>();

        [Parameter]
        public DateTimeOffset? Since { get; set; }

        [Parameter]
        public DateTimeOffset? Until { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[] Reason { get; set; } = Array.Empty<string>();

        [Parameter]
        public SwitchParameter Hard { get; set; }

        [Parameter]
        public SwitchParameter Force { get; set; }

        protected override void ProcessRecord()
        {
            _piped.AddRange(InputObject);
        }

        protected override void EndProcessing()
        {
            var target = ToFileSystemPath(Path);
            if (File.Exists(target) && !Force)
            {
                ThrowTerminatingError(new ErrorRecord(new IOException($"'{target}' exists; use -Force to overwrite it."), "ExportFileExists", ErrorCategory.ResourceExists, target));
            }

            IReadOnlyList<StoredBounce> rows = _piped;
            if (!MyInvocation.ExpectingInput)
            {
                using (var store = OpenConfiguredStore())
                {
                    var query = new BounceQuery { Since = Since, Until = Until, Reasons = Reason, Hard = Hard ? true : (bool?)null, Flow = Flow };
                    rows = RunPumped(_ => store.QueryAsync(query, CancellationToken));
                }
            }

            if (!ShouldProcess(target, $"Write {rows.Count} bounce event(s) as {Format} CSV"))
            {
                return;
            }

            int written;
            using (var writer = new StreamWriter(target, false, new UTF8Encoding(false)))
            {
                written = BounceExport.WriteCsv(writer, rows, Format);
            }

            WriteVerbose($"Wrote {written} address(es) to {target}.");
            WriteObject(new FileInfo(target));
        }
    }
}
