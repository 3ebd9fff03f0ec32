using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Config;
using MailOps.Core.Traffic;

namespace MailOps.Core.Routing
{
    /// <summary>Which way a message would take through the MTA with the generated routing policy, and the limits on that way.</summary>
    public sealed class MailRoute
    {
        internal MailRoute(string sender, string? recipient, string? client)
        {
            Sender = sender;
            Recipient = recipient;
            Client = client;
        }

        public string Sender { get; }
        public string? Recipient { get; }
        public string? Client { get; }

        /// <summary>The configured flow the sender (or client) belongs to.</summary>
        public string? Flow { get; internal set; }

        /// <summary>The Postfix transport (mailops_secondary...), or null for the MTA's own path.</summary>
        public string? Transport { get; internal set; }

        /// <summary>The next hop ([host]:port).</summary>
        public string? NextHop { get; internal set; }

        /// <summary>The configured relay the next hop is, or "(the MTA's own path)".</summary>
        public string Relay { get; internal set; } = "(the MTA's own path)";

        /// <summary>The map and key that decided (postmap -q), or why nothing did.</summary>
        public string Decision { get; internal set; } = "";

        /// <summary>The limits on the way: the transport's concurrency and rate delay, the per-client limits.</summary>
        public IReadOnlyList<string> Limits { get; internal set; } = Array.Empty<string>();

        /// <summary>With -Probe: the probe's queue id at the MTA, the relay that delivered it and the log lines that say so.</summary>
        public string? ProbeQueueId { get; internal set; }
        public string? DeliveredBy { get; internal set; }
        public IReadOnlyList<string> ProbeEvidence { get; internal set; } = Array.Empty<string>();

        public override string ToString() => $"{Sender} -> {Recipient}: {Relay}{(Transport != null ? $" ({Transport}:{NextHop})" : "")}";
    }

    /// <summary>
    /// Answers "which relay and transport would this message take" from the generated policy files (the hash maps queried
    /// with postmap -q in Postfix's access(5) lookup order) and the main.cf fragment (the limits).
    /// </summary>
    public sealed class RouteQuery
    {
        private readonly string _folder;
        private readonly IPostfixCommandRunner _runner;
        private readonly PostfixTools _tools;
        private readonly MailOpsConfig _config;

        public RouteQuery(MailOpsConfig config, string policyFolder, IPostfixCommandRunner runner, PostfixTools tools)
        {
            _config = config ?? throw new ArgumentNullException(nameof(config));
            _folder = policyFolder ?? throw new ArgumentNullException(nameof(policyFolder));
            _runner = runner ?? throw new ArgumentNullException(nameof(runner));
            _tools = tools ?? throw new ArgumentNullException(nameof(tools));
        }

        /// <summary>The keys access(5) tries for a sender, in order: the address, its domain and parent domains, then "user@".</summary>
        public static IReadOnlyList<string> SenderKeys(string sender)
        {
            var s = (sender ?? "").Trim().Trim('<', '>').ToLowerInvariant();
            var keys = new List<string> { s };
            var at = s.LastIndexOf('@');
            if (at > 0)
            {
                var domain = s.Substring(at + 1);
                keys.Add(domain);
                for (var dot = domain.IndexOf('.'); dot >= 0 && dot < domain.Length - 1; dot = domain.IndexOf('.', dot + 1))
                {
                    keys.Add(domain.Substring(dot)); // .parent matches subdomains too
                }

                keys.Add("@" + domain);
                keys.Add(s.Substring(0, at + 1));
            }

            return keys.Distinct().ToList();
        }

