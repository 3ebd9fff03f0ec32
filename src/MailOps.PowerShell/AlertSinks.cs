using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Config;
using MailOps.Core.Traffic;
using MailOps.Core.Traffic.Sinks;

namespace MailOps.PowerShell
{
    /// <summary>The configuration's alert sinks for a cmdlet: credentials resolved on the pipeline thread, sinks that cannot be built reported.</summary>
    internal static class AlertSinks
    {
        public static Func<TrafficAlert, CancellationToken, Task<IReadOnlyList<AlertDelivery>>>? CreateDispatcher(MailOpsConfig config, MailOpsCmdlet cmdlet)
        {
            if (config.AlertSinks.Count == 0)
            {
                cmdlet.WriteWarning("The configuration has no alert sinks (alerts: sinks:): alerts are only written to the pipeline.");
                return null;
            }

            // SecretManagement runs on the pipeline thread only: resolve the email relays' credentials now
            var credentials = new Dictionary<string, NetworkCredential?>(StringComparer.OrdinalIgnoreCase);
            foreach (var sink in config.AlertSinks.Where(s => s.Relay != null))
            {
                var relay = config.FindRelay(sink.Relay!);
                if (relay?.Credential == null || credentials.ContainsKey(relay.Name))
                {
                    continue;
                }

                var c = CredentialResolver.Resolve(cmdlet, relay.Credential, config.SecretVault, out var error);
                if (c == null)
                {
                    cmdlet.WriteError(error!);
                }

                credentials[relay.Name] = c?.GetNetworkCredential();
            }

            var sinks = AlertDispatcher.CreateSinks(config, r => credentials.TryGetValue(r.Name, out var nc) ? nc : null, out var problems);
            foreach (var p in problems)
            {
                cmdlet.WriteError(new ErrorRecord(new ArgumentException(p), "AlertSinkInvalid", ErrorCategory.InvalidData, null));
            }

            var dispatcher = new AlertDispatcher(sinks);
            return (alert, token) => dispatcher.SendAsync(alert, token);
        }
    }
}
