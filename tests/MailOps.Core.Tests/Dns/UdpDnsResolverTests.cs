using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Config;
using MailOps.Core.Dns;
using Xunit;

namespace MailOps.Core.Tests.Dns
{
    /// <summary>
    /// UdpDnsResolver against a real nsd (started by the fixture on a free loopback port) and, for what a real server
    /// cannot do (never answer, answer the wrong question), against small fake UDP servers in the test.
    /// </summary>
    public sealed class UdpDnsResolverTests : IClassFixture<UdpDnsResolverTests.Nsd>
    {
        private const int Names = 5000;
        private readonly Nsd _nsd;

        public UdpDnsResolverTests(Nsd nsd)
        {
            _nsd = nsd;
        }

        private static DnsConfig Config(int port, int timeoutSeconds = 2, int retries = 1) =>
            new DnsConfig(new[] { new DnsServerEndpoint("127.0.0.1", port) }, timeoutSeconds, retries, Array.Empty<string>());

        [NsdFact]
        public async Task Answers_are_the_same_as_DnsClient_for_MX_NS_A_AAAA_TXT_PTR()
        {
            _nsd.EnsureStarted();
            using var udp = new UdpDnsResolver(Config(_nsd.Port));
            var reference = new DnsClientResolver(Config(_nsd.Port));
            var ct = CancellationToken.None;

            static string Show<T>(DnsResult<T> r) => r.Status + ": " + string.Join(" | ", r.Records.Select(x => x!.ToString()).OrderBy(x => x, StringComparer.Ordinal));

            foreach (var name in new[] { "mail.udp.test", "udp.test", "nodata.udp.test", "none.udp.test" })
            {
                Assert.Equal(Show(await reference.QueryMxAsync(name, ct)), Show(await udp.QueryMxAsync(name, ct)));
                Assert.Equal(Show(await reference.QueryNsAsync(name, ct)), Show(await udp.QueryNsAsync(name, ct)));
                Assert.Equal(Show(await reference.QueryTxtAsync(name, ct)), Show(await udp.QueryTxtAsync(name, ct)));
            }

            foreach (var name in new[] { "mx1.udp.test", "mx2.udp.test", "alias.udp.test", "alias2.udp.test" })
            {
                Assert.Equal(Show(await reference.QueryAddressesAsync(name, false, ct)), Show(await udp.QueryAddressesAsync(name, false, ct)));
                Assert.Equal(Show(await reference.QueryAddressesAsync(name, true, ct)), Show(await udp.QueryAddressesAsync(name, true, ct)));
            }

            var ptr = await udp.QueryPtrAsync(IPAddress.Parse("192.0.2.1"), ct);
            Assert.Equal(Show(await reference.QueryPtrAsync(IPAddress.Parse("192.0.2.1"), ct)), Show(ptr));
            Assert.Equal(new[] { "mx1.udp.test" }, ptr.Records);

            var mx = await udp.QueryMxAsync("mail.udp.test", ct);
            Assert.Equal(DnsStatus.Ok, mx.Status);
            Assert.Equal(new[] { "10 mx1.udp.test", "20 mx2.udp.test" }, mx.Records.Select(r => r.ToString()).OrderBy(x => x));
            Assert.Equal(TimeSpan.FromSeconds(3600), mx.Ttl);

            // the character-strings of one TXT record are concatenated; two records stay two
            var txt = await udp.QueryTxtAsync("txt.udp.test", ct);
            Assert.Equal(new[] { "second", "v=spf1 include:_spf.example.com -all" }, txt.Records.OrderBy(x => x, StringComparer.Ordinal));

            // a CNAME chain (alias2 -> alias -> mx1) is followed to the addresses; the TTL is the chain's smallest
            var a = await udp.QueryAddressesAsync("alias2.udp.test", false, ct);
            Assert.Equal(new[] { "192.0.2.1", "192.0.2.2" }, a.Records.Select(x => x.ToString()).OrderBy(x => x));
            Assert.Equal(TimeSpan.FromSeconds(60), a.Ttl);

            Assert.Equal(new[] { "2001:db8::2" }, (await udp.QueryAddressesAsync("mx2.udp.test", true, ct)).Records.Select(x => x.ToString()));
            Assert.True(udp.QueryCount > 0);
            Assert.Equal(new[] { "127.0.0.1:" + _nsd.Port }, udp.Servers);
        }

