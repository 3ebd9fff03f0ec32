using System.Management.Automation;
using MailOps.Core.Store;

namespace MailOps.PowerShell
{
    /// <summary>Base of the cmdlets that work on the store: the configuration, the store's credential, and the flow.</summary>
    public abstract class StoreCmdlet : MailOpsCmdlet
    {
        [Parameter]
        [ArgumentCompleter(typeof(FlowNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string? Flow { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? ConfigPath { get; set; }

        [Parameter]
        [Credential]
        public PSCredential? StoreCredential { get; set; }

        /// <summary>The store of the configuration (-ConfigPath, $env:MAILOPS_CONFIG or the default; SQLite per user when none).</summary>
        protected BounceStore OpenConfiguredStore() => OpenStore(LoadOptionalConfig(ConfigPath), StoreCredential);
    }
}
