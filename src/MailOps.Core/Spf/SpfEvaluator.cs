using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Dns;

namespace MailOps.Core.Spf
{
    /// <summary>
    /// RFC 7208 check_host(): record selection, the whole-record syntax check, every mechanism and modifier, macros,
    /// the limits on DNS-querying terms and void lookups, and exp= explanations. DNS failures give temperror where the
    /// RFC says so; they are never read as "no".
    /// </summary>
    public sealed class SpfEvaluator
    {
        private readonly IDnsResolver _dns;
        private readonly SpfOptions _options;

        public SpfEvaluator(IDnsResolver dns, SpfOptions? options = null)
        {
            _dns = dns ?? throw new ArgumentNullException(nameof(dns));
            _options = options ?? new SpfOptions();
        }

        /// <summary>
        /// Evaluates <paramref name="domain"/>'s policy for mail from <paramref name="ip"/> with envelope sender
        /// <paramref name="sender"/> (use postmaster@helo when the envelope sender is empty).
        /// </summary>
        public async Task<SpfResult> CheckHostAsync(IPAddress ip, string domain, string sender, string? helo, CancellationToken cancellationToken)
        {
            if (ip == null)
            {
                throw new ArgumentNullException(nameof(ip));
            }

            if (ip.IsIPv4MappedToIPv6)
            {
                ip = ip.MapToIPv4();
            }

            var state = new State(ip, sender ?? "", helo ?? "", cancellationToken);
            Outcome outcome;
            try
            {
                outcome = await CheckAsync(state, domain ?? "", 0).ConfigureAwait(false);
            }
            catch (SpfException e)
            {
                outcome = new Outcome(e.Kind, null, null, e.Message);
            }

            return new SpfResult(outcome.Kind, domain ?? "", state.TopRecord, outcome.Mechanism, outcome.Explanation, outcome.Reason,
                state.Lookups, state.VoidLookups, state.Trace);
        }

        private sealed class State
        {
            public State(IPAddress ip, string sender, string helo, CancellationToken cancel)
            {
                Ip = ip;
                Sender = sender;
                Helo = helo;
                Cancel = cancel;
            }

            public IPAddress Ip { get; }
            public string Sender { get; }
            public string Helo { get; }
            public CancellationToken Cancel { get; }
            public int Lookups { get; set; }
            public int VoidLookups { get; set; }
            public string? TopRecord { get; set; }
            public List<SpfTraceStep> Trace { get; } = new List<SpfTraceStep>();
            public bool IsV6 => Ip.AddressFamily == AddressFamily.InterNetworkV6;
        }

        private sealed class Outcome
        {
            public Outcome(SpfResultKind kind, string? mechanism, string? explanation, string reason)
            {
                Kind = kind;
                Mechanism = mechanism;
                Explanation = explanation;
                Reason = reason;
            }

            public SpfResultKind Kind { get; }
            public string? Mechanism { get; }
            public string? Explanation { get; }
            public string Reason { get; }
        }

        private sealed class SpfException : Exception
        {
            public SpfException(SpfResultKind kind, string message) : base(message)
            {
                Kind = kind;
            }

            public SpfException()
            {
            }

            public SpfException(string message) : base(message)
            {
            }

            public SpfException(string message, Exception innerException) : base(message, innerException)
            {
            }

            public SpfResultKind Kind { get; }
        }

