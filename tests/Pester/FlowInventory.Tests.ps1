# The email flow inventory against the lab (issue 8). The lab's nsd serves corp.test (SPF with three levels of
# includes, an ESP and a marketing service; DKIM; DMARC), legacy.test (an SPF record needing twelve DNS lookups) and
# provider zones with PTR and origin-AS answers. Real mail goes through the lab's Postfix relays: a CRM sender nobody
# declared (crm@corp.test through the primary), the declared invoices flow (billing@corp.test through the secondary,
# whose egress address corp.test's SPF does not authorise), staff mail and an automated-looking sender inside the staff
# flow. DMARC aggregate reports written here are mailed (gzip and zip attachments) to the lab's Dovecot mailbox and read
# back over IMAP. The HTML export is rendered by Debian's Chromium (printed to PDF) and read back as text.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Get-TestModulePath) -Force
    $script:Lab = Get-Lab
    $script:Dir = New-TestFolder
    $script:Config = Join-Path $script:Dir 'mailops.yaml'
    (Get-Content -Raw $script:Lab.config) -replace '(?m)^  path: .*$', "  path: '$($script:Dir)/inventory.db'" | Set-Content $script:Config
    $script:ImapCred = [pscredential]::new($script:Lab.imap.user, (ConvertTo-SecureString $script:Lab.imap.password -AsPlainText -Force))
    $script:Imap = @{ DmarcImapServer = '127.0.0.1'; ImapPort = $script:Lab.imap.port; ImapSecurity = 'None'; AllowAuthWithoutTls = $true; ImapCredential = $script:ImapCred }

    function Send-LabMail([int]$Port, [string]$From, [string]$To, [string]$Subject) {
        $out = & swaks -s 127.0.0.1 -p $Port -f $From -t $To --h-Subject $Subject 2>&1
        if (-not ($out -match 'queued as')) { throw "swaks could not send from $From`n$($out -join "`n")" }
    }

    function New-DmarcXml([string]$ReportId, [string]$Org, [object[]]$Records) {
        $begin = [DateTimeOffset]::UtcNow.AddDays(-1).ToUnixTimeSeconds()
        $end = [DateTimeOffset]::UtcNow.ToUnixTimeSeconds()
        $rows = foreach ($r in $Records) {
            @"
  <record>
    <row><source_ip>$($r.Ip)</source_ip><count>$($r.Count)</count>
      <policy_evaluated><disposition>$($r.Disposition)</disposition><dkim>$($r.Dkim)</dkim><spf>$($r.Spf)</spf></policy_evaluated></row>
    <identifiers><header_from>corp.test</header_from></identifiers>
    <auth_results>
      <dkim><domain>$($r.DkimDomain)</domain><selector>$($r.Selector)</selector><result>$($r.DkimResult)</result></dkim>
      <spf><domain>$($r.SpfDomain)</domain><scope>mfrom</scope><result>$($r.SpfResult)</result></spf>
    </auth_results>
  </record>
"@
        }
        @"
<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata><org_name>$Org</org_name><email>noreply-dmarc@$($Org.ToLowerInvariant()).test</email><report_id>$ReportId</report_id>
    <date_range><begin>$begin</begin><end>$end</end></date_range></report_metadata>
  <policy_published><domain>corp.test</domain><adkim>r</adkim><aspf>r</aspf><p>quarantine</p><sp>quarantine</sp><pct>100</pct></policy_published>
$($rows -join "`n")
</feedback>
"@
    }

    $primary = $script:Lab.smtp.primary.port
    $secondary = $script:Lab.smtp.secondary.port
    $script:Start = [DateTimeOffset]::UtcNow.AddSeconds(-2)
    1..3 | ForEach-Object { Send-LabMail $primary 'crm@corp.test' "customer$_@sink.test" "Your order $_" }
    1..2 | ForEach-Object { Send-LabMail $primary 'anna@lab.test' "colleague$_@sink.test" "Lunch $_" }
    1..3 | ForEach-Object { Send-LabMail $primary 'noreply@lab.test' "user$_@sink.test" "Password reset $_" }
    1..2 | ForEach-Object { Send-LabMail $secondary 'billing@corp.test' "client$_@sink.test" "Invoice $_" }

    # two receivers' reports about corp.test: the primary (aligned), the secondary (DKIM only), SendGrid (aligned
    # through its s1 key), Mailchimp (its own domain: fails DMARC), and an address nothing names (fails everything)
    $google = New-DmarcXml 'inv-google-1' 'Google' @(
        @{ Ip = '127.0.0.1'; Count = 120; Disposition = 'none'; Dkim = 'pass'; Spf = 'pass'; DkimDomain = 'corp.test'; Selector = 'mailops'; DkimResult = 'pass'; SpfDomain = 'corp.test'; SpfResult = 'pass' }
        @{ Ip = '127.0.0.2'; Count = 40; Disposition = 'none'; Dkim = 'pass'; Spf = 'fail'; DkimDomain = 'corp.test'; Selector = 'mailops'; DkimResult = 'pass'; SpfDomain = 'corp.test'; SpfResult = 'softfail' }
        @{ Ip = '127.0.4.1'; Count = 500; Disposition = 'none'; Dkim = 'pass'; Spf = 'fail'; DkimDomain = 'corp.test'; Selector = 's1'; DkimResult = 'pass'; SpfDomain = 'bounces.sendgrid.net'; SpfResult = 'pass' }
    )
    $yahoo = New-DmarcXml 'inv-yahoo-1' 'Yahoo' @(
        @{ Ip = '127.0.5.1'; Count = 300; Disposition = 'quarantine'; Dkim = 'fail'; Spf = 'fail'; DkimDomain = 'mcsv.net'; Selector = 'k1'; DkimResult = 'pass'; SpfDomain = 'mail1.mcsv.net'; SpfResult = 'pass' }
        @{ Ip = '203.0.113.9'; Count = 15; Disposition = 'quarantine'; Dkim = 'fail'; Spf = 'fail'; DkimDomain = 'corp.test'; Selector = 'mailops'; DkimResult = 'fail'; SpfDomain = 'corp.test'; SpfResult = 'fail' }
        @{ Ip = '127.0.4.1'; Count = 80; Disposition = 'none'; Dkim = 'pass'; Spf = 'fail'; DkimDomain = 'corp.test'; Selector = 's1'; DkimResult = 'pass'; SpfDomain = 'bounces.sendgrid.net'; SpfResult = 'pass' }
    )
    $script:Reports = Join-Path $script:Dir 'reports'
    New-Item -ItemType Directory $script:Reports | Out-Null
    # Google sends gzip, Yahoo sends zip (as they do)
    $gz = Join-Path $script:Reports 'google.com!corp.test!1!2!inv-google-1.xml.gz'
    $fs = [IO.File]::Create($gz); $z = [IO.Compression.GZipStream]::new($fs, [IO.Compression.CompressionLevel]::Optimal)
    $b = [Text.Encoding]::UTF8.GetBytes($google); $z.Write($b, 0, $b.Length); $z.Dispose(); $fs.Dispose()
    $zip = Join-Path $script:Reports 'yahoo.com!corp.test!1!2.zip'
    $xml = Join-Path $script:Dir 'yahoo.com!corp.test!1!2.xml'
    Set-Content -LiteralPath $xml -Value $yahoo -NoNewline
    Compress-Archive -LiteralPath $xml -DestinationPath $zip
    $out = & swaks -s 127.0.0.1 -p $primary -f 'noreply-dmarc@google.test' -t 'dmarc-reports@sink.test' --h-Subject 'Report domain: corp.test Submitter: google.com Report-ID: inv-google-1' --attach-type application/gzip --attach $gz 2>&1
    if (-not ($out -match 'queued as')) { throw "could not mail the gzip report`n$($out -join "`n")" }
    $out = & swaks -s 127.0.0.1 -p $primary -f 'noreply-dmarc@yahoo.test' -t 'dmarc-reports@sink.test' --h-Subject 'Report Domain: corp.test Submitter: yahoo.com Report-ID: <inv-yahoo-1>' --attach-type application/zip --attach $zip 2>&1
    if (-not ($out -match 'queued as')) { throw "could not mail the zip report`n$($out -join "`n")" }

    # wait until both relays logged the deliveries (the secondary hands sink.test to the primary)
    $deadline = [DateTime]::UtcNow.AddSeconds(30)
    do {
        Start-Sleep -Milliseconds 300
        $plog = Get-Content -Raw $script:Lab.smtp.primary.log
        $slog = Get-Content -Raw $script:Lab.smtp.secondary.log
        $ready = ([regex]::Matches($plog, 'to=<customer\d@sink\.test>.*status=sent').Count -ge 3) -and ([regex]::Matches($slog, 'to=<client\d@sink\.test>.*status=sent').Count -ge 2) -and
            ([regex]::Matches($plog, 'to=<dmarc-reports@sink\.test>.*status=sent').Count -ge 2)
    } until ($ready -or [DateTime]::UtcNow -gt $deadline)
    if (-not $ready) { throw 'the lab did not deliver the inventory test mail within 30 s' }

    $script:Inv = @(Get-EmailFlowInventory -ConfigPath $script:Config -IncludeLogs -Since $script:Start @script:Imap)
    function Find-Flow([string]$Name) { $script:Inv | Where-Object Name -eq $Name }
}

AfterAll {
    Remove-Item -Recurse -Force -LiteralPath $script:Dir -ErrorAction SilentlyContinue
}

Describe 'Get-EmailFlowInventory against the lab' {
    It 'finds the CRM nobody declared (logs and DMARC reports) as a shadow flow through the primary' {
        $crm = Find-Flow 'undeclared: corp.test via relay primary'
        $crm | Should -Not -BeNullOrEmpty
        $crm.Status | Should -Be 'Shadow'
        $crm.SeenSenders.Address | Should -Contain 'crm@corp.test'
        ($crm.SeenSenders | Where-Object Address -eq 'crm@corp.test').Messages | Should -Be 3
        ($crm.SeenSenders[0].Clients -join ' ') | Should -Match '\[127\.0\.0\.1\]'   # Postfix's name[address]
        $crm.DmarcSources.Address.IPAddressToString | Should -Contain '127.0.0.1'
        $crm.Findings.Code | Should -Contain 'ShadowFlow'
        $crm.SpfAuthorised | Should -BeTrue   # the primary's address is in corp.test's SPF (three levels down)
    }

    It 'names the marketing service in the DMARC reports by PTR and finds it undeclared and failing alignment' {
        $mc = Find-Flow 'undeclared: corp.test via Mailchimp'
        $mc | Should -Not -BeNullOrEmpty
        $mc.Status | Should -Be 'Shadow'
        $mc.DmarcSources[0].Ptr | Should -Be 'mail1.suw91.mcsv.net'
        $mc.DmarcMessages | Should -Be 300
        $mc.Findings.Code | Should -Contain 'ShadowFlow'
        $f = $mc.Findings | Where-Object Code -eq 'DmarcAlignmentFailing'
        $f.Severity | Should -Be 'High'     # the receivers quarantined it
        $f.Message | Should -Match 'mcsv\.net'
    }

    It 'reports the source nothing names as unknown senders' {
        $u = Find-Flow 'unknown senders as corp.test'
        $u.DmarcSources.Address.IPAddressToString | Should -Be @('203.0.113.9')
        ($u.Findings | Where-Object Code -eq 'UnknownSource').Severity | Should -Be 'High'
    }

    It 'finds the declared invoices flow sending from an address SPF does not authorise' {
        $inv = Find-Flow 'corp-invoices'
        $inv.Status | Should -Be 'Active'
        $inv.SeenSenders.Address | Should -Contain 'billing@corp.test'
        $inv.SeenSenders[0].Relays | Should -Be @('secondary')   # the secondary hands sink.test to the primary: counted once
        $inv.SeenSenders[0].Messages | Should -Be 2
        $inv.SpfAuthorised | Should -BeFalse
        $f = $inv.Findings | Where-Object Code -eq 'SpfNotAuthorised'
        $f.Message | Should -Match '127\.0\.0\.2'
        $f.Severity | Should -Be 'Warning'  # its DKIM key keeps DMARC aligned
        ($inv.DmarcSources | Measure-Object Messages -Sum).Sum | Should -Be 40
    }

    It 'sees the ESP flow in the DMARC reports, authorised by its SPF include and its DKIM selector' {
        $nl = Find-Flow 'corp-newsletter'
        $nl.Status | Should -Be 'Active'
        $nl.Service | Should -Be 'SendGrid'
        $nl.DmarcMessages | Should -Be 580
        $nl.DmarcPassRate | Should -Be 1
        $nl.SpfAuthorised | Should -BeTrue
        $nl.DkimPublished | Should -BeTrue
        $nl.DkimEvidence | Should -Match 's1'
        $nl.Findings.Code | Should -Not -Contain 'EspNotAuthorised'
        $nl.DmarcSources[0].Ptr | Should -Be 'o1.ptr4001.sendgrid.net'
    }

    It 'says a declared flow nobody saw is silent, and its domain''s SPF needs more than ten lookups' {
        $lg = Find-Flow 'legacy-alerts'
        $lg.Status | Should -Be 'Silent'
        $lg.Findings.Code | Should -Contain 'DeclaredSilent'
        $f = $lg.Findings | Where-Object Code -eq 'SpfOverLookupLimit'
        $f.Severity | Should -Be 'High'
        $lg.Authorisation[0].Spf.DnsLookups | Should -BeGreaterThan 10
        $lg.Findings.Code | Should -Contain 'DmarcPolicyNone'
        $lg.Findings.Code | Should -Contain 'DmarcNoReports'
    }

    It 'flags an automated sender hiding in the person-to-person flow' {
        $staff = Find-Flow 'staff'
        $staff.Status | Should -Be 'Active'
        $f = @($staff.Findings | Where-Object Code -eq 'PossibleShadowFlow')
        $f.Count | Should -Be 1
        $f[0].Message | Should -Match 'noreply@lab\.test'
        $staff.SeenSenders.Address | Should -Contain 'anna@lab.test'
    }

    It 'reads the corp.test SPF tree: nested includes, services named, lookups counted' {
        $a = (Find-Flow 'corp-newsletter').Authorisation | Where-Object Domain -eq 'corp.test'
        $a.Spf.DnsLookups | Should -Be 5
        $a.AuthorisedServices | Should -Contain 'SendGrid'
        $a.AuthorisedServices | Should -Contain 'Mailchimp'
        $a.DkimSelectors | Should -Contain 's1'
        $a.DkimSelectors | Should -Contain 'mailops'
        $a.Dmarc.Record.P | Should -Be 'quarantine'
    }

    It 'lists a service SPF authorises but nobody declared or saw when no reports are read' {
        $only = @(Get-EmailFlowInventory -ConfigPath $script:Config -Domain corp.test)
        $mc = $only | Where-Object Name -eq 'authorised only: Mailchimp for corp.test'
        $mc.Status | Should -Be 'AuthorisedOnly'
        $mc.Findings.Code | Should -Be 'AuthorisedUnused'
        # nothing was read: declared flows are NotObserved, never Silent
        ($only | Where-Object Name -eq 'corp-invoices').Status | Should -Be 'NotObserved'
        $only.Name | Should -Not -Contain 'legacy-alerts'
    }

    It 'takes reports from Get-DmarcReport through the pipeline and from files, with the same figures' {
        $piped = @(Get-DmarcReport -Path $script:Reports | Get-EmailFlowInventory -ConfigPath $script:Config -Domain corp.test)
        $files = @(Get-EmailFlowInventory -ConfigPath $script:Config -Domain corp.test -DmarcReports $script:Reports)
        foreach ($set in $piped, $files) {
            ($set | Where-Object Name -eq 'corp-newsletter').DmarcMessages | Should -Be 580
            ($set | Where-Object Name -eq 'undeclared: corp.test via Mailchimp').DmarcMessages | Should -Be 300
        }
    }

    It 'sees MailOps'' own send jobs in the journal when the relay''s log is not readable, and counts a job once when it is' {
        $cfg = Join-Path $script:Dir 'journal.yaml'
        (Get-Content -Raw $script:Config).Replace("    log: $($script:Lab.smtp.secondary.log)`n", '') | Set-Content $cfg
        (Get-Content -Raw $cfg) | Should -Not -Match ([regex]::Escape($script:Lab.smtp.secondary.log))
        $cred = [pscredential]::new($script:Lab.sasl.user, (ConvertTo-SecureString $script:Lab.sasl.password -AsPlainText -Force))
        $start = [DateTimeOffset]::UtcNow.AddSeconds(-1)
        $job = 1..2 | ForEach-Object { "digest$_@discard.test" } | Send-ViaSecondaryRelay -ConfigPath $cfg -From digest@corp.test -Subject 'Weekly digest' -TextBody 'Hello' -Credential $cred -JobName inventory-digest
        $job.Sent | Should -Be 2
        $r = @(Get-EmailFlowInventory -ConfigPath $cfg -Domain corp.test -IncludeLogs -Since $start)
        $digest = $r | Where-Object Name -eq 'undeclared: corp.test via relay secondary'
        $digest.SeenSenders.Address | Should -Be @('digest@corp.test')
        $digest.SeenSenders[0].Clients | Should -Be @('mailops')
        $digest.SeenSenders[0].Messages | Should -Be 2
        # with the secondary's log readable the same job is counted from the log, not twice
        $deadline = [DateTime]::UtcNow.AddSeconds(20)
        do { Start-Sleep -Milliseconds 300 } until (([regex]::Matches((Get-Content -Raw $script:Lab.smtp.secondary.log), 'to=<digest\d@discard\.test>').Count -ge 2) -or [DateTime]::UtcNow -gt $deadline)
        $both = @(Get-EmailFlowInventory -ConfigPath $script:Config -Domain corp.test -IncludeLogs -Since $start)
        (($both | Where-Object Name -eq 'undeclared: corp.test via relay secondary').SeenSenders | Where-Object Address -eq 'digest@corp.test').Messages | Should -Be 2
    }

    It 'gives unknown, never no, when DNS does not answer' {
        $dead = Join-Path $script:Dir 'dead-dns.yaml'
        (Get-Content -Raw $script:Config) -replace "servers: \['127\.0\.0\.1:\d+'\]", "servers: ['127.0.0.1:9']" -replace 'timeoutSeconds: 2', 'timeoutSeconds: 1' | Set-Content $dead
        $r = @(Get-EmailFlowInventory -ConfigPath $dead -Domain corp.test)
        $inv = $r | Where-Object Name -eq 'corp-invoices'
        $inv.SpfAuthorised | Should -BeNullOrEmpty
        $inv.Findings.Code | Should -Contain 'SpfUnknown'
        $inv.Findings.Code | Should -Not -Contain 'SpfNotAuthorised'
        $inv.Findings.Code | Should -Not -Contain 'SpfMissing'
        $inv.Findings.Code | Should -Not -Contain 'DmarcMissing'
        $inv.DkimPublished | Should -BeNullOrEmpty
    }
}

Describe 'Export-EmailFlowInventory' {
    It 'writes an HTML page that a browser shows with the shadow flows and the actions' {
        $html = Join-Path $script:Dir 'inventory.html'
        $file = $script:Inv | Export-EmailFlowInventory -Path $html -Title 'Corp mail flows'
        $file.FullName | Should -Be $html
        $pdf = Join-Path $script:Dir 'inventory.pdf'
        $null = & chromium --headless --no-sandbox --disable-gpu --no-pdf-header-footer "--user-data-dir=$($script:Dir)/chromium" "--print-to-pdf=$pdf" "file://$html" 2>&1
        Test-Path $pdf | Should -BeTrue
        $text = (& pdftotext -layout $pdf - 2>&1) -join "`n"
        $text | Should -Match 'Corp mail flows'
        $text | Should -Match 'Shadow flows'
        $text | Should -Match 'undeclared: corp\.test via Mailchimp'
        $text | Should -Match 'corp-invoices'
        $text | Should -Match 'SpfNotAuthorised'
        $text | Should -Match 'mail1\.suw91\.mcsv\.net'
        $text | Should -Match 'Declare the flow'
        $text | Should -Not -Match '<td>|&lt;|&amp;'
    }

    It 'writes CSV and JSON with one entry per flow' {
        $csv = Join-Path $script:Dir 'inventory.csv'
        $json = Join-Path $script:Dir 'inventory.json'
        $script:Inv | Export-EmailFlowInventory -Path $csv | Out-Null
        $script:Inv | Export-EmailFlowInventory -Path $json | Out-Null
        $rows = Import-Csv $csv
        $rows.Count | Should -Be $script:Inv.Count
        ($rows | Where-Object Name -eq 'corp-invoices').SpfAuthorised | Should -Be 'False'
        $doc = Get-Content -Raw $json | ConvertFrom-Json
        $doc.flows.Count | Should -Be $script:Inv.Count
        ($doc.flows | Where-Object name -eq 'undeclared: corp.test via Mailchimp').dmarcSources[0].ptr | Should -Be 'mail1.suw91.mcsv.net'
        ($doc.domains | Where-Object domain -eq 'legacy.test').spfOverLookupLimit | Should -BeTrue
    }

    It 'keeps an existing file unless -Force, writes nothing with -WhatIf, and refuses an unknown format' {
        $csv = Join-Path $script:Dir 'keep.csv'
        'keep' | Set-Content $csv
        { $script:Inv | Export-EmailFlowInventory -Path $csv -ErrorAction Stop } | Should -Throw -ErrorId 'ExportFileExists,MailOps.PowerShell.Commands.ExportEmailFlowInventoryCommand'
        Get-Content $csv | Should -Be 'keep'
        $script:Inv | Export-EmailFlowInventory -Path $csv -Force -WhatIf
        Get-Content $csv | Should -Be 'keep'
        $script:Inv | Export-EmailFlowInventory -Path $csv -Force | Out-Null
        (Import-Csv $csv).Count | Should -Be $script:Inv.Count
        { $script:Inv | Export-EmailFlowInventory -Path (Join-Path $script:Dir 'x.txt') -ErrorAction Stop } | Should -Throw -ErrorId 'UnknownExportFormat,MailOps.PowerShell.Commands.ExportEmailFlowInventoryCommand'
    }
}

Describe 'Get-EmailFlowInventory bad input' {
    It 'refuses what is not a domain, with the domain as target' {
        $e = $null
        Get-EmailFlowInventory -ConfigPath $script:Config -Domain 'not a domain' -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
        $e[0].FullyQualifiedErrorId | Should -Be 'InvalidDomain,MailOps.PowerShell.Commands.GetEmailFlowInventoryCommand'
        $e[0].TargetObject | Should -Be 'not a domain'
    }

    It 'reports a missing DMARC report path and an unknown flow, and goes on' {
        $e = $null
        $r = @(Get-EmailFlowInventory -ConfigPath $script:Config -Domain corp.test -DmarcReports (Join-Path $script:Dir 'nope') -Flow corp-invoices, no-such-flow -ErrorVariable e -ErrorAction SilentlyContinue)
        $e.FullyQualifiedErrorId | Should -Contain 'DmarcReportNotFound,MailOps.PowerShell.Commands.GetEmailFlowInventoryCommand'
        $e.FullyQualifiedErrorId | Should -Contain 'FlowNotFound,MailOps.PowerShell.Commands.GetEmailFlowInventoryCommand'
        ($r | Where-Object Declared).Name | Should -Be @('corp-invoices')
    }

    It 'reports a broken DMARC report by name and still reads the others' {
        $mixed = Join-Path $script:Dir 'mixed'
        New-Item -ItemType Directory $mixed | Out-Null
        Copy-Item (Join-Path $script:Reports '*') $mixed
        '<feedback><report_metadata>' | Set-Content (Join-Path $mixed 'broken.xml')
        $e = $null
        $r = @(Get-EmailFlowInventory -ConfigPath $script:Config -Domain corp.test -DmarcReports $mixed -ErrorVariable e -ErrorAction SilentlyContinue)
        $e.Count | Should -Be 1
        $e[0].TargetObject | Should -Match 'broken\.xml'
        ($r | Where-Object Name -eq 'corp-newsletter').DmarcMessages | Should -Be 580
    }
}
