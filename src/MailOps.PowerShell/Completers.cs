using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using MailOps.Core.Config;

namespace MailOps.PowerShell
{
    /// <summary>Completes names from the configuration file named by -Path/-ConfigPath, $env:MAILOPS_CONFIG or the default.</summary>
    public abstract class ConfigNameCompleter : IArgumentCompleter
    {
        private static readonly char[] QuoteChars = { ' ', '\'', '$', ';', '(' };

        protected abstract IEnumerable<string> Names(MailOpsConfig? config);

        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            string? path = null;
            foreach (var key in new[] { "ConfigPath", "Path" })
            {
                if (fakeBoundParameters != null && fakeBoundParameters.Contains(key) && fakeBoundParameters[key] is object v)
                {
                    path = v.ToString();
                    break;
                }
            }

            MailOpsConfig? config;
            try
            {
                config = ConfigReader.ReadFile(ConfigLocator.Resolve(path).Path).Config;
            }
            catch (Exception e) when (e is ArgumentException || e is NotSupportedException)
            {
                return Array.Empty<CompletionResult>();
            }

            var word = (wordToComplete ?? "").Trim('\'', '"');
            return Names(config)
                .Where(n => n.StartsWith(word, StringComparison.OrdinalIgnoreCase))
                .OrderBy(n => n, StringComparer.OrdinalIgnoreCase)
                .Select(n => new CompletionResult(n.IndexOfAny(QuoteChars) >= 0 ? "'" + n.Replace("'", "''") + "'" : n, n, CompletionResultType.ParameterValue, n))
                .ToList();
        }
    }

    public sealed class RelayNameCompleter : ConfigNameCompleter
    {
        protected override IEnumerable<string> Names(MailOpsConfig? config) => config?.Relays.Select(r => r.Name) ?? Enumerable.Empty<string>();
    }

    public sealed class FlowNameCompleter : ConfigNameCompleter
    {
        protected override IEnumerable<string> Names(MailOpsConfig? config) => config?.Flows.Select(f => f.Name) ?? Enumerable.Empty<string>();
    }

    /// <summary>Sender domains: the configuration's domains and the declared flows' sender domains.</summary>
    public sealed class DomainNameCompleter : ConfigNameCompleter
    {
        protected override IEnumerable<string> Names(MailOpsConfig? config) =>
            config == null ? Enumerable.Empty<string>() : MailOps.Core.Inventory.FlowInventoryBuilder.DefaultDomains(config);
    }

    /// <summary>Provider names: the catalogue shipped with MailOps and the configuration's additions.</summary>
    public sealed class ProviderNameCompleter : ConfigNameCompleter
    {
        protected override IEnumerable<string> Names(MailOpsConfig? config) => MailOps.Core.Providers.ProviderCatalog.For(config).Providers.Select(p => p.Name);
    }
}
