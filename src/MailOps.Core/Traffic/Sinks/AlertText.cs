using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

namespace MailOps.Core.Traffic.Sinks
{
    /// <summary>The words every sink uses for an alert, so that an email, a chat message and a log line say the same thing.</summary>
    internal static class AlertText
    {
        /// <summary>"CRITICAL raised: summary" (one line, no control characters).</summary>
        public static string Headline(TrafficAlert alert) =>
            OneLine($"{alert.Severity.ToString().ToUpperInvariant()} {alert.State.ToString().ToLowerInvariant()}: {Summary(alert)}");

        /// <summary>The alert's summary, or a plain one made from its figures when the rule gave none.</summary>
        public static string Summary(TrafficAlert alert) =>
            string.IsNullOrWhiteSpace(alert.Summary)
                ? $"{alert.Rule}: {alert.Metric} of {alert.Scope} {alert.Key} is {Number(alert.Value)} (limit {Number(alert.Limit)} per {alert.Per})"
                : alert.Summary;

        /// <summary>The figures as name/value pairs, in the order a reader wants them.</summary>
        public static IReadOnlyList<KeyValuePair<string, string>> Figures(TrafficAlert alert)
        {
            var f = new List<KeyValuePair<string, string>>
            {
                Pair("Rule", alert.Rule),
                Pair("Kind", alert.Kind),
                Pair("Scope", string.IsNullOrEmpty(alert.Key) ? alert.Scope : $"{alert.Scope} {alert.Key}"),
                Pair("Metric", string.IsNullOrEmpty(alert.Per) ? alert.Metric : $"{alert.Metric} per {alert.Per}"),
                Pair("Value", Number(alert.Value)),
                Pair("Limit", Number(alert.Limit)),
            };
            if (alert.Baseline.HasValue)
            {
                f.Add(Pair("Baseline", Number(alert.Baseline.Value) + (alert.Spread.HasValue ? $" (spread {Number(alert.Spread.Value)})" : "")));
            }

            f.Add(Pair("Window", $"{Time(alert.WindowStart)} to {Time(alert.WindowEnd)}"));
            f.Add(Pair("Raised", Time(alert.RaisedAt)));
            if (alert.ResolvedAt.HasValue)
            {
                f.Add(Pair("Resolved", Time(alert.ResolvedAt.Value)));
            }

            f.Add(Pair("Host", alert.Host));
            f.Add(Pair("Alert id", alert.Id));
            return f;
        }

        /// <summary>"a@x (12), b@y (3)"; "none" when empty.</summary>
        public static string Top(IReadOnlyList<KeyValuePair<string, long>> top, int max = 5) =>
            top.Count == 0 ? "none" : string.Join(", ", top.Take(max).Select(x => $"{OneLine(x.Key)} ({x.Value.ToString(CultureInfo.InvariantCulture)})"));

        /// <summary>A number as a sysadmin reads it: whole numbers plain, rates below 1 as a percentage.</summary>
        public static string Number(double v)
        {
            if (double.IsNaN(v) || double.IsInfinity(v))
            {
                return v.ToString(CultureInfo.InvariantCulture);
            }

            if (Math.Abs(v - Math.Round(v)) < 1e-9)
            {
                return Math.Round(v).ToString("0", CultureInfo.InvariantCulture);
            }

            return Math.Abs(v) < 1 ? (v * 100).ToString("0.##", CultureInfo.InvariantCulture) + " %" : v.ToString("0.##", CultureInfo.InvariantCulture);
        }

        public static string Time(DateTimeOffset t) => t.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

        /// <summary>Control characters (CR, LF, tab, NUL...) become spaces, runs of spaces one: the text cannot break a header or a log line.</summary>
        public static string OneLine(string? text)
        {
            if (string.IsNullOrEmpty(text))
            {
                return "";
            }

            var sb = new StringBuilder(text!.Length);
            var space = false;
            foreach (var c in text)
            {
                // U+2028/U+2029 are line breaks too for some readers
                var blank = char.IsControl(c) || c == '\u2028' || c == '\u2029' || char.IsWhiteSpace(c);
                if (blank)
                {
                    if (!space && sb.Length > 0)
                    {
                        sb.Append(' ');
                    }

                    space = true;
                }
                else
                {
                    sb.Append(c);
                    space = false;
                }
            }

            return sb.ToString().TrimEnd();
        }

        private static KeyValuePair<string, string> Pair(string k, string v) => new KeyValuePair<string, string>(k, OneLine(v));
    }

    /// <summary>A sink could not deliver an alert. The message names the sink and what went wrong, never a secret (no webhook URL, no password).</summary>
    public sealed class AlertSinkException : Exception
    {
        public AlertSinkException(string sink, string message, Exception? inner = null) : base(message, inner)
        {
            Sink = sink;
        }

        public AlertSinkException()
        {
            Sink = "";
        }

        public AlertSinkException(string message) : base(message)
        {
            Sink = "";
        }

        public AlertSinkException(string message, Exception inner) : base(message, inner)
        {
            Sink = "";
        }

        public string Sink { get; }

        /// <summary>The HTTP status of a webhook's refusal (null for other failures).</summary>
        public int? StatusCode { get; internal set; }
    }
}
