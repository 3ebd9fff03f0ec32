using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Text;

namespace MailOps.Core.Diagnostics
{
    /// <summary>One dependency of MailOps as loaded in this process, and whether it works.</summary>
    public sealed class DependencyInfo
    {
        internal DependencyInfo(string name, string version, string? loadContext, string? location, bool works, string detail)
        {
            Name = name;
            Version = version;
            LoadContext = loadContext;
            Location = location;
            Works = works;
            Detail = detail;
        }

        public string Name { get; }
        public string Version { get; }

        /// <summary>The AssemblyLoadContext the assembly lives in ("MailOps" when isolated; null on .NET Framework).</summary>
        public string? LoadContext { get; }
        public string? Location { get; }

        /// <summary>The self-test ran real code of the dependency and got the expected answer.</summary>
        public bool Works { get; }
        public string Detail { get; }
    }

    /// <summary>
    /// Runs a small piece of real code in each dependency (MimeKit parses a message, YamlDotNet a document, ...) and
    /// reports which copy of it this process uses. Support's first question is "which version is loaded, and where".
    /// </summary>
    public static class DependencyCheck
    {
        public static IReadOnlyList<DependencyInfo> Run()
        {
            return new[]
            {
                Check(typeof(ConfigLocatorAnchor).Assembly, "MailOps.Core", () => "loaded"),
                Check(typeof(MimeKit.MimeMessage).Assembly, "MimeKit", MimeKitSelfTest),
                Check(typeof(MailKit.Net.Smtp.SmtpClient).Assembly, "MailKit", () =>
                {
                    using (var client = new MailKit.Net.Smtp.SmtpClient())
                    {
                        return client.IsConnected ? throw new InvalidOperationException("a new client claims to be connected") : "SmtpClient created";
                    }
                }),
                Check(typeof(DnsClient.LookupClient).Assembly, "DnsClient", () =>
                {
                    var options = new DnsClient.LookupClientOptions(System.Net.IPAddress.Loopback) { UseCache = false };
                    var client = new DnsClient.LookupClient(options);
                    return $"LookupClient with {client.NameServers.Count} server(s)";
                }),
                Check(typeof(YamlDotNet.Core.Parser).Assembly, "YamlDotNet", () =>
                {
                    var result = Config.ConfigReader.Read("version: 1\nrelays: []\n");
                    return result.IsValid ? "parsed a YAML document" : throw new InvalidOperationException("a minimal document did not parse");
                }),
            };
        }

        private static string MimeKitSelfTest()
        {
            const string text = "From: a@example.org\r\nTo: b@example.org\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\nbody\r\n";
            using (var stream = new MemoryStream(Encoding.ASCII.GetBytes(text)))
            {
                var message = MimeKit.MimeMessage.Load(stream);
                if (message.Subject != "caf\u00e9")
                {
                    throw new InvalidOperationException($"decoded subject was '{message.Subject}'");
                }

                return "parsed and decoded a message";
            }
        }

        private static DependencyInfo Check(Assembly assembly, string name, Func<string> selfTest)
        {
            var version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? assembly.GetName().Version?.ToString() ?? "?";
            var plus = version.IndexOf('+');
            if (plus > 0)
            {
                version = version.Substring(0, plus);
            }

            bool works;
            string detail;
            try
            {
                detail = selfTest();
                works = true;
            }
            catch (Exception e)
            {
                works = false;
                detail = e.GetType().Name + ": " + e.Message;
            }

            return new DependencyInfo(name, version, LoadContextName(assembly), string.IsNullOrEmpty(assembly.Location) ? null : assembly.Location, works, detail);
        }

        /// <summary>The name of the assembly's load context, by reflection (netstandard2.0 has no AssemblyLoadContext).</summary>
        public static string? LoadContextName(Assembly assembly)
        {
            var alc = Type.GetType("System.Runtime.Loader.AssemblyLoadContext, System.Runtime.Loader", throwOnError: false);
            var get = alc?.GetMethod("GetLoadContext", BindingFlags.Public | BindingFlags.Static, null, new[] { typeof(Assembly) }, null);
            var context = get?.Invoke(null, new object[] { assembly });
            return context?.GetType().GetProperty("Name")?.GetValue(context) as string;
        }

        private sealed class ConfigLocatorAnchor
        {
        }
    }
}
