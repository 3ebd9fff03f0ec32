using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Security.Cryptography.X509Certificates;
using MailOps.Core.Bounces;
using MailOps.Core.Config;
using MailOps.Core.Dmarc;

namespace MailOps.PowerShell.Commands
{
    /// <summary>DMARC aggregate reports from files, folders or an IMAP folder.</summary>
    [Cmdlet(VerbsCommon.Get, "DmarcReport", DefaultParameterSetName = PathSet, SupportsShouldProcess = true)]
    [OutputType(typeof(DmarcAggregateReport), typeof(DmarcReportRecord))]
    public sealed class GetDmarcReportCommand : MailOpsCmdlet
    {
        private const string PathSet = "Path";
        private const string ImapSet = "Imap";
        private const string Activity = "Get-DmarcReport";

        [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("FullName", "PSPath")]
        [ValidateNotNullOrEmpty]
        public string[] Path { get; set; } = Array.Empty<string>();

        [Parameter(Mandatory = true, ParameterSetName = ImapSet)]
        [ValidateNotNullOrEmpty]
        public string? ImapServer { get; set; }

        [Parameter(ParameterSetName = ImapSet)]
        [ValidateRange(1, 65535)]
        public int ImapPort { get; set; } = 993;

        [Parameter(ParameterSetName = ImapSet)]
        public SmtpSecurity ImapSecurity { get; set; } = SmtpSecurity.Auto;

        [Parameter(ParameterSetName = ImapSet)]
        [Credential]
        public PSCredential? ImapCredential { get; set; }

        [Parameter(ParameterSetName = ImapSet)]
        [ValidateNotNullOrEmpty]
        public string ImapFolder { get; set; } = "INBOX";

        [Parameter(ParameterSetName = ImapSet)]
        [ValidateNotNullOrEmpty]
        public string? MoveProcessedTo { get; set; }

        [Parameter(ParameterSetName = ImapSet)]
        public SwitchParameter SkipCertificateCheck { get; set; }

        [Parameter(ParameterSetName = ImapSet)]
        [ValidateNotNullOrEmpty]
        public string? TrustedCaFile { get; set; }

        [Parameter(ParameterSetName = ImapSet)]
        public SwitchParameter AllowAuthWithoutTls { get; set; }

        [Parameter]
        public SwitchParameter Expand { get; set; }

        private int _reports;
        private int _errors;

        protected override void ProcessRecord()
        {
            if (ParameterSetName == ImapSet)
            {
                return;
            }

            foreach (var given in Path)
            {
                var files = new List<string>();
                try
                {
                    var resolved = WildcardPattern.ContainsWildcardCharacters(given)
                        ? GetResolvedProviderPathFromPSPath(given, out _)
                        : new System.Collections.ObjectModel.Collection<string> { ToFileSystemPath(given) };
                    if (resolved.Count == 0)
                    {
                        throw new ItemNotFoundException($"No file matches '{given}'.");
                    }

                    foreach (var p in resolved)
                    {
                        // folders are read recursively, in name order, so that progress can count the files
                        if (Directory.Exists(p))
                        {
                            files.AddRange(Directory.GetFiles(p, "*", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal));
                        }
                        else
                        {
                            files.Add(p);
                        }
                    }
                }
                catch (ItemNotFoundException e)
                {
                    WriteError(new ErrorRecord(e, "DmarcReportUnreadable", ErrorCategory.ObjectNotFound, given));
                    continue;
                }
                catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
                {
                    WriteError(new ErrorRecord(e, "DmarcReportUnreadable", ErrorCategory.ReadError, given)
                    {
                        ErrorDetails = new ErrorDetails($"{given}: the folder cannot be read: {e.Message}"),
                    });
                    continue;
                }

                for (var i = 0; i < files.Count; i++)
                {
                    var file = files[i];
                    WriteProgress(new ProgressRecord(1, Activity, $"{file} ({i + 1} of {files.Count})") { PercentComplete = 100 * i / files.Count });
                    try
                    {
                        foreach (var report in DmarcReportReader.ReadPaths(new[] { file }, e => WriteReadError(e, file), CancellationToken))
                        {
                            Emit(report);
                        }
                    }
                    catch (OperationCanceledException) when (CancellationToken.IsCancellationRequested)
                    {
                        throw new PipelineStoppedException();
                    }
                }
            }
        }

