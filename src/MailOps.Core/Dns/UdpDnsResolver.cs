using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Config;

namespace MailOps.Core.Dns
{
    /// <summary>
    /// A fast stub resolver for bulk lookups: a few long-lived connected UDP sockets per server, one receive loop each,
    /// queries multiplexed by a random 16-bit ID and matched on ID and question (a stray or spoofed datagram is ignored).
    /// RD set, EDNS0 advertising 1232 bytes; a truncated answer is asked again over TCP. Per attempt timeout, retries
    /// with a new ID on the next server (round-robin). No cache: the callers (<see cref="Providers.MailProviderResolver"/>)
    /// share lookups themselves.
    /// </summary>
    public sealed class UdpDnsResolver : IDnsResolver, IDisposable
    {
        private const ushort TypeA = 1, TypeNs = 2, TypeCname = 5, TypeSoa = 6, TypePtr = 12, TypeMx = 15, TypeTxt = 16, TypeAaaa = 28, TypeOpt = 41;
        private const int EdnsPayload = 1232;
        private const int MaxCnameChain = 16;
        private static readonly RandomNumberGenerator Rng = RandomNumberGenerator.Create();

        // completions of a pending query that are not a response (compared by reference)
        private static readonly byte[] TimedOut = new byte[1];
        private static readonly byte[] Closed = new byte[1];

        [ThreadStatic]
        private static byte[]? t_random;

        [ThreadStatic]
        private static int t_randomPos;

        [ThreadStatic]
        private static char[]? t_nameChars;

        private readonly Server[] _servers;
        private readonly ConcurrentDictionary<int, Pending> _pending = new ConcurrentDictionary<int, Pending>();
        private readonly TimeSpan _timeout;
        private readonly long _timeoutTicks;
        private readonly int _retries;
        private readonly Timer _sweeper;
        private int _nextServer;
        private long _queries;
        private volatile bool _disposed;

