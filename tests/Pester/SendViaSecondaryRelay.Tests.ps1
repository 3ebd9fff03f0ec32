# Send-ViaSecondaryRelay against the lab: the secondary Postfix relays to the sink Maildir (read directly), a
# throttling listener answers Postfix's own "450 4.7.1 too much mail" after 5 messages a minute, a relay that is down
# tests failover, and dkimpy (an independent verifier) checks the DKIM signatures of the received mail (Debian's /usr/bin/python3, not whatever python3 is first on PATH).
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Get-TestModulePath) -Force
    $script:Lab = Get-Lab
    $script:Dir = New-TestFolder
    $script:Config = Join-Path $script:Dir 'mailops.yaml'
    # the lab's configuration with a store of its own, and one more relay: the secondary's SMTP port, which (unlike its
    # submission port) applies the recipient checks of remote.test (a temporary failure for tempfail@remote.test)
    $remoteMx = "  - name: remote-mx`n    host: 127.0.0.1`n    port: $($script:Lab.smtp.secondary.port)`n    security: StartTls`n    role: secondary`n    caFile: $($script:Lab.tls.ca)`n    heloName: client.lab.test`n    timeoutSeconds: 10`n  - name: openrelay`n"
    (Get-Content -Raw $script:Lab.config) -replace '(?m)^  path: .*$', "  path: '$($script:Dir)/send.db'" -replace '(?m)^  - name: openrelay\r?\n', $remoteMx | Set-Content $script:Config
    $script:Saved = $env:MAILOPS_CONFIG
    $env:MAILOPS_CONFIG = $script:Config
    $script:Cred = [pscredential]::new($script:Lab.sasl.user, (ConvertTo-SecureString $script:Lab.sasl.password -AsPlainText -Force))
    $script:Maildir = $script:Lab.imap.maildir

    function Get-Received([string]$Job, [int]$Count, [int]$TimeoutSeconds = 60) {
        # the messages of a job that reached the sink Maildir (waits until at least $Count arrived)
        $deadline = (Get-Date).AddSeconds($TimeoutSeconds)
        do {
            $found = @(Get-ChildItem "$script:Maildir/new", "$script:Maildir/cur" -File -ErrorAction SilentlyContinue |
                    Where-Object { [IO.File]::ReadAllText($_.FullName) -match "(?m)^X-MailOps-Job: $([regex]::Escape($Job))\r?$" })
            if ($found.Count -ge $Count) { break }
            Start-Sleep -Milliseconds 300
        } while ((Get-Date) -lt $deadline)
        return $found
    }
    function Get-Header([string]$Text, [string]$Name) {
        $m = [regex]::Match($Text, "(?mi)^$([regex]::Escape($Name)):[ \t]*(.*(?:\r?\n[ \t].*)*)")
        if ($m.Success) { return ($m.Groups[1].Value -replace '\r?\n[ \t]+', ' ').Trim() } else { return $null }
    }
}

AfterAll {
    $env:MAILOPS_CONFIG = $script:Saved
    Remove-Item -Recurse -Force $script:Dir -ErrorAction SilentlyContinue
}

