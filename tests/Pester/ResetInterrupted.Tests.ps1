# A reset killed in the middle (kill -9 of the runbook's process) leaves the shared PostgreSQL store as it was: never
# half reset. The test waits until PostgreSQL shows the reset's transaction writing (pg_stat_activity), kills the
# process, and checks every address; then the same reset run to the end resets them all.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Get-TestModulePath) -Force
    $script:Lab = Get-Lab
    $script:Dir = New-TestFolder
    $pg = $script:Lab.postgres
    $script:Schema = 'kill' + [Guid]::NewGuid().ToString('N').Substring(0, 8)
    $env:PGPASSWORD = $pg.password
    function Invoke-Psql([string]$Sql) {
        $out = & psql -h 127.0.0.1 -p $pg.port -U $pg.user -d $pg.database -At -c $Sql 2>&1
        if ($LASTEXITCODE -ne 0) { throw "psql failed: $out" }
        return $out
    }
    Invoke-Psql "CREATE SCHEMA $($script:Schema)" | Out-Null
    $script:Config = Join-Path $script:Dir 'mailops.yaml'
    $dns = Get-Content $script:Lab.config | Where-Object { $_ -match '^  servers: ' } | Select-Object -First 1
    @"
version: 1
dns:
$dns
  timeoutSeconds: 2
  retries: 0
store:
  provider: postgresql
  connectionString: 'Host=127.0.0.1;Port=$($pg.port);Username=$($pg.user);Database=$($pg.database);Search Path=$($script:Schema)'
flows:
  - name: newsletter
    kind: Campaign
    esp: sendgrid
"@ | Set-Content $script:Config
    $script:Cred = [pscredential]::new($pg.user, (ConvertTo-SecureString $pg.password -AsPlainText -Force))

    # 3,000 addresses at an OVH-hosted lab domain, suppressed by an ESP for an outage failure in the window
    $script:Since = [DateTimeOffset]'2026-11-20T07:00:00Z'
    $script:Until = [DateTimeOffset]'2026-11-20T11:00:00Z'
    $csv = Join-Path $script:Dir 'esp.csv'
    $lines = [System.Collections.Generic.List[string]]::new()
    $lines.Add('email,reason,status,created')
    for ($i = 0; $i -lt 3000; $i++) { $lines.Add("u$i@cabinet-durand.test,connect to 127.0.1.1[127.0.1.1]:25: Connection refused,4.4.1,2026-11-20T08:00:00Z") }
    [IO.File]::WriteAllLines($csv, $lines)
    $r = Import-Bounce -CsvPath $csv -Format SendGrid -Flow newsletter -ConfigPath $script:Config -StoreCredential $script:Cred
    $script:Imported = $r.Suppressed

    function Get-StateCounts {
        $rows = Invoke-Psql "SELECT state || '=' || count(*) FROM $($script:Schema).suppressions GROUP BY state ORDER BY state"
        $h = @{}
        foreach ($row in @($rows)) { $k, $v = $row -split '='; $h[$k] = [int]$v }
        return $h
    }
}

AfterAll {
    try { Invoke-Psql "DROP SCHEMA $($script:Schema) CASCADE" | Out-Null } catch { }
    Remove-Item Env:PGPASSWORD -ErrorAction SilentlyContinue
    Remove-Item -Recurse -Force $script:Dir -ErrorAction SilentlyContinue
}

Describe 'A reset killed midway' {
    It 'has 3,000 suppressed addresses to reset' {
        $script:Imported | Should -Be 3000
        (Get-StateCounts)['suppressed'] | Should -Be 3000
    }

    It 'leaves the store as before when its process is killed inside the transaction' {
        $exe = [Environment]::ProcessPath
        $arguments = @('-NoProfile', '-NonInteractive', '-File')
        if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $arguments = @((Join-Path $PSHOME 'pwsh.dll')) + $arguments }
        $script = Join-Path $script:Dir 'reset.ps1'
        @"
Import-Module '$(Get-TestModulePath)'
`$cred = [pscredential]::new('$($script:Lab.postgres.user)', (ConvertTo-SecureString '$($script:Lab.postgres.password)' -AsPlainText -Force))
Reset-HardBounce -Since '$($script:Since.ToString('o'))' -Until '$($script:Until.ToString('o'))' -Provider OVH -ConfigPath '$($script:Config)' -StoreCredential `$cred -Confirm:`$false
"@ | Set-Content $script
        $p = Start-Process -FilePath $exe -ArgumentList ($arguments + $script) -PassThru -RedirectStandardOutput (Join-Path $script:Dir 'out.txt') -RedirectStandardError (Join-Path $script:Dir 'err.txt')
        $seen = $false
        $deadline = (Get-Date).AddSeconds(60)
        while (-not $p.HasExited -and (Get-Date) -lt $deadline) {
            $active = Invoke-Psql "SELECT count(*) FROM pg_stat_activity WHERE datname = '$($script:Lab.postgres.database)' AND (query LIKE 'INSERT INTO reset_items%' OR query LIKE 'UPDATE suppressions SET state = ''reset''%' OR query LIKE 'UPDATE bounce_events SET suppressing%' OR query LIKE 'SELECT state, reason, updated_at%')"
            if ([int]$active -gt 0) { $seen = $true; break }
            Start-Sleep -Milliseconds 50
        }
        $why = if ($p.HasExited) { "the process ended first (exit $($p.ExitCode)): $(Get-Content -Raw (Join-Path $script:Dir 'err.txt'))$(Get-Content -Raw (Join-Path $script:Dir 'out.txt'))" } else { 'it was not seen writing within 60 s' }
        $seen | Should -BeTrue -Because "the reset must be caught writing, otherwise the test proves nothing; $why"
        & kill -KILL $p.Id
        $p.WaitForExit(10000) | Out-Null
        Start-Sleep -Milliseconds 500   # PostgreSQL notices the closed connection and rolls back
        $counts = Get-StateCounts
        $counts['suppressed'] | Should -Be 3000
        $counts.ContainsKey('reset') | Should -BeFalse
        (Invoke-Psql "SELECT count(*) FROM $($script:Schema).reset_operations") | Should -Be '0'
        (Invoke-Psql "SELECT count(*) FROM $($script:Schema).reset_items") | Should -Be '0'
    }

    It 'and the same reset run to the end resets all of them' {
        $op = Reset-HardBounce -Since $script:Since -Until $script:Until -Provider OVH -ConfigPath $script:Config -StoreCredential $script:Cred -Confirm:$false 6>$null
        $op.ItemCount | Should -Be 3000
        (Get-StateCounts)['reset'] | Should -Be 3000
    }
}
