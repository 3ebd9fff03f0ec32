using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Providers;

namespace MailOps.Core.Store
{
    public sealed partial class BounceStore : IAttributionCache
    {
        /// <summary>The attributions recorded for these domains (fresh or expired: the caller decides).</summary>
        public async Task<IReadOnlyDictionary<string, MailProviderResult>> GetAsync(IReadOnlyCollection<string> domains, CancellationToken cancellationToken)
        {
            var result = new Dictionary<string, MailProviderResult>(StringComparer.OrdinalIgnoreCase);
            var list = (domains ?? throw new ArgumentNullException(nameof(domains))).Distinct().ToList();
            for (var i = 0; i < list.Count; i += 500)
            {
                var chunk = list.Skip(i).Take(500).ToList();
                var where = new List<string>();
                var args = new List<(string, object?)>();
                AddIn(where, args, "domain", "d", chunk);
                using (var cmd = Command("SELECT domain, status, data, resolved_at, expires_at FROM provider_attributions WHERE " + where[0], null, args.ToArray()))
                using (var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        var r = Decode(reader.GetString(0), reader.GetString(1), reader.GetString(2), ParseIso(reader.GetString(3)), ParseIso(reader.GetString(4)));
                        if (r != null)
                        {
                            result[r.Domain] = r;
                        }
                    }
                }
            }

            return result;
        }

        /// <summary>Records attributions (one row per domain, the newest wins), in one transaction.</summary>
        public async Task PutAsync(IReadOnlyCollection<MailProviderResult> results, CancellationToken cancellationToken)
        {
            using (var tx = _connection.BeginTransaction())
            {
                foreach (var r in (results ?? throw new ArgumentNullException(nameof(results))).GroupBy(x => x.Domain).Select(g => g.Last()))
                {
                    await ExecuteAsync(
                        "INSERT INTO provider_attributions (domain, status, data, resolved_at, expires_at) VALUES (@d, @s, @x, @r, @e) " +
                        "ON CONFLICT (domain) DO UPDATE SET status = excluded.status, data = excluded.data, resolved_at = excluded.resolved_at, expires_at = excluded.expires_at",
                        cancellationToken, tx, ("@d", r.Domain), ("@s", r.Status.ToString()), ("@x", Encode(r)), ("@r", Iso(r.ResolvedAt)), ("@e", Iso(r.ExpiresAt))).ConfigureAwait(false);
                }

                tx.Commit();
            }
        }

        private static string Clean(string? s) => (s ?? "").Replace('\t', ' ').Replace('\n', ' ').Replace('\r', ' ');

        private static string Encode(MailProviderResult r)
        {
            var sb = new StringBuilder();
            sb.Append("mail\t").Append(Clean(r.MailProvider)).Append('\n');
            sb.Append("dns\t").Append(Clean(r.DnsProvider)).Append('\n');
            sb.Append("owner\t").Append(Clean(r.AddressOwner)).Append('\n');
            sb.Append("confidence\t").Append(r.Confidence).Append('\n');
            sb.Append("mx\t").Append(string.Join(" ", r.MxHosts)).Append('\n');
            sb.Append("mxaddr\t").Append(string.Join(" ", r.MxAddresses)).Append('\n');
            sb.Append("ns\t").Append(string.Join(" ", r.NsHosts)).Append('\n');
            sb.Append("asn\t").Append(string.Join(" ", r.AsNumbers.Select(a => a.ToString(CultureInfo.InvariantCulture)))).Append('\n');
            foreach (var e in r.Evidence)
            {
                sb.Append("ev\t").Append(Clean(e.Provider)).Append('\t').Append(e.Role).Append('\t').Append(Clean(e.Kind)).Append('\t').Append(Clean(e.Value)).Append('\t').Append(Clean(e.Rule)).Append('\n');
            }

            foreach (var p in r.Problems)
            {
                sb.Append("problem\t").Append(Clean(p)).Append('\n');
            }

            return sb.ToString();
        }

        private static MailProviderResult? Decode(string domain, string status, string data, DateTimeOffset resolvedAt, DateTimeOffset expiresAt)
        {
            if (!Enum.TryParse<AttributionStatus>(status, out var st))
            {
                return null;
            }

            var fields = new Dictionary<string, string>();
            var evidence = new List<ProviderEvidence>();
            var problems = new List<string>();
            foreach (var line in data.Split('\n').Where(l => l.Length > 0))
            {
                var parts = line.Split('\t');
                if (parts[0] == "ev" && parts.Length >= 6 && Enum.TryParse<ProviderRole>(parts[2], out var role))
                {
                    evidence.Add(new ProviderEvidence(parts[1], role, parts[3], parts[4], parts[5]));
                }
                else if (parts[0] == "problem" && parts.Length > 1)
                {
                    problems.Add(parts[1]);
                }
                else if (parts.Length > 1)
                {
                    fields[parts[0]] = parts[1];
                }
            }

            string? F(string k) => fields.TryGetValue(k, out var v) && v.Length > 0 ? v : null;
            IReadOnlyList<string> L(string k) => (F(k) ?? "").Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries);
            if (!Enum.TryParse<AttributionConfidence>(F("confidence") ?? "None", out var confidence))
            {
                confidence = AttributionConfidence.None;
            }

            return new MailProviderResult(domain, domain, st, F("mail"), F("dns"), F("owner"), confidence, L("mx"), L("mxaddr"), L("ns"),
                L("asn").Select(a => int.Parse(a, CultureInfo.InvariantCulture)).ToList(), evidence, problems, resolvedAt, expiresAt);
        }
    }
}