        public UdpDnsResolver(DnsConfig config)
        {
            if (config == null)
            {
                throw new ArgumentNullException(nameof(config));
            }

            var endpoints = config.Servers.Count > 0
                ? config.Servers.Select(s => new IPEndPoint(IPAddress.Parse(s.Address), s.Port)).ToList()
                : SystemServers();
            _timeout = TimeSpan.FromSeconds(Math.Max(1, config.TimeoutSeconds));
            _timeoutTicks = (long)(_timeout.TotalSeconds * Stopwatch.Frequency);
            _retries = Math.Max(0, config.Retries);
            Servers = endpoints.Select(e => e.ToString()).ToList();

            var socketsPerServer = Math.Min(4, Math.Max(2, Environment.ProcessorCount));
            var channel = 0;
            _servers = endpoints.Select(e => new Server(e, Enumerable.Range(0, socketsPerServer).Select(_ => new Channel(channel++)).ToArray())).ToArray();
            foreach (var server in _servers)
            {
                try
                {
                    foreach (var ch in server.Channels)
                    {
                        ch.Socket = new Socket(server.EndPoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
                        TrySetReceiveBuffer(ch.Socket);
                        ch.Socket.Connect(server.EndPoint);
                    }
                }
                catch (SocketException e)
                {
                    // this server cannot be asked (no IPv6, ...): its attempts fail with this message
                    server.Failure = $"cannot open a UDP socket to {server.EndPoint}: {e.Message}";
                    foreach (var ch in server.Channels)
                    {
                        ch.Socket?.Dispose();
                        ch.Socket = null;
                    }
                }
            }

            foreach (var ch in _servers.SelectMany(s => s.Channels).Where(c => c.Socket != null))
            {
                var c = ch;
                new Thread(() => ReceiveLoop(c)) { IsBackground = true, Name = "MailOps DNS receive " + c.Index.ToString(CultureInfo.InvariantCulture) }.Start();
            }

            var period = (int)Math.Min(100, Math.Max(10, _timeout.TotalMilliseconds / 20));
            _sweeper = new Timer(_ => Sweep(), null, period, period);
        }

        /// <summary>Lookups answered so far (any response received and read, NXDOMAIN and SERVFAIL included; failures not counted).</summary>
        public long QueryCount => Interlocked.Read(ref _queries);

        /// <summary>The servers asked, for messages.</summary>
        public IReadOnlyList<string> Servers { get; }

        /// <summary>Queries sent and not yet answered, timed out or cancelled (for tests and diagnostics).</summary>
        public int InFlight => _pending.Count;

        public Task<DnsResult<IPAddress>> QueryAddressesAsync(string name, bool ipv6, CancellationToken cancellationToken) =>
            QueryAsync(name, ipv6 ? TypeAaaa : TypeA, ReadAddress, cancellationToken);

        public Task<DnsResult<string>> QueryTxtAsync(string name, CancellationToken cancellationToken) =>
            QueryAsync(name, TypeTxt, ReadTxt, cancellationToken);

        public Task<DnsResult<MxRecord>> QueryMxAsync(string name, CancellationToken cancellationToken) =>
            QueryAsync(name, TypeMx, (m, pos, len) => len < 3 ? throw new MalformedException() : new MxRecord(U16(m, pos), ReadName(m, pos + 2)), cancellationToken);

        public Task<DnsResult<string>> QueryNsAsync(string name, CancellationToken cancellationToken) =>
            QueryAsync(name, TypeNs, (m, pos, len) => ReadName(m, pos), cancellationToken);

        public Task<DnsResult<string>> QueryPtrAsync(IPAddress address, CancellationToken cancellationToken) =>
            QueryAsync(DnsClientResolver.ReverseName(address), TypePtr, (m, pos, len) => ReadName(m, pos), cancellationToken);

        /// <summary>Closes the sockets; queries still waiting end with <see cref="DnsStatus.Error"/>.</summary>
        public void Dispose()
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _sweeper.Dispose();
            foreach (var ch in _servers.SelectMany(s => s.Channels))
            {
                ch.Socket?.Dispose();
            }

            foreach (var kv in _pending)
            {
                if (Remove(kv.Key, kv.Value))
                {
                    kv.Value.TrySetResult(Closed);
                }
            }
        }

        // ---------------------------------------------------------------- the exchange

        private async Task<DnsResult<T>> QueryAsync<T>(string name, ushort type, Func<byte[], int, int, T> read, CancellationToken cancellationToken)
            where T : class
        {
            cancellationToken.ThrowIfCancellationRequested();
            var typeName = TypeName(type);
            name = (name ?? "").Trim();
            if (_disposed)
            {
                return DnsResult<T>.Of(DnsStatus.Error, $"{name} {typeName}: the resolver is closed");
            }

            if (!TryBuildQuery(name, type, out var query, out var nameEnd, out var invalid))
            {
                return DnsResult<T>.Of(DnsStatus.Error, $"{name} {typeName}: {invalid}");
            }

            if (_servers.Length == 0)
            {
                return DnsResult<T>.Of(DnsStatus.Error, $"{name} {typeName}: no DNS server configured or found");
            }

            var start = (Interlocked.Increment(ref _nextServer) & int.MaxValue) % _servers.Length;
            var timedOut = false;
            string? failure = null;
            for (var attempt = 0; attempt <= _retries; attempt++)
            {
                var server = _servers[(start + attempt) % _servers.Length];
                var (response, problem) = await ExchangeUdpAsync(server, query, nameEnd, cancellationToken).ConfigureAwait(false);
                if (ReferenceEquals(response, Closed))
                {
                    return DnsResult<T>.Of(DnsStatus.Error, $"{name} {typeName}: the resolver was closed");
                }

                if (response != null && response.Length >= 12 && (response[2] & 0x02) != 0)
                {
                    // truncated (TC): the same question over TCP
                    (response, problem) = await ExchangeTcpAsync(server, query, nameEnd, cancellationToken).ConfigureAwait(false);
                }

                if (ReferenceEquals(response, TimedOut))
                {
                    timedOut = true;
                    continue;
                }

                if (response == null)
                {
                    failure = problem;
                    continue;
                }

                Interlocked.Increment(ref _queries);
                return Interpret(response, name, type, typeName, read);
            }

            return timedOut
                ? DnsResult<T>.Of(DnsStatus.Timeout, $"no answer from {string.Join(", ", Servers)} for {name} {typeName}")
                : DnsResult<T>.Of(DnsStatus.Error, $"{name} {typeName}: {failure}");
        }

