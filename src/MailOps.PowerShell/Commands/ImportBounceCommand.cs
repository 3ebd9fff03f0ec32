using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Security.Cryptography.X509Certificates;
using MailOps.Core.Bounces;
using MailOps.Core.Config;
using MailOps.Core.Store;

namespace MailOps.PowerShell.Commands
{
    [Cmdlet(VerbsData.Import, "Bounce", SupportsShouldProcess = true, DefaultParameterSetName = PathSet)]
    [OutputType(typeof(BounceImportSummary), typeof(BounceRecord))]
    public sealed class ImportBounceCommand : StoreCmdlet
    {
        private const string PathSet = "Path";
        private const string LogSet = "Log";
        private const string CsvSet = "Csv";
        private const string ImapSet = "Imap";
        private readonly List<string> _paths = new List<string>();

        [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("FullName", "PSPath")]
        [ValidateNotNullOrEmpty]
        public string[] Path { get; set; } = Array.Empty<string>();

        [Parameter(Mandatory = true, ParameterSetName = LogSet, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        public string[] LogPath { get; set; } = Array.Empty<string>();

        [Parameter(ParameterSetName = LogSet)]
        public SwitchParameter IncludeDeferred { get; set; }

        [Parameter(ParameterSetName = LogSet)]
        public SwitchParameter IncludeRejects { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = CsvSet, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        public string[] CsvPath { get; set; } = Array.Empty<string>();

        [Parameter(ParameterSetName = CsvSet)]
        public EspFormat Format { get; set; } = EspFormat.Generic;

        [Parameter(ParameterSetName = CsvSet)]
        public Hashtable? ColumnMap { get; set; }

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
        public SwitchParameter PassThru { get; set; }

        /// <summary>
        /// Which failures suppress an address: Hard (hard bounces and complaints) or Failed (every failed recipient, as the
        /// flow's list manager or ESP did). Default: the flow's suppressOn, else Failed for an ESP's suppression export
        /// (the ESP suppressed every address in it), else Hard.
        /// </summary>
        [Parameter]
        public SuppressOn? SuppressOn { get; set; }

        protected override void ProcessRecord()
        {
            var given = ParameterSetName == LogSet ? LogPath : ParameterSetName == CsvSet ? CsvPath : ParameterSetName == PathSet ? Path : Array.Empty<string>();
            foreach (var p in given)
            {
                try
                {
                    var resolved = WildcardPattern.ContainsWildcardCharacters(p) ? GetResolvedProviderPathFromPSPath(p, out _) : new System.Collections.ObjectModel.Collection<string> { ToFileSystemPath(p) };
                    _paths.AddRange(resolved);
                }
                catch (ItemNotFoundException e)
                {
                    WriteError(new ErrorRecord(e, "FileNotFound", ErrorCategory.ObjectNotFound, p));
                }
            }
        }

        protected override void EndProcessing()
        {
            var config = LoadOptionalConfig(ConfigPath);
            if (Flow != null && config != null && config.FindFlow(Flow) == null)
            {
                WriteWarning($"The flow '{Flow}' is not in the configuration; its bounces are stored with that name anyway.");
            }

            var errors = new List<SourceError>();
            var notBounces = new List<string>();
            IEnumerable<BounceRecord> records;
            string source;
            switch (ParameterSetName)
            {
                case ImapSet:
                    source = $"imap://{ImapServer}:{ImapPort}/{ImapFolder}";
                    var imap = new ImapSourceOptions
                    {
                        Host = ImapServer!,
                        Port = ImapPort,
                        Security = ImapSecurity,
                        Credential = ImapCredential?.GetNetworkCredential(),
                        Folder = ImapFolder,
                        MoveProcessedTo = MoveProcessedTo != null && ShouldProcess(source, $"Move processed bounce messages to '{MoveProcessedTo}'") ? MoveProcessedTo : null,
                        SkipCertificateCheck = SkipCertificateCheck,
                        AllowAuthWithoutTls = AllowAuthWithoutTls,
                        TrustedCaCertificates = TrustedCaFile == null ? Array.Empty<X509Certificate2>() : LoadCa(TrustedCaFile),
                    };
                    try
                    {
                        records = RunPumped(sink => ImapBounceSource.ReadAsync(imap, errors.Add, (i, n) => sink.Post(() =>
                            WriteProgress(new ProgressRecord(1, "Import-Bounce", $"{source}: message {i + 1} of {n}") { PercentComplete = n == 0 ? 0 : 100 * i / n })), CancellationToken));
                    }
                    catch (Exception e) when (e is MailKit.ServiceNotConnectedException || e is MailKit.Security.AuthenticationException || e is MailKit.FolderNotFoundException
                        || e is System.IO.IOException || e is System.Net.Sockets.SocketException || e is MailKit.Net.Imap.ImapCommandException || e is MailKit.Net.Imap.ImapProtocolException || e is System.Security.Authentication.AuthenticationException)
                    {
                        ThrowTerminatingError(new ErrorRecord(e, "ImapSourceFailed", ErrorCategory.ConnectionError, source) { ErrorDetails = new ErrorDetails($"Reading {source} failed: {e.Message}") });
                        return;
                    }

                    break;
                case LogSet:
                    source = string.Join(", ", _paths);
                    records = _paths.SelectMany(p => BounceSources.FromLog(p, IncludeDeferred, IncludeRejects, errors.Add));
                    break;
                case CsvSet:
                    source = string.Join(", ", _paths);
                    var map = ColumnMap?.Cast<DictionaryEntry>().ToDictionary(e => e.Key.ToString()!, e => e.Value?.ToString() ?? "", StringComparer.OrdinalIgnoreCase);
                    records = _paths.SelectMany(p => BounceSources.FromCsv(p, Format, map, errors.Add));
                    break;
                default:
                    source = string.Join(", ", _paths);
                    records = BounceSources.FromFiles(_paths, errors.Add, notBounces.Add);
                    break;
            }

            var policy = SuppressOn ?? (Flow != null && config?.FindFlow(Flow) is FlowConfig f && f.SuppressOn == MailOps.Core.Config.SuppressOn.Failed ? MailOps.Core.Config.SuppressOn.Failed
                : ParameterSetName == CsvSet ? MailOps.Core.Config.SuppressOn.Failed : MailOps.Core.Config.SuppressOn.Hard);
            WriteVerbose($"Addresses are suppressed on: {policy}.");
            using (var store = OpenStore(config, StoreCredential))
            {
                // Core streams the records into the store in batches (flat memory, one transaction each); this thread
                // writes what it reports: records for -PassThru, per-item errors and progress after each batch.
                var doImport = ShouldProcess(store.Description, $"Import the bounce events of {source}");
                var reported = 0;
                var result = RunPumped(sink => BounceImporter.ImportAsync(records, doImport ? store : null, Flow, policy, BounceImporter.DefaultBatchSize,
                    PassThru ? r => sink.Post(() => WriteObject(r)) : (Action<BounceRecord>?)null,
                    (read, totals) =>
                    {
                        var newErrors = errors.Skip(reported).ToList();
                        reported += newErrors.Count;
                        sink.Post(() =>
                        {
                            foreach (var e in newErrors)
                            {
                                WriteError(new ErrorRecord(new System.IO.InvalidDataException($"{e.Source}: {e.Message}"), "BounceSourceItemUnreadable", ErrorCategory.InvalidData, e.Source));
                            }

                            WriteProgress(new ProgressRecord(2, "Import-Bounce", $"{source}: {read} read, {totals.Added} added, {totals.Duplicates} already stored"));
                        });
                    },
                    CancellationToken));
                WriteProgress(new ProgressRecord(2, "Import-Bounce", "Done") { RecordType = ProgressRecordType.Completed });
                foreach (var n in notBounces)
                {
                    WriteVerbose($"{n}: not a bounce, skipped.");
                }

                if (doImport)
                {
                    var ageing = config?.Store ?? StoreConfig.Default;
                    var expired = RunPumped(_ => store.ExpireSuppressionsAsync(ageing.ExpireSoftAfterDays, ageing.ExpireHardAfterDays, DateTimeOffset.UtcNow, CancellationToken));
                    if (expired > 0)
                    {
                        WriteVerbose($"{expired} suppression(s) expired (soft after {ageing.ExpireSoftAfterDays} days, hard after {(ageing.ExpireHardAfterDays == 0 ? "never" : ageing.ExpireHardAfterDays + " days")}).");
                    }

                    WriteObject(new BounceImportSummary(source, store.Description, result.Read, result.Added, result.Duplicates, result.Skipped + notBounces.Count, errors.Count, result.Suppressed, expired));
                }
            }
        }

        private List<X509Certificate2> LoadCa(string path)
        {
            var collection = new X509Certificate2Collection();
            collection.Import(ToFileSystemPath(path));
            return collection.Cast<X509Certificate2>().ToList();
        }
    }

    /// <summary>What one Import-Bounce did.</summary>
    public sealed class BounceImportSummary
    {
        internal BounceImportSummary(string source, string store, int read, int added, int duplicates, int skipped, int errors, int suppressed, int expired)
        {
            Expired = expired;
            Source = source;
            Store = store;
            Read = read;
            Added = added;
            Duplicates = duplicates;
            Skipped = skipped;
            Errors = errors;
            Suppressed = suppressed;
        }

        public string Source { get; }
        public string Store { get; }

        /// <summary>Recipients read from the source.</summary>
        public int Read { get; }
        public int Added { get; }

        /// <summary>Already in the store: imports are idempotent.</summary>
        public int Duplicates { get; }

        /// <summary>Auto-replies, delivery reports and mails that are not bounces.</summary>
        public int Skipped { get; }

        /// <summary>Items that could not be read (each one was written as an error).</summary>
        public int Errors { get; }

        /// <summary>Suppressions that expired under the store's ageing policy (applied at each import).</summary>
        public int Expired { get; }

        /// <summary>Addresses newly put on the suppression list.</summary>
        public int Suppressed { get; }
    }
}