        protected override void EndProcessing()
        {
            if (ParameterSetName != ImapSet)
            {
                WriteProgress(new ProgressRecord(1, Activity, "Done") { RecordType = ProgressRecordType.Completed });
                WriteVerbose($"{_reports} report(s) read, {_errors} error(s).");
                return;
            }

            var source = $"imap://{ImapServer}:{ImapPort}/{ImapFolder}";
            var options = new ImapSourceOptions
            {
                Host = ImapServer!,
                Port = ImapPort,
                Security = ImapSecurity,
                Credential = ImapCredential?.GetNetworkCredential(),
                Folder = ImapFolder,
                MoveProcessedTo = MoveProcessedTo != null && ShouldProcess(source, $"Move the messages that carried a DMARC report to '{MoveProcessedTo}'") ? MoveProcessedTo : null,
                SkipCertificateCheck = SkipCertificateCheck,
                AllowAuthWithoutTls = AllowAuthWithoutTls,
                TrustedCaCertificates = TrustedCaFile == null ? Array.Empty<X509Certificate2>() : LoadCa(TrustedCaFile),
            };
            DmarcImapResult result;
            try
            {
                result = RunPumped(sink => DmarcImapSource.ReadAsync(options, (i, n) => sink.Post(() =>
                    WriteProgress(new ProgressRecord(1, Activity, $"{source}: message {Math.Min(i + 1, n)} of {n}") { PercentComplete = n == 0 ? 100 : 100 * i / n })), CancellationToken));
            }
            catch (OperationCanceledException) when (CancellationToken.IsCancellationRequested)
            {
                throw new PipelineStoppedException();
            }
            catch (Exception e) when (e is MailKit.ServiceNotConnectedException || e is MailKit.Security.AuthenticationException || e is MailKit.FolderNotFoundException
                || e is IOException || e is System.Net.Sockets.SocketException || e is MailKit.Net.Imap.ImapCommandException || e is MailKit.Net.Imap.ImapProtocolException
                || e is System.Security.Authentication.AuthenticationException || e is TimeoutException)
            {
                ThrowTerminatingError(new ErrorRecord(e, "ImapSourceFailed", ErrorCategory.ConnectionError, source) { ErrorDetails = new ErrorDetails($"Reading {source} failed: {e.Message}") });
                return;
            }

            WriteProgress(new ProgressRecord(1, Activity, "Done") { RecordType = ProgressRecordType.Completed });
            foreach (var skipped in result.Skipped)
            {
                WriteVerbose($"{skipped}: skipped.");
            }

            foreach (var e in result.Errors)
            {
                WriteReadError(e, e.SourceName);
            }

            foreach (var report in result.Reports)
            {
                Emit(report);
            }

            WriteVerbose($"{source}: {result.MessagesExamined} message(s) examined, {result.Reports.Count} report(s), {result.Errors.Count} error(s), {result.Skipped.Count} without a report"
                + (options.MoveProcessedTo != null ? $", {result.MessagesMoved} moved to '{options.MoveProcessedTo}'." : "; nothing moved."));
        }

        private void Emit(DmarcAggregateReport report)
        {
            _reports++;
            foreach (var warning in report.ParseWarnings)
            {
                WriteWarning($"{report.SourceName}: {warning}");
            }

            if (Expand)
            {
                foreach (var record in report.Records)
                {
                    WriteObject(record);
                }
            }
            else
            {
                WriteObject(report);
            }
        }

        /// <summary>DmarcReportUnreadable (the bytes could not be read) or DmarcReportInvalid (they are not a report); the target is the file or message.</summary>
        private void WriteReadError(DmarcReportException e, string target)
        {
            _errors++;
            var unreadable = e.Kind == DmarcReportErrorKind.Unreadable;
            var category = !unreadable ? ErrorCategory.InvalidData
                : e.InnerException is FileNotFoundException || e.InnerException is DirectoryNotFoundException ? ErrorCategory.ObjectNotFound : ErrorCategory.ReadError;
            WriteError(new ErrorRecord(e, unreadable ? "DmarcReportUnreadable" : "DmarcReportInvalid", category, target));
        }

        private List<X509Certificate2> LoadCa(string path)
        {
            var file = ToFileSystemPath(path);
            try
            {
                var collection = new X509Certificate2Collection();
                collection.Import(file);
                if (collection.Count == 0)
                {
                    throw new InvalidDataException($"'{file}' holds no certificate.");
                }

                return collection.Cast<X509Certificate2>().ToList();
            }
            catch (Exception e) when (e is IOException || e is System.Security.Cryptography.CryptographicException || e is UnauthorizedAccessException || e is InvalidDataException)
            {
                ThrowTerminatingError(new ErrorRecord(e, "CaFileUnreadable", ErrorCategory.ReadError, path)
                {
                    ErrorDetails = new ErrorDetails($"The CA certificate file '{file}' cannot be read: {e.Message}"),
                });
                return new List<X509Certificate2>();
            }
        }
    }
}