        [NsdFact]
        public async Task NxDomain_and_NoData_are_told_apart_with_the_SOA_TTL()
        {
            _nsd.EnsureStarted();
            using var udp = new UdpDnsResolver(Config(_nsd.Port));
            var nx = await udp.QueryMxAsync("absent.udp.test", CancellationToken.None);
            Assert.Equal(DnsStatus.NxDomain, nx.Status);
            Assert.Equal(TimeSpan.FromSeconds(300), nx.Ttl); // min(SOA TTL 3600, MINIMUM 300)

            var nodata = await udp.QueryMxAsync("nodata.udp.test", CancellationToken.None);
            Assert.Equal(DnsStatus.NoData, nodata.Status);
            Assert.Equal(TimeSpan.FromSeconds(300), nodata.Ttl);
            Assert.Empty(nodata.Records);

            // a CNAME to a name without the type asked: no data
            Assert.Equal(DnsStatus.NoData, (await udp.QueryMxAsync("alias.udp.test", CancellationToken.None)).Status);
        }

        [NsdFact]
        public async Task A_zone_the_server_does_not_serve_is_refused_which_is_a_server_failure()
        {
            _nsd.EnsureStarted();
            using var udp = new UdpDnsResolver(Config(_nsd.Port));
            var r = await udp.QueryMxAsync("example.org", CancellationToken.None);
            Assert.Equal(DnsStatus.ServerFailure, r.Status);
            Assert.Contains("Refused", r.Detail, StringComparison.Ordinal);
        }

        [NsdFact]
        public async Task A_truncated_answer_is_asked_again_over_TCP()
        {
            _nsd.EnsureStarted();
            using var udp = new UdpDnsResolver(Config(_nsd.Port));
            var r = await udp.QueryTxtAsync("big.udp.test", CancellationToken.None);
            Assert.Equal(DnsStatus.Ok, r.Status);
            Assert.Equal(40, r.Records.Count); // 40 x 100 bytes: far more than 1232
            var reference = await new DnsClientResolver(Config(_nsd.Port)).QueryTxtAsync("big.udp.test", CancellationToken.None);
            Assert.Equal(reference.Records.OrderBy(x => x, StringComparer.Ordinal), r.Records.OrderBy(x => x, StringComparer.Ordinal));
        }

        [NsdFact]
        public async Task Five_thousand_concurrent_queries_each_get_their_own_answer()
        {
            _nsd.EnsureStarted();
            using var udp = new UdpDnsResolver(Config(_nsd.Port, timeoutSeconds: 5, retries: 2));
            var results = await Task.WhenAll(Enumerable.Range(0, Names).Select(i => udp.QueryMxAsync($"d{i}.udp.test", CancellationToken.None)));
            for (var i = 0; i < Names; i++)
            {
                Assert.Equal(DnsStatus.Ok, results[i].Status);
                Assert.Equal($"{i % 50} m{i}.udp.test", Assert.Single(results[i].Records).ToString());
            }

            Assert.Equal(0, udp.InFlight);
        }

        [Fact]
        public async Task A_server_that_never_answers_times_out_after_the_retries()
        {
            using var silent = new FakeServer((_, _) => Array.Empty<byte[]>());
            using var udp = new UdpDnsResolver(Config(silent.Port, timeoutSeconds: 1, retries: 1));
            var sw = Stopwatch.StartNew();
            var r = await udp.QueryMxAsync("example.com", CancellationToken.None);
            sw.Stop();
            Assert.Equal(DnsStatus.Timeout, r.Status);
            Assert.InRange(sw.Elapsed.TotalSeconds, 1.9, 2 + 1.5); // TimeoutSeconds * (Retries + 1), plus slack
            Assert.Equal(2, silent.Received); // the first try and one retry
            Assert.Equal(2, silent.Ids.Distinct().Count()); // the retry has a new ID
            Assert.Equal(0, udp.InFlight);
            Assert.Equal(0, udp.QueryCount);
        }

