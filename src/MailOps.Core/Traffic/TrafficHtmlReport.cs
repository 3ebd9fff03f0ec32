using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Text;
using OxyPlot;
using OxyPlot.Axes;
using OxyPlot.Legends;
using OxyPlot.Series;

namespace MailOps.Core.Traffic
{
    /// <summary>
    /// A traffic report as one self-contained HTML file (no script, no network needed to view it): charts of volume
    /// and of bounce and deferral rates over time, drawn by OxyPlot and inlined as SVG, then tables of the totals,
    /// senders, flows, relays, recipient domains and reasons. Everything that comes from a log is HTML-encoded.
    /// </summary>
    public static class TrafficHtmlReport
    {
        private const int MaxTableRows = 50;
        private const int MaxFilledBuckets = 20000;
        private const double ChartWidth = 960;
        private const double ChartHeight = 340;

        private static readonly (string Title, Func<TrafficRow, double> Value, OxyColor Color)[] VolumeSeries =
        {
            ("Messages", r => r.Messages, OxyColor.FromRgb(0x1f, 0x77, 0xb4)),
            ("Delivered", r => r.Delivered, OxyColor.FromRgb(0x2c, 0xa0, 0x2c)),
            ("Deferred", r => r.Deferred, OxyColor.FromRgb(0xff, 0x7f, 0x0e)),
            ("Bounced", r => r.Bounced + r.Expired, OxyColor.FromRgb(0xd6, 0x27, 0x28)),
            ("Rejected", r => r.Rejected, OxyColor.FromRgb(0x94, 0x67, 0xbd)),
        };

        private static readonly (TrafficDimension Dimension, string Title, string KeyTitle)[] Tables =
        {
            (TrafficDimension.Sender, "Top senders", "Sender"),
            (TrafficDimension.SenderDomain, "Sender domains", "Domain"),
            (TrafficDimension.Flow, "Flows", "Flow"),
            (TrafficDimension.Relay, "Relays", "Relay"),
            (TrafficDimension.Client, "Client hosts", "Client"),
            (TrafficDimension.RecipientDomain, "Recipient domains", "Domain"),
        };

        /// <summary>Writes the report to a file (UTF-8), replacing it.</summary>
        public static void Write(string path, IReadOnlyList<TrafficRow> rows, TrafficTotals totals, string title)
        {
            using (var w = new StreamWriter(path, false, new UTF8Encoding(false)))
            {
                Write(w, rows, totals, title);
            }
        }

