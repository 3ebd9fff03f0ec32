using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Dns;
using MailOps.Core.Spf;

namespace MailOps.Core.Relay
{
    /// <summary>
    /// Checks relays: for each, the SMTP conversation and the open-relay test run at the same time, then the DNS checks
    /// of the relay's address (PTR and forward confirmation, SPF of the sender domain, DNSBL listings). Several relays are
    /// checked in parallel, at most <c>throttle</c> at once; results come back in the order given.
    /// </summary>
    public static class RelayChecker
    {
        public static async Task<IReadOnlyList<RelayCheckResult>> CheckAsync(IReadOnlyList<RelayCheckOptions> relays, int throttle,
            IDnsResolver? dns, Action<RelayCheckResult>? completed, CancellationToken cancellationToken)
        {
            if (relays == null)
            {
                throw new ArgumentNullException(nameof(relays));
            }

            using (var gate = new SemaphoreSlim(Math.Max(1, throttle)))
            {
                var tasks = relays.Select(async o =>
                {
                    await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
                    try
                    {
                        var r = await CheckOneAsync(o, dns, cancellationToken).ConfigureAwait(false);
                        completed?.Invoke(r);
                        return r;
                    }
                    finally
                    {
                        gate.Release();
                    }
                }).ToList();
                return await Task.WhenAll(tasks).ConfigureAwait(false);
            }
        }

        public static async Task<RelayCheckResult> CheckOneAsync(RelayCheckOptions o, IDnsResolver? dns, CancellationToken cancellationToken)
        {
            if (o == null)
            {
                throw new ArgumentNullException(nameof(o));
            }

            var sw = Stopwatch.StartNew();
            var result = new RelayCheckResult(o.Label, o.Host, o.Port, o.Security.ToString());
            var probe = new RelayProbe(o, dns, result).RunAsync(cancellationToken);
            Task<OpenRelayReport>? open = null;
            if (o.CheckOpenRelay)
            {
                open = Task.Run(async () =>
                {
                    var addresses = IPAddress.TryParse(o.Host, out var ip) ? new[] { ip } : await AddressesAsync(o.Host, dns, cancellationToken).ConfigureAwait(false);
                    return addresses.Count == 0
                        ? new OpenRelayReport(null, o.OpenRelayRecipient, "the relay's address is unknown", null)
                        : await OpenRelayProbe.RunAsync(o, addresses, cancellationToken).ConfigureAwait(false);
                }, cancellationToken);
            }

            await probe.ConfigureAwait(false);
            if (open != null)
            {
                var report = await open.ConfigureAwait(false);
                result.OpenRelay = report;
                OpenRelayProbe.AddFindings(result, report);
            }

            if (o.CheckDns && dns != null)
            {
                var address = o.EgressAddress ?? (result.Address != null ? IPAddress.Parse(result.Address) : null);
                if (address != null)
                {
                    result.Dns = await RelayDnsCheck.RunAsync(o, address, dns, result, cancellationToken).ConfigureAwait(false);
                }
            }

            result.Timings.Total = sw.Elapsed.TotalMilliseconds;
            return result;
        }

        private static async Task<IReadOnlyList<IPAddress>> AddressesAsync(string host, IDnsResolver? dns, CancellationToken cancel)
        {
            if (dns == null)
            {
                try
                {
                    return await System.Net.Dns.GetHostAddressesAsync(host).ConfigureAwait(false);
                }
                catch (SocketException)
                {
                    return Array.Empty<IPAddress>();
                }
            }

            var v4 = await dns.QueryAddressesAsync(host, false, cancel).ConfigureAwait(false);
            var v6 = await dns.QueryAddressesAsync(host, true, cancel).ConfigureAwait(false);
            return v4.Records.Concat(v6.Records).ToList();
        }
    }

