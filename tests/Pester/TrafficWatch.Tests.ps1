# The bulk-mail drill against the lab (issue 7): a normal stretch of person-to-person mail through the primary
# Postfix, then a bulk mailing through it; Test-MailTraffic reads the primary's real log, raises the volume alert
# before the configured provider cap is reached, names the flow responsible, and delivers the alert through the
# secondary relay (to the sink Maildir) and to the lab's webhook receiver (a real HTTP server); when the rest of the
# mailing goes through the secondary relay, the primary's figures return to normal and the alert resolves.
# Also: Watch-MailTraffic following the live log, -ExitCode in a fresh process, -Quiet, -WhatIf, bad input.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Get-TestModulePath) -Force
    $script:Lab = Get-Lab
    $script:Dir = New-TestFolder
    $script:Config = Join-Path $script:Dir 'mailops.yaml'
    $script:Cap = 40
    # the lab's configuration with a store of its own and the drill's provider cap: 40 recipients a minute through the
    # primary, a warning from half of it
    $rules = @"
thresholds:
  - name: primary-provider-cap
    scope: relay
    match: primary
    metric: recipients
    per: minute
    limit: $($script:Cap)
    warnAt: 0.5
  - name: staff-bounces
    scope: flow
    match: staff
    metric: bounceRate
    per: hour
    limit: 0.5
    minVolume: 1000
