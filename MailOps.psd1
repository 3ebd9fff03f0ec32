# Module manifest for MailOps.
# ModuleVersion is stamped by build.ps1 from <Version> in Directory.Build.props (the one version source);
# the value below is a placeholder and is never published.
@{
    RootModule           = 'MailOps.psm1'
    ModuleVersion        = '0.0.0'
    GUID                 = '6f0c5d3e-8a51-4c3e-9b8e-2f7d1a9c4e51'
    Author               = 'MailOps contributors'
    CompanyName          = 'MailOps'
    Copyright            = '(c) MailOps contributors. MIT License.'
    Description          = 'Keeps an organisation''s email flowing when its providers fail: relay health checks, bulk mail through a secondary relay, bounce classification and outage-safe hard-bounce resets, traffic alerts and an inventory of every email flow.'
    PowerShellVersion    = '5.1'
    CompatiblePSEditions = @('Core', 'Desktop')
    FormatsToProcess     = @('MailOps.Format.ps1xml')
    FunctionsToExport    = @()
    CmdletsToExport      = @(
        'Get-MailOpsConfig'
        'Test-MailOpsConfig'
        'New-MailOpsConfig'
        'Get-MailOpsEnvironment'
        'Test-MailRelay'
        'Test-SpfRecord'
        'ConvertFrom-BounceMessage'
        'Import-Bounce'
        'Resolve-MailProvider'
        'Reset-HardBounce'
        'Get-HardBounceReset'
        'Undo-HardBounceReset'
        'Send-ViaSecondaryRelay'
        'Resume-MailOpsSendJob'
        'Get-MailOpsSendJob'
        'Get-Bounce'
        'Export-Bounce'
        'Get-MailTrafficReport'
        'Test-MailTraffic'
        'Watch-MailTraffic'
        'Get-DmarcReport'
        'Get-EmailFlowInventory'
        'Export-EmailFlowInventory'
        'Export-MailRoutingPolicy'
        'Test-MailRouting'
    )
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags         = @('Email', 'SMTP', 'Postfix', 'Bounce', 'DMARC', 'SPF', 'Relay', 'Linux', 'Windows', 'PSEdition_Core', 'PSEdition_Desktop')
            LicenseUri   = 'https://opensource.org/licenses/MIT'
            ReleaseNotes = 'See CHANGELOG.md.'
        }
    }
}
