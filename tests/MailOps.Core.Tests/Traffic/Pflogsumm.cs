using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Text.RegularExpressions;
using Xunit;

namespace MailOps.Core.Tests.Traffic
{
    /// <summary>
    /// Runs the real pflogsumm (Debian package, /usr/sbin/pflogsumm) on a log and reads its "Grand Totals" and
    /// "Senders by message count" sections.
    /// </summary>
    internal static class Pflogsumm
    {
        public const string Program = "/usr/sbin/pflogsumm";

        public static bool Available => File.Exists(Program) && File.Exists("/usr/bin/perl");

        public static PflogsummReport Run(string log, params string[] options)
        {
            var psi = new ProcessStartInfo("/usr/bin/perl")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            psi.ArgumentList.Add(Program);
            foreach (var o in options)
            {
                psi.ArgumentList.Add(o);
            }

            psi.ArgumentList.Add(log);
            // a fixed locale: pflogsumm runs under "use locale"
            psi.Environment["LC_ALL"] = "C";
            psi.Environment["LANG"] = "C";
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(120000))
            {
                p.Kill(true);
                throw new TimeoutException($"pflogsumm did not finish on {log} within 120 s.");
            }

            p.WaitForExit();
            Assert.True(p.ExitCode == 0, $"pflogsumm exited with {p.ExitCode}: {stderr.Result}");
            return PflogsummReport.Parse(stdout.Result);
        }
    }

    /// <summary>A figure as pflogsumm prints it: an integer, divided by 1024 ('k') or 1048576 ('m') above 512k/512m.</summary>
    internal readonly struct PflogsummFigure
    {
        public PflogsummFigure(long value, char unit)
        {
            Value = value;
            Unit = unit;
        }

        public long Value { get; }
        public char Unit { get; }

        /// <summary>Whether an exact count prints as this figure (pflogsumm's adj_int_units and printf %d).</summary>
        public bool Matches(long exact) => Unit switch
        {
            'k' => exact > 524288 && exact <= 536870912 && exact / 1024 == Value,
            'm' => exact > 536870912 && exact / 1048576 == Value,
            _ => exact <= 524288 && exact == Value,
        };

        public override string ToString() => Unit == ' ' ? Value.ToString(CultureInfo.InvariantCulture) : Value.ToString(CultureInfo.InvariantCulture) + Unit;
    }

    internal sealed class PflogsummReport
    {
        private static readonly Regex FigureLine = new Regex(@"^\s*(\d+)([ km])  (\S.*)$", RegexOptions.CultureInvariant);
        private static readonly Regex DomainLine = new Regex(@"^\s*(\d+)([ km])  \s*(\d+)([ km])  (\S+)$", RegexOptions.CultureInvariant);
        private static readonly Regex Deferrals = new Regex(@"\((\d+)([ km]) deferrals\)", RegexOptions.CultureInvariant);

        public Dictionary<string, PflogsummFigure> Totals { get; } = new Dictionary<string, PflogsummFigure>(StringComparer.Ordinal);

        public Dictionary<string, PflogsummFigure> SendersByCount { get; } = new Dictionary<string, PflogsummFigure>(StringComparer.Ordinal);

        /// <summary>"Host/Domain Summary: Messages Received": messages per sending host or domain.</summary>
        public Dictionary<string, PflogsummFigure> SendingDomains { get; } = new Dictionary<string, PflogsummFigure>(StringComparer.Ordinal);

        public string Text { get; private set; } = "";

        public PflogsummFigure this[string name] => Totals.TryGetValue(name, out var f) ? f : throw new KeyNotFoundException($"pflogsumm printed no '{name}' figure:\n{Text}");

        public static PflogsummReport Parse(string text)
        {
            var report = new PflogsummReport { Text = text };
            var lines = text.Replace("\r", "", StringComparison.Ordinal).Split('\n');
            var section = "";
            for (var i = 0; i < lines.Length; i++)
            {
                var line = lines[i];
                if (i + 1 < lines.Length && line.Length > 0 && lines[i + 1].Length == line.Length && lines[i + 1].Trim('-').Length == 0)
                {
                    section = line; // a title underlined with dashes
                    i++;
                    continue;
                }

                if (line.StartsWith("Senders by message count: none", StringComparison.Ordinal))
                {
                    section = "";
                    continue;
                }

                if (section.StartsWith("Host/Domain Summary: Messages Received", StringComparison.Ordinal) && DomainLine.Match(line) is var dm && dm.Success)
                {
                    report.SendingDomains[dm.Groups[5].Value] = new PflogsummFigure(long.Parse(dm.Groups[1].Value, CultureInfo.InvariantCulture), dm.Groups[2].Value[0]);
                    continue;
                }

                var m = FigureLine.Match(line);
                if (!m.Success)
                {
                    if (line.Length == 0 && section != "Grand Totals")
                    {
                        section = "";
                    }

                    continue;
                }

                var figure = new PflogsummFigure(long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), m.Groups[2].Value[0]);
                var label = m.Groups[3].Value;
                if (section == "Grand Totals")
                {
                    // "deferred  (3  deferrals)", "rejected (16%)", "discarded (0%)"
                    var d = Deferrals.Match(label);
                    if (d.Success)
                    {
                        report.Totals["deferrals"] = new PflogsummFigure(long.Parse(d.Groups[1].Value, CultureInfo.InvariantCulture), d.Groups[2].Value[0]);
                    }

                    var paren = label.IndexOf(" (", StringComparison.Ordinal);
                    report.Totals[(paren > 0 ? label.Substring(0, paren) : label).Trim()] = figure;
                }
                else if (section == "Senders by message count")
                {
                    report.SendersByCount[label] = figure;
                }
            }

            if (!report.Totals.ContainsKey("deferrals") && report.Totals.ContainsKey("deferred"))
            {
                report.Totals["deferrals"] = new PflogsummFigure(0, ' '); // printed only when there were some
            }

            return report;
        }
    }

    /// <summary>
    /// A fact that needs the real pflogsumm (and, if named, a corpus file); skipped loudly, never passed, without them.
    /// </summary>
    public sealed class PflogsummFactAttribute : FactAttribute
    {
        public PflogsummFactAttribute(string? corpus = null)
        {
            if (!Pflogsumm.Available)
            {
                Skip = $"PFLOGSUMM MISSING: {Pflogsumm.Program} (and /usr/bin/perl) not found; install the Debian package 'pflogsumm'. This test did not run.";
            }
            else if (corpus != null && Corpora.Find(corpus) == null)
            {
                Skip = $"CORPUS MISSING: {corpus} not found (looked in {Corpora.Where}). This test did not run.";
            }
        }
    }

    /// <summary>A theory that needs the real pflogsumm; skipped loudly, never passed, without it.</summary>
    public sealed class PflogsummTheoryAttribute : TheoryAttribute
    {
        public PflogsummTheoryAttribute()
        {
            if (!Pflogsumm.Available)
            {
                Skip = $"PFLOGSUMM MISSING: {Pflogsumm.Program} (and /usr/bin/perl) not found; install the Debian package 'pflogsumm'. This test did not run.";
            }
        }
    }
}
