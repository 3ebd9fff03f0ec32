# Durability of a send job against the lab: the sending process is killed (kill -9) in the middle of a job, the job
# is resumed, and the secondary Postfix is restarted while the resumed run sends. Then the sink Maildir is compared
# with the journal: every recipient the journal says was sent arrived exactly once, nothing arrived that the journal
# does not know, nobody is left pending, and the only recipients without a certain outcome are the ones the journal
# reports as possibly duplicated (never resent).
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Get-TestModulePath) -Force
    $script:Lab = Get-Lab
    $script:Dir = New-TestFolder
    $script:Config = Join-Path $script:Dir 'mailops.yaml'
    (Get-Content -Raw $script:Lab.config) -replace '(?m)^  path: .*$', "  path: '$($script:Dir)/crash.db'" | Set-Content $script:Config
    $script:Job = 'crash' + [Guid]::NewGuid().ToString('N').Substring(0, 6)
    $script:Count = 300
    $exe = [Environment]::ProcessPath
    $script:Args = @('-NoProfile', '-NonInteractive', '-File')
    if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $script:Args = @((Join-Path $PSHOME 'pwsh.dll')) + $script:Args }
    $script:Exe = $exe
    $prologue = @"
Import-Module '$(Get-TestModulePath)'
`$env:MAILOPS_CONFIG = '$($script:Config)'
`$cred = [pscredential]::new('$($script:Lab.sasl.user)', (ConvertTo-SecureString '$($script:Lab.sasl.password)' -AsPlainText -Force))
"@
    $script:SendScript = Join-Path $script:Dir 'send.ps1'
    ($prologue + "`n1..$($script:Count) | ForEach-Object { `"crash`$_@sink.test`" } | Send-ViaSecondaryRelay -From news@lab.test -Subject 'crash test' -TextBody 'x' -Credential `$cred -JobName $($script:Job) -PerMinute 2400 -MaxConnections 4 -RetryDelay 00:00:01`n") | Set-Content $script:SendScript
    $script:ResumeScript = Join-Path $script:Dir 'resume.ps1'
    ($prologue + "`nResume-MailOpsSendJob -Name $($script:Job) -Credential `$cred -PerMinute 2400 -MaxConnections 4 -RetryDelay 00:00:01 -Confirm:`$false | Format-List | Out-String | Write-Output`n") | Set-Content $script:ResumeScript

    function Get-Counts {
        $job = Get-MailOpsSendJob -Name $script:Job -ConfigPath $script:Config -ErrorAction SilentlyContinue
        if (-not $job) { return @{} }
        return $job.Counts
    }
    function Start-Child([string]$Script, [string]$Name) {
        Start-Process -FilePath $script:Exe -ArgumentList ($script:Args + $Script) -PassThru -RedirectStandardOutput (Join-Path $script:Dir "$Name.out") -RedirectStandardError (Join-Path $script:Dir "$Name.err")
    }
    function Wait-Sent([System.Diagnostics.Process]$Process, [int]$AtLeast, [int]$TimeoutSeconds = 60) {
        $deadline = (Get-Date).AddSeconds($TimeoutSeconds)
        while (-not $Process.HasExited -and (Get-Date) -lt $deadline) {
            $c = Get-Counts
            if ($c.ContainsKey('sent') -and $c['sent'] -ge $AtLeast) { return $c['sent'] }
            Start-Sleep -Milliseconds 100
        }
        return -1
    }
}

AfterAll {
    # whatever happened, the secondary runs again for the other tests
    & postfix -c $script:Lab.smtp.secondary.config status 2>&1 | Out-Null
    if ($LASTEXITCODE -ne 0) { & postfix -c $script:Lab.smtp.secondary.config start 2>&1 | Out-Null }
    Remove-Item -Recurse -Force $script:Dir -ErrorAction SilentlyContinue
}

