# Get-DmarcReport: the DMARC corpora read by path (skipped, saying so, when the corpora are absent), bad input, Ctrl+C,
# and two reports written here (one gzip, one zip attachment) mailed through the lab's primary Postfix to the sink
# mailbox and read back from the lab's Dovecot over IMAP.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Get-TestModulePath) -Force
    $script:Lab = Get-Lab
    $script:Dir = New-TestFolder
    $script:Dmarc = Find-Corpus 'dmarc'
    $script:Missing = "CORPUS MISSING: dmarc not found (MAILOPS_CORPORA or shared/corpora above $PSScriptRoot). This test did not run."
    $script:Tag = [Guid]::NewGuid().ToString('N').Substring(0, 8)

    function New-ReportXml([string]$Org, [string]$Id, [object[]]$Rows) {
        $records = foreach ($r in $Rows) {
            @"
  <record>
    <row><source_ip>$($r[0])</source_ip><count>$($r[1])</count>
      <policy_evaluated><disposition>$($r[2])</disposition><dkim>$($r[3])</dkim><spf>$($r[4])</spf></policy_evaluated></row>
    <identifiers><header_from>lab.test</header_from><envelope_from>lab.test</envelope_from></identifiers>
    <auth_results><dkim><domain>lab.test</domain><selector>mailops</selector><result>$($r[3])</result></dkim>
      <spf><domain>lab.test</domain><scope>mfrom</scope><result>$($r[4])</result></spf></auth_results>
  </record>
"@
        }
        @"
<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata><org_name>$Org</org_name><email>dmarc@$Org</email><report_id>$Id</report_id>
    <date_range><begin>1767225600</begin><end>1767311999</end></date_range></report_metadata>
  <policy_published><domain>lab.test</domain><adkim>r</adkim><aspf>r</aspf><p>reject</p><sp>reject</sp><pct>100</pct></policy_published>
$($records -join "`n")
</feedback>
"@
    }

    function Write-Gzip([string]$Path, [string]$Text) {
        $bytes = [Text.Encoding]::UTF8.GetBytes($Text)
        $fs = [IO.File]::Create($Path)
        try { $gz = [IO.Compression.GZipStream]::new($fs, [IO.Compression.CompressionLevel]::Optimal); $gz.Write($bytes, 0, $bytes.Length); $gz.Dispose() } finally { $fs.Dispose() }
    }

    function Write-Zip([string]$Path, [string]$EntryName, [string]$Text) {
        $fs = [IO.File]::Create($Path)
        try {
            $zip = [IO.Compression.ZipArchive]::new($fs, [IO.Compression.ZipArchiveMode]::Create)
            $w = [IO.StreamWriter]::new($zip.CreateEntry($EntryName).Open(), [Text.UTF8Encoding]::new($false))
            $w.Write($Text); $w.Dispose(); $zip.Dispose()
        }
        finally { $fs.Dispose() }
    }
}

AfterAll {
    Remove-Item -Recurse -Force $script:Dir -ErrorAction SilentlyContinue
}

