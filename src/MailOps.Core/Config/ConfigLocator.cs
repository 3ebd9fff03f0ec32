using System;
using System.IO;

namespace MailOps.Core.Config
{
    /// <summary>Where a configuration path came from.</summary>
    public enum ConfigPathSource
    {
        Parameter,
        EnvironmentVariable,
        UserDefault,
    }

    /// <summary>
    /// Finds the configuration file: an explicit path first, then the MAILOPS_CONFIG environment variable, then the
    /// per-user default (~/.config/mailops/config.yaml on Linux and macOS, %APPDATA%\MailOps\config.yaml on Windows).
    /// </summary>
    public static class ConfigLocator
    {
        public const string EnvironmentVariable = "MAILOPS_CONFIG";

        public static (string Path, ConfigPathSource Source) Resolve(string? explicitPath, Func<string, string?>? getEnvironment = null)
        {
            if (!string.IsNullOrWhiteSpace(explicitPath))
            {
                return (explicitPath!, ConfigPathSource.Parameter);
            }

            var env = (getEnvironment ?? Environment.GetEnvironmentVariable)(EnvironmentVariable);
            if (!string.IsNullOrWhiteSpace(env))
            {
                return (env!, ConfigPathSource.EnvironmentVariable);
            }

            return (UserDefaultPath(getEnvironment), ConfigPathSource.UserDefault);
        }

        /// <summary>The per-user default configuration path.</summary>
        public static string UserDefaultPath(Func<string, string?>? getEnvironment = null)
        {
            getEnvironment ??= Environment.GetEnvironmentVariable;
            if (Path.DirectorySeparatorChar == '\\')
            {
                var appData = getEnvironment("APPDATA") ?? Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData);
                return Path.Combine(appData, "MailOps", "config.yaml");
            }

            var xdg = getEnvironment("XDG_CONFIG_HOME");
            var home = getEnvironment("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            var baseDir = string.IsNullOrEmpty(xdg) ? Path.Combine(home, ".config") : xdg!;
            return Path.Combine(baseDir, "mailops", "config.yaml");
        }

        /// <summary>The per-user data folder (the default SQLite store lives there).</summary>
        public static string UserDataFolder(Func<string, string?>? getEnvironment = null)
        {
            getEnvironment ??= Environment.GetEnvironmentVariable;
            if (Path.DirectorySeparatorChar == '\\')
            {
                var local = getEnvironment("LOCALAPPDATA") ?? Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData);
                return Path.Combine(local, "MailOps");
            }

            var xdg = getEnvironment("XDG_DATA_HOME");
            var home = getEnvironment("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            var baseDir = string.IsNullOrEmpty(xdg) ? Path.Combine(home, ".local", "share") : xdg!;
            return Path.Combine(baseDir, "mailops");
        }
    }
}
