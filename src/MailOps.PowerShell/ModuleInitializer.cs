using System;
using System.IO;
using System.Management.Automation;
using System.Reflection;

namespace MailOps.PowerShell
{
    /// <summary>
    /// On Windows PowerShell 5.1 (.NET Framework, no AssemblyLoadContext) the dependencies sit next to this assembly and
    /// are bound by name from this folder whatever version another assembly asks for (the job binding redirects do for
    /// applications). On PowerShell 7 this handler is never needed: MailOps.psm1 loads everything into MailOps'
    /// private load context.
    /// </summary>
    public sealed class ModuleInitializer : IModuleAssemblyInitializer, IModuleAssemblyCleanup
    {
        private static readonly string Folder = Path.GetDirectoryName(typeof(ModuleInitializer).Assembly.Location) ?? ".";

        public void OnImport()
        {
            if (IsNetFramework)
            {
                AppDomain.CurrentDomain.AssemblyResolve += Resolve;
            }
        }

        public void OnRemove(PSModuleInfo psModuleInfo)
        {
            if (IsNetFramework)
            {
                AppDomain.CurrentDomain.AssemblyResolve -= Resolve;
            }
        }

        private static bool IsNetFramework =>
            System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription.StartsWith(".NET Framework", StringComparison.Ordinal);

        private static Assembly? Resolve(object? sender, ResolveEventArgs args)
        {
            var name = new AssemblyName(args.Name).Name;
            var path = Path.Combine(Folder, name + ".dll");
            return File.Exists(path) ? Assembly.LoadFrom(path) : null;
        }
    }
}
