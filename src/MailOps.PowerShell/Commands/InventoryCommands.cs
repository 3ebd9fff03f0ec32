using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Text;
using System.Threading.Tasks;
using MailOps.Core.Bounces;
using MailOps.Core.Config;
using MailOps.Core.Dmarc;
using MailOps.Core.Dns;
using MailOps.Core.Inventory;
using MailOps.Core.Logs;
using MailOps.Core.Providers;
using MailOps.Core.Smtp;
using MailOps.Core.Traffic;

namespace MailOps.PowerShell.Commands
{
    /// <summary>
    /// Every email flow that sends as your domains, declared (configuration), authorised (DNS) and observed (MTA logs, the
    /// send journal, DMARC aggregate reports), reconciled into one object per flow with its evidence and findings.
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "EmailFlowInventory", DefaultParameterSetName = "Default")]
    [OutputType(typeof(EmailFlowInventoryItem))]
    public sealed class GetEmailFlowInventoryCommand : StoreAccessCmdlet
    {
        private readonly List<string> _domains = new List<string>();
        private readonly List<DmarcAggregateReport> _piped = new List<DmarcAggregateReport>();

        /// <summary>The sender domains to inventory. Default: the configuration's domains and the declared flows' sender domains.</summary>
        [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(DomainNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string[]? Domain { get; set; }

        /// <summary>Only these declared flows (and what was found undeclared) are output.</summary>
        [Parameter]
        [ArgumentCompleter(typeof(FlowNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string[]? Flow { get; set; }

        /// <summary>Read the configured relays' MTA logs (their 'log:') and MailOps' send journal for the senders seen.</summary>
        [Parameter]
        public SwitchParameter IncludeLogs { get; set; }

        /// <summary>Other Postfix or Exim logs to read (files, .gz, folders).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[]? LogPath { get; set; }

        /// <summary>DMARC aggregate reports: files (.xml, .gz, .zip, .eml) or folders of them.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[]? DmarcReports { get; set; }

        /// <summary>DMARC aggregate reports already read (Get-DmarcReport), from the pipeline.</summary>
        [Parameter(ValueFromPipeline = true)]
        [ValidateNotNull]
        public DmarcAggregateReport[]? DmarcReport { get; set; }

        /// <summary>Read DMARC reports from this IMAP server's folder (-DmarcImapFolder) too.</summary>
        [Parameter(ParameterSetName = "Imap", Mandatory = true)]
        [ValidateNotNullOrEmpty]
        public string? DmarcImapServer { get; set; }

        [Parameter(ParameterSetName = "Imap")]
        [ValidateNotNullOrEmpty]
        public string DmarcImapFolder { get; set; } = "INBOX";

        [Parameter(ParameterSetName = "Imap")]
        [ValidateRange(1, 65535)]
        public int ImapPort { get; set; } = 993;

        [Parameter(ParameterSetName = "Imap")]
        public SmtpSecurity ImapSecurity { get; set; } = SmtpSecurity.Auto;

        [Parameter(ParameterSetName = "Imap")]
        [Credential]
        public PSCredential? ImapCredential { get; set; }

        [Parameter(ParameterSetName = "Imap")]
        [ValidateNotNullOrEmpty]
        public string? TrustedCaFile { get; set; }

        [Parameter(ParameterSetName = "Imap")]
        public SwitchParameter SkipCertificateCheck { get; set; }

        [Parameter(ParameterSetName = "Imap")]
        public SwitchParameter AllowAuthWithoutTls { get; set; }

        /// <summary>Only logs, journal entries and DMARC reports from this time on.</summary>
        [Parameter]
        public DateTimeOffset? Since { get; set; }

        /// <summary>The year of log dates that carry none (BSD syslog).</summary>
        [Parameter]
        [ValidateRange(1970, 9999)]
        public int? Year { get; set; }

        /// <summary>How many domains and DMARC sources are looked up at once.</summary>
        [Parameter]
        [ValidateRange(1, 256)]
        public int ThrottleLimit { get; set; } = 16;

        protected override void ProcessRecord()
        {
            if (Domain != null)
            {
                _domains.AddRange(Domain);
            }

            if (DmarcReport != null)
            {
                _piped.AddRange(DmarcReport);
            }
        }

        protected override void EndProcessing()
        {
            var config = LoadConfig(ConfigPath, terminating: true)!;
            var domains = _domains.Select(d => d.Trim().TrimEnd('.').ToLowerInvariant()).Where(d => d.Length > 0).Distinct().ToList();
            foreach (var d in domains.Where(d => d.IndexOf('.') < 0 || d.IndexOf('@') >= 0 || d.IndexOf(' ') >= 0).ToList())
            {
                WriteError(new ErrorRecord(new ArgumentException($"'{d}' is not a domain name."), "InvalidDomain", ErrorCategory.InvalidArgument, d));
                domains.Remove(d);
            }

            if (_domains.Count > 0 && domains.Count == 0)
            {
                return;
            }

            if (domains.Count == 0 && !FlowInventoryBuilder.DefaultDomains(config).Any())
            {
                ThrowTerminatingError(new ErrorRecord(new ArgumentException("The configuration names no domain and no flow with a sender domain: give -Domain, or add 'domains:' to the configuration."),
                    "NoDomain", ErrorCategory.InvalidArgument, config.Path));
            }

            if (Flow != null)
            {
                foreach (var f in Flow.Where(f => config.Flows.All(x => !string.Equals(x.Name, f, StringComparison.OrdinalIgnoreCase))))
                {
                    WriteError(new ErrorRecord(new ArgumentException($"There is no flow '{f}' in the configuration ({string.Join(", ", config.Flows.Select(x => x.Name))})."),
                        "FlowNotFound", ErrorCategory.ObjectNotFound, f));
                }
            }

            var imap = DmarcImapServer == null ? null : ImapOptions();
            var builder = new FlowInventoryBuilder(config, new UdpDnsResolver(config.Dns), ProviderCatalog.For(config),
                new FlowInventoryOptions { Domains = domains, Since = Since, MaxConcurrency = ThrottleLimit });
            var logs = LogSources(config);
            using var store = IncludeLogs ? OpenStore(config, StoreCredential) : null;
            var dmarcFiles = DmarcFiles();
            var items = RunPumped(async sink =>
            {
                if (logs.Count > 0 || store != null)
                {
                    await ReadObservedAsync(config, builder, logs, store, sink).ConfigureAwait(false);
                }

                foreach (var r in _piped)
                {
                    builder.AddDmarcReport(r);
                }

                ReadDmarcFiles(builder, dmarcFiles, sink);
                if (imap != null)
                {
                    await ReadDmarcImapAsync(builder, imap, sink).ConfigureAwait(false);
                }

                if (builder.DmarcRead)
                {
                    var (used, skipped) = (builder.DmarcReports, builder.DmarcReportsSkipped);
                    sink.Post(() => WriteVerbose($"DMARC: {used} report(s) about the inventoried domains, {skipped} about other domains or older than -Since."));
                }

                var result = await builder.BuildAsync((what, done, total) => sink.Post(() =>
                    WriteProgress(new ProgressRecord(2, "Get-EmailFlowInventory", $"DNS: {what} ({done} of {total})") { PercentComplete = total == 0 ? 100 : Math.Min(100, 100 * done / total) })),
                    CancellationToken).ConfigureAwait(false);
                sink.Post(() => WriteProgress(new ProgressRecord(2, "Get-EmailFlowInventory", "Done") { RecordType = ProgressRecordType.Completed }));
                return result;
            });

            foreach (var item in items)
            {
                if (Flow != null && item.Declared && !Flow.Contains(item.Name, StringComparer.OrdinalIgnoreCase))
                {
                    continue;
                }

                WriteObject(item);
            }
        }

        private List<TrafficLogSource> LogSources(MailOpsConfig config)
        {
            var sources = new List<TrafficLogSource>();
            if (IncludeLogs)
            {
                foreach (var r in config.Relays.Where(r => r.Log != null))
                {
                    if (File.Exists(r.Log))
                    {
                        sources.Add(new TrafficLogSource(r.Log!, r.Name));
                    }
                    else
                    {
                        WriteWarning($"The log '{r.Log}' of relay '{r.Name}' does not exist (yet): nothing read from it.");
                    }
                }

                if (config.Relays.All(r => r.Log == null) && LogPath == null)
                {
                    WriteWarning("-IncludeLogs: no relay in the configuration has a 'log:'; only the send journal is read. Give -LogPath to read other logs.");
                }
            }

            foreach (var p in LogPath ?? Array.Empty<string>())
            {
                try
                {
                    foreach (var resolved in GetResolvedProviderPathFromPSPath(p, out _))
                    {
                        if (Directory.Exists(resolved))
                        {
                            sources.AddRange(new DirectoryInfo(resolved).GetFiles().Where(f => !f.Name.StartsWith(".", StringComparison.Ordinal))
                                .OrderBy(f => f.LastWriteTimeUtc).Select(f => new TrafficLogSource(f.FullName, null)));
                        }
                        else
                        {
                            sources.Add(new TrafficLogSource(resolved, null));
                        }
                    }
                }
                catch (ItemNotFoundException)
                {
                    WriteError(new ErrorRecord(new FileNotFoundException($"There is no log at '{p}'."), "LogNotFound", ErrorCategory.ObjectNotFound, p));
                }
            }

            return sources;
        }

        private async Task ReadObservedAsync(MailOpsConfig config, FlowInventoryBuilder builder, List<TrafficLogSource> logs, MailOps.Core.Store.BounceStore? store, CmdletSink sink)
        {
            var options = new TrafficOptions
            {
                Bucket = TrafficBucket.Day,
                Dimensions = new[] { TrafficDimension.Sender, TrafficDimension.Client, TrafficDimension.Relay },
                Since = Since,
                Flows = new FlowMatcher(config.Flows),
                RelayByInstance = config.Relays.Where(r => r.SyslogName != null).ToDictionary(r => r.SyslogName!, r => r.Name, StringComparer.OrdinalIgnoreCase),
                ClassifyReasons = false,
            };
            var aggregator = new TrafficAggregator(options);
            var parser = new MailLogParser(Year);
            if (logs.Count > 1)
            {
                // a message one relay hands to another is in both logs: a first reading finds the queue ids the next relay
                // gave ("queued as ..."), and the counting skips those, so each message counts where it entered
                var hops = new HashSet<string>(StringComparer.Ordinal);
                foreach (var source in logs)
                {
                    _ = ReadLog(source, sink, reader =>
                    {
                        foreach (var r in new MailLogParser(Year).Read(reader, source.Path))
                        {
                            var id = TrafficAggregator.NextHopQueueId(r);
                            if (id != null)
                            {
                                hops.Add(id);
                            }
                        }
                    });
                }

                options.HopQueueIds = hops;
            }

            foreach (var source in logs)
            {
                options.Relay = source.Relay;
                var failed = ReadLog(source, sink, reader => aggregator.AddLog(reader, parser, source.Path, CancellationToken));
                if (failed != null)
                {
                    var path = source.Path;
                    sink.Post(() => WriteError(new ErrorRecord(failed, "LogUnreadable", ErrorCategory.ReadError, path) { ErrorDetails = new ErrorDetails($"Cannot read the log '{path}': {failed.Message}") }));
                }
            }

            if (store != null)
            {
                // a job through a relay whose log was just read is in that log already: count it once
                var logged = new HashSet<string>(logs.Where(l => l.Relay != null).Select(l => l.Relay!), StringComparer.OrdinalIgnoreCase);
                foreach (var job in await store.ListJobsAsync(null, CancellationToken).ConfigureAwait(false))
                {
                    if (logged.Contains(job.Relay))
                    {
                        continue;
                    }

                    var items = await store.LoadItemsAsync(job.Name, null, CancellationToken).ConfigureAwait(false);
                    aggregator.AddJournal(job, items);
                }
            }

            builder.AddTraffic(aggregator.Rows);
        }

        /// <summary>Opens a log (decompressed when .gz) for <paramref name="read"/>; the failure when it cannot be read.</summary>
        private Exception? ReadLog(TrafficLogSource source, CmdletSink sink, Action<TextReader> read)
        {
            CancellationToken.ThrowIfCancellationRequested();
            var name = Path.GetFileName(source.Path);
            sink.Post(() => WriteProgress(new ProgressRecord(2, "Get-EmailFlowInventory", $"Reading {name}")));
            try
            {
                using var stream = File.Open(source.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                Stream input = source.Path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new System.IO.Compression.GZipStream(stream, System.IO.Compression.CompressionMode.Decompress) : stream;
                using var reader = new StreamReader(input, Encoding.UTF8, true, 1 << 16);
                read(reader);
                return null;
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException || e is InvalidDataException)
            {
                return e;
            }
        }

        private List<string> DmarcFiles()
        {
            var files = new List<string>();
            foreach (var p in DmarcReports ?? Array.Empty<string>())
            {
                try
                {
                    foreach (var resolved in GetResolvedProviderPathFromPSPath(p, out _))
                    {
                        if (Directory.Exists(resolved))
                        {
                            files.AddRange(Directory.EnumerateFiles(resolved, "*", SearchOption.AllDirectories).Where(f => !Path.GetFileName(f).StartsWith(".", StringComparison.Ordinal)).OrderBy(f => f, StringComparer.Ordinal));
                        }
                        else
                        {
                            files.Add(resolved);
                        }
                    }
                }
                catch (ItemNotFoundException)
                {
                    WriteError(new ErrorRecord(new FileNotFoundException($"There is no DMARC report at '{p}'."), "DmarcReportNotFound", ErrorCategory.ObjectNotFound, p));
                }
            }

            return files;
        }

        private void ReadDmarcFiles(FlowInventoryBuilder builder, List<string> files, CmdletSink sink)
        {
            var n = 0;
            foreach (var report in DmarcReportReader.ReadPaths(files, e => sink.Post(() => WriteError(DmarcError(e))), CancellationToken))
            {
                builder.AddDmarcReport(report);
                if ((++n % 50) == 0)
                {
                    var count = n;
                    sink.Post(() => WriteProgress(new ProgressRecord(2, "Get-EmailFlowInventory", $"DMARC reports: {count} read")));
                }
            }
        }

        private async Task ReadDmarcImapAsync(FlowInventoryBuilder builder, ImapSourceOptions imap, CmdletSink sink)
        {
            var source = $"imap://{imap.Host}:{imap.Port}/{imap.Folder}";
            DmarcImapResult result;
            try
            {
                result = await DmarcImapSource.ReadAsync(imap, (i, n) => sink.Post(() =>
                    WriteProgress(new ProgressRecord(2, "Get-EmailFlowInventory", $"{source}: message {i + 1} of {n}") { PercentComplete = n == 0 ? 0 : 100 * i / n })), CancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is MailKit.ServiceNotConnectedException || e is MailKit.Security.AuthenticationException || e is MailKit.FolderNotFoundException
                || e is IOException || e is System.Net.Sockets.SocketException || e is MailKit.Net.Imap.ImapCommandException || e is MailKit.Net.Imap.ImapProtocolException
                || e is System.Security.Authentication.AuthenticationException || e is TimeoutException)
            {
                sink.Post(() => WriteError(new ErrorRecord(e, "ImapSourceFailed", ErrorCategory.ConnectionError, source) { ErrorDetails = new ErrorDetails($"Reading DMARC reports from {source} failed: {e.Message}") }));
                return;
            }

            foreach (var e in result.Errors)
            {
                sink.Post(() => WriteError(DmarcError(e)));
            }

            foreach (var r in result.Reports)
            {
                builder.AddDmarcReport(r);
            }

            var (examined, reports) = (result.MessagesExamined, result.Reports.Count);
            sink.Post(() => WriteVerbose($"{source}: {examined} message(s) examined, {reports} DMARC report(s)."));
        }

        private static ErrorRecord DmarcError(DmarcReportException e) =>
            new ErrorRecord(e, e.Kind == DmarcReportErrorKind.Unreadable ? "DmarcReportUnreadable" : "DmarcReportInvalid",
                e.Kind == DmarcReportErrorKind.Unreadable ? ErrorCategory.ReadError : ErrorCategory.InvalidData, e.SourceName);

        private ImapSourceOptions ImapOptions()
        {
            var o = new ImapSourceOptions
            {
                Host = DmarcImapServer!,
                Port = ImapPort,
                Security = ImapSecurity,
                Credential = ImapCredential?.GetNetworkCredential(),
                Folder = DmarcImapFolder,
                SkipCertificateCheck = SkipCertificateCheck,
                AllowAuthWithoutTls = AllowAuthWithoutTls,
            };
            if (TrustedCaFile != null)
            {
                var path = ToFileSystemPath(TrustedCaFile);
                try
                {
                    var collection = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
                    collection.Import(path);
                    o.TrustedCaCertificates = collection.Cast<System.Security.Cryptography.X509Certificates.X509Certificate2>().ToList();
                }
                catch (Exception e) when (e is IOException || e is UnauthorizedAccessException || e is System.Security.Cryptography.CryptographicException)
                {
                    ThrowTerminatingError(new ErrorRecord(e, "CaFileUnreadable", ErrorCategory.ReadError, path) { ErrorDetails = new ErrorDetails($"Cannot read the CA file '{path}': {e.Message}") });
                }
            }

            return o;
        }
    }

    /// <summary>Writes an inventory (the output of Get-EmailFlowInventory) to CSV, JSON or an HTML page.</summary>
    [Cmdlet(VerbsData.Export, "EmailFlowInventory", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
    [OutputType(typeof(FileInfo))]
    public sealed class ExportEmailFlowInventoryCommand : MailOpsCmdlet
    {
        private readonly List<EmailFlowInventoryItem> _items = new List<EmailFlowInventoryItem>();

        [Parameter(Mandatory = true, ValueFromPipeline = true)]
        [ValidateNotNull]
        public EmailFlowInventoryItem[]? InputObject { get; set; }

        /// <summary>The file to write.</summary>
        [Parameter(Mandatory = true, Position = 0)]
        [ValidateNotNullOrEmpty]
        public string? Path { get; set; }

        /// <summary>Csv, Json or Html. Default: from the file's extension (.csv, .json, .html/.htm).</summary>
        [Parameter]
        public InventoryExportFormat? Format { get; set; }

        /// <summary>The HTML page's title.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string Title { get; set; } = "Email flow inventory";

        /// <summary>Overwrite an existing file.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        protected override void ProcessRecord()
        {
            if (InputObject != null)
            {
                _items.AddRange(InputObject);
            }
        }

        protected override void EndProcessing()
        {
            var path = ToFileSystemPath(Path!);
            var format = Format ?? FormatOf(path);
            if (format == null)
            {
                ThrowTerminatingError(new ErrorRecord(new ArgumentException($"Cannot tell the format of '{path}' from its extension: give -Format Csv, Json or Html."),
                    "UnknownExportFormat", ErrorCategory.InvalidArgument, Path));
                return;
            }

            if (File.Exists(path) && !Force)
            {
                ThrowTerminatingError(new ErrorRecord(new IOException($"The file '{path}' exists: add -Force to overwrite it."), "ExportFileExists", ErrorCategory.ResourceExists, path));
            }

            if (!ShouldProcess(path, $"Write the inventory of {_items.Count} flow(s) as {format}"))
            {
                return;
            }

            var tmp = path + ".tmp-" + Guid.NewGuid().ToString("N").Substring(0, 8);
            try
            {
                using (var writer = new StreamWriter(tmp, false, new UTF8Encoding(false)))
                {
                    FlowInventoryExport.Write(writer, _items, format.Value, Title, DateTimeOffset.UtcNow);
                }

                if (File.Exists(path))
                {
                    File.Delete(path);
                }

                File.Move(tmp, path);
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                try
                {
                    File.Delete(tmp);
                }
                catch (IOException)
                {
                }

                ThrowTerminatingError(new ErrorRecord(e, "ExportWriteFailed", ErrorCategory.WriteError, path) { ErrorDetails = new ErrorDetails($"Cannot write '{path}': {e.Message}") });
            }

            WriteObject(new FileInfo(path));
        }

        private static InventoryExportFormat? FormatOf(string path)
        {
            var ext = System.IO.Path.GetExtension(path).ToLowerInvariant();
            return ext switch
            {
                ".csv" => InventoryExportFormat.Csv,
                ".json" => InventoryExportFormat.Json,
                ".html" => InventoryExportFormat.Html,
                ".htm" => InventoryExportFormat.Html,
                _ => null,
            };
        }
    }
}
