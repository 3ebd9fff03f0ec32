# Test-MailRelay against the lab's real Postfix instances. (Faults no real server produces on demand, garbage bytes
# and a connection cut mid-reply, are in tests/MailOps.Core.Tests/Relay/RelayProbeFaultTests.cs on a scripted mock.)
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Get-TestModulePath) -Force
    $script:Lab = Get-Lab
    $script:SavedEnv = $env:MAILOPS_CONFIG
    $env:MAILOPS_CONFIG = $script:Lab.config
    $script:Cred = [pscredential]::new($script:Lab.sasl.user, (ConvertTo-SecureString $script:Lab.sasl.password -AsPlainText -Force))
    $script:Ca = $script:Lab.tls.ca
    function Get-Finding($Result, [string]$Code) { @($Result.Findings | Where-Object Code -eq $Code) }
}

AfterAll {
    $env:MAILOPS_CONFIG = $script:SavedEnv
    Remove-Item Function:\Get-Secret -ErrorAction SilentlyContinue
}

Describe 'Test-MailRelay on healthy lab relays' {
    BeforeAll {
        $script:Primary = Test-MailRelay -Relay primary -Credential $script:Cred -From 'news@lab.test' -To 'alice@sink.test', 'bob@sink.test'
    }

    It 'reports the primary Healthy with no warning' {
        $r = $script:Primary
        $r.PSObject.TypeNames[0] | Should -Be 'MailOps.Core.Relay.RelayCheckResult'
        $r.Status | Should -Be 'Healthy' -Because ($r.Findings | Out-String)
        $r.Relay | Should -Be 'primary'
        $r.Findings | Where-Object Severity -ne 'Info' | Should -BeNullOrEmpty
        $r.CompletedStage | Should -Be 'Rcpt'
    }

    It 'records banner, EHLO capabilities after STARTTLS, and per-stage timings' {
        $r = $script:Primary
        $r.Banner | Should -Match '^220 mx1\.lab\.test ESMTP'
        $r.Capabilities.MaxSize | Should -Be 10485760
        $r.Capabilities.Pipelining | Should -BeTrue
        $r.Capabilities.EightBitMime | Should -BeTrue
        $r.Capabilities.AuthMechanisms | Should -Contain 'PLAIN'
        foreach ($t in 'ConnectMs', 'BannerMs', 'EhloMs', 'TlsMs', 'AuthMs', 'MailMs') { $r.Timings.$t | Should -BeGreaterThan 0 -Because $t }
        $r.Timings.RcptMs.Count | Should -Be 2
        $r.Timings.TotalMs | Should -BeGreaterOrEqual $r.Timings.ConnectMs
    }

    It 'validates the certificate against the CA file named in the configuration' {
        $t = $script:Primary.Tls
        $t.Protocol | Should -Match '^Tls1[23]$'
        $t.CipherSuite | Should -Match '^TLS_'
        $t.ChainValid | Should -BeTrue
        $t.HostNameMatches | Should -BeTrue
        $t.Names | Should -Contain '127.0.0.1'
        $t.Subject | Should -Be 'CN=mx1.lab.test'
        $t.DaysUntilExpiry | Should -BeGreaterThan 21
        $t.ValidatedWith | Should -Match 'CA'
    }

    It 'authenticates, and the relay is not open, seen as an outside client through XCLIENT' {
        $script:Primary.Auth.Succeeded | Should -BeTrue
        $script:Primary.Auth.Reply | Should -Match '^235 2\.7\.0'
        $script:Primary.OpenRelay.IsOpen | Should -BeFalse
        $script:Primary.OpenRelay.ClientAddress | Should -Be '198.51.100.7'
        $script:Primary.OpenRelay.Reply | Should -Match 'Relay access denied'
    }

    It 'checks PTR with forward confirmation, SPF of the sender domain and DNSBL' {
        $d = $script:Primary.Dns
        $d.Address | Should -Be '127.0.0.1'
        $d.PtrNames | Should -Be @('mx1.lab.test')
        $d.ForwardConfirmed | Should -BeTrue
        $d.SpfDomain | Should -Be 'lab.test'
        $d.Spf.Result | Should -Be 'Pass'
        $d.Dnsbl.Zone | Should -Be @('bl-clean.test')
        $d.Dnsbl[0].Listed | Should -BeFalse
    }

    It 'reports each recipient''s outcome with code and enhanced status code' {
        # the secondary's SMTP port is the receiving host of remote.test (its submission port skips recipient checks)
        $r = Test-MailRelay -Server "127.0.0.1:$($script:Lab.smtp.secondary.port)" -Security StartTls -TrustedCaFile $script:Ca -From 'news@lab.test' -To 'alice@remote.test', 'nobody@remote.test', 'full@remote.test' -SkipOpenRelayCheck -SkipDnsCheck
        $r.Recipients.Outcome | Should -Be @('Accepted', 'PermanentFailure', 'PermanentFailure')
        $r.Recipients[1].Code | Should -Be 550
        $r.Recipients[1].EnhancedStatusCode | Should -Be '5.1.1'
        $r.Recipients[2].EnhancedStatusCode | Should -Be '5.2.2'
        $r.Status | Should -Be 'Degraded'
        Get-Finding $r 'RecipientRejected' | Should -HaveCount 2
    }

    It 'sends a test message only with -SendTestMessage, and it arrives with its Message-Id' {
        $r = Test-MailRelay -Relay primary -Credential $script:Cred -From 'news@lab.test' -To 'relaytest@sink.test' -SendTestMessage -SkipOpenRelayCheck -SkipDnsCheck
        $r.CompletedStage | Should -Be 'Data'
        $r.TestMessageId | Should -Match '^<[0-9a-f]{32}@client\.lab\.test>$'
        $r.QueueId | Should -Not -BeNullOrEmpty
        $deadline = (Get-Date).AddSeconds(15)
        $found = $null
        while (-not $found -and (Get-Date) -lt $deadline) {
            $found = Get-ChildItem "$($script:Lab.imap.maildir)/new" -File -ErrorAction SilentlyContinue | Where-Object { (Get-Content -Raw $_.FullName) -match [regex]::Escape($r.TestMessageId) }
            if (-not $found) { Start-Sleep -Milliseconds 200 }
        }
        $found | Should -Not -BeNullOrEmpty
        (Get-Content -Raw $found[0].FullName) | Should -Match 'X-MailOps-Test: relay=primary'
    }

    It 'does not send anything when DATA is the last stage without -SendTestMessage' {
        $r = Test-MailRelay -Relay primary -Credential $script:Cred -From 'news@lab.test' -To 'nodata@sink.test' -StopAfter Data -SkipOpenRelayCheck -SkipDnsCheck
        $r.CompletedStage | Should -Be 'Data'
        Get-Finding $r 'DataNotSent' | Should -HaveCount 1
        $r.TestMessageId | Should -BeNullOrEmpty
    }

    It 'stops after the stage named by -StopAfter' {
        $r = Test-MailRelay -Relay primary -StopAfter Ehlo -SkipOpenRelayCheck -SkipDnsCheck
        $r.CompletedStage | Should -Be 'Ehlo'
        $r.Tls | Should -BeNullOrEmpty
        $r.Capabilities.StartTls | Should -BeTrue
        $r.Capabilities.AuthMechanisms | Should -BeNullOrEmpty   # no AUTH before STARTTLS on the lab's submission port
    }

    It '-Quiet returns one boolean for scheduled tasks' {
        Test-MailRelay -Relay primary -Credential $script:Cred -Quiet | Should -BeExactly $true
        Test-MailRelay -Relay openrelay -Quiet | Should -BeExactly $false
    }

    It 'checks every configured relay with -All, in parallel, in the order of the configuration' {
        $all = Test-MailRelay -All -Credential $script:Cred -SkipDnsCheck
        $all.Relay | Should -Be @('primary', 'secondary', 'secondary-mx', 'throttled', 'bulk-down', 'openrelay')
    }

    It 'shows the conversation with -Verbose, never the password' {
        $verbose = Test-MailRelay -Relay primary -Credential $script:Cred -SkipOpenRelayCheck -SkipDnsCheck -Verbose 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] } | ForEach-Object Message
        ($verbose -join "`n") | Should -Match 'C: EHLO client\.lab\.test'
        ($verbose -join "`n") | Should -Match 'C: AUTH PLAIN <redacted>'
        $secretB64 = [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes("`0relay`0relaypass"))
        ($verbose -join "`n") | Should -Not -Match 'relaypass'
        ($verbose -join "`n") | Should -Not -Match ([regex]::Escape($secretB64))
    }

    It 'never puts the password in its output' {
        $r = Test-MailRelay -Relay primary -Credential $script:Cred -SkipDnsCheck
        ($r | ConvertTo-Json -Depth 8) | Should -Not -Match 'relaypass'
    }
}

