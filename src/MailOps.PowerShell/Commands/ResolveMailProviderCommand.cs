using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Text.RegularExpressions;
using MailOps.Core.Config;
using MailOps.Core.Dns;
using MailOps.Core.Providers;
using MailOps.Core.Store;

namespace MailOps.PowerShell.Commands
{
    /// <summary>Which provider hosts the mail and DNS of domains or addresses, with the evidence.</summary>
    [Cmdlet(VerbsDiagnostic.Resolve, "MailProvider")]
    [OutputType(typeof(MailProviderResult))]
    public sealed class ResolveMailProviderCommand : MailOpsCmdlet
    {
        private static readonly Regex DomainName = new Regex(@"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9-]{2,63}$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
        private const int BatchSize = 5000;

        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("Domain", "Address", "Recipient", "Email")]
        [ValidateNotNullOrEmpty]
        public string[] Name { get; set; } = Array.Empty<string>();

        /// <summary>Domains resolved at the same time.</summary>
        [Parameter]
        [ValidateRange(1, 1024)]
        public int MaxConcurrency { get; set; } = 64;

        /// <summary>Neither read nor write the store's cache of attributions.</summary>
        [Parameter]
        public SwitchParameter NoCache { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? ConfigPath { get; set; }

        [Parameter]
        [Credential]
        public PSCredential? StoreCredential { get; set; }

        private readonly List<string> _pending = new List<string>();
        private MailProviderResolver? _resolver;
        private UdpDnsResolver? _dns;
        private readonly System.Diagnostics.Stopwatch _clock = new System.Diagnostics.Stopwatch();
        private BounceStore? _store;
        private int _done;

        protected override void BeginProcessing()
        {
            var config = LoadOptionalConfig(ConfigPath);
            var dns = config?.Dns ?? DnsConfig.Default;
            _dns = new UdpDnsResolver(dns);
            _resolver = new MailProviderResolver(_dns, ProviderCatalog.For(config), dns.AsnZone, dns.AsnZone6);
            if (!NoCache)
            {
                _store = OpenStore(config, StoreCredential);
            }
        }

        protected override void ProcessRecord()
        {
            foreach (var n in Name)
            {
                var domain = MailProviderResolver.DomainOf(n);
                if (!DomainName.IsMatch(domain))
                {
                    WriteError(new ErrorRecord(new ArgumentException($"'{n}' is not a domain name or an e-mail address."), "InvalidDomainName", ErrorCategory.InvalidArgument, n));
                    continue;
                }

                _pending.Add(n);
                if (_pending.Count >= BatchSize)
                {
                    Flush();
                }
            }
        }

        protected override void EndProcessing()
        {
            Flush();
            WriteProgress(new ProgressRecord(1, "Resolving mail providers", "Done") { RecordType = ProgressRecordType.Completed });
            var seconds = Math.Max(0.001, _clock.Elapsed.TotalSeconds);
            WriteVerbose(string.Format(System.Globalization.CultureInfo.InvariantCulture, "Resolved {0} input(s) with {1} DNS lookup(s) in {2:0.00} s ({3:0} lookups/s) against {4}.",
                _done, _dns!.QueryCount, seconds, _dns.QueryCount / seconds, string.Join(", ", _dns.Servers)));
            _dns.Dispose();
            _store?.Dispose();
        }

        private void Flush()
        {
            if (_pending.Count == 0)
            {
                return;
            }

            var batch = _pending.ToList();
            _pending.Clear();
            var started = DateTime.UtcNow;
            _clock.Start();
            RunPumped(async sink =>
            {
                await _resolver!.ResolveManyAsync(batch, MaxConcurrency, _store, !NoCache, r => sink.Post(() =>
                {
                    _done++;
                    WriteObject(r);
                    if (_done % 100 == 0)
                    {
                        var rate = _done / Math.Max(0.001, (DateTime.UtcNow - started).TotalSeconds);
                        WriteProgress(new ProgressRecord(1, "Resolving mail providers", $"{_done} resolved, {rate:0} per second"));
                    }
                }), CancellationToken).ConfigureAwait(false);
                return true;
            });
            _clock.Stop();
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _dns?.Dispose();
                _store?.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
