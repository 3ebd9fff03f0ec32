using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Routing;
using Xunit;

namespace MailOps.Core.Tests.Routing
{
    /// <summary>The generated files against the real postconf, postmap and postfix check, on a scratch configuration directory.</summary>
    public sealed class PostfixApplyTests : IDisposable
    {
        private readonly string _root = Path.Combine(Path.GetTempPath(), "mailops-routing-" + Guid.NewGuid().ToString("N").Substring(0, 8));

        public void Dispose()
        {
            try
            {
                Directory.Delete(_root, true);
            }
            catch (IOException)
            {
                // postfix may still hold a file for a moment
            }
            catch (UnauthorizedAccessException)
            {
                // the queue folders belong to postfix
            }
        }

        internal static string RepoRoot()
        {
            var env = Environment.GetEnvironmentVariable("MAILOPS_REPO");
            if (!string.IsNullOrEmpty(env))
            {
                return env;
            }

            var d = new DirectoryInfo(AppContext.BaseDirectory);
            while (d != null && !File.Exists(Path.Combine(d.FullName, "MailOps.psd1")))
            {
                d = d.Parent;
            }

            return d?.FullName ?? throw new InvalidOperationException("The repository (MailOps.psd1) was not found above " + AppContext.BaseDirectory);
        }

        /// <summary>A Postfix configuration directory made from the lab primary's templates, with its queue folder.</summary>
        internal static string ScratchConfig(string root)
        {
            var templates = Path.Combine(RepoRoot(), "tests", "lab", "templates");
            foreach (var d in new[] { "etc", "spool", "data", "log", "mail" })
            {
                Directory.CreateDirectory(Path.Combine(root, d));
            }

            var port = 41000;
            string Fill(string text) => Regex.Replace(text.Replace("@LAB@/postfix-primary", root).Replace("@LAB@", root), "@[A-Z_]+@",
                m => m.Value.Contains("UID") || m.Value.Contains("GID") ? "0" : (port++).ToString(System.Globalization.CultureInfo.InvariantCulture));
            File.WriteAllText(Path.Combine(root, "etc", "main.cf"), Fill(File.ReadAllText(Path.Combine(templates, "postfix-primary", "main.cf"))));
            File.WriteAllText(Path.Combine(root, "etc", "master.cf"), Fill(File.ReadAllText(Path.Combine(templates, "postfix-primary", "master.cf"))) + File.ReadAllText(Path.Combine(templates, "master-common.cf")));
            return Path.Combine(root, "etc");
        }

        private static PostfixPolicyApplier Applier() =>
            new PostfixPolicyApplier(new ProcessCommandRunner(), PostfixTools.Locate(), new PostfixApplyOptions { Reload = false, CommandTimeout = TimeSpan.FromSeconds(60) });

        private static async Task<string> Run(string program, params string[] args) =>
            (await new ProcessCommandRunner().RunAsync(program, args, TimeSpan.FromSeconds(60), CancellationToken.None)).Output.Trim();