        [Fact]
        public async Task Cancellation_throws_and_leaves_nothing_in_flight()
        {
            using var silent = new FakeServer((_, _) => Array.Empty<byte[]>());
            using var udp = new UdpDnsResolver(Config(silent.Port, timeoutSeconds: 10, retries: 0));
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            var sw = Stopwatch.StartNew();
            var queries = Enumerable.Range(0, 100).Select(i => udp.QueryTxtAsync($"n{i}.example.com", cts.Token)).ToList();
            foreach (var q in queries)
            {
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => q);
            }

            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(3), sw.Elapsed.ToString());
            Assert.Equal(0, udp.InFlight);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => udp.QueryMxAsync("example.com", cts.Token)); // already cancelled
        }

        [Fact]
        public async Task Dispose_ends_the_pending_queries_with_Error()
        {
            using var silent = new FakeServer((_, _) => Array.Empty<byte[]>());
            var udp = new UdpDnsResolver(Config(silent.Port, timeoutSeconds: 10, retries: 0));
            var q = udp.QueryMxAsync("example.com", CancellationToken.None);
            await silent.WaitReceivedAsync(1);
            udp.Dispose();
            var r = await q.WaitAsync(TimeSpan.FromSeconds(2));
            Assert.Equal(DnsStatus.Error, r.Status);
            Assert.Equal(DnsStatus.Error, (await udp.QueryMxAsync("example.com", CancellationToken.None)).Status);
        }

        [Fact]
        public async Task Fake_server_A_response_with_the_wrong_question_or_ID_is_ignored_and_the_right_one_taken()
        {
            // a real server cannot produce this: the fake one answers first for another name (same ID), then with
            // another ID, then correctly
            using var server = new FakeServer((query, _) =>
            {
                var wrongName = Answer(query, "10 evil.example.net");
                wrongName[13] = (byte)'x'; // first letter of the question's name
                var wrongId = Answer(query, "10 evil.example.net");
                wrongId[1] ^= 0x5A;
                var notResponse = Answer(query, "10 evil.example.net");
                notResponse[2] &= 0x7F; // QR clear
                return new[] { wrongName, wrongId, notResponse, Answer(query, "10 mx.example.com") };
            });
            using var udp = new UdpDnsResolver(Config(server.Port));
            var r = await udp.QueryMxAsync("example.com", CancellationToken.None);
            Assert.Equal(DnsStatus.Ok, r.Status);
            Assert.Equal("10 mx.example.com", Assert.Single(r.Records).ToString());
        }

        [Fact]
        public async Task Fake_server_A_malformed_answer_to_the_right_question_is_an_Error()
        {
            using var server = new FakeServer((query, _) =>
            {
                var a = Answer(query, "10 mx.example.com");
                return new[] { a.Take(a.Length - 5).ToArray() }; // the record's data cut short
            });
            using var udp = new UdpDnsResolver(Config(server.Port));
            var r = await udp.QueryMxAsync("example.com", CancellationToken.None);
            Assert.Equal(DnsStatus.Error, r.Status);
            Assert.Contains("malformed", r.Detail, StringComparison.Ordinal);
        }

        [Fact]
        public async Task Fake_server_The_query_has_RD_one_question_and_an_EDNS0_OPT_of_1232_bytes()
        {
            byte[]? seen = null;
            using var server = new FakeServer((query, _) =>
            {
                seen = query;
                return new[] { Answer(query, "10 mx.example.com") };
            });
            using var udp = new UdpDnsResolver(Config(server.Port));
            Assert.Equal(DnsStatus.Ok, (await udp.QueryMxAsync("Example.COM", CancellationToken.None)).Status);
            Assert.NotNull(seen);
            Assert.Equal(0x01, seen![2] & 0x01); // RD
            Assert.Equal(new byte[] { 0, 1, 0, 0, 0, 0, 0, 1 }, seen.Skip(4).Take(8)); // QD 1, AN 0, NS 0, AR 1
            var opt = seen.Skip(seen.Length - 11).ToArray();
            Assert.Equal(new byte[] { 0, 0, 41, 1232 >> 8, 1232 & 0xFF, 0, 0, 0, 0, 0, 0 }, opt);
        }

        /// <summary>A response to <paramref name="query"/> (question copied) with one MX record "pref host".</summary>
        private static byte[] Answer(byte[] query, string mx)
        {
            var nameEnd = 12;
            while (query[nameEnd] != 0)
            {
                nameEnd += query[nameEnd] + 1;
            }

            var questionEnd = nameEnd + 5;
            var parts = mx.Split(' ');
            var rdata = new List<byte> { 0, byte.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture) };
            foreach (var label in parts[1].Split('.'))
            {
                rdata.Add((byte)label.Length);
                rdata.AddRange(Encoding.ASCII.GetBytes(label));
            }

            rdata.Add(0);
            var m = new List<byte>(query.Take(questionEnd));
            m[2] = 0x81; // QR, RD
            m[3] = 0x80; // RA, NOERROR
            m[7] = 1; // AN 1
            m[11] = 0; // AR 0
            m.AddRange(new byte[] { 0xC0, 12, 0, 15, 0, 1, 0, 0, 0x0E, 0x10, 0, (byte)rdata.Count });
            m.AddRange(rdata);
            return m.ToArray();
        }

        /// <summary>A UDP server on loopback that answers each query with what the handler returns (nothing: silent).</summary>
        private sealed class FakeServer : IDisposable
        {
            private readonly UdpClient _udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
            private readonly CancellationTokenSource _stop = new CancellationTokenSource();
            private readonly List<int> _ids = new List<int>();
            private int _received;

            public FakeServer(Func<byte[], int, byte[][]> handler)
            {
                Port = ((IPEndPoint)_udp.Client.LocalEndPoint!).Port;
                _ = Task.Run(async () =>
                {
                    while (!_stop.IsCancellationRequested)
                    {
                        UdpReceiveResult got;
                        try
                        {
                            got = await _udp.ReceiveAsync(_stop.Token);
                        }
                        catch (Exception e) when (e is OperationCanceledException || e is ObjectDisposedException || e is SocketException)
                        {
                            return;
                        }

                        var n = Interlocked.Increment(ref _received);
                        lock (_ids)
                        {
                            _ids.Add((got.Buffer[0] << 8) | got.Buffer[1]);
                        }

                        foreach (var reply in handler(got.Buffer, n))
                        {
                            await _udp.SendAsync(reply, reply.Length, got.RemoteEndPoint);
                        }
                    }
                });
            }

            public int Port { get; }
            public int Received => Volatile.Read(ref _received);

            public IReadOnlyList<int> Ids
            {
                get
                {
                    lock (_ids)
                    {
                        return _ids.ToList();
                    }
                }
            }

            public async Task WaitReceivedAsync(int n)
            {
                for (var i = 0; i < 200 && Received < n; i++)
                {
                    await Task.Delay(10);
                }
            }

            public void Dispose()
            {
                _stop.Cancel();
                _udp.Dispose();
                _stop.Dispose();
            }
        }

        /// <summary>A throwaway nsd on a free loopback port serving udp.test and 2.0.192.in-addr.arpa.</summary>
        public sealed class Nsd : IDisposable
        {
            private readonly object _gate = new object();
            private Process? _process;
            private string? _dir;

            public int Port { get; private set; }

            public static string? Executable { get; } = FindNsd();

            private static string? FindNsd()
            {
                var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator).Concat(new[] { "/usr/sbin", "/usr/local/sbin" });
                return dirs.Where(d => d.Length > 0).Select(d => Path.Combine(d, "nsd")).FirstOrDefault(File.Exists);
            }

            /// <summary>Starts nsd the first time a test needs it (the fake-server tests never do).</summary>
            public void EnsureStarted()
            {
                lock (_gate)
                {
                    if (_process != null)
                    {
                        return;
                    }

                    Start();
                }
            }

            private void Start()
            {
                _dir = Path.Combine(Path.GetTempPath(), "mailops-udpdns-" + Guid.NewGuid().ToString("N").Substring(0, 8));
                Directory.CreateDirectory(_dir);
                var l = new TcpListener(IPAddress.Loopback, 0);
                l.Start();
                Port = ((IPEndPoint)l.LocalEndpoint).Port;
                l.Stop();

                const string soa = "@ IN SOA ns1.udp.test. hostmaster.udp.test. ( 1 3600 600 86400 300 )\n";
                var zone = new StringBuilder("$ORIGIN udp.test.\n$TTL 3600\n" + soa);
                zone.Append("@ IN NS ns1.udp.test.\n@ IN NS ns2.other.test.\nns1 IN A 127.0.0.1\n");
                zone.Append("mail IN MX 10 mx1.udp.test.\nmail IN MX 20 mx2.udp.test.\n");
                zone.Append("mx1 IN A 192.0.2.1\nmx1 IN A 192.0.2.2\nmx2 IN AAAA 2001:db8::2\n");
                zone.Append("alias 60 IN CNAME mx1\nalias2 IN CNAME alias\n");
                zone.Append("txt IN TXT \"v=spf1 \" \"include:_spf.example.com \" \"-all\"\ntxt IN TXT \"second\"\n");
                zone.Append("nodata IN A 192.0.2.9\n");
                for (var i = 0; i < 40; i++)
                {
                    zone.Append("big IN TXT \"").Append(i.ToString("00", System.Globalization.CultureInfo.InvariantCulture)).Append(new string('x', 98)).Append("\"\n");
                }

                for (var i = 0; i < Names; i++)
                {
                    zone.Append('d').Append(i).Append(" IN MX ").Append(i % 50).Append(" m").Append(i).Append(".udp.test.\n");
                }

                File.WriteAllText(Path.Combine(_dir, "udp.test.zone"), zone.ToString());
                File.WriteAllText(Path.Combine(_dir, "rev.zone"), "$ORIGIN 2.0.192.in-addr.arpa.\n$TTL 3600\n" + soa + "@ IN NS ns1.udp.test.\n1 IN PTR mx1.udp.test.\n");
                File.WriteAllText(Path.Combine(_dir, "nsd.conf"),
                    $"server:\n    ip-address: 127.0.0.1@{Port}\n    port: {Port}\n    username: \"\"\n    chroot: \"\"\n    zonesdir: \"{_dir}\"\n    database: \"\"\n" +
                    $"    zonelistfile: \"{_dir}/zone.list\"\n    xfrdfile: \"{_dir}/xfrd.state\"\n    pidfile: \"{_dir}/nsd.pid\"\n    logfile: \"{_dir}/nsd.log\"\n" +
                    "    server-count: 1\n    verbosity: 0\n    rrl-ratelimit: 0\n    rrl-whitelist-ratelimit: 0\nremote-control:\n    control-enable: no\n" +
                    "zone:\n    name: udp.test\n    zonefile: \"udp.test.zone\"\nzone:\n    name: 2.0.192.in-addr.arpa\n    zonefile: \"rev.zone\"\n");

                // -d: in the foreground, so that the fixture owns the process and ends it
                _process = Process.Start(new ProcessStartInfo(Executable!, $"-d -c \"{_dir}/nsd.conf\"") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true })!;
                _process.OutputDataReceived += (_, _) => { };
                _process.ErrorDataReceived += (_, _) => { };
                _process.BeginOutputReadLine();
                _process.BeginErrorReadLine();
                var probe = new DnsClientResolver(new DnsConfig(new[] { new DnsServerEndpoint("127.0.0.1", Port) }, 1, 0, Array.Empty<string>()));
                var deadline = DateTime.UtcNow.AddSeconds(30);
                while (DateTime.UtcNow < deadline)
                {
                    if (_process.HasExited)
                    {
                        throw new InvalidOperationException("nsd exited: " + (File.Exists(Path.Combine(_dir, "nsd.log")) ? File.ReadAllText(Path.Combine(_dir, "nsd.log")) : "no log"));
                    }

                    if (probe.QueryMxAsync("mail.udp.test", CancellationToken.None).GetAwaiter().GetResult().IsOk)
                    {
                        return;
                    }

                    Thread.Sleep(100);
                }

                throw new InvalidOperationException("nsd did not answer within 30 s on port " + Port);
            }

            public void Dispose()
            {
                if (_process != null)
                {
                    try
                    {
                        _process.Kill(entireProcessTree: true);
                        _process.WaitForExit(5000);
                    }
                    catch (InvalidOperationException)
                    {
                        // already gone
                    }

                    _process.Dispose();
                }

                if (_dir != null)
                {
                    try
                    {
                        Directory.Delete(_dir, true);
                    }
                    catch (IOException)
                    {
                        // nsd may still hold a file for a moment
                    }
                }
            }
        }
    }

    /// <summary>A fact skipped, loudly, when nsd is not installed (it needs a real DNS server).</summary>
    public sealed class NsdFactAttribute : FactAttribute
    {
        public NsdFactAttribute()
        {
            if (UdpDnsResolverTests.Nsd.Executable == null)
            {
                Skip = "NSD MISSING: nsd is not on PATH (nor in /usr/sbin); this test against a real DNS server did not run (apt-get install nsd).";
            }
        }
    }
}