    /// <summary>PTR and forward confirmation, SPF, DNSBL for the relay's (egress) address.</summary>
    internal static class RelayDnsCheck
    {
        public static async Task<RelayDnsReport> RunAsync(RelayCheckOptions o, IPAddress address, IDnsResolver dns, RelayCheckResult result, CancellationToken cancel)
        {
            var ptrTask = dns.QueryPtrAsync(address, cancel);
            var from = o.From;
            var spfDomain = from != null && from.Contains("@") ? from.Substring(from.LastIndexOf('@') + 1) : null;
            var spfTask = spfDomain == null
                ? Task.FromResult<SpfResult?>(null)
                : CheckSpfAsync(dns, address, spfDomain, from!, o.HeloName, cancel);
            var dnsblTasks = address.AddressFamily == AddressFamily.InterNetwork
                ? o.DnsblZones.Select(z => DnsblAsync(dns, address, z, cancel)).ToList()
                : new List<Task<DnsblReport>>();

            var ptr = await ptrTask.ConfigureAwait(false);
            var names = ptr.Records.ToList();
            bool? confirmed = null;
            if (ptr.IsAbsent)
            {
                confirmed = false;
                result.Add(FindingSeverity.Warning, "NoPtr", null, $"{address} has no PTR record: many receivers distrust mail from an address without reverse DNS.");
            }
            else if (ptr.IsUnknown)
            {
                result.Add(FindingSeverity.Warning, "PtrUnknown", null, $"The PTR lookup of {address} failed ({ptr}): reverse DNS is unknown.");
            }
            else
            {
                var anyUnknown = false;
                confirmed = false;
                foreach (var name in names.Take(10))
                {
                    var forward = await dns.QueryAddressesAsync(name, address.AddressFamily == AddressFamily.InterNetworkV6, cancel).ConfigureAwait(false);
                    if (forward.Records.Any(a => a.Equals(address)))
                    {
                        confirmed = true;
                        break;
                    }

                    anyUnknown |= forward.IsUnknown;
                }

                if (confirmed == false && anyUnknown)
                {
                    confirmed = null;
                    result.Add(FindingSeverity.Warning, "ForwardConfirmationUnknown", null, $"Whether {string.Join(", ", names)} resolves back to {address} is unknown: the lookup failed.");
                }
                else if (confirmed == false)
                {
                    result.Add(FindingSeverity.Warning, "PtrNotForwardConfirmed", null, $"{address} points to {string.Join(", ", names)}, which does not resolve back to {address} (no forward-confirmed reverse DNS).");
                }
            }

            var spf = await spfTask.ConfigureAwait(false);
            if (spf != null)
            {
                AddSpfFinding(result, spf, address, spfDomain!);
            }

            var dnsbl = new List<DnsblReport>();
            foreach (var t in dnsblTasks)
            {
                var d = await t.ConfigureAwait(false);
                dnsbl.Add(d);
                if (d.Listed == true)
                {
                    result.Add(FindingSeverity.Error, "DnsblListed", null, $"{address} is listed on {d.Zone} ({d.Codes}){(d.Text != null ? ": " + d.Text : "")}. Receivers that use this list will refuse its mail.");
                }
                else if (d.Listed == null)
                {
                    result.Add(FindingSeverity.Warning, "DnsblUnknown", null, $"Whether {address} is listed on {d.Zone} is unknown: {d.Text}.");
                }
            }

            return new RelayDnsReport(address.ToString(), names, confirmed, spfDomain, spf, dnsbl);
        }

        private static async Task<SpfResult?> CheckSpfAsync(IDnsResolver dns, IPAddress address, string domain, string sender, string? helo, CancellationToken cancel)
        {
            var evaluator = new SpfEvaluator(dns, new SpfOptions());
            return await evaluator.CheckHostAsync(address, domain, sender, helo, cancel).ConfigureAwait(false);
        }

        private static void AddSpfFinding(RelayCheckResult result, SpfResult spf, IPAddress address, string domain)
        {
            var why = string.IsNullOrEmpty(spf.Reason) ? "" : ": " + spf.Reason;
            switch (spf.Result)
            {
                case SpfResultKind.Pass:
                    result.Add(FindingSeverity.Info, "SpfPass", null, $"The SPF policy of {domain} authorises {address}{(spf.Mechanism != null ? $" ({spf.Mechanism})" : "")}.");
                    break;
                case SpfResultKind.Fail:
                    result.Add(FindingSeverity.Error, "SpfFail", null, $"The SPF policy of {domain} does not authorise {address} (fail){why}. Receivers will reject or junk its mail for {domain}: add the relay to the SPF record.");
                    break;
                case SpfResultKind.SoftFail:
                case SpfResultKind.Neutral:
                    result.Add(FindingSeverity.Warning, "SpfNotAuthorised", null, $"The SPF policy of {domain} does not authorise {address} ({spf.Result.ToString().ToLowerInvariant()}){why}.");
                    break;
                case SpfResultKind.None:
                    result.Add(FindingSeverity.Warning, "SpfNone", null, $"{domain} publishes no SPF policy{why}.");
                    break;
                case SpfResultKind.TempError:
                    result.Add(FindingSeverity.Warning, "SpfUnknown", null, $"The SPF result for {domain} is unknown (temperror){why}.");
                    break;
                default:
                    result.Add(FindingSeverity.Error, "SpfPermError", null, $"The SPF policy of {domain} is broken (permerror){why}: receivers may treat its mail as unauthenticated.");
                    break;
            }
        }


        private static async Task<DnsblReport> DnsblAsync(IDnsResolver dns, IPAddress address, string zone, CancellationToken cancel)
        {
            var b = address.GetAddressBytes();
            var name = $"{b[3]}.{b[2]}.{b[1]}.{b[0]}.{zone}";
            var a = await dns.QueryAddressesAsync(name, false, cancel).ConfigureAwait(false);
            if (a.IsAbsent)
            {
                return new DnsblReport(zone, false, null, null);
            }

            if (a.IsUnknown)
            {
                return new DnsblReport(zone, null, null, a.ToString());
            }

            // 127.0.0.0/8 answers are listings; Spamhaus answers 127.255.255.x to refused or malformed queries (not a listing)
            var codes = a.Records.Select(x => x.ToString()).ToList();
            if (codes.All(c => c.StartsWith("127.255.255.", StringComparison.Ordinal)))
            {
                return new DnsblReport(zone, null, string.Join(", ", codes), "the list refused the query (" + string.Join(", ", codes) + "), for example because it was asked through a public resolver");
            }

            if (!codes.Any(c => c.StartsWith("127.", StringComparison.Ordinal)))
            {
                return new DnsblReport(zone, null, string.Join(", ", codes), "the list answered with addresses outside 127.0.0.0/8, which is not a listing (wildcard DNS or a hijacked zone)");
            }

            var txt = await dns.QueryTxtAsync(name, cancel).ConfigureAwait(false);
            return new DnsblReport(zone, true, string.Join(", ", codes), txt.IsOk ? string.Join(" ", txt.Records) : null);
        }
    }
}
