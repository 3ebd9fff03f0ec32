using System;
using System.Collections.Generic;
using System.Linq;

namespace MailOps.Core.Routing
{
    /// <summary>What writing a policy file changes against the file already there.</summary>
    public enum PolicyFileStatus
    {
        Created,
        Changed,
        Unchanged,
    }

    /// <summary>A line diff of one policy file (the "# Generated at" line is ignored, so a new timestamp alone changes nothing).</summary>
    public sealed class PolicyFileDiff
    {
        private PolicyFileDiff(PolicyFileStatus status, IReadOnlyList<string> lines, int added, int removed)
        {
            Status = status;
            Lines = lines;
            Added = added;
            Removed = removed;
        }

        public PolicyFileStatus Status { get; }

        /// <summary>The changed lines, "+ line" or "- line", in file order (with "@@ line N" before each run).</summary>
        public IReadOnlyList<string> Lines { get; }

        public int Added { get; }
        public int Removed { get; }

        /// <summary>Compares the text already there (null: no file) with the new text.</summary>
        public static PolicyFileDiff Compare(string? oldText, string newText)
        {
            var b = Split(newText);
            if (oldText == null)
            {
                return new PolicyFileDiff(PolicyFileStatus.Created, b.Select(l => "+ " + l).ToList(), b.Count, 0);
            }

            var a = Split(oldText);
            var n = a.Count;
            var m = b.Count;
            var lines = new List<string>();
            int added = 0, removed = 0;
            if ((long)n * m > 4_000_000)
            {
                // too big for the table: a set difference (still says what is new and what is gone)
                var setA = new HashSet<string>(a, StringComparer.Ordinal);
                var setB = new HashSet<string>(b, StringComparer.Ordinal);
                foreach (var l in a.Where(l => !setB.Contains(l)))
                {
                    lines.Add("- " + l);
                    removed++;
                }

                foreach (var l in b.Where(l => !setA.Contains(l)))
                {
                    lines.Add("+ " + l);
                    added++;
                }
            }
            else
            {
                // longest common subsequence, then walk it
                var lcs = new int[n + 1, m + 1];
                for (var i = n - 1; i >= 0; i--)
                {
                    for (var j = m - 1; j >= 0; j--)
                    {
                        lcs[i, j] = string.Equals(a[i], b[j], StringComparison.Ordinal) ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
                    }
                }

                int x = 0, y = 0;
                var inRun = false;
                while (x < n || y < m)
                {
                    if (x < n && y < m && string.Equals(a[x], b[y], StringComparison.Ordinal))
                    {
                        x++;
                        y++;
                        inRun = false;
                        continue;
                    }

                    if (!inRun)
                    {
                        lines.Add("@@ line " + (y + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
                        inRun = true;
                    }

                    if (y < m && (x >= n || lcs[x, y + 1] >= lcs[x + 1, y]))
                    {
                        lines.Add("+ " + b[y]);
                        added++;
                        y++;
                    }
                    else
                    {
                        lines.Add("- " + a[x]);
                        removed++;
                        x++;
                    }
                }
            }

            return new PolicyFileDiff(added + removed == 0 ? PolicyFileStatus.Unchanged : PolicyFileStatus.Changed, lines, added, removed);
        }

        private static List<string> Split(string text) =>
            text.Replace("\r\n", "\n").Split('\n')
                .Where(l => !l.StartsWith(PostfixPolicy.TimestampPrefix, StringComparison.Ordinal))
                .Reverse().SkipWhile(l => l.Length == 0).Reverse().ToList();
    }
}

namespace MailOps.Core.Routing
{
    /// <summary>One policy file as Export-MailRoutingPolicy wrote it (or, with -WhatIf, would write it).</summary>
    public sealed class PolicyFileResult
    {
        public PolicyFileResult(string name, string path, PolicyFileDiff diff, bool written)
        {
            Name = name;
            Path = path;
            Status = diff.Status;
            LinesAdded = diff.Added;
            LinesRemoved = diff.Removed;
            Diff = diff.Lines;
            Written = written;
        }

        public string Name { get; }
        public string Path { get; }

        /// <summary>Against the file that was there before.</summary>
        public PolicyFileStatus Status { get; }
        public int LinesAdded { get; }
        public int LinesRemoved { get; }

        /// <summary>"+ line" and "- line" (with "@@ line N" before each run of changes).</summary>
        public IReadOnlyList<string> Diff { get; }

        /// <summary>False with -WhatIf, when declined, and for unchanged files (left as they were).</summary>
        public bool Written { get; }

        public override string ToString() => Path;
    }
}