        /// <summary>One UDP attempt: the response, or <see cref="TimedOut"/>/<see cref="Closed"/>, or null and why.</summary>
        private async Task<(byte[]? Response, string? Problem)> ExchangeUdpAsync(Server server, byte[] query, int nameEnd, CancellationToken cancellationToken)
        {
            if (server.Failure != null)
            {
                return (null, server.Failure);
            }

            var ch = server.Channels[(Interlocked.Increment(ref server.Next) & int.MaxValue) % server.Channels.Length];
            var pending = new Pending(query, nameEnd, cancellationToken);
            var key = 0;
            for (var tries = 0; ; tries++)
            {
                var id = NextId();
                key = (ch.Index << 16) | id;
                if (_pending.TryAdd(key, pending))
                {
                    query[0] = (byte)(id >> 8);
                    query[1] = (byte)id;
                    break;
                }

                if (tries > 1000)
                {
                    return (null, "too many queries in flight");
                }
            }

            pending.Key = key;
            pending.Deadline = Stopwatch.GetTimestamp() + _timeoutTicks;
            var registration = cancellationToken.CanBeCanceled
                ? cancellationToken.Register(s => ((UdpDnsResolver)((object[])s!)[0]).Cancel((Pending)((object[])s!)[1]), new object[] { this, pending })
                : default;
            try
            {
                if (_disposed)
                {
                    return (Closed, null);
                }

                try
                {
                    ch.Socket!.Send(query, 0, query.Length, SocketFlags.None);
                }
                catch (SocketException e)
                {
                    return (null, $"sending to {server.EndPoint}: {e.Message}");
                }
                catch (ObjectDisposedException)
                {
                    return (Closed, null);
                }

                var response = await pending.Task.ConfigureAwait(false);
                return (response, null);
            }
            finally
            {
                registration.Dispose();
                Remove(key, pending);
            }
        }

        private void Cancel(Pending pending)
        {
            if (Remove(pending.Key, pending))
            {
                pending.TrySetCanceled(pending.CancellationToken);
            }
        }

        /// <summary>Removes the entry only if the key still holds this query (an ID may have been reused since).</summary>
        private bool Remove(int key, Pending pending) =>
            ((ICollection<KeyValuePair<int, Pending>>)_pending).Remove(new KeyValuePair<int, Pending>(key, pending));

        private void Sweep()
        {
            if (_pending.IsEmpty)
            {
                return;
            }

            var now = Stopwatch.GetTimestamp();
            foreach (var kv in _pending)
            {
                if (kv.Value.Deadline <= now && Remove(kv.Key, kv.Value))
                {
                    kv.Value.TrySetResult(TimedOut);
                }
            }
        }

