using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace MailOps.Core.Smtp
{
    /// <summary>Raised when the server did not answer within the timeout.</summary>
    public sealed class SmtpTimeoutException : Exception
    {
        public SmtpTimeoutException(string message) : base(message)
        {
        }

        public SmtpTimeoutException()
        {
        }

        public SmtpTimeoutException(string message, Exception innerException) : base(message, innerException)
        {
        }
    }

    /// <summary>Raised when the server's bytes are not SMTP, or it closed the connection.</summary>
    public sealed class SmtpProtocolException : Exception
    {
        public SmtpProtocolException(string message, bool closed = false) : base(message)
        {
            ConnectionClosed = closed;
        }

        public SmtpProtocolException()
        {
        }

        public SmtpProtocolException(string message, Exception innerException) : base(message, innerException)
        {
        }

        public bool ConnectionClosed { get; }
    }

    /// <summary>
    /// A raw SMTP client connection for probing: every read and write has its own timeout and honours the caller's
    /// cancellation (a timeout aborts the socket, so nothing can hang), every line can be logged, and STARTTLS or
    /// implicit TLS report what was negotiated. Used by the relay check, which needs control of each stage that a
    /// sending library does not give.
    /// </summary>
    internal sealed class SmtpConnection : IDisposable
    {
        private const int MaxLineLength = 4096;
        private readonly TcpClient _tcp;
        private readonly TimeSpan _timeout;
        private readonly CancellationToken _cancel;
        private readonly Action<string>? _log;
        private readonly byte[] _buffer = new byte[8192];
        private Stream _stream;
        private int _start;
        private int _end;
        private bool _aborted;

        private SmtpConnection(TcpClient tcp, IPAddress remote, TimeSpan timeout, Action<string>? log, CancellationToken cancel)
        {
            _tcp = tcp;
            _stream = tcp.GetStream();
            RemoteAddress = remote;
            _timeout = timeout;
            _log = log;
            _cancel = cancel;
        }

        public IPAddress RemoteAddress { get; }
        public bool IsTls => _stream is SslStream;
        public SslStream? Tls => _stream as SslStream;

        /// <summary>Connects to the first address that answers.</summary>
        public static async Task<SmtpConnection> ConnectAsync(IReadOnlyList<IPAddress> addresses, int port, TimeSpan timeout,
            Action<string>? log, CancellationToken cancel)
        {
            Exception? last = null;
            foreach (var address in addresses)
            {
                var tcp = new TcpClient(address.AddressFamily) { NoDelay = true };
                using (var cts = CancellationTokenSource.CreateLinkedTokenSource(cancel))
                {
                    cts.CancelAfter(timeout);
                    using (cts.Token.Register(() => tcp.Dispose()))
                    {
                        try
                        {
                            log?.Invoke($"-- connecting to {Format(address, port)}");
                            await tcp.ConnectAsync(address, port).ConfigureAwait(false);
                            return new SmtpConnection(tcp, address, timeout, log, cancel);
                        }
                        catch (Exception e) when (e is SocketException || e is ObjectDisposedException || e is IOException || e is InvalidOperationException)
                        {
                            tcp.Dispose();
                            cancel.ThrowIfCancellationRequested();
                            last = cts.IsCancellationRequested
                                ? new SmtpTimeoutException($"no answer from {Format(address, port)} within {timeout.TotalSeconds:0.#} s")
                                : e;
                        }
                    }
                }
            }

            throw last ?? new SocketException((int)SocketError.HostNotFound);
        }

        internal static string Format(IPAddress address, int port) =>
            address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]:{port}" : $"{address}:{port}";

        /// <summary>Reads one complete (possibly multi-line) reply.</summary>
        public Task<SmtpReply> ReadReplyAsync(string waitingFor) => WithTimeoutAsync(waitingFor, ReadReplyCoreAsync);

        /// <summary>Sends one command line; <paramref name="logAs"/> replaces it in the transcript (secrets).</summary>
        public Task WriteLineAsync(string line, string? logAs = null)
        {
            if (line.IndexOf('\r') >= 0 || line.IndexOf('\n') >= 0)
            {
                throw new ArgumentException("An SMTP command cannot contain a line break.", nameof(line));
            }

            _log?.Invoke("C: " + (logAs ?? line));
            var bytes = Encoding.UTF8.GetBytes(line + "\r\n");
            return WithTimeoutAsync("sending " + (logAs ?? line.Split(' ')[0]), async token =>
            {
                await _stream.WriteAsync(bytes, 0, bytes.Length, token).ConfigureAwait(false);
                await _stream.FlushAsync(token).ConfigureAwait(false);
                return true;
            });
        }

        /// <summary>Sends raw message data (already dot-stuffed, ending with CRLF.CRLF).</summary>
        public Task WriteDataAsync(byte[] data, string description)
        {
            _log?.Invoke($"C: <{description}, {data.Length} bytes>");
            return WithTimeoutAsync("sending the message", async token =>
            {
                await _stream.WriteAsync(data, 0, data.Length, token).ConfigureAwait(false);
                await _stream.FlushAsync(token).ConfigureAwait(false);
                return true;
            });
        }

        /// <summary>Upgrades the connection to TLS (after STARTTLS, or at once for implicit TLS).</summary>
        public Task UpgradeToTlsAsync(string targetHost, RemoteCertificateValidationCallback validate)
        {
            if (_end > _start)
            {
                throw new SmtpProtocolException("The server sent data after its STARTTLS reply and before the TLS handshake (possible command injection).");
            }

            var ssl = new SslStream(_stream, false, validate);
            return WithTimeoutAsync("the TLS handshake", async token =>
            {
                await ssl.AuthenticateAsClientAsync(targetHost, null, SslProtocols.None, false).ConfigureAwait(false);
                _stream = ssl;
                _log?.Invoke($"-- TLS established: {ssl.SslProtocol}");
                return true;
            });
        }

        private async Task<T> WithTimeoutAsync<T>(string what, Func<CancellationToken, Task<T>> operation)
        {
            if (_aborted)
            {
                throw new SmtpProtocolException("The connection was already closed.", closed: true);
            }

            using (var cts = CancellationTokenSource.CreateLinkedTokenSource(_cancel))
            {
                cts.CancelAfter(_timeout);
                using (cts.Token.Register(Abort))
                {
                    try
                    {
                        return await operation(cts.Token).ConfigureAwait(false);
                    }
                    catch (Exception e) when (cts.IsCancellationRequested && !(e is SmtpProtocolException && !_aborted))
                    {
                        _cancel.ThrowIfCancellationRequested();
                        throw new SmtpTimeoutException($"no answer within {_timeout.TotalSeconds:0.#} s while {what}", e);
                    }
                    catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException)
                    {
                        Abort();
                        throw new SmtpProtocolException($"the connection was closed while {what}: {e.Message}", closed: true);
                    }
                }
            }
        }

        private async Task<SmtpReply> ReadReplyCoreAsync(CancellationToken token)
        {
            var lines = new List<string>();
            var code = -1;
            while (true)
            {
                var line = await ReadLineAsync(token).ConfigureAwait(false);
                _log?.Invoke("S: " + line);
                if (line.Length < 3 || !char.IsDigit(line[0]) || !char.IsDigit(line[1]) || !char.IsDigit(line[2]) || (line.Length > 3 && line[3] != ' ' && line[3] != '-'))
                {
                    throw new SmtpProtocolException($"the server's reply is not SMTP: \"{Printable(line)}\"");
                }

                var lineCode = int.Parse(line.Substring(0, 3), CultureInfo.InvariantCulture);
                if (code >= 0 && lineCode != code)
                {
                    throw new SmtpProtocolException($"the server changed reply code within one reply ({code}, then {lineCode})");
                }

                code = lineCode;
                lines.Add(line.Length > 4 ? line.Substring(4) : "");
                if (line.Length == 3 || line[3] == ' ')
                {
                    return new SmtpReply(code, lines);
                }
            }
        }

        private async Task<string> ReadLineAsync(CancellationToken token)
        {
            var sb = new StringBuilder();
            while (true)
            {
                for (var i = _start; i < _end; i++)
                {
                    if (_buffer[i] == (byte)'\n')
                    {
                        sb.Append(Encoding.UTF8.GetString(_buffer, _start, i - _start));
                        _start = i + 1;
                        return sb.ToString().TrimEnd('\r');
                    }
                }

                sb.Append(Encoding.UTF8.GetString(_buffer, _start, _end - _start));
                _start = _end = 0;
                if (sb.Length > MaxLineLength)
                {
                    throw new SmtpProtocolException($"the server sent a line longer than {MaxLineLength} characters: \"{Printable(sb.ToString(0, 60))}...\"");
                }

                var n = await _stream.ReadAsync(_buffer, 0, _buffer.Length, token).ConfigureAwait(false);
                if (n == 0)
                {
                    throw new SmtpProtocolException(sb.Length > 0 ? $"the server closed the connection in the middle of a line (\"{Printable(sb.ToString())}\")" : "the server closed the connection", closed: true);
                }

                _end = n;
            }
        }

        private static string Printable(string s)
        {
            var sb = new StringBuilder();
            foreach (var c in s.Length > 120 ? s.Substring(0, 120) : s)
            {
                sb.Append(c < ' ' || c == 0x7f ? '?' : c);
            }

            return sb.ToString();
        }

        private void Abort()
        {
            _aborted = true;
            try
            {
                _tcp.Dispose();
            }
            catch (ObjectDisposedException)
            {
            }
        }

        public void Dispose()
        {
            Abort();
            _stream.Dispose();
        }
    }
}