        /// <summary>Writes the report. <paramref name="rows"/> are those of a <see cref="TrafficAggregator"/>: the Total rows make the charts, the other dimensions the tables.</summary>
        public static void Write(TextWriter writer, IReadOnlyList<TrafficRow> rows, TrafficTotals totals, string title)
        {
            if (writer == null || rows == null || totals == null)
            {
                throw new ArgumentNullException(writer == null ? nameof(writer) : rows == null ? nameof(rows) : nameof(totals));
            }

            var total = rows.Where(r => r.Dimension == TrafficDimension.Total).OrderBy(r => r.Start).ToList();
            var w = writer;
            w.Write("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
            w.Write(E(title));
            w.Write("</title>\n<style>\n");
            w.Write(Css);
            w.Write("</style>\n</head>\n<body>\n<h1>");
            w.Write(E(title));
            w.Write("</h1>\n<p class=\"period\">");
            w.Write(totals.First.HasValue && totals.Last.HasValue
                ? $"From {E(Time(totals.First.Value))} to {E(Time(totals.Last.Value))}"
                : "No dated traffic");
            if (total.Count > 0)
            {
                w.Write($", {total.Count} {E(total[0].Bucket.ToString().ToLowerInvariant())} buckets");
            }

            w.Write($". Generated {E(Time(DateTimeOffset.UtcNow))} by MailOps.</p>\n");

            if (total.Count == 0)
            {
                w.Write("<p class=\"empty\">No traffic in the period: nothing to chart.</p>\n");
            }
            else
            {
                var filled = Fill(total);
                w.Write("<h2>Volume</h2>\n<figure class=\"chart\" id=\"volume\">\n");
                w.Write(VolumeSvg(filled));
                w.Write("\n</figure>\n<h2>Bounce and deferral rates</h2>\n<figure class=\"chart\" id=\"rates\">\n");
                w.Write(RatesSvg(filled));
                w.Write("\n</figure>\n");
            }

            WriteTotals(w, totals);
            foreach (var (dimension, tableTitle, keyTitle) in Tables)
            {
                var of = rows.Where(r => r.Dimension == dimension).ToList();
                if (of.Count > 0)
                {
                    WriteDimension(w, tableTitle, keyTitle, of);
                }
            }

            WriteReasons(w, total);
            w.Write("</body>\n</html>\n");
        }

        /// <summary>The volume chart (messages, delivered, deferred, bounced, rejected per bucket) as an SVG element.</summary>
        internal static string VolumeSvg(IReadOnlyList<(DateTimeOffset Start, TrafficRow? Row)> buckets)
        {
            var model = Model("Volume per " + Unit(buckets), "Messages, recipients", Bucket(buckets), true);
            foreach (var (seriesTitle, value, color) in VolumeSeries)
            {
                var s = new LineSeries { Title = seriesTitle, Color = color, StrokeThickness = 1.6, MarkerType = buckets.Count <= 48 ? MarkerType.Circle : MarkerType.None, MarkerSize = 2.5, MarkerFill = color };
                foreach (var (start, row) in buckets)
                {
                    s.Points.Add(new DataPoint(X(start), row == null ? 0 : value(row)));
                }

                model.Series.Add(s);
            }

            return Svg(model);
        }

        /// <summary>The rate chart (bounce and deferral rate in percent per bucket; gaps where nothing was attempted) as an SVG element.</summary>
        internal static string RatesSvg(IReadOnlyList<(DateTimeOffset Start, TrafficRow? Row)> buckets)
        {
            var model = Model("Rates per " + Unit(buckets), "Percent", Bucket(buckets), false);
            model.Axes[1].Minimum = 0;
            // markers: a bucket between two gaps is a single point, which a line alone would not show
            var marker = buckets.Count <= 500 ? MarkerType.Circle : MarkerType.None;
            var bounce = new LineSeries { Title = "Bounce rate", Color = OxyColor.FromRgb(0xd6, 0x27, 0x28), StrokeThickness = 1.6, MarkerType = marker, MarkerSize = 2.5, MarkerFill = OxyColor.FromRgb(0xd6, 0x27, 0x28) };
            var deferral = new LineSeries { Title = "Deferral rate", Color = OxyColor.FromRgb(0xff, 0x7f, 0x0e), StrokeThickness = 1.6, MarkerType = marker, MarkerSize = 2.5, MarkerFill = OxyColor.FromRgb(0xff, 0x7f, 0x0e) };
            foreach (var (start, row) in buckets)
            {
                var x = X(start);
                var finals = row == null ? 0 : row.Delivered + row.Bounced + row.Expired;
                var attempts = row == null ? 0 : finals + row.Deferred;
                bounce.Points.Add(finals == 0 ? DataPoint.Undefined : new DataPoint(x, row!.BounceRate * 100));
                deferral.Points.Add(attempts == 0 ? DataPoint.Undefined : new DataPoint(x, row!.DeferralRate * 100));
            }

            model.Series.Add(bounce);
            model.Series.Add(deferral);
            return Svg(model);
        }

        /// <summary>Every bucket from the first to the last, with null where the log had nothing (so a quiet hour shows as zero, not as a straight line across it).</summary>
        internal static IReadOnlyList<(DateTimeOffset Start, TrafficRow? Row)> Fill(IReadOnlyList<TrafficRow> total)
        {
            var byStart = new Dictionary<DateTimeOffset, TrafficRow>();
            foreach (var r in total)
            {
                byStart[r.Start] = r;
            }

            var result = new List<(DateTimeOffset, TrafficRow?)>();
            var t = total[0].Start;
            var last = total[total.Count - 1].Start;
            while (t <= last && result.Count < MaxFilledBuckets)
            {
                byStart.TryGetValue(t, out var row);
                result.Add((t, row));
                t = Next(t, total[0].Bucket);
            }

            if (t <= last)
            {
                // too many buckets to fill (years of minutes): chart the rows as they are
                return total.Select(r => (r.Start, (TrafficRow?)r)).ToList();
            }

            return result;
        }

        private static DateTimeOffset Next(DateTimeOffset t, TrafficBucket bucket) =>
            bucket == TrafficBucket.Minute ? t.AddMinutes(1) : bucket == TrafficBucket.Hour ? t.AddHours(1) : t.AddDays(1);

        private static string Unit(IReadOnlyList<(DateTimeOffset Start, TrafficRow? Row)> buckets) => Bucket(buckets).ToString().ToLowerInvariant();

        private static TrafficBucket Bucket(IReadOnlyList<(DateTimeOffset Start, TrafficRow? Row)> buckets) =>
            buckets.Select(b => b.Row).FirstOrDefault(r => r != null)?.Bucket ?? TrafficBucket.Hour;

        private static PlotModel Model(string title, string yTitle, TrafficBucket bucket, bool counts)
        {
            var model = new PlotModel
            {
                Title = title,
                TitleFontSize = 14,
                Culture = CultureInfo.InvariantCulture,
                // Arial: the metrics OxyPlot's exporter measures text with (Helvetica's); Liberation Sans has the same elsewhere
                DefaultFont = "Arial",
                Background = OxyColors.White,
                PlotAreaBorderColor = OxyColor.FromRgb(0xcc, 0xcc, 0xcc),
            };
            model.Legends.Add(new Legend
            {
                LegendPosition = LegendPosition.BottomCenter,
                LegendPlacement = LegendPlacement.Outside,
                LegendOrientation = LegendOrientation.Horizontal,
                LegendBorderThickness = 0,
                LegendItemSpacing = 24,
            });
            var day = 1.0;
            model.Axes.Add(new DateTimeAxis
            {
                Position = AxisPosition.Bottom,
                Title = "Time (UTC)",
                AxisTitleDistance = 10,
                StringFormat = bucket == TrafficBucket.Minute ? "HH:mm" : bucket == TrafficBucket.Hour ? "MM-dd HH:mm" : "yyyy-MM-dd",
                // no tick between two buckets: a label at 08:30 on hourly figures would suggest a figure that is not there
                MinimumMajorStep = bucket == TrafficBucket.Minute ? day / 1440 : bucket == TrafficBucket.Hour ? day / 24 : day,
                MinimumMinorStep = bucket == TrafficBucket.Minute ? day / 1440 : bucket == TrafficBucket.Hour ? day / 24 : day,
                MajorGridlineStyle = LineStyle.Dot,
                MajorGridlineColor = OxyColor.FromRgb(0xdd, 0xdd, 0xdd),
            });
            model.Axes.Add(new LinearAxis
            {
                Position = AxisPosition.Left,
                Title = yTitle,
                AxisTitleDistance = 12,
                Minimum = 0,
                MinimumPadding = 0,
                MaximumPadding = 0.08,
                // counts are whole numbers: no 0.5 message
                MinimumMajorStep = counts ? 1 : 0,
                MinimumMinorStep = counts ? 1 : 0,
                MajorGridlineStyle = LineStyle.Dot,
                MajorGridlineColor = OxyColor.FromRgb(0xdd, 0xdd, 0xdd),
            });
            return model;
        }

        private static double X(DateTimeOffset t) => DateTimeAxis.ToDouble(t.UtcDateTime);

        private static string Svg(PlotModel model)
        {
            // isDocument false: an <svg> element to inline, without the XML declaration and DOCTYPE of a file; the
            // vertical alignment workaround positions text with offsets instead of dominant-baseline, which some
            // viewers (librsvg, older browsers, mail clients) ignore
            var svg = SvgExporter.ExportToString(model, ChartWidth, ChartHeight, false, new WideTextMeasurer(), true);
            var start = svg.IndexOf("<svg", StringComparison.Ordinal);
            return start > 0 ? svg.Substring(start) : svg;
        }

        /// <summary>
        /// The exporter's default text measurer (its PDF context) gives about three quarters of the width a browser
        /// draws 12 px Arial at, and viewers without Arial fall back to wider fonts (DejaVu Sans): without a wider
        /// measure, legends are clipped and tick labels run into axis titles. 1.45 was checked with librsvg and DejaVu.
        /// </summary>
        private sealed class WideTextMeasurer : PdfRenderContext
        {
            public WideTextMeasurer() : base(ChartWidth, ChartHeight, OxyColors.White)
            {
            }

            public override OxySize MeasureText(string text, string fontFamily, double fontSize, double fontWeight)
            {
                var size = base.MeasureText(text, fontFamily, fontSize, fontWeight);
                return new OxySize(size.Width * 1.45, size.Height);
            }
        }

        private static void WriteTotals(TextWriter w, TrafficTotals t)
        {
            w.Write("<h2>Totals</h2>\n<table class=\"totals\">\n<tbody>\n");
            var items = new (string, string)[]
            {
                ("Received", N(t.Received)), ("Delivered", N(t.Delivered)), ("Forwarded", N(t.Forwarded)),
                ("Deferred (messages)", N(t.Deferred)), ("Deferrals", N(t.Deferrals)), ("Bounced", N(t.Bounced)), ("Expired", N(t.Expired)),
                ("Rejected", N(t.Rejected)), ("Discarded", N(t.Discarded)),
                ("Bounce rate", Pct(t.Delivered + t.Bounced + t.Expired == 0 ? 0 : (double)(t.Bounced + t.Expired) / (t.Delivered + t.Bounced + t.Expired))),
                ("Bytes received", N(t.BytesReceived)), ("Bytes delivered", N(t.BytesDelivered)),
                ("Senders", N(t.Senders)), ("Sending hosts/domains", N(t.SendingHostsDomains)),
                ("Recipients", N(t.Recipients)), ("Recipient hosts/domains", N(t.RecipientHostsDomains)),
                ("Log lines", N(t.Lines)), ("Unreadable lines", N(t.UnreadableLines)),
            };
            foreach (var (k, v) in items)
            {
                w.Write($"<tr><th scope=\"row\">{E(k)}</th><td class=\"n\">{E(v)}</td></tr>\n");
            }

            w.Write("</tbody>\n</table>\n");
        }

        private static void WriteDimension(TextWriter w, string title, string keyTitle, IReadOnlyList<TrafficRow> rows)
        {
            var sums = rows.GroupBy(r => r.Key, StringComparer.OrdinalIgnoreCase).Select(g => new Sum(g.First().Key, g)).ToList();
            var ordered = sums.OrderByDescending(s => s.Messages).ThenByDescending(s => s.Recipients + s.Delivered + s.Deferred + s.Bounced + s.Rejected)
                .ThenBy(s => s.Key, StringComparer.Ordinal).ToList();
            w.Write($"<h2>{E(title)}</h2>\n<table>\n<thead><tr><th>{E(keyTitle)}</th><th>Messages</th><th>Recipients</th><th>Delivered</th><th>Deferred</th><th>Bounced</th><th>Rejected</th><th>Block replies</th><th>Bounce rate</th><th>Deferral rate</th><th>Top reasons</th></tr></thead>\n<tbody>\n");
            foreach (var s in ordered.Take(MaxTableRows))
            {
                w.Write($"<tr><td>{E(s.Key)}</td><td class=\"n\">{N(s.Messages)}</td><td class=\"n\">{N(s.Recipients)}</td><td class=\"n\">{N(s.Delivered)}</td><td class=\"n\">{N(s.Deferred)}</td><td class=\"n\">{N(s.Bounced)}</td><td class=\"n\">{N(s.Rejected)}</td><td class=\"n\">{N(s.BlockReplies)}</td><td class=\"n\">{Pct(s.BounceRate)}</td><td class=\"n\">{Pct(s.DeferralRate)}</td><td>{E(s.TopReasons)}</td></tr>\n");
            }

            w.Write("</tbody>\n</table>\n");
            if (ordered.Count > MaxTableRows)
            {
                w.Write($"<p class=\"more\">{ordered.Count - MaxTableRows} more not shown.</p>\n");
            }
        }

        private static void WriteReasons(TextWriter w, IReadOnlyList<TrafficRow> total)
        {
            var reasons = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var r in total)
            {
                foreach (var x in r.ReasonCounts)
                {
                    reasons.TryGetValue(x.Key, out var n);
                    reasons[x.Key] = n + x.Value;
                }
            }

            w.Write("<h2>Top reasons</h2>\n");
            if (reasons.Count == 0)
            {
                w.Write("<p class=\"empty\">No deferral, bounce or rejection.</p>\n");
                return;
            }

            w.Write("<table>\n<thead><tr><th>Reason</th><th>Count</th></tr></thead>\n<tbody>\n");
            foreach (var x in reasons.OrderByDescending(x => x.Value).ThenBy(x => x.Key, StringComparer.Ordinal).Take(MaxTableRows))
            {
                w.Write($"<tr><td>{E(x.Key)}</td><td class=\"n\">{N(x.Value)}</td></tr>\n");
            }

            w.Write("</tbody>\n</table>\n");
        }

