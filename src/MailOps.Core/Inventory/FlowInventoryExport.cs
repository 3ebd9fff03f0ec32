using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Text;
using System.Text.Json;

namespace MailOps.Core.Inventory
{
    /// <summary>The file formats of Export-EmailFlowInventory.</summary>
    public enum InventoryExportFormat
    {
        Csv,
        Json,
        Html,
    }

    /// <summary>
    /// Writes an inventory as CSV (one row per flow, for spreadsheets), JSON (everything, for other tools) or a standalone
    /// HTML page (summary, flows, findings with actions, domains: no script, no external resource, all text encoded).
    /// </summary>
    public static class FlowInventoryExport
    {
        private static readonly JsonSerializerOptions JsonOptions = new JsonSerializerOptions { WriteIndented = true };

        private static readonly string[] CsvColumns =
        {
            "Name", "Status", "Kind", "Owner", "Domains", "Senders", "Relay", "Esp", "Service", "SeenSenders", "LogMessages", "LogRecipients",
            "DmarcMessages", "DmarcPassRate", "SpfAuthorised", "SpfEvidence", "DkimPublished", "DkimEvidence", "Severity", "Findings", "Actions", "FirstSeen", "LastSeen",
        };

        public static void Write(TextWriter writer, IReadOnlyList<EmailFlowInventoryItem> items, InventoryExportFormat format, string? title = null, DateTimeOffset? generated = null)
        {
            switch (format)
            {
                case InventoryExportFormat.Csv:
                    WriteCsv(writer, items);
                    break;
                case InventoryExportFormat.Json:
                    WriteJson(writer, items, generated ?? DateTimeOffset.UtcNow);
                    break;
                default:
                    WriteHtml(writer, items, title ?? "Email flow inventory", generated ?? DateTimeOffset.UtcNow);
                    break;
            }
        }

        /// <summary>One row per flow; lists joined with "; ". Cells that a spreadsheet would run as a formula are prefixed with a quote.</summary>
        public static void WriteCsv(TextWriter writer, IEnumerable<EmailFlowInventoryItem> items)
        {
            if (writer == null || items == null)
            {
                throw new ArgumentNullException(writer == null ? nameof(writer) : nameof(items));
            }

            writer.Write(string.Join(",", CsvColumns));
            writer.Write("\r\n");
            foreach (var i in items)
            {
                var cells = new[]
                {
                    i.Name, i.Status.ToString(), i.Kind?.ToString(), i.Owner, string.Join("; ", i.Domains), string.Join("; ", i.Senders), i.Relay, i.Esp, i.Service,
                    string.Join("; ", i.SeenSenders.Select(s => s.Address)), Num(i.LogMessages), Num(i.LogRecipients), Num(i.DmarcMessages),
                    i.DmarcPassRate?.ToString("0.###", CultureInfo.InvariantCulture), i.SpfAuthorised?.ToString(), i.SpfEvidence, i.DkimPublished?.ToString(), i.DkimEvidence,
                    i.Severity?.ToString(), string.Join(" | ", i.Findings.Select(f => $"{f.Severity} {f.Code}: {f.Message}")),
                    string.Join(" | ", i.Findings.Where(f => f.Action != null).Select(f => f.Action).Distinct()), Time(i.FirstSeen), Time(i.LastSeen),
                };
                writer.Write(string.Join(",", cells.Select(Cell)));
                writer.Write("\r\n");
            }
        }

        private static string Num(long n) => n.ToString(CultureInfo.InvariantCulture);

        private static string? Time(DateTimeOffset? t) => t?.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

        private static string Cell(string? value)
        {
            var v = value ?? "";
            if (v.Length > 0 && "=+-@\t\r".IndexOf(v[0]) >= 0)
            {
                v = "'" + v; // formula injection: a cell beginning with = + - @ would run in a spreadsheet
            }

            return v.IndexOfAny(new[] { ',', '"', '\r', '\n' }) >= 0 ? "\"" + v.Replace("\"", "\"\"") + "\"" : v;
        }

