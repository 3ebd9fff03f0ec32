using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Security.Cryptography.X509Certificates;
using MailOps.Core.Config;
using MailOps.Core.Sending;
using MailOps.Core.Store;

namespace MailOps.PowerShell.Commands
{
    /// <summary>The sending options shared by Send-ViaSecondaryRelay and Resume-MailOpsSendJob.</summary>
    public abstract class SendCmdletBase : StoreCmdlet
    {
        /// <summary>The relay (default: the configuration's first secondary relay).</summary>
        [Parameter]
        [ArgumentCompleter(typeof(RelayNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string? Relay { get; set; }

        /// <summary>A second relay that takes over when the first is down.</summary>
        [Parameter]
        [ArgumentCompleter(typeof(RelayNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string? FailoverRelay { get; set; }

        /// <summary>Allow bulk mail through a relay whose role is primary (refused by default).</summary>
        [Parameter]
        public SwitchParameter AllowPrimary { get; set; }

        /// <summary>The relay's credential (default: the configuration's, from SecretManagement).</summary>
        [Parameter]
        [Credential]
        public PSCredential? Credential { get; set; }

        [Parameter]
        [ValidateRange(1, 64)]
        public int MaxConnections { get; set; } = 4;

        [Parameter]
        [ValidateRange(1, 10000)]
        public int MessagesPerConnection { get; set; } = 100;

        [Parameter]
        [ValidateRange(0, 1000000)]
        public int PerMinute { get; set; }

        [Parameter]
        [ValidateRange(0, 10000000)]
        public int PerHour { get; set; }

        [Parameter]
        [ValidateRange(0, 1000000)]
        public int PerDomainPerMinute { get; set; }

        [Parameter]
        [ValidateRange(1, 100)]
        public int MaxAttempts { get; set; } = 5;

        [Parameter]
        public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMinutes(1);

        [Parameter]
        public TimeSpan RetryWindow { get; set; } = TimeSpan.FromMinutes(10);

        [Parameter]
        public TimeSpan PauseDuration { get; set; } = TimeSpan.FromMinutes(30);

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? DkimKeyFile { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? DkimSelector { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? DkimDomain { get; set; }

        protected MailOpsConfig? Config { get; private set; }

        protected void LoadSendConfig() => Config = LoadOptionalConfig(ConfigPath);

        /// <summary>The relay to send through: named, or the first secondary; a primary one only with -AllowPrimary.</summary>
        protected SendRelay ResolveRelay(string? name, bool failover)
        {
            RelayConfig? relay;
            if (name != null)
            {
                relay = Config?.FindRelay(name);
                if (relay == null)
                {
                    ThrowTerminatingError(new ErrorRecord(new ArgumentException($"There is no relay '{name}' in the configuration{(Config?.Path != null ? " " + Config.Path : "")}."), "RelayNotFound", ErrorCategory.ObjectNotFound, name));
                }
            }
            else
            {
                relay = Config?.Relays.FirstOrDefault(r => r.Role == RelayRole.Secondary);
                if (relay == null)
                {
                    ThrowTerminatingError(new ErrorRecord(new InvalidOperationException("The configuration has no relay with role: secondary; name one with -Relay (and -AllowPrimary if it is the primary)."), "NoSecondaryRelay", ErrorCategory.ObjectNotFound, null));
                }
            }

            if (relay!.Role == RelayRole.Primary && !AllowPrimary)
            {
                ThrowTerminatingError(new ErrorRecord(new InvalidOperationException($"The relay '{relay.Name}' carries person-to-person mail (role: primary); bulk mail through it could get all mail suspended. Use a secondary relay, or -AllowPrimary if you must."),
                    "PrimaryRelayRefused", ErrorCategory.PermissionDenied, relay.Name));
            }

            var (credential, ca) = RelayAccess(relay, Config, Credential);
            WriteVerbose($"{(failover ? "Failover relay" : "Relay")}: {relay}.");
            return new SendRelay(relay, credential, ca);
        }

        protected SendOptions Options(SendRelay relay, SendRelay? failover, string? flow) => new SendOptions
        {
            Relay = relay,
            FailoverRelay = failover,
            MaxConnections = MaxConnections,
            MessagesPerConnection = MessagesPerConnection,
            PerMinute = PerMinute,
            PerHour = PerHour,
            PerDomainPerMinute = PerDomainPerMinute,
            MaxAttempts = MaxAttempts,
            RetryDelay = RetryDelay,
            RetryWindow = RetryWindow,
            PauseDuration = PauseDuration,
            DkimKeyFile = DkimKeyFile == null ? null : ToFileSystemPath(DkimKeyFile),
            DkimSelector = DkimSelector,
            DkimDomain = DkimDomain,
            Flow = flow,
        };

        /// <summary>Runs a job with progress and warnings on the pipeline thread; writes the summary.</summary>
        protected void Run(BounceStore store, SendJobRecord job, SendOptions options)
        {
            using var engine = new SendEngine(store, options);
            var started = DateTime.UtcNow;
            var summary = RunPumped(sink => engine.RunAsync(job, new Observer(this, sink, job.Name), CancellationToken));
            WriteProgress(new ProgressRecord(1, $"Sending job {job.Name}", "Done") { RecordType = ProgressRecordType.Completed });
            if (summary.PossiblyDuplicated > 0)
            {
                WriteWarning($"{summary.PossiblyDuplicated} recipient(s) of the job '{job.Name}' may have received the message twice or not at all (the connection or the process died after the message was sent and before the reply): see Get-MailOpsSendJob -Name '{job.Name}' -State possibly-duplicated.");
            }

            if (summary.State == SendJobStates.Paused && summary.PauseReason != null)
            {
                RaiseBreakerAlert(job, summary);
            }

            WriteObject(summary);
        }

        /// <summary>
        /// The circuit breaker's alert, to the configured alert sinks (as the traffic watch sends its own): the job, the
        /// relay, the reply that tripped it, until when it is paused, and what to do.
        /// </summary>
        private void RaiseBreakerAlert(SendJobRecord job, SendJobSummary summary)
        {
            if (Config == null || Config.AlertSinks.Count == 0)
            {
                return;
            }

            var now = DateTimeOffset.UtcNow;
            var alert = new MailOps.Core.Traffic.TrafficAlert
            {
                Id = $"circuit-breaker/job/{job.Name}".ToLowerInvariant(),
                Rule = "circuit-breaker",
                Kind = "blockReplies",
                Severity = MailOps.Core.Traffic.AlertSeverity.Critical,
                State = MailOps.Core.Traffic.AlertState.Raised,
                Scope = "relay",
                Key = summary.Relay,
                Metric = "blockReplies",
                Per = "minute",
                Value = 1,
                Limit = 1,
                WindowStart = now,
                WindowEnd = now,
                RaisedAt = now,
                TopFlows = job.Flow == null ? Array.Empty<KeyValuePair<string, long>>() : new[] { new KeyValuePair<string, long>(job.Flow, summary.Sent) },
                TopSenders = new[] { new KeyValuePair<string, long>(job.Template.From, summary.Sent) },
                Summary = $"Circuit breaker: send job '{job.Name}' through relay '{summary.Relay}' is paused until {summary.PausedUntil:u} after {summary.Sent} of {summary.Total} sent: {summary.PauseReason}",
                SuggestedAction = $"Check the relay's reputation (Test-MailRelay -Relay {summary.Relay}) and the reply above; Resume-MailOpsSendJob -Name '{job.Name}' resumes before the pause ends.",
            };
            var dispatch = AlertSinks.CreateDispatcher(Config, this);
            if (dispatch == null)
            {
                return;
            }

            var deliveries = RunPumped(_ => dispatch(alert, CancellationToken));
            TrafficRuleSelection.ReportDeliveries(this, deliveries);
        }

        private sealed class Observer : ISendObserver
        {
            private readonly SendCmdletBase _cmdlet;
            private readonly CmdletSink _sink;
            private readonly string _job;

            public Observer(SendCmdletBase cmdlet, CmdletSink sink, string job)
            {
                _cmdlet = cmdlet;
                _sink = sink;
                _job = job;
            }

            public void Progress(int done, int total, double perSecond) => _sink.Post(() =>
            {
                var left = Math.Max(0, total - done);
                var record = new ProgressRecord(1, $"Sending job {_job}", $"{done} of {total}, {perSecond:0.0} messages/s")
                {
                    PercentComplete = total == 0 ? 100 : Math.Min(100, 100 * done / total),
                    SecondsRemaining = perSecond > 0 ? (int)(left / perSecond) : -1,
                };
                _cmdlet.WriteProgress(record);
            });

            public void Warning(string message) => _sink.Post(() => _cmdlet.WriteWarning(message));

            public void Verbose(string message) => _sink.Post(() => _cmdlet.WriteVerbose(message));
        }
    }

    /// <summary>
    /// Sends bulk or automated mail through the secondary relay: personalised per recipient, paced, retried, with a
    /// circuit breaker and a journal that makes every message go out once.
    /// </summary>
    [Cmdlet(VerbsCommunications.Send, "ViaSecondaryRelay", SupportsShouldProcess = true, DefaultParameterSetName = EmlSet)]
    [OutputType(typeof(SendJobSummary))]
    public sealed class SendViaSecondaryRelayCommand : SendCmdletBase
    {
        private const string ComposeSet = "Compose";
        private const string EmlSet = "Eml";

        /// <summary>Recipients: addresses, or objects with an Address/Email property and fields for the placeholders.</summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = ComposeSet)]
        [ValidateNotNull]
        public PSObject[] Recipient { get; set; } = Array.Empty<PSObject>();

        /// <summary>The property holding each recipient's address (default: Address, Email, EmailAddress, Recipient, Mail).</summary>
        [Parameter(ParameterSetName = ComposeSet)]
        [ValidateNotNullOrEmpty]
        public string? AddressProperty { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = ComposeSet)]
        [ValidateNotNullOrEmpty]
        public string From { get; set; } = "";

        [Parameter(ParameterSetName = ComposeSet)]
        [ValidateNotNullOrEmpty]
        public string? FromName { get; set; }

        [Parameter(ParameterSetName = ComposeSet)]
        [ValidateNotNullOrEmpty]
        public string? ReplyTo { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = ComposeSet)]
        [ValidateNotNullOrEmpty]
        public string Subject { get; set; } = "";

        [Parameter(ParameterSetName = ComposeSet)]
        public string? TextBody { get; set; }

        [Parameter(ParameterSetName = ComposeSet)]
        public string? HtmlBody { get; set; }

        [Parameter(ParameterSetName = ComposeSet)]
        [ValidateNotNullOrEmpty]
        public string[] Attachment { get; set; } = Array.Empty<string>();

        /// <summary>One-click unsubscribe URL (RFC 8058; placeholders allowed, their values URL-encoded).</summary>
        [Parameter(ParameterSetName = ComposeSet)]
        [ValidateNotNullOrEmpty]
        public string? UnsubscribeUrl { get; set; }

        /// <summary>Unsubscribe mailbox for List-Unsubscribe (mailto:).</summary>
        [Parameter(ParameterSetName = ComposeSet)]
        [ValidateNotNullOrEmpty]
        public string? UnsubscribeMailto { get; set; }

        /// <summary>Automated mail (Auto-Submitted: auto-generated) rather than bulk (Precedence: bulk, List-Unsubscribe). Default: from the flow's kind.</summary>
        [Parameter(ParameterSetName = ComposeSet)]
        public SwitchParameter Automated { get; set; }

        /// <summary>Ready messages (.eml): each is sent as it is to its To, Cc and Bcc recipients.</summary>
        [Parameter(Mandatory = true, ParameterSetName = EmlSet, ValueFromPipelineByPropertyName = true)]
        [Alias("FullName")]
        [ValidateNotNullOrEmpty]
        public string[] EmlPath { get; set; } = Array.Empty<string>();

        /// <summary>The job's name in the journal; the same name resumes it (default: from the message, so running the same command again never sends twice).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        [ValidatePattern(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
        public string? JobName { get; set; }

        private readonly List<SendRecipient> _recipients = new List<SendRecipient>();
        private readonly HashSet<string> _seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        private static readonly string[] AddressNames = { "Address", "Email", "EmailAddress", "E-mail", "Recipient", "Mail" };

        protected override void BeginProcessing()
        {
            LoadSendConfig();
            if (ParameterSetName == ComposeSet)
            {
                foreach (var (value, name) in new[] { (From, "From"), (ReplyTo, "ReplyTo") })
                {
                    if (value != null && !InputValidation.IsSafeAddress(value, out var why))
                    {
                        ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-{name} '{value}' is refused: {why}."), "UnsafeAddress", ErrorCategory.InvalidArgument, value));
                    }
                }

                foreach (var (value, name) in new[] { (Subject, "Subject"), (FromName, "FromName"), (UnsubscribeUrl, "UnsubscribeUrl"), (UnsubscribeMailto, "UnsubscribeMailto") })
                {
                    if (value != null && value.IndexOfAny(new[] { '\r', '\n', '\0' }) >= 0)
                    {
                        ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-{name} contains a line break: refused (header injection)."), "HeaderInjection", ErrorCategory.InvalidArgument, name));
                    }
                }

                if (TextBody == null && HtmlBody == null)
                {
                    ThrowTerminatingError(new ErrorRecord(new ArgumentException("Give -TextBody, -HtmlBody or both."), "NoBody", ErrorCategory.InvalidArgument, null));
                }

                if (UnsubscribeUrl != null && !UnsubscribeUrl.StartsWith("https://", StringComparison.OrdinalIgnoreCase) && !UnsubscribeUrl.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
                {
                    ThrowTerminatingError(new ErrorRecord(new ArgumentException("-UnsubscribeUrl must be an http(s) URL."), "InvalidUnsubscribeUrl", ErrorCategory.InvalidArgument, UnsubscribeUrl));
                }
            }
        }

        protected override void ProcessRecord()
        {
            if (ParameterSetName == EmlSet)
            {
                foreach (var p in EmlPath)
                {
                    var path = ToFileSystemPath(p);
                    try
                    {
                        var message = MimeKit.MimeMessage.Load(path);
                        foreach (var m in message.To.Mailboxes.Concat(message.Cc.Mailboxes).Concat(message.Bcc.Mailboxes))
                        {
                            if (_seen.Add(m.Address + "\u0001" + path))
                            {
                                _recipients.Add(new SendRecipient(m.Address, null, path));
                            }
                        }
                    }
                    catch (Exception e) when (e is IOException || e is FormatException || e is UnauthorizedAccessException)
                    {
                        WriteError(new ErrorRecord(e, "EmlUnreadable", ErrorCategory.ReadError, p) { ErrorDetails = new ErrorDetails($"'{p}' cannot be read as a message: {e.Message}") });
                    }
                }

                return;
            }

            foreach (var r in Recipient)
            {
                AddRecipient(r);
            }
        }

        private void AddRecipient(PSObject r)
        {
            string? address = null;
            var fields = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            if (r.BaseObject is string s)
            {
                address = s.Trim();
            }
            else
            {
                foreach (var p in r.Properties)
                {
                    if (p.IsGettable)
                    {
                        object? v;
                        try
                        {
                            v = p.Value;
                        }
                        catch (GetValueException)
                        {
                            continue;
                        }

                        if (v != null)
                        {
                            fields[p.Name] = v.ToString() ?? "";
                        }
                    }
                }

                var names = AddressProperty != null ? new[] { AddressProperty } : AddressNames;
                address = names.Select(n => fields.TryGetValue(n, out var a) ? a.Trim() : null).FirstOrDefault(a => !string.IsNullOrEmpty(a));
            }

            if (address == null)
            {
                WriteError(new ErrorRecord(new ArgumentException($"The recipient has no address property ({string.Join(", ", AddressProperty != null ? new[] { AddressProperty } : AddressNames)})."), "RecipientWithoutAddress", ErrorCategory.InvalidData, r));
                return;
            }

            if (!InputValidation.IsSafeAddress(address, out var why))
            {
                WriteError(new ErrorRecord(new ArgumentException($"'{address}' is refused: {why}."), "InvalidRecipient", ErrorCategory.InvalidData, address));
                return;
            }

            fields["Address"] = address;
            _placeholders ??= Personalizer.Names(Template());
            _headerPlaceholders ??= Personalizer.Names(new MessageTemplate { Subject = Subject, UnsubscribeUrl = UnsubscribeUrl, UnsubscribeMailto = UnsubscribeMailto });
            var missing = _placeholders.Where(n => !fields.ContainsKey(n)).ToList();
            if (missing.Count > 0)
            {
                WriteError(new ErrorRecord(new ArgumentException($"{address}: no value for {string.Join(", ", missing.Select(m => "{{" + m + "}}"))}; not sent."), "MissingPlaceholderValue", ErrorCategory.InvalidData, address));
                return;
            }

            foreach (var name in _headerPlaceholders)
            {
                if (fields[name].IndexOfAny(new[] { '\r', '\n' }) >= 0)
                {
                    WriteError(new ErrorRecord(new ArgumentException($"{address}: the value of {{{{{name}}}}} contains a line break and goes into a header: refused (header injection)."), "HeaderInjection", ErrorCategory.InvalidData, address));
                    return;
                }
            }

            if (!_seen.Add(address))
            {
                WriteVerbose($"{address} is given twice; it gets one message.");
                return;
            }

            _recipients.Add(new SendRecipient(address, fields));
        }

        private MessageTemplate? _template;
        private IReadOnlyList<string>? _placeholders;
        private IReadOnlyList<string>? _headerPlaceholders;

        private MessageTemplate Template()
        {
            if (_template != null)
            {
                return _template;
            }

            var flow = Flow != null ? Config?.FindFlow(Flow) : null;
            _template = ParameterSetName == EmlSet
                ? new MessageTemplate { FromEml = true, Subject = "(ready messages)", From = "mailops@localhost", Bulk = !Automated }
                : new MessageTemplate
                {
                    From = From,
                    FromName = FromName,
                    ReplyTo = ReplyTo,
                    Subject = Subject,
                    TextBody = TextBody,
                    HtmlBody = HtmlBody,
                    Attachments = Attachment.Select(ToFileSystemPath).ToList(),
                    UnsubscribeUrl = UnsubscribeUrl,
                    UnsubscribeMailto = UnsubscribeMailto,
                    Bulk = !Automated && !(flow != null && (flow.Kind == FlowKind.Automation || flow.Kind == FlowKind.Transactional)),
                };
            return _template;
        }

        protected override void EndProcessing()
        {
            if (_recipients.Count == 0)
            {
                WriteWarning("No recipient to send to.");
                return;
            }

            var template = Template();
            foreach (var a in template.Attachments)
            {
                if (!File.Exists(a))
                {
                    ThrowTerminatingError(new ErrorRecord(new FileNotFoundException($"The attachment '{a}' does not exist."), "AttachmentNotFound", ErrorCategory.ObjectNotFound, a));
                }
            }

            var relay = ResolveRelay(Relay, false);
            var failover = FailoverRelay != null ? ResolveRelay(FailoverRelay, true) : null;
            var name = JobName ?? "job-" + BounceStore.TemplateHash(template).Substring(0, 12);
            using (var store = OpenConfiguredStore())
            {
                if (MyInvocation.BoundParameters.TryGetValue("WhatIf", out var whatIf) && ((SwitchParameter)whatIf).IsPresent)
                {
                    var suppressed = RunPumped(_ => store.SuppressedAmongAsync(_recipients.Select(r => r.Address).ToList(), CancellationToken));
                    foreach (var r in _recipients)
                    {
                        var subject = template.FromEml ? Path.GetFileName(r.EmlPath) : Personalizer.Fill(template.Subject, r.Fields);
                        ShouldProcess(r.Address, suppressed.Contains(r.Address) ? "Skip (suppressed in the store)" : $"Send '{subject}' through {relay.Name} (job {name})");
                    }

                    WriteInformation(new HostInformationMessage { Message = $"Job {name}: {_recipients.Count} recipient(s), {suppressed.Count} suppressed, through {relay.Name}." }, new[] { "PSHOST" });
                    return;
                }

                if (!ShouldProcess($"{_recipients.Count} recipient(s) through {relay.Name}", $"Send job {name}"))
                {
                    return;
                }

                SendJobRecord job;
                try
                {
                    var (j, created, added) = RunPumped(_ => store.CreateOrOpenJobAsync(name, relay.Name, Flow, template, _recipients, CancellationToken));
                    job = j;
                    if (!created)
                    {
                        WriteVerbose($"The job '{name}' exists: resuming it ({added} new recipient(s) added).");
                    }
                }
                catch (InvalidOperationException e)
                {
                    ThrowTerminatingError(new ErrorRecord(e, "JobNameTaken", ErrorCategory.ResourceExists, name));
                    return;
                }

                if (job.State == SendJobStates.Paused && job.PausedUntil > DateTimeOffset.UtcNow)
                {
                    ThrowTerminatingError(new ErrorRecord(new InvalidOperationException($"The job '{name}' is paused until {job.PausedUntil:u}: {job.PauseReason}. Resume-MailOpsSendJob -Name '{name}' resumes it now."),
                        "JobPaused", ErrorCategory.ResourceBusy, name));
                }

                Run(store, job, Options(relay, failover, Flow));
            }
        }
    }

    /// <summary>Resumes a send job from its journal (after Ctrl+C, a killed process, a relay restart or a pause).</summary>
    [Cmdlet(VerbsLifecycle.Resume, "MailOpsSendJob", SupportsShouldProcess = true)]
    [OutputType(typeof(SendJobSummary))]
    public sealed class ResumeMailOpsSendJobCommand : SendCmdletBase
    {
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        public string Name { get; set; } = "";

        protected override void BeginProcessing() => LoadSendConfig();

        protected override void ProcessRecord()
        {
            using (var store = OpenConfiguredStore())
            {
                var job = RunPumped(_ => store.GetJobAsync(Name, CancellationToken));
                if (job == null)
                {
                    WriteError(new ErrorRecord(new ItemNotFoundException($"There is no send job '{Name}' in {store.Description}."), "JobNotFound", ErrorCategory.ObjectNotFound, Name));
                    return;
                }

                if (job.State == SendJobStates.Completed && job.Pending == 0)
                {
                    WriteVerbose($"The job '{Name}' is complete: nothing to send.");
                    WriteObject(new SendJobSummaryView(job));
                    return;
                }

                var paused = job.State == SendJobStates.Paused && job.PausedUntil > DateTimeOffset.UtcNow;
                if (!ShouldProcess($"job {Name} ({job.Pending} recipient(s) left{(paused ? $", paused until {job.PausedUntil:u}: {job.PauseReason}" : "")})", "Resume sending"))
                {
                    return;
                }

                var relay = ResolveRelay(Relay ?? job.Relay, false);
                var failover = FailoverRelay != null ? ResolveRelay(FailoverRelay, true) : null;
                Run(store, job, Options(relay, failover, job.Flow ?? Flow));
            }
        }
    }

    /// <summary>A job's state when there was nothing to run.</summary>
    public sealed class SendJobSummaryView
    {
        internal SendJobSummaryView(SendJobRecord job)
        {
            Name = job.Name;
            State = job.State;
            Counts = job.Counts;
        }

        public string Name { get; }
        public string State { get; }
        public IReadOnlyDictionary<string, int> Counts { get; }
    }

    /// <summary>Send jobs and their journals.</summary>
    [Cmdlet(VerbsCommon.Get, "MailOpsSendJob")]
    [OutputType(typeof(SendJobRecord), typeof(SendItem))]
    public sealed class GetMailOpsSendJobCommand : StoreAccessCmdlet
    {
        [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        public string? Name { get; set; }

        /// <summary>Output the journal's recipients (in these states, when given) instead of the jobs.</summary>
        [Parameter]
        [ValidateSet(SendItemStates.Pending, SendItemStates.InData, SendItemStates.Sent, SendItemStates.Deferred, SendItemStates.Failed, SendItemStates.Skipped, SendItemStates.PossiblyDuplicated)]
        public string[]? State { get; set; }

        [Parameter]
        public SwitchParameter Items { get; set; }

        protected override void ProcessRecord()
        {
            using (var store = OpenConfiguredStore())
            {
                var jobs = RunPumped(_ => store.ListJobsAsync(Name, CancellationToken));
                if (Name != null && jobs.Count == 0)
                {
                    WriteError(new ErrorRecord(new ItemNotFoundException($"There is no send job '{Name}' in {store.Description}."), "JobNotFound", ErrorCategory.ObjectNotFound, Name));
                    return;
                }

                foreach (var job in jobs)
                {
                    if (Items || State != null)
                    {
                        foreach (var item in RunPumped(_ => store.LoadItemsAsync(job.Name, State, CancellationToken)))
                        {
                            WriteObject(item);
                        }
                    }
                    else
                    {
                        WriteObject(job);
                    }
                }
            }
        }
    }
}
