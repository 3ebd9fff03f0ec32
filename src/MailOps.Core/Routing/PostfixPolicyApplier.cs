using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;

namespace MailOps.Core.Routing
{
    /// <summary>What applying (or rolling back) did.</summary>
    public sealed class PostfixApplyResult
    {
        internal PostfixApplyResult(string action, string configDirectory, string backupDirectory, string mapDirectory,
            IReadOnlyList<string> parameters, IReadOnlyList<string> maps, string checkOutput, bool reloaded)
        {
            Action = action;
            ConfigDirectory = configDirectory;
            BackupDirectory = backupDirectory;
            MapDirectory = mapDirectory;
            Parameters = parameters;
            Maps = maps;
            CheckOutput = checkOutput;
            Reloaded = reloaded;
        }

        /// <summary>Applied or RolledBack.</summary>
        public string Action { get; }
        public string ConfigDirectory { get; }

        /// <summary>Applied: the backup of the files before; RolledBack: the backup restored.</summary>
        public string BackupDirectory { get; }
        public string MapDirectory { get; }

        /// <summary>The main.cf parameters set.</summary>
        public IReadOnlyList<string> Parameters { get; }

        /// <summary>The map files written and postmapped (full paths).</summary>
        public IReadOnlyList<string> Maps { get; }

        /// <summary>What postfix check printed (empty when all is well).</summary>
        public string CheckOutput { get; }

        public bool Reloaded { get; }
    }

    /// <summary>How <see cref="PostfixPolicyApplier"/> works.</summary>
    public sealed class PostfixApplyOptions
    {
        /// <summary>The longest any one command may take (postfix check takes about 3 s).</summary>
        public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(60);

        /// <summary>Reload Postfix after a successful check (true by default).</summary>
        public bool Reload { get; set; } = true;

        /// <summary>The time that names the backup folder (null: now).</summary>
        public DateTimeOffset? Now { get; set; }
    }

    /// <summary>
    /// Puts a generated policy into a Postfix configuration directory: backs up main.cf, master.cf and the maps into
    /// &lt;dir&gt;/mailops-backup-&lt;time&gt;/, writes the maps to the policy's map directory and runs postmap, sets the
    /// main.cf parameters with postconf -e (the MailOps check_*_access entries go first in existing restriction lists),
    /// replaces the marked MailOps block of master.cf, runs postfix check, and reloads only when the check is clean. A
    /// check that fails (non-zero exit, or a warning about the policy's parameters or files) restores the backup and
    /// reloads nothing.
    /// </summary>
    public sealed class PostfixPolicyApplier
    {
        /// <summary>The prefix of backup folders in the configuration directory.</summary>
        public const string BackupPrefix = "mailops-backup-";

        private const string Manifest = "mailops-backup.txt";
        private readonly IPostfixCommandRunner _runner;
        private readonly PostfixTools _tools;
        private readonly PostfixApplyOptions _options;

        public PostfixPolicyApplier(IPostfixCommandRunner runner, PostfixTools tools, PostfixApplyOptions? options = null)
        {
            _runner = runner ?? throw new ArgumentNullException(nameof(runner));
            _tools = tools ?? throw new ArgumentNullException(nameof(tools));
            _options = options ?? new PostfixApplyOptions();
        }

        /// <summary>The newest mailops-backup-* folder of a configuration directory, or null.</summary>
        public static string? LatestBackup(string configDirectory) =>
            Directory.Exists(configDirectory)
                ? Directory.GetDirectories(configDirectory, BackupPrefix + "*").Where(d => File.Exists(Path.Combine(d, Manifest))).OrderBy(d => Path.GetFileName(d), StringComparer.Ordinal).LastOrDefault()
                : null;