Describe 'Sending through the secondary relay' {
    It 'personalises each message, adds the bulk headers, and signs with DKIM (verified by dkimpy)' {
        $rcpts = 1..4 | ForEach-Object { [pscustomobject]@{ Email = "reader$_@sink.test"; FirstName = "Zoé$_"; Id = "id $_&x" } }
        $r = $rcpts | Send-ViaSecondaryRelay -From news@lab.test -FromName 'Lab News' -Subject 'News for {{FirstName}}' -TextBody 'Hello {{FirstName}}' `
            -HtmlBody '<p>Hello {{FirstName}} &amp; co</p>' -UnsubscribeUrl 'https://lab.test/unsub?u={{Id}}' -UnsubscribeMailto 'unsub@lab.test' `
            -Credential $script:Cred -JobName personal -DkimKeyFile $script:Lab.dkim.privateKey -DkimSelector mailops
        $r.State | Should -Be 'completed'
        $r.Sent | Should -Be 4
        $files = Get-Received personal 4
        $files.Count | Should -Be 4
        $dkimKey = (& dig +short -p $script:Lab.dns.port '@127.0.0.1' TXT mailops._domainkey.lab.test) -join '' -replace '"\s*"', '' -replace '"', ''
        $dkimKey | Should -Match 'v=DKIM1'
        $verifier = Join-Path $script:Dir 'verify.py'
        # dkimpy verifies; Python's email package decodes what the message says
        @"
import sys, json, dkim, email, email.policy
raw = open(sys.argv[1], 'rb').read()
key = sys.argv[2].encode()
ok = dkim.verify(raw, dnsfunc=lambda name, timeout=5: key if name == b'mailops._domainkey.lab.test.' else None)
m = email.message_from_bytes(raw, policy=email.policy.default)
text = m.get_body(('plain',)); html = m.get_body(('html',))
print(json.dumps({'dkim': 'pass' if ok else 'fail', 'subject': str(m['subject']), 'text': text.get_content() if text else None, 'html': html.get_content() if html else None}))
"@ | Set-Content $verifier
        foreach ($f in $files) {
            $text = [IO.File]::ReadAllText($f.FullName)
            $to = Get-Header $text 'To'
            $n = [regex]::Match($to, 'reader(\d)@').Groups[1].Value
            $msg = (& /usr/bin/python3 $verifier $f.FullName $dkimKey) | ConvertFrom-Json
            $msg.dkim | Should -Be 'pass' -Because $f.Name
            $msg.subject | Should -Be "News for Zoé$n"
            $msg.text.Trim() | Should -Be "Hello Zoé$n"
            $msg.html | Should -Match "Hello Zoé$n &amp; co"
            Get-Header $text 'List-Unsubscribe' | Should -Be "<mailto:unsub@lab.test>, <https://lab.test/unsub?u=id%20$n%26x>"
            Get-Header $text 'List-Unsubscribe-Post' | Should -Be 'List-Unsubscribe=One-Click'
            Get-Header $text 'Precedence' | Should -Be 'bulk'
            Get-Header $text 'Message-Id' | Should -Match "^<[0-9a-f]{8}\.personal\.\d@lab\.test>$"
            $text | Should -Match 'by mx2\.lab\.test \(Postfix\) with ESMTPSA'
        }
        $journal = Get-MailOpsSendJob -Name personal -Items
        @($journal | Where-Object { $_.State -eq 'sent' -and $_.QueueId -match '^[0-9A-F]+$' }).Count | Should -Be 4
    }

    It 'a tampered message fails the DKIM check (so the check can fail)' {
        $f = (Get-Received personal 4)[0]
        $tampered = Join-Path $script:Dir 'tampered.eml'
        [IO.File]::WriteAllText($tampered, ([IO.File]::ReadAllText($f.FullName) -replace 'Hello Zo', 'Hullo Zo'))
        $dkimKey = (& dig +short -p $script:Lab.dns.port '@127.0.0.1' TXT mailops._domainkey.lab.test) -join '' -replace '"\s*"', '' -replace '"', ''
        ((& /usr/bin/python3 (Join-Path $script:Dir 'verify.py') $tampered $dkimKey) | ConvertFrom-Json).dkim | Should -Be 'fail'
    }

    It 'running the same command again sends nothing twice' {
        $rcpts = 1..4 | ForEach-Object { [pscustomobject]@{ Email = "reader$_@sink.test"; FirstName = "Zoé$_"; Id = "id $_&x" } }
        $r = $rcpts | Send-ViaSecondaryRelay -From news@lab.test -FromName 'Lab News' -Subject 'News for {{FirstName}}' -TextBody 'Hello {{FirstName}}' `
            -HtmlBody '<p>Hello {{FirstName}} &amp; co</p>' -UnsubscribeUrl 'https://lab.test/unsub?u={{Id}}' -UnsubscribeMailto 'unsub@lab.test' `
            -Credential $script:Cred -JobName personal -DkimKeyFile $script:Lab.dkim.privateKey -DkimSelector mailops
        $r.SentThisRun | Should -Be 0
        $r.Sent | Should -Be 4
        Start-Sleep -Seconds 2
        (Get-Received personal 4).Count | Should -Be 4
    }

    It 'skips suppressed addresses, and -WhatIf sends nothing' {
        $csv = Join-Path $script:Dir 'gone.csv'
        "email,reason`ngone@sink.test,550 5.1.1 user unknown" | Set-Content $csv
        (Import-Bounce -CsvPath $csv -Format Generic).Suppressed | Should -Be 1
        $out = 'gone@sink.test', 'here@sink.test' | Send-ViaSecondaryRelay -From news@lab.test -Subject 'Hi' -TextBody 'x' -Credential $script:Cred -JobName supp -WhatIf 6>&1
        ($out | Out-String) | Should -Match '2 recipient\(s\), 1 suppressed'
        Get-MailOpsSendJob -Name supp -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $r = 'gone@sink.test', 'here@sink.test' | Send-ViaSecondaryRelay -From news@lab.test -Subject 'Hi' -TextBody 'x' -Credential $script:Cred -JobName supp
        $r.Skipped | Should -Be 1
        $r.Sent | Should -Be 1
        (Get-MailOpsSendJob -Name supp -State skipped).Address | Should -Be 'gone@sink.test'
    }

    It 'sends ready .eml files as they are, to their To and Cc recipients' {
        $eml = Join-Path $script:Dir 'eml'
        New-Item -ItemType Directory $eml | Out-Null
        "From: alerts@lab.test`r`nTo: eml1@sink.test`r`nCc: eml2@sink.test`r`nSubject: ready one`r`nMessage-Id: <ready-one@lab.test>`r`n`r`nbody one`r`n" | Set-Content -NoNewline (Join-Path $eml 'one.eml')
        "From: alerts@lab.test`r`nTo: eml3@sink.test`r`nSubject: ready two`r`nMessage-Id: <ready-two@lab.test>`r`n`r`nbody two`r`n" | Set-Content -NoNewline (Join-Path $eml 'two.eml')
        $r = Get-ChildItem $eml -Filter *.eml | Send-ViaSecondaryRelay -Credential $script:Cred -JobName readymade
        $r.Sent | Should -Be 3
        $files = Get-Received readymade 3
        $files.Count | Should -Be 3
        $subjects = $files | ForEach-Object { Get-Header ([IO.File]::ReadAllText($_.FullName)) 'Subject' } | Sort-Object
        $subjects | Should -Be @('ready one', 'ready one', 'ready two')
        ($files | ForEach-Object { Get-Header ([IO.File]::ReadAllText($_.FullName)) 'Return-Path' } | Select-Object -Unique) | Should -Be '<alerts@lab.test>'
    }

    It 'refuses the primary relay for bulk mail unless -AllowPrimary, and header injection' {
        { 'a@sink.test' | Send-ViaSecondaryRelay -Relay primary -From news@lab.test -Subject 'x' -TextBody 'x' -Credential $script:Cred -ErrorAction Stop } | Should -Throw -ErrorId 'PrimaryRelayRefused*'
        { 'a@sink.test' | Send-ViaSecondaryRelay -From news@lab.test -Subject "x`r`nBcc: victim@example.org" -TextBody 'x' -ErrorAction Stop } | Should -Throw -ErrorId 'HeaderInjection*'
        { 'a@sink.test' | Send-ViaSecondaryRelay -From "news@lab.test`r`nBcc: v@example.org" -Subject 'x' -TextBody 'x' -ErrorAction Stop } | Should -Throw -ErrorId 'UnsafeAddress*'
        $err = $null
        $r = @([pscustomobject]@{ Email = 'inj@sink.test'; Name = "Bob`r`nBcc: victim@example.org" }, [pscustomobject]@{ Email = 'nofield@sink.test' }, [pscustomobject]@{ Email = 'fine@sink.test'; Name = 'Fine' }) |
            Send-ViaSecondaryRelay -From news@lab.test -Subject 'Hi {{Name}}' -TextBody 'x' -Credential $script:Cred -JobName inject -ErrorVariable err -ErrorAction SilentlyContinue
        ($err.FullyQualifiedErrorId | ForEach-Object { ($_ -split ',')[0] } | Sort-Object) | Should -Be @('HeaderInjection', 'MissingPlaceholderValue')
        $r.Sent | Should -Be 1
        $r.Total | Should -Be 1
    }

    It 'paces messages to the per-minute, per-hour and per-domain limits within 2%' {
        $rcpts = @(1..21 | ForEach-Object { "pace$_@sink.test" })
        $r = $rcpts | Send-ViaSecondaryRelay -From news@lab.test -Subject 'pace' -TextBody 'x' -Credential $script:Cred -JobName pace -PerMinute 240 -MaxConnections 4
        $r.Sent | Should -Be 21
        $times = (Get-MailOpsSendJob -Name pace -Items).UpdatedAt | Sort-Object
        $rate = 20 / ($times[-1] - $times[0]).TotalMinutes
        $rate | Should -BeLessOrEqual (240 * 1.02)
        $rate | Should -BeGreaterOrEqual (240 * 0.98)

        $r = @(1..21 | ForEach-Object { "hour$_@sink.test" }) | Send-ViaSecondaryRelay -From news@lab.test -Subject 'per hour' -TextBody 'x' -Credential $script:Cred -JobName perhour -PerHour 14400 -MaxConnections 4
        $r.Sent | Should -Be 21
        $times = (Get-MailOpsSendJob -Name perhour -Items).UpdatedAt | Sort-Object
        $hourly = 20 / ($times[-1] - $times[0]).TotalHours
        $hourly | Should -BeLessOrEqual (14400 * 1.02)
        $hourly | Should -BeGreaterOrEqual (14400 * 0.98)

        $mixed = @(1..21 | ForEach-Object { "dom$_@sink.test" }) + @('alice@remote.test', 'bob@remote.test')
        $r = $mixed | Send-ViaSecondaryRelay -From news@lab.test -Subject 'domains' -TextBody 'x' -Credential $script:Cred -JobName perdomain -PerDomainPerMinute 240 -MaxConnections 4
        $items = Get-MailOpsSendJob -Name perdomain -Items
        $sink = $items | Where-Object { $_.Address -like '*@sink.test' } | ForEach-Object UpdatedAt | Sort-Object
        $sinkRate = 20 / ($sink[-1] - $sink[0]).TotalMinutes
        $sinkRate | Should -BeLessOrEqual (240 * 1.02)
        $sinkRate | Should -BeGreaterOrEqual (240 * 0.98)
    }

    It 'retries a temporary failure with growing delays, and records permanent failures as bounces' {
        $r = 'tempfail@remote.test', 'ghost@remote.test', 'alice@remote.test' | Send-ViaSecondaryRelay -Relay remote-mx -From news@lab.test -Subject 'retry' -TextBody 'x' `
            -JobName retry -Flow newsletter -RetryDelay 00:00:02 -MaxAttempts 3 -RetryWindow 00:00:30
        $r.Sent | Should -Be 1
        $r.Failed | Should -Be 2
        $items = Get-MailOpsSendJob -Name retry -Items
        $tf = $items | Where-Object Address -eq "tempfail@remote.test"
        $tf.Attempts | Should -Be 3 -Because "reply: $($tf.Reply)"
        ($items | Where-Object Address -eq 'ghost@remote.test').Attempts | Should -Be 1
        # the relay's own log: three refusals of tempfail, the second wait about twice the first (2 s and 4 s, +-20%)
        $times = @(Get-Content $script:Lab.smtp.secondary.log | Where-Object { $_ -match 'reject: RCPT .*451 4\.3\.0 <tempfail@remote\.test>' } |
                ForEach-Object { [datetime]::ParseExact(($_.Substring(0, 15) -replace '  ', ' 0'), 'MMM dd HH:mm:ss', [cultureinfo]::InvariantCulture) })
        $times.Count | Should -Be 3
        $first = ($times[1] - $times[0]).TotalSeconds
        $second = ($times[2] - $times[1]).TotalSeconds
        $first | Should -BeGreaterOrEqual 1
        $first | Should -BeLessOrEqual 3
        $second | Should -BeGreaterOrEqual 3
        $second | Should -BeLessOrEqual 6
        $ghost = Get-Bounce -Address ghost@remote.test
        $ghost.Reason | Should -Be 'userunknown'
        $ghost.Flow | Should -Be 'newsletter'
        $ghost.SuppressionState | Should -Be 'suppressed'
        (Get-Bounce -Address tempfail@remote.test).IsHard | Should -BeFalse
    }

    It 'fails over to a second secondary relay when the first is down' {
        $r = 'fo1@sink.test', 'fo2@sink.test' | Send-ViaSecondaryRelay -Relay bulk-down -FailoverRelay secondary -From news@lab.test -Subject 'failover' -TextBody 'x' -Credential $script:Cred -JobName failover -WarningVariable w -WarningAction SilentlyContinue
        $r.Sent | Should -Be 2
        ($w -join ' ') | Should -Match 'Failover: bulk-down is down'
        (Get-Received failover 2).Count | Should -Be 2
    }

    It 'pauses the whole job when the relay throttles it (circuit breaker), and does not resume early unless told' {
        $rcpts = @(1..10 | ForEach-Object { "thr$_@sink.test" })
        $hooksBefore = @(Get-Content $script:Lab.webhook.received -ErrorAction SilentlyContinue).Count
        $r = $rcpts | Send-ViaSecondaryRelay -Relay throttled -From news@lab.test -Subject 'throttle' -TextBody 'x' -JobName breaker -MaxConnections 1 -WarningVariable w -WarningAction SilentlyContinue
        $r.State | Should -Be 'paused'
        $r.Sent | Should -Be 5
        $r.Pending + $r.Deferred | Should -Be 5
        $r.PauseReason | Should -Match '450 4\.7\.1 Error: too much mail'
        $r.PausedUntil | Should -BeGreaterThan ([DateTimeOffset]::UtcNow.AddMinutes(20))
        ($w -join ' ') | Should -Match 'Circuit breaker'
        # and the alert went to the configured sinks (the lab's webhook receiver)
        $hooks = @(Get-Content $script:Lab.webhook.received | Select-Object -Skip $hooksBefore | ForEach-Object { ($_ | ConvertFrom-Json).body | ConvertFrom-Json })
        $hooks.Count | Should -Be 1
        $hooks[0].text | Should -Match "Circuit breaker: send job 'breaker' through relay 'throttled' is paused"
        $hooks[0].text | Should -Match 'too much mail'
        { $rcpts | Send-ViaSecondaryRelay -Relay throttled -From news@lab.test -Subject 'throttle' -TextBody 'x' -JobName breaker -MaxConnections 1 -ErrorAction Stop } | Should -Throw -ErrorId 'JobPaused*'
        (Get-MailOpsSendJob -Name breaker).State | Should -Be 'paused'
        # the administrator resumes it: the relay still throttles, so it pauses again without losing anyone
        $again = Resume-MailOpsSendJob -Name breaker -Confirm:$false -WarningAction SilentlyContinue
        $again.State | Should -Be 'paused'
        $again.Sent | Should -Be 5
        $again.Total | Should -Be 10
    }
}