        /// <summary>Everything the items carry, including the per-domain DNS evidence, as one JSON document.</summary>
        public static void WriteJson(TextWriter writer, IEnumerable<EmailFlowInventoryItem> items, DateTimeOffset generated)
        {
            if (writer == null || items == null)
            {
                throw new ArgumentNullException(writer == null ? nameof(writer) : nameof(items));
            }

            var list = items.ToList();
            var doc = new Dictionary<string, object?>
            {
                ["generated"] = Time(generated),
                ["flows"] = list.Select(i => new Dictionary<string, object?>
                {
                    ["name"] = i.Name,
                    ["status"] = i.Status.ToString(),
                    ["declared"] = i.Declared,
                    ["kind"] = i.Kind?.ToString(),
                    ["owner"] = i.Owner,
                    ["domains"] = i.Domains,
                    ["senders"] = i.Senders,
                    ["relay"] = i.Relay,
                    ["esp"] = i.Esp,
                    ["service"] = i.Service,
                    ["suppressionList"] = i.SuppressionList,
                    ["spfAuthorised"] = i.SpfAuthorised,
                    ["spfEvidence"] = i.SpfEvidence,
                    ["dkimPublished"] = i.DkimPublished,
                    ["dkimEvidence"] = i.DkimEvidence,
                    ["firstSeen"] = Time(i.FirstSeen),
                    ["lastSeen"] = Time(i.LastSeen),
                    ["seenSenders"] = i.SeenSenders.Select(s => new Dictionary<string, object?>
                    {
                        ["address"] = s.Address, ["messages"] = s.Messages, ["recipients"] = s.Recipients, ["delivered"] = s.Delivered, ["deferred"] = s.Deferred,
                        ["bounced"] = s.Bounced, ["rejected"] = s.Rejected, ["clients"] = s.Clients, ["relays"] = s.Relays, ["firstSeen"] = Time(s.FirstSeen), ["lastSeen"] = Time(s.LastSeen),
                    }).ToList(),
                    ["dmarcSources"] = i.DmarcSources.Select(s => new Dictionary<string, object?>
                    {
                        ["domain"] = s.Domain, ["address"] = s.Address.ToString(), ["ptr"] = s.Ptr, ["asn"] = s.Asn, ["service"] = s.Service, ["serviceEvidence"] = s.ServiceEvidence,
                        ["relay"] = s.Relay, ["messages"] = s.Messages, ["dmarcPass"] = s.DmarcPass, ["dkimAligned"] = s.DkimAligned, ["spfAligned"] = s.SpfAligned,
                        ["quarantined"] = s.Quarantined, ["rejected"] = s.Rejected, ["dkimDomains"] = s.DkimDomains, ["spfDomains"] = s.SpfDomains, ["reporters"] = s.Reporters,
                    }).ToList(),
                    ["findings"] = i.Findings.Select(f => new Dictionary<string, object?>
                    {
                        ["severity"] = f.Severity.ToString(), ["code"] = f.Code, ["domain"] = f.Domain, ["message"] = f.Message, ["action"] = f.Action,
                    }).ToList(),
                }).ToList(),
                ["domains"] = list.SelectMany(i => i.Authorisation).GroupBy(a => a.Domain, StringComparer.OrdinalIgnoreCase).Select(g => g.First()).OrderBy(a => a.Domain, StringComparer.Ordinal)
                    .Select(a => new Dictionary<string, object?>
                    {
                        ["domain"] = a.Domain,
                        ["spfRecord"] = a.Spf?.Record,
                        ["spfStatus"] = a.Spf?.Status.ToString(),
                        ["spfLookups"] = a.Spf?.DnsLookups,
                        ["spfOverLookupLimit"] = a.Spf?.OverLookupLimit,
                        ["authorisedServices"] = a.AuthorisedServices,
                        ["dkimSelectors"] = a.DkimSelectors,
                        ["dmarcStatus"] = a.Dmarc?.Status.ToString(),
                        ["dmarcRecord"] = a.Dmarc?.Text,
                        ["mailProvider"] = a.Hosting?.MailProvider,
                        ["dnsProvider"] = a.Hosting?.DnsProvider,
                    }).ToList(),
            };
            writer.Write(JsonSerializer.Serialize(doc, JsonOptions));
            writer.Write('\n');
        }

        private static string H(string? text) => WebUtility.HtmlEncode(text ?? "");