        /// <summary>Applies the policy (see the class summary).</summary>
        /// <exception cref="PostfixApplyException">CheckFailed, CommandFailed (backup restored, nothing reloaded) or ReloadFailed.</exception>
        /// <exception cref="FileNotFoundException">main.cf or master.cf is missing.</exception>
        /// <exception cref="IOException">a file could not be written.</exception>
        public async Task<PostfixApplyResult> ApplyAsync(PostfixPolicy policy, string configDirectory, CancellationToken cancellationToken = default)
        {
            var dir = Path.GetFullPath(configDirectory);
            var mainCf = Path.Combine(dir, "main.cf");
            var masterCf = Path.Combine(dir, "master.cf");
            foreach (var f in new[] { mainCf, masterCf })
            {
                if (!File.Exists(f))
                {
                    throw new FileNotFoundException($"{f} does not exist: -PostfixConfig must name a Postfix configuration directory.", f);
                }
            }

            var maps = policy.Files.Where(f => f.IsHashMap).ToList();
            var backup = Backup(dir, policy.MapDirectory, maps.Select(m => m.Name));
            try
            {
                Directory.CreateDirectory(policy.MapDirectory);
                var written = new List<string>();
                foreach (var map in maps)
                {
                    var path = Path.Combine(policy.MapDirectory, map.Name);
                    WriteText(path, map.Text);
                    written.Add(path);
                    await Must(_tools.Postmap, new[] { "-c", dir, "hash:" + path }, "postmap", cancellationToken).ConfigureAwait(false);
                }

                // restriction lists: the MailOps check first, then whatever was there (without an earlier MailOps check)
                var current = await Must(_tools.Postconf, new[] { "-c", dir, "-h", "smtpd_client_restrictions", "smtpd_sender_restrictions" }, "postconf", cancellationToken).ConfigureAwait(false);
                var currentValues = current.StandardOutput.Replace("\r\n", "\n").Split('\n');
                var settings = new List<string>();
                foreach (var p in policy.Parameters)
                {
                    var value = p.Value;
                    if (p.Name == "smtpd_client_restrictions" && currentValues.Length > 0)
                    {
                        value = Merge(p.Value, currentValues[0], PostfixPolicy.ClientFilterMap);
                    }
                    else if (p.Name == "smtpd_sender_restrictions" && currentValues.Length > 1)
                    {
                        value = Merge(p.Value, currentValues[1], PostfixPolicy.SenderFilterMap);
                    }

                    settings.Add(p.Name + " = " + value);
                }

                // parameters of transports an earlier policy had and this one has not
                var existing = await Must(_tools.Postconf, new[] { "-c", dir, "-n" }, "postconf", cancellationToken).ConfigureAwait(false);
                var stale = existing.StandardOutput.Replace("\r\n", "\n").Split('\n').Select(l => l.Split('=')[0].Trim())
                    .Where(n => n.StartsWith("mailops_", StringComparison.Ordinal) && policy.Parameter(n) == null).Distinct().ToList();
                if (stale.Count > 0)
                {
                    await Must(_tools.Postconf, new[] { "-c", dir, "-X" }.Concat(stale).ToList(), "postconf -X", cancellationToken).ConfigureAwait(false);
                }

                await Must(_tools.Postconf, new[] { "-c", dir, "-e" }.Concat(settings).ToList(), "postconf -e", cancellationToken).ConfigureAwait(false);
                WriteText(masterCf, ReplaceBlock(File.ReadAllText(masterCf), policy.MasterCfServices));

                var check = await _runner.RunAsync(_tools.Postfix, new[] { "-c", dir, "check" }, _options.CommandTimeout, cancellationToken).ConfigureAwait(false);
                var complaints = Complaints(check.Output, policy);
                if (!check.Succeeded || complaints.Count > 0)
                {
                    Restore(backup, dir);
                    var why = check.TimedOut ? "did not finish" : check.ExitCode != 0 ? $"exited with {check.ExitCode}" : "warned about the generated configuration";
                    var shown = check.Output.Trim().Length > 0 ? check.Output.Trim() : "(no output)";
                    throw new PostfixApplyException(PostfixFailure.CheckFailed,
                        $"postfix -c {dir} check {why}: the previous main.cf, master.cf and maps were restored from {backup} and Postfix was NOT reloaded. Output: {shown}", check.Output);
                }

                var reloaded = false;
                if (_options.Reload)
                {
                    await Reload(dir, $"The new policy is in place and checked (backup in {backup}; -Rollback restores it)", cancellationToken).ConfigureAwait(false);
                    reloaded = true;
                }

                return new PostfixApplyResult("Applied", dir, backup, policy.MapDirectory, policy.Parameters.Select(p => p.Name).ToList(), written, check.Output.Trim(), reloaded);
            }
            catch (PostfixApplyException e) when (e.Kind == PostfixFailure.CommandFailed)
            {
                Restore(backup, dir);
                throw;
            }
            catch (Exception e) when (e is OperationCanceledException || e is IOException || e is UnauthorizedAccessException || e is System.ComponentModel.Win32Exception)
            {
                // stopped half-way or a file or program failed: never leave a half-applied configuration
                Restore(backup, dir);
                throw;
            }
        }