        /// <summary>
        /// A thread per socket in a blocking receive: measured here, it costs less CPU per answer than an async receive
        /// loop (no hand-off from the socket engine's epoll thread). The waiting query continues on the thread pool.
        /// </summary>
        private void ReceiveLoop(Channel ch)
        {
            var socket = ch.Socket!;
            var buffer = new byte[65536];
            var errors = 0;
            while (!_disposed)
            {
                int n;
                try
                {
                    n = socket.Receive(buffer, 0, buffer.Length, SocketFlags.None);
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                catch (SocketException)
                {
                    // ICMP unreachable and the like: the queries concerned time out
                    if (_disposed)
                    {
                        return;
                    }

                    if (++errors > 100)
                    {
                        Thread.Sleep(10);
                    }

                    continue;
                }

                errors = 0;
                Deliver(ch, buffer, n);
            }
        }

        private void Deliver(Channel ch, byte[] buffer, int length)
        {
            if (length < 12 || (buffer[2] & 0x80) == 0)
            {
                return; // not a DNS response
            }

            var key = (ch.Index << 16) | (buffer[0] << 8) | buffer[1];
            if (!_pending.TryGetValue(key, out var pending) || !QuestionMatches(buffer, length, pending.Query, pending.NameEnd))
            {
                return; // late, stray or spoofed
            }

            var copy = new byte[length];
            Buffer.BlockCopy(buffer, 0, copy, 0, length);
            if (Remove(key, pending))
            {
                pending.TrySetResult(copy);
            }
        }

        /// <summary>One question, the same name (ASCII case-insensitive), type and class as asked.</summary>
        private static bool QuestionMatches(byte[] response, int length, byte[] query, int nameEnd)
        {
            if (length < nameEnd + 4 || response[4] != 0 || response[5] != 1)
            {
                return false;
            }

            for (var i = 12; i < nameEnd; i++)
            {
                var a = response[i];
                var b = query[i];
                if (a != b && ToLower(a) != ToLower(b))
                {
                    return false;
                }
            }

            for (var i = nameEnd; i < nameEnd + 4; i++)
            {
                if (response[i] != query[i])
                {
                    return false;
                }
            }

            return true;
        }

        private async Task<(byte[]? Response, string? Problem)> ExchangeTcpAsync(Server server, byte[] query, int nameEnd, CancellationToken cancellationToken)
        {
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            using (var socket = new Socket(server.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true })
            using (timeout.Token.Register(s => ((Socket)s!).Dispose(), socket))
            {
                timeout.CancelAfter(_timeout);
                try
                {
                    await socket.ConnectAsync(server.EndPoint).ConfigureAwait(false);
                    var id = NextId();
                    var message = new byte[query.Length + 2];
                    message[0] = (byte)(query.Length >> 8);
                    message[1] = (byte)query.Length;
                    Buffer.BlockCopy(query, 0, message, 2, query.Length);
                    message[2] = (byte)(id >> 8);
                    message[3] = (byte)id;
                    for (var sent = 0; sent < message.Length;)
                    {
                        sent += await socket.SendAsync(new ArraySegment<byte>(message, sent, message.Length - sent), SocketFlags.None).ConfigureAwait(false);
                    }

                    var prefix = new byte[2];
                    await ReadExactlyAsync(socket, prefix).ConfigureAwait(false);
                    var response = new byte[(prefix[0] << 8) | prefix[1]];
                    await ReadExactlyAsync(socket, response).ConfigureAwait(false);
                    if (response.Length < 12 || (response[2] & 0x80) == 0 || ((response[0] << 8) | response[1]) != id
                        || !QuestionMatches(response, response.Length, query, nameEnd))
                    {
                        return (null, $"TCP answer from {server.EndPoint} does not match the question");
                    }

                    return (response, null);
                }
                catch (Exception e) when (e is SocketException || e is ObjectDisposedException || e is IOException)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    return timeout.IsCancellationRequested ? (TimedOut, null) : (null, $"TCP to {server.EndPoint}: {e.Message}");
                }
            }
        }

        private static async Task ReadExactlyAsync(Socket socket, byte[] buffer)
        {
            for (var read = 0; read < buffer.Length;)
            {
                var n = await socket.ReceiveAsync(new ArraySegment<byte>(buffer, read, buffer.Length - read), SocketFlags.None).ConfigureAwait(false);
                if (n == 0)
                {
                    throw new IOException("the server closed the connection");
                }

                read += n;
            }
        }

