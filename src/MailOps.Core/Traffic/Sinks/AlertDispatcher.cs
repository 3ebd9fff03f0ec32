using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Config;

namespace MailOps.Core.Traffic.Sinks
{
    /// <summary>
    /// Sends an alert to every sink at once, each with its own timeout and the caller's cancellation. A sink that fails,
    /// hangs or throws never keeps the others from delivering: the result has one <see cref="AlertDelivery"/> per sink,
    /// in the order of the sinks, with the error of those that failed.
    /// </summary>
    public sealed class AlertDispatcher
    {
        public AlertDispatcher(IEnumerable<IAlertSink> sinks, TimeSpan? timeout = null)
        {
            Sinks = (sinks ?? throw new ArgumentNullException(nameof(sinks))).ToList();
            Timeout = timeout ?? TimeSpan.FromSeconds(AlertSinkConfig.DefaultTimeoutSeconds);
        }

        public IReadOnlyList<IAlertSink> Sinks { get; }

        /// <summary>The most a sink may take, over and above its own timeout (a sink that ignores its token is abandoned after it).</summary>
        public TimeSpan Timeout { get; }

        /// <summary>Delivers <paramref name="alert"/> to every sink. Throws only <see cref="OperationCanceledException"/> when the caller cancels.</summary>
        public async Task<IReadOnlyList<AlertDelivery>> SendAsync(TrafficAlert alert, CancellationToken cancellationToken = default)
        {
            if (alert == null)
            {
                throw new ArgumentNullException(nameof(alert));
            }

            var deliveries = await Task.WhenAll(Sinks.Select(s => DeliverAsync(s, alert, cancellationToken))).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            return deliveries;
        }

        private async Task<AlertDelivery> DeliverAsync(IAlertSink sink, TrafficAlert alert, CancellationToken cancellationToken)
        {
            var watch = Stopwatch.StartNew();
            var timeout = SinkTimeout(sink);
            using (var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                cts.CancelAfter(timeout);
                try
                {
                    // a thread of its own for the part of SendAsync before its first await: a sink that blocks there (a
                    // synchronous write, a stuck resolver) must neither hold up the others nor starve the thread pool
                    var send = Task.Factory.StartNew(() => sink.SendAsync(alert, cts.Token), CancellationToken.None,
                        TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default).Unwrap();
                    var finished = await Task.WhenAny(send, Task.Delay(System.Threading.Timeout.Infinite, cts.Token)).ConfigureAwait(false);
                    if (finished != send)
                    {
                        // the sink ignored its token: leave it behind, observed so that its late failure is not unhandled
                        _ = send.ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
                        throw new OperationCanceledException(cts.Token);
                    }

                    await send.ConfigureAwait(false);
                    return new AlertDelivery(alert.Id, sink.Name, sink.Type, true, null, watch.Elapsed);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    return new AlertDelivery(alert.Id, sink.Name, sink.Type, false, $"did not deliver within {timeout.TotalSeconds:0.#} s", watch.Elapsed);
                }
                catch (OperationCanceledException)
                {
                    return new AlertDelivery(alert.Id, sink.Name, sink.Type, false, "cancelled", watch.Elapsed);
                }
                catch (Exception e)
                {
                    // any failure of one sink is reported for that sink; the others go on
                    return new AlertDelivery(alert.Id, sink.Name, sink.Type, false, e.Message, watch.Elapsed);
                }
            }
        }

        private TimeSpan SinkTimeout(IAlertSink sink)
        {
            // a sink's own timeout is honoured, with a second's grace for it to report its own (more precise) error first
            var own = sink switch
            {
                WebhookAlertSink w => w.Timeout,
                SyslogAlertSink s => s.Timeout,
                EmailAlertSink m => m.Timeout,
                _ => TimeSpan.Zero,
            };
            return own > TimeSpan.Zero ? own + TimeSpan.FromSeconds(1) : Timeout;
        }

        /// <summary>
        /// Sinks from the configuration. An email sink's relay is looked up in <paramref name="config"/>;
        /// <paramref name="credentials"/> resolves a relay's named credential at send time. A sink that cannot be built
        /// (an unknown relay) is returned in <paramref name="problems"/> and left out, so the others still fire.
        /// </summary>
        public static IReadOnlyList<IAlertSink> CreateSinks(MailOpsConfig config, Func<RelayConfig, NetworkCredential?>? credentials,
            out IReadOnlyList<string> problems, HttpClient? http = null)
        {
            var sinks = new List<IAlertSink>();
            var errors = new List<string>();
            foreach (var c in config.AlertSinks)
            {
                try
                {
                    sinks.Add(CreateSink(c, config, credentials, http));
                }
                catch (ArgumentException e)
                {
                    errors.Add(e.Message);
                }
            }

            problems = errors;
            return sinks;
        }

        /// <summary>One sink from its configuration. Throws <see cref="ArgumentException"/> when it cannot be built.</summary>
        public static IAlertSink CreateSink(AlertSinkConfig c, MailOpsConfig? config, Func<RelayConfig, NetworkCredential?>? credentials, HttpClient? http = null)
        {
            var timeout = TimeSpan.FromSeconds(c.TimeoutSeconds);
            switch (c.Type)
            {
                case "webhook":
                    if (c.Url == null || !Uri.TryCreate(c.Url, UriKind.Absolute, out var url))
                    {
                        throw new ArgumentException($"The webhook alert sink '{c.Name}' has no usable 'url'.", nameof(c));
                    }

                    WebhookFormat? format = c.Format == null ? (WebhookFormat?)null : (WebhookFormat)Enum.Parse(typeof(WebhookFormat), c.Format, true);
                    return new WebhookAlertSink(c.Name, url, format, timeout, http);
                case "syslog":
                    SyslogTransport? transport = c.Protocol == null ? (SyslogTransport?)null : (SyslogTransport)Enum.Parse(typeof(SyslogTransport), c.Protocol, true);
                    return new SyslogAlertSink(c.Name, c.Server, transport, c.Facility, timeout);
                case "email":
                    var relay = c.Relay == null ? null : config?.FindRelay(c.Relay);
                    if (relay == null)
                    {
                        throw new ArgumentException($"The email alert sink '{c.Name}' names the relay '{c.Relay}', which is not in the configuration.", nameof(c));
                    }

                    return new EmailAlertSink(c.Name, relay, c.To, c.From, credentials, null, timeout);
                default:
                    throw new ArgumentException($"The alert sink '{c.Name}' has the unknown type '{c.Type}'.", nameof(c));
            }
        }
    }
}