        /// <summary>Restores the newest backup, checks and reloads.</summary>
        /// <exception cref="PostfixApplyException">NoBackup, CheckFailed (the restored files fail the check; nothing reloaded) or ReloadFailed.</exception>
        public async Task<PostfixApplyResult> RollbackAsync(string configDirectory, CancellationToken cancellationToken = default)
        {
            var dir = Path.GetFullPath(configDirectory);
            var backup = LatestBackup(dir) ?? throw new PostfixApplyException(PostfixFailure.NoBackup, $"{dir} has no {BackupPrefix}* folder to roll back to.", "");
            var restored = Restore(backup, dir);
            foreach (var map in restored.Where(m => File.Exists(m)))
            {
                await Must(_tools.Postmap, new[] { "-c", dir, "hash:" + map }, "postmap", cancellationToken).ConfigureAwait(false);
            }

            var check = await _runner.RunAsync(_tools.Postfix, new[] { "-c", dir, "check" }, _options.CommandTimeout, cancellationToken).ConfigureAwait(false);
            if (!check.Succeeded)
            {
                throw new PostfixApplyException(PostfixFailure.CheckFailed,
                    $"The files of {backup} were restored, but postfix -c {dir} check fails on them, so Postfix was NOT reloaded. Output: {check.Output.Trim()}", check.Output);
            }

            var reloaded = false;
            if (_options.Reload)
            {
                await Reload(dir, $"The files of {backup} were restored", cancellationToken).ConfigureAwait(false);
                reloaded = true;
            }

            return new PostfixApplyResult("RolledBack", dir, backup, ReadManifest(backup).MapDirectory, Array.Empty<string>(), restored, check.Output.Trim(), reloaded);
        }

        /// <summary>The lines of postfix check's output that are about the policy (warnings naming its parameters, transports or maps).</summary>
        internal static List<string> Complaints(string output, PostfixPolicy policy)
        {
            var words = policy.Parameters.Select(p => p.Name).Concat(policy.Transports.Select(t => t.Transport))
                .Concat(new[] { "mailops", policy.MapDirectory }).ToList();
            return output.Replace("\r\n", "\n").Split('\n')
                .Where(l => (l.IndexOf("warning", StringComparison.OrdinalIgnoreCase) >= 0 || l.IndexOf("fatal", StringComparison.OrdinalIgnoreCase) >= 0 || l.IndexOf("error", StringComparison.OrdinalIgnoreCase) >= 0)
                    && words.Any(w => l.IndexOf(w, StringComparison.OrdinalIgnoreCase) >= 0))
                .Distinct().ToList();
        }

        /// <summary>The MailOps checks first, then the existing list without any earlier MailOps check (a map named mailops_*).</summary>
        internal static string Merge(string ours, string existing, string mapName)
        {
            existing = (existing ?? "").Trim();
            if (existing.Length == 0)
            {
                return ours;
            }

            if (existing.IndexOf('{') >= 0)
            {
                // inline tables cannot be split safely: only put ours in front when it is not there yet
                return existing.IndexOf("/" + mapName, StringComparison.Ordinal) >= 0 ? existing : ours + ", " + existing;
            }

            var tokens = Regex.Split(existing, @"[\s,]+").Where(t => t.Length > 0).ToList();
            var kept = new List<string>();
            for (var i = 0; i < tokens.Count; i++)
            {
                if (tokens[i].StartsWith("check_", StringComparison.Ordinal) && i + 1 < tokens.Count
                    && (tokens[i + 1].EndsWith("/" + mapName, StringComparison.Ordinal) || System.IO.Path.GetFileName(tokens[i + 1]).StartsWith("mailops_", StringComparison.Ordinal)))
                {
                    i++;
                    continue;
                }

                if (kept.Count > 0 && kept[kept.Count - 1].StartsWith("check_", StringComparison.Ordinal) && tokens[i].IndexOf(':') > 0)
                {
                    kept[kept.Count - 1] += " " + tokens[i];
                    continue;
                }

                kept.Add(tokens[i]);
            }

            return kept.Count == 0 ? ours : ours + ", " + string.Join(", ", kept);
        }

        /// <summary>master.cf with the MailOps block (between the markers) replaced by the services, or appended.</summary>
        internal static string ReplaceBlock(string masterCf, string services)
        {
            var lines = masterCf.Replace("\r\n", "\n").Split('\n').ToList();
            var begin = lines.FindIndex(l => l.StartsWith("# BEGIN MailOps routing policy", StringComparison.Ordinal));
            var end = begin < 0 ? -1 : lines.FindIndex(begin, l => l.StartsWith(PostfixPolicy.MasterBlockEnd, StringComparison.Ordinal));
            if (begin >= 0 && end >= begin)
            {
                lines.RemoveRange(begin, end - begin + 1);
            }

            var text = string.Join("\n", lines).TrimEnd('\n') + "\n";
            if (services.Trim().Length == 0)
            {
                return text;
            }

            return text + PostfixPolicy.MasterBlockBegin + "\n" + services.TrimEnd('\n') + "\n" + PostfixPolicy.MasterBlockEnd + "\n";
        }