        // ---------------------------------------------------------------- messages

        /// <summary>Header (RD), one question, an OPT record; the name in wire form ends at <paramref name="nameEnd"/>.</summary>
        private static bool TryBuildQuery(string name, ushort type, out byte[] query, out int nameEnd, out string? invalid)
        {
            query = Array.Empty<byte>();
            nameEnd = 0;
            invalid = null;
            var ascii = name.TrimEnd('.');
            if (ascii.Any(c => c > 127))
            {
                try
                {
                    ascii = new IdnMapping().GetAscii(ascii);
                }
                catch (ArgumentException e)
                {
                    invalid = "not a valid domain name (" + e.Message + ")";
                    return false;
                }
            }

            var labels = ascii.Length == 0 ? Array.Empty<string>() : ascii.Split('.');
            var wireName = labels.Sum(l => l.Length + 1) + 1;
            if (wireName > 255 || labels.Any(l => l.Length == 0 || l.Length > 63))
            {
                invalid = "not a valid domain name";
                return false;
            }

            query = new byte[12 + wireName + 4 + 11];
            query[2] = 0x01; // RD
            query[5] = 1; // QDCOUNT
            query[11] = 1; // ARCOUNT (OPT)
            var pos = 12;
            foreach (var label in labels)
            {
                query[pos++] = (byte)label.Length;
                foreach (var c in label)
                {
                    query[pos++] = (byte)c;
                }
            }

            query[pos++] = 0;
            nameEnd = pos;
            query[pos++] = (byte)(type >> 8);
            query[pos++] = (byte)type;
            query[pos++] = 0;
            query[pos++] = 1; // IN

            // OPT: root name, type 41, class = UDP payload size, TTL 0 (no DO), no options
            query[pos++] = 0;
            query[pos++] = 0;
            query[pos++] = (byte)TypeOpt;
            query[pos++] = EdnsPayload >> 8;
            query[pos] = EdnsPayload & 0xFF;
            return true;
        }

        private static DnsResult<T> Interpret<T>(byte[] m, string name, ushort type, string typeName, Func<byte[], int, int, T> read)
            where T : class
        {
            try
            {
                var rcode = m[3] & 0x0F;
                var answers = U16(m, 6);
                var authority = U16(m, 8);
                var pos = SkipName(m, 12) + 4;
                if (pos > m.Length)
                {
                    throw new MalformedException();
                }

                if (rcode == 3)
                {
                    return new DnsResult<T>(DnsStatus.NxDomain, Array.Empty<T>(), $"{name} does not exist", NegativeTtl(m, pos, answers, authority));
                }

                if (rcode != 0)
                {
                    return DnsResult<T>.Of(DnsStatus.ServerFailure, $"{name} {typeName}: {RcodeName(rcode)}");
                }

                // the answer section: follow the CNAME chain from the question's name to the records asked for
                var rrs = new List<Rr>(answers);
                for (var i = 0; i < answers; i++)
                {
                    var rr = ReadRr(m, ref pos);
                    rrs.Add(rr);
                }

                var current = 12;
                var ttl = uint.MaxValue;
                var records = new List<T>();
                for (var step = 0; step <= MaxCnameChain; step++)
                {
                    var cname = -1;
                    foreach (var rr in rrs)
                    {
                        if (!NameEquals(m, rr.Owner, current))
                        {
                            continue;
                        }

                        if (rr.Type == type)
                        {
                            records.Add(read(m, rr.Data, rr.Length));
                            ttl = Math.Min(ttl, rr.Ttl);
                        }
                        else if (rr.Type == TypeCname && cname < 0)
                        {
                            cname = rr.Data;
                            ttl = Math.Min(ttl, rr.Ttl);
                        }
                    }

                    if (records.Count > 0 || cname < 0 || type == TypeCname)
                    {
                        break;
                    }

                    current = cname;
                }

                if (records.Count == 0)
                {
                    // pos is at the authority section
                    return new DnsResult<T>(DnsStatus.NoData, Array.Empty<T>(), $"{name} has no {typeName} record", NegativeTtl(m, pos, 0, authority));
                }

                return new DnsResult<T>(DnsStatus.Ok, records, null, TimeSpan.FromSeconds(ttl));
            }
            catch (Exception e) when (e is MalformedException || e is IndexOutOfRangeException || e is ArgumentException)
            {
                return DnsResult<T>.Of(DnsStatus.Error, $"{name} {typeName}: malformed response");
            }
        }