        private async Task<Outcome> CheckAsync(State s, string domain, int depth)
        {
            s.Cancel.ThrowIfCancellationRequested();
            domain = domain.TrimEnd('.');
            if (!IsValidDomain(domain, requireMultiLabel: true))
            {
                s.Trace.Add(new SpfTraceStep(depth, domain, "(domain)", "none: not a valid multi-label domain name"));
                return new Outcome(SpfResultKind.None, null, null, $"'{domain}' is not a valid domain name");
            }

            var txt = await _dns.QueryTxtAsync(domain, s.Cancel).ConfigureAwait(false);
            if (txt.IsUnknown)
            {
                s.Trace.Add(new SpfTraceStep(depth, domain, "(TXT lookup)", "temperror: " + txt));
                return new Outcome(SpfResultKind.TempError, null, null, $"the TXT lookup of {domain} failed ({txt.Status})");
            }

            var records = txt.Records.Where(r => r.Equals("v=spf1", StringComparison.OrdinalIgnoreCase) || r.StartsWith("v=spf1 ", StringComparison.OrdinalIgnoreCase)).ToList();
            if (records.Count == 0)
            {
                s.Trace.Add(new SpfTraceStep(depth, domain, "(TXT lookup)", "none: no SPF record"));
                return new Outcome(SpfResultKind.None, null, null, $"{domain} publishes no SPF record");
            }

            if (records.Count > 1)
            {
                s.Trace.Add(new SpfTraceStep(depth, domain, "(TXT lookup)", $"permerror: {records.Count} SPF records"));
                return new Outcome(SpfResultKind.PermError, null, null, $"{domain} publishes {records.Count} SPF records; exactly one is allowed");
            }

            var record = records[0];
            if (depth == 0)
            {
                s.TopRecord = record;
            }

            s.Trace.Add(new SpfTraceStep(depth, domain, "(record)", record));
            SpfParsedRecord parsed;
            try
            {
                parsed = SpfRecordParser.Parse(record);
            }
            catch (SpfSyntaxException e)
            {
                throw e.AtTerm ? Perm(s, depth, domain, e.Term, e.Why) : new SpfException(SpfResultKind.PermError, e.Message);
            }

            var (terms, redirect, exp) = (parsed.Terms, parsed.Redirect, parsed.Exp);

            foreach (var term in terms)
            {
                var matched = await MatchAsync(s, term, domain, depth).ConfigureAwait(false);
                s.Trace.Add(new SpfTraceStep(depth, domain, term.Text, matched ? "match" : "no match"));
                if (!matched)
                {
                    continue;
                }

                var kind = term.Qualifier switch
                {
                    '-' => SpfResultKind.Fail,
                    '~' => SpfResultKind.SoftFail,
                    '?' => SpfResultKind.Neutral,
                    _ => SpfResultKind.Pass,
                };
                string? explanation = null;
                if (kind == SpfResultKind.Fail && exp != null)
                {
                    explanation = await ExplainAsync(s, exp, domain).ConfigureAwait(false);
                }

                return new Outcome(kind, term.Text, explanation, $"'{term.Text}' in the record of {domain} matched {s.Ip}");
            }

            if (redirect != null)
            {
                Count(s, domain, depth, "redirect=" + redirect);
                var target = ExpandDomain(s, redirect, domain, false);
                s.Trace.Add(new SpfTraceStep(depth, domain, "redirect=" + redirect, "to " + target));
                var result = await CheckAsync(s, target, depth + 1).ConfigureAwait(false);
                if (result.Kind == SpfResultKind.None)
                {
                    return new Outcome(SpfResultKind.PermError, null, null, $"the redirect of {domain} to {target} found no SPF record");
                }

                return result;
            }

            return new Outcome(SpfResultKind.Neutral, null, null, $"no mechanism in the record of {domain} matched {s.Ip} (default neutral)");
        }

        private static SpfException Perm(State s, int depth, string domain, string term, string why)
        {
            s.Trace.Add(new SpfTraceStep(depth, domain, term, "permerror: " + why));
            return new SpfException(SpfResultKind.PermError, $"the record of {domain} has a syntax error at '{term}': {why}");
        }

        private void Count(State s, string domain, int depth, string term)
        {
            s.Lookups++;
            if (s.Lookups > _options.MaxDnsMechanisms)
            {
                s.Trace.Add(new SpfTraceStep(depth, domain, term, $"permerror: more than {_options.MaxDnsMechanisms} DNS-querying terms"));
                throw new SpfException(SpfResultKind.PermError, $"the evaluation needs more than {_options.MaxDnsMechanisms} DNS lookups (RFC 7208 limit), reached at '{term}' in {domain}");
            }
        }

