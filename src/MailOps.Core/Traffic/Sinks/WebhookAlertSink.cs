using System;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace MailOps.Core.Traffic.Sinks
{
    /// <summary>The markdown dialect of a chat's incoming webhook.</summary>
    public enum WebhookFormat
    {
        /// <summary>CommonMark (Mattermost, Rocket.Chat, Discord-like receivers, plain JSON consumers).</summary>
        Generic,

        /// <summary>Slack's mrkdwn: *bold*, and &amp; &lt; &gt; escaped.</summary>
        Slack,

        /// <summary>Microsoft Teams connectors: markdown with blank lines between lines.</summary>
        Teams,
    }

    /// <summary>
    /// Posts alerts as JSON to an incoming webhook. The body has a top-level <c>text</c> (a markdown summary with the
    /// severity, rule, figures, top senders and flows and the suggested action), which Slack, Mattermost and Teams
    /// incoming webhooks all display, and a <c>mailops</c> object with every field of the alert for programs.
    /// The URL is treated as a secret (chat webhooks carry their token in it): errors name the sink and the host only.
    /// </summary>
    public sealed class WebhookAlertSink : IAlertSink, IDisposable
    {
        private const int ExcerptLength = 200;
        private readonly Uri _url;
        private readonly HttpClient _http;
        private readonly bool _ownsClient;

        /// <param name="http">A client to share (its own timeout is not used: <paramref name="timeout"/> applies per call); null: one of its own, certificates validated.</param>
        public WebhookAlertSink(string name, Uri url, WebhookFormat? format = null, TimeSpan? timeout = null, HttpClient? http = null)
        {
            Name = name ?? throw new ArgumentNullException(nameof(name));
            _url = url ?? throw new ArgumentNullException(nameof(url));
            if (url.Scheme != Uri.UriSchemeHttps && url.Scheme != Uri.UriSchemeHttp)
            {
                throw new ArgumentException($"The webhook of the alert sink '{name}' is not an http(s) URL.", nameof(url));
            }

            Format = format ?? GuessFormat(url);
            Timeout = timeout ?? TimeSpan.FromSeconds(Config.AlertSinkConfig.DefaultTimeoutSeconds);
            _ownsClient = http == null;
            _http = http ?? new HttpClient { Timeout = System.Threading.Timeout.InfiniteTimeSpan };
        }

        public string Name { get; }
        public string Type => "webhook";
        public WebhookFormat Format { get; }
        public TimeSpan Timeout { get; }

        /// <summary>Slack for hooks.slack.com, Teams for Office 365 connector and Power Automate hosts, generic otherwise.</summary>
        public static WebhookFormat GuessFormat(Uri url)
        {
            var host = url.Host.ToLowerInvariant();
            if (host == "hooks.slack.com" || host.EndsWith(".slack.com", StringComparison.Ordinal))
            {
                return WebhookFormat.Slack;
            }

            if (host.EndsWith(".webhook.office.com", StringComparison.Ordinal) || host == "outlook.office.com" || host.EndsWith(".logic.azure.com", StringComparison.Ordinal))
            {
                return WebhookFormat.Teams;
            }

            return WebhookFormat.Generic;
        }

        /// <summary>Posts the alert. Throws <see cref="AlertSinkException"/> on a non-2xx reply (with the status and the start of the body), on a network failure and on a timeout; <see cref="OperationCanceledException"/> when the caller cancels.</summary>
        public async Task SendAsync(TrafficAlert alert, CancellationToken cancellationToken)
        {
            var body = Payload(alert, Format);
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            using (var request = new HttpRequestMessage(HttpMethod.Post, _url))
            {
                timeout.CancelAfter(Timeout);
                request.Content = new ByteArrayContent(body);
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
                try
                {
                    using (var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false))
                    {
                        if (response.IsSuccessStatusCode)
                        {
                            return;
                        }

                        var excerpt = await ExcerptAsync(response, timeout.Token).ConfigureAwait(false);
                        throw new AlertSinkException(Name, $"The webhook of the alert sink '{Name}' ({_url.Host}) answered {(int)response.StatusCode} {response.ReasonPhrase}{(excerpt.Length > 0 ? ": " + excerpt : "")}.")
                        {
                            StatusCode = (int)response.StatusCode,
                        };
                    }
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new AlertSinkException(Name, $"The webhook of the alert sink '{Name}' ({_url.Host}) did not answer within {Timeout.TotalSeconds:0.#} s.");
                }
                catch (HttpRequestException e)
                {
                    throw new AlertSinkException(Name, $"The webhook of the alert sink '{Name}' ({_url.Host}) cannot be reached: {Scrub(Inner(e))}", e);
                }
            }
        }

        /// <summary>The JSON body: <c>text</c> for the chat, <c>mailops</c> for programs.</summary>
        public static byte[] Payload(TrafficAlert alert, WebhookFormat format)
        {
            using (var ms = new MemoryStream())
            {
                using (var w = new Utf8JsonWriter(ms))
                {
                    w.WriteStartObject();
                    w.WriteString("text", Markdown(alert, format));
                    w.WriteStartObject("mailops");
                    w.WriteString("id", alert.Id);
                    w.WriteString("rule", alert.Rule);
                    w.WriteString("kind", alert.Kind);
                    w.WriteString("severity", alert.Severity.ToString().ToLowerInvariant());
                    w.WriteString("state", alert.State.ToString().ToLowerInvariant());
                    w.WriteString("scope", alert.Scope);
                    w.WriteString("key", alert.Key);
                    w.WriteString("metric", alert.Metric);
                    w.WriteString("per", alert.Per);
                    WriteNumber(w, "value", alert.Value);
                    WriteNumber(w, "limit", alert.Limit);
                    WriteNumber(w, "baseline", alert.Baseline);
                    WriteNumber(w, "spread", alert.Spread);
                    w.WriteString("windowStart", alert.WindowStart);
                    w.WriteString("windowEnd", alert.WindowEnd);
                    w.WriteString("raisedAt", alert.RaisedAt);
                    if (alert.ResolvedAt.HasValue)
                    {
                        w.WriteString("resolvedAt", alert.ResolvedAt.Value);
                    }
                    else
                    {
                        w.WriteNull("resolvedAt");
                    }

                    WriteTop(w, "topSenders", "sender", alert.TopSenders);
                    WriteTop(w, "topFlows", "flow", alert.TopFlows);
                    w.WriteString("summary", alert.Summary);
                    w.WriteString("suggestedAction", alert.SuggestedAction);
                    w.WriteString("host", alert.Host);
                    w.WriteEndObject();
                    w.WriteEndObject();
                }

                return ms.ToArray();
            }
        }

        /// <summary>The chat message: headline, figures, who is responsible, what to do.</summary>
        public static string Markdown(TrafficAlert alert, WebhookFormat format)
        {
            var bold = format == WebhookFormat.Slack ? "*" : "**";
            var nl = format == WebhookFormat.Teams ? "\n\n" : "\n";
            var sb = new StringBuilder();
            sb.Append(bold).Append("[MailOps] ").Append(Escape(AlertText.Headline(alert))).Append(bold).Append(nl);
            foreach (var f in AlertText.Figures(alert))
            {
                sb.Append("- ").Append(f.Key).Append(": ").Append(Code(f.Value, format)).Append(nl);
            }

            sb.Append("- Top senders: ").Append(TopList(alert.TopSenders, format)).Append(nl);
            sb.Append("- Top flows: ").Append(TopList(alert.TopFlows, format)).Append(nl);
            if (!string.IsNullOrWhiteSpace(alert.SuggestedAction))
            {
                sb.Append(bold).Append("Suggested action:").Append(bold).Append(' ').Append(Escape(AlertText.OneLine(alert.SuggestedAction))).Append(nl);
            }

            return sb.ToString().TrimEnd('\n');
        }

        public void Dispose()
        {
            if (_ownsClient)
            {
                _http.Dispose();
            }
        }

        public override string ToString() => $"{Name} (webhook {_url.Host}, {Format})";

        private static string TopList(System.Collections.Generic.IReadOnlyList<System.Collections.Generic.KeyValuePair<string, long>> top, WebhookFormat format) =>
            top.Count == 0 ? "none" : string.Join(", ", top.Take(5).Select(x => $"{Code(x.Key, format)} ({x.Value})"));

        /// <summary>Text from the logs (a sender, a flow) in a code span, so that chat markdown cannot interpret it.</summary>
        private static string Code(string text, WebhookFormat format)
        {
            var t = AlertText.OneLine(text).Replace('`', '\'');
            return "`" + (format == WebhookFormat.Generic ? t : Escape(t)) + "`";
        }

        /// <summary>
        /// Slack parses &lt;...&gt; as links and mentions (&lt;!channel&gt;) everywhere, even in code: its three
        /// characters are escaped as it documents. Teams renders some HTML: the same escaping. CommonMark shows code
        /// spans literally (an entity there would show as typed), so Generic escapes only outside them.
        /// </summary>
        private static string Escape(string text) => text.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");

        private static void WriteNumber(Utf8JsonWriter w, string name, double? v)
        {
            if (v.HasValue && !double.IsNaN(v.Value) && !double.IsInfinity(v.Value))
            {
                w.WriteNumber(name, v.Value);
            }
            else
            {
                w.WriteNull(name);
            }
        }

        private static void WriteTop(Utf8JsonWriter w, string name, string keyName, System.Collections.Generic.IReadOnlyList<System.Collections.Generic.KeyValuePair<string, long>> top)
        {
            w.WriteStartArray(name);
            foreach (var x in top)
            {
                w.WriteStartObject();
                w.WriteString(keyName, x.Key);
                w.WriteNumber("messages", x.Value);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        private static async Task<string> ExcerptAsync(HttpResponseMessage response, CancellationToken cancellationToken)
        {
            try
            {
                // read a little, not the whole body: an error page may be large
                using (var stream = await response.Content.ReadAsStreamAsync().ConfigureAwait(false))
                {
                    var buffer = new byte[ExcerptLength * 4];
                    var read = 0;
                    int n;
                    while (read < buffer.Length && (n = await stream.ReadAsync(buffer, read, buffer.Length - read, cancellationToken).ConfigureAwait(false)) > 0)
                    {
                        read += n;
                    }

                    var text = AlertText.OneLine(Encoding.UTF8.GetString(buffer, 0, read));
                    return text.Length > ExcerptLength ? text.Substring(0, ExcerptLength) + "..." : text;
                }
            }
            catch (Exception e) when (e is IOException || e is HttpRequestException || e is OperationCanceledException)
            {
                return "";
            }
        }

        private static string Inner(Exception e)
        {
            while (e.InnerException != null)
            {
                e = e.InnerException;
            }

            return e.Message;
        }

        /// <summary>A network error's message may quote the request URI: cut anything that looks like one.</summary>
        private static string Scrub(string message) =>
            System.Text.RegularExpressions.Regex.Replace(message, @"https?://\S+", "(url)");
    }
}
