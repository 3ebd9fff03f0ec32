using System;
using System.IO;
using System.Management.Automation;
using System.Text;
using MailOps.Core.Bounces;

namespace MailOps.PowerShell.Commands
{
    [Cmdlet(VerbsData.ConvertFrom, "BounceMessage", DefaultParameterSetName = PathSet)]
    [OutputType(typeof(BounceRecord))]
    public sealed class ConvertFromBounceMessageCommand : MailOpsCmdlet
    {
        private const string PathSet = "Path";
        private const string LiteralPathSet = "LiteralPath";
        private const string TextSet = "Text";
        private const string DiagnosticSet = "Diagnostic";

        [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet, ValueFromPipeline = true)]
        [ValidateNotNullOrEmpty]
        public string[] Path { get; set; } = Array.Empty<string>();

        [Parameter(Mandatory = true, ParameterSetName = LiteralPathSet, ValueFromPipelineByPropertyName = true)]
        [Alias("FullName", "PSPath")]
        [ValidateNotNullOrEmpty]
        public string[] LiteralPath { get; set; } = Array.Empty<string>();

        [Parameter(Mandatory = true, ParameterSetName = TextSet)]
        [ValidateNotNullOrEmpty]
        public string? Message { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = DiagnosticSet, ValueFromPipelineByPropertyName = true)]
        [Alias("DiagnosticCode", "Reason", "Error")]
        [ValidateNotNullOrEmpty]
        public string? DiagnosticText { get; set; }

        [Parameter(ParameterSetName = DiagnosticSet, ValueFromPipelineByPropertyName = true)]
        [Alias("Email", "Address")]
        public string Recipient { get; set; } = "";

        [Parameter(ParameterSetName = DiagnosticSet, ValueFromPipelineByPropertyName = true)]
        [Alias("Status")]
        public string? StatusCode { get; set; }

        protected override void ProcessRecord()
        {
            switch (ParameterSetName)
            {
                case TextSet:
                    Write(BounceParser.Parse(new MemoryStream(Encoding.UTF8.GetBytes(Message!)), "(text)"), "(text)");
                    break;
                case DiagnosticSet:
                    WriteObject(BounceParser.ParseDiagnosticLine(Recipient, DiagnosticText!, string.IsNullOrWhiteSpace(StatusCode) ? null : StatusCode!.Trim(), 0, "(diagnostic)"));
                    break;
                case LiteralPathSet:
                    foreach (var p in LiteralPath)
                    {
                        ParseFile(SessionState.Path.GetUnresolvedProviderPathFromPSPath(p));
                    }

                    break;
                default:
                    foreach (var p in Path)
                    {
                        System.Collections.ObjectModel.Collection<string> files;
                        try
                        {
                            files = GetResolvedProviderPathFromPSPath(p, out _);
                        }
                        catch (ItemNotFoundException e)
                        {
                            WriteError(new ErrorRecord(e, "FileNotFound", ErrorCategory.ObjectNotFound, p));
                            continue;
                        }

                        foreach (var f in files)
                        {
                            ParseFile(f);
                        }
                    }

                    break;
            }
        }

        private void ParseFile(string file)
        {
            if (Directory.Exists(file))
            {
                WriteError(new ErrorRecord(new IOException($"'{file}' is a folder; give the files (for example {file}{System.IO.Path.DirectorySeparatorChar}*.eml), or use Import-Bounce for folders and mbox files."),
                    "PathIsFolder", ErrorCategory.InvalidArgument, file));
                return;
            }

            try
            {
                Write(BounceParser.ParseFile(file), file);
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                WriteError(new ErrorRecord(e, "FileReadFailed", ErrorCategory.ReadError, file) { ErrorDetails = new ErrorDetails($"Could not read '{file}': {e.Message}") });
            }
        }

        private void Write(System.Collections.Generic.IReadOnlyList<BounceRecord> records, string source)
        {
            if (records.Count == 0)
            {
                WriteError(new ErrorRecord(new InvalidDataException($"'{source}' is not a bounce, an auto-reply or an abuse report."), "NotABounce", ErrorCategory.InvalidData, source));
                return;
            }

            foreach (var r in records)
            {
                WriteObject(r);
            }
        }
    }
}