        private void Void(State s, string domain, int depth, string term)
        {
            s.VoidLookups++;
            if (s.VoidLookups > _options.MaxVoidLookups)
            {
                s.Trace.Add(new SpfTraceStep(depth, domain, term, $"permerror: more than {_options.MaxVoidLookups} void lookups"));
                throw new SpfException(SpfResultKind.PermError, $"more than {_options.MaxVoidLookups} lookups found nothing (RFC 7208 void-lookup limit), reached at '{term}' in {domain}");
            }
        }

        private async Task<bool> MatchAsync(State s, SpfTerm term, string domain, int depth)
        {
            switch (term.Name)
            {
                case "all":
                    return true;
                case "ip4":
                    return !s.IsV6 && InNetwork(s.Ip, term.Network!, term.Cidr4);
                case "ip6":
                    return s.IsV6 && InNetwork(s.Ip, term.Network!, term.Cidr6);
                case "a":
                    {
                        Count(s, domain, depth, term.Text);
                        var target = ExpandDomain(s, term.DomainSpec ?? domain, domain, false);
                        var addresses = await _dns.QueryAddressesAsync(target, s.IsV6, s.Cancel).ConfigureAwait(false);
                        if (addresses.IsUnknown)
                        {
                            throw new SpfException(SpfResultKind.TempError, $"the address lookup of {target} failed ({addresses.Status})");
                        }

                        if (addresses.IsAbsent)
                        {
                            Void(s, domain, depth, term.Text);
                            return false;
                        }

                        return addresses.Records.Any(a => InNetwork(s.Ip, a, s.IsV6 ? term.Cidr6 : term.Cidr4));
                    }

                case "mx":
                    {
                        Count(s, domain, depth, term.Text);
                        var target = ExpandDomain(s, term.DomainSpec ?? domain, domain, false);
                        var mx = await _dns.QueryMxAsync(target, s.Cancel).ConfigureAwait(false);
                        if (mx.IsUnknown)
                        {
                            throw new SpfException(SpfResultKind.TempError, $"the MX lookup of {target} failed ({mx.Status})");
                        }

                        if (mx.IsAbsent)
                        {
                            Void(s, domain, depth, term.Text);
                            return false;
                        }

                        if (mx.Records.Count > _options.MaxNamesPerMechanism)
                        {
                            throw new SpfException(SpfResultKind.PermError, $"{target} has more than {_options.MaxNamesPerMechanism} MX records (RFC 7208 limit)");
                        }

                        foreach (var host in mx.Records.OrderBy(r => r.Preference).Select(r => r.Exchange))
                        {
                            var addresses = await _dns.QueryAddressesAsync(host, s.IsV6, s.Cancel).ConfigureAwait(false);
                            if (addresses.Records.Any(a => InNetwork(s.Ip, a, s.IsV6 ? term.Cidr6 : term.Cidr4)))
                            {
                                return true;
                            }
                        }

                        return false;
                    }

                case "ptr":
                    {
                        Count(s, domain, depth, term.Text);
                        var target = ExpandDomain(s, term.DomainSpec ?? domain, domain, false);
                        var names = await ValidatedNamesAsync(s, domain, depth, term.Text).ConfigureAwait(false);
                        return names.Any(n => string.Equals(n, target, StringComparison.OrdinalIgnoreCase) || n.EndsWith("." + target, StringComparison.OrdinalIgnoreCase));
                    }

                case "exists":
                    {
                        Count(s, domain, depth, term.Text);
                        var target = ExpandDomain(s, term.DomainSpec!, domain, false);
                        var a = await _dns.QueryAddressesAsync(target, false, s.Cancel).ConfigureAwait(false);
                        if (a.IsUnknown)
                        {
                            throw new SpfException(SpfResultKind.TempError, $"the lookup of {target} failed ({a.Status})");
                        }

                        if (a.IsAbsent)
                        {
                            Void(s, domain, depth, term.Text);
                            return false;
                        }

                        return true;
                    }

                case "include":
                    {
                        Count(s, domain, depth, term.Text);
                        var target = ExpandDomain(s, term.DomainSpec!, domain, false);
                        var inner = await CheckAsync(s, target, depth + 1).ConfigureAwait(false);
                        switch (inner.Kind)
                        {
                            case SpfResultKind.Pass:
                                return true;
                            case SpfResultKind.TempError:
                                throw new SpfException(SpfResultKind.TempError, $"include:{target}: {inner.Reason}");
                            case SpfResultKind.PermError:
                                throw new SpfException(SpfResultKind.PermError, $"include:{target}: {inner.Reason}");
                            case SpfResultKind.None:
                                throw new SpfException(SpfResultKind.PermError, $"include:{target} has no SPF record");
                            default:
                                return false;
                        }
                    }

                default:
                    return false;
            }
        }