Describe 'Get-DmarcReport from files' {
    It 'reads every aggregate sample of parsedmarc, one report each, and warns about the two it had to repair' {
        if (-not $script:Dmarc) { Set-ItResult -Skipped -Because $script:Missing; return }
        $warnings = $null
        $r = @(Get-DmarcReport -Path (Join-Path $script:Dmarc 'parsedmarc/samples/aggregate') -WarningVariable warnings -WarningAction SilentlyContinue)
        $r.Count | Should -Be 19
        $r[0].PSObject.TypeNames[0] | Should -Be 'MailOps.Core.Dmarc.DmarcAggregateReport'
        @($warnings).Count | Should -Be 2
        ($warnings -join "`n") | Should -Match 'invalid_xml\.xml: the XML is not well-formed \(line 5'
        ($warnings -join "`n") | Should -Match 'invalid_utf_8\.xml: .*U\+FFFD'
        $sample = $r | Where-Object ReportId -eq '3v98abbp8ya9n3va8yr8oa3ya'
        $sample.OrgName | Should -Be 'Sample Reporter'
        $sample.Records.Count | Should -Be 1
        $sample.Records[0].Count | Should -Be 123
        $sample.Records[0].SourceIp.ToString() | Should -Be '192.0.2.123'
        $sample.Records[0].Disposition | Should -Be 'pass'
        $sample.Records[0].PolicyDkim | Should -Be 'pass'
        $sample.Records[0].PolicySpf | Should -Be 'fail'
        ($r | Measure-Object MessageCount -Sum).Sum | Should -Be 2435
    }

    It 'takes Get-ChildItem input and wildcards, and reads gzip and zip like XML' {
        if (-not $script:Dmarc) { Set-ItResult -Skipped -Because $script:Missing; return }
        $dir = Join-Path $script:Dmarc 'parsedmarc/samples/extract_report'
        @(Get-ChildItem $dir | Get-DmarcReport).Count | Should -Be 4
        $three = @(Get-DmarcReport -Path (Join-Path $dir 'nice-input.*'))
        $three.Count | Should -Be 3
        ($three.MessageCount | Sort-Object -Unique) | Should -Be 3047
        ($three.SourceName | Where-Object { $_ -like '*.zip#*' }) | Should -Not -BeNullOrEmpty
    }

    It 'outputs one record per row with -Expand, each carrying its report' {
        if (-not $script:Dmarc) { Set-ItResult -Skipped -Because $script:Missing; return }
        $records = @(Get-DmarcReport -Path (Join-Path $script:Dmarc 'parsedmarc/samples/aggregate/!large-example.com!1711897200!1711983600.xml') -Expand)
        $records.Count | Should -Be 2286
        $records[0].PSObject.TypeNames[0] | Should -Be 'MailOps.Core.Dmarc.DmarcReportRecord'
        ($records | Measure-Object Count -Sum).Sum | Should -Be 2286
        ($records.ReportId | Sort-Object -Unique) | Should -Be 'example.com:1711897200'
        ($records.PolicyDomain | Sort-Object -Unique) | Should -Be 'example.com'
        $records[0].DateBegin.ToUnixTimeSeconds() | Should -Be 1711897200
        ($records | Out-String) | Should -Match 'SourceIp\s+Count\s+Disposition'
    }

    It 'gives DmarcReportUnreadable for a missing file, DmarcReportInvalid for broken XML, and reads the rest' {
        $good = Join-Path $script:Dir 'good.xml'
        New-ReportXml 'files.test' "good-$($script:Tag)" @(, @('192.0.2.1', 4, 'none', 'pass', 'pass')) | Set-Content $good
        $broken = Join-Path $script:Dir 'broken.xml'
        (New-ReportXml 'files.test' 'broken' @(, @('192.0.2.1', 4, 'none', 'pass', 'pass'))) -replace '</row>', '</rows>' | Set-Content $broken
        $missing = Join-Path $script:Dir 'missing.xml'
        $errs = $null
        $r = @(Get-DmarcReport -Path $missing, $broken, $good -ErrorVariable errs -ErrorAction SilentlyContinue)
        $r.Count | Should -Be 1
        $r[0].MessageCount | Should -Be 4
        $errs.Count | Should -Be 2
        $errs[0].FullyQualifiedErrorId | Should -Be 'DmarcReportUnreadable,MailOps.PowerShell.Commands.GetDmarcReportCommand'
        $errs[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $errs[0].TargetObject | Should -Be $missing
        $errs[1].FullyQualifiedErrorId | Should -Be 'DmarcReportInvalid,MailOps.PowerShell.Commands.GetDmarcReportCommand'
        $errs[1].CategoryInfo.Category | Should -Be 'InvalidData'
        $errs[1].TargetObject | Should -Be $broken
        $errs[1].Exception.Message | Should -Match 'not well-formed XML at line \d+, column \d+'
        $errs[1].Exception.LineNumber | Should -BeGreaterThan 0
        { Get-DmarcReport -Path $broken -ErrorAction Stop } | Should -Throw -ErrorId 'DmarcReportInvalid,MailOps.PowerShell.Commands.GetDmarcReportCommand'
        { Get-DmarcReport -Path (Join-Path $script:Dir 'nothing-*.xml') -ErrorAction Stop } | Should -Throw -ErrorId 'DmarcReportUnreadable,MailOps.PowerShell.Commands.GetDmarcReportCommand'
    }

    It 'stops promptly when the pipeline is stopped (Ctrl+C)' {
        $many = Join-Path $script:Dir 'many'
        New-Item -ItemType Directory $many | Out-Null
        $rows = foreach ($i in 1..200) { , @("10.0.$([math]::Floor($i / 250)).$($i % 250)", 1, 'none', 'pass', 'fail') }
        $xml = New-ReportXml 'many.test' 'many' $rows
        foreach ($i in 1..1500) { Write-Gzip (Join-Path $many "r$i.xml.gz") $xml }
        $ps = [powershell]::Create()
        try {
            [void]$ps.AddScript("Import-Module '$(Get-TestModulePath)'; Get-DmarcReport -Path '$many' -Expand")
            $out = [System.Management.Automation.PSDataCollection[psobject]]::new()
            $handle = $ps.BeginInvoke([System.Management.Automation.PSDataCollection[psobject]]::new(), $out)
            $deadline = (Get-Date).AddSeconds(60)
            while ($out.Count -lt 1000 -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 50 }
            $out.Count | Should -BeGreaterThan 0
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $ps.Stop()
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 5
            $handle.IsCompleted | Should -BeTrue
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            $out.Count | Should -BeLessThan (1500 * 200)
        }
        finally { $ps.Dispose() }
    }
}

Describe 'Get-DmarcReport over IMAP (the lab''s Dovecot)' {
    BeforeAll {
        $script:Cred = [pscredential]::new($script:Lab.imap.user, (ConvertTo-SecureString $script:Lab.imap.password -AsPlainText -Force))
        $script:GzId = "pester-$($script:Tag)-gz"
        $script:ZipId = "pester-$($script:Tag)-zip"
        $gz = Join-Path $script:Dir "receiver.test!lab.test!1767225600!1767311999!$($script:GzId).xml.gz"
        Write-Gzip $gz (New-ReportXml 'receiver.test' $script:GzId @(@('192.0.2.10', 12, 'none', 'pass', 'pass'), @('198.51.100.7', 3, 'reject', 'fail', 'fail')))
        $zip = Join-Path $script:Dir "other.test!lab.test!1767225600!1767311999!$($script:ZipId).zip"
        Write-Zip $zip "other.test!lab.test!1767225600!1767311999!$($script:ZipId).xml" (New-ReportXml 'other.test' $script:ZipId @(, @('203.0.113.9', 5, 'quarantine', 'fail', 'pass')))
        $newDir = Join-Path $script:Lab.imap.maildir 'new'
        foreach ($m in @(@{ Id = $script:GzId; File = $gz; Type = 'application/gzip' }, @{ Id = $script:ZipId; File = $zip; Type = 'application/zip' })) {
            $out = & swaks -s 127.0.0.1 -p $script:Lab.smtp.primary.port -f noreply-dmarc@receiver.test -t rua@sink.test `
                --h-Subject "Report domain: lab.test Submitter: receiver.test Report-ID: $($m.Id)" --body 'This is a DMARC aggregate report.' `
                --attach-type $m.Type --attach "@$($m.File)" 2>&1
            if ($LASTEXITCODE -ne 0) { throw "swaks could not send $($m.Id): $($out -join "`n")" }
        }
        $deadline = (Get-Date).AddSeconds(60)
        do {
            Start-Sleep -Milliseconds 300
            $arrived = @(Get-ChildItem $newDir, (Join-Path $script:Lab.imap.maildir 'cur') -File -ErrorAction SilentlyContinue |
                    Where-Object { [IO.File]::ReadAllText($_.FullName) -match "Report-ID: pester-$($script:Tag)-" })
        } until ($arrived.Count -ge 2 -or (Get-Date) -gt $deadline)
        $script:Arrived = $arrived.Count
    }

    It 'reads the gzip and the zip report back with their figures, leaving the mailbox as it was' {
        $script:Arrived | Should -Be 2
        $before = @(Get-ChildItem "$($script:Lab.imap.maildir)/new", "$($script:Lab.imap.maildir)/cur" -File).Count
        $all = @(Get-DmarcReport -ImapServer 127.0.0.1 -ImapPort $script:Lab.imap.port -ImapSecurity None -AllowAuthWithoutTls -ImapCredential $script:Cred)
        $mine = @($all | Where-Object ReportId -like "pester-$($script:Tag)-*" | Sort-Object ReportId)
        $mine.Count | Should -Be 2
        $gz = $mine[0]
        $gz.ReportId | Should -Be $script:GzId
        $gz.OrgName | Should -Be 'receiver.test'
        $gz.Records.Count | Should -Be 2
        $gz.MessageCount | Should -Be 15
        $gz.FailingMessageCount | Should -Be 3
        $gz.Records[1].Disposition | Should -Be 'reject'
        $gz.SourceName | Should -Match "^imap://127\.0\.0\.1:\d+/INBOX#\d+#receiver\.test!.*\.xml\.gz$"
        $zip = $mine[1]
        $zip.ReportId | Should -Be $script:ZipId
        $zip.Records[0].SourceIp.ToString() | Should -Be '203.0.113.9'
        $zip.Records[0].Count | Should -Be 5
        $zip.Records[0].Disposition | Should -Be 'quarantine'
        $zip.Records[0].SpfAligned | Should -BeTrue
        $zip.Records[0].DkimAligned | Should -BeFalse
        $zip.SourceName | Should -Match '\.zip#other\.test!.*\.xml$'
        $zip.DateBegin | Should -Be ([DateTimeOffset]::FromUnixTimeSeconds(1767225600))
        @(Get-ChildItem "$($script:Lab.imap.maildir)/new", "$($script:Lab.imap.maildir)/cur" -File).Count | Should -Be $before
    }

    It 'expands records and moves only the messages that carried a report, deleting nothing' {
        $inbox = { @(Get-ChildItem "$($script:Lab.imap.maildir)/new", "$($script:Lab.imap.maildir)/cur" -File -ErrorAction SilentlyContinue) }
        $done = Join-Path $script:Lab.imap.maildir '.DmarcDone'
        $before = (& $inbox).Count
        $verbose = $null
        $records = @(Get-DmarcReport -ImapServer 127.0.0.1 -ImapPort $script:Lab.imap.port -ImapSecurity None -AllowAuthWithoutTls -ImapCredential $script:Cred `
                -MoveProcessedTo DmarcDone -Expand -Verbose 4>&1 | Tee-Object -Variable verbose | Where-Object { $_.PSObject.TypeNames[0] -eq 'MailOps.Core.Dmarc.DmarcReportRecord' })
        $mine = @($records | Where-Object ReportId -like "pester-$($script:Tag)-*")
        $mine.Count | Should -Be 3
        ($mine | Measure-Object Count -Sum).Sum | Should -Be 20
        ($mine | Where-Object SourceIp -eq '198.51.100.7').OrgName | Should -Be 'receiver.test'
        ($verbose | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] } | Out-String) | Should -Match 'moved to ''DmarcDone'''
        $moved = @(Get-ChildItem "$done/new", "$done/cur" -File -ErrorAction SilentlyContinue)
        @($moved | Where-Object { [IO.File]::ReadAllText($_.FullName) -match "Report-ID: pester-$($script:Tag)-" }).Count | Should -Be 2
        ((& $inbox).Count + $moved.Count) | Should -Be $before
        @(& $inbox | Where-Object { [IO.File]::ReadAllText($_.FullName) -match "Report-ID: pester-$($script:Tag)-" }).Count | Should -Be 0
        # and they are read from the folder they were moved to
        @(Get-DmarcReport -ImapServer 127.0.0.1 -ImapPort $script:Lab.imap.port -ImapSecurity None -AllowAuthWithoutTls -ImapCredential $script:Cred -ImapFolder DmarcDone |
                Where-Object ReportId -like "pester-$($script:Tag)-*").Count | Should -Be 2
    }

    It 'refuses to send the IMAP password in clear unless told (ImapSourceFailed)' {
        { Get-DmarcReport -ImapServer 127.0.0.1 -ImapPort $script:Lab.imap.port -ImapSecurity None -ImapCredential $script:Cred -ErrorAction Stop } |
            Should -Throw -ErrorId 'ImapSourceFailed,MailOps.PowerShell.Commands.GetDmarcReportCommand'
    }
}
