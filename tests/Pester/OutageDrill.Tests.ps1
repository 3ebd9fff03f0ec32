# The second incident, end to end on the lab: the OVH mail hosts go down for a window while the lab's Postfix sends;
# real bounces (outage failures and genuine unknown users, before, during and after the window, at OVH and at other
# providers) are imported; Reset-HardBounce -Provider OVH resets exactly the outage's false hard bounces at OVH; the
# undo restores everything. Provider attribution uses the lab's DNS (nsd: MX, NS, and IP-to-AS answers).
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '..' 'lab' 'MailLab.psm1') -Force
    Import-Module (Get-TestModulePath) -Force
    $script:Lab = Get-Lab
    $script:Dir = New-TestFolder
    $script:Config = Join-Path $script:Dir 'mailops.yaml'
    # the lab's configuration (DNS, flows, providers) with a store of this test's own
    (Get-Content -Raw $script:Lab.config) -replace '(?m)^  path: .*$', "  path: '$($script:Dir)/drill.db'" | Set-Content $script:Config
    $script:Saved = $env:MAILOPS_CONFIG
    $env:MAILOPS_CONFIG = $script:Config

    $tag = 'drill' + [Guid]::NewGuid().ToString('N').Substring(0, 6)
    $newDir = Join-Path $script:Lab.imap.maildir 'new'
    $script:Sent = 0
    function Send-Drill([string]$To) {
        $out = & swaks -s 127.0.0.1 -p $script:Lab.smtp.primary.port -f "$tag+$($script:Sent)@sink.test" -t $To --h-Subject "outage drill $tag" 2>&1
        if ($LASTEXITCODE -ne 0) { throw "swaks to $To failed: $($out -join "`n")" }
        $script:Sent++
    }
    function Wait-Dsn([int]$Count) {
        $deadline = (Get-Date).AddSeconds(60)
        do {
            Start-Sleep -Milliseconds 300
            $found = @(Get-ChildItem $newDir, (Join-Path $script:Lab.imap.maildir 'cur') -File -ErrorAction SilentlyContinue |
                    Where-Object { $t = Get-Content -Raw $_.FullName; $t -match [regex]::Escape($tag) -and $t -match 'multipart/report' })
        } until ($found.Count -ge $Count -or (Get-Date) -gt $deadline)
        return $found
    }

    # before the window: genuine unknown users at OVH and at Google, one delivered message
    Send-Drill 'ghost1@boulangerie-martin.test'
    Send-Drill 'nobody@startup-google.test'
    Send-Drill 'contact@boulangerie-martin.test'
    Wait-Dsn 2 | Out-Null
    # bounce times have whole seconds: the window starts and ends on whole seconds, a second clear of the other phases
    Start-Sleep -Milliseconds 1100
    $script:Since = [DateTimeOffset]::FromUnixTimeSeconds([DateTimeOffset]::UtcNow.ToUnixTimeSeconds())

    # the outage: OVH's mail hosts (and Microsoft's, briefly) refuse connections
    Set-LabProviderOutage -Lab $script:Lab -Provider ovh -State Down
    Set-LabProviderOutage -Lab $script:Lab -Provider microsoft -State Down
    try {
        Send-Drill 'paul@boulangerie-martin.test'        # real mailbox, unreachable: a false hard bounce
        Send-Drill 'secretariat@cabinet-durand.test'     # idem
        Send-Drill 'claire@cabinet-durand.test'          # idem
        Send-Drill 'ghost2@boulangerie-martin.test'      # unreachable now, and a genuine unknown user after the window
        Send-Drill 'team@startup-google.test'            # Google is up: delivered
        Send-Drill 'nobody2@startup-google.test'         # a genuine unknown user during the window
        Send-Drill 'bob@refused.test'                    # unreachable, provider unknown to the lab's DNS
        Send-Drill 'accueil@agence-m365.test'            # unreachable, but Microsoft's, not OVH's
        Wait-Dsn 8 | Out-Null
    }
    finally {
        Set-LabProviderOutage -Lab $script:Lab -Provider ovh -State Up
        Set-LabProviderOutage -Lab $script:Lab -Provider microsoft -State Up
    }
    Start-Sleep -Milliseconds 1100
    $script:Until = [DateTimeOffset]::FromUnixTimeSeconds([DateTimeOffset]::UtcNow.ToUnixTimeSeconds() + 1)
    while ([DateTimeOffset]::UtcNow -lt $script:Until.AddMilliseconds(1100)) { Start-Sleep -Milliseconds 100 }

    # after the window: genuine unknown users at OVH
    Send-Drill 'ghost2@boulangerie-martin.test'
    Send-Drill 'ghost3@cabinet-durand.test'
    $script:Dsns = Wait-Dsn 11
    $script:DsnDir = Join-Path $script:Dir 'dsns'
    New-Item -ItemType Directory $script:DsnDir | Out-Null
    $script:Dsns | Copy-Item -Destination $script:DsnDir

    $script:Expected = @('claire@cabinet-durand.test', 'paul@boulangerie-martin.test', 'secretariat@cabinet-durand.test')
    function Get-State {
        $h = @{}
        foreach ($b in Get-Bounce) { $h[$b.Address] = $b.SuppressionState }
        return $h
    }
}

AfterAll {
    $env:MAILOPS_CONFIG = $script:Saved
    Remove-Item -Recurse -Force $script:Dir -ErrorAction SilentlyContinue
}

Describe 'The outage drill' {
    It 'produced real bounces: 11 DSNs from the lab Postfix' {
        $script:Dsns.Count | Should -Be 11
    }

    It 'imports them for the newsletter flow, whose list manager suppresses every failed recipient' {
        $r = Import-Bounce -Path $script:DsnDir -Flow newsletter
        $r.Added | Should -Be 11
        $state = Get-State
        $state.Count | Should -Be 10
        @($state.Values | Where-Object { $_ -ne 'suppressed' }).Count | Should -Be 0
        # the outage failures are classified as infrastructure failures, the unknown users are not
        @(Get-Bounce -Domain cabinet-durand.test -Since $script:Since -Until $script:Until | Where-Object IsInfrastructureFailure).Count | Should -Be 2
        @(Get-Bounce -Reason userunknown).Count | Should -Be 5
    }

    It 'attributes the recipient domains from the lab DNS' {
        $r = @('paul@boulangerie-martin.test', 'cabinet-durand.test', 'startup-google.test', 'agence-m365.test', 'refused.test') | Resolve-MailProvider
        $r.Provider | Should -Be @('OVH', 'OVH', 'Google', 'Microsoft', $null)
        $r[0].Confidence.ToString() | Should -Be 'High'
        $r[0].AsNumbers | Should -Be @(16276)
        $r[0].EvidenceText | Should -Match 'MX mx1\.mail\.ovh\.net -> OVH'
        $r[4].Status.ToString() | Should -Be 'Unknown'
    }

    It '-WhatIf shows the plan and changes nothing' {
        $before = Get-State
        $info = Reset-HardBounce -Since $script:Since -Until $script:Until -Provider OVH -WhatIf -Verbose 6>&1 4>&1
        $summary = ($info | Where-Object { $_ -is [System.Management.Automation.InformationRecord] } | ForEach-Object { $_.MessageData.ToString() }) -join "`n"
        $summary | Should -Match '3 address\(es\) to reset'
        $summary | Should -Match 'by provider: OVH 3'
        $summary | Should -Match 'by flow:     newsletter 3'
        $kept = ($info | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message -join "`n"
        $kept | Should -Match 'ghost2@boulangerie-martin\.test: also suppressed by userunknown'
        $kept | Should -Match 'accueil@agence-m365\.test: agence-m365\.test is hosted by Microsoft, not OVH'
        $kept | Should -Match 'bob@refused\.test: the provider of refused\.test is unknown'
        $after = Get-State
        foreach ($k in $before.Keys) { $after[$k] | Should -Be $before[$k] }
    }

    It 'resets exactly the outage-caused hard bounces at OVH, audited, with the ESP list' {
        $esp = Join-Path $script:Dir 'esp'
        $script:Op = Reset-HardBounce -Since $script:Since -Until $script:Until -Provider OVH -EspExportPath $esp -Confirm:$false 6>$null
        $script:Op.ItemCount | Should -Be 3
        ($script:Op.Items.Address | Sort-Object) | Should -Be $script:Expected
        $script:Op.Items[0].ProviderEvidence | Should -Match 'DNS now: .*OVH'
        $state = Get-State
        foreach ($k in $state.Keys) { $state[$k] | Should -Be $(if ($k -in $script:Expected) { 'reset' } else { 'suppressed' }) -Because $k }

        $file = Get-ChildItem $esp -Filter "newsletter-sendgrid-unsuppress-$($script:Op.Id).csv"
        $file | Should -Not -BeNullOrEmpty
        $rows = Import-Csv $file.FullName
        ($rows.email | Sort-Object) | Should -Be $script:Expected

        $audit = Get-HardBounceReset -Id $script:Op.Id
        $audit.CreatedBy | Should -Match '@'
        $audit.Criteria | Should -Match 'Provider=OVH'
        $audit.Criteria | Should -Match 'infrastructure failures only'
        ($audit.Items.Address | Sort-Object) | Should -Be $script:Expected
        @($audit.Items | Where-Object PreviousState -ne 'suppressed').Count | Should -Be 0
    }

    It 'does not re-suppress them when the same outage is imported again from the Postfix log' {
        $r = Import-Bounce -LogPath $script:Lab.smtp.primary.log -Flow newsletter
        @(Get-Bounce -Source "$($script:Lab.smtp.primary.log)*" | Where-Object Address -in $script:Expected).Count | Should -BeGreaterOrEqual 3
        $r.Added | Should -BeGreaterOrEqual 3
        $state = Get-State
        foreach ($a in $script:Expected) { $state[$a] | Should -Be 'reset' -Because $a }
    }

    It 'a second run finds nothing more to reset' {
        $r = Reset-HardBounce -Since $script:Since -Until $script:Until -Provider OVH -Confirm:$false -WarningVariable w -WarningAction SilentlyContinue 6>$null
        $r | Should -BeNullOrEmpty
        $w -join ' ' | Should -Match 'Nothing to reset'
    }

    It 'the undo restores everything exactly, once' {
        $u = $script:Op | Undo-HardBounceReset -Confirm:$false
        $u.IsUndone | Should -BeTrue
        @($u.Items | Where-Object UndoOutcome -ne 'restored').Count | Should -Be 0
        $state = Get-State
        @($state.Values | Where-Object { $_ -ne 'suppressed' }).Count | Should -Be 0
        $err = $null
        Undo-HardBounceReset -Id $script:Op.Id -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -BeLike 'ResetAlreadyUndone*'
        # after the undo the same reset can be made again
        (Reset-HardBounce -Since $script:Since -Until $script:Until -Provider OVH -Confirm:$false 6>$null).ItemCount | Should -Be 3
    }
}

Describe 'Reset-HardBounce input checks' {
    It 'refuses to run without criteria' {
        { Reset-HardBounce -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'NoCriteria*'
    }

    It 'refuses an unknown provider, an unknown reason and a reversed window' {
        { Reset-HardBounce -Provider NoSuchHost -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'UnknownProvider*'
        { Reset-HardBounce -Reason nosuchreason -Since (Get-Date).AddDays(-1) -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'UnknownReason*'
        { Reset-HardBounce -Since (Get-Date) -Until (Get-Date).AddDays(-1) -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidWindow*'
    }

    It 'reports an unknown operation id' {
        $err = $null
        Get-HardBounceReset -Id nosuchid -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -BeLike 'ResetNotFound*'
    }

    It 'Resolve-MailProvider refuses what is not a domain and goes on with the rest' {
        $err = $null
        $r = Resolve-MailProvider 'not a domain!', 'cabinet-durand.test' -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -BeLike 'InvalidDomainName*'
        $r.Provider | Should -Be 'OVH'
    }

    It 'tab-completes provider names from the catalogue and the configuration' {
        $c = TabExpansion2 -inputScript 'Reset-HardBounce -Provider O' -cursorColumn 'Reset-HardBounce -Provider O'.Length
        $c.CompletionMatches.CompletionText | Should -Contain 'OVH'
        $c = TabExpansion2 -inputScript 'Resolve-MailProvider x.test; Reset-HardBounce -Provider Lab' -cursorColumn 'Resolve-MailProvider x.test; Reset-HardBounce -Provider Lab'.Length
        $c.CompletionMatches.CompletionText | Should -Contain 'LabHost'
    }
}
