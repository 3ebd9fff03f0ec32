# Export-MailRoutingPolicy (issue 9): the files, -WhatIf with its diff, and -Apply/-Rollback on a scratch Postfix
# (-SkipReadinessCheck throughout: these flows' domains are not in any DNS here; the readiness check is tested in
# RoutingDrill.Tests.ps1 against the lab's DNS and in the xunit FlowMoveReadinessTests)
# configuration directory made from the lab primary's templates (no running Postfix: postfix check works on a
# directory whose queue folder exists; reload then fails, which is what the success path shows). The live drill on the
# lab's primary belongs to Test-MailRouting's tests.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Get-TestModulePath) -Force
    $script:Dir = New-TestFolder
    $script:Config = Join-Path $script:Dir 'mailops.yaml'
    Set-Content -LiteralPath $script:Config -Value @'
version: 1
relays:
  - name: primary
    host: 127.0.0.1
    port: 2525
    role: primary
  - name: secondary
    host: 127.0.0.1
    port: 2526
    role: secondary
    heloName: bulk.lab.test
flows:
  - name: staff
    kind: PersonToPerson
    senders: ['@lab.test']
  - name: newsletter
    kind: List
    senders: [news@lab.test]
  - name: crm
    kind: Campaign
    senders: [crm@lab.test]
    clientHosts: [192.0.2.10]
  - name: legacy
    kind: Automation
    senders: [alerts@legacy.test]
    relay: primary
thresholds:
  - name: secondary-cap
    scope: relay
    match: secondary
    metric: recipients
    per: hour
    limit: 1000
'@

    function New-ScratchPostfix([string]$Root) {
        $templates = Join-Path $env:MAILOPS_REPO 'tests/lab/templates'
        foreach ($d in 'etc', 'spool', 'data', 'log', 'mail') { New-Item -ItemType Directory -Path "$Root/$d" -Force | Out-Null }
        $fill = {
            param($text)
            $text = $text.Replace('@LAB@/postfix-primary', $Root).Replace('@LAB@', $Root)
            $port = 42000
            foreach ($p in ([regex]::Matches($text, '@[A-Z_]+@') | ForEach-Object Value | Sort-Object -Unique)) {
                $text = $text.Replace($p, $(if ($p -match 'UID|GID') { '0' } else { "$port" }))
                $port++
            }
            $text
        }
        Set-Content -LiteralPath "$Root/etc/main.cf" -Value (& $fill (Get-Content -Raw "$templates/postfix-primary/main.cf")) -NoNewline
        Set-Content -LiteralPath "$Root/etc/master.cf" -Value ((& $fill (Get-Content -Raw "$templates/postfix-primary/master.cf")) + (Get-Content -Raw "$templates/master-common.cf")) -NoNewline
        return "$Root/etc"
    }
}