Describe 'Test-MailRelay findings on misconfigured relays' {
    It 'finds the open relay (Critical, Failed)' {
        $r = Test-MailRelay -Relay openrelay -SkipDnsCheck
        $r.Status | Should -Be 'Failed'
        $f = Get-Finding $r 'OpenRelay'
        $f.Severity | Should -Be 'Critical'
        $r.OpenRelay.IsOpen | Should -BeTrue
        $r.OpenRelay.Reply | Should -Match '^250'
    }

    It 'reports a wrong password with the server''s exact reply' {
        $bad = [pscredential]::new('relay', (ConvertTo-SecureString 'wrong-password' -AsPlainText -Force))
        $r = Test-MailRelay -Relay primary -Credential $bad -SkipOpenRelayCheck -SkipDnsCheck
        $r.Status | Should -Be 'Failed'
        $r.FailedStage | Should -Be 'Auth'
        $r.Auth.Succeeded | Should -BeFalse
        $r.Auth.Reply | Should -Match '^535 5\.7\.8'
        (Get-Finding $r 'AuthFailed').Message | Should -Match "as 'relay' was answered '535 5\.7\.8"
        ($r | ConvertTo-Json -Depth 8) | Should -Not -Match 'wrong-password'
    }

    It 'flags a relay that offers AUTH before STARTTLS' {
        $r = Test-MailRelay -Server "127.0.0.1:$($script:Lab.smtp.authBeforeTls)" -Security StartTls -TrustedCaFile $script:Ca -StopAfter Tls -SkipOpenRelayCheck -SkipDnsCheck
        (Get-Finding $r 'AuthOfferedBeforeTls').Severity | Should -Be 'Warning'
        $r.Status | Should -Be 'Degraded'
    }

    It 'lists the relay address on a DNSBL zone that lists it' {
        $r = Test-MailRelay -Relay primary -StopAfter Ehlo -SkipOpenRelayCheck -DnsblZone 'bl-listed.test', 'bl-clean.test'
        ($r.Dns.Dnsbl | Where-Object Zone -eq 'bl-listed.test').Listed | Should -BeTrue
        ($r.Dns.Dnsbl | Where-Object Zone -eq 'bl-listed.test').Text | Should -Match 'Listed in the MailOps lab DNSBL'
        ($r.Dns.Dnsbl | Where-Object Zone -eq 'bl-clean.test').Listed | Should -BeFalse
        (Get-Finding $r 'DnsblListed').Severity | Should -Be 'Error'
    }

    It 'reports an SPF policy that does not authorise the relay' {
        $r = Test-MailRelay -Relay primary -StopAfter Ehlo -SkipOpenRelayCheck -From 'someone@startup-google.test'
        $r.Dns.Spf.Result | Should -BeIn @('None', 'Fail', 'SoftFail', 'Neutral')
        $r.Status | Should -Be 'Degraded'
    }
}

