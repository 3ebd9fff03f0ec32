# Import-Bounce, Get-Bounce and Export-Bounce against real bounces of the lab's Postfix, its Dovecot (IMAP), its
# Postfix log, and the lab's PostgreSQL; each test run uses a store of its own.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Get-TestModulePath) -Force
    $script:Lab = Get-Lab
    $script:Dir = New-TestFolder
    $script:Config = Join-Path $script:Dir 'mailops.yaml'
    "version: 1`nstore:`n  provider: sqlite`n  path: '$($script:Dir)/store.db'`nflows:`n  - name: newsletter`n    kind: Campaign`n" | Set-Content $script:Config
    $script:Saved = $env:MAILOPS_CONFIG
    $env:MAILOPS_CONFIG = $script:Config

    # real bounces: unknown user and mailbox full at the secondary, refused connection
    $newDir = Join-Path $script:Lab.imap.maildir 'new'
    $before = @(Get-ChildItem $newDir -File -ErrorAction SilentlyContinue).Name
    foreach ($c in @(@('unknown', 'ghost@remote.test'), @('full', 'over@remote.test'), @('refused', 'bob@refused.test'))) {
        & swaks -s 127.0.0.1 -p $script:Lab.smtp.primary.port -f "mailops+import-$($c[0])@sink.test" -t $c[1] --h-Subject "import case $($c[0])" 2>&1 | Out-Null
    }
    $deadline = (Get-Date).AddSeconds(60)
    do {
        Start-Sleep -Milliseconds 500
        $script:Dsns = @(Get-ChildItem $newDir -File | Where-Object Name -notin $before | Where-Object { (Get-Content -Raw $_.FullName) -match 'mailops\+import-' -and (Get-Content -Raw $_.FullName) -match 'multipart/report' })
    } until ($script:Dsns.Count -ge 3 -or (Get-Date) -gt $deadline)
    $script:DsnDir = Join-Path $script:Dir 'dsns'
    New-Item -ItemType Directory $script:DsnDir | Out-Null
    $script:Dsns | Copy-Item -Destination $script:DsnDir
}

AfterAll {
    $env:MAILOPS_CONFIG = $script:Saved
    Remove-Item -Recurse -Force $script:Dir -ErrorAction SilentlyContinue
}

