using System;
using System.Collections.Generic;
using System.Net;
using System.Threading;
using System.Threading.Tasks;

namespace MailOps.Core.Dns
{
    /// <summary>
    /// The outcome of one DNS query. An answer that did not come (timeout, SERVFAIL, network error) is never the same
    /// as "no such record": callers must treat <see cref="IsUnknown"/> as "unknown", never as "no".
    /// </summary>
    public enum DnsStatus
    {
        /// <summary>The name exists and has records of the type asked (Records is not empty).</summary>
        Ok,

        /// <summary>The name does not exist (RCODE 3).</summary>
        NxDomain,

        /// <summary>The name exists but has no record of that type.</summary>
        NoData,

        /// <summary>The server said SERVFAIL (or REFUSED, or another error code).</summary>
        ServerFailure,

        /// <summary>No answer within the timeout, after the configured retries.</summary>
        Timeout,

        /// <summary>The query could not be made (no network, malformed name, ...).</summary>
        Error,
    }

    public sealed class DnsResult<T>
    {
        public DnsResult(DnsStatus status, IReadOnlyList<T> records, string? detail = null, TimeSpan? ttl = null)
        {
            Status = status;
            Records = records;
            Detail = detail;
            Ttl = ttl;
        }

        public DnsStatus Status { get; }
        public IReadOnlyList<T> Records { get; }

        /// <summary>The server's error or the exception message, for humans.</summary>
        public string? Detail { get; }

        /// <summary>The smallest TTL of the answer (or of the SOA for a negative answer), when known.</summary>
        public TimeSpan? Ttl { get; }

        public bool IsOk => Status == DnsStatus.Ok;

        /// <summary>The name or the records definitely do not exist.</summary>
        public bool IsAbsent => Status == DnsStatus.NxDomain || Status == DnsStatus.NoData;

        /// <summary>Nothing is known: the lookup failed.</summary>
        public bool IsUnknown => Status == DnsStatus.ServerFailure || Status == DnsStatus.Timeout || Status == DnsStatus.Error;

        public static DnsResult<T> Of(DnsStatus status, string? detail = null) => new DnsResult<T>(status, Array.Empty<T>(), detail);

        public override string ToString() => IsOk ? string.Join(", ", Records) : Status + (Detail != null ? ": " + Detail : "");
    }

    /// <summary>An MX record: preference and exchange host (without the trailing dot).</summary>
    public sealed class MxRecord
    {
        public MxRecord(int preference, string exchange)
        {
            Preference = preference;
            Exchange = exchange;
        }

        public int Preference { get; }
        public string Exchange { get; }

        public override string ToString() => $"{Preference} {Exchange}";
    }

    /// <summary>
    /// The DNS queries MailOps makes. Names are given without a trailing dot; returned host names have none. CNAMEs are
    /// followed by the implementation (as a recursive resolver does). Implementations never throw for DNS outcomes:
    /// they return a status; only cancellation throws (OperationCanceledException).
    /// </summary>
    public interface IDnsResolver
    {
        /// <summary>A records (<paramref name="ipv6"/> false) or AAAA records (true).</summary>
        Task<DnsResult<IPAddress>> QueryAddressesAsync(string name, bool ipv6, CancellationToken cancellationToken);

        /// <summary>TXT records, each record's character-strings concatenated (RFC 7208 section 3.3).</summary>
        Task<DnsResult<string>> QueryTxtAsync(string name, CancellationToken cancellationToken);

        Task<DnsResult<MxRecord>> QueryMxAsync(string name, CancellationToken cancellationToken);

        Task<DnsResult<string>> QueryNsAsync(string name, CancellationToken cancellationToken);

        /// <summary>PTR records of the reverse name of <paramref name="address"/> (in-addr.arpa or ip6.arpa).</summary>
        Task<DnsResult<string>> QueryPtrAsync(IPAddress address, CancellationToken cancellationToken);
    }
}
