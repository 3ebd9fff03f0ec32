using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace MailOps.Core.Traffic.Sinks
{
    /// <summary>How a syslog message travels.</summary>
    public enum SyslogTransport
    {
        /// <summary>A Unix socket (/dev/log): the local syslog daemon or journald. RFC 3164 format, as glibc's syslog(3) writes it; a datagram, or a NUL-terminated message on a stream socket.</summary>
        Unix,

        /// <summary>UDP (RFC 5426), RFC 5424 format.</summary>
        Udp,

        /// <summary>TCP with octet counting (RFC 6587), RFC 5424 format.</summary>
        Tcp,

        /// <summary>The Windows Event Log (Application log, source MailOps).</summary>
        EventLog,
    }

    /// <summary>
    /// Writes alerts to the system log: the local syslog socket on Linux and macOS (or a syslog server over UDP or
    /// TCP), the Windows Event Log on Windows. One line per alert: the headline, the figures, the top senders and flows
    /// and the suggested action, control characters removed.
    /// </summary>
    public sealed class SyslogAlertSink : IAlertSink
    {
        /// <summary>The syslog facilities by name (RFC 5424 table 1, with the names syslog.conf uses).</summary>
        public static IReadOnlyDictionary<string, int> Facilities { get; } = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase)
        {
            ["kern"] = 0, ["user"] = 1, ["mail"] = 2, ["daemon"] = 3, ["auth"] = 4, ["syslog"] = 5, ["lpr"] = 6, ["news"] = 7,
            ["uucp"] = 8, ["cron"] = 9, ["authpriv"] = 10, ["ftp"] = 11, ["ntp"] = 12, ["audit"] = 13, ["alert"] = 14, ["clock"] = 15,
            ["local0"] = 16, ["local1"] = 17, ["local2"] = 18, ["local3"] = 19, ["local4"] = 20, ["local5"] = 21, ["local6"] = 22, ["local7"] = 23,
        };

        internal static string[] FacilityNames { get; } = Facilities.Keys.ToArray();

        private const string AppName = "mailops";
        private const string EventSource = "MailOps";
        private readonly string? _path;
        private readonly string? _host;
        private readonly int _port;

        /// <param name="server">A Unix socket path (Unix), host[:port] (Udp, Tcp; port 514 by default); null: the local socket, or the Event Log on Windows.</param>
        /// <param name="transport">null: Unix for a path or no server (EventLog on Windows when no server), Udp for host:port.</param>
        /// <param name="facility">A name of <see cref="Facilities"/>; null: mail.</param>
        public SyslogAlertSink(string name, string? server = null, SyslogTransport? transport = null, string? facility = null, TimeSpan? timeout = null)
        {
            Name = name ?? throw new ArgumentNullException(nameof(name));
            if (facility != null && !Facilities.ContainsKey(facility))
            {
                throw new ArgumentException($"'{facility}' is not a syslog facility (expected one of {string.Join(", ", FacilityNames)}).", nameof(facility));
            }

            Facility = Facilities[facility ?? "mail"];
            Timeout = timeout ?? TimeSpan.FromSeconds(Config.AlertSinkConfig.DefaultTimeoutSeconds);
            var isPath = server != null && (server.StartsWith("/", StringComparison.Ordinal) || transport == SyslogTransport.Unix);
            Transport = transport ?? (server == null ? (RuntimeInformation.IsOSPlatform(OSPlatform.Windows) ? SyslogTransport.EventLog : SyslogTransport.Unix)
                : isPath ? SyslogTransport.Unix : SyslogTransport.Udp);
            switch (Transport)
            {
                case SyslogTransport.Unix:
                    _path = server ?? DefaultSocket();
                    break;
                case SyslogTransport.Udp:
                case SyslogTransport.Tcp:
                    if (server == null || !TryParseServer(server, out var host, out var port))
                    {
                        throw new ArgumentException($"The syslog alert sink '{name}' needs a server as host, host:port or [IPv6]:port.", nameof(server));
                    }

                    _host = host;
                    _port = port;
                    break;
            }
        }

        public string Name { get; }
        public string Type => "syslog";
        public SyslogTransport Transport { get; }

        /// <summary>The facility number (mail = 2).</summary>
        public int Facility { get; }
        public TimeSpan Timeout { get; }

        /// <summary>host, host:port, [IPv6] or [IPv6]:port; the port defaults to 514.</summary>
        public static bool TryParseServer(string server, out string host, out int port)
        {
            host = "";
            port = 514;
            var s = server.Trim();
            if (s.StartsWith("[", StringComparison.Ordinal))
            {
                var close = s.IndexOf(']');
                if (close < 2)
                {
                    return false;
                }

                host = s.Substring(1, close - 1);
                var rest = s.Substring(close + 1);
                if (rest.Length == 0)
                {
                    return IPAddress.TryParse(host, out _);
                }

                return rest[0] == ':' && int.TryParse(rest.Substring(1), NumberStyles.None, CultureInfo.InvariantCulture, out port) && port >= 1 && port <= 65535 && IPAddress.TryParse(host, out _);
            }

            var colons = s.Count(c => c == ':');
            if (colons > 1)
            {
                host = s; // a bare IPv6 address: no port
                return IPAddress.TryParse(s, out _);
            }

            if (colons == 1)
            {
                var i = s.IndexOf(':');
                host = s.Substring(0, i);
                if (!int.TryParse(s.Substring(i + 1), NumberStyles.None, CultureInfo.InvariantCulture, out port) || port < 1 || port > 65535)
                {
                    return false;
                }
            }
            else
            {
                host = s;
            }

            return host.Length > 0;
        }

        /// <summary>Crit for a critical alert, warning, info; notice when an alert is resolved (RFC 5424 severities).</summary>
        public static int SyslogSeverity(TrafficAlert alert)
        {
            if (alert.State == AlertState.Resolved)
            {
                return 5;
            }

            switch (alert.Severity)
            {
                case AlertSeverity.Critical: return 2;
                case AlertSeverity.Warning: return 4;
                default: return 6;
            }
        }

        /// <summary>The message text (without the syslog header): one line.</summary>
        public static string MessageText(TrafficAlert alert)
        {
            var sb = new StringBuilder();
            sb.Append(AlertText.Headline(alert));
            foreach (var f in AlertText.Figures(alert).Where(f => f.Key != "Host"))
            {
                sb.Append(" | ").Append(f.Key.ToLowerInvariant()).Append(": ").Append(f.Value);
            }

            sb.Append(" | top senders: ").Append(AlertText.Top(alert.TopSenders));
            sb.Append(" | top flows: ").Append(AlertText.Top(alert.TopFlows));
            if (!string.IsNullOrWhiteSpace(alert.SuggestedAction))
            {
                sb.Append(" | action: ").Append(AlertText.OneLine(alert.SuggestedAction));
            }

            return AlertText.OneLine(sb.ToString());
        }

        /// <summary>
        /// The datagram or frame: RFC 3164 as glibc writes to the local socket ("&lt;PRI&gt;Mmm dd hh:mm:ss mailops[pid]: msg",
        /// no host name: the daemon adds it), RFC 5424 over the network ("&lt;PRI&gt;1 timestamp host mailops pid alert - msg").
        /// </summary>
        public string Format(TrafficAlert alert, DateTimeOffset now)
        {
            var pri = Facility * 8 + SyslogSeverity(alert);
            var pid = CurrentPid();
            var msg = MessageText(alert);
            string line;
            if (Transport == SyslogTransport.Unix)
            {
                var local = now.ToLocalTime();
                // RFC 3164: the day is space-padded ("Nov  5")
                var stamp = local.ToString("MMM", CultureInfo.InvariantCulture) + " " + local.Day.ToString(CultureInfo.InvariantCulture).PadLeft(2) + local.ToString(" HH:mm:ss", CultureInfo.InvariantCulture);
                line = $"<{pri}>{stamp} {AppName}[{pid}]: {msg}";
            }
            else
            {
                var host = HostField(alert.Host);
                line = $"<{pri}>1 {now.ToUniversalTime():yyyy-MM-dd'T'HH:mm:ss.fff'Z'} {host} {AppName} {pid} alert - {msg}";
            }

            return Truncate(line, Transport == SyslogTransport.Udp ? 2048 : 8192);
        }

        public async Task SendAsync(TrafficAlert alert, CancellationToken cancellationToken)
        {
            if (Transport == SyslogTransport.EventLog)
            {
                WriteEventLog(alert);
                return;
            }

            var bytes = Encoding.UTF8.GetBytes(Format(alert, DateTimeOffset.Now));
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                timeout.CancelAfter(Timeout);
                try
                {
                    switch (Transport)
                    {
                        case SyslogTransport.Unix:
                            await SendUnixAsync(bytes).ConfigureAwait(false);
                            break;
                        case SyslogTransport.Udp:
                            await SendUdpAsync(bytes, timeout.Token).ConfigureAwait(false);
                            break;
                        default:
                            await SendTcpAsync(bytes, timeout.Token).ConfigureAwait(false);
                            break;
                    }
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new AlertSinkException(Name, $"The syslog alert sink '{Name}' ({Where}) did not accept the alert within {Timeout.TotalSeconds:0.#} s.");
                }
                catch (SocketException e)
                {
                    throw new AlertSinkException(Name, $"The syslog alert sink '{Name}' cannot write to {Where}: {e.Message}", e);
                }
            }
        }

        public override string ToString() => $"{Name} (syslog {Where})";

        private string Where => Transport == SyslogTransport.Unix ? _path! : Transport == SyslogTransport.EventLog ? "Windows Event Log" : $"{Transport.ToString().ToLowerInvariant()} {_host}:{_port}";

        private Task SendUnixAsync(byte[] bytes)
        {
            var endPoint = UnixEndPoint(_path!);
            try
            {
                using (var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified))
                {
                    // a local datagram: sent at once or refused at once (no listener, buffer full); no need to wait
                    socket.SendTo(bytes, endPoint);
                }
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ProtocolType)
            {
                // some syslog daemons listen on a stream socket: as glibc's syslog(3), connect and end the message with NUL
                using (var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
                {
                    socket.SendTimeout = (int)Math.Min(int.MaxValue, Timeout.TotalMilliseconds);
                    socket.Connect(endPoint);
                    var framed = new byte[bytes.Length + 1];
                    Buffer.BlockCopy(bytes, 0, framed, 0, bytes.Length);
                    socket.Send(framed);
                }
            }

            return Task.CompletedTask;
        }

        private async Task SendUdpAsync(byte[] bytes, CancellationToken cancellationToken)
        {
            var address = await ResolveAsync(cancellationToken).ConfigureAwait(false);
            using (var udp = new UdpClient(address.AddressFamily))
            {
                await udp.SendAsync(bytes, bytes.Length, new IPEndPoint(address, _port)).ConfigureAwait(false);
            }
        }

        private async Task SendTcpAsync(byte[] bytes, CancellationToken cancellationToken)
        {
            var address = await ResolveAsync(cancellationToken).ConfigureAwait(false);
            using (var tcp = new TcpClient(address.AddressFamily))
            using (cancellationToken.Register(() => tcp.Dispose()))
            {
                try
                {
                    await tcp.ConnectAsync(address, _port).ConfigureAwait(false);
                    var frame = Encoding.ASCII.GetBytes(bytes.Length.ToString(CultureInfo.InvariantCulture) + " ");
                    var stream = tcp.GetStream();
                    await stream.WriteAsync(frame, 0, frame.Length, cancellationToken).ConfigureAwait(false);
                    await stream.WriteAsync(bytes, 0, bytes.Length, cancellationToken).ConfigureAwait(false);
                    await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when ((e is ObjectDisposedException || e is IOException || e is SocketException) && cancellationToken.IsCancellationRequested)
                {
                    throw new OperationCanceledException(cancellationToken);
                }
                catch (IOException e)
                {
                    throw new AlertSinkException(Name, $"The syslog alert sink '{Name}' cannot write to {Where}: {e.Message}", e);
                }
            }
        }

        private async Task<IPAddress> ResolveAsync(CancellationToken cancellationToken)
        {
            if (IPAddress.TryParse(_host, out var ip))
            {
                return ip;
            }

            var lookup = System.Net.Dns.GetHostAddressesAsync(_host);
            if (await Task.WhenAny(lookup, Task.Delay(System.Threading.Timeout.Infinite, cancellationToken)).ConfigureAwait(false) != lookup)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            var addresses = await lookup.ConfigureAwait(false);
            return addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault()
                ?? throw new AlertSinkException(Name, $"The syslog server '{_host}' of the alert sink '{Name}' has no address.");
        }

        /// <summary>
        /// The Windows Event Log, Application log, source MailOps; event id 1000 + severity so that views can filter.
        /// Cannot be tested on the Linux build machine: it is exercised only on Windows. Registering a source needs
        /// administrator rights once (New-EventLog -LogName Application -Source MailOps); without it the write fails
        /// with that advice.
        /// </summary>
        private void WriteEventLog(TrafficAlert alert)
        {
            if (!RuntimeInformation.IsOSPlatform(OSPlatform.Windows))
            {
                throw new AlertSinkException(Name, $"The alert sink '{Name}' writes to the Windows Event Log, which this system does not have; name a syslog 'server' or use the local socket.");
            }

            var type = alert.State == AlertState.Resolved ? EventLogEntryType.Information
                : alert.Severity == AlertSeverity.Critical ? EventLogEntryType.Error
                : alert.Severity == AlertSeverity.Warning ? EventLogEntryType.Warning : EventLogEntryType.Information;
            try
            {
                // EventLog.WriteEntry accepts up to 31,839 characters
                EventLog.WriteEntry(EventSource, Truncate(MessageText(alert), 31000), type, 1000 + SyslogSeverity(alert));
            }
            catch (Exception e) when (e is System.Security.SecurityException || e is InvalidOperationException || e is ArgumentException || e is Win32Exception)
            {
                throw new AlertSinkException(Name, $"The alert sink '{Name}' cannot write to the Windows Event Log: {e.Message} (if the source 'MailOps' is not registered, register it once as administrator: New-EventLog -LogName Application -Source MailOps).", e);
            }
        }

        private static string DefaultSocket()
        {
            // macOS has no /dev/log; its syslogd listens on /var/run/syslog
            if (RuntimeInformation.IsOSPlatform(OSPlatform.OSX) && File.Exists("/var/run/syslog"))
            {
                return "/var/run/syslog";
            }

            return "/dev/log";
        }

        /// <summary>
        /// System.Net.Sockets.UnixDomainSocketEndPoint exists in every .NET Core since 2.1 (so in PowerShell 7) but not in
        /// netstandard2.0's surface: it is found at run time. Windows PowerShell 5.1 has none, and uses the Event Log.
        /// </summary>
        private EndPoint UnixEndPoint(string path)
        {
            var endPointType = typeof(Socket).Assembly.GetType("System.Net.Sockets.UnixDomainSocketEndPoint")
                ?? System.Type.GetType("System.Net.Sockets.UnixDomainSocketEndPoint, System.Net.Sockets");
            if (endPointType == null)
            {
                throw new AlertSinkException(Name, $"The alert sink '{Name}' needs Unix domain sockets, which this .NET runtime does not have; name a syslog 'server' (udp or tcp).");
            }

            return (EndPoint)Activator.CreateInstance(endPointType, path)!;
        }

        private static int CurrentPid()
        {
            using (var p = Process.GetCurrentProcess())
            {
                return p.Id;
            }
        }

        /// <summary>RFC 5424 HOSTNAME: printable US-ASCII, no spaces, at most 255; "-" when unknown.</summary>
        private static string HostField(string host)
        {
            var h = new string((host ?? "").Where(c => c > 32 && c < 127).ToArray());
            return h.Length == 0 ? "-" : h.Length > 255 ? h.Substring(0, 255) : h;
        }

        /// <summary>At most <paramref name="maxBytes"/> UTF-8 bytes, cut on a character boundary.</summary>
        private static string Truncate(string line, int maxBytes)
        {
            if (Encoding.UTF8.GetByteCount(line) <= maxBytes)
            {
                return line;
            }

            var n = Math.Min(line.Length, maxBytes);
            while (n > 0 && Encoding.UTF8.GetByteCount(line.Substring(0, n)) > maxBytes - 3)
            {
                n -= Math.Max(1, n / 16);
            }

            if (n > 0 && char.IsHighSurrogate(line[n - 1]))
            {
                n--;
            }

            return line.Substring(0, n) + "...";
        }
    }
}