        /// <summary>RFC 2308: the smaller of the SOA record's TTL and its MINIMUM field, when a SOA is in the authority section.</summary>
        private static TimeSpan? NegativeTtl(byte[] m, int pos, int skip, int authority)
        {
            for (var i = 0; i < skip; i++)
            {
                ReadRr(m, ref pos);
            }

            for (var i = 0; i < authority; i++)
            {
                var rr = ReadRr(m, ref pos);
                if (rr.Type == TypeSoa)
                {
                    var p = SkipName(m, SkipName(m, rr.Data)) + 16;
                    if (p + 4 > rr.Data + rr.Length)
                    {
                        throw new MalformedException();
                    }

                    return TimeSpan.FromSeconds(Math.Min(rr.Ttl, Ttl(U32(m, p))));
                }
            }

            return null;
        }

        private static Rr ReadRr(byte[] m, ref int pos)
        {
            var owner = pos;
            pos = SkipName(m, pos);
            if (pos + 10 > m.Length)
            {
                throw new MalformedException();
            }

            var rr = new Rr { Owner = owner, Type = U16(m, pos), Ttl = Ttl(U32(m, pos + 4)), Length = U16(m, pos + 8), Data = pos + 10 };
            pos = rr.Data + rr.Length;
            if (pos > m.Length)
            {
                throw new MalformedException();
            }

            return rr;
        }

        /// <summary>RFC 2181 section 8: a TTL with the top bit set is read as zero.</summary>
        private static uint Ttl(uint ttl) => ttl > int.MaxValue ? 0 : ttl;

        private static IPAddress ReadAddress(byte[] m, int pos, int length)
        {
            if (length != 4 && length != 16)
            {
                throw new MalformedException();
            }

            var bytes = new byte[length];
            Buffer.BlockCopy(m, pos, bytes, 0, length);
            return new IPAddress(bytes);
        }

        /// <summary>A TXT record's character-strings concatenated (RFC 7208 section 3.3), read as UTF-8.</summary>
        private static string ReadTxt(byte[] m, int pos, int length)
        {
            var bytes = new byte[length];
            var n = 0;
            for (var p = pos; p < pos + length;)
            {
                var l = m[p];
                if (p + 1 + l > pos + length)
                {
                    throw new MalformedException();
                }

                Buffer.BlockCopy(m, p + 1, bytes, n, l);
                n += l;
                p += 1 + l;
            }

            return Encoding.UTF8.GetString(bytes, 0, n);
        }

        /// <summary>Where the name at <paramref name="pos"/> ends in place (after its terminating zero or pointer).</summary>
        private static int SkipName(byte[] m, int pos)
        {
            while (true)
            {
                if (pos >= m.Length)
                {
                    throw new MalformedException();
                }

                var l = m[pos];
                if (l == 0)
                {
                    return pos + 1;
                }

                if ((l & 0xC0) == 0xC0)
                {
                    if (pos + 2 > m.Length)
                    {
                        throw new MalformedException();
                    }

                    return pos + 2;
                }

                if ((l & 0xC0) != 0)
                {
                    throw new MalformedException();
                }

                pos += 1 + l;
            }
        }

