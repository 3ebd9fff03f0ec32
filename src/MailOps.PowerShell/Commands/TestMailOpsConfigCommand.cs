using System.Management.Automation;
using MailOps.Core.Config;

namespace MailOps.PowerShell.Commands
{
    /// <summary>Reports every problem in a configuration file as an object (nothing when the file is clean), or $true/$false with -Quiet.</summary>
    [Cmdlet(VerbsDiagnostic.Test, "MailOpsConfig")]
    [OutputType(typeof(ConfigIssue), typeof(bool))]
    public sealed class TestMailOpsConfigCommand : MailOpsCmdlet
    {
        [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("FullName", "PSPath")]
        [ValidateNotNullOrEmpty]
        public string? Path { get; set; }

        [Parameter]
        public SwitchParameter Quiet { get; set; }

        protected override void ProcessRecord()
        {
            var (resolved, source) = ConfigLocator.Resolve(Path == null ? null : ToFileSystemPath(Path));
            WriteVerbose($"Checking {resolved} (from {DescribeSource(source)}).");
            var result = ConfigReader.ReadFile(resolved);
            if (Quiet)
            {
                WriteObject(result.IsValid);
                return;
            }

            foreach (var issue in result.Issues)
            {
                WriteObject(issue);
            }

            WriteVerbose(result.IsValid
                ? $"{resolved}: valid ({result.Issues.Count} warning(s))."
                : $"{resolved}: not valid.");
        }
    }
}