Describe 'Test-MailRelay faults on real servers: each ends within the timeout as Failed, naming the stage' {
    It '<name>' -ForEach @(
        @{ name = 'a server that never sends its banner'; port = 'neverGreets'; stage = 'Connect'; code = 'Timeout' }
        @{ name = 'a server that stalls after EHLO'; port = 'neverAnswersEhlo'; stage = 'Ehlo'; code = 'Timeout' }
        @{ name = 'a refused port'; port = 'refused'; stage = 'Connect'; code = 'ConnectionRefused' }
        @{ name = 'a TLS handshake that fails'; port = 'tlsBroken'; stage = 'Tls'; code = 'TlsHandshakeFailed' }
        @{ name = 'an expired certificate'; port = 'tlsExpired'; stage = 'Tls'; code = 'CertificateExpired' }
        @{ name = 'a certificate for another name'; port = 'tlsNameMismatch'; stage = 'Tls'; code = 'CertificateNameMismatch' }
    ) {
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $r = Test-MailRelay -Server "127.0.0.1:$($script:Lab.smtp.$port)" -Security StartTls -TrustedCaFile $script:Ca -TimeoutSeconds 2 -SkipOpenRelayCheck -SkipDnsCheck
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 6
        $r.Status | Should -Be 'Failed'
        $r.FailedStage | Should -Be $stage
        Get-Finding $r $code | Should -Not -BeNullOrEmpty -Because ($r.Findings | Out-String)
    }

    It 'an unknown host name (NXDOMAIN in the lab DNS)' {
        $r = Test-MailRelay -Server 'nohost.lab.test' -TimeoutSeconds 2 -SkipOpenRelayCheck
        $r.Status | Should -Be 'Failed'
        (Get-Finding $r 'HostNotFound').Message | Should -Match 'NXDOMAIN'
    }

    It 'warns 21 days before a certificate expires' {
        $r = Test-MailRelay -Server "127.0.0.1:$($script:Lab.smtp.tlsExpiresSoon)" -Security StartTls -TrustedCaFile $script:Ca -StopAfter Tls -SkipOpenRelayCheck -SkipDnsCheck
        $r.Status | Should -Be 'Degraded'
        $r.Tls.DaysUntilExpiry | Should -BeIn 9, 10
        (Get-Finding $r 'CertificateExpiresSoon').Severity | Should -Be 'Warning'
    }

    It 'continues past an expired certificate only with -SkipCertificateCheck, and says so' {
        $r = Test-MailRelay -Server "127.0.0.1:$($script:Lab.smtp.tlsExpired)" -Security StartTls -SkipCertificateCheck -StopAfter Tls -SkipOpenRelayCheck -SkipDnsCheck
        $r.FailedStage | Should -BeNullOrEmpty
        $r.Status | Should -Be 'Degraded'
        (Get-Finding $r 'CertificateExpired').Severity | Should -Be 'Warning'
        Get-Finding $r 'CertificateCheckSkipped' | Should -HaveCount 1
    }

    It 'refuses an untrusted certificate by default' {
        $r = Test-MailRelay -Server "127.0.0.1:$($script:Lab.smtp.primary.submission)" -Security StartTls -StopAfter Tls -SkipOpenRelayCheck -SkipDnsCheck
        $r.Status | Should -Be 'Failed'
        Get-Finding $r 'CertificateUntrusted' | Should -HaveCount 1
    }
}

