<#
.SYNOPSIS
DMARC aggregate reports: N reports made from the corpus samples (plain XML, gzip and zip in turn), read by
Get-DmarcReport in a fresh pwsh, for each N (1,000 and 4,000 by default: the peak memory of the two shows whether it
stays flat). Prints reports/s, records/s and the peak memory, and checks the totals against the generator's.

.DESCRIPTION
bench/dmarc/DmarcBench writes the reports from the well-formed plain XML samples of ../shared/corpora/dmarc (or
$env:MAILOPS_CORPORA/dmarc): each gets its own report id, 1 to 40 records (the template's repeated), source addresses
(a third IPv6) and counts (seeded, so every run writes the same reports). MailOps runs in a fresh process under
/usr/bin/time:
- by default, `Get-DmarcReport -Path <folder>` in a fresh pwsh with the built module (out/MailOps, or
  $env:MAILOPS_MODULE), timed with its start-up, the cmdlet's own time printed beside it;
- with -CoreOnly, DmarcBench's `read`: MailOps.Core's DmarcReportReader alone, as the cmdlet runs it.
Peak memory is the maximum resident set size /usr/bin/time reports (%M). There is no reference tool to compare with
(parsedmarc is not installed here, and no other DMARC report reader is packaged for this machine): the figures are
MailOps' own.
#>
param([int[]]$Count = @(1000, 4000), [switch]$CoreOnly, [int]$Seed = 1, [switch]$Keep)
$ErrorActionPreference = 'Stop'
$PSStyle.OutputRendering = 'PlainText'
$repo = if ($env:MAILOPS_REPO) { $env:MAILOPS_REPO } else { Split-Path $PSScriptRoot -Parent }
$exe = [Environment]::ProcessPath
$prefix = [string[]]@(); if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $prefix = [string[]]@((Join-Path $PSHOME 'pwsh.dll')) }
if (-not (Test-Path /usr/bin/time)) { throw '/usr/bin/time is needed for the peak memory (Debian package "time").' }

$corpus = if ($env:MAILOPS_CORPORA) { Join-Path $env:MAILOPS_CORPORA 'dmarc' } else {
    $d = Get-Item $repo
    while ($d -and -not (Test-Path (Join-Path $d.FullName 'shared/corpora/dmarc'))) { $d = $d.Parent }
    if ($d) { Join-Path $d.FullName 'shared/corpora/dmarc' }
}
if (-not $corpus -or -not (Test-Path $corpus)) { throw "The DMARC corpus is missing (MAILOPS_CORPORA or shared/corpora/dmarc above $repo): nothing to make reports from." }

Write-Host 'reference: none (no other DMARC aggregate report reader is installed here); the figures are MailOps'' own'

