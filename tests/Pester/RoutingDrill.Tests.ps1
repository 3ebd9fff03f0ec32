# Issue 9's drill on the lab: the lab's primary Postfix runs with the policy Export-MailRoutingPolicy generates and
# applies (postmap, postconf, postfix check, postfix reload). A list sender's mail then leaves the primary through the
# dedicated transport to the secondary relay (the delivered mail's Received headers and the secondary's own log say
# so), person-to-person mail does not, an app server over its per-client limit gets Postfix's own 450, and
# Test-MailRouting answers the same from the maps and from a probe. A flow that would fail DMARC after the move is
# refused. The primary's previous configuration is restored (-Rollback) at the end, so the other tests see the lab as
# it was. (A configuration that fails postfix check is never reloaded: RoutingPolicy.Tests.ps1 and the xunit
# PostfixApplyTests run that against real Postfix tools on a scratch configuration, not on the live lab.)
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Get-TestModulePath) -Force
    $script:Lab = Get-Lab
    $script:Dir = New-TestFolder
    $script:Config = Join-Path $script:Dir 'mailops.yaml'
    $script:Etc = $script:Lab.smtp.primary.config
    $script:Policy = Join-Path $script:Dir 'policy'
    # the lab's configuration: the newsletter goes to the secondary's MTA port (no AUTH), a CRM app server at 127.0.0.7
    # with a limit of 3 messages a minute, staff submit from 127.0.0.1, and an ads flow whose domain (legacy.test: SPF
    # over the lookup limit, no DKIM) would fail after the move
    $yaml = (Get-Content -Raw $script:Lab.config) -replace '(?m)^  path: .*$', "  path: '$($script:Dir)/routing.db'"
    $yaml = $yaml.Replace("    senders: [news@lab.test]`n    relay: secondary`n", "    senders: [news@lab.test]`n    relay: secondary-mx`n")
    $yaml = $yaml.Replace("    senders: ['@lab.test']`n    relay: primary`n", "    senders: ['@lab.test']`n    clientHosts: [127.0.0.1]`n    relay: primary`n")
    $yaml = $yaml.Replace("flows:`n", @"
flows:
  - name: crm
    kind: Transactional
    senders: [crm@lab.test]
    clientHosts: [127.0.0.7]
    relay: secondary-mx
  - name: ads
    kind: Campaign
    senders: [ads@legacy.test]
    relay: secondary-mx

"@)
    $yaml += @"

thresholds:
  - name: newsletter-pace
    scope: flow
    match: newsletter
    metric: messages
    per: minute
    limit: 120
  - name: crm-per-client
    scope: client
    match: 127.0.0.7
    metric: messages
    per: minute
    limit: 3
"@
    Set-Content -LiteralPath $script:Config -Value $yaml
    $script:Cred = [pscredential]::new($script:Lab.sasl.user, (ConvertTo-SecureString $script:Lab.sasl.password -AsPlainText -Force))
    $script:Port = $script:Lab.smtp.primary.port

    function Send-Lab([string]$From, [string]$To, [string]$Subject, [string]$Interface = '127.0.0.1') {
        (& swaks -s 127.0.0.1 -p $script:Port -li $Interface -f $From -t $To --h-Subject $Subject 2>&1) -join "`n"
    }

    function Wait-Delivered([string]$Subject) {
        $deadline = [DateTime]::UtcNow.AddSeconds(30)
        do {
            $hit = Get-ChildItem "$($script:Lab.imap.maildir)/new", "$($script:Lab.imap.maildir)/cur" -File -ErrorAction SilentlyContinue |
                Where-Object { (Get-Content -Raw $_.FullName) -match [regex]::Escape("Subject: $Subject") } | Select-Object -First 1
            if (-not $hit) { Start-Sleep -Milliseconds 300 }
        } until ($hit -or [DateTime]::UtcNow -gt $deadline)
        if ($hit) { Get-Content -Raw $hit.FullName }
    }

    $script:ApplyErrors = $null
    $script:Applied = @(Export-MailRoutingPolicy -Path $script:Policy -ConfigPath $script:Config -Apply -PostfixConfig $script:Etc -NoTimestamp -Confirm:$false -ErrorVariable script:ApplyErrors -ErrorAction SilentlyContinue)
    $script:Stamp = Get-Date -Format 'HHmmss'
}

