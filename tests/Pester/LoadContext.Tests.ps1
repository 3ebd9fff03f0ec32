# MailOps must coexist with another module that loaded a different MimeKit, whichever comes first.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Module = Get-TestModulePath
    $packages = $env:MAILOPS_NUGET_PACKAGES
    $script:OtherMimeKit = Join-Path $packages 'mimekit/4.18.0/lib/net8.0/MimeKit.dll'
    $script:OtherBouncy = Join-Path $packages 'bouncycastle.cryptography/2.7.0/lib/net6.0/BouncyCastle.Cryptography.dll'
    # What the "other module" does with its MimeKit, as a script fragment: parse a message and read its subject.
    $script:UseOther = @'
$bytes = [System.Text.Encoding]::ASCII.GetBytes("Subject: =?utf-8?q?other_module?=`r`n`r`nbody`r`n")
$msg = [MimeKit.MimeMessage]::Load([System.IO.MemoryStream]::new($bytes))
"OTHER " + $msg.Subject + " " + [System.IO.Path]::GetFileName([System.IO.Path]::GetDirectoryName([System.IO.Path]::GetDirectoryName([System.IO.Path]::GetDirectoryName([MimeKit.MimeMessage].Assembly.Location))))
'@
    $script:UseMailOps = @'
$m = Get-MailOpsEnvironment -Dependencies | Where-Object Name -eq 'MimeKit'
"MAILOPS " + $m.Works + " " + $m.LoadContext + " " + ($m.Location -like ($env:MAILOPS_MODULE + '*'))
'@
}

Describe 'Dependency isolation (fresh pwsh each time)' {
    BeforeAll {
        if (-not (Test-Path $script:OtherMimeKit)) { throw "The older MimeKit is missing at $script:OtherMimeKit (build.ps1 restores tests/tools/TestDependencies.csproj)." }
    }

    It 'works when another MimeKit (4.18.0) was loaded first' {
        $out = Invoke-FreshPwsh @"
Add-Type -Path '$script:OtherBouncy'
Add-Type -Path '$script:OtherMimeKit'
$script:UseOther
Import-Module '$script:Module'
$script:UseMailOps
$script:UseOther
"@
        $out | Should -Contain 'OTHER other module 4.18.0'
        $out | Should -Contain 'MAILOPS True MailOps True'
        ($out | Where-Object { $_ -eq 'OTHER other module 4.18.0' }).Count | Should -Be 2 -Because 'the other module still uses its own MimeKit after MailOps loaded'
    }

    It 'works when MailOps was imported first and another MimeKit comes later' {
        $out = Invoke-FreshPwsh @"
Import-Module '$script:Module'
$script:UseMailOps
Add-Type -Path '$script:OtherBouncy'
Add-Type -Path '$script:OtherMimeKit'
$script:UseOther
$script:UseMailOps
"@
        $out | Should -Contain 'OTHER other module 4.18.0'
        ($out | Where-Object { $_ -eq 'MAILOPS True MailOps True' }).Count | Should -Be 2
    }

    It 'keeps MailOps'' dependencies out of the default load context' {
        $out = Invoke-FreshPwsh @"
Import-Module '$script:Module'
Get-MailOpsEnvironment | Out-Null
[System.Runtime.Loader.AssemblyLoadContext]::Default.Assemblies | Where-Object { `$_.GetName().Name -in 'MimeKit','MailKit','DnsClient','YamlDotNet','OxyPlot','MailOps.Core','MailOps.PowerShell' } | ForEach-Object { 'LEAK ' + `$_.GetName().Name }
'DONE'
"@
        $out | Where-Object { $_ -like 'LEAK *' } | Should -BeNullOrEmpty
        $out | Should -Contain 'DONE'
    }
}
