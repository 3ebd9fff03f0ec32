<#
.SYNOPSIS
Traffic report on a 1 GB Postfix log: pflogsumm (the reference tool) and MailOps on the same generated log in the
same run. Prints both times, the ratio (goal: MailOps at least 10 times faster) and the peak memory (RSS) of each,
and checks that the two give the same Grand Totals.

.DESCRIPTION
bench/traffic/TrafficBench writes a realistic log of -SizeMB megabytes (a week of a busy hub: inbound and submitted
mail from thousands of senders to hundreds of thousands of recipients, retries, bounces and their notifications,
local pickup, rejections, and the connect/disconnect/TLS/anvil/postscreen/warning lines around them; seeded, so every
run writes the same log). pflogsumm runs as Debian ships it (perl /usr/sbin/pflogsumm <log>). MailOps runs in a
fresh process under /usr/bin/time:
- by default, `Get-MailTrafficReport -Path <log> -Totals` in a fresh pwsh with the built module (out/MailOps, or
  $env:MAILOPS_MODULE), timed with its start-up;
- with -CoreOnly, TrafficBench's `totals`: MailOps.Core's MailLogParser and TrafficAggregator alone, as the cmdlet runs
  them.
Peak memory is the maximum resident set size /usr/bin/time reports (%M). -Log reuses an existing log; -Keep keeps
the generated one. -SizeMB 50 is a quick run.
#>
param([int]$SizeMB = 1024, [switch]$CoreOnly, [string]$Log, [switch]$Keep, [int]$Seed = 1)
$UseCmdlet = -not $CoreOnly
$ErrorActionPreference = 'Stop'
$PSStyle.OutputRendering = 'PlainText'
$repo = if ($env:MAILOPS_REPO) { $env:MAILOPS_REPO } else { Split-Path $PSScriptRoot -Parent }
$exe = [Environment]::ProcessPath
$prefix = [string[]]@(); if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $prefix = [string[]]@((Join-Path $PSHOME 'pwsh.dll')) }

if (-not (Test-Path /usr/sbin/pflogsumm)) {
    Write-Host 'installing pflogsumm (apt-get)'
    & apt-get install -y -q pflogsumm 2>&1 | Out-Null
    if ($LASTEXITCODE -ne 0) { & apt-get update -q 2>&1 | Out-Null; & apt-get install -y -q pflogsumm 2>&1 | Out-Null }
    if (-not (Test-Path /usr/sbin/pflogsumm)) { throw 'pflogsumm could not be installed' }
}
if (-not (Test-Path /usr/bin/time)) { throw '/usr/bin/time is needed for the peak memory (Debian package "time").' }