        [PostfixFact]
        public async Task GeneratedFilesPassPostfixCheckAndAnswerLookups()
        {
            var etc = ScratchConfig(_root);
            var before = await Run("/usr/sbin/postfix", "-c", etc, "check");
            Assert.Equal("", before); // the scratch directory itself is clean
            var policy = PostfixPolicyGeneratorTests.Generate(tweak: o => o.MapDirectory = etc);

            var result = await Applier().ApplyAsync(policy, etc);

            Assert.Equal("", result.CheckOutput);
            Assert.False(result.Reloaded);
            Assert.True(Directory.Exists(result.BackupDirectory));
            Assert.All(policy.Files.Where(f => f.IsHashMap), f => Assert.True(File.Exists(Path.Combine(etc, f.Name + ".db")), f.Name));
            Assert.Equal("FILTER mailops_secondary_eu:[127.0.0.1]:2526", await Run("/usr/sbin/postmap", "-c", etc, "-q", "news@lab.test", "hash:" + etc + "/mailops_sender_filter"));
            Assert.Equal("DUNNO", await Run("/usr/sbin/postmap", "-c", etc, "-q", "lab.test", "hash:" + etc + "/mailops_sender_filter"));
            Assert.Equal("mailops_backup:[relay2.lab.test]:465", await Run("/usr/sbin/postmap", "-c", etc, "-q", "billing@corp.test", "hash:" + etc + "/mailops_sender_transport"));
            Assert.Equal("FILTER mailops_secondary_eu:[127.0.0.1]:2526", await Run("/usr/sbin/postmap", "-c", etc, "-q", "198.51.100", "hash:" + etc + "/mailops_client_filter"));
            Assert.Equal("6s", await Run("/usr/sbin/postconf", "-c", etc, "-h", "mailops_secondary_eu_destination_rate_delay"));
            Assert.Equal("check_client_access hash:" + etc + "/mailops_client_filter, check_sender_access hash:" + etc + "/mailops_sender_filter", await Run("/usr/sbin/postconf", "-c", etc, "-h", "smtpd_sender_restrictions"));
            Assert.Equal("192.0.2.5", await Run("/usr/sbin/postconf", "-c", etc, "-h", "smtpd_client_event_limit_exceptions"));
            Assert.StartsWith("mailops_secondary_eu unix - - n - - smtp", Regex.Replace(await Run("/usr/sbin/postconf", "-c", etc, "-M", "mailops_secondary_eu/unix"), " +", " "));
            // the lab's own settings are untouched
            Assert.Equal("permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination", await Run("/usr/sbin/postconf", "-c", etc, "-h", "smtpd_relay_restrictions"));

            // applying again replaces the block and the parameters (no duplicate service), and rollback restores the first backup's files
            var second = await Applier().ApplyAsync(policy, etc);
            Assert.Single(Regex.Matches(File.ReadAllText(Path.Combine(etc, "master.cf")), "(?m)^mailops_secondary_eu unix"));
            Assert.Equal("check_client_access hash:" + etc + "/mailops_client_filter, check_sender_access hash:" + etc + "/mailops_sender_filter", await Run("/usr/sbin/postconf", "-c", etc, "-h", "smtpd_sender_restrictions"));
            var rolled = await Applier().RollbackAsync(etc);
            Assert.Equal(second.BackupDirectory, rolled.BackupDirectory);
            Assert.Equal(File.ReadAllText(Path.Combine(second.BackupDirectory, "main.cf")), File.ReadAllText(Path.Combine(etc, "main.cf")));
        }

        [PostfixFact]
        public async Task ABrokenMasterFragmentFailsTheCheckAndIsRolledBack()
        {
            var etc = ScratchConfig(_root);
            var main = File.ReadAllText(Path.Combine(etc, "main.cf"));
            var master = File.ReadAllText(Path.Combine(etc, "master.cf"));
            var good = PostfixPolicyGeneratorTests.Generate(tweak: o => o.MapDirectory = etc);
            // a service line with a field missing: postfix check exits 1 ("bad field count")
            var broken = new PostfixPolicy(good.Files, good.Decisions, good.Parameters, "mailops_secondary_eu unix - - n - -\nmailops_backup unix - - n - - smtp\n", good.MapDirectory, good.Transports);

            var e = await Assert.ThrowsAsync<PostfixApplyException>(() => Applier().ApplyAsync(broken, etc));

            Assert.Equal(PostfixFailure.CheckFailed, e.Kind);
            Assert.Contains("bad field count", e.Message);
            Assert.Contains("NOT reloaded", e.Message);
            Assert.Equal(main, File.ReadAllText(Path.Combine(etc, "main.cf")));
            Assert.Equal(master, File.ReadAllText(Path.Combine(etc, "master.cf")));
            Assert.False(File.Exists(Path.Combine(etc, "mailops_sender_filter")));
            Assert.False(File.Exists(Path.Combine(etc, "mailops_sender_filter.db")));
            Assert.Equal("", await Run("/usr/sbin/postfix", "-c", etc, "check"));
        }

        [PostfixFact]
        public async Task AWarningAboutTheGeneratedParametersFailsTheCheckToo()
        {
            var etc = ScratchConfig(_root);
            var main = File.ReadAllText(Path.Combine(etc, "main.cf"));
            var good = PostfixPolicyGeneratorTests.Generate(tweak: o => o.MapDirectory = etc);
            // the transports' parameters without their services: postfix check exits 0 but warns "unused parameter"
            var broken = new PostfixPolicy(good.Files, good.Decisions, good.Parameters, "", good.MapDirectory, good.Transports);

            var e = await Assert.ThrowsAsync<PostfixApplyException>(() => Applier().ApplyAsync(broken, etc));

            Assert.Equal(PostfixFailure.CheckFailed, e.Kind);
            Assert.Contains("warned about the generated configuration", e.Message);
            Assert.Contains("unused parameter: mailops_", e.Output);
            Assert.Equal(main, File.ReadAllText(Path.Combine(etc, "main.cf")));
        }

