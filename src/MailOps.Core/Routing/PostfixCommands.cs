using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace MailOps.Core.Routing
{
    /// <summary>What an external command did.</summary>
    public sealed class CommandResult
    {
        public CommandResult(int exitCode, string output, bool timedOut = false, string? standardOutput = null)
        {
            ExitCode = exitCode;
            Output = output;
            TimedOut = timedOut;
            StandardOutput = standardOutput ?? output;
        }

        /// <summary>Standard output alone (what postconf -h prints, without its warnings).</summary>
        public string StandardOutput { get; }

        /// <summary>The exit status (-1 when it timed out).</summary>
        public int ExitCode { get; }

        /// <summary>Standard output then standard error.</summary>
        public string Output { get; }

        public bool TimedOut { get; }

        public bool Succeeded => ExitCode == 0 && !TimedOut;
    }

    /// <summary>Runs postconf, postmap and postfix (the seam the tests replace).</summary>
    public interface IPostfixCommandRunner
    {
        /// <summary>Runs a program with its arguments (no shell) and waits at most <paramref name="timeout"/>; the program is killed when it runs out or on cancellation.</summary>
        /// <exception cref="OperationCanceledException">cancelled (the program was killed).</exception>
        /// <exception cref="System.ComponentModel.Win32Exception">the program could not be started.</exception>
        Task<CommandResult> RunAsync(string program, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken);
    }

    /// <summary>Runs real processes.</summary>
    public sealed class ProcessCommandRunner : IPostfixCommandRunner
    {
        public async Task<CommandResult> RunAsync(string program, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var info = new ProcessStartInfo(program, string.Join(" ", arguments.Select(Quote)))
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
                CreateNoWindow = true,
            };
            using (var process = new Process { StartInfo = info, EnableRaisingEvents = true })
            {
                var exited = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                process.Exited += (s, e) => exited.TrySetResult(true);
                process.Start();
                process.StandardInput.Close();
                var stdout = process.StandardOutput.ReadToEndAsync();
                var stderr = process.StandardError.ReadToEndAsync();
                using (var delay = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                {
                    var finished = await Task.WhenAny(exited.Task, Task.Delay(timeout, delay.Token)).ConfigureAwait(false);
                    if (finished != exited.Task && !process.HasExited)
                    {
                        try
                        {
                            process.Kill();
                        }
                        catch (InvalidOperationException)
                        {
                            // it exited meanwhile
                        }

                        cancellationToken.ThrowIfCancellationRequested();
                        return new CommandResult(-1, $"{Path.GetFileName(program)} did not finish within {timeout.TotalSeconds:0}s and was stopped.", true);
                    }

                    delay.Cancel();
                }

                process.WaitForExit();
                var text = await stdout.ConfigureAwait(false);
                return new CommandResult(process.ExitCode, text + await stderr.ConfigureAwait(false), false, text);
            }
        }

        private static string Quote(string arg) =>
            arg.Length > 0 && arg.IndexOfAny(new[] { ' ', '\t', '"', '\'', '\\' }) < 0 ? arg : "\"" + arg.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
    }

    /// <summary>Where postconf, postmap and postfix are.</summary>
    public sealed class PostfixTools
    {
        public PostfixTools(string postconf, string postmap, string postfix)
        {
            Postconf = postconf;
            Postmap = postmap;
            Postfix = postfix;
        }

        public string Postconf { get; }
        public string Postmap { get; }
        public string Postfix { get; }

        /// <summary>Finds the three programs in <paramref name="directory"/>, or on PATH, /usr/sbin and /usr/local/sbin.</summary>
        /// <exception cref="PostfixApplyException">one is missing (Kind NotFound).</exception>
        public static PostfixTools Locate(string? directory = null)
        {
            var dirs = directory != null ? new[] { directory } :
                (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator).Where(d => d.Length > 0)
                    .Concat(new[] { "/usr/sbin", "/usr/local/sbin", "/sbin" }).Distinct().ToArray();
            string Find(string name) =>
                dirs.Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists) ??
                throw new PostfixApplyException(PostfixFailure.NotFound,
                    $"'{name}' was not found ({(directory != null ? "in " + directory : "on PATH, /usr/sbin or /usr/local/sbin")}): is Postfix installed on this machine?", "");
            return new PostfixTools(Find("postconf"), Find("postmap"), Find("postfix"));
        }
    }

    /// <summary>Why applying or rolling back a policy failed.</summary>
    public enum PostfixFailure
    {
        /// <summary>postconf, postmap or postfix is missing.</summary>
        NotFound,

        /// <summary>postfix check failed or warned about the policy: the previous files were restored and nothing was reloaded.</summary>
        CheckFailed,

        /// <summary>postfix reload failed (the checked configuration stays in place).</summary>
        ReloadFailed,

        /// <summary>postmap or postconf failed: the previous files were restored.</summary>
        CommandFailed,

        /// <summary>No backup to roll back to.</summary>
        NoBackup,
    }

    /// <summary>A Postfix step failed; <see cref="Output"/> has what the command printed.</summary>
    public sealed class PostfixApplyException : Exception
    {
        public PostfixApplyException(PostfixFailure kind, string message, string output, Exception? inner = null)
            : base(message, inner)
        {
            Kind = kind;
            Output = output;
        }

        public PostfixFailure Kind { get; }
        public string Output { get; }
    }
}