"@
    ((Get-Content -Raw $script:Lab.config) -replace '(?m)^  path: .*$', "  path: '$($script:Dir)/traffic.db'") + "`n" + $rules | Set-Content $script:Config
    $script:Saved = $env:MAILOPS_CONFIG
    $env:MAILOPS_CONFIG = $script:Config
    $script:Cred = [pscredential]::new($script:Lab.sasl.user, (ConvertTo-SecureString $script:Lab.sasl.password -AsPlainText -Force))
    $script:PrimaryLog = $script:Lab.smtp.primary.log
    $script:Hooks = $script:Lab.webhook.received

    function Get-Hooks { if (Test-Path $script:Hooks) { @(Get-Content $script:Hooks | ForEach-Object { $_ | ConvertFrom-Json }) } else { @() } }
    function Wait-Received([string]$Log, [string]$Relay, [DateTimeOffset]$Since, [int]$Count) {
        # until the relay's log shows $Count messages received since $Since (the queue manager has read them)
        $deadline = (Get-Date).AddSeconds(60)
        do {
            $t = Get-MailTrafficReport -Path $Log -Relay $Relay -Since $Since -Totals
            if ($t.Senders -gt 0 -and ($t.MessagesBySender.Values | Measure-Object -Sum).Sum -ge $Count) { return $t }
            Start-Sleep -Milliseconds 300
        } while ((Get-Date) -lt $deadline)
        throw "the $Relay log did not show $Count messages received since $Since"
    }
    function Get-AlertMail([int]$Count) {
        $deadline = (Get-Date).AddSeconds(60)
        do {
            $found = @(Get-ChildItem "$($script:Lab.imap.maildir)/new", "$($script:Lab.imap.maildir)/cur" -File -ErrorAction SilentlyContinue |
                    Where-Object { $_.LastWriteTime -ge $script:DrillStart.LocalDateTime.AddSeconds(-1) -and [IO.File]::ReadAllText($_.FullName) -match '(?m)^Subject: \[MailOps\]' })
            if ($found.Count -ge $Count) { return $found }
            Start-Sleep -Milliseconds 300
        } while ((Get-Date) -lt $deadline)
        return $found
    }
    function Send-Staff([int]$Count) {
        # person-to-person mail, as a mail client sends it (swaks: SMTP submission, STARTTLS, AUTH)
        1..$Count | ForEach-Object {
            $out = & swaks --server 127.0.0.1 --port $script:Lab.smtp.primary.submission --tls --auth-user $script:Lab.sasl.user --auth-password $script:Lab.sasl.password `
                --from "alice@lab.test" --to "colleague$_@discard.test" --header "Subject: lunch $_" --body 'See you at noon.' --silent 2 2>&1
            if ($LASTEXITCODE -ne 0) { throw "swaks failed: $out" }
        }
    }
    function Send-Bulk([string]$Relay, [string]$Job, [int]$From, [int]$To) {
        $rcpts = $From..$To | ForEach-Object { [pscustomobject]@{ Email = "reader$_@discard.test"; Name = "Reader $_" } }
        $extra = if ($Relay -eq 'primary') { @{ Relay = 'primary'; AllowPrimary = $true } } else { @{ Relay = $Relay } }
        $rcpts | Send-ViaSecondaryRelay -From news@lab.test -Subject 'Autumn news for {{Name}}' -TextBody 'Hello {{Name}}' -Credential $script:Cred -JobName $Job @extra -WarningAction SilentlyContinue
    }

    # the primary's log is shared with the other test files: start once its last traffic is out of the rule's window
    # (which counts whole minutes: from the start of the minute it begins in)
    $lastTime = (Get-MailTrafficReport -Path $script:PrimaryLog -Relay primary -Since (Get-Date).AddMinutes(-3) -Totals).Last
    if ($lastTime) {
        $quietAt = [DateTimeOffset]::FromUnixTimeSeconds([Math]::Floor($lastTime.ToUnixTimeSeconds() / 60) * 60 + 121).ToLocalTime()
        while ([DateTimeOffset]::Now -lt $quietAt) { Start-Sleep -Milliseconds 500 }
    }
    # log times are whole seconds: so is the start of the drill
    $script:DrillStart = [DateTimeOffset]::FromUnixTimeSeconds([DateTimeOffset]::Now.ToUnixTimeSeconds()).ToLocalTime()
}

AfterAll {
    $env:MAILOPS_CONFIG = $script:Saved
    Remove-Item -Recurse -Force $script:Dir -ErrorAction SilentlyContinue
}

Describe 'The bulk-mail drill' {
    It 'counts a normal stretch of staff mail through the primary and raises nothing' {
        Send-Staff 6
        $null = Wait-Received $script:PrimaryLog primary $script:DrillStart 6
        $alerts = @(Test-MailTraffic)
        $alerts.Count | Should -Be 0
        Test-MailTraffic -Quiet | Should -BeTrue
        $out = Invoke-FreshPwsh -Script "Import-Module '$(Get-TestModulePath)'; `$env:MAILOPS_CONFIG = '$($script:Config)'; Test-MailTraffic -ExitCode" -AllowFailure
        $LASTEXITCODE | Should -Be 0 -Because ($out -join "`n")
        $flows = Get-MailTrafficReport -Relay primary -Path $script:PrimaryLog -Since $script:DrillStart -By Flow -Bucket Day
        ($flows | Where-Object Key -EQ staff).Messages | Should -Be 6
    }

    It 'raises the volume alert before the cap is reached, names the flow, and sends it through the secondary relay and the webhook' {
        $script:HooksBefore = (Get-Hooks).Count
        $r = Send-Bulk primary drill-bulk-primary 1 24
        $r.Sent | Should -Be 24
        $null = Wait-Received $script:PrimaryLog primary $script:DrillStart 30
        $alerts = @(Test-MailTraffic)
        $alerts.Count | Should -Be 1
        $a = $alerts[0]
        $a.State | Should -Be 'Raised'
        $a.Severity | Should -Be 'Warning'
        $a.Rule | Should -Be 'primary-provider-cap'
        $a.Key | Should -Be 'primary'
        $a.Value | Should -BeGreaterOrEqual ($script:Cap * 0.5)
        $a.Value | Should -BeLessThan $script:Cap -Because 'the watch must warn before the provider cap is reached'
        $a.TopFlows[0].Key | Should -Be 'newsletter'
        $a.TopFlows[0].Value | Should -Be 24
        $a.TopSenders[0].Key | Should -Be 'news@lab.test'
        $a.Summary | Should -Match "flow 'newsletter'"
        $a.SuggestedAction | Should -Match "Move flow 'newsletter' to the secondary relay 'secondary'"

        # the webhook receiver got it (Slack/Mattermost/Teams-style JSON with a text)
        $hooks = Get-Hooks
        $hooks.Count | Should -Be ($script:HooksBefore + 1)
        $payload = $hooks[-1].body | ConvertFrom-Json
        $payload.text | Should -Match 'newsletter'
        $hooks[-1].contentType | Should -Match 'application/json'
        # the email went out through the secondary relay to ops@sink.test
        $mail = @(Get-AlertMail 1)
        $mail.Count | Should -Be 1
        $text = [IO.File]::ReadAllText($mail[0].FullName)
        $text | Should -Match '(?m)^Subject: \[MailOps\] WARNING'
        $text | Should -Match 'newsletter'
        (Get-Content -Raw $script:Lab.smtp.secondary.log) | Should -Match 'to=<ops@sink\.test>' -Because 'the alert goes out through the secondary relay'
    }

    It 'does not send the same incident again while it lasts, and says so to scheduled tasks' {
        $again = @(Test-MailTraffic)
        $again.Count | Should -Be 1
        $again[0].State | Should -Be 'Active'
        (Get-Hooks).Count | Should -Be ($script:HooksBefore + 1)
        Test-MailTraffic -Quiet | Should -BeFalse
        $out = Invoke-FreshPwsh -Script "Import-Module '$(Get-TestModulePath)'; `$env:MAILOPS_CONFIG = '$($script:Config)'; Test-MailTraffic -ExitCode" -AllowFailure
        $LASTEXITCODE | Should -Be 1 -Because ($out -join "`n")
        # -WhatIf evaluates without touching the state
        $w = @(Test-MailTraffic -WhatIf)
        $w[0].State | Should -Be 'Raised'
        (Get-Hooks).Count | Should -Be ($script:HooksBefore + 1)
    }

    It 'resolves the alert when the rest of the mailing goes through the secondary relay' {
        $lastPrimary = [DateTimeOffset]::FromUnixTimeSeconds([DateTimeOffset]::Now.ToUnixTimeSeconds()).ToLocalTime()
        $r = Send-Bulk secondary drill-bulk-secondary 25 60
        $r.Sent | Should -Be 36
        $null = Wait-Received $script:Lab.smtp.secondary.log secondary $lastPrimary 36
        # the primary's rolling minute (counted in whole minutes: from the start of the minute it begins in) no longer
        # holds the bulk mailing
        $clear = [DateTimeOffset]::FromUnixTimeSeconds([Math]::Floor($lastPrimary.ToUnixTimeSeconds() / 60) * 60 + 121).ToLocalTime()
        while ([DateTimeOffset]::Now -lt $clear) { Start-Sleep -Milliseconds 500 }
        $alerts = @(Test-MailTraffic)
        $alerts.Count | Should -Be 1
        $alerts[0].State | Should -Be 'Resolved'
        $alerts[0].Value | Should -BeLessThan ($script:Cap * 0.5)
        $alerts[0].Summary | Should -Match '^Resolved'
        $hooks = Get-Hooks
        $hooks.Count | Should -Be ($script:HooksBefore + 2)
        ($hooks[-1].body | ConvertFrom-Json).text | Should -Match 'Resolved'
        Test-MailTraffic -Quiet | Should -BeTrue
        # the secondary carried the moved mailing
        $sec = Get-MailTrafficReport -Path $script:Lab.smtp.secondary.log -Relay secondary -Since $lastPrimary -By Flow -Bucket Day
        ($sec | Where-Object Key -EQ newsletter).Recipients | Should -Be 36
    }
}

