using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using MailOps.Core.Config;
using MailOps.Core.Dns;
using MailOps.Core.Relay;

namespace MailOps.PowerShell.Commands
{
    [Cmdlet(VerbsDiagnostic.Test, "MailRelay", DefaultParameterSetName = ServerSet)]
    [OutputType(typeof(RelayCheckResult), typeof(bool))]
    public sealed class TestMailRelayCommand : MailOpsCmdlet
    {
        private const string ServerSet = "Server";
        private const string RelaySet = "Relay";
        private const string AllSet = "All";
        private readonly List<RelayCheckOptions> _targets = new List<RelayCheckOptions>();
        private MailOpsConfig? _config;
        private bool _configLoaded;

        [Parameter(Mandatory = true, Position = 0, ParameterSetName = ServerSet, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("Host", "HostName", "ComputerName")]
        [ValidateNotNullOrEmpty]
        public string[] Server { get; set; } = Array.Empty<string>();

        [Parameter(ParameterSetName = ServerSet, ValueFromPipelineByPropertyName = true)]
        [ValidateRange(1, 65535)]
        public int Port { get; set; }

        [Parameter(ParameterSetName = ServerSet, ValueFromPipelineByPropertyName = true)]
        public SmtpSecurity Security { get; set; } = SmtpSecurity.Auto;

        [Parameter(Mandatory = true, Position = 0, ParameterSetName = RelaySet)]
        [ArgumentCompleter(typeof(RelayNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string[] Relay { get; set; } = Array.Empty<string>();

        [Parameter(Mandatory = true, ParameterSetName = AllSet)]
        public SwitchParameter All { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? ConfigPath { get; set; }

        [Parameter]
        [Credential]
        public PSCredential? Credential { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? From { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[] To { get; set; } = Array.Empty<string>();

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? HeloName { get; set; }

        [Parameter]
        [ValidateRange(1, 600)]
        public int TimeoutSeconds { get; set; }

        [Parameter]
        public RelayStage StopAfter { get; set; }

        [Parameter]
        public SwitchParameter SendTestMessage { get; set; }

        [Parameter]
        public SwitchParameter SkipCertificateCheck { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? TrustedCaFile { get; set; }

        [Parameter]
        public SwitchParameter AllowAuthWithoutTls { get; set; }

        [Parameter]
        public SwitchParameter SkipOpenRelayCheck { get; set; }

        [Parameter]
        public SwitchParameter SkipDnsCheck { get; set; }

        [Parameter]
        public IPAddress? EgressAddress { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[] DnsblZone { get; set; } = Array.Empty<string>();

        [Parameter]
        [ValidateRange(1, 64)]
        public int ThrottleLimit { get; set; } = 8;

        [Parameter]
        public SwitchParameter Quiet { get; set; }

        protected override void BeginProcessing()
        {
            foreach (var address in To.Concat(From == null ? Array.Empty<string>() : new[] { From }))
            {
                if (!InputValidation.IsSafeAddress(address, out var why))
                {
                    ThrowTerminatingError(new ErrorRecord(new ArgumentException($"'{address}' is not usable as an address: {why}"), "InvalidAddress", ErrorCategory.InvalidArgument, address));
                }
            }

            if (HeloName != null && !InputValidation.IsSafeHeloName(HeloName))
            {
                ThrowTerminatingError(new ErrorRecord(new ArgumentException($"'{HeloName}' is not a host name usable in EHLO."), "InvalidHeloName", ErrorCategory.InvalidArgument, HeloName));
            }

            if (ParameterSetName != ServerSet)
            {
                _config = LoadConfig(ConfigPath, terminating: true);
                _configLoaded = true;
            }
        }

        protected override void ProcessRecord()
        {
            switch (ParameterSetName)
            {
                case ServerSet:
                    if (!_configLoaded)
                    {
                        _config = LoadOptionalConfig(ConfigPath);
                        _configLoaded = true;
                    }

                    foreach (var server in Server)
                    {
                        var (host, port) = SplitHostPort(server);
                        if (host.Length == 0 || host.IndexOfAny(new[] { ' ', '\r', '\n', '/' }) >= 0)
                        {
                            WriteError(new ErrorRecord(new ArgumentException($"'{server}' is not a host name, an address or host:port."), "InvalidServer", ErrorCategory.InvalidArgument, server));
                            continue;
                        }

                        var effectivePort = Port > 0 ? Port : port ?? (Security == SmtpSecurity.SslOnConnect ? 465 : 587);
                        var o = NewOptions(null, host, effectivePort, Security);
                        if (Credential != null)
                        {
                            o.Credential = Credential.GetNetworkCredential();
                        }

                        _targets.Add(o);
                    }

                    break;
                case RelaySet:
                    foreach (var pattern in Relay)
                    {
                        var wildcard = WildcardPattern.Get(pattern, WildcardOptions.IgnoreCase);
                        var found = _config!.Relays.Where(r => wildcard.IsMatch(r.Name)).ToList();
                        if (found.Count == 0)
                        {
                            WriteError(new ErrorRecord(new ItemNotFoundException($"No relay named '{pattern}' in {_config.Path}. Relays: {string.Join(", ", _config.Relays.Select(r => r.Name))}."),
                                "RelayNotFound", ErrorCategory.ObjectNotFound, pattern));
                        }

                        found.ForEach(AddConfiguredRelay);
                    }

                    break;
                default:
                    foreach (var r in _config!.Relays)
                    {
                        AddConfiguredRelay(r);
                    }

                    break;
            }
        }

        protected override void EndProcessing()
        {
            if (_targets.Count == 0)
            {
                if (Quiet)
                {
                    WriteObject(false);
                }

                return;
            }

            var dns = SkipDnsCheck && _targets.All(t => IPAddress.TryParse(t.Host, out _)) ? null : new DnsClientResolver(_config?.Dns ?? DnsConfig.Default);
            var done = 0;
            var results = RunPumped(sink =>
            {
                foreach (var t in _targets)
                {
                    t.Transcript = line => sink.Post(() => WriteVerbose(line));
                }

                return RelayChecker.CheckAsync(_targets, ThrottleLimit, dns, r => sink.Post(() =>
                {
                    done++;
                    WriteProgress(new ProgressRecord(1, "Test-MailRelay", $"{done} of {_targets.Count} relays checked; last: {r.Relay} {r.Status}")
                    {
                        PercentComplete = 100 * done / _targets.Count,
                    });
                }), CancellationToken);
            });
            WriteProgress(new ProgressRecord(1, "Test-MailRelay", "Done") { RecordType = ProgressRecordType.Completed });

            if (Quiet)
            {
                WriteObject(results.All(r => r.Status == RelayStatus.Healthy));
                return;
            }

            foreach (var r in results)
            {
                WriteObject(r);
            }
        }

        private void AddConfiguredRelay(RelayConfig relay)
        {
            var o = NewOptions(relay.Name, relay.Host, relay.Port, relay.Security);
            o.HeloName = HeloName ?? relay.HeloName;
            if (TimeoutSeconds == 0)
            {
                o.Timeout = TimeSpan.FromSeconds(relay.TimeoutSeconds);
            }

            o.SkipCertificateCheck = SkipCertificateCheck || relay.SkipCertificateCheck;
            o.AllowAuthWithoutTls = AllowAuthWithoutTls || relay.AllowAuthWithoutTls;
            if (TrustedCaFile == null && relay.CaFile != null)
            {
                o.TrustedCaCertificates = LoadCaFile(relay.CaFile, relay.Name);
            }

            if (Credential != null)
            {
                o.Credential = Credential.GetNetworkCredential();
            }
            else if (relay.Credential != null && (!MyInvocation.BoundParameters.ContainsKey(nameof(StopAfter)) || StopAfter >= RelayStage.Auth))
            {
                var credential = CredentialResolver.Resolve(this, relay.Credential, _config?.SecretVault, out var error);
                if (credential != null)
                {
                    o.Credential = credential.GetNetworkCredential();
                }
                else
                {
                    WriteError(error!);
                }
            }

            _targets.Add(o);
        }

        private RelayCheckOptions NewOptions(string? name, string host, int port, SmtpSecurity security)
        {
            var o = new RelayCheckOptions
            {
                Name = name,
                Host = host,
                Port = port,
                Security = security,
                HeloName = HeloName,
                Timeout = TimeSpan.FromSeconds(TimeoutSeconds > 0 ? TimeoutSeconds : 30),
                From = From,
                To = To,
                SendTestMessage = SendTestMessage,
                SkipCertificateCheck = SkipCertificateCheck,
                AllowAuthWithoutTls = AllowAuthWithoutTls,
                CheckOpenRelay = !SkipOpenRelayCheck,
                CheckDns = !SkipDnsCheck,
                EgressAddress = EgressAddress,
                DnsblZones = DnsblZone.Length > 0 ? DnsblZone : _config?.Dns.DnsblZones ?? DnsConfig.DefaultDnsblZones,
            };
            if (MyInvocation.BoundParameters.ContainsKey(nameof(StopAfter)))
            {
                o.StopAfter = StopAfter;
            }

            if (TrustedCaFile != null)
            {
                o.TrustedCaCertificates = LoadCaFile(ToFileSystemPath(TrustedCaFile), TrustedCaFile);
            }

            return o;
        }

        private IReadOnlyList<X509Certificate2> LoadCaFile(string path, string target)
        {
            try
            {
                var collection = new X509Certificate2Collection();
                collection.Import(path);
                if (collection.Count == 0)
                {
                    throw new InvalidDataException($"'{path}' holds no certificate.");
                }

                return collection.Cast<X509Certificate2>().ToList();
            }
            catch (Exception e) when (e is IOException || e is System.Security.Cryptography.CryptographicException || e is UnauthorizedAccessException || e is InvalidDataException)
            {
                ThrowTerminatingError(new ErrorRecord(e, "CaFileUnreadable", ErrorCategory.ReadError, target)
                {
                    ErrorDetails = new ErrorDetails($"The CA certificate file '{path}' cannot be read: {e.Message}"),
                });
                return Array.Empty<X509Certificate2>();
            }
        }

        /// <summary>host, host:port, [v6]:port; a bare IPv6 address has no port.</summary>
        internal static (string Host, int? Port) SplitHostPort(string server)
        {
            server = server.Trim();
            if (server.StartsWith("[", StringComparison.Ordinal))
            {
                var close = server.IndexOf(']');
                if (close > 0)
                {
                    var host = server.Substring(1, close - 1);
                    var rest = server.Substring(close + 1);
                    return rest.StartsWith(":", StringComparison.Ordinal) && int.TryParse(rest.Substring(1), out var p6) ? (host, p6) : (host, null);
                }
            }

            if (server.Count(c => c == ':') == 1)
            {
                var i = server.IndexOf(':');
                if (int.TryParse(server.Substring(i + 1), out var p) && p > 0 && p < 65536)
                {
                    return (server.Substring(0, i), p);
                }
            }

            return (server, null);
        }
    }
}
