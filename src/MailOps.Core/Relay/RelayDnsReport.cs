using System.Collections.Generic;

namespace MailOps.Core.Relay
{
    public sealed partial class RelayCheckResult
    {
        /// <summary>PTR, forward confirmation, SPF and DNSBL for the relay's address (null when DNS checks were not run).</summary>
        public RelayDnsReport? Dns { get; internal set; }
    }

    public sealed class RelayDnsReport
    {
        internal RelayDnsReport(string address, IReadOnlyList<string> ptrNames, bool? forwardConfirmed, string? spfDomain,
            Spf.SpfResult? spf,
            IReadOnlyList<DnsblReport> dnsbl)
        {
            Address = address;
            PtrNames = ptrNames;
            ForwardConfirmed = forwardConfirmed;
            SpfDomain = spfDomain;
            Spf = spf;
            Dnsbl = dnsbl;
        }

        /// <summary>The address checked (the relay's address, or -EgressAddress).</summary>
        public string Address { get; }
        public IReadOnlyList<string> PtrNames { get; }

        /// <summary>A PTR name resolves back to the address. Null: unknown (lookups failed).</summary>
        public bool? ForwardConfirmed { get; }
        public string? SpfDomain { get; }
        public Spf.SpfResult? Spf { get; }
        public IReadOnlyList<DnsblReport> Dnsbl { get; }
    }

}