        private async Task Reload(string dir, string done, CancellationToken cancellationToken)
        {
            var reload = await _runner.RunAsync(_tools.Postfix, new[] { "-c", dir, "reload" }, _options.CommandTimeout, cancellationToken).ConfigureAwait(false);
            if (!reload.Succeeded)
            {
                throw new PostfixApplyException(PostfixFailure.ReloadFailed,
                    $"{done}, but postfix -c {dir} reload failed ({(reload.TimedOut ? "timed out" : "exit " + reload.ExitCode.ToString(CultureInfo.InvariantCulture))}): {reload.Output.Trim()}", reload.Output);
            }
        }

        private async Task<CommandResult> Must(string program, IReadOnlyList<string> args, string what, CancellationToken cancellationToken)
        {
            var r = await _runner.RunAsync(program, args, _options.CommandTimeout, cancellationToken).ConfigureAwait(false);
            if (!r.Succeeded)
            {
                throw new PostfixApplyException(PostfixFailure.CommandFailed,
                    $"{what} {string.Join(" ", args)} failed ({(r.TimedOut ? "timed out" : "exit " + r.ExitCode.ToString(CultureInfo.InvariantCulture))}): {r.Output.Trim()}. The previous files were restored and nothing was reloaded.", r.Output);
            }

            return r;
        }

        private string Backup(string dir, string mapDirectory, IEnumerable<string> mapNames)
        {
            var stamp = (_options.Now ?? DateTimeOffset.UtcNow).ToUniversalTime().ToString("yyyyMMdd'T'HHmmssfff'Z'", CultureInfo.InvariantCulture);
            var backup = Path.Combine(dir, BackupPrefix + stamp);
            for (var i = 2; Directory.Exists(backup); i++)
            {
                backup = Path.Combine(dir, BackupPrefix + stamp + "-" + i.ToString(CultureInfo.InvariantCulture));
            }

            Directory.CreateDirectory(backup);
            File.Copy(Path.Combine(dir, "main.cf"), Path.Combine(backup, "main.cf"));
            File.Copy(Path.Combine(dir, "master.cf"), Path.Combine(backup, "master.cf"));
            var manifest = new StringBuilder();
            manifest.Append("mapdir ").Append(mapDirectory).Append('\n');
            foreach (var name in mapNames)
            {
                foreach (var file in new[] { name, name + ".db" })
                {
                    var source = Path.Combine(mapDirectory, file);
                    if (File.Exists(source))
                    {
                        File.Copy(source, Path.Combine(backup, file));
                        manifest.Append("existed ").Append(file).Append('\n');
                    }
                    else
                    {
                        manifest.Append("new ").Append(file).Append('\n');
                    }
                }
            }

            WriteText(Path.Combine(backup, Manifest), manifest.ToString());
            return backup;
        }

        private static (string MapDirectory, List<(bool Existed, string File)> Files) ReadManifest(string backup)
        {
            var lines = File.ReadAllLines(Path.Combine(backup, Manifest));
            var mapDir = lines.Where(l => l.StartsWith("mapdir ", StringComparison.Ordinal)).Select(l => l.Substring(7)).FirstOrDefault() ?? "";
            var files = lines.Where(l => l.StartsWith("existed ", StringComparison.Ordinal) || l.StartsWith("new ", StringComparison.Ordinal))
                .Select(l => (l.StartsWith("existed ", StringComparison.Ordinal), l.Substring(l.IndexOf(' ') + 1))).ToList();
            return (mapDir, files);
        }

        /// <summary>Puts main.cf, master.cf and the maps back as the backup has them; returns the map sources restored.</summary>
        private static List<string> Restore(string backup, string dir)
        {
            File.Copy(Path.Combine(backup, "main.cf"), Path.Combine(dir, "main.cf"), true);
            File.Copy(Path.Combine(backup, "master.cf"), Path.Combine(dir, "master.cf"), true);
            var (mapDir, files) = ReadManifest(backup);
            var restored = new List<string>();
            foreach (var (existed, file) in files)
            {
                var target = Path.Combine(mapDir, file);
                if (existed)
                {
                    File.Copy(Path.Combine(backup, file), target, true);
                    if (!file.EndsWith(".db", StringComparison.Ordinal))
                    {
                        restored.Add(target);
                    }
                }
                else if (File.Exists(target))
                {
                    File.Delete(target);
                }
            }

            return restored;
        }

        private static void WriteText(string path, string text)
        {
            var temp = path + ".mailops-tmp";
            File.WriteAllText(temp, text, new UTF8Encoding(false));
            if (File.Exists(path))
            {
                File.Copy(temp, path, true);
                File.Delete(temp);
            }
            else
            {
                File.Move(temp, path);
            }
        }
    }
}