        /// <summary>HTML-encodes text (&lt; &gt; &amp; " ').</summary>
        private static string E(string? s) => WebUtility.HtmlEncode(s ?? "");

        private static string N(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

        private static string Pct(double v) => (v * 100).ToString("0.0", CultureInfo.InvariantCulture) + " %";

        private static string Time(DateTimeOffset t) => t.ToUniversalTime().ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);

        private const string Css = @"body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.period, .more, .empty { color: #555; }
figure.chart { margin: 0; overflow-x: auto; }
figure.chart svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
table.totals { width: auto; }
th, td { border-bottom: 1px solid #eee; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
thead th { background: #f5f5f5; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td { word-break: break-all; }
";

        /// <summary>One key's rows summed over the period.</summary>
        private sealed class Sum
        {
            private readonly Dictionary<string, long> _reasons = new Dictionary<string, long>(StringComparer.Ordinal);

            public Sum(string key, IEnumerable<TrafficRow> rows)
            {
                Key = key;
                foreach (var r in rows)
                {
                    Messages += r.Messages;
                    Recipients += r.Recipients;
                    Delivered += r.Delivered;
                    Deferred += r.Deferred;
                    Bounced += r.Bounced + r.Expired;
                    Rejected += r.Rejected;
                    BlockReplies += r.BlockReplies;
                    foreach (var x in r.ReasonCounts)
                    {
                        _reasons.TryGetValue(x.Key, out var n);
                        _reasons[x.Key] = n + x.Value;
                    }
                }
            }

            public string Key { get; }
            public long Messages { get; }
            public long Recipients { get; }
            public long Delivered { get; }
            public long Deferred { get; }
            public long Bounced { get; }
            public long Rejected { get; }
            public long BlockReplies { get; }
            public double BounceRate => Delivered + Bounced == 0 ? 0 : (double)Bounced / (Delivered + Bounced);
            public double DeferralRate => Delivered + Bounced + Deferred == 0 ? 0 : (double)Deferred / (Delivered + Bounced + Deferred);

            public string TopReasons => string.Join(", ", _reasons.OrderByDescending(x => x.Value).ThenBy(x => x.Key, StringComparer.Ordinal).Take(3).Select(x => $"{x.Key} ({x.Value})"));
        }
    }
}
