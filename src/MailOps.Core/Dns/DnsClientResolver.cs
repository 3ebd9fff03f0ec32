using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using DnsClient;
using DnsClient.Protocol;
using MailOps.Core.Config;

namespace MailOps.Core.Dns
{
    /// <summary>
    /// <see cref="IDnsResolver"/> on DnsClient.NET: the configured servers (or the system's), a timeout and retries per
    /// query, and every failure mapped to a status instead of an exception.
    /// </summary>
    public sealed class DnsClientResolver : IDnsResolver
    {
        private readonly LookupClient _client;

        public DnsClientResolver(DnsConfig config)
        {
            if (config == null)
            {
                throw new ArgumentNullException(nameof(config));
            }

            var options = config.Servers.Count > 0
                ? new LookupClientOptions(config.Servers.Select(s => new IPEndPoint(IPAddress.Parse(s.Address), s.Port)).ToArray())
                : new LookupClientOptions();
            options.Timeout = TimeSpan.FromSeconds(config.TimeoutSeconds);
            options.Retries = config.Retries;
            options.UseCache = true;
            options.ThrowDnsErrors = false;
            options.ContinueOnDnsError = false;
            options.ContinueOnEmptyResponse = false;
            options.UseTcpFallback = true;
            Servers = options.NameServers.Select(n => n.ToString()).ToList();
            _client = new LookupClient(options);
        }

        private long _queries;

        /// <summary>Lookups answered so far (sent, or answered from DnsClient's cache within the TTL; failures not counted).</summary>
        public long QueryCount => System.Threading.Interlocked.Read(ref _queries);

        /// <summary>The servers asked, for messages.</summary>
        public IReadOnlyList<string> Servers { get; }

        public Task<DnsResult<IPAddress>> QueryAddressesAsync(string name, bool ipv6, CancellationToken cancellationToken) =>
            QueryAsync(name, ipv6 ? QueryType.AAAA : QueryType.A, r => r is AddressRecord a ? a.Address : null, cancellationToken);

        public Task<DnsResult<string>> QueryTxtAsync(string name, CancellationToken cancellationToken) =>
            QueryAsync(name, QueryType.TXT, r => r is TxtRecord t ? string.Concat(t.Text) : null, cancellationToken);

        public Task<DnsResult<MxRecord>> QueryMxAsync(string name, CancellationToken cancellationToken) =>
            QueryAsync(name, QueryType.MX, r => r is DnsClient.Protocol.MxRecord m ? new MxRecord(m.Preference, Trim(m.Exchange.Value)) : null, cancellationToken);

        public Task<DnsResult<string>> QueryNsAsync(string name, CancellationToken cancellationToken) =>
            QueryAsync(name, QueryType.NS, r => r is NsRecord n ? Trim(n.NSDName.Value) : null, cancellationToken);

        public Task<DnsResult<string>> QueryPtrAsync(IPAddress address, CancellationToken cancellationToken) =>
            QueryAsync(ReverseName(address), QueryType.PTR, r => r is PtrRecord p ? Trim(p.PtrDomainName.Value) : null, cancellationToken);

        /// <summary>1.2.0.192.in-addr.arpa for 192.0.2.1; nibbles under ip6.arpa for IPv6.</summary>
        public static string ReverseName(IPAddress address)
        {
            if (address == null)
            {
                throw new ArgumentNullException(nameof(address));
            }

            if (address.IsIPv4MappedToIPv6)
            {
                address = address.MapToIPv4();
            }

            if (address.AddressFamily == AddressFamily.InterNetwork)
            {
                var b = address.GetAddressBytes();
                return $"{b[3]}.{b[2]}.{b[1]}.{b[0]}.in-addr.arpa";
            }

            var nibbles = address.GetAddressBytes().SelectMany(x => new[] { x >> 4, x & 0xF }).Reverse().Select(n => n.ToString("x", System.Globalization.CultureInfo.InvariantCulture));
            return string.Join(".", nibbles) + ".ip6.arpa";
        }

        private static string Trim(string name) => name.TrimEnd('.');

        private async Task<DnsResult<T>> QueryAsync<T>(string name, QueryType type, Func<DnsResourceRecord, T?> select, CancellationToken cancellationToken)
            where T : class
        {
            IDnsQueryResponse response;
            try
            {
                response = await _client.QueryAsync(name, type, QueryClass.IN, cancellationToken).ConfigureAwait(false);
                Interlocked.Increment(ref _queries);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (DnsResponseException e) when (e.Code == DnsResponseCode.ConnectionTimeout)
            {
                return DnsResult<T>.Of(DnsStatus.Timeout, $"no answer from {string.Join(", ", Servers)} for {name} {type}");
            }
            catch (DnsResponseException e)
            {
                return DnsResult<T>.Of(DnsStatus.Error, $"{name} {type}: {e.DnsError}");
            }
            catch (Exception e) when (e is SocketException || e is ArgumentException || e is InvalidOperationException || e is System.IO.IOException)
            {
                return DnsResult<T>.Of(DnsStatus.Error, $"{name} {type}: {e.Message}");
            }

            var code = (DnsResponseCode)response.Header.ResponseCode;
            if (code == DnsResponseCode.NotExistentDomain)
            {
                return DnsResult<T>.Of(DnsStatus.NxDomain, $"{name} does not exist");
            }

            if (code != DnsResponseCode.NoError)
            {
                return DnsResult<T>.Of(DnsStatus.ServerFailure, $"{name} {type}: {code}");
            }

            // the answer section may hold a CNAME chain before the records asked for
            var records = response.Answers.Where(r => r.RecordType == (ResourceRecordType)type).Select(select).Where(x => x != null).Select(x => x!).ToList();
            if (records.Count == 0)
            {
                return DnsResult<T>.Of(DnsStatus.NoData, $"{name} has no {type} record");
            }

            var ttl = response.Answers.Where(r => r.RecordType == (ResourceRecordType)type).Min(r => r.TimeToLive);
            return new DnsResult<T>(DnsStatus.Ok, records, null, TimeSpan.FromSeconds(ttl));
        }
    }
}