        /// <summary>The next label of a name: follows pointers (at most 64 jumps); returns its offset, or -1 at the root.</summary>
        private static int NextLabel(byte[] m, ref int pos, ref int jumps)
        {
            while (true)
            {
                if (pos >= m.Length)
                {
                    throw new MalformedException();
                }

                var l = m[pos];
                if ((l & 0xC0) == 0xC0)
                {
                    if (pos + 1 >= m.Length || ++jumps > 64)
                    {
                        throw new MalformedException();
                    }

                    pos = ((l & 0x3F) << 8) | m[pos + 1];
                    continue;
                }

                if ((l & 0xC0) != 0)
                {
                    throw new MalformedException();
                }

                if (l == 0)
                {
                    return -1;
                }

                if (pos + 1 + l > m.Length)
                {
                    throw new MalformedException();
                }

                var label = pos;
                pos += 1 + l;
                return label;
            }
        }

        /// <summary>Two names of the message are the same (ASCII case-insensitive), compression followed.</summary>
        private static bool NameEquals(byte[] m, int a, int b)
        {
            int jumpsA = 0, jumpsB = 0;
            for (var labels = 0; labels < 128; labels++)
            {
                var la = NextLabel(m, ref a, ref jumpsA);
                var lb = NextLabel(m, ref b, ref jumpsB);
                if (la < 0 || lb < 0)
                {
                    return la < 0 && lb < 0;
                }

                if (m[la] != m[lb])
                {
                    return false;
                }

                for (var i = 1; i <= m[la]; i++)
                {
                    if (ToLower(m[la + i]) != ToLower(m[lb + i]))
                    {
                        return false;
                    }
                }
            }

            throw new MalformedException();
        }

        /// <summary>A name of the message without the trailing dot ("" for the root); odd bytes escaped as in zone files.</summary>
        private static string ReadName(byte[] m, int pos)
        {
            var chars = t_nameChars ??= new char[1024];
            var n = 0;
            var jumps = 0;
            var wire = 1;
            while (true)
            {
                var label = NextLabel(m, ref pos, ref jumps);
                if (label < 0)
                {
                    return new string(chars, 0, n);
                }

                wire += 1 + m[label];
                if (wire > 255)
                {
                    throw new MalformedException();
                }

                if (n > 0)
                {
                    chars[n++] = '.';
                }

                for (var i = 1; i <= m[label]; i++)
                {
                    var b = m[label + i];
                    if (b == (byte)'.' || b == (byte)'\\')
                    {
                        chars[n++] = '\\';
                        chars[n++] = (char)b;
                    }
                    else if (b <= 0x20 || b >= 0x7F)
                    {
                        chars[n++] = '\\';
                        chars[n++] = (char)('0' + (b / 100));
                        chars[n++] = (char)('0' + (b / 10 % 10));
                        chars[n++] = (char)('0' + (b % 10));
                    }
                    else
                    {
                        chars[n++] = (char)b;
                    }
                }
            }
        }

        private static byte ToLower(byte b) => b >= (byte)'A' && b <= (byte)'Z' ? (byte)(b | 0x20) : b;

        private static ushort U16(byte[] m, int pos) => (ushort)((m[pos] << 8) | m[pos + 1]);

        private static uint U32(byte[] m, int pos) => ((uint)m[pos] << 24) | ((uint)m[pos + 1] << 16) | ((uint)m[pos + 2] << 8) | m[pos + 3];

        private static string TypeName(ushort type) => type switch
        {
            TypeA => "A",
            TypeNs => "NS",
            TypeCname => "CNAME",
            TypeSoa => "SOA",
            TypePtr => "PTR",
            TypeMx => "MX",
            TypeTxt => "TXT",
            TypeAaaa => "AAAA",
            _ => "TYPE" + type.ToString(CultureInfo.InvariantCulture),
        };

