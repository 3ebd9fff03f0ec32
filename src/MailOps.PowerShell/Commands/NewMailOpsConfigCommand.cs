using System;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Text;
using MailOps.Core.Config;

namespace MailOps.PowerShell.Commands
{
    [Cmdlet(VerbsCommon.New, "MailOpsConfig", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(FileInfo))]
    public sealed class NewMailOpsConfigCommand : MailOpsCmdlet
    {
        [Parameter(Position = 0)]
        [ValidateNotNullOrEmpty]
        public string? Path { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[] Domain { get; set; } = Array.Empty<string>();

        [Parameter]
        public SwitchParameter Force { get; set; }

        [Parameter]
        public SwitchParameter PassThru { get; set; }

        protected override void EndProcessing()
        {
            var (target, source) = ConfigLocator.Resolve(Path == null ? null : ToFileSystemPath(Path));
            foreach (var d in Domain)
            {
                var probe = ConfigReader.Read($"version: 1\ndomains: ['{d.Replace("'", "''")}']\n");
                if (probe.Errors.Any())
                {
                    ThrowTerminatingError(new ErrorRecord(new ArgumentException($"'{d}' is not a domain name (expected something like example.org)."),
                        "InvalidDomainName", ErrorCategory.InvalidArgument, d));
                }
            }

            if (File.Exists(target) && !Force)
            {
                ThrowTerminatingError(new ErrorRecord(
                    new IOException($"The file '{target}' already exists; use -Force to overwrite it."),
                    "ConfigFileExists", ErrorCategory.ResourceExists, target));
            }

            if (!ShouldProcess(target, File.Exists(target) ? "Overwrite the MailOps configuration" : "Create a MailOps configuration"))
            {
                return;
            }

            var text = ConfigTemplate.Render(Domain);
            try
            {
                var folder = System.IO.Path.GetDirectoryName(target);
                if (!string.IsNullOrEmpty(folder))
                {
                    Directory.CreateDirectory(folder);
                }

                File.WriteAllText(target, text, new UTF8Encoding(false));
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                ThrowTerminatingError(new ErrorRecord(e, "ConfigFileWriteFailed", ErrorCategory.WriteError, target)
                {
                    ErrorDetails = new ErrorDetails($"Could not write '{target}': {e.Message}"),
                });
            }

            WriteVerbose($"Wrote {target} ({DescribeSource(source)}). Edit the relays, then run Test-MailOpsConfig.");
            if (PassThru)
            {
                WriteObject(new FileInfo(target));
            }
        }
    }
}
