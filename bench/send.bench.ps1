<#
.SYNOPSIS
Sending throughput: 10,000 messages of about 4 KB to Postfix's smtp-sink on loopback, by smtp-source (the reference
tool) and by Send-ViaSecondaryRelay with the same concurrency, in the same run; then Send-ViaSecondaryRelay with one
connection per message (what Send-MailMessage does). Prints messages per second and the ratios (goal: MailOps at
least 70% of smtp-source). The two run -Repeat times, interleaved, and the medians are compared: this machine is a
shared VM whose speed varies from run to run.

.DESCRIPTION
Send-ViaSecondaryRelay does more per message than smtp-source: it builds a MIME message per recipient, keeps the
journal (two durable writes per message in SQLite: before the final dot and after the reply) and paces nothing
(no rate limit is given). The journal lives in a scratch store.
#>
param([int]$Messages = 10000, [int]$Concurrency = 4, [int]$Repeat = 3)
$ErrorActionPreference = 'Stop'
$PSStyle.OutputRendering = 'PlainText'
$module = Join-Path $env:MAILOPS_MODULE 'MailOps.psd1'
$exe = [Environment]::ProcessPath
$prefix = [string[]]@(); if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $prefix = [string[]]@((Join-Path $PSHOME 'pwsh.dll')) }
$scratch = Join-Path ([IO.Path]::GetTempPath()) ("mailops-bench-send-" + [Guid]::NewGuid().ToString('N').Substring(0, 8))
New-Item -ItemType Directory $scratch | Out-Null
$sinkPid = $null
try {
    $l = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0); $l.Start(); $port = $l.LocalEndpoint.Port; $l.Stop()
    # smtp-sink: accepts everything, PIPELINING offered, up to 256 sessions
    $sinkPid = & sh -c "smtp-sink -u postfix -c 127.0.0.1:$port 256 >'$scratch/sink.log' 2>&1 & echo `$!"
    $deadline = (Get-Date).AddSeconds(10)
    do { Start-Sleep -Milliseconds 100; $c = [System.Net.Sockets.TcpClient]::new(); $ok = $false; try { $ok = $c.ConnectAsync('127.0.0.1', $port).Wait(300) } catch { } finally { $c.Dispose() } } until ($ok -or (Get-Date) -gt $deadline)

    $cfg = "$scratch/mailops.yaml"
    @"
version: 1
store:
  provider: sqlite
  path: '$scratch/send.db'
relays:
  - name: sink
    host: 127.0.0.1
    port: $port
    security: None
    role: secondary
    timeoutSeconds: 30
"@ | Set-Content $cfg
    $body = ('MailOps bench line for {{Name}}: ' + ('x' * 60) + "`n") * 44   # about 4 KB
    function Invoke-MailOpsSend([int]$Count, [int]$PerConnection, [string]$Job) {
        $script = "Import-Module '$module'; `$r = 1..$Count | ForEach-Object { [pscustomobject]@{ Email = `"r`$_@bench.test`"; Name = `"Reader `$_`" } }; " +
            "`$sw = [Diagnostics.Stopwatch]::StartNew(); `$s = `$r | Send-ViaSecondaryRelay -ConfigPath '$cfg' -Relay sink -From news@bench.test -Subject 'Bench {{Name}}' -TextBody '$($body -replace "'", "''")' -JobName '$Job' -MaxConnections $Concurrency -MessagesPerConnection $PerConnection; " +
            "'{0:0.00}|{1}|{2}|{3}' -f `$sw.Elapsed.TotalSeconds, `$s.Sent, `$s.Failed, [Diagnostics.Process]::GetCurrentProcess().PeakWorkingSet64"
        $out = & $exe @prefix -NoProfile -NonInteractive -Command $script 2>&1
        $line = @($out | Where-Object { $_ -match '^\d+\.\d+\|' })[-1]
        if (-not $line) { throw "Send-ViaSecondaryRelay run failed:`n$($out -join "`n")" }
        $p = $line -split '\|'
        return [pscustomobject]@{ Seconds = [double]$p[0]; Sent = [int]$p[1]; Failed = [int]$p[2]; Rate = [double]$p[1] / [double]$p[0]; PeakMB = [double]$p[3] / 1MB }
    }
    $sourceRates = @(); $mailopsRates = @()
    for ($i = 1; $i -le $Repeat; $i++) {
        # 1. smtp-source: same count, size and concurrency
        $sw = [Diagnostics.Stopwatch]::StartNew()
        & smtp-source -c -l 4096 -m $Messages -s $Concurrency -f news@bench.test -t reader@bench.test "127.0.0.1:$port" > "$scratch/source.log" 2>&1
        $sourceRate = $Messages / $sw.Elapsed.TotalSeconds
        $sourceRates += $sourceRate
        Write-Host ('run {0}: smtp-source {1} messages, {2} sessions: {3:0} messages/s' -f $i, $Messages, $Concurrency, $sourceRate)
        # 2. Send-ViaSecondaryRelay through a relay that is the sink
        $m = Invoke-MailOpsSend $Messages 100 "bench-pooled-$i"
        $mailopsRates += $m.Rate
        Write-Host ('run {0}: Send-ViaSecondaryRelay {1} sent, {2} failed, {3:0.00} s = {4:0} messages/s; peak memory {5:0} MB' -f $i, $m.Sent, $m.Failed, $m.Seconds, $m.Rate, $m.PeakMB)
    }
    $one = Invoke-MailOpsSend ([Math]::Min($Messages, 2000)) 1 'bench-one-per-connection'
    Write-Host ('Send-ViaSecondaryRelay, one connection per message: {0} sent, {1:0} messages/s' -f $one.Sent, $one.Rate)
    $median = { param($v) $s = @($v | Sort-Object); $s[[int][Math]::Floor(($s.Count - 1) / 2)] }
    $results = @{ pooled = (& $median $mailopsRates); 'one connection per message' = $one.Rate }
    $sourceRate = & $median $sourceRates
    Write-Host ('medians of {0} runs: smtp-source {1:0} messages/s, Send-ViaSecondaryRelay {2:0} messages/s' -f $Repeat, $sourceRate, $results['pooled'])
    Write-Host ('ratio Send-ViaSecondaryRelay/smtp-source: {0:0.00} (goal >= 0.70); pooled/one-connection-per-message: {1:0.0}' -f ($results['pooled'] / $sourceRate), ($results['pooled'] / $results['one connection per message']))
}
finally {
    if ($sinkPid) { & kill -TERM $sinkPid 2>&1 | Out-Null }
    Start-Sleep -Milliseconds 300
    Remove-Item -Recurse -Force $scratch -ErrorAction SilentlyContinue
}