$scratch = Join-Path ([IO.Path]::GetTempPath()) ("mailops-bench-traffic-" + [Guid]::NewGuid().ToString('N').Substring(0, 8))
New-Item -ItemType Directory $scratch | Out-Null
try {
    $bin = Join-Path $scratch 'bin'
    $build = & dotnet build (Join-Path $repo 'bench/traffic/TrafficBench.csproj') -c Release -o $bin -nologo -v:quiet 2>&1
    if ($LASTEXITCODE -ne 0) { throw "TrafficBench did not build:`n$($build -join "`n")" }
    $bench = Join-Path $bin 'TrafficBench.dll'

    if (-not $Log) {
        $Log = Join-Path $scratch 'maillog'
        $sw = [Diagnostics.Stopwatch]::StartNew()
        & dotnet $bench generate $Log $SizeMB $Seed | Out-Null
        if ($LASTEXITCODE -ne 0) { throw 'the log generator failed' }
        Write-Host ('generated {0} ({1:0} MB, {2:N0} lines) in {3:0.0} s' -f $Log, ((Get-Item $Log).Length / 1MB), [int64](& wc -l $Log).Split(' ')[0], $sw.Elapsed.TotalSeconds)
    }
    $size = (Get-Item $Log).Length

    # Reads "%e %M" (seconds, peak KB) from the last line of /usr/bin/time's output.
    function Read-Time([string]$File) {
        $p = @(@(Get-Content $File) | Where-Object { $_ -match "^TIME " })[-1] -split " "
        [pscustomobject]@{ Seconds = [double]$p[1]; PeakMB = [double]$p[2] / 1024 }
    }

    # 1. pflogsumm
    $env:LC_ALL = 'C'
    & /usr/bin/time -f 'TIME %e %M' -o "$scratch/pflogsumm.time" perl /usr/sbin/pflogsumm $Log > "$scratch/pflogsumm.out" 2> "$scratch/pflogsumm.err"
    if ($LASTEXITCODE -ne 0) { throw "pflogsumm failed: $(Get-Content -Raw "$scratch/pflogsumm.err")" }
    $pf = Read-Time "$scratch/pflogsumm.time"
    $pfTotals = [ordered]@{}
    $inTotals = $false
    foreach ($line in Get-Content "$scratch/pflogsumm.out") {
        if ($line -eq 'Grand Totals') { $inTotals = $true; continue }
        if ($inTotals -and $line -match '^\s*(\d+)([ km])  (\S[^(]*?)\s*(\(|$)') {
            $pfTotals[$Matches[3]] = "$($Matches[1])$($Matches[2])".Trim()
            if ($line -match '\((\d+)([ km]) deferrals\)') { $pfTotals['deferrals'] = "$($Matches[1])$($Matches[2])".Trim() }
            if ($Matches[3] -eq 'recipient hosts/domains') { break }
        }
    }
    Write-Host ('pflogsumm: {0:0.0} s ({1:0} MB/s), peak memory {2:0} MB' -f $pf.Seconds, ($size / 1MB / $pf.Seconds), $pf.PeakMB)

    # 2. MailOps, in a fresh process
    if ($UseCmdlet) {
        $module = Join-Path ($env:MAILOPS_MODULE ? $env:MAILOPS_MODULE : (Join-Path $repo 'out/MailOps')) 'MailOps.psd1'
        if (-not (Test-Path $module)) { throw "No built module at ${module}: run build.ps1 first (build.ps1 -Task Bench does)." }
        $script = "Import-Module '$module'; `$sw = [Diagnostics.Stopwatch]::StartNew(); `$t = Get-MailTrafficReport -Path '$Log' -Totals; `$s = `$sw.Elapsed.TotalSeconds; " +
            "'received={0};delivered={1};forwarded={2};deferred={3};deferrals={4};bounced={5};rejected={6};discarded={7};bytes received={8};bytes delivered={9};senders={10};sending hosts/domains={11};recipients={12};recipient hosts/domains={13}' -f " +
            "`$t.Received, `$t.Delivered, `$t.Forwarded, `$t.Deferred, `$t.Deferrals, `$t.Bounced, `$t.Rejected, `$t.Discarded, `$t.BytesReceived, `$t.BytesDelivered, `$t.Senders, `$t.SendingHostsDomains, `$t.Recipients, `$t.RecipientHostsDomains; " +
            "'seconds={0:0.000}' -f `$s"
        & /usr/bin/time -f 'TIME %e %M' -o "$scratch/mailops.time" $exe @prefix -NoProfile -NonInteractive -Command $script > "$scratch/mailops.out" 2>&1
        $what = 'Get-MailTrafficReport -Totals'
    }
    else {
        & /usr/bin/time -f 'TIME %e %M' -o "$scratch/mailops.time" dotnet $bench totals $Log > "$scratch/mailops.out" 2>&1
        $what = 'MailOps.Core (TrafficBench totals)'
    }
    if ($LASTEXITCODE -ne 0) { throw "MailOps failed:`n$(Get-Content -Raw "$scratch/mailops.out")" }
    $mo = Read-Time "$scratch/mailops.time"
    $moTotals = [ordered]@{}
    foreach ($pair in (@(@(Get-Content "$scratch/mailops.out") | Where-Object { $_ -match "^received=" })[-1] -split ";")) {
        $k, $v = $pair -split '=', 2; $moTotals[$k] = [int64]$v
    }
    $inside = @(@(Get-Content "$scratch/mailops.out") | Where-Object { $_ -match '^seconds=([\d.]+)' })
    $counting = if ($inside.Count) { [double]($inside[-1] -replace '^seconds=([\d.]+).*$', '$1') } else { $mo.Seconds }
    Write-Host ('{0}: {1:0.0} s for the process ({2:0} MB/s; {3:0.0} s counting, the rest is start-up), peak memory {4:0} MB' -f $what, $mo.Seconds, ($size / 1MB / $mo.Seconds), $counting, $mo.PeakMB)

    # flat memory: the same run on the first tenth of the log
    $lines = [int64](& wc -l $Log).Split(' ')[0]
    & sh -c "head -n $([int64]($lines / 10)) '$Log' > '$scratch/tenth'"
    if ($UseCmdlet) {
        & /usr/bin/time -f 'TIME %e %M' -o "$scratch/tenth.time" $exe @prefix -NoProfile -NonInteractive -Command ($script -replace [regex]::Escape("'$Log'"), "'$scratch/tenth'") > "$scratch/tenth.out" 2>&1
    }
    else {
        & /usr/bin/time -f 'TIME %e %M' -o "$scratch/tenth.time" dotnet $bench totals "$scratch/tenth" > "$scratch/tenth.out" 2>&1
    }
    $tenth = Read-Time "$scratch/tenth.time"
    Remove-Item "$scratch/tenth"
    Write-Host ('MailOps peak memory on the first tenth of the log ({0:0} MB): {1:0} MB; on all of it: {2:0} MB' -f ($size / 10MB), $tenth.PeakMB, $mo.PeakMB)

    # 3. the same totals? (pflogsumm prints k above 512k and m above 512m, truncated)
    $diff = @()
    foreach ($k in $pfTotals.Keys) {
        if (-not $moTotals.Contains($k)) { continue }
        $p = $pfTotals[$k]; $m = $moTotals[$k]
        $shown = if ($m -gt 536870912) { "$([math]::Floor($m / 1MB))m" } elseif ($m -gt 524288) { "$([math]::Floor($m / 1KB))k" } else { "$m" }
        if ($shown -ne $p) { $diff += "$k pflogsumm $p, MailOps $m" }
    }
    if ($diff.Count) { Write-Host "totals DIFFER: $($diff -join '; ')" }
    else { Write-Host ('totals agree: {0}' -f (($pfTotals.Keys | Where-Object { $moTotals.Contains($_) } | ForEach-Object { "$_ $($pfTotals[$_])" }) -join ', ')) }
    Write-Host ('ratio pflogsumm/MailOps time on {0:0} MB: {1:0.0}x for the whole process, start-up included; {2:0.0}x for the {3} itself (goal >= 10x); peak memory pflogsumm {4:0} MB, MailOps {5:0} MB' -f
        ($size / 1MB), ($pf.Seconds / $mo.Seconds), ($pf.Seconds / $counting), ($UseCmdlet ? 'cmdlet' : 'counting'), $pf.PeakMB, $mo.PeakMB)
}
finally {
    if ($Keep) { Write-Host "kept $scratch" } else { Remove-Item -Recurse -Force $scratch -ErrorAction SilentlyContinue }
}