Describe 'Import-Bounce' {
    It 'imports a folder of real DSNs once, and a second import adds nothing' {
        $script:Dsns.Count | Should -Be 3
        $first = Import-Bounce -Path $script:DsnDir -Flow newsletter
        $first.PSObject.TypeNames[0] | Should -Be 'MailOps.PowerShell.Commands.BounceImportSummary'
        $first.Read | Should -Be 3
        $first.Added | Should -Be 3
        $first.Suppressed | Should -Be 1          # only the unknown user is a hard bounce
        $again = Import-Bounce -Path $script:DsnDir -Flow newsletter
        $again.Added | Should -Be 0
        $again.Duplicates | Should -Be 3
    }

    It 'keeps what Get-Bounce can filter by reason, hardness, domain and flow' {
        (Get-Bounce -Hard).Address | Should -Be @('ghost@remote.test')
        (Get-Bounce -Hard).SuppressionState | Should -Be 'suppressed'
        (Get-Bounce -Reason mailboxfull).Address | Should -Be @('over@remote.test')
        @(Get-Bounce -Domain refused.test | Where-Object IsInfrastructureFailure).Count | Should -Be 1
        @(Get-Bounce -Flow newsletter).Count | Should -Be 3
        @(Get-Bounce -Since (Get-Date).AddHours(1)).Count | Should -Be 0
        @('ghost@remote.test' | Get-Bounce).Count | Should -Be 1
    }

    It 'reads an mbox, and reports a broken file without losing the others' {
        $mixed = Join-Path $script:Dir 'mixed'
        New-Item -ItemType Directory $mixed | Out-Null
        $mbox = ($script:Dsns | ForEach-Object { "From MAILER-DAEMON Wed Nov 25 01:00:00 2026`n" + ((Get-Content -Raw $_.FullName) -replace "`r`n", "`n" -replace '(?m)^From ', '>From ') + "`n" }) -join ''
        [IO.File]::WriteAllText((Join-Path $mixed 'bounces.mbox'), $mbox)
        [IO.File]::WriteAllBytes((Join-Path $mixed 'junk.bin'), [byte[]](0..255 + 0..255))
        $errs = $null
        $r = Import-Bounce -Path $mixed -ErrorVariable errs -ErrorAction SilentlyContinue -Verbose 4>$null
        $r.Read | Should -Be 3
        $r.Duplicates | Should -Be 3               # the same bounces as the folder: not counted twice
        ($r.Skipped + $r.Errors) | Should -BeGreaterOrEqual 1   # the junk file
    }

    It 'reads bounces over IMAP from Dovecot and moves them to another folder, deleting nothing' {
        $cred = [pscredential]::new($script:Lab.imap.user, (ConvertTo-SecureString $script:Lab.imap.password -AsPlainText -Force))
        $r = Import-Bounce -ImapServer 127.0.0.1 -ImapPort $script:Lab.imap.port -ImapSecurity None -AllowAuthWithoutTls -ImapCredential $cred -MoveProcessedTo Processed
        $r.Read | Should -BeGreaterOrEqual 3
        $r.Duplicates | Should -BeGreaterOrEqual 3   # the lab bounces already imported from files
        $processed = Join-Path $script:Lab.imap.maildir '.Processed'
        @(Get-ChildItem "$processed/cur", "$processed/new" -File -ErrorAction SilentlyContinue).Count | Should -BeGreaterOrEqual $r.Read
    }

    It 'refuses to send the IMAP password in clear unless told' {
        $cred = [pscredential]::new('sink', (ConvertTo-SecureString 'sinkpass' -AsPlainText -Force))
        { Import-Bounce -ImapServer 127.0.0.1 -ImapPort $script:Lab.imap.port -ImapSecurity None -ImapCredential $cred -ErrorAction Stop } |
            Should -Throw -ErrorId 'ImapSourceFailed,MailOps.PowerShell.Commands.ImportBounceCommand'
    }

    It 'reads the bounces of the primary''s Postfix log, with their times' {
        $r = Import-Bounce -LogPath $script:Lab.smtp.primary.log -PassThru
        $summary = $r | Where-Object { $_.PSObject.TypeNames[0] -like '*BounceImportSummary' }
        $records = $r | Where-Object { $_.PSObject.TypeNames[0] -like '*BounceRecord' }
        ($records | Where-Object Recipient -eq 'ghost@remote.test').Reason | Should -Contain 'userunknown'
        ($records | Where-Object Recipient -eq 'ghost@remote.test')[0].Source | Should -Match 'maillog:\d+$'
        $summary.Added | Should -BeGreaterOrEqual 1
    }

    It 'reads a SendGrid export and reports rows it cannot use' {
        $csv = Join-Path $script:Dir 'sendgrid.csv'
        "created,email,reason,status`n1763967600,carol@example.org,""550 5.1.1 The email account that you tried to reach does not exist"",5.1.1`n1763967601,,no address,5.1.1`n" | Set-Content $csv
        $errs = $null
        $r = Import-Bounce -CsvPath $csv -Format SendGrid -ErrorVariable errs -ErrorAction SilentlyContinue
        $r.Added | Should -Be 1
        $r.Errors | Should -Be 1
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'BounceSourceItemUnreadable,*'
        $errs[0].TargetObject | Should -Match 'sendgrid\.csv:3$'
        (Get-Bounce -Address carol@example.org).Reason | Should -Be 'userunknown'
    }

    It 'says which column is missing from a CSV' {
        $csv = Join-Path $script:Dir 'nocol.csv'
        "who,why`nx@example.org,gone`n" | Set-Content $csv
        $errs = $null
        Import-Bounce -CsvPath $csv -ErrorVariable errs -ErrorAction SilentlyContinue | Out-Null
        $errs[0].Exception.Message | Should -Match 'no address column'
        Import-Bounce -CsvPath $csv -ColumnMap @{ Address = 'who'; Diagnostic = 'why' } | ForEach-Object Added | Should -Be 1
    }

    It 'stores nothing with -WhatIf' {
        $before = @(Get-Bounce).Count
        $csv = Join-Path $script:Dir 'whatif.csv'
        "email,reason`nwhatif@example.org,550 5.1.1 user unknown`n" | Set-Content $csv
        Import-Bounce -CsvPath $csv -WhatIf | Out-Null
        @(Get-Bounce).Count | Should -Be $before
    }

    It 'works the same on the lab''s PostgreSQL store' {
        $pg = Join-Path $script:Dir 'pg.yaml'
        "version: 1`nstore:`n  provider: postgresql`n  connectionString: 'Host=127.0.0.1;Port=$($script:Lab.postgres.port);Username=mailops;Database=mailops'`n" | Set-Content $pg
        $cred = [pscredential]::new('mailops', (ConvertTo-SecureString $script:Lab.postgres.password -AsPlainText -Force))
        $first = Import-Bounce -Path $script:DsnDir -ConfigPath $pg -StoreCredential $cred
        $again = Import-Bounce -Path $script:DsnDir -ConfigPath $pg -StoreCredential $cred
        ($first.Added + $first.Duplicates) | Should -Be 3
        $again.Added | Should -Be 0
        $first.Store | Should -Match '^PostgreSQL 127\.0\.0\.1:'
        (Get-Bounce -ConfigPath $pg -StoreCredential $cred -Hard).Address | Should -Contain 'ghost@remote.test'
    }

    It 'gives StoreUnavailable with a wrong store password' {
        $pg = Join-Path $script:Dir 'pg.yaml'
        $bad = [pscredential]::new('mailops', (ConvertTo-SecureString 'wrong' -AsPlainText -Force))
        { Get-Bounce -ConfigPath $pg -StoreCredential $bad -ErrorAction Stop } | Should -Throw -ErrorId 'StoreUnavailable,MailOps.PowerShell.Commands.GetBounceCommand'
    }
}

Describe 'Export-Bounce' {
    It 'writes the hard bounces in SendGrid''s format, once per address' {
        $out = Join-Path $script:Dir 'suppress.csv'
        $file = Export-Bounce -Path $out -Format SendGrid -Hard
        $file.FullName | Should -Be $out
        $lines = Get-Content $out
        $lines[0] | Should -Be 'email,created,reason,status'
        @($lines | Where-Object { $_ -like 'ghost@remote.test,*' }).Count | Should -Be 1
        { Export-Bounce -Path $out -Format SendGrid -ErrorAction Stop } | Should -Throw -ErrorId 'ExportFileExists,MailOps.PowerShell.Commands.ExportBounceCommand'
    }

    It 'exports what Get-Bounce pipes in' {
        $out = Join-Path $script:Dir 'mailgun.csv'
        Get-Bounce -Reason mailboxfull | Export-Bounce -Path $out -Format Mailgun | Out-Null
        (Get-Content $out)[0] | Should -Be 'address,code,error,created_at'
        (Get-Content $out)[1] | Should -Match '^over@remote\.test,552,'
    }
}
