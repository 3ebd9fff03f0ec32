# Real bounces made by the lab's Postfix: one message per cause through the primary (refused and silent hosts,
# the secondary's unknown-user, mailbox-full, spam and policy replies); their DSNs land in the sink Maildir.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Get-TestModulePath) -Force
    $script:Lab = Get-Lab
    $cases = [ordered]@{
        'refused'     = 'alice@refused.test'
        'timeout'     = 'alice@timeout.test'
        'stall'       = 'carol@stall.test'
        'userunknown' = 'nobody@remote.test'
        'mailboxfull' = 'full@remote.test'
        'spam'        = 'spam@remote.test'
        'policy'      = 'policy@remote.test'
    }
    $script:Cases = $cases
    $newDir = Join-Path $script:Lab.imap.maildir 'new'
    $before = @(Get-ChildItem $newDir -File -ErrorAction SilentlyContinue).Name
    foreach ($k in $cases.Keys) {
        $out = & swaks -s 127.0.0.1 -p $script:Lab.smtp.primary.port -f "mailops+bounce-$k@sink.test" -t $cases[$k] --h-Subject "bounce case $k" 2>&1
        if (-not ($out -match 'queued as|Recipient address rejected')) { throw "swaks could not send case $k`n$out" }
    }
    # wait for the DSNs (Postfix gives up at the first attempt in the lab; timeouts take about 5 s)
    $deadline = (Get-Date).AddSeconds(60)
    do {
        Start-Sleep -Milliseconds 500
        $script:Files = @(Get-ChildItem $newDir -File | Where-Object Name -notin $before | Where-Object { (Get-Content -Raw $_.FullName) -match 'mailops\+bounce-' -and (Get-Content -Raw $_.FullName) -match 'multipart/report' })
    } until ($script:Files.Count -ge $cases.Count -or (Get-Date) -gt $deadline)
    $script:Records = @($script:Files | ConvertFrom-BounceMessage)
}

Describe 'ConvertFrom-BounceMessage on real Postfix bounces from the lab' {
    It 'received one DSN per case' {
        $script:Files.Count | Should -BeGreaterOrEqual $script:Cases.Count
    }

    It '<rcpt> is classified with the expected reason, hard/soft and infrastructure flag' -ForEach @(
        @{ rcpt = 'alice@refused.test'; reason = 'networkerror', 'expired'; hard = $false; infra = $true }
        @{ rcpt = 'alice@timeout.test'; reason = 'networkerror', 'expired'; hard = $false; infra = $true }
        @{ rcpt = 'carol@stall.test'; reason = 'networkerror', 'expired'; hard = $false; infra = $true }
        @{ rcpt = 'nobody@remote.test'; reason = @('userunknown'); hard = $true; infra = $false }
        @{ rcpt = 'full@remote.test'; reason = @('mailboxfull'); hard = $false; infra = $false }
        @{ rcpt = 'spam@remote.test'; reason = @('spamdetected'); hard = $false; infra = $false }
        @{ rcpt = 'policy@remote.test'; reason = @('policyviolation'); hard = $false; infra = $false }
    ) {
        $r = @($script:Records | Where-Object Recipient -eq $rcpt)
        $r.Count | Should -Be 1 -Because "one DSN for $rcpt"
        $r[0].Kind | Should -Be 'Dsn'
        $r[0].Reason | Should -BeIn $reason
        $r[0].IsHard | Should -Be $hard
        $r[0].IsInfrastructureFailure | Should -Be $infra
        $r[0].Action | Should -Be 'failed'
        $r[0].StatusCode | Should -Match '^[45]\.\d\.\d$'
        $r[0].OriginalSender | Should -Match '^mailops\+bounce-'
    }

    It 'keeps the server''s codes and text for a rejection by the remote host' {
        $r = $script:Records | Where-Object Recipient -eq 'nobody@remote.test'
        $r.StatusCode | Should -Be '5.1.1'
        $r.ReplyCode | Should -Be 550
        $r.Diagnostic | Should -Match 'User unknown in virtual mailbox table'
        $r.RemoteHost | Should -Not -BeNullOrEmpty
    }

    It 'takes files from Get-ChildItem by property name' {
        @($script:Files | Get-Item | ConvertFrom-BounceMessage).Count | Should -Be $script:Records.Count
    }

    It 'classifies a single diagnostic line, and CSV rows by property name' {
        $line = ConvertFrom-BounceMessage -Recipient bob@example.org -DiagnosticText 'host mx.example.org[192.0.2.1] said: 552 5.2.2 <bob@example.org>: Mailbox full'
        $line.Reason | Should -Be 'mailboxfull'
        $line.Kind | Should -Be 'DiagnosticLine'
        $rows = @([pscustomobject]@{ email = 'a@example.org'; reason = '550 5.1.1 unknown user'; status = '5.1.1' }) | ConvertFrom-BounceMessage
        $rows.Recipient | Should -Be 'a@example.org'
        $rows.Reason | Should -Be 'userunknown'
    }

    It 'writes NotABounce for an ordinary mail' {
        $plain = Join-Path ([IO.Path]::GetTempPath()) "mailops-plain-$([Guid]::NewGuid().ToString('N')).eml"
        "From: alice@example.org`r`nTo: bob@example.org`r`nSubject: lunch?`r`n`r`nShall we?`r`n" | Set-Content -LiteralPath $plain -NoNewline
        try {
            { ConvertFrom-BounceMessage -Path $plain -ErrorAction Stop } | Should -Throw -ErrorId 'NotABounce,MailOps.PowerShell.Commands.ConvertFromBounceMessageCommand'
        }
        finally { Remove-Item $plain }
    }

    It 'shows recipient, reason and flags in its default table' {
        ($script:Records | Out-String) | Should -Match 'Recipient\s+Reason\s+Hard\s+Infra'
    }
}