        [Fact]
        public async Task ReloadIsNeverRunWhenTheCheckFailsAndItsFailureIsReported()
        {
            var etc = ScratchConfig(_root);
            var policy = PostfixPolicyGeneratorTests.Generate(tweak: o => o.MapDirectory = etc);
            var tools = new PostfixTools("/x/postconf", "/x/postmap", "/x/postfix");

            var failing = new FakeRunner(args => args.Contains("check") ? new CommandResult(1, "postfix: fatal: something") : new CommandResult(0, ""));
            var e = await Assert.ThrowsAsync<PostfixApplyException>(() => new PostfixPolicyApplier(failing, tools).ApplyAsync(policy, etc));
            Assert.Equal(PostfixFailure.CheckFailed, e.Kind);
            Assert.DoesNotContain(failing.Calls, c => c.Contains("reload"));

            var noReload = new FakeRunner(args => args.Contains("reload") ? new CommandResult(1, "postfix/postfix-script: fatal: the Postfix mail system is not running") : new CommandResult(0, ""));
            var r = await Assert.ThrowsAsync<PostfixApplyException>(() => new PostfixPolicyApplier(noReload, tools).ApplyAsync(policy, etc));
            Assert.Equal(PostfixFailure.ReloadFailed, r.Kind);
            Assert.Contains("is not running", r.Message);
            Assert.Contains("mailops-backup-", r.Message);

            var timedOut = new FakeRunner(args => args.Contains("check") ? new CommandResult(-1, "postfix did not finish", true) : new CommandResult(0, ""));
            var t = await Assert.ThrowsAsync<PostfixApplyException>(() => new PostfixPolicyApplier(timedOut, tools).ApplyAsync(policy, etc));
            Assert.Contains("did not finish", t.Message);
        }

        [Fact]
        public void MissingToolsAreNamed()
        {
            var e = Assert.Throws<PostfixApplyException>(() => PostfixTools.Locate(Path.Combine(_root, "nowhere")));
            Assert.Equal(PostfixFailure.NotFound, e.Kind);
            Assert.Contains("'postconf' was not found", e.Message);
        }

        [Fact]
        public async Task ACommandIsKilledAtItsTimeoutAndOnCancellation()
        {
            var runner = new ProcessCommandRunner();
            var started = DateTime.UtcNow;
            var r = await runner.RunAsync("/bin/sleep", new[] { "30" }, TimeSpan.FromMilliseconds(300), CancellationToken.None);
            Assert.True(r.TimedOut);
            Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10));

            using var cancel = new CancellationTokenSource(300);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => runner.RunAsync("/bin/sleep", new[] { "30" }, TimeSpan.FromSeconds(60), cancel.Token));
        }

        private sealed class FakeRunner : IPostfixCommandRunner
        {
            private readonly Func<IReadOnlyList<string>, CommandResult> _answer;

            public FakeRunner(Func<IReadOnlyList<string>, CommandResult> answer)
            {
                _answer = answer;
            }

            public List<string> Calls { get; } = new List<string>();

            public Task<CommandResult> RunAsync(string program, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken)
            {
                Calls.Add(program + " " + string.Join(" ", arguments));
                return Task.FromResult(_answer(arguments));
            }
        }
    }

    /// <summary>A fact skipped, loudly, when Postfix is not installed.</summary>
    public sealed class PostfixFactAttribute : FactAttribute
    {
        public PostfixFactAttribute()
        {
            if (!File.Exists("/usr/sbin/postfix") || !File.Exists("/usr/sbin/postconf") || !File.Exists("/usr/sbin/postmap"))
            {
                Skip = "POSTFIX MISSING: /usr/sbin/postfix, postconf or postmap is absent; the generated routing policy was NOT checked by Postfix (apt-get install postfix).";
            }
        }
    }
}
