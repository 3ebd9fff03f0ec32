using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Reflection;
using MailOps.Core.Config;
using MailOps.Core.Diagnostics;

namespace MailOps.PowerShell.Commands
{
    /// <summary>What a support request needs: versions, which copy of each dependency is loaded (and whether it works), and which files MailOps uses.</summary>
    [Cmdlet(VerbsCommon.Get, "MailOpsEnvironment")]
    [OutputType(typeof(MailOpsEnvironment))]
    public sealed class GetMailOpsEnvironmentCommand : MailOpsCmdlet
    {
        [Parameter]
        public SwitchParameter Dependencies { get; set; }

        protected override void EndProcessing()
        {
            var deps = DependencyCheck.Run();
            if (Dependencies)
            {
                foreach (var d in deps)
                {
                    WriteObject(d);
                }

                return;
            }

            var (path, source) = ConfigLocator.Resolve(null);
            var version = typeof(GetMailOpsEnvironmentCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "?";
            var plus = version.IndexOf('+');
            WriteObject(new MailOpsEnvironment(
                plus > 0 ? version.Substring(0, plus) : version,
                Host.Version.ToString(),
                System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
                path, source.ToString(), File.Exists(path), ConfigLocator.UserDataFolder(),
                DependencyCheck.LoadContextName(typeof(GetMailOpsEnvironmentCommand).Assembly),
                deps));
        }
    }

    public sealed class MailOpsEnvironment
    {
        internal MailOpsEnvironment(string moduleVersion, string hostVersion, string runtime, string configPath, string configPathSource,
            bool configExists, string dataFolder, string? loadContext, IReadOnlyList<DependencyInfo> dependencies)
        {
            ModuleVersion = moduleVersion;
            HostVersion = hostVersion;
            Runtime = runtime;
            ConfigPath = configPath;
            ConfigPathSource = configPathSource;
            ConfigExists = configExists;
            DataFolder = dataFolder;
            LoadContext = loadContext;
            Dependencies = dependencies;
        }

        public string ModuleVersion { get; }
        public string HostVersion { get; }
        public string Runtime { get; }
        public string ConfigPath { get; }
        public string ConfigPathSource { get; }
        public bool ConfigExists { get; }
        public string DataFolder { get; }

        /// <summary>"MailOps" when the module runs isolated in its private load context (PowerShell 7).</summary>
        public string? LoadContext { get; }
        public IReadOnlyList<DependencyInfo> Dependencies { get; }
        public bool DependenciesWork => Dependencies.All(d => d.Works);
    }
}