Describe 'A send job killed, resumed, and its relay restarted' {
    It 'is killed in the middle: part sent, the rest pending in the journal' {
        $p = Start-Child $script:SendScript 'send'
        $sent = Wait-Sent $p 80
        $sent | Should -BeGreaterThan 0 -Because "the job must be caught sending (stderr: $(Get-Content -Raw (Join-Path $script:Dir 'send.err') -ErrorAction SilentlyContinue))"
        & kill -KILL $p.Id
        $p.WaitForExit(10000) | Out-Null
        $c = Get-Counts
        $c['sent'] | Should -BeLessThan $script:Count
        $c['pending'] | Should -BeGreaterThan 0
        Write-Host "  killed with $($c['sent']) sent, $($c['pending']) pending, $(if ($c.ContainsKey('in-data')) { $c['in-data'] } else { 0 }) in DATA"
    }

    It 'resumes, survives a restart of the relay, and finishes' {
        $p = Start-Child $script:ResumeScript 'resume'
        $before = (Get-Counts)['sent']
        $sent = Wait-Sent $p ($before + 60)
        $sent | Should -BeGreaterThan 0 -Because "the resumed run must be caught sending (stderr: $(Get-Content -Raw (Join-Path $script:Dir 'resume.err') -ErrorAction SilentlyContinue))"
        & postfix -c $script:Lab.smtp.secondary.config stop 2>&1 | Out-Null
        Start-Sleep -Milliseconds 1500
        & postfix -c $script:Lab.smtp.secondary.config start 2>&1 | Out-Null
        $p.WaitForExit(120000) | Should -BeTrue
        $out = Get-Content -Raw (Join-Path $script:Dir 'resume.out')
        $out | Should -Match 'State\s+: completed'
        $c = Get-Counts
        $c.ContainsKey('pending') | Should -BeFalse
        $c.ContainsKey('deferred') | Should -BeFalse
        $c.ContainsKey('failed') | Should -BeFalse
        $c.ContainsKey('in-data') | Should -BeFalse
        Write-Host "  finished: $(($c.GetEnumerator() | ForEach-Object { "$($_.Key) $($_.Value)" }) -join ', ')"
    }

    It 'delivered every sent message exactly once, and nothing the journal does not know' {
        $items = Get-MailOpsSendJob -Name $script:Job -Items -ConfigPath $script:Config
        $items.Count | Should -Be $script:Count
        $sent = @($items | Where-Object State -eq 'sent')
        $doubtful = @($items | Where-Object State -eq 'possibly-duplicated')
        ($sent.Count + $doubtful.Count) | Should -Be $script:Count
        $pattern = "(?m)^X-MailOps-Job: $([regex]::Escape($script:Job))\r?$"
        $deadline = (Get-Date).AddSeconds(90)
        do {
            $files = @(Get-ChildItem "$($script:Lab.imap.maildir)/new", "$($script:Lab.imap.maildir)/cur" -File | Where-Object { [IO.File]::ReadAllText($_.FullName) -match $pattern })
            if ($files.Count -ge $sent.Count) { break }
            Start-Sleep -Milliseconds 500
        } while ((Get-Date) -lt $deadline)
        Start-Sleep -Seconds 3   # let any straggler arrive before counting
        $files = @(Get-ChildItem "$($script:Lab.imap.maildir)/new", "$($script:Lab.imap.maildir)/cur" -File | Where-Object { [IO.File]::ReadAllText($_.FullName) -match $pattern })
        $ids = $files | ForEach-Object { [regex]::Match([IO.File]::ReadAllText($_.FullName), '(?mi)^Message-Id:\s*(<[^>]+>)').Groups[1].Value } | Group-Object -AsHashTable -AsString
        foreach ($i in $sent) {
            $n = if ($ids -and $ids.ContainsKey($i.MessageId)) { $ids[$i.MessageId].Count } else { 0 }
            $n | Should -Be 1 -Because "$($i.Address) is sent in the journal ($($i.MessageId))"
        }
        foreach ($i in $doubtful) {
            $n = if ($ids -and $ids.ContainsKey($i.MessageId)) { $ids[$i.MessageId].Count } else { 0 }
            $n | Should -BeLessOrEqual 1 -Because "$($i.Address) is possibly duplicated: reported, never resent"
        }
        $known = @($items.MessageId)
        @($ids.Keys | Where-Object { $_ -notin $known }).Count | Should -Be 0
        Write-Host "  Maildir: $($files.Count) messages for $($sent.Count) sent and $($doubtful.Count) reported as possibly duplicated"
    }
}

