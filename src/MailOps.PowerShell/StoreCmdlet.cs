using System.Management.Automation;
using MailOps.Core.Store;

namespace MailOps.PowerShell
{
    /// <summary>Base of the cmdlets that read or write the store: the configuration and the store's credential.</summary>
    public abstract class StoreAccessCmdlet : MailOpsCmdlet
    {
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? ConfigPath { get; set; }

        [Parameter]
        [Credential]
        public PSCredential? StoreCredential { get; set; }

        /// <summary>The store of the configuration (-ConfigPath, $env:MAILOPS_CONFIG or the default; SQLite per user when none).</summary>
        protected BounceStore OpenConfiguredStore() => OpenStore(LoadOptionalConfig(ConfigPath), StoreCredential);
    }

    /// <summary>A store cmdlet that keeps the store open from BeginProcessing to the end of the pipeline.</summary>
    public abstract class OpenStoreCmdlet : StoreAccessCmdlet
    {
        /// <summary>Open after BeginProcessing.</summary>
        protected BounceStore Store { get; private set; } = null!;

        protected override void BeginProcessing() => Store = OpenConfiguredStore();

        protected override void EndProcessing() => Store?.Dispose();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                Store?.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    /// <summary>Base of the cmdlets that work on the store's bounces: the store, and the flow.</summary>
    public abstract class StoreCmdlet : StoreAccessCmdlet
    {
        [Parameter]
        [ArgumentCompleter(typeof(FlowNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string? Flow { get; set; }
    }
}
