using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Config;
using MailOps.Core.Dmarc;
using MailOps.Core.Dns;
using MailOps.Core.Inventory;
using MailOps.Core.Providers;
using MailOps.Core.Relay;
using MailOps.Core.Spf;

namespace MailOps.Core.Routing
{
    /// <summary>One check of a flow's move to another relay.</summary>
    public sealed class ReadinessCheck
    {
        internal ReadinessCheck(string name, bool? passed, string detail)
        {
            Name = name;
            Passed = passed;
            Detail = detail;
        }

        /// <summary>Relay, SPF, DKIM or DMARC.</summary>
        public string Name { get; }

        /// <summary>True, false, or null when it could not be told (a lookup or the relay check failed to answer).</summary>
        public bool? Passed { get; }
        public string Detail { get; }

        public override string ToString() => $"{Name}: {(Passed == null ? "unknown" : Passed.Value ? "ok" : "FAILED")} ({Detail})";
    }

    /// <summary>Whether a flow can move to a relay without its mail failing DMARC, and why.</summary>
    public sealed class FlowReadiness
    {
        internal FlowReadiness(string flow, string relay, IReadOnlyList<ReadinessCheck> checks, bool ready, string reason)
        {
            Flow = flow;
            Relay = relay;
            Checks = checks;
            Ready = ready;
            Reason = reason;
        }

        public string Flow { get; }
        public string Relay { get; }
        public IReadOnlyList<ReadinessCheck> Checks { get; }

        /// <summary>True when the move may go ahead: the relay works and the flow's mail would still pass DMARC.</summary>
        public bool Ready { get; }

        /// <summary>Why it is (or is not) ready, in one sentence.</summary>
        public string Reason { get; }

        public override string ToString() => $"{Flow} -> {Relay}: {(Ready ? "ready" : "REFUSED")} ({Reason})";
    }