        private static string RcodeName(int rcode) => rcode switch
        {
            1 => "FormatError",
            2 => "ServerFailure",
            4 => "NotImplemented",
            5 => "Refused",
            6 => "YXDomain",
            7 => "YXRRSet",
            8 => "NXRRSet",
            9 => "NotAuth",
            10 => "NotZone",
            _ => "RCODE " + rcode.ToString(CultureInfo.InvariantCulture),
        };

        /// <summary>A random query ID from a cryptographic generator (a spoofer must not guess it).</summary>
        private static int NextId()
        {
            var buffer = t_random;
            if (buffer == null || t_randomPos >= buffer.Length)
            {
                buffer = t_random ??= new byte[512];
                Rng.GetBytes(buffer);
                t_randomPos = 0;
            }

            var id = (buffer[t_randomPos] << 8) | buffer[t_randomPos + 1];
            t_randomPos += 2;
            return id;
        }

        // ---------------------------------------------------------------- servers

        /// <summary>The system's resolvers: /etc/resolv.conf's nameserver lines on Unix, the interfaces' DNS addresses elsewhere.</summary>
        private static List<IPEndPoint> SystemServers()
        {
            var found = new List<IPAddress>();
            if (!RuntimeInformation.IsOSPlatform(OSPlatform.Windows) && File.Exists("/etc/resolv.conf"))
            {
                try
                {
                    foreach (var line in File.ReadAllLines("/etc/resolv.conf"))
                    {
                        var parts = line.Split(new[] { ' ', '\t' }, StringSplitOptions.RemoveEmptyEntries);
                        if (parts.Length >= 2 && parts[0] == "nameserver" && IPAddress.TryParse(parts[1], out var ip))
                        {
                            found.Add(ip);
                        }
                    }
                }
                catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
                {
                    // fall back to the interfaces
                }
            }

            if (found.Count == 0)
            {
                try
                {
                    found.AddRange(NetworkInterface.GetAllNetworkInterfaces()
                        .Where(i => i.OperationalStatus == OperationalStatus.Up)
                        .SelectMany(i => i.GetIPProperties().DnsAddresses)
                        .Where(a => !a.IsIPv6SiteLocal)); // fec0:0:0:ffff::1..3, Windows' deprecated placeholders
                }
                catch (NetworkInformationException)
                {
                    // none found
                }
            }

            return found.Distinct().Select(a => new IPEndPoint(a, 53)).ToList();
        }

        private static void TrySetReceiveBuffer(Socket socket)
        {
            try
            {
                socket.ReceiveBufferSize = 1 << 20;
            }
            catch (SocketException)
            {
                // the system's default is kept
            }
        }

        private sealed class Server
        {
            public Server(IPEndPoint endPoint, Channel[] channels)
            {
                EndPoint = endPoint;
                Channels = channels;
            }

            public IPEndPoint EndPoint { get; }
            public Channel[] Channels { get; }
            public string? Failure { get; set; }

            public int Next; // a field: Interlocked needs it
        }

        private sealed class Channel
        {
            public Channel(int index)
            {
                Index = index;
            }

            /// <summary>The channel's number: IDs are unique per socket, the pending key is (channel, ID).</summary>
            public int Index { get; }
            public Socket? Socket { get; set; }
        }

        private sealed class Pending : TaskCompletionSource<byte[]>
        {

            public Pending(byte[] query, int nameEnd, CancellationToken cancellationToken)
                : base(TaskCreationOptions.RunContinuationsAsynchronously)
            {
                Query = query;
                NameEnd = nameEnd;
                CancellationToken = cancellationToken;
            }

            public byte[] Query { get; }
            public int NameEnd { get; }
            public CancellationToken CancellationToken { get; }
            public int Key { get; set; }
            public long Deadline { get; set; }
        }

        private struct Rr
        {
            public int Owner;
            public ushort Type;
            public uint Ttl;
            public int Length;
            public int Data;
        }

        private sealed class MalformedException : Exception
        {
        }
    }
}
