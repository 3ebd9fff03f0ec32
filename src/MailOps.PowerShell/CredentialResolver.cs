using System;
using System.Linq;
using System.Management.Automation;
using System.Security;

namespace MailOps.PowerShell
{
    /// <summary>
    /// Finds the credential a relay names: the -Credential parameter first, then the SecretManagement module
    /// (Get-Secret, from the configuration's vault) when it is installed. Secrets never come from the file.
    /// </summary>
    internal static class CredentialResolver
    {
        public static PSCredential? Resolve(PSCmdlet cmdlet, string name, string? vault, out ErrorRecord? error)
        {
            error = null;
            var available = cmdlet.InvokeCommand.InvokeScript("Get-Command -Name Get-Secret -CommandType Cmdlet, Function -ErrorAction Ignore").Count > 0;
            if (!available)
            {
                error = new ErrorRecord(new InvalidOperationException(
                        $"The relay names the credential '{name}', but no -Credential was given and the SecretManagement module (Get-Secret) is not installed. Give -Credential, or store it with Set-Secret -Name {name}."),
                    "CredentialNotAvailable", ErrorCategory.ObjectNotFound, name);
                return null;
            }

            object? secret;
            try
            {
                var script = ScriptBlock.Create("param($n, $v) if ($v) { Get-Secret -Name $n -Vault $v -ErrorAction Stop } else { Get-Secret -Name $n -ErrorAction Stop }");
                secret = cmdlet.InvokeCommand.InvokeScript(false, script, null, name, vault).Select(o => o?.BaseObject).FirstOrDefault();
            }
            catch (RuntimeException e)
            {
                error = new ErrorRecord(new InvalidOperationException($"Get-Secret could not read the credential '{name}'{(vault != null ? $" from the vault '{vault}'" : "")}: {e.Message}", e),
                    "CredentialNotFound", ErrorCategory.ObjectNotFound, name);
                return null;
            }

            if (secret is PSCredential credential)
            {
                return credential;
            }

            error = new ErrorRecord(new InvalidOperationException($"The secret '{name}' is a {secret?.GetType().Name ?? "nothing"}, not a PSCredential: store the user name with it (Set-Secret -Name {name} -Secret (Get-Credential))."),
                "CredentialWrongType", ErrorCategory.InvalidType, name);
            return null;
        }
    }
}
