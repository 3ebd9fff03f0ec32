using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Config;
using MailOps.Core.Logs;
using MailOps.Core.Store;
using MailOps.Core.Traffic;

namespace MailOps.PowerShell.Commands
{
    /// <summary>A log to read and the relay it belongs to.</summary>
    internal sealed class TrafficLogSource
    {
        public TrafficLogSource(string path, string? relay)
        {
            Path = path;
            Relay = relay;
        }

        public string Path { get; }
        public string? Relay { get; }
    }

    /// <summary>Shared by the traffic cmdlets: the logs to read (parameters or the configured relays' logs).</summary>
    public abstract class TrafficCmdletBase : StoreAccessCmdlet
    {
        private readonly List<string> _paths = new List<string>();

        /// <summary>Log files (plain or .gz) or folders of them. Default: the `log` of each configured relay.</summary>
        [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("FullName", "PSPath")]
        [ValidateNotNullOrEmpty]
        public string[]? Path { get; set; }

        /// <summary>The relay the logs given with -Path belong to (default: the syslog name in each line).</summary>
        [Parameter]
        [ArgumentCompleter(typeof(RelayNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string? Relay { get; set; }

        /// <summary>Also count MailOps' own send journal (jobs of Send-ViaSecondaryRelay).</summary>
        [Parameter]
        public SwitchParameter Journal { get; set; }

        /// <summary>The year of log dates that carry none (BSD syslog). Default: this year, or last year for dates that would lie in the future.</summary>
        [Parameter]
        [ValidateRange(1970, 9999)]
        public int? Year { get; set; }

        protected MailOpsConfig? Config { get; set; }

        protected override void ProcessRecord()
        {
            if (Path == null)
            {
                return;
            }

            foreach (var p in Path)
            {
                Collection<string> resolved;
                try
                {
                    resolved = GetResolvedProviderPathFromPSPath(p, out _);
                }
                catch (ItemNotFoundException)
                {
                    WriteError(new ErrorRecord(new FileNotFoundException($"There is no log at '{p}'."), "LogNotFound", ErrorCategory.ObjectNotFound, p));
                    continue;
                }

                foreach (var r in resolved)
                {
                    if (Directory.Exists(r))
                    {
                        // a folder of logs: oldest first (rotated logs are older than the live one)
                        _paths.AddRange(new DirectoryInfo(r).GetFiles().Where(f => !f.Name.StartsWith(".", StringComparison.Ordinal))
                            .OrderBy(f => f.LastWriteTimeUtc).ThenByDescending(f => f.Name, StringComparer.Ordinal).Select(f => f.FullName));
                    }
                    else
                    {
                        _paths.Add(r);
                    }
                }
            }
        }

        /// <summary>The logs to read; writes NoTrafficSource and returns null when there are none.</summary>
        internal List<TrafficLogSource>? Sources(bool journal)
        {
            if (Relay != null && Config?.FindRelay(Relay) == null && Config != null)
            {
                ThrowTerminatingError(new ErrorRecord(new ArgumentException($"There is no relay '{Relay}' in the configuration ({string.Join(", ", Config.Relays.Select(r => r.Name))})."),
                    "RelayNotFound", ErrorCategory.ObjectNotFound, Relay));
            }

            if (_paths.Count > 0)
            {
                return _paths.Select(p => new TrafficLogSource(p, Relay)).ToList();
            }

            if (Path != null)
            {
                return null; // every path given was missing: already reported
            }

            var configured = (Config?.Relays ?? Array.Empty<RelayConfig>()).Where(r => r.Log != null && (Relay == null || string.Equals(r.Name, Relay, StringComparison.OrdinalIgnoreCase)))
                .Select(r => new TrafficLogSource(r.Log!, r.Name)).ToList();
            if (configured.Count == 0 && !journal)
            {
                WriteError(new ErrorRecord(new ArgumentException("There is nothing to read: give -Path (an MTA log or a folder of them), set 'log:' on the relays in the configuration, or add -Journal."),
                    "NoTrafficSource", ErrorCategory.InvalidArgument, null));
                return null;
            }

            foreach (var missing in configured.Where(s => !File.Exists(s.Path)).ToList())
            {
                WriteWarning($"The log '{missing.Path}' of relay '{missing.Relay}' does not exist (yet): nothing counted from it.");
                configured.Remove(missing);
            }

            return configured;
        }

        /// <summary>Reads logs into a monitor, record by record, with progress by bytes.</summary>
        internal void ReadLogs(IReadOnlyList<TrafficLogSource> sources, Action<MailLogRecord, string?> add, MailLogParser parser, CmdletSink sink, string activity) =>
            ReadLogs(sources, (reader, source) =>
            {
                long n = 0;
                foreach (var r in parser.Read(reader, source.Path))
                {
                    if ((++n & 0x3FFF) == 0)
                    {
                        CancellationToken.ThrowIfCancellationRequested();
                    }

                    add(r, source.Relay);
                }
            }, parser, sink, activity);

        /// <summary>
        /// Hands each log (decompressed when .gz) to <paramref name="read"/>, writing progress by bytes read (with the
        /// rate and time left) twice a second from a timer, so the reading loop itself stays untouched.
        /// </summary>
        internal void ReadLogs(IReadOnlyList<TrafficLogSource> sources, Action<TextReader, TrafficLogSource> read, MailLogParser parser, CmdletSink sink, string activity)
        {
            var total = sources.Sum(s => File.Exists(s.Path) ? new FileInfo(s.Path).Length : 0);
            long done = 0;
            var clock = Stopwatch.StartNew();
            FileStream? current = null;
            string currentName = "";
            using (new Timer(_ =>
            {
                var stream = current;
                long pos;
                try
                {
                    pos = done + (stream != null && stream.CanSeek ? stream.Position : 0);
                }
                catch (ObjectDisposedException)
                {
                    return;
                }

                var pct = total == 0 ? 0 : (int)Math.Min(100, 100 * pos / total);
                var rate = pos / Math.Max(0.001, clock.Elapsed.TotalSeconds);
                var eta = rate > 0 ? (int)((total - pos) / rate) : -1;
                var name = currentName;
                sink.Post(() => WriteProgress(new ProgressRecord(1, activity, $"{name}: {pos / 1048576} of {total / 1048576} MB, {rate / 1048576:0} MB/s") { PercentComplete = pct, SecondsRemaining = eta }));
            }, null, 500, 500))
            {
                foreach (var source in sources)
                {
                    CancellationToken.ThrowIfCancellationRequested();
                    using (var stream = File.Open(source.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
                    {
                        var length = stream.Length;
                        Stream input = stream;
                        if (source.Path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
                        {
                            input = new System.IO.Compression.GZipStream(stream, System.IO.Compression.CompressionMode.Decompress);
                        }

                        currentName = System.IO.Path.GetFileName(source.Path);
                        current = stream;
                        using (var reader = new StreamReader(input, System.Text.Encoding.UTF8, true, 1 << 16))
                        {
                            read(reader, source);
                        }

                        current = null;
                        done += length;
                    }
                }
            }

            sink.Post(() => WriteProgress(new ProgressRecord(1, activity, "Done") { RecordType = ProgressRecordType.Completed }));
            if (parser.UnreadableLines > 0)
            {
                var count = parser.UnreadableLines;
                sink.Post(() => WriteWarning($"{count} line(s) looked like MTA delivery lines but could not be read; they were not counted."));
            }
        }

    }

    /// <summary>Traffic per time bucket and per sender, domain, flow, relay, client or recipient domain, from MTA logs and the send journal.</summary>
    [Cmdlet(VerbsCommon.Get, "MailTrafficReport", DefaultParameterSetName = "Rows")]
    [OutputType(typeof(TrafficRow), ParameterSetName = new[] { "Rows" })]
    [OutputType(typeof(TrafficTotals), ParameterSetName = new[] { "Totals" })]
    [OutputType(typeof(FileInfo), ParameterSetName = new[] { "Html" })]
    public sealed class GetMailTrafficReportCommand : TrafficCmdletBase
    {
        [Parameter]
        public TrafficBucket Bucket { get; set; } = TrafficBucket.Hour;

        /// <summary>What to count the traffic of (several give one set of rows each). Default: Total.</summary>
        [Parameter(ParameterSetName = "Rows")]
        [Parameter(ParameterSetName = "Html")]
        public TrafficDimension[] By { get; set; } = { TrafficDimension.Total };

        [Parameter]
        public DateTimeOffset? Since { get; set; }

        [Parameter]
        public DateTimeOffset? Until { get; set; }

        /// <summary>Output the whole period's totals (counted as pflogsumm counts them) instead of rows.</summary>
        [Parameter(Mandatory = true, ParameterSetName = "Totals")]
        public SwitchParameter Totals { get; set; }

        /// <summary>Write an HTML report with charts of volume and bounce rate to this file.</summary>
        [Parameter(Mandatory = true, ParameterSetName = "Html")]
        [ValidateNotNullOrEmpty]
        public string? AsHtml { get; set; }

        protected override void BeginProcessing() => Config = LoadOptionalConfig(ConfigPath);

        protected override void EndProcessing()
        {
            if (Since.HasValue && Until.HasValue && Until <= Since)
            {
                ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-Until ({Until:u}) is not after -Since ({Since:u})."), "InvalidWindow", ErrorCategory.InvalidArgument, Until));
            }

            var sources = Sources(Journal);
            if (sources == null)
            {
                return;
            }

            var dims = ParameterSetName == "Html"
                ? new[] { TrafficDimension.Sender, TrafficDimension.Flow, TrafficDimension.Relay, TrafficDimension.RecipientDomain }.Concat(By).Distinct().ToArray()
                : By;
            var options = new TrafficOptions
            {
                Bucket = Bucket,
                Dimensions = dims,
                Since = Since,
                Until = Until,
                Flows = new FlowMatcher(Config?.Flows),
                RelayByInstance = Config?.Relays.Where(r => r.SyslogName != null).ToDictionary(r => r.SyslogName!, r => r.Name, StringComparer.OrdinalIgnoreCase),
                ClassifyReasons = !Totals,
                TotalsOnly = Totals,
            };
            var aggregator = new TrafficAggregator(options);
            var parser = new MailLogParser(Year);
            using var journalStore = Journal ? OpenStore(Config, StoreCredential) : null;
            RunPumped(async sink =>
            {
                ReadLogs(sources, (reader, source) =>
                {
                    options.Relay = source.Relay; // null: from each line's syslog name
                    aggregator.AddLog(reader, parser, source.Path, CancellationToken);
                }, parser, sink, "Get-MailTrafficReport");
                if (journalStore != null)
                {
                    var store = journalStore;
                    {
                        foreach (var job in await store.ListJobsAsync(null, CancellationToken).ConfigureAwait(false))
                        {
                            var items = await store.LoadItemsAsync(job.Name, null, CancellationToken).ConfigureAwait(false);
                            aggregator.AddJournal(job, items);
                        }
                    }
                }

                return true;
            });

            if (Totals)
            {
                WriteObject(aggregator.Totals);
                return;
            }

            var rows = aggregator.Rows;
            if (ParameterSetName == "Html")
            {
                var path = ToFileSystemPath(AsHtml!);
                TrafficHtmlReport.Write(path, rows, aggregator.Totals, $"MailOps traffic report ({Bucket.ToString().ToLowerInvariant()}ly)");
                WriteObject(new FileInfo(path));
                return;
            }

            var wanted = new HashSet<TrafficDimension>(By);
            foreach (var row in rows)
            {
                if (wanted.Contains(row.Dimension))
                {
                    WriteObject(row);
                }
            }
        }
    }

    /// <summary>One traffic check against the configured thresholds: raises, repeats and resolves alerts and sends them to the sinks.</summary>
    [Cmdlet(VerbsDiagnostic.Test, "MailTraffic", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
    [OutputType(typeof(TrafficAlert))]
    [OutputType(typeof(bool))]
    public sealed class TestMailTrafficCommand : TrafficCmdletBase
    {
        /// <summary>Exit codes with -ExitCode (as monitoring plugins use them).</summary>
        public const int ExitOk = 0, ExitWarning = 1, ExitCritical = 2, ExitUnknown = 3;

        /// <summary>Only these rules (names from the configuration's thresholds).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[]? Rule { get; set; }

        /// <summary>The time the check is made at (default: now). Figures are counted over each rule's window before it.</summary>
        [Parameter]
        public DateTimeOffset? At { get; set; }

        /// <summary>Read from this time (default: the longest rule window before -At). Earlier: the complete hours read are also learned as history for spike rules.</summary>
        [Parameter]
        public DateTimeOffset? Since { get; set; }

        /// <summary>Return only $true (no alert active) or $false (an alert is active).</summary>
        [Parameter]
        public SwitchParameter Quiet { get; set; }

        /// <summary>Exit the PowerShell process with 0 (no alert active), 1 (a warning is active), 2 (a critical alert is active) or 3 (the check failed).</summary>
        [Parameter]
        public SwitchParameter ExitCode { get; set; }

        protected override void BeginProcessing()
        {
            try
            {
                Config = LoadConfig(ConfigPath, terminating: true);
            }
            catch (Exception) when (ExitCode)
            {
                Host.SetShouldExit(ExitUnknown);
                throw;
            }
        }

        protected override void EndProcessing()
        {
            try
            {
                Run();
            }
            catch (Exception e) when (ExitCode && !(e is PipelineStoppedException))
            {
                WriteError(new ErrorRecord(e, "TrafficCheckFailed", ErrorCategory.NotSpecified, null));
                Host.SetShouldExit(ExitUnknown);
            }
        }

        private void Run()
        {
            var config = Config!;
            var rules = TrafficRuleSelection.Select(this, config, Rule);
            if (rules.Count == 0)
            {
                ThrowTerminatingError(new ErrorRecord(new InvalidOperationException(Rule == null
                    ? "The configuration has no 'thresholds:': there is nothing to check traffic against. See about_MailOps (traffic watch) for examples."
                    : "None of the rules named with -Rule is in the configuration's 'thresholds:' (see the errors above)."),
                    "NoTrafficRules", ErrorCategory.InvalidData, config.Path));
            }

            var sources = Sources(Journal);
            if (sources == null)
            {
                if (ExitCode)
                {
                    Host.SetShouldExit(ExitUnknown);
                }

                return;
            }

            var at = At ?? DateTimeOffset.Now;
            var since = Since ?? at - TrafficRules.LongestWindow(rules);
            var apply = ShouldProcess($"{rules.Count} traffic rule(s) at {at:u}", "Update the alert state and notify the sinks");
            var dispatcher = apply ? TrafficRuleSelection.Dispatcher(config, this) : null;
            using (var store = OpenStore(config, StoreCredential))
            {
                var result = RunPumped(async sink =>
                {
                    var monitor = new TrafficMonitor(config, apply ? store : null, rules, apply ? dispatcher : null, since);
                    var parser = new MailLogParser(Year);
                    ReadLogs(sources, (r, relay) => monitor.Add(r, relay), parser, sink, "Test-MailTraffic");
                    if (Journal)
                    {
                        await monitor.AddJournalAsync(since, CancellationToken).ConfigureAwait(false);
                    }

                    var check = await monitor.CheckAsync(at, since, apply, CancellationToken).ConfigureAwait(false);
                    // with -WhatIf nothing is recorded: what this check found is what would be active
                    return (check, apply ? check.ActiveAlerts : check.Alerts);
                });

                Report(result);
            }
        }

        private void Report((TrafficCheckResult, IReadOnlyList<TrafficAlert>) result)
        {
            var (checkResult, active) = result;
            TrafficRuleSelection.ReportDeliveries(this, checkResult.Deliveries);
            if (Quiet)
            {
                WriteObject(active.Count == 0);
            }
            else
            {
                foreach (var a in checkResult.Alerts)
                {
                    WriteObject(a);
                }
            }

            if (ExitCode)
            {
                var code = active.Count == 0 ? ExitOk : active.Any(a => a.Severity == AlertSeverity.Critical) ? ExitCritical : ExitWarning;
                Host.SetShouldExit(code);
            }
        }
    }

    /// <summary>Follows MTA logs live and checks the thresholds every interval, until Ctrl+C or -Duration.</summary>
    [Cmdlet(VerbsCommon.Watch, "MailTraffic", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
    [OutputType(typeof(TrafficAlert))]
    public sealed class WatchMailTrafficCommand : TrafficCmdletBase
    {
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[]? Rule { get; set; }

        /// <summary>Seconds between checks (default 60).</summary>
        [Parameter]
        [ValidateRange(1, 86400)]
        public int IntervalSeconds { get; set; } = 60;

        /// <summary>Stop after this long (default: until Ctrl+C).</summary>
        [Parameter]
        public TimeSpan? Duration { get; set; }

        /// <summary>Also write the alerts that are still active but quiet, at each check.</summary>
        [Parameter]
        public SwitchParameter IncludeActive { get; set; }

        protected override void BeginProcessing() => Config = LoadConfig(ConfigPath, terminating: true);

        protected override void EndProcessing()
        {
            var config = Config!;
            var rules = TrafficRuleSelection.Select(this, config, Rule);
            if (rules.Count == 0)
            {
                ThrowTerminatingError(new ErrorRecord(new InvalidOperationException(Rule == null
                    ? "The configuration has no 'thresholds:': there is nothing to watch traffic against."
                    : "None of the rules named with -Rule is in the configuration's 'thresholds:' (see the errors above)."),
                    "NoTrafficRules", ErrorCategory.InvalidData, config.Path));
            }

            var sources = Sources(Journal);
            if (sources == null)
            {
                return;
            }

            var apply = ShouldProcess($"{rules.Count} traffic rule(s) every {IntervalSeconds} s", "Update the alert state and notify the sinks");
            var started = DateTimeOffset.Now;
            var stopAt = Duration.HasValue ? started + Duration.Value : DateTimeOffset.MaxValue;
            var dispatcher = apply ? TrafficRuleSelection.Dispatcher(config, this) : null;
            using (var store = OpenStore(config, StoreCredential))
            {
                RunPumped(async sink =>
                {
                    var window = TrafficRules.LongestWindow(rules);
                    var monitor = new TrafficMonitor(config, apply ? store : null, rules, apply ? dispatcher : null, started - window);
                    var parser = new MailLogParser(Year);
                    // catch up on the rules' window, then follow
                    ReadLogs(sources, (r, relay) => monitor.Add(r, relay), parser, sink, "Watch-MailTraffic (catching up)");
                    var followers = sources.Select(s => (Follower: new LogFollower(s.Path, fromEnd: true), s.Relay)).ToList();
                    var nextCheck = DateTimeOffset.Now;
                    var lastRestart = DateTimeOffset.Now;
                    var checks = 0;
                    while (!CancellationToken.IsCancellationRequested)
                    {
                        foreach (var (follower, relay) in followers)
                        {
                            foreach (var line in follower.ReadNewLines())
                            {
                                var r = parser.Parse(line);
                                if (r != null)
                                {
                                    monitor.Add(r, relay);
                                }
                            }
                        }

                        var now = DateTimeOffset.Now;
                        if (now >= nextCheck)
                        {
                            if (Journal)
                            {
                                // the journal is re-read each time: a fresh aggregation of the window
                                monitor.Restart(now - window);
                                ReadLogs(sources, (r, relay) => monitor.Add(r, relay), new MailLogParser(Year), sink, "Watch-MailTraffic");
                                foreach (var f in followers)
                                {
                                    f.Follower.ReadNewLines(); // already counted by the re-read
                                }

                                await monitor.AddJournalAsync(now - window, CancellationToken).ConfigureAwait(false);
                            }

                            var check = await monitor.CheckAsync(now, started - window, apply, CancellationToken).ConfigureAwait(false);
                            checks++;
                            var c = checks;
                            sink.Post(() =>
                            {
                                TrafficRuleSelection.ReportDeliveries(this, check.Deliveries);
                                foreach (var a in check.Alerts.Where(a => IncludeActive || a.State != AlertState.Active || !apply))
                                {
                                    WriteObject(a);
                                }

                                WriteVerbose($"Check {c} at {check.At:T}: {check.ActiveAlerts.Count} active alert(s).");
                            });
                            nextCheck = now.AddSeconds(IntervalSeconds);
                        }

                        if (now >= stopAt)
                        {
                            break;
                        }

                        if (now - lastRestart > TimeSpan.FromHours(6) && !Journal)
                        {
                            // keep memory flat on a watch that runs for weeks: re-read the window from the logs
                            monitor.Restart(now - window);
                            ReadLogs(sources, (r, relay) => monitor.Add(r, relay), new MailLogParser(Year), sink, "Watch-MailTraffic");
                            foreach (var f in followers)
                            {
                                f.Follower.ReadNewLines();
                            }

                            lastRestart = now;
                        }

                        try
                        {
                            await Task.Delay(500, CancellationToken).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException)
                        {
                            break;
                        }
                    }

                    return true;
                });
            }
        }
    }

    internal static class TrafficRuleSelection
    {
        public static List<ThresholdConfig> Select(PSCmdlet cmdlet, MailOpsConfig config, string[]? names)
        {
            if (names == null)
            {
                return config.Thresholds.ToList();
            }

            var list = new List<ThresholdConfig>();
            foreach (var n in names)
            {
                var rule = config.Thresholds.FirstOrDefault(t => string.Equals(t.Name, n, StringComparison.OrdinalIgnoreCase));
                if (rule == null)
                {
                    cmdlet.WriteError(new ErrorRecord(new ArgumentException($"There is no threshold '{n}' in the configuration ({string.Join(", ", config.Thresholds.Select(t => t.Name))})."),
                        "RuleNotFound", ErrorCategory.ObjectNotFound, n));
                    continue;
                }

                list.Add(rule);
            }

            return list;
        }

        public static Func<TrafficAlert, CancellationToken, Task<IReadOnlyList<AlertDelivery>>>? Dispatcher(MailOpsConfig config, MailOpsCmdlet cmdlet) =>
            AlertSinks.CreateDispatcher(config, cmdlet);

        public static void ReportDeliveries(PSCmdlet cmdlet, IReadOnlyList<AlertDelivery> deliveries)
        {
            foreach (var d in deliveries)
            {
                if (d.Succeeded)
                {
                    cmdlet.WriteVerbose($"Alert {d.AlertId} sent to {d.Sink} ({d.Type}) in {d.Duration.TotalMilliseconds:0} ms.");
                }
                else
                {
                    cmdlet.WriteError(new ErrorRecord(new IOException($"The alert sink '{d.Sink}' ({d.Type}) failed for alert {d.AlertId}: {d.Error}. The other sinks were still tried."),
                        "AlertSinkFailed", ErrorCategory.ConnectionError, d.Sink));
                }
            }
        }
    }
}