Describe 'Test-MailRelay input' {
    It 'takes servers from the pipeline by value, several at once' {
        $r = "127.0.0.1:$($script:Lab.smtp.primary.port)", "127.0.0.1:$($script:Lab.smtp.secondary.port)" | Test-MailRelay -StopAfter Ehlo -SkipOpenRelayCheck -SkipDnsCheck
        $r.Port | Should -Be @($script:Lab.smtp.primary.port, $script:Lab.smtp.secondary.port)
        $r.Status | Should -Be @('Healthy', 'Healthy')
    }

    It 'takes Host and Port by property name, for example from Get-MailOpsConfig -Relay' {
        $r = [pscustomobject]@{ Host = '127.0.0.1'; Port = $script:Lab.smtp.secondary.port } | Test-MailRelay -StopAfter Ehlo -SkipOpenRelayCheck -SkipDnsCheck
        $r.Port | Should -Be $script:Lab.smtp.secondary.port
        $c = Get-MailOpsConfig -Relay secondary | Test-MailRelay -StopAfter Ehlo -SkipOpenRelayCheck -SkipDnsCheck
        $c.Port | Should -Be $script:Lab.smtp.secondary.submission
        $c.Security | Should -Be 'StartTls'
    }

    It 'refuses header and command injection in -From and -To' {
        { Test-MailRelay -Relay primary -From "a@lab.test`r`nRCPT TO:<x@example.com>" -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidAddress,MailOps.PowerShell.Commands.TestMailRelayCommand'
        { Test-MailRelay -Relay primary -To 'Bob <bob@lab.test>' -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidAddress,MailOps.PowerShell.Commands.TestMailRelayCommand'
    }

    It 'writes RelayNotFound for an unknown relay name' {
        { Test-MailRelay -Relay nosuch -ErrorAction Stop } | Should -Throw -ErrorId 'RelayNotFound,MailOps.PowerShell.Commands.TestMailRelayCommand'
    }

    It 'completes relay names' {
        $line = 'Test-MailRelay -Relay op'
        (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Be @('openrelay')
    }

    It 'says which credential is missing when neither -Credential nor SecretManagement gives it' {
        $errs = $null
        $r = Test-MailRelay -Relay primary -SkipOpenRelayCheck -SkipDnsCheck -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'CredentialNotAvailable,*'
        $errs[0].TargetObject | Should -Be 'lab-relay'
        $r.Auth | Should -BeNullOrEmpty
    }

    It 'reads the credential the relay names through Get-Secret (stand-in SecretManagement function)' {
        $script:SecretCalls = @()
        function global:Get-Secret { param([string]$Name, [string]$Vault) $script:SecretCalls += $Name; if ($Name -eq 'lab-relay') { [pscredential]::new('relay', (ConvertTo-SecureString 'relaypass' -AsPlainText -Force)) } else { throw "no secret $Name" } }
        try {
            $r = Test-MailRelay -Relay primary -SkipOpenRelayCheck -SkipDnsCheck
        }
        finally { Remove-Item Function:\Get-Secret }
        $script:SecretCalls | Should -Be @('lab-relay')
        $r.Auth.Succeeded | Should -BeTrue
    }

    It 'shows relay, status, TLS, auth, open relay, SPF, DNSBL and time in its default table' {
        $text = Test-MailRelay -Relay primary -Credential $script:Cred -From news@lab.test | Out-String
        $text | Should -Match 'Relay\s+Status\s+TLS\s+Auth\s+OpenRelay\s+SPF\s+DNSBL\s+TotalMs'
        $text | Should -Match 'primary\s+Healthy\s+Tls1[23]\s+OK\s+No\s+Pass\s+Clean'
    }
}