        /// <summary>The keys access(5) tries for a client address: the address, then its shorter network prefixes.</summary>
        public static IReadOnlyList<string> ClientKeys(string client)
        {
            var c = (client ?? "").Trim();
            var keys = new List<string> { c };
            if (IPAddress.TryParse(c, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
            {
                var parts = c.Split('.');
                for (var n = 3; n >= 1; n--)
                {
                    keys.Add(string.Join(".", parts.Take(n)));
                }
            }

            return keys;
        }

        /// <summary>A route with only the flow named: nothing was asked of the maps (a probe alone answers).</summary>
        public static MailRoute Unanswered(MailOpsConfig config, string sender, string? recipient, string? client) =>
            new MailRoute(sender, recipient, client)
            {
                Flow = new FlowMatcher((config ?? throw new ArgumentNullException(nameof(config))).Flows).Match(sender, client),
                Decision = "the maps were not asked (no -Path): see the probe",
            };

        public async Task<MailRoute> QueryAsync(string sender, string? recipient, string? client, CancellationToken cancellationToken)
        {
            var route = new MailRoute(sender, recipient, client)
            {
                Flow = new FlowMatcher(_config.Flows).Match(sender, client),
            };
            var tried = new List<string>();
            string? value = null;
            string? decided = null;
            if (client != null)
            {
                (value, decided) = await LookUpAsync("mailops_client_filter", ClientKeys(client), tried, cancellationToken).ConfigureAwait(false);
                if (IsVerdict(value, "DUNNO"))
                {
                    value = null; // this table says nothing more: on to the sender's
                }
            }

            if (value == null)
            {
                (value, decided) = await LookUpAsync("mailops_sender_filter", SenderKeys(sender), tried, cancellationToken).ConfigureAwait(false);
            }

            if (IsVerdict(value, "DUNNO") || IsVerdict(value, "OK"))
            {
                // a person-to-person sender or host (DUNNO), or mail a routed relay hands back (OK): the MTA's own path
                route.Decision = decided + ": the MTA's own path";
            }
            else if (value != null)
            {
                // "FILTER transport:[host]:port"
                var v = value.Trim();
                if (v.StartsWith("FILTER ", StringComparison.OrdinalIgnoreCase))
                {
                    v = v.Substring(7).Trim();
                }

                var colon = v.IndexOf(':');
                route.Transport = colon > 0 ? v.Substring(0, colon) : v;
                route.NextHop = colon > 0 ? v.Substring(colon + 1) : null;
                route.Relay = RelayOf(route.NextHop) ?? route.NextHop ?? route.Transport;
                route.Decision = decided!;
            }
            else
            {
                route.Decision = tried.Count == 0 ? "no generated map to ask" : $"no entry for {string.Join(", ", tried)}: the MTA's own path";
            }

            static bool IsVerdict(string? v, string word) => v != null && string.Equals(v.Trim(), word, StringComparison.OrdinalIgnoreCase);

            route.Limits = Limits(route.Transport);
            return route;
        }

        private string? RelayOf(string? nextHop)
        {
            if (nextHop == null)
            {
                return null;
            }

            var h = nextHop.Trim();
            var port = 25;
            var close = h.LastIndexOf(']');
            var colon = h.LastIndexOf(':');
            if (colon > close && int.TryParse(h.Substring(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var p))
            {
                port = p;
                h = h.Substring(0, colon);
            }

            h = h.Trim('[', ']');
            return _config.Relays.FirstOrDefault(r => string.Equals(r.Host, h, StringComparison.OrdinalIgnoreCase) && r.Port == port)?.Name;
        }

        private string? _scratch;

        private async Task<(string? Value, string? Decided)> LookUpAsync(string map, IReadOnlyList<string> keys, List<string> tried, CancellationToken cancel)
        {
            var path = Path.Combine(_folder, map);
            if (!File.Exists(path))
            {
                return (null, null);
            }

            // postmap needs a main.cf: the folder's own (an applied Postfix directory), else an empty one of ours, where a map
            // that was never postmapped (the export folder) is also built, leaving the user's folder as it was
            var configDir = _folder;
            if (!File.Exists(Path.Combine(_folder, "main.cf")) || !File.Exists(path + ".db"))
            {
                configDir = await ScratchAsync(cancel).ConfigureAwait(false);
                if (!File.Exists(path + ".db"))
                {
                    var copy = Path.Combine(configDir, map);
                    File.Copy(path, copy, true);
                    var built = await _runner.RunAsync(_tools.Postmap, new[] { "-c", configDir, "hash:" + copy }, TimeSpan.FromSeconds(60), cancel).ConfigureAwait(false);
                    if (!built.Succeeded)
                    {
                        throw new PostfixApplyException(PostfixFailure.CommandFailed, $"postmap hash:{copy} failed (exit {built.ExitCode}): {built.Output.Trim()}", built.Output);
                    }

                    path = copy;
                }
            }

            foreach (var key in keys)
            {
                tried.Add($"{key} in {map}");
                var r = await _runner.RunAsync(_tools.Postmap, new[] { "-c", configDir, "-q", key, "hash:" + path }, TimeSpan.FromSeconds(20), cancel).ConfigureAwait(false);
                if (r.ExitCode == 0 && !string.IsNullOrWhiteSpace(r.StandardOutput))
                {
                    return (r.StandardOutput.Trim(), $"postmap -q {key} hash:{Path.Combine(_folder, map)} -> {r.StandardOutput.Trim()}");
                }

                // exit 1 is "not found", unless postmap died (it exits 1 then too, saying fatal)
                if (r.TimedOut || (r.ExitCode != 0 && r.ExitCode != 1) || r.Output.IndexOf("fatal:", StringComparison.Ordinal) >= 0)
                {
                    throw new PostfixApplyException(PostfixFailure.CommandFailed, $"postmap -q {key} hash:{path} failed (exit {r.ExitCode}): {r.Output.Trim()}", r.Output);
                }
            }

            return (null, null);
        }

        private async Task<string> ScratchAsync(CancellationToken cancel)
        {
            if (_scratch == null)
            {
                _scratch = Path.Combine(Path.GetTempPath(), "mailops-route-" + Guid.NewGuid().ToString("N").Substring(0, 8));
                Directory.CreateDirectory(_scratch);
                File.WriteAllText(Path.Combine(_scratch, "main.cf"), "# an empty main.cf for postmap (Test-MailRouting)\n");
            }

            await Task.Yield();
            cancel.ThrowIfCancellationRequested();
            return _scratch;
        }

        /// <summary>Removes the scratch folder where maps that were never postmapped were built, if one was made.</summary>
        public void Cleanup()
        {
            if (_scratch != null && Directory.Exists(_scratch))
            {
                try
                {
                    Directory.Delete(_scratch, true);
                }
                catch (IOException)
                {
                    // a temp folder: the system's cleanup will take it
                }
                catch (UnauthorizedAccessException)
                {
                }
            }
        }

        /// <summary>The limit lines of main.cf.fragment that apply to a transport (and the per-client ones).</summary>
        private IReadOnlyList<string> Limits(string? transport)
        {
            // the generated fragment, or the main.cf it was applied to (a Postfix configuration directory)
            var path = Path.Combine(_folder, "main.cf.fragment");
            if (!File.Exists(path))
            {
                path = Path.Combine(_folder, "main.cf");
                if (!File.Exists(path))
                {
                    return Array.Empty<string>();
                }
            }

            return File.ReadAllLines(path).Select(l => l.Trim())
                .Where(l => l.Length > 0 && !l.StartsWith("#", StringComparison.Ordinal))
                .Where(l => (transport != null && l.StartsWith(transport + "_", StringComparison.Ordinal)) || l.StartsWith("smtpd_client_", StringComparison.Ordinal) || l.StartsWith("anvil_rate_time_unit", StringComparison.Ordinal))
                .ToList();
        }
    }
}

namespace MailOps.Core.Routing
{
    /// <summary>
    /// Sends a marked message through the MTA under test and reads, in that relay's own log, which way it left: the
    /// relay= of its delivery line names the next hop (one of the configured relays, or the MTA itself for local delivery).
    /// </summary>
    public static class RouteProbe
    {
        /// <summary>Sends the probe through <paramref name="via"/> (whose 'log:' is read) and fills the route's probe fields.</summary>
        public static async Task ProbeAsync(MailRoute route, RelayConfig via, System.Net.NetworkCredential? credential,
            IReadOnlyList<System.Security.Cryptography.X509Certificates.X509Certificate2> trustedCa, IReadOnlyList<RelayConfig> relays, TimeSpan wait, CancellationToken cancellationToken)
        {
            if (route == null || via == null || relays == null)
            {
                throw new ArgumentNullException(route == null ? nameof(route) : via == null ? nameof(via) : nameof(relays));
            }

            if (via.Log == null || !File.Exists(via.Log))
            {
                throw new InvalidOperationException($"The relay '{via.Name}' has no readable 'log:' in the configuration: the probe could not be followed.");
            }

            var id = Guid.NewGuid().ToString("N").Substring(0, 12);
            var message = new MimeKit.MimeMessage();
            message.From.Add(MimeKit.MailboxAddress.Parse(route.Sender));
            message.To.Add(MimeKit.MailboxAddress.Parse(route.Recipient ?? throw new ArgumentException("A probe needs a recipient.", nameof(route))));
            message.Subject = "MailOps routing probe " + id;
            message.Headers.Add("X-MailOps-Probe", id);
            message.Body = new MimeKit.TextPart("plain") { Text = $"A routing probe of MailOps (Test-MailRouting -Probe), id {id}. It can be deleted.\r\n" };
            var start = new FileInfo(via.Log).Length;
            var reply = await Smtp.RelaySubmitter.SendAsync(via, credential, trustedCa, message, TimeSpan.FromSeconds(Math.Max(10, via.TimeoutSeconds)), cancellationToken).ConfigureAwait(false);
            var qid = QueuedAs(reply) ?? throw new InvalidOperationException($"The relay '{via.Name}' took the probe but named no queue id ('{reply}').");
            route.ProbeQueueId = qid;
            var evidence = new List<string> { $"{via.Name} took the probe {id}: {reply}" };
            var deadline = DateTime.UtcNow + wait;
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var delivery = Deliveries(via.Log, start, qid).FirstOrDefault(r => r.Status != "deferred");
                if (delivery != null)
                {
                    var relayField = delivery.Relay ?? "";
                    evidence.Add($"{via.Log}: {qid} to=<{delivery.Recipient}> relay={relayField} status={delivery.Status} ({delivery.Text})");
                    route.DeliveredBy = RelayNamed(relayField, relays) ?? (relayField.IndexOf('[') < 0 ? $"{via.Name} itself ({relayField})" : relayField);
                    break;
                }

                if (DateTime.UtcNow > deadline)
                {
                    evidence.Add($"{via.Log}: no delivery of {qid} within {wait.TotalSeconds:0} s");
                    break;
                }

                await Task.Delay(250, cancellationToken).ConfigureAwait(false);
            }

            route.ProbeEvidence = evidence;
        }

        /// <summary>The queue id in a "250 2.0.0 Ok: queued as 4XyZ1" reply.</summary>
        public static string? QueuedAs(string? reply)
        {
            var at = reply?.IndexOf("queued as ", StringComparison.Ordinal) ?? -1;
            if (at < 0)
            {
                return null;
            }

            var start = at + "queued as ".Length;
            var end = start;
            while (end < reply!.Length && char.IsLetterOrDigit(reply[end]))
            {
                end++;
            }

            return end > start ? reply.Substring(start, end - start) : null;
        }

        private static List<Logs.MailLogRecord> Deliveries(string log, long from, string qid)
        {
            var found = new List<Logs.MailLogRecord>();
            using (var stream = File.Open(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            {
                stream.Seek(Math.Min(from, stream.Length), SeekOrigin.Begin);
                using (var reader = new StreamReader(stream))
                {
                    foreach (var r in new Logs.MailLogParser().Read(reader, log))
                    {
                        if (r.Kind == Logs.MailLogRecordKind.Delivery && r.QueueId == qid)
                        {
                            _ = r.Relay;
                            _ = r.Text;
                            found.Add(r);
                        }
                    }
                }
            }

            return found;
        }

        /// <summary>The configured relay a delivery's relay= field ("host[address]:port") names.</summary>
        private static string? RelayNamed(string relayField, IReadOnlyList<RelayConfig> relays)
        {
            var open = relayField.IndexOf('[');
            var close = relayField.IndexOf(']');
            if (open < 0 || close < open)
            {
                return null;
            }

            var name = relayField.Substring(0, open);
            var address = relayField.Substring(open + 1, close - open - 1);
            var port = 25;
            if (close + 1 < relayField.Length && relayField[close + 1] == ':')
            {
                int.TryParse(relayField.Substring(close + 2), NumberStyles.None, CultureInfo.InvariantCulture, out port);
            }

            return relays.FirstOrDefault(r => r.Port == port && (string.Equals(r.Host, address, StringComparison.OrdinalIgnoreCase) || string.Equals(r.Host, name, StringComparison.OrdinalIgnoreCase)))?.Name;
        }
    }
}