Describe 'Watch-MailTraffic' {
    It 'follows the live log and raises the alert while the mailing is being sent' {
        # the watch runs in its own pwsh process (as a service would), with a rule state of its own, and writes each
        # alert it outputs as a JSON line
        $cfg = Join-Path $script:Dir 'watch.yaml'
        (Get-Content -Raw $script:Config) -replace "traffic\.db", 'watch.db' | Set-Content $cfg
        $out = Join-Path $script:Dir 'watch.jsonl'
        $script = Join-Path $script:Dir 'watch.ps1'
        @"
`$ErrorActionPreference = 'Stop'
`$PSStyle.OutputRendering = 'PlainText'
Import-Module '$(Get-TestModulePath)'
Watch-MailTraffic -ConfigPath '$cfg' -Rule primary-provider-cap -IntervalSeconds 1 -Duration ([TimeSpan]::FromSeconds(45)) -WarningAction SilentlyContinue |
    ForEach-Object { [IO.File]::AppendAllText('$out', ([pscustomobject]@{ State = "`$(`$_.State)"; Rule = `$_.Rule; Value = `$_.Value; Flow = `$_.TopFlows[0].Key } | ConvertTo-Json -Compress) + "``n") }
"@ | Set-Content $script
        $exe = [Environment]::ProcessPath
        $argList = @()
        if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $argList += (Join-Path $PSHOME 'pwsh.dll') }
        $argList += '-NoProfile', '-NonInteractive', '-File', $script
        $p = Start-Process -FilePath $exe -ArgumentList $argList -PassThru -RedirectStandardError (Join-Path $script:Dir 'watch.err') -RedirectStandardOutput (Join-Path $script:Dir 'watch.out')
        try {
            Start-Sleep -Seconds 6   # the watch has started, caught up, and follows the end of the log
            $null = Send-Bulk primary drill-watch 101 125
            $deadline = (Get-Date).AddSeconds(30)
            $raised = @()
            while ((Get-Date) -lt $deadline -and $raised.Count -eq 0) {
                Start-Sleep -Milliseconds 300
                $raised = @(if (Test-Path $out) { Get-Content $out | ForEach-Object { $_ | ConvertFrom-Json } | Where-Object State -EQ 'Raised' })
            }
            $raised.Count | Should -Be 1 -Because "stderr: $((Get-Content -Raw (Join-Path $script:Dir 'watch.err') -ErrorAction SilentlyContinue) -replace "\e\[[0-9;]*m", '')"
            $raised[0].Rule | Should -Be 'primary-provider-cap'
            $raised[0].Flow | Should -Be 'newsletter'
            $raised[0].Value | Should -BeLessThan $script:Cap
        }
        finally {
            if (-not $p.HasExited) { $p.Kill($true) }
        }
    }
}

Describe 'Traffic cmdlets: bad input' {
    It 'reports a missing log as LogNotFound and goes on' {
        $r = Get-MailTrafficReport -Path (Join-Path $script:Dir 'nope.log'), $script:PrimaryLog -Relay primary -Totals -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -BeLike 'LogNotFound*'
        $r.Received | Should -BeGreaterThan 0
    }

    It 'refuses an unknown rule, an unknown relay and an empty window' {
        { Test-MailTraffic -Rule nope -ErrorAction Stop } | Should -Throw -ErrorId 'RuleNotFound*'
        { Get-MailTrafficReport -Relay nope -Totals -ErrorAction Stop } | Should -Throw -ErrorId 'RelayNotFound*'
        { Get-MailTrafficReport -Since (Get-Date) -Until (Get-Date).AddHours(-1) -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidWindow*'
    }
}
