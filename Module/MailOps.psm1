# MailOps loader.
# PowerShell 7: only MailOps.LoadContext.dll (no dependencies) enters the default load context; the cmdlets,
# MailOps.Core, MailKit, MimeKit, DnsClient and YamlDotNet load in MailOps' private AssemblyLoadContext, so another
# module that brings other versions of those libraries works in the same session, whichever is imported first.
# Windows PowerShell 5.1: the cmdlet assembly is imported directly and binds its dependencies from lib/.
$lib = [System.IO.Path]::Combine($PSScriptRoot, 'lib')
if ($PSVersionTable.PSEdition -eq 'Core') {
    if (-not ('MailOps.Loader.MailOpsLoadContext' -as [type])) {
        Add-Type -Path ([System.IO.Path]::Combine($PSScriptRoot, 'bin', 'MailOps.LoadContext.dll'))
    }
    $assembly = [MailOps.Loader.MailOpsLoadContext]::Initialize($lib, 'MailOps.PowerShell')
    $inner = Import-Module -Assembly $assembly -PassThru -ErrorAction Stop
}
else {
    $inner = Import-Module ([System.IO.Path]::Combine($lib, 'MailOps.PowerShell.dll')) -PassThru -ErrorAction Stop
}

if ($inner) {
    # Import-Module -Force of this module re-uses the cached binary module and would not re-export its cmdlets
    # through this script module (PowerShell/PowerShell#20710): add them explicitly.
    $addExportedCmdlet = [System.Management.Automation.PSModuleInfo].GetMethod('AddExportedCmdlet', [System.Reflection.BindingFlags]'Instance, NonPublic')
    if ($addExportedCmdlet) {
        foreach ($cmd in $inner.ExportedCmdlets.Values) {
            $addExportedCmdlet.Invoke($ExecutionContext.SessionState.Module, @(, $cmd))
        }
    }
}