Describe 'A send job stopped with Ctrl+C' {
    It 'stops cleanly (the rest stays pending), and the resumed job sends each message once' {
        $job = $script:Job + 'c'
        $ps = [powershell]::Create()
        $null = $ps.AddScript("Import-Module '$(Get-TestModulePath)'; `$cred = [pscredential]::new('$($script:Lab.sasl.user)', (ConvertTo-SecureString '$($script:Lab.sasl.password)' -AsPlainText -Force)); " +
            "1..150 | ForEach-Object { `"ctrlc`$_@sink.test`" } | Send-ViaSecondaryRelay -ConfigPath '$($script:Config)' -From news@lab.test -Subject 'ctrl-c' -TextBody 'x' -Credential `$cred -JobName $job -PerMinute 1200 -MaxConnections 2")
        $handle = $ps.BeginInvoke()
        $deadline = (Get-Date).AddSeconds(60)
        do {
            Start-Sleep -Milliseconds 100
            $j = Get-MailOpsSendJob -Name $job -ConfigPath $script:Config -ErrorAction SilentlyContinue
        } until (($j -and $j.Sent -ge 20) -or $handle.IsCompleted -or (Get-Date) -gt $deadline)
        $j.Sent | Should -BeGreaterOrEqual 20
        $ps.Stop()   # what Ctrl+C does: StopProcessing, which cancels the job's token
        $ps.Dispose()
        $after = Get-MailOpsSendJob -Name $job -ConfigPath $script:Config
        $after.State | Should -Be 'interrupted'
        $after.Sent | Should -BeLessThan 150
        $after.Counts.ContainsKey('in-data') | Should -BeFalse
        $cred = [pscredential]::new($script:Lab.sasl.user, (ConvertTo-SecureString $script:Lab.sasl.password -AsPlainText -Force))
        $done = Resume-MailOpsSendJob -Name $job -ConfigPath $script:Config -Credential $cred -Confirm:$false
        $done.State | Should -Be 'completed'
        ($done.Sent + $done.PossiblyDuplicated) | Should -Be 150
        $pattern = "(?m)^X-MailOps-Job: $([regex]::Escape($job))\r?$"
        $deadline = (Get-Date).AddSeconds(60)
        do {
            Start-Sleep -Milliseconds 500
            $files = @(Get-ChildItem "$($script:Lab.imap.maildir)/new", "$($script:Lab.imap.maildir)/cur" -File | Where-Object { [IO.File]::ReadAllText($_.FullName) -match $pattern })
        } until ($files.Count -ge $done.Sent -or (Get-Date) -gt $deadline)
        Start-Sleep -Seconds 2
        $files = @(Get-ChildItem "$($script:Lab.imap.maildir)/new", "$($script:Lab.imap.maildir)/cur" -File | Where-Object { [IO.File]::ReadAllText($_.FullName) -match $pattern })
        $ids = @($files | ForEach-Object { [regex]::Match([IO.File]::ReadAllText($_.FullName), '(?mi)^Message-Id:\s*(<[^>]+>)').Groups[1].Value })
        @($ids | Group-Object | Where-Object Count -gt 1).Count | Should -Be 0
        $ids.Count | Should -BeGreaterOrEqual $done.Sent
        $ids.Count | Should -BeLessOrEqual 150
    }
}
