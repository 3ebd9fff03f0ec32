using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Runtime.Loader;

namespace MailOps.Loader
{
    /// <summary>
    /// MailOps' private AssemblyLoadContext. The cmdlet assembly, MailOps.Core and their dependencies (MailKit, MimeKit,
    /// DnsClient, YamlDotNet, ...) load here, so another module that brings a different version of any of them loads
    /// its own copy into the default context and both work in one session. Assemblies the runtime itself provides
    /// (System.*, and System.Management.Automation from PowerShell) are always taken from the default context so that
    /// types are shared with PowerShell.
    /// </summary>
    public sealed class MailOpsLoadContext : AssemblyLoadContext
    {
        private static readonly object Gate = new object();
        private static MailOpsLoadContext? _instance;
        private readonly string _folder;
        private readonly HashSet<string> _platform;

        private MailOpsLoadContext(string folder) : base("MailOps", isCollectible: false)
        {
            _folder = folder;
            _platform = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            if (AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") is string tpa)
            {
                foreach (var path in tpa.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
                {
                    _platform.Add(Path.GetFileNameWithoutExtension(path));
                }
            }
        }

        /// <summary>Loads the cmdlet assembly from <paramref name="folder"/> into the private context (once per process).</summary>
        public static Assembly Initialize(string folder, string mainAssembly)
        {
            lock (Gate)
            {
                if (_instance == null)
                {
                    _instance = new MailOpsLoadContext(Path.GetFullPath(folder));
                }
                else if (!string.Equals(_instance._folder, Path.GetFullPath(folder), StringComparison.Ordinal))
                {
                    throw new InvalidOperationException(
                        $"MailOps from '{_instance._folder}' is already loaded in this session; start a new session to load the copy in '{folder}'.");
                }

                return _instance.LoadFromAssemblyName(new AssemblyName(mainAssembly));
            }
        }

        protected override Assembly? Load(AssemblyName assemblyName)
        {
            var name = assemblyName.Name;
            if (name == null || _platform.Contains(name) || name.Equals("System.Management.Automation", StringComparison.OrdinalIgnoreCase))
            {
                return null;
            }

            var path = Path.Combine(_folder, name + ".dll");
            return File.Exists(path) ? LoadFromAssemblyPath(path) : null;
        }

        protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
        {
            // Native libraries shipped with a dependency (for example SQLite's) sit under runtimes/<rid>/native.
            var rid = System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier;
            var arch = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
            var os = OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : "linux";
            foreach (var candidateRid in new[] { rid, $"{os}-{arch}" })
            {
                var dir = Path.Combine(_folder, "runtimes", candidateRid, "native");
                foreach (var file in new[] { unmanagedDllName, "lib" + unmanagedDllName + ".so", unmanagedDllName + ".dll", "lib" + unmanagedDllName + ".dylib" })
                {
                    var full = Path.Combine(dir, file);
                    if (File.Exists(full))
                    {
                        return LoadUnmanagedDllFromPath(full);
                    }
                }
            }

            return IntPtr.Zero;
        }
    }
}
