# Test-SpfRecord against the lab's nsd zones (the RFC 7208 suite itself runs in xunit on a fake resolver).
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Get-TestModulePath) -Force
    $script:Lab = Get-Lab
    $script:SavedEnv = $env:MAILOPS_CONFIG
    $env:MAILOPS_CONFIG = $script:Lab.config
}
AfterAll { $env:MAILOPS_CONFIG = $script:SavedEnv }

Describe 'Test-SpfRecord' {
    It 'passes the relay address through the ip4 mechanism' {
        $r = Test-SpfRecord -Domain lab.test -IPAddress 127.0.0.1
        $r.PSObject.TypeNames[0] | Should -Be 'MailOps.Core.Spf.SpfCheck'
        $r.Result | Should -Be 'Pass'
        $r.Mechanism | Should -Be 'ip4:127.0.0.1'
        $r.Record | Should -Match '^v=spf1 ip4:127\.0\.0\.1 include:_spf\.lab\.test -all$'
        $r.DnsLookups | Should -Be 0
    }

    It 'passes through the include, and the trace shows the nested record' {
        $r = Test-SpfRecord -Domain lab.test -IPAddress 127.0.0.2
        $r.Result | Should -Be 'Pass'
        $r.Mechanism | Should -Be 'include:_spf.lab.test'
        $r.DnsLookups | Should -Be 1
        ($r.Trace | Where-Object { $_.Depth -eq 1 -and $_.Term -eq 'ip4:127.0.0.2' }).Outcome | Should -Be 'match'
    }

    It 'fails an address the policy does not list' {
        (Test-SpfRecord -Domain lab.test -IPAddress 192.0.2.99).Result | Should -Be 'Fail'
    }

    It 'gives None for a domain without a policy, and takes addresses from the pipeline' {
        $r = '127.0.0.1', '192.0.2.1' | Test-SpfRecord -Domain boulangerie-martin.test
        $r.Result | Should -Be @('None', 'None')
        $r.IPAddress | Should -Be @('127.0.0.1', '192.0.2.1')
    }

    It 'gives TempError, never None or Fail, when DNS does not answer' {
        $dead = Join-Path ([IO.Path]::GetTempPath()) "mailops-deaddns-$([Guid]::NewGuid().ToString('N')).yaml"
        $l = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0); $l.Start(); $port = $l.LocalEndpoint.Port; $l.Stop()
        "version: 1`ndns:`n  servers: ['127.0.0.1:$port']`n  timeoutSeconds: 1`n  retries: 0`n" | Set-Content $dead
        try { (Test-SpfRecord -Domain lab.test -IPAddress 127.0.0.1 -ConfigPath $dead).Result | Should -Be 'TempError' }
        finally { Remove-Item $dead }
    }

    It 'refuses an injected sender' {
        { Test-SpfRecord -Domain lab.test -IPAddress 127.0.0.1 -Sender "a@lab.test`r`nX: y" -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidAddress,MailOps.PowerShell.Commands.TestSpfRecordCommand'
    }
}