AfterAll {
    Export-MailRoutingPolicy -Rollback -PostfixConfig $script:Etc -Confirm:$false | Out-Null
    Remove-Item -Recurse -Force -LiteralPath $script:Dir -ErrorAction SilentlyContinue
}

Describe 'The routing policy on the lab''s primary Postfix' {
    It 'applies the generated files, and refuses the flow that would fail after the move' {
        $script:ApplyErrors | Where-Object FullyQualifiedErrorId -notlike 'FlowNotReady*' | Should -BeNullOrEmpty
        $refused = @($script:ApplyErrors | Where-Object FullyQualifiedErrorId -like 'FlowNotReady*')
        $refused.Count | Should -Be 1
        $refused[0].TargetObject | Should -Be 'ads'
        $refused[0].Exception.Message | Should -Match 'legacy\.test'
        (Get-Content -Raw (Join-Path $script:Policy 'mailops_sender_filter')) | Should -Not -Match 'ads@legacy\.test FILTER'
        & postconf -c $script:Etc -h smtpd_sender_restrictions | Should -Match 'mailops_client_filter, check_sender_access hash:.*mailops_sender_filter'
        & postconf -c $script:Etc -P 'mailops_secondary_mx/unix/syslog_name' | Should -Match 'postfix/mailops_secondary_mx'
    }

    It 'sends a list sender''s mail out through the secondary relay' {
        $out = Send-Lab 'news@lab.test' 'route-list@sink.test' "routing list $script:Stamp"
        $out | Should -Match 'queued as'
        $mail = Wait-Delivered "routing list $script:Stamp"
        $mail | Should -Not -BeNullOrEmpty
        $mail | Should -Match 'by mx2\.lab\.test'
        $slog = Get-Content -Raw $script:Lab.smtp.secondary.log
        $slog | Should -Match 'from=<news@lab\.test>'
        $plog = Get-Content -Raw $script:Lab.smtp.primary.log
        $plog | Should -Match 'postfix/mailops_secondary_mx/smtp\[\d+\]: \w+: to=<route-list@sink\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+.*status=sent'
    }

    It 'keeps person-to-person mail on the primary path' {
        $before = (Get-Content -Raw $script:Lab.smtp.secondary.log).Length
        Send-Lab 'anna@lab.test' 'route-p2p@sink.test' "routing p2p $script:Stamp" | Should -Match 'queued as'
        $mail = Wait-Delivered "routing p2p $script:Stamp"
        $mail | Should -Not -BeNullOrEmpty
        $mail | Should -Not -Match 'by mx2\.lab\.test'
        (Get-Content -Raw $script:Lab.smtp.secondary.log).Substring($before) | Should -Not -Match 'route-p2p@sink\.test'
    }

    It 'defers an app server over its limit with Postfix''s own reply' {
        $replies = 1..4 | ForEach-Object { Send-Lab 'crm@lab.test' "crm$_@sink.test" "routing crm $_ $script:Stamp" '127.0.0.7' }
        ($replies[0..2] | Where-Object { $_ -match 'queued as' }).Count | Should -Be 3
        $replies[3] | Should -Match '450 4\.7\.1 Error: too much mail from 127\.0\.0\.7'
        Get-Content -Raw $script:Lab.smtp.primary.log | Should -Match 'Message delivery request rate limit exceeded: \d+ from \S*\[127\.0\.0\.7\]'
    }

    It 'answers from the generated maps which relay, transport and limits a message gets' {
        $r = Test-MailRouting -ConfigPath $script:Config -Path $script:Etc -Sender news@lab.test -Recipient x@sink.test
        $r.Flow | Should -Be 'newsletter'
        $r.Relay | Should -Be 'secondary-mx'
        $r.Transport | Should -Be 'mailops_secondary_mx'
        $r.Decision | Should -Match 'news@lab\.test'
        ($r.Limits -join ' ') | Should -Match 'mailops_secondary_mx_destination_rate_delay = 1s'
        $p2p = Test-MailRouting -ConfigPath $script:Config -Path $script:Etc -Sender anna@lab.test
        $p2p.Transport | Should -BeNullOrEmpty
        $p2p.Relay | Should -Match 'own path'
        # the export folder (never postmapped) answers the same, and is left as it was
        (Test-MailRouting -ConfigPath $script:Config -Path $script:Policy -Sender news@lab.test).Relay | Should -Be 'secondary-mx'
        Test-Path (Join-Path $script:Policy 'mailops_sender_filter.db') | Should -BeFalse
        $app = Test-MailRouting -ConfigPath $script:Config -Path $script:Etc -Sender someone@other.test -ClientAddress 127.0.0.7
        $app.Relay | Should -Be 'secondary-mx'
        $app.Decision | Should -Match '127\.0\.0\.7'
    }

    It 'proves the way with a probe through the primary' {
        $list = Test-MailRouting -ConfigPath $script:Config -Sender news@lab.test -Recipient probe-list@sink.test -Probe -ProbeRelay primary -Credential $script:Cred -ProbeTimeoutSeconds 30
        $list.DeliveredBy | Should -Be 'secondary-mx'
        ($list.ProbeEvidence -join "`n") | Should -Match 'relay=127\.0\.0\.1\[127\.0\.0\.1\]'
        $p2p = Test-MailRouting -ConfigPath $script:Config -Sender anna@lab.test -Recipient probe-p2p@sink.test -Probe -ProbeRelay primary -Credential $script:Cred -ProbeTimeoutSeconds 30
        $p2p.DeliveredBy | Should -Match 'primary itself'
    }

    It 'checks a flow''s readiness before a move' {
        $ok = Test-MailRouting -ConfigPath $script:Config -Flow newsletter -Relay secondary-mx
        $ok.Ready | Should -BeTrue
        ($ok.Checks | Where-Object Name -eq 'Relay').Passed | Should -BeTrue
        ($ok.Checks | Where-Object Name -eq 'SPF').Passed | Should -BeTrue   # lab.test includes 127.0.0.2
        $no = Test-MailRouting -ConfigPath $script:Config -Flow ads -Relay secondary-mx
        $no.Ready | Should -BeFalse
        $no.Reason | Should -Match 'legacy\.test'
    }

    It 'refuses bad input with the right errors' {
        { Test-MailRouting -ConfigPath $script:Config -Sender news@lab.test -ErrorAction Stop } | Should -Throw -ErrorId 'NothingToAsk,MailOps.PowerShell.Commands.TestMailRoutingCommand'
        { Test-MailRouting -ConfigPath $script:Config -Sender news@lab.test -Probe -ErrorAction Stop } | Should -Throw -ErrorId 'ProbeNeedsRecipient,MailOps.PowerShell.Commands.TestMailRoutingCommand'
        $e = $null
        Test-MailRouting -ConfigPath $script:Config -Sender "news@lab.test`r`nBcc: x@y" -Path $script:Etc -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'InvalidAddress,MailOps.PowerShell.Commands.TestMailRoutingCommand'
        Test-MailRouting -ConfigPath $script:Config -Sender news@lab.test -Path (Join-Path $script:Dir 'none') -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'PolicyNotFound,MailOps.PowerShell.Commands.TestMailRoutingCommand'
        Test-MailRouting -ConfigPath $script:Config -Flow nope -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'FlowNotFound,MailOps.PowerShell.Commands.TestMailRoutingCommand'
    }
}