        /// <summary>A page a sysadmin can hand to management: what runs, what nobody declared, what to fix first.</summary>
        public static void WriteHtml(TextWriter writer, IReadOnlyList<EmailFlowInventoryItem> items, string title, DateTimeOffset generated)
        {
            if (writer == null || items == null)
            {
                throw new ArgumentNullException(writer == null ? nameof(writer) : nameof(items));
            }

            var findings = items.SelectMany(i => i.Findings.Select(f => (Item: i, Finding: f)))
                .GroupBy(x => (x.Finding.Code, x.Finding.Message)).Select(g => (Items: g.Select(x => x.Item.Name).Distinct().ToList(), g.First().Finding))
                .OrderByDescending(x => x.Finding.Severity).ThenBy(x => x.Finding.Code, StringComparer.Ordinal).ToList();
            var sb = new StringBuilder();
            sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>").Append(H(title)).Append("</title>\n<style>\n")
              .Append("body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#222}h1{margin-bottom:0}.sub{color:#666;margin-top:.2em}")
              .Append("table{border-collapse:collapse;width:100%;margin:1em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.35em .5em;text-align:left;vertical-align:top}")
              .Append("th{background:#f3f3f3}.tiles{display:flex;gap:1em;flex-wrap:wrap}.tile{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;min-width:8em}")
              .Append(".tile b{display:block;font-size:1.6em}.Critical{background:#f8d7da}.High{background:#fde2c4}.Warning{background:#fff3cd}.Info{background:#e7f1ff}")
              .Append(".Shadow{font-weight:bold;color:#a11}.Silent,.NotObserved{color:#777}.AuthorisedOnly{color:#8a6d00}")
              .Append("@media print{body{margin:0}.tile{break-inside:avoid}tr{break-inside:avoid}}\n</style></head><body>\n");
            sb.Append("<h1>").Append(H(title)).Append("</h1>\n<p class=\"sub\">Generated by MailOps on ")
              .Append(H(generated.ToUniversalTime().ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture))).Append("</p>\n");

            // summary tiles
            int Count(FlowInventoryStatus s) => items.Count(i => i.Status == s);
            sb.Append("<div class=\"tiles\">");
            Tile(sb, "Declared flows", items.Count(i => i.Declared));
            Tile(sb, "Active", Count(FlowInventoryStatus.Active));
            Tile(sb, "Silent", Count(FlowInventoryStatus.Silent));
            Tile(sb, "Shadow flows", Count(FlowInventoryStatus.Shadow));
            Tile(sb, "Authorised, unused", Count(FlowInventoryStatus.AuthorisedOnly));
            foreach (var sev in new[] { FindingSeverity.Critical, FindingSeverity.High, FindingSeverity.Warning })
            {
                Tile(sb, sev + " findings", findings.Count(f => f.Finding.Severity == sev));
            }

            sb.Append("</div>\n");

            sb.Append("<h2>Flows</h2>\n<table><thead><tr><th>Flow</th><th>Status</th><th>Kind</th><th>Owner</th><th>Domains</th><th>Sends through</th>")
              .Append("<th>Messages seen</th><th>DMARC pass</th><th>SPF</th><th>DKIM</th><th>Findings</th></tr></thead><tbody>\n");
            foreach (var i in items.OrderBy(i => i.Declared ? 0 : 1).ThenByDescending(i => i.Severity ?? (FindingSeverity)(-1)).ThenBy(i => i.Name, StringComparer.Ordinal))
            {
                sb.Append("<tr><td>").Append(H(i.Name)).Append("</td><td class=\"").Append(i.Status).Append("\">").Append(H(StatusText(i.Status))).Append("</td><td>")
                  .Append(H(i.Kind?.ToString() ?? "")).Append("</td><td>").Append(H(i.Owner ?? "")).Append("</td><td>").Append(H(string.Join(", ", i.Domains))).Append("</td><td>")
                  .Append(H(i.Service ?? "")).Append("</td><td>").Append(i.LogMessages + i.DmarcMessages == 0 ? "" : H(SeenText(i))).Append("</td><td>")
                  .Append(i.DmarcPassRate.HasValue ? H(i.DmarcPassRate.Value.ToString("P0", CultureInfo.InvariantCulture)) : "").Append("</td><td>")
                  .Append(H(YesNo(i.SpfAuthorised))).Append("</td><td>").Append(H(YesNo(i.DkimPublished))).Append("</td><td>").Append(H(i.FindingCodes)).Append("</td></tr>\n");
            }

            sb.Append("</tbody></table>\n");

