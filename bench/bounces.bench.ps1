<#
.SYNOPSIS
Bounce throughput and memory: the sisimai corpus through the classifier, and Postfix logs of growing size (100 MB,
then 1 GB by default) through Import-Bounce into a scratch SQLite store. Each log size runs in a fresh pwsh and
prints its peak memory, which must stay flat as the input grows (streaming). No reference tool is named for this
one in the issue (sisimai itself is not installable here: CPAN is not reachable).
#>
# (a string, so that `-File bench/bounces.bench.ps1 -LogMegabytes 20,60` works from a shell too)
param([string]$LogMegabytes = '100,1024')
$sizes = @($LogMegabytes -split '[,\s]+' | Where-Object { $_ } | ForEach-Object { [int]$_ })
$ErrorActionPreference = 'Stop'
$PSStyle.OutputRendering = 'PlainText'
$module = Join-Path $env:MAILOPS_MODULE 'MailOps.psd1'
$exe = [Environment]::ProcessPath
$prefix = [string[]]@(); if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $prefix = [string[]]@((Join-Path $PSHOME 'pwsh.dll')) }
$scratch = Join-Path ([IO.Path]::GetTempPath()) ("mailops-bench-" + [Guid]::NewGuid().ToString('N').Substring(0, 8))
New-Item -ItemType Directory $scratch | Out-Null
try {
    # 1. the corpus
    $corpus = Join-Path $env:MAILOPS_REPO '../shared/corpora/sisimai/set-of-emails/maildir'
    if (Test-Path $corpus) {
        $out = & $exe @prefix -NoProfile -NonInteractive -Command "Import-Module '$module'; `$f = Get-ChildItem '$corpus' -Recurse -File; `$sw = [Diagnostics.Stopwatch]::StartNew(); `$n = @(`$f | ConvertFrom-BounceMessage -ErrorAction SilentlyContinue).Count; `$s = `$sw.Elapsed.TotalSeconds; '{0} {1} {2:0.00} {3}' -f `$f.Count, `$n, `$s, [Diagnostics.Process]::GetCurrentProcess().PeakWorkingSet64"
        $p = ($out | Select-Object -Last 1) -split ' '
        Write-Host ('sisimai corpus: {0} mails, {1} recipients in {2} s = {3:0} mails/s; peak memory {4:0} MB' -f $p[0], $p[1], $p[2], ([double]$p[0] / [double]$p[2]), ([double]$p[3] / 1MB))
    }
    else { Write-Host "sisimai corpus not found at ${corpus}: skipped" }

    # 2. a 100 MB mbox (the sisimai mbox files, repeated), imported one message at a time
    $mboxSrc = Join-Path $env:MAILOPS_REPO '../shared/corpora/sisimai/set-of-emails/mailbox/mbox-0'
    if (Test-Path $mboxSrc) {
        $mbox = Join-Path $scratch 'big.mbox'
        $copies = [math]::Ceiling(100MB / (Get-Item $mboxSrc).Length)
        & sh -c "for i in `$(seq 1 $copies); do cat '$mboxSrc'; echo; done > '$mbox'"
        $cfg = Join-Path $scratch 'store-mbox.yaml'
        "version: 1`nstore:`n  provider: sqlite`n  path: '$scratch/store-mbox.db'`n" | Set-Content $cfg
        $out = & $exe @prefix -NoProfile -NonInteractive -Command "Import-Module '$module'; `$sw = [Diagnostics.Stopwatch]::StartNew(); `$r = Import-Bounce -Path '$mbox' -ConfigPath '$cfg' -ErrorAction SilentlyContinue; `$s = `$sw.Elapsed.TotalSeconds; '{0} {1} {2:0.00} {3}' -f `$r.Read, `$r.Added, `$s, [Diagnostics.Process]::GetCurrentProcess().PeakWorkingSet64"
        $p = ($out | Select-Object -Last 1) -split ' '
        Write-Host ('mbox {0:0} MB: {1} recipients read, {2} new, in {3} s = {4:0.0} MB/s; peak memory {5:0} MB' -f ((Get-Item $mbox).Length / 1MB), $p[0], $p[1], $p[2], ((Get-Item $mbox).Length / 1MB / [double]$p[2]), ([double]$p[3] / 1MB))
        Remove-Item $mbox
    }

    # 3. Postfix logs of growing size: 1 line in 10 a bounce, the rest deliveries, deferrals and other programs' lines
    $chunk = Join-Path $scratch 'chunk.log'
    $lines = [System.Collections.Generic.List[string]]::new()
    for ($i = 0; $i -lt 20000; $i++) {
        $q = '{0:X10}' -f (0x1000000000 + $i)
        $t = [datetime]'2026-11-20T00:00:00Z'
        $ts = $t.AddSeconds($i).ToString('MMM d HH:mm:ss', [Globalization.CultureInfo]::InvariantCulture).PadLeft(15)
        $lines.Add("$ts mx1 postfix/qmgr[90]: ${q}: from=<news@lab.test>, size=4123, nrcpt=1 (queue active)")
        switch ($i % 10) {
            0 { $lines.Add("$ts mx1 postfix/smtp[101]: ${q}: to=<user$i@remote.test>, relay=127.0.0.1[127.0.0.1]:2526, delay=0.3, delays=0.1/0/0.1/0.1, dsn=5.1.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <user$i@remote.test>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command))") }
            1 { $lines.Add("$ts mx1 postfix/smtp[102]: ${q}: to=<user$i@refused.test>, relay=none, delay=5, delays=0/0/5/0, dsn=4.4.1, status=deferred (connect to 127.0.0.1[127.0.0.1]:2599: Connection refused)") }
            default { $lines.Add("$ts mx1 postfix/smtp[103]: ${q}: to=<user$i@sink.test>, relay=127.0.0.1[127.0.0.1]:25, delay=0.2, delays=0.1/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as ABC$i)") }
        }
        $lines.Add("$ts mx1 dovecot: imap-login: Login: user=<sink>, method=PLAIN, rip=127.0.0.1")
    }
    [IO.File]::WriteAllLines($chunk, $lines)
    $chunkBytes = (Get-Item $chunk).Length
    foreach ($mb in $sizes) {
        $log = Join-Path $scratch "maillog-$mb"
        $copies = [math]::Ceiling(($mb * 1MB) / $chunkBytes)
        & sh -c "for i in `$(seq 1 $copies); do cat '$chunk'; done > '$log'"
        $size = (Get-Item $log).Length
        $cfg = Join-Path $scratch "store-$mb.yaml"
        "version: 1`nstore:`n  provider: sqlite`n  path: '$scratch/store-$mb.db'`n" | Set-Content $cfg
        $out = & $exe @prefix -NoProfile -NonInteractive -Command "Import-Module '$module'; `$sw = [Diagnostics.Stopwatch]::StartNew(); `$r = Import-Bounce -LogPath '$log' -ConfigPath '$cfg'; `$s = `$sw.Elapsed.TotalSeconds; '{0} {1} {2:0.00} {3}' -f `$r.Read, `$r.Added, `$s, [Diagnostics.Process]::GetCurrentProcess().PeakWorkingSet64"
        $p = ($out | Select-Object -Last 1) -split ' '
        Write-Host ('Postfix log {0:0} MB ({1} lines): {2} bounce events read, {3} new, in {4} s = {5:0.0} MB/s, {6:0} lines/s; peak memory {7:0} MB' -f ($size / 1MB), ($lines.Count * $copies), $p[0], $p[1], $p[2], ($size / 1MB / [double]$p[2]), ($lines.Count * $copies / [double]$p[2]), ([double]$p[3] / 1MB))
        Remove-Item $log
    }
}
finally { Remove-Item -Recurse -Force $scratch -ErrorAction SilentlyContinue }
