using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Reflection;
using System.Text;
using MailOps.Core.Config;
using MailOps.Core.Routing;

namespace MailOps.PowerShell.Commands
{
    /// <summary>
    /// Writes the Postfix configuration that enforces the flows' routing (maps, main.cf and master.cf fragments), shows
    /// what changes against the files already there, and with -Apply puts it into a Postfix configuration directory
    /// (postfix check before any reload); -Rollback restores the last backup.
    /// </summary>
    [Cmdlet(VerbsData.Export, "MailRoutingPolicy", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = ExportSet)]
    [OutputType(typeof(PolicyFileResult), ParameterSetName = new[] { ExportSet, ApplySet })]
    [OutputType(typeof(FlowRouteDecision), ParameterSetName = new[] { ExportSet, ApplySet })]
    [OutputType(typeof(PostfixApplyResult), ParameterSetName = new[] { ApplySet, RollbackSet })]
    public sealed class ExportMailRoutingPolicyCommand : MailOpsCmdlet
    {
        private const string ExportSet = "Export";
        private const string ApplySet = "Apply";
        private const string RollbackSet = "Rollback";

        /// <summary>The MTA the policy is written for (only Postfix so far).</summary>
        [Parameter(ParameterSetName = ExportSet)]
        [Parameter(ParameterSetName = ApplySet)]
        [ValidateSet("Postfix", IgnoreCase = true)]
        public string Format { get; set; } = "Postfix";