            sb.Append("<h2>Findings and actions</h2>\n");
            if (findings.Count == 0)
            {
                sb.Append("<p>Nothing to fix.</p>\n");
            }
            else
            {
                sb.Append("<table><thead><tr><th>Severity</th><th>Finding</th><th>Flows</th><th>What was found</th><th>Suggested action</th></tr></thead><tbody>\n");
                foreach (var (names, f) in findings)
                {
                    sb.Append("<tr class=\"").Append(f.Severity).Append("\"><td>").Append(f.Severity).Append("</td><td>").Append(H(f.Code)).Append("</td><td>")
                      .Append(H(string.Join(", ", names))).Append("</td><td>").Append(H(f.Message)).Append("</td><td>").Append(H(f.Action ?? "")).Append("</td></tr>\n");
                }

                sb.Append("</tbody></table>\n");
            }

            var domains = items.SelectMany(i => i.Authorisation).GroupBy(a => a.Domain, StringComparer.OrdinalIgnoreCase).Select(g => g.First()).OrderBy(a => a.Domain, StringComparer.Ordinal).ToList();
            if (domains.Count > 0)
            {
                sb.Append("<h2>Domains</h2>\n<table><thead><tr><th>Domain</th><th>SPF</th><th>DNS lookups</th><th>Services SPF authorises</th><th>DKIM selectors</th><th>DMARC</th><th>Mail hosted by</th></tr></thead><tbody>\n");
                foreach (var a in domains)
                {
                    sb.Append("<tr><td>").Append(H(a.Domain)).Append("</td><td>").Append(H(a.Spf?.Record ?? a.Spf?.Status.ToString() ?? "")).Append("</td><td>")
                      .Append(a.Spf == null ? "" : H(a.Spf.DnsLookups.ToString(CultureInfo.InvariantCulture) + (a.Spf.OverLookupLimit ? " (over 10)" : ""))).Append("</td><td>")
                      .Append(H(string.Join(", ", a.AuthorisedServices))).Append("</td><td>").Append(H(string.Join(", ", a.DkimSelectors))).Append("</td><td>")
                      .Append(H(a.Dmarc?.Text ?? a.Dmarc?.Status.ToString() ?? "")).Append("</td><td>").Append(H(a.Hosting?.MailProvider ?? "")).Append("</td></tr>\n");
                }

                sb.Append("</tbody></table>\n");
            }

            var sources = items.SelectMany(i => i.DmarcSources.Select(s => (Item: i, Source: s))).OrderByDescending(x => x.Source.Messages).ToList();
            if (sources.Count > 0)
            {
                sb.Append("<h2>Senders seen in DMARC reports</h2>\n<table><thead><tr><th>Domain</th><th>Source</th><th>Named as</th><th>Flow</th><th>Messages</th><th>DMARC pass</th><th>DKIM aligned</th><th>SPF aligned</th></tr></thead><tbody>\n");
                foreach (var (i, s) in sources)
                {
                    sb.Append("<tr><td>").Append(H(s.Domain)).Append("</td><td>").Append(H(s.Address + (s.Ptr != null ? " (" + s.Ptr + ")" : ""))).Append("</td><td>")
                      .Append(H(s.Service ?? "unknown")).Append("</td><td>").Append(H(i.Name)).Append("</td><td>").Append(Num(s.Messages)).Append("</td><td>")
                      .Append(H(s.PassRate.ToString("P0", CultureInfo.InvariantCulture))).Append("</td><td>").Append(Num(s.DkimAligned)).Append("</td><td>").Append(Num(s.SpfAligned)).Append("</td></tr>\n");
                }

                sb.Append("</tbody></table>\n");
            }

            sb.Append("</body></html>\n");
            writer.Write(sb.ToString());
        }

        private static void Tile(StringBuilder sb, string label, int n) =>
            sb.Append("<div class=\"tile\"><b>").Append(n.ToString(CultureInfo.InvariantCulture)).Append("</b>").Append(H(label)).Append("</div>");

        private static string StatusText(FlowInventoryStatus s) => s switch
        {
            FlowInventoryStatus.Active => "Active",
            FlowInventoryStatus.Silent => "Silent",
            FlowInventoryStatus.NotObserved => "Not observed",
            FlowInventoryStatus.Shadow => "Shadow (undeclared)",
            _ => "Authorised, unused",
        };

        private static string SeenText(EmailFlowInventoryItem i) =>
            string.Join(", ", new[] { i.LogMessages > 0 ? Num(i.LogMessages) + " in logs" : null, i.DmarcMessages > 0 ? Num(i.DmarcMessages) + " in DMARC reports" : null }.Where(x => x != null));

        private static string YesNo(bool? b) => b == null ? "unknown" : b.Value ? "yes" : "no";
    }
}
