using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace MailOps.Core.Traffic
{
    public enum AlertSeverity
    {
        Info,
        Warning,
        Critical,
    }

    /// <summary>Where an alert is in its life: raised once per incident, repeated after a quiet period, resolved when figures are normal again.</summary>
    public enum AlertState
    {
        Raised,
        Repeated,
        Resolved,

        /// <summary>Still active, already notified, inside its quiet period: not sent again.</summary>
        Active,
    }

    /// <summary>One traffic alert: which rule, about what, the figures, who is responsible, and what to do.</summary>
    public sealed class TrafficAlert
    {
        /// <summary>Stable per incident subject: rule name, scope and key ("primary-cap/relay/primary").</summary>
        public string Id { get; set; } = "";
        public string Rule { get; set; } = "";

        /// <summary>cap, spike, rate, blockReplies or deferredQueue.</summary>
        public string Kind { get; set; } = "";
        public AlertSeverity Severity { get; set; }
        public AlertState State { get; set; }

        /// <summary>sender, domain, flow, relay, client or all.</summary>
        public string Scope { get; set; } = "";

        /// <summary>The sender, domain, flow or relay concerned.</summary>
        public string Key { get; set; } = "";
        public string Metric { get; set; } = "";

        /// <summary>minute, hour or day.</summary>
        public string Per { get; set; } = "";
        public double Value { get; set; }
        public double Limit { get; set; }

        /// <summary>For spikes: the median of the same hour of the week in the history, and its spread (MAD).</summary>
        public double? Baseline { get; set; }
        public double? Spread { get; set; }
        public DateTimeOffset WindowStart { get; set; }
        public DateTimeOffset WindowEnd { get; set; }

        /// <summary>When the incident was first raised.</summary>
        public DateTimeOffset RaisedAt { get; set; }
        public DateTimeOffset? ResolvedAt { get; set; }
        public IReadOnlyList<KeyValuePair<string, long>> TopSenders { get; set; } = Array.Empty<KeyValuePair<string, long>>();
        public IReadOnlyList<KeyValuePair<string, long>> TopFlows { get; set; } = Array.Empty<KeyValuePair<string, long>>();

        /// <summary>One sentence a sysadmin understands.</summary>
        public string Summary { get; set; } = "";
        public string SuggestedAction { get; set; } = "";

        /// <summary>The machine that raised it.</summary>
        public string Host { get; set; } = Environment.MachineName;

        public override string ToString() => $"[{Severity}] {State}: {Summary}";
    }

    /// <summary>A place alerts are delivered to (email through another relay, a webhook, the system log).</summary>
    public interface IAlertSink
    {
        string Name { get; }

        /// <summary>email, webhook or syslog.</summary>
        string Type { get; }

        /// <summary>Delivers one alert; throws on failure (the dispatcher reports it and goes on with the other sinks).</summary>
        Task SendAsync(TrafficAlert alert, CancellationToken cancellationToken);
    }

    /// <summary>What happened when one alert was sent to one sink.</summary>
    public sealed class AlertDelivery
    {
        public AlertDelivery(string alertId, string sink, string type, bool succeeded, string? error, TimeSpan duration)
        {
            AlertId = alertId;
            Sink = sink;
            Type = type;
            Succeeded = succeeded;
            Error = error;
            Duration = duration;
        }

        public string AlertId { get; }
        public string Sink { get; }
        public string Type { get; }
        public bool Succeeded { get; }
        public string? Error { get; }
        public TimeSpan Duration { get; }

        public override string ToString() => Succeeded ? $"{Sink}: delivered" : $"{Sink}: FAILED: {Error}";
    }
}
