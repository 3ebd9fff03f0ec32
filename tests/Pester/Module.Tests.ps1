BeforeDiscovery {
    # the cmdlets whose help is checked, from the manifest: -ForEach is expanded at discovery, before BeforeAll
    # imports the module (Get-Command -Module MailOps there found nothing, so no help test ever ran)
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:CmdletNames = @((Import-PowerShellDataFile (Get-TestModulePath)).CmdletsToExport)
    if ($script:CmdletNames.Count -lt 20) { throw "The manifest lists only $($script:CmdletNames.Count) cmdlets: the help tests would not cover them." }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Get-TestModulePath) -Force
    $script:Commands = @(Get-Command -Module MailOps -CommandType Cmdlet)
    $script:Repo = $env:MAILOPS_REPO
}

Describe 'The built module' {
    It 'exports the cmdlets the manifest lists, and only those' {
        $manifest = Import-PowerShellDataFile (Get-TestModulePath)
        ($script:Commands.Name | Sort-Object) | Should -Be ($manifest.CmdletsToExport | Sort-Object)
        $script:Commands.Count | Should -BeGreaterOrEqual 4
    }

    It 'carries the version from Directory.Build.props (the one version source)' {
        $props = [xml](Get-Content -Raw (Join-Path $script:Repo 'Directory.Build.props'))
        $version = ($props.Project.PropertyGroup | Where-Object { $_['Version'] } | Select-Object -First 1)['Version'].InnerText
        (Get-Module MailOps).Version.ToString() | Should -Be $version
        (Get-MailOpsEnvironment).ModuleVersion | Should -Be $version
    }

    It 'uses approved verbs only' {
        $approved = (Get-Verb).Verb
        foreach ($c in $script:Commands) { $approved | Should -Contain $c.Verb -Because "$($c.Name) must use an approved verb" }
    }

    It '<_> has help with a synopsis, a description, examples and every parameter described' -ForEach $script:CmdletNames {
        $help = Get-Help $_ -Full
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Synopsis | Should -Not -Match ([regex]::Escape($_) + '\s*\[')   # not the auto-generated syntax stub
        ($help.description.Text -join ' ') | Should -Not -BeNullOrEmpty
        @($help.examples.example).Count | Should -BeGreaterOrEqual 2
        foreach ($p in (Get-Command $_).Parameters.Values | Where-Object { $_.Name -notin [System.Management.Automation.Cmdlet]::CommonParameters }) {
            $ph = $help.parameters.parameter | Where-Object name -eq $p.Name
            ($ph.description.Text -join ' ') | Should -Not -BeNullOrEmpty -Because "-$($p.Name) of $_ needs a description"
        }
    }

    It 'has an about_MailOps topic' {
        $about = Get-Help about_MailOps
        ($about | Out-String) | Should -Match 'Keeps an organisation''s email flowing'
        ($about | Out-String) | Should -Match 'SECONDARY\s+relay'
    }

    It 'has default views for its output types' {
        $view = Get-FormatData -TypeName 'MailOps.Core.Config.ConfigIssue'
        $view | Should -Not -BeNullOrEmpty
        # every MailOps type a cmdlet declares as its output
        $types = Get-Command -Module MailOps | ForEach-Object { $_.OutputType.Name } | Where-Object { $_ -like 'MailOps.*' } | Sort-Object -Unique
        $types.Count | Should -BeGreaterThan 10
        foreach ($t in $types) { Get-FormatData -TypeName $t | Should -Not -BeNullOrEmpty -Because "$t is a cmdlet's output type" }
        (Get-MailOpsEnvironment | Out-String) | Should -Match 'ConfigPath\s+: .+\((UserDefault|EnvironmentVariable)'
    }

    It 'runs its dependencies in its private load context, and they work' {
        $env = Get-MailOpsEnvironment
        $env.LoadContext | Should -Be 'MailOps'
        foreach ($d in Get-MailOpsEnvironment -Dependencies) {
            $d.Works | Should -BeTrue -Because "$($d.Name): $($d.Detail)"
            $d.LoadContext | Should -Be 'MailOps'
            $d.Location | Should -BeLike "$env:MAILOPS_MODULE*"
        }
    }

    It 'loads again in the same session with Import-Module -Force and still exports its cmdlets and their help' {
        $out = Invoke-FreshPwsh "Import-Module '$(Get-TestModulePath)'; Import-Module '$(Get-TestModulePath)' -Force; (Get-Command -Module MailOps).Count; (Get-MailOpsEnvironment).LoadContext; (Get-Help Get-Bounce).Synopsis; @((Get-Help Get-EmailFlowInventory -Full).examples.example).Count"
        [int]$out[0] | Should -Be $script:Commands.Count
        $out[1] | Should -Be 'MailOps'
        $out[2] | Should -Match '^Lists bounce events'
        [int]$out[3] | Should -BeGreaterOrEqual 2
    }
}

Describe 'The package' {
    It 'installs with Install-PSResource from a folder repository and imports' {
        $nupkg = $env:MAILOPS_NUPKG
        if (-not $nupkg) { Set-ItResult -Skipped -Because 'MAILOPS_NUPKG is not set (build.ps1 -Task Test sets it)'; return }
        $feed = Split-Path $nupkg
        $target = New-TestFolder
        $out = Invoke-FreshPwsh @"
`$repo = 'MailOpsTest' + [Guid]::NewGuid().ToString('N').Substring(0, 6)
Register-PSResourceRepository -Name `$repo -Uri '$feed' -Trusted
try { Save-PSResource -Name MailOps -Repository `$repo -Path '$target' -TrustRepository -SkipDependencyCheck } finally { Unregister-PSResourceRepository -Name `$repo }
Import-Module (Join-Path '$target' 'MailOps')
(Get-Command -Module MailOps).Count
(Get-Module MailOps).ModuleBase
"@
        [int]$out[0] | Should -Be $script:Commands.Count
        $out[1] | Should -BeLike "$target*"
        Remove-Item -Recurse -Force $target
    }
}