$scratch = Join-Path ([IO.Path]::GetTempPath()) ("mailops-bench-dmarc-" + [Guid]::NewGuid().ToString('N').Substring(0, 8))
New-Item -ItemType Directory $scratch | Out-Null
try {
    $bin = Join-Path $scratch 'bin'
    $build = & dotnet build (Join-Path $repo 'bench/dmarc/DmarcBench.csproj') -c Release -o $bin -nologo -v:quiet 2>&1
    if ($LASTEXITCODE -ne 0) { throw "DmarcBench did not build:`n$($build -join "`n")" }
    $bench = Join-Path $bin 'DmarcBench.dll'
    $module = Join-Path ($env:MAILOPS_MODULE ? $env:MAILOPS_MODULE : (Join-Path $repo 'out/MailOps')) 'MailOps.psd1'
    if (-not $CoreOnly -and -not (Test-Path $module)) { throw "No built module at ${module}: run build.ps1 first (build.ps1 -Task Bench does)." }

    # Reads "%e %M" (seconds, peak KB) from the last line of /usr/bin/time's output.
    function Read-Time([string]$File) {
        $p = @(@(Get-Content $File) | Where-Object { $_ -match "^TIME " })[-1] -split " "
        [pscustomobject]@{ Seconds = [double]$p[1]; PeakMB = [double]$p[2] / 1024 }
    }
    function Read-Pairs([string]$Line) {
        $h = [ordered]@{}
        foreach ($pair in $Line -split ';') { $k, $v = $pair -split '=', 2; $h[$k] = [int64]$v }
        $h
    }

    $rows = @()
    foreach ($n in $Count) {
        $folder = Join-Path $scratch "reports-$n"
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $made = Read-Pairs (@(& dotnet $bench generate $folder $n $corpus $Seed)[-1])
        if ($LASTEXITCODE -ne 0) { throw 'the report generator failed' }
        Write-Host ('generated {0:N0} reports ({1:N0} records, {2:N0} messages, {3:0.0} MB on disk: .xml, .xml.gz and .zip in turn) in {4:0.0} s' -f
            $n, $made.records, $made.messages, ($made.bytes / 1MB), $sw.Elapsed.TotalSeconds)

        if ($CoreOnly) {
            & /usr/bin/time -f 'TIME %e %M' -o "$scratch/run.time" dotnet $bench read $folder > "$scratch/run.out" 2>&1
            $what = 'MailOps.Core (DmarcBench read)'
        }
        else {
            $script = "Import-Module '$module'; `$sw = [Diagnostics.Stopwatch]::StartNew(); `$r = 0; `$rec = 0; `$msg = 0; " +
                "Get-DmarcReport -Path '$folder' | ForEach-Object { `$r++; `$rec += `$_.Records.Count; `$msg += `$_.MessageCount }; " +
                "'reports={0};records={1};messages={2};errors={3}' -f `$r, `$rec, `$msg, `$Error.Count; 'seconds={0:0.000}' -f `$sw.Elapsed.TotalSeconds"
            & /usr/bin/time -f 'TIME %e %M' -o "$scratch/run.time" $exe @prefix -NoProfile -NonInteractive -Command $script > "$scratch/run.out" 2>&1
            $what = 'Get-DmarcReport'
        }
        if ($LASTEXITCODE -ne 0) { throw "MailOps failed:`n$(Get-Content -Raw "$scratch/run.out")" }
        $t = Read-Time "$scratch/run.time"
        $out = @(Get-Content "$scratch/run.out")
        $got = Read-Pairs (@($out | Where-Object { $_ -match '^reports=' })[-1])
        $inside = [double](@($out | Where-Object { $_ -match '^seconds=' })[-1] -replace '^seconds=', '')
        $same = $got.reports -eq $made.reports -and $got.records -eq $made.records -and $got.messages -eq $made.messages -and $got.errors -eq 0
        $rows += [pscustomobject]@{ N = $n; Process = $t.Seconds; Inside = $inside; PeakMB = $t.PeakMB; Records = $made.records }
        Write-Host ('{0}, {1:N0} reports: {2:0.00} s for the process, {3:0.00} s reading ({4:N0} reports/s, {5:N0} records/s; with start-up {6:N0} reports/s, {7:N0} records/s), peak memory {8:0} MB; totals {9}' -f
            $what, $n, $t.Seconds, $inside, ($n / $inside), ($made.records / $inside), ($n / $t.Seconds), ($made.records / $t.Seconds), $t.PeakMB,
            ($same ? 'agree with the generator' : "DIFFER: read $($got.reports) reports, $($got.records) records, $($got.messages) messages, $($got.errors) errors"))
        Remove-Item -Recurse -Force $folder
    }
    if ($rows.Count -ge 2) {
        $a = $rows[0]; $b = $rows[-1]
        Write-Host ('peak memory {0:N0} reports: {1:0} MB, {2:N0} reports: {3:0} MB ({4:+0;-0} MB for {5:0.0}x the reports); reading time {6:0.0}x' -f
            $a.N, $a.PeakMB, $b.N, $b.PeakMB, ($b.PeakMB - $a.PeakMB), ($b.N / $a.N), ($b.Inside / $a.Inside))
    }
    Write-Host 'ratio: none (no reference tool)'
}
finally {
    if ($Keep) { Write-Host "kept $scratch" } else { Remove-Item -Recurse -Force $scratch -ErrorAction SilentlyContinue }
}