        /// <summary>The folder the files are written to.</summary>
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = ExportSet)]
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = ApplySet)]
        [ValidateNotNullOrEmpty]
        public string? Path { get; set; }

        [Parameter(ParameterSetName = ExportSet)]
        [Parameter(ParameterSetName = ApplySet)]
        [ValidateNotNullOrEmpty]
        public string? ConfigPath { get; set; }

        /// <summary>The absolute directory the maps live in on the MTA (default: -PostfixConfig with -Apply, otherwise -Path).</summary>
        [Parameter(ParameterSetName = ExportSet)]
        [Parameter(ParameterSetName = ApplySet)]
        [ValidateNotNullOrEmpty]
        public string? MapDirectory { get; set; }

        /// <summary>Leaves out the "# Generated at" line.</summary>
        [Parameter(ParameterSetName = ExportSet)]
        [Parameter(ParameterSetName = ApplySet)]
        public SwitchParameter NoTimestamp { get; set; }

        /// <summary>Also outputs one FlowRouteDecision per flow.</summary>
        [Parameter(ParameterSetName = ExportSet)]
        [Parameter(ParameterSetName = ApplySet)]
        public SwitchParameter IncludeDecision { get; set; }

        /// <summary>Puts the policy into the Postfix configuration directory -PostfixConfig.</summary>
        [Parameter(Mandatory = true, ParameterSetName = ApplySet)]
        public SwitchParameter Apply { get; set; }

        /// <summary>Restores the newest backup of -PostfixConfig and reloads.</summary>
        [Parameter(Mandatory = true, ParameterSetName = RollbackSet)]
        public SwitchParameter Rollback { get; set; }

        /// <summary>The Postfix configuration directory (where main.cf is).</summary>
        [Parameter(Mandatory = true, ParameterSetName = ApplySet)]
        [Parameter(Mandatory = true, ParameterSetName = RollbackSet)]
        [ValidateNotNullOrEmpty]
        public string? PostfixConfig { get; set; }

        /// <summary>
        /// Do not check, before a flow is moved to a secondary relay, that the relay works and that its mail would still pass
        /// DMARC (SPF of the sender domain for the relay's egress, or a DKIM key). Without it, a flow that would fail is
        /// refused (FlowNotReady) and keeps the primary path.
        /// </summary>
        [Parameter(ParameterSetName = ExportSet)]
        [Parameter(ParameterSetName = ApplySet)]
        public SwitchParameter SkipReadinessCheck { get; set; }

        /// <summary>The longest any postconf, postmap or postfix command may take.</summary>
        [Parameter(ParameterSetName = ApplySet)]
        [Parameter(ParameterSetName = RollbackSet)]
        [ValidateRange(1, 3600)]
        public int TimeoutSeconds { get; set; } = 60;

        protected override void EndProcessing()
        {
            if (ParameterSetName == RollbackSet)
            {
                DoRollback();
                return;
            }

            var config = LoadConfig(ConfigPath, terminating: true)!;
            var folder = ToFileSystemPath(Path!);
            var postfixDir = PostfixConfig != null ? ToFileSystemPath(PostfixConfig) : null;
            var mapDir = MapDirectory != null ? ToFileSystemPath(MapDirectory) : postfixDir ?? folder;
            PostfixPolicy policy;
            try
            {
                var options = new PostfixPolicyOptions
                {
                    MapDirectory = mapDir,
                    Timestamp = !NoTimestamp,
                    GeneratorVersion = "MailOps " + typeof(PostfixPolicy).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion?.Split('+')[0],
                };
                policy = PostfixPolicyGenerator.Generate(config, options);
                if (!SkipReadinessCheck)
                {
                    var refused = Readiness(config, policy);
                    if (refused.Count > 0)
                    {
                        options.Refused = refused;
                        policy = PostfixPolicyGenerator.Generate(config, options);
                    }
                }
            }
            catch (ArgumentException e)
            {
                ThrowTerminatingError(new ErrorRecord(e, "InvalidMapDirectory", ErrorCategory.InvalidArgument, mapDir));
                return;
            }

            foreach (var d in policy.Decisions.Where(d => d.Severity == PolicyDecisionSeverity.Warning))
            {
                WriteWarning($"Flow '{d.Flow}': {d.Why}");
            }

            var whatIf = MyInvocation.BoundParameters.TryGetValue("WhatIf", out var w) && ((SwitchParameter)w).IsPresent;
            foreach (var file in policy.Files)
            {
                var path = System.IO.Path.Combine(folder, file.Name);
                string? old = null;
                try
                {
                    old = File.Exists(path) ? File.ReadAllText(path) : null;
                }
                catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
                {
                    WriteError(new ErrorRecord(e, "PolicyReadFailed", ErrorCategory.ReadError, path) { ErrorDetails = new ErrorDetails($"Could not read the existing '{path}' to compare: {e.Message}") });
                }

                var diff = PolicyFileDiff.Compare(old, file.Text);
                var written = false;
                if (diff.Status == PolicyFileStatus.Unchanged)
                {
                    WriteVerbose($"{path}: unchanged.");
                }
                else
                {
                    if (whatIf)
                    {
                        var sb = new StringBuilder();
                        sb.Append(diff.Status == PolicyFileStatus.Created ? "+++ " : "--- ").Append(path).Append($" ({diff.Status}: +{diff.Added} -{diff.Removed})");
                        foreach (var line in diff.Lines)
                        {
                            sb.Append('\n').Append(line);
                        }

                        WriteInformation(new HostInformationMessage { Message = sb.ToString(), NoNewLine = false }, new[] { "PSHOST", "Export-MailRoutingPolicy" });
                    }

                    if (ShouldProcess(path, $"{(diff.Status == PolicyFileStatus.Created ? "Create" : "Change")} routing policy file (+{diff.Added} -{diff.Removed} lines)"))
                    {
                        try
                        {
                            Directory.CreateDirectory(folder);
                            var tmp = path + ".tmp-" + Guid.NewGuid().ToString("N").Substring(0, 8);
                            File.WriteAllText(tmp, file.Text, new UTF8Encoding(false));
                            if (File.Exists(path))
                            {
                                File.Delete(path);
                            }

                            File.Move(tmp, path);
                            written = true;
                        }
                        catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
                        {
                            WriteError(new ErrorRecord(e, "PolicyWriteFailed", ErrorCategory.WriteError, path) { ErrorDetails = new ErrorDetails($"Could not write '{path}': {e.Message}") });
                            continue;
                        }
                    }
                }

                WriteObject(new PolicyFileResult(file.Name, path, diff, written));
            }

            if (IncludeDecision)
            {
                WriteObject(policy.Decisions, true);
            }

            if (ParameterSetName == ApplySet)
            {
                DoApply(policy, postfixDir!);
            }
        }

        /// <summary>
        /// The readiness check of every flow the policy moves to a secondary relay (the relay's own check without AUTH, SPF,
        /// DKIM, DMARC alignment): each refusal is a FlowNotReady error with the reason; returns the refused flows.
        /// </summary>
        private Dictionary<string, string> Readiness(MailOpsConfig config, PostfixPolicy policy)
        {
            var refused = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            var moved = policy.Decisions.Where(d => d.Route != null).ToList();
            if (moved.Count == 0)
            {
                return refused;
            }

            var dns = new MailOps.Core.Dns.UdpDnsResolver(config.Dns);
            var catalog = MailOps.Core.Providers.ProviderCatalog.For(config);
            var results = RunPumped(async sink =>
            {
                var list = new List<FlowReadiness>();
                foreach (var d in moved)
                {
                    var flow = config.Flows.First(f => string.Equals(f.Name, d.Flow, StringComparison.OrdinalIgnoreCase));
                    var relay = config.FindRelay(d.Route!.Relay)!;
                    sink.Post(() => WriteProgress(new ProgressRecord(4, "Export-MailRoutingPolicy", $"Readiness of flow '{flow.Name}' for relay '{relay.Name}'")));
                    list.Add(await FlowMoveReadiness.CheckAsync(config, flow, relay, dns, catalog, c => MailOps.Core.Relay.RelayChecker.CheckOneAsync(new MailOps.Core.Relay.RelayCheckOptions
                    {
                        Name = relay.Name,
                        Host = relay.Host,
                        Port = relay.Port,
                        Security = relay.Security,
                        HeloName = relay.HeloName,
                        Timeout = TimeSpan.FromSeconds(relay.TimeoutSeconds),
                        SkipCertificateCheck = relay.SkipCertificateCheck,
                        TrustedCaCertificates = CaOf(relay),
                        CheckOpenRelay = false,
                        CheckDns = false,
                    }, dns, c), CancellationToken).ConfigureAwait(false));
                }

                sink.Post(() => WriteProgress(new ProgressRecord(4, "Export-MailRoutingPolicy", "Done") { RecordType = ProgressRecordType.Completed }));
                return list;
            });
            foreach (var r in results)
            {
                WriteVerbose(r.ToString());
                if (!r.Ready)
                {
                    refused[r.Flow] = r.Reason;
                    WriteError(new ErrorRecord(new InvalidOperationException($"Flow '{r.Flow}' is not moved to relay '{r.Relay}': {r.Reason}. It keeps the primary path; fix it, or use -SkipReadinessCheck."),
                        "FlowNotReady", ErrorCategory.InvalidOperation, r.Flow));
                }
            }

            return refused;
        }

        private static IReadOnlyList<System.Security.Cryptography.X509Certificates.X509Certificate2> CaOf(RelayConfig relay)
        {
            if (relay.CaFile == null)
            {
                return Array.Empty<System.Security.Cryptography.X509Certificates.X509Certificate2>();
            }

            try
            {
                var collection = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
                collection.Import(relay.CaFile);
                return collection.Cast<System.Security.Cryptography.X509Certificates.X509Certificate2>().ToList();
            }
            catch (Exception e) when (e is IOException || e is System.Security.Cryptography.CryptographicException || e is UnauthorizedAccessException)
            {
                return Array.Empty<System.Security.Cryptography.X509Certificates.X509Certificate2>(); // the relay check then fails on its certificate and says so
            }
        }

        private PostfixTools? Tools()
        {
            try
            {
                return PostfixTools.Locate();
            }
            catch (PostfixApplyException e)
            {
                ThrowTerminatingError(new ErrorRecord(e, "PostfixNotFound", ErrorCategory.ObjectNotFound, "postfix"));
                return null;
            }
        }

        private void DoApply(PostfixPolicy policy, string postfixDir)
        {
            var target = postfixDir;
            var action = $"Apply the routing policy: back up main.cf, master.cf and the maps into {postfixDir}/{PostfixPolicyApplier.BackupPrefix}<time>, " +
                $"copy {string.Join(", ", policy.Files.Where(f => f.IsHashMap).Select(f => f.Name))} to {policy.MapDirectory} and postmap them, set {policy.Parameters.Count} main.cf parameter(s) " +
                $"({string.Join(", ", policy.Parameters.Select(p => p.Name))}), replace the MailOps block of master.cf ({policy.Transports.Count} transport(s)), run postfix check, and reload only if it passes";
            if (!ShouldProcess(target, action))
            {
                return;
            }

            var tools = Tools()!;
            var applier = new PostfixPolicyApplier(new ProcessCommandRunner(), tools, new PostfixApplyOptions { CommandTimeout = TimeSpan.FromSeconds(TimeoutSeconds) });
            Run(() => RunPumped(_ => applier.ApplyAsync(policy, postfixDir, CancellationToken)), postfixDir);
        }

        private void DoRollback()
        {
            var postfixDir = ToFileSystemPath(PostfixConfig!);
            var backup = PostfixPolicyApplier.LatestBackup(postfixDir);
            if (backup == null)
            {
                WriteError(new ErrorRecord(new ItemNotFoundException($"{postfixDir} has no {PostfixPolicyApplier.BackupPrefix}* folder: there is nothing to roll back to."), "PostfixNoBackup", ErrorCategory.ObjectNotFound, postfixDir));
                return;
            }

            if (!ShouldProcess(postfixDir, $"Restore main.cf, master.cf and the maps from {backup}, run postfix check and reload"))
            {
                return;
            }

            var tools = Tools()!;
            var applier = new PostfixPolicyApplier(new ProcessCommandRunner(), tools, new PostfixApplyOptions { CommandTimeout = TimeSpan.FromSeconds(TimeoutSeconds) });
            Run(() => RunPumped(_ => applier.RollbackAsync(postfixDir, CancellationToken)), postfixDir);
        }

        private void Run(Func<PostfixApplyResult> work, string postfixDir)
        {
            try
            {
                WriteObject(work());
            }
            catch (PostfixApplyException e)
            {
                var (id, category) = e.Kind switch
                {
                    PostfixFailure.CheckFailed => ("PostfixCheckFailed", ErrorCategory.InvalidResult),
                    PostfixFailure.ReloadFailed => ("PostfixReloadFailed", ErrorCategory.InvalidResult),
                    PostfixFailure.NotFound => ("PostfixNotFound", ErrorCategory.ObjectNotFound),
                    PostfixFailure.NoBackup => ("PostfixNoBackup", ErrorCategory.ObjectNotFound),
                    _ => ("PostfixCommandFailed", ErrorCategory.InvalidResult),
                };
                WriteError(new ErrorRecord(e, id, category, postfixDir));
            }
            catch (FileNotFoundException e)
            {
                WriteError(new ErrorRecord(e, "PostfixConfigNotFound", ErrorCategory.ObjectNotFound, postfixDir));
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                WriteError(new ErrorRecord(e, "PostfixApplyWriteFailed", ErrorCategory.WriteError, postfixDir)
                {
                    ErrorDetails = new ErrorDetails($"Could not write into {postfixDir}: {e.Message}. The previous files were restored."),
                });
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                WriteError(new ErrorRecord(e, "PostfixNotFound", ErrorCategory.ObjectNotFound, postfixDir)
                {
                    ErrorDetails = new ErrorDetails($"A Postfix program could not be started: {e.Message}. The previous files were restored."),
                });
            }
        }
    }
}
