BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Get-TestModulePath) -Force
    $script:Dir = New-TestFolder
    $script:Lab = Get-Lab
    $script:SavedEnv = $env:MAILOPS_CONFIG
    function Write-Config([string]$Name, [string]$Text) {
        $p = Join-Path $script:Dir $Name
        Set-Content -LiteralPath $p -Value $Text -NoNewline
        return $p
    }
}

AfterAll {
    $env:MAILOPS_CONFIG = $script:SavedEnv
    Remove-Item -Recurse -Force $script:Dir -ErrorAction SilentlyContinue
}

Describe 'New-MailOpsConfig' {
    It 'writes a starter file that Test-MailOpsConfig finds clean' {
        $p = Join-Path $script:Dir 'starter.yaml'
        $file = New-MailOpsConfig -Path $p -Domain example.org, example.net -PassThru
        $file | Should -BeOfType System.IO.FileInfo
        $file.FullName | Should -Be $p
        Test-MailOpsConfig -Path $p | Should -BeNullOrEmpty
        Test-MailOpsConfig -Path $p -Quiet | Should -BeTrue
        (Get-Content -Raw $p) | Should -Match '# MailOps configuration'
        (Get-MailOpsConfig -Path $p).Domains.Name | Should -Be @('example.org', 'example.net')
    }

    It 'never overwrites without -Force, with a stable ErrorId' {
        $p = Join-Path $script:Dir 'exists.yaml'
        Set-Content $p 'keep me'
        { New-MailOpsConfig -Path $p -ErrorAction Stop } | Should -Throw -ErrorId 'ConfigFileExists,MailOps.PowerShell.Commands.NewMailOpsConfigCommand'
        Get-Content $p | Should -Be 'keep me'
        New-MailOpsConfig -Path $p -Force
        Test-MailOpsConfig -Path $p -Quiet | Should -BeTrue
    }

    It 'writes nothing with -WhatIf' {
        $p = Join-Path $script:Dir 'whatif.yaml'
        New-MailOpsConfig -Path $p -WhatIf
        Test-Path $p | Should -BeFalse
    }

    It 'refuses a domain that is not a domain name' {
        { New-MailOpsConfig -Path (Join-Path $script:Dir 'x.yaml') -Domain 'not a domain' -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidDomainName,MailOps.PowerShell.Commands.NewMailOpsConfigCommand'
    }

    It 'goes to $env:MAILOPS_CONFIG when no -Path is given' {
        $p = Join-Path $script:Dir 'from-env.yaml'
        $env:MAILOPS_CONFIG = $p
        try { New-MailOpsConfig -Domain example.org } finally { $env:MAILOPS_CONFIG = $script:SavedEnv }
        Test-Path $p | Should -BeTrue
    }
}

Describe 'Test-MailOpsConfig' {
    It 'returns one issue object per problem with file, line, column and code' {
        $p = Write-Config 'bad.yaml' "version: 1`nrelays:`n  - name: primary`n    hots: smtp.example.org`n    port: 99999`n    role: primary`n"
        $issues = @(Test-MailOpsConfig -Path $p)
        $issues.Code | Should -Be @('MissingKey', 'UnknownKey', 'InvalidValue')
        $unknown = $issues | Where-Object Code -eq 'UnknownKey'
        $unknown.File | Should -Be $p
        $unknown.Line | Should -Be 4
        $unknown.Column | Should -Be 5
        $unknown.Message | Should -Match "Did you mean 'host'"
        $unknown.PSObject.TypeNames[0] | Should -Be 'MailOps.Core.Config.ConfigIssue'
        Test-MailOpsConfig -Path $p -Quiet | Should -BeFalse
    }

    It 'takes paths from the pipeline, as strings and as files' {
        $good = Write-Config 'good.yaml' "version: 1`nrelays:`n  - name: a`n    host: a.example.org`n    role: secondary`n"
        $bad = Write-Config 'bad2.yaml' "version: 1`nrelays: nope`n"
        ($good, $bad | Test-MailOpsConfig -Quiet) | Should -Be @($true, $false)
        (Get-Item $good, $bad | Test-MailOpsConfig -Quiet) | Should -Be @($true, $false)
        (Get-Item $bad | Test-MailOpsConfig).File | Should -Be $bad
    }

    It 'reports a missing file as an issue' {
        $issue = Test-MailOpsConfig -Path (Join-Path $script:Dir 'missing.yaml')
        $issue.Code | Should -Be 'FileNotFound'
    }

    It 'accepts the lab configuration' {
        Test-MailOpsConfig -Path $script:Lab.config | Should -BeNullOrEmpty
    }
}

Describe 'Get-MailOpsConfig' {
    It 'returns the configuration object of the lab' {
        $c = Get-MailOpsConfig -Path $script:Lab.config
        $c.PSObject.TypeNames[0] | Should -Be 'MailOps.Core.Config.MailOpsConfig'
        $c.Relays.Name | Should -Be @('primary', 'secondary', 'secondary-mx', 'throttled', 'bulk-down', 'openrelay')
        $c.Dns.Servers[0].Port | Should -Be $script:Lab.dns.port
        ($c | Out-String) | Should -Match 'secondary \(Secondary, 127\.0\.0\.1:'
    }

    It 'returns relays and flows by name, with wildcards' {
        $r = Get-MailOpsConfig -Path $script:Lab.config -Relay secondary
        $r.Role | Should -Be 'Secondary'
        $r.Port | Should -Be $script:Lab.smtp.secondary.submission
        (Get-MailOpsConfig -Path $script:Lab.config -Relay '*').Count | Should -Be 6
        (Get-MailOpsConfig -Path $script:Lab.config -Flow news*).Name | Should -Be 'newsletter'
    }

    It 'writes RelayNotFound for a name that matches nothing' {
        { Get-MailOpsConfig -Path $script:Lab.config -Relay nosuch -ErrorAction Stop } |
            Should -Throw -ErrorId 'RelayNotFound,MailOps.PowerShell.Commands.GetMailOpsConfigCommand'
    }

    It 'stops with an error record that names the file, line and column' {
        $p = Write-Config 'broken.yaml' "version: 1`nrelays:`n  - name: primary`n    host: smtp.example.org`n    role: primary`n    password: hunter2`n"
        $err = $null
        try { Get-MailOpsConfig -Path $p -ErrorAction Stop } catch { $err = $_ }
        $err | Should -Not -BeNullOrEmpty
        $err.FullyQualifiedErrorId | Should -Be 'ConfigSecretInConfig,MailOps.PowerShell.Commands.GetMailOpsConfigCommand'
        $err.CategoryInfo.Category | Should -Be 'SecurityError'
        $err.TargetObject | Should -Be $p
        $err.ErrorDetails.Message | Should -BeLike "${p}:6:5: error SecretInConfig: *"
        $err.ErrorDetails.Message | Should -Not -Match 'hunter2'
    }

    It 'writes every error, not only the first, when not stopping' {
        $p = Write-Config 'two-errors.yaml' "version: 1`nrelays:`n  - name: a`n    host: a.example.org`n    role: primery`n    colour: blue`n"
        $errs = $null
        Get-MailOpsConfig -Path $p -ErrorAction SilentlyContinue -ErrorVariable errs | Should -BeNullOrEmpty
        ($errs | ForEach-Object { $_.FullyQualifiedErrorId.Split(',')[0] }) | Should -Be @('ConfigInvalidValue', 'ConfigUnknownKey')
    }

    It 'reports a missing file as ObjectNotFound with advice' {
        $err = $null
        try { Get-MailOpsConfig -Path (Join-Path $script:Dir 'none.yaml') -ErrorAction Stop } catch { $err = $_ }
        $err.FullyQualifiedErrorId | Should -BeLike 'ConfigFileNotFound,*'
        $err.CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $err.ErrorDetails.RecommendedAction | Should -Match 'New-MailOpsConfig'
    }

    It 'writes warnings, not errors, for insecure but deliberate settings' {
        $p = Write-Config 'insecure.yaml' "version: 1`nrelays:`n  - name: a`n    host: a.example.org`n    role: secondary`n    skipCertificateCheck: true`n"
        $w = $null
        $c = Get-MailOpsConfig -Path $p -WarningVariable w -WarningAction SilentlyContinue
        $c | Should -Not -BeNullOrEmpty
        ($w -join ' ') | Should -Match 'InsecureSetting'
    }

    It 'finds the file through $env:MAILOPS_CONFIG' {
        $env:MAILOPS_CONFIG = $script:Lab.config
        try { (Get-MailOpsConfig).Path | Should -Be $script:Lab.config } finally { $env:MAILOPS_CONFIG = $script:SavedEnv }
    }

    It 'completes relay and flow names from the configuration' {
        $env:MAILOPS_CONFIG = $script:Lab.config
        try {
            $line = 'Get-MailOpsConfig -Relay s'
            (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Be @('secondary', 'secondary-mx')
            $line = 'Get-MailOpsConfig -Relay '
            (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Be @('bulk-down', 'openrelay', 'primary', 'secondary', 'secondary-mx', 'throttled')
            $line = "Get-MailOpsConfig -Path '$($script:Lab.config)' -Flow n"
            (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Be @('newsletter')
        }
        finally { $env:MAILOPS_CONFIG = $script:SavedEnv }
    }
}
