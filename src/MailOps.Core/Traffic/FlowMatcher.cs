using System;
using System.Collections.Generic;
using MailOps.Core.Config;

namespace MailOps.Core.Traffic
{
    /// <summary>
    /// Finds the configured flow of a message from its sender and client host: an exact sender address wins over a
    /// sender domain (<c>lab.test</c> or <c>@lab.test</c>, subdomains with <c>*.lab.test</c>), which wins over a client host.
    /// </summary>
    public sealed class FlowMatcher
    {
        private readonly Dictionary<string, string> _addresses = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        private readonly Dictionary<string, string> _domains = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        private readonly List<KeyValuePair<string, string>> _wildDomains = new List<KeyValuePair<string, string>>();
        private readonly List<KeyValuePair<string, string>> _clients = new List<KeyValuePair<string, string>>();
        private readonly Dictionary<string, string?> _cache = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);

        public FlowMatcher(IEnumerable<FlowConfig>? flows)
        {
            foreach (var flow in flows ?? Array.Empty<FlowConfig>())
            {
                foreach (var s in flow.Senders)
                {
                    var v = s.Trim();
                    if (v.StartsWith("*.", StringComparison.Ordinal))
                    {
                        _wildDomains.Add(new KeyValuePair<string, string>(v.Substring(1), flow.Name));
                    }
                    else if (v.StartsWith("@", StringComparison.Ordinal))
                    {
                        _domains[v.Substring(1)] = flow.Name;
                    }
                    else if (v.IndexOf('@') > 0)
                    {
                        _addresses[v] = flow.Name;
                    }
                    else
                    {
                        _domains[v] = flow.Name;
                    }
                }

                foreach (var c in flow.ClientHosts)
                {
                    _clients.Add(new KeyValuePair<string, string>(c.Trim(), flow.Name));
                }
            }
        }

        public bool IsEmpty => _addresses.Count == 0 && _domains.Count == 0 && _wildDomains.Count == 0 && _clients.Count == 0;

        /// <summary>The flow's name, or null when no flow claims the message.</summary>
        public string? Match(string? sender, string? client)
        {
            if (IsEmpty)
            {
                return null;
            }

            var key = (sender ?? "") + "\n" + (client ?? "");
            if (_cache.TryGetValue(key, out var hit))
            {
                return hit;
            }

            var result = MatchUncached(sender, client);
            if (_cache.Count > 100000)
            {
                _cache.Clear();
            }

            _cache[key] = result;
            return result;
        }

        private string? MatchUncached(string? sender, string? client)
        {
            if (!string.IsNullOrEmpty(sender))
            {
                if (_addresses.TryGetValue(sender!, out var f))
                {
                    return f;
                }

                var at = sender!.LastIndexOf('@');
                if (at >= 0)
                {
                    var domain = sender.Substring(at + 1);
                    if (_domains.TryGetValue(domain, out f))
                    {
                        return f;
                    }

                    foreach (var w in _wildDomains)
                    {
                        if (domain.EndsWith(w.Key, StringComparison.OrdinalIgnoreCase))
                        {
                            return w.Value;
                        }
                    }
                }
            }

            if (!string.IsNullOrEmpty(client))
            {
                // "name[1.2.3.4]" or "name [1.2.3.4]"
                var b = client!.IndexOf('[');
                var name = (b > 0 ? client.Substring(0, b) : client).Trim();
                var ip = b >= 0 ? client.Substring(b + 1).TrimEnd(']') : null;
                foreach (var c in _clients)
                {
                    if (string.Equals(c.Key, name, StringComparison.OrdinalIgnoreCase) || string.Equals(c.Key, ip, StringComparison.OrdinalIgnoreCase) ||
                        (c.Key.StartsWith("*.", StringComparison.Ordinal) && name.EndsWith(c.Key.Substring(1), StringComparison.OrdinalIgnoreCase)))
                    {
                        return c.Value;
                    }
                }
            }

            return null;
        }
    }
}