AfterAll {
    Remove-Item -LiteralPath $script:Dir -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Export-MailRoutingPolicy' {
    It 'writes the fragments, the maps and a README, with the flows behind every line' {
        $out = Join-Path $script:Dir 'policy'
        $r = Export-MailRoutingPolicy -Format Postfix -Path $out -ConfigPath $script:Config -SkipReadinessCheck -MapDirectory /etc/postfix -Confirm:$false -WarningVariable warn -WarningAction SilentlyContinue
        $r.Name | Should -Be @('README.txt', 'mailops_client_filter', 'mailops_sender_filter', 'mailops_sender_transport', 'main.cf.fragment', 'master.cf.fragment')
        $r.Status | Sort-Object -Unique | Should -Be 'Created'
        $r.Written | Sort-Object -Unique | Should -BeTrue
        (Get-ChildItem $out).Count | Should -Be 6
        $filter = Get-Content "$out/mailops_sender_filter"
        $filter | Should -Contain 'news@lab.test FILTER mailops_secondary:[127.0.0.1]:2526'
        $filter | Should -Contain 'lab.test DUNNO'
        (Get-Content "$out/mailops_sender_transport") | Should -Contain 'crm@lab.test mailops_secondary:[127.0.0.1]:2526'
        (Get-Content "$out/mailops_client_filter") | Should -Contain '192.0.2.10 FILTER mailops_secondary:[127.0.0.1]:2526'
        $main = Get-Content -Raw "$out/main.cf.fragment"
        $main | Should -Match '(?m)^smtpd_sender_restrictions = check_client_access hash:/etc/postfix/mailops_client_filter, check_sender_access hash:/etc/postfix/mailops_sender_filter$'
        $main | Should -Match '(?m)^mailops_secondary_destination_rate_delay = 4s$'
        $main | Should -Match '(?m)^mailops_secondary_destination_recipient_limit = 1$'
        $main | Should -Match "threshold 'secondary-cap'"
        (Get-Content -Raw "$out/master.cf.fragment") | Should -Match "(?m)^# relay 'secondary' .* for the flows: crm \(Campaign\), newsletter \(List\)\nmailops_secondary unix - - n - - smtp\n  -o syslog_name=postfix/mailops_secondary\n  -o smtp_helo_name=bulk.lab.test"
        # the bulk flow that names the primary is kept there, with a warning
        ($warn -join "`n") | Should -Match "Flow 'legacy'.*kept on the primary path"
    }

    It 'outputs the decisions with -IncludeDecision' {
        $d = Export-MailRoutingPolicy -Path (Join-Path $script:Dir 'decisions') -ConfigPath $script:Config -SkipReadinessCheck -IncludeDecision -Confirm:$false -WarningAction SilentlyContinue |
            Where-Object { $_.GetType().Name -eq 'FlowRouteDecision' }
        $d.Flow | Should -Be @('staff', 'newsletter', 'crm', 'legacy')
        ($d | Where-Object Flow -eq newsletter).Route.Target | Should -Be 'mailops_secondary:[127.0.0.1]:2526'
        ($d | Where-Object Flow -eq staff).Route | Should -BeNullOrEmpty
        ($d | Where-Object Flow -eq legacy).Severity | Should -Be 'Warning'
        ($d | Where-Object Flow -eq crm).Limits -join ' ' | Should -Match 'one delivery every 4s'
    }

    It '-WhatIf writes nothing and reports the diff against the files there' {
        $out = Join-Path $script:Dir 'whatif'
        Export-MailRoutingPolicy -Path $out -ConfigPath $script:Config -SkipReadinessCheck -NoTimestamp -Confirm:$false -WarningAction SilentlyContinue | Out-Null
        $before = Get-ChildItem $out | ForEach-Object { "$($_.Name) $($_.LastWriteTimeUtc.Ticks) $((Get-FileHash $_.FullName).Hash)" }

        # same configuration: nothing changes (the timestamp line alone would not count either)
        $same = Export-MailRoutingPolicy -Path $out -ConfigPath $script:Config -SkipReadinessCheck -WhatIf -WarningAction SilentlyContinue
        $same.Status | Sort-Object -Unique | Should -Be 'Unchanged'

        # a new list flow: the maps and the master.cf comment change, shown line by line
        $changed = Join-Path $script:Dir 'changed.yaml'
        (Get-Content -Raw $script:Config) -replace 'thresholds:', "  - name: events`n    kind: List`n    senders: [events@lab.test]`nthresholds:" | Set-Content $changed
        $r = Export-MailRoutingPolicy -Path $out -ConfigPath $changed -SkipReadinessCheck -WhatIf -InformationVariable info -WarningAction SilentlyContinue
        $after = Get-ChildItem $out | ForEach-Object { "$($_.Name) $($_.LastWriteTimeUtc.Ticks) $((Get-FileHash $_.FullName).Hash)" }
        $after | Should -Be $before
        $r.Written | Sort-Object -Unique | Should -BeFalse
        $f = $r | Where-Object Name -eq mailops_sender_filter
        $f.Status | Should -Be 'Changed'
        $f.LinesAdded | Should -Be 2
        $f.LinesRemoved | Should -Be 0
        $f.Diff | Should -Contain '+ events@lab.test FILTER mailops_secondary:[127.0.0.1]:2526'
        ($r | Where-Object Name -eq 'master.cf.fragment').LinesRemoved | Should -Be 1
        ($r | Where-Object Name -eq 'README.txt').Status | Should -Be 'Unchanged'
        $shown = ($info | ForEach-Object { "$($_.MessageData)" }) -join "`n"
        $shown | Should -Match ([regex]::Escape("--- $out/mailops_sender_filter (Changed: +2 -0)"))
        $shown | Should -Match ([regex]::Escape('+ events@lab.test FILTER mailops_secondary:[127.0.0.1]:2526'))
    }

    It 'refuses a configuration Postfix rejects, restores the files and does not reload' -Skip:(-not (Test-Path /usr/sbin/postfix)) {
        $etc = New-ScratchPostfix (Join-Path $script:Dir 'pf-broken')
        # a master.cf line Postfix rejects ("bad field count"): postconf -e already reads master.cf and dies on it, so the
        # apply stops there (PostfixCommandFailed). A broken GENERATED fragment reaching postfix check (PostfixCheckFailed)
        # is tested in xunit (PostfixApplyTests), where the policy can be broken on purpose.
        Add-Content -LiteralPath "$etc/master.cf" -Value 'broken unix - - n - -'
        $main = Get-Content -Raw "$etc/main.cf"
        $master = Get-Content -Raw "$etc/master.cf"

        $r = Export-MailRoutingPolicy -Path (Join-Path $script:Dir 'pf-broken-out') -ConfigPath $script:Config -SkipReadinessCheck -Apply -PostfixConfig $etc -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue -WarningAction SilentlyContinue
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'PostfixCommandFailed,*'
        $err[0].CategoryInfo.Category | Should -Be 'InvalidResult'
        $err[0].Exception.Message | Should -Match 'nothing was reloaded'
        $err[0].Exception.Message | Should -Match 'bad field count'
        $r | Where-Object { $_.GetType().Name -eq 'PostfixApplyResult' } | Should -BeNullOrEmpty
        Get-Content -Raw "$etc/main.cf" | Should -Be $main
        Get-Content -Raw "$etc/master.cf" | Should -Be $master
        Test-Path "$etc/mailops_sender_filter" | Should -BeFalse
        Test-Path "$etc/mailops_sender_filter.db" | Should -BeFalse
    }

    It 'stops before postfix check when postconf or postmap fails, and restores the files' -Skip:(-not (Test-Path /usr/sbin/postfix)) {
        $etc = New-ScratchPostfix (Join-Path $script:Dir 'pf-badmain')
        # postmap and postconf read main.cf and die on a number that is not one
        Add-Content -LiteralPath "$etc/main.cf" -Value 'message_size_limit = not-a-number'
        $main = Get-Content -Raw "$etc/main.cf"
        Export-MailRoutingPolicy -Path (Join-Path $script:Dir 'pf-badmain-out') -ConfigPath $script:Config -SkipReadinessCheck -Apply -PostfixConfig $etc -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue -WarningAction SilentlyContinue | Out-Null
        $err[0].FullyQualifiedErrorId | Should -BeLike 'PostfixCommandFailed,*'
        $err[0].Exception.Message | Should -Match 'message_size_limit'
        Get-Content -Raw "$etc/main.cf" | Should -Be $main
        Test-Path "$etc/mailops_sender_filter" | Should -BeFalse
    }

    It 'applies a clean policy (check passes), reports a failed reload, and rolls back' -Skip:(-not (Test-Path /usr/sbin/postfix)) {
        $etc = New-ScratchPostfix (Join-Path $script:Dir 'pf-good')
        $main = Get-Content -Raw "$etc/main.cf"

        # -WhatIf: nothing in the Postfix directory changes
        Export-MailRoutingPolicy -Path (Join-Path $script:Dir 'pf-good-out') -ConfigPath $script:Config -SkipReadinessCheck -Apply -PostfixConfig $etc -WhatIf -WarningAction SilentlyContinue | Out-Null
        Get-Content -Raw "$etc/main.cf" | Should -Be $main
        Get-ChildItem $etc -Filter 'mailops-backup-*' | Should -BeNullOrEmpty

        # this Postfix is not running, so reload fails after a clean check: the checked policy stays in place
        Export-MailRoutingPolicy -Path (Join-Path $script:Dir 'pf-good-out') -ConfigPath $script:Config -SkipReadinessCheck -Apply -PostfixConfig $etc -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue -WarningAction SilentlyContinue | Out-Null
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'PostfixReloadFailed,*'
        $err[0].Exception.Message | Should -Match 'is in place and checked'
        & postconf -c $etc -h smtpd_sender_restrictions | Should -Be "check_client_access hash:$etc/mailops_client_filter, check_sender_access hash:$etc/mailops_sender_filter"
        & postconf -c $etc -h mailops_secondary_destination_rate_delay | Should -Be '4s'
        & postmap -c $etc -q news@lab.test "hash:$etc/mailops_sender_filter" | Should -Be 'FILTER mailops_secondary:[127.0.0.1]:2526'
        (Get-Content -Raw "$etc/master.cf") | Should -Match '(?m)^# BEGIN MailOps routing policy'
        $backup = @(Get-ChildItem $etc -Directory -Filter 'mailops-backup-*')
        $backup.Count | Should -Be 1
        Get-Content -Raw (Join-Path $backup[0].FullName 'main.cf') | Should -Be $main

        # rollback: the files before the apply come back (reload fails again, for the same reason)
        Export-MailRoutingPolicy -Rollback -PostfixConfig $etc -Confirm:$false -ErrorVariable err2 -ErrorAction SilentlyContinue | Out-Null
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'PostfixReloadFailed,*'
        Get-Content -Raw "$etc/main.cf" | Should -Be $main
        Test-Path "$etc/mailops_sender_filter" | Should -BeFalse
    }

    It 'says when there is nothing to roll back to' {
        $empty = Join-Path $script:Dir 'no-backup'
        New-Item -ItemType Directory -Path $empty | Out-Null
        Export-MailRoutingPolicy -Rollback -PostfixConfig $empty -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -BeLike 'PostfixNoBackup,*'
    }
}