    /// <summary>
    /// The readiness check before a flow moves to another relay (issue 9): the relay passes its own check (Test-MailRelay's
    /// probe), the SPF record of each sender domain authorises the relay's egress addresses, a DKIM key is published for the
    /// domain, and DMARC alignment holds (through SPF or DKIM). A flow whose mail would fail DMARC after the move, or
    /// whose checks cannot be answered, is refused with the reason; a lookup that fails is "unknown", never "no".
    /// </summary>
    public static class FlowMoveReadiness
    {
        /// <param name="relayCheck">The relay's check (RelayChecker.CheckOneAsync), or null to skip it (then said so).</param>
        public static async Task<FlowReadiness> CheckAsync(MailOpsConfig config, FlowConfig flow, RelayConfig target, IDnsResolver dns, ProviderCatalog catalog,
            Func<CancellationToken, Task<RelayCheckResult>>? relayCheck, CancellationToken cancellationToken)
        {
            if (config == null || flow == null || target == null || dns == null || catalog == null)
            {
                throw new ArgumentNullException(config == null ? nameof(config) : flow == null ? nameof(flow) : target == null ? nameof(target) : dns == null ? nameof(dns) : nameof(catalog));
            }

            var checks = new List<ReadinessCheck>();
            var reasons = new List<string>();
            var ready = true;

            // 1. the relay itself
            if (relayCheck != null)
            {
                var r = await relayCheck(cancellationToken).ConfigureAwait(false);
                var passed = r.Status != RelayStatus.Failed;
                var worst = r.Findings.OrderByDescending(f => f.Severity).FirstOrDefault();
                checks.Add(new ReadinessCheck("Relay", passed, $"relay '{target.Name}' is {r.Status}" + (worst != null ? $" ({worst.Message})" : "")));
                if (!passed)
                {
                    ready = false;
                    reasons.Add($"relay '{target.Name}' fails its check ({worst?.Message ?? r.Status.ToString()})");
                }
            }
            else
            {
                checks.Add(new ReadinessCheck("Relay", null, $"relay '{target.Name}' was not probed"));
            }

            var domains = flow.Senders.Select(FlowInventoryBuilder.SenderDomain).Where(d => d != null).Select(d => d!).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
            if (domains.Count == 0)
            {
                checks.Add(new ReadinessCheck("SPF", null, $"flow '{flow.Name}' names no sender domain (only client hosts): SPF, DKIM and DMARC cannot be checked"));
                return new FlowReadiness(flow.Name, target.Name, checks, false, $"flow '{flow.Name}' names no sender domain, so its DMARC alignment after the move cannot be checked");
            }

            IReadOnlyList<IPAddress> egress = target.Egress;
            if (egress.Count == 0)
            {
                if (IPAddress.TryParse(target.Host, out var ip))
                {
                    egress = new[] { ip };
                }
                else
                {
                    var a = await dns.QueryAddressesAsync(target.Host, false, cancellationToken).ConfigureAwait(false);
                    egress = a.IsOk ? a.Records : Array.Empty<IPAddress>();
                }
            }

            var evaluator = new SpfEvaluator(dns, new SpfOptions());
            foreach (var domain in domains)
            {
                var sender = flow.Senders.FirstOrDefault(s => s.IndexOf('@') > 0 && string.Equals(FlowInventoryBuilder.SenderDomain(s), domain, StringComparison.OrdinalIgnoreCase)) ?? "postmaster@" + domain;

                // 2. SPF for every egress address
                bool? spf = egress.Count == 0 ? (bool?)null : true;
                var spfDetail = new List<string>();
                if (egress.Count == 0)
                {
                    spfDetail.Add($"the egress address of relay '{target.Name}' is unknown (set 'egress:' on the relay)");
                }

                foreach (var ip in egress)
                {
                    var result = await evaluator.CheckHostAsync(ip, domain, sender, null, cancellationToken).ConfigureAwait(false);
                    spfDetail.Add($"{ip}: {result.Result.ToString().ToLowerInvariant()}");
                    if (result.Result == SpfResultKind.TempError)
                    {
                        spf = spf == false ? false : (bool?)null;
                    }
                    else if (result.Result != SpfResultKind.Pass)
                    {
                        spf = false;
                    }
                }

                checks.Add(new ReadinessCheck("SPF", spf, $"SPF of {domain} for relay '{target.Name}': {string.Join(", ", spfDetail)}"));

                // 3. DKIM
                var configured = config.Domains.Where(d => string.Equals(d.Name, domain, StringComparison.OrdinalIgnoreCase)).SelectMany(d => d.DkimSelectors).ToList();
                var probe = await new DkimSelectorProbe(dns, catalog).ProbeAsync(domain, configured, cancellationToken).ConfigureAwait(false);
                var keys = probe.Found.Where(k => k.IsUsable).Select(k => k.Selector).ToList();
                bool? dkim = keys.Count > 0 ? true : probe.Failed.Count > 0 ? (bool?)null : false;
                checks.Add(new ReadinessCheck("DKIM", dkim, dkim == true ? $"{domain} publishes selector(s) {string.Join(", ", keys)}" :
                    dkim == null ? $"the DKIM lookups of {domain} failed ({probe.Failed.Count})" : $"no DKIM key found at {domain} ({probe.Probed} selectors probed)"));

                // 4. DMARC alignment after the move
                var dmarc = await DmarcPolicyLookup.LookupAsync(dns, domain, cancellationToken).ConfigureAwait(false);
                bool? aligned = spf == true || dkim == true ? true : spf == null || dkim == null ? (bool?)null : false;
                string dmarcDetail;
                switch (dmarc.Status)
                {
                    case DmarcPolicyStatus.Found:
                        dmarcDetail = $"{domain} has p={dmarc.Record!.P.ToString().ToLowerInvariant()}; alignment after the move: " +
                            (aligned == true ? (spf == true ? "SPF" : "DKIM (if the relay's mail is signed)") : aligned == null ? "unknown" : "none");
                        break;
                    case DmarcPolicyStatus.Absent:
                        dmarcDetail = $"{domain} publishes no DMARC record (nothing is enforced, but nothing protects it either)";
                        break;
                    default:
                        dmarcDetail = $"the DMARC record of {domain} is {dmarc.Status} ({dmarc.Detail})";
                        aligned = dmarc.Status == DmarcPolicyStatus.Unknown ? null : aligned;
                        break;
                }

                checks.Add(new ReadinessCheck("DMARC", aligned, dmarcDetail));
                if (aligned == false)
                {
                    ready = false;
                    reasons.Add(dmarc.Status == DmarcPolicyStatus.Found
                        ? $"mail from {domain} through '{target.Name}' would fail DMARC: SPF of {domain} does not authorise {string.Join(", ", egress)} and no DKIM key is published"
                        : $"mail from {domain} through '{target.Name}' would fail SPF ({string.Join(", ", egress)} is not authorised) with no DKIM signature to fall back on");
                }
                else if (aligned == null)
                {
                    ready = false;
                    reasons.Add($"could not tell whether mail from {domain} through '{target.Name}' would pass DMARC (a lookup failed)");
                }
            }

            return new FlowReadiness(flow.Name, target.Name, checks, ready,
                ready ? $"relay '{target.Name}' works and the mail of '{flow.Name}' stays DMARC-aligned" : string.Join("; ", reasons));
        }
    }
}