        /// <summary>PTR names of the client that resolve back to it (at most 10 names are tried).</summary>
        private async Task<List<string>> ValidatedNamesAsync(State s, string domain, int depth, string term)
        {
            var result = new List<string>();
            var ptr = await _dns.QueryPtrAsync(s.Ip, s.Cancel).ConfigureAwait(false);
            if (ptr.IsAbsent && term != "%{p}")
            {
                Void(s, domain, depth, term);
            }

            foreach (var name in ptr.Records.Take(_options.MaxNamesPerMechanism))
            {
                var addresses = await _dns.QueryAddressesAsync(name, s.IsV6, s.Cancel).ConfigureAwait(false);
                if (addresses.Records.Any(a => a.Equals(s.Ip)))
                {
                    result.Add(name.TrimEnd('.'));
                }
            }

            return result;
        }

        private static bool InNetwork(IPAddress ip, IPAddress network, int prefix)
        {
            if (ip.AddressFamily != network.AddressFamily)
            {
                return false;
            }

            var a = ip.GetAddressBytes();
            var b = network.GetAddressBytes();
            for (var i = 0; i < a.Length && prefix > 0; i++, prefix -= 8)
            {
                var mask = prefix >= 8 ? 0xFF : (byte)(0xFF << (8 - prefix));
                if ((a[i] & mask) != (b[i] & mask))
                {
                    return false;
                }
            }

            return true;
        }

        private async Task<string?> ExplainAsync(State s, string exp, string domain)
        {
            try
            {
                var target = ExpandDomain(s, exp, domain, false);
                if (!IsValidDomain(target, requireMultiLabel: false))
                {
                    return null;
                }

                var txt = await _dns.QueryTxtAsync(target, s.Cancel).ConfigureAwait(false);
                if (!txt.IsOk || txt.Records.Count != 1)
                {
                    return null;
                }

                return Expand(s, txt.Records[0], domain, true);
            }
            catch (SpfException)
            {
                return null;
            }
        }

        // ---------- macros (RFC 7208 section 7) ----------

        private string ExpandDomain(State s, string spec, string domain, bool isExp)
        {
            var expanded = Expand(s, spec, domain, isExp).TrimEnd('.');
            while (expanded.Length > 253)
            {
                var dot = expanded.IndexOf('.');
                if (dot < 0)
                {
                    break;
                }

                expanded = expanded.Substring(dot + 1);
            }

            return expanded;
        }

