using System;
using System.Management.Automation;
using System.Threading;
using MailOps.Core.Config;

namespace MailOps.PowerShell
{
    /// <summary>
    /// Base of every MailOps cmdlet: owns the CancellationTokenSource that Ctrl+C (StopProcessing) cancels, so every
    /// network call in Core, which takes this token, stops promptly.
    /// </summary>
    public abstract class MailOpsCmdlet : PSCmdlet, IDisposable
    {
        private readonly CancellationTokenSource _cancel = new CancellationTokenSource();
        private bool _disposed;

        /// <summary>Cancelled when the user presses Ctrl+C or the pipeline is stopped.</summary>
        protected CancellationToken CancellationToken => _cancel.Token;

        protected override void StopProcessing()
        {
            _cancel.Cancel();
        }

        /// <summary>Turns a PowerShell path (relative, ~, PSDrive) into a file-system path; the file need not exist.</summary>
        protected string ToFileSystemPath(string path) =>
            SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);

        /// <summary>
        /// Reads the configuration (parameter, then $env:MAILOPS_CONFIG, then the per-user default). Warnings become
        /// warning records; errors become error records, and the first of them is terminating when
        /// <paramref name="terminating"/> is set (cmdlets that cannot work without a configuration).
        /// </summary>
        protected MailOpsConfig? LoadConfig(string? path, bool terminating)
        {
            var (resolved, source) = ConfigLocator.Resolve(path == null ? null : ToFileSystemPath(path));
            WriteVerbose($"Configuration: {resolved} (from {DescribeSource(source)}).");
            var result = ConfigReader.ReadFile(resolved);
            foreach (var issue in result.Issues)
            {
                if (issue.Severity == IssueSeverity.Warning)
                {
                    WriteWarning(issue.ToString());
                }
            }

            if (result.IsValid)
            {
                return result.Config;
            }

            ErrorRecord? first = null;
            foreach (var issue in result.Errors)
            {
                var record = ConfigErrors.ToErrorRecord(issue, resolved);
                if (first == null && terminating)
                {
                    first = record;
                    continue;
                }

                WriteError(record);
            }

            if (first != null)
            {
                ThrowTerminatingError(first);
            }

            return null;
        }

        internal static string DescribeSource(ConfigPathSource source) => source switch
        {
            ConfigPathSource.Parameter => "the -Path parameter",
            ConfigPathSource.EnvironmentVariable => "$env:" + ConfigLocator.EnvironmentVariable,
            _ => "the per-user default",
        };

        public void Dispose()
        {
            Dispose(true);
            GC.SuppressFinalize(this);
        }

        protected virtual void Dispose(bool disposing)
        {
            if (!_disposed && disposing)
            {
                _cancel.Dispose();
            }

            _disposed = true;
        }
    }
}