        private string Expand(State s, string text, string domain, bool isExp)
        {
            var sb = new StringBuilder();
            for (var i = 0; i < text.Length; i++)
            {
                var c = text[i];
                if (c != '%')
                {
                    sb.Append(c);
                    continue;
                }

                if (i + 1 >= text.Length)
                {
                    throw new SpfException(SpfResultKind.PermError, "a lone '%' in a macro string");
                }

                var n = text[++i];
                if (n == '%')
                {
                    sb.Append('%');
                    continue;
                }

                if (n == '_')
                {
                    sb.Append(' ');
                    continue;
                }

                if (n == '-')
                {
                    sb.Append("%20");
                    continue;
                }

                if (n != '{')
                {
                    throw new SpfException(SpfResultKind.PermError, $"invalid macro '%{n}'");
                }

                var close = text.IndexOf('}', i);
                if (close < 0)
                {
                    throw new SpfException(SpfResultKind.PermError, "an unterminated macro");
                }

                var m = Regex.Match(text.Substring(i + 1, close - i - 1), @"^(?<l>[slodipvhcrtSLODIPVHCRT])(?<d>\d*)(?<r>r?)(?<delim>[.\-+,/_=]*)$", RegexOptions.CultureInvariant);
                if (!m.Success)
                {
                    throw new SpfException(SpfResultKind.PermError, "an invalid macro");
                }

                var letter = m.Groups["l"].Value[0];
                var value = MacroValue(s, char.ToLowerInvariant(letter), domain, isExp);
                var delimiters = m.Groups["delim"].Value.Length > 0 ? m.Groups["delim"].Value.ToCharArray() : new[] { '.' };
                var parts = value.Split(delimiters).ToList();
                if (m.Groups["r"].Value.Length > 0)
                {
                    parts.Reverse();
                }

                if (m.Groups["d"].Value.Length > 0)
                {
                    if (!int.TryParse(m.Groups["d"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var keep) || keep == 0)
                    {
                        throw new SpfException(SpfResultKind.PermError, "a macro transformer of 0");
                    }

                    if (keep < parts.Count)
                    {
                        parts = parts.Skip(parts.Count - keep).ToList();
                    }
                }

                var result = string.Join(".", parts);
                if (char.IsUpper(letter))
                {
                    result = Uri.EscapeDataString(result);
                }

                sb.Append(result);
                i = close;
            }

            return sb.ToString();
        }

        private string MacroValue(State s, char letter, string domain, bool isExp)
        {
            var sender = s.Sender;
            var at = sender.LastIndexOf('@');
            var local = at > 0 ? sender.Substring(0, at) : "postmaster";
            var senderDomain = at >= 0 ? sender.Substring(at + 1) : sender;
            switch (letter)
            {
                case 's':
                    return at > 0 ? sender : "postmaster@" + senderDomain;
                case 'l':
                    return local;
                case 'o':
                    return senderDomain;
                case 'd':
                    return domain;
                case 'i':
                    return s.IsV6
                        ? string.Join(".", s.Ip.GetAddressBytes().SelectMany(b => new[] { b >> 4, b & 0xF }).Select(x => x.ToString("x", CultureInfo.InvariantCulture)))
                        : s.Ip.ToString();
                case 'p':
                    return PtrMacro(s, domain);
                case 'v':
                    return s.IsV6 ? "ip6" : "in-addr";
                case 'h':
                    return s.Helo;
                case 'c':
                    return isExp ? s.Ip.ToString() : throw new SpfException(SpfResultKind.PermError, "the c macro is allowed only in exp= text");
                case 'r':
                    return isExp ? _options.ReceiverName : throw new SpfException(SpfResultKind.PermError, "the r macro is allowed only in exp= text");
                case 't':
                    return isExp ? DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture) : throw new SpfException(SpfResultKind.PermError, "the t macro is allowed only in exp= text");
                default:
                    throw new SpfException(SpfResultKind.PermError, "an unknown macro letter");
            }
        }

        private string PtrMacro(State s, string domain)
        {
            // %{p}: a validated name of the client, preferring one within <domain>. Synchronous by design of the
            // macro expander; discouraged by the RFC and rare in practice.
            var names = ValidatedNamesAsync(s, domain, 0, "%{p}").GetAwaiter().GetResult();
            var inDomain = names.FirstOrDefault(n => string.Equals(n, domain, StringComparison.OrdinalIgnoreCase) || n.EndsWith("." + domain, StringComparison.OrdinalIgnoreCase));
            return inDomain ?? names.FirstOrDefault() ?? "unknown";
        }

        internal static bool IsValidDomain(string domain, bool requireMultiLabel)
        {
            if (domain.Length == 0 || domain.Length > 253)
            {
                return false;
            }

            var labels = domain.Split('.');
            if (requireMultiLabel && labels.Length < 2)
            {
                return false;
            }

            return labels.All(l => l.Length > 0 && l.Length <= 63);
        }
    }
}
