<#
.SYNOPSIS
Test-MailRelay against swaks on the same lab relay, in one run; prints the ratios.

.DESCRIPTION
One full check = connect, STARTTLS (certificate verified against the lab CA), AUTH PLAIN, MAIL FROM, RCPT TO, QUIT,
on the lab's primary submission port. swaks runs as a new process per check (that is how it is used); MailOps runs
in a warm session (how a scheduled task or an interactive session uses it) and, for completeness, in a new pwsh per
check. Then 20 relays in parallel against the slowest single check. Run by build.ps1 -Task Bench with the lab up.
#>
$ErrorActionPreference = 'Stop'
$PSStyle.OutputRendering = 'PlainText'
Import-Module (Join-Path $env:MAILOPS_MODULE 'MailOps.psd1')
$lab = Get-Content -Raw $env:MAILOPS_LAB | ConvertFrom-Json
$env:MAILOPS_CONFIG = $lab.config
$port = $lab.smtp.primary.submission
$cred = [pscredential]::new($lab.sasl.user, (ConvertTo-SecureString $lab.sasl.password -AsPlainText -Force))
$n = 20

function Measure-Median([scriptblock]$Block, [int]$Count) {
    $times = foreach ($i in 1..$Count) { $sw = [Diagnostics.Stopwatch]::StartNew(); & $Block | Out-Null; $sw.Elapsed.TotalMilliseconds }
    $sorted = $times | Sort-Object
    [pscustomobject]@{ Median = $sorted[[int][math]::Floor($Count / 2)]; Min = $sorted[0]; Max = $sorted[-1] }
}

$swaksArgs = @('-s', '127.0.0.1', '-p', $port, '--tls', '--tls-verify', '--tls-ca-path', $lab.tls.ca, '-a', 'PLAIN', '-au', $lab.sasl.user, '-ap', $lab.sasl.password,
    '-f', 'news@lab.test', '-t', 'alice@sink.test', '--quit-after', 'RCPT', '--silent', '2')
& swaks @swaksArgs | Out-Null
if ($LASTEXITCODE -ne 0) { throw "swaks failed (exit $LASTEXITCODE)" }
$check = { Test-MailRelay -Relay primary -Credential $cred -From news@lab.test -To alice@sink.test -SkipOpenRelayCheck -SkipDnsCheck }
$r = & $check
if ($r.Status -ne 'Healthy' -or $r.CompletedStage -ne 'Rcpt') { throw "Test-MailRelay did not complete a healthy check: $($r.Findings | Out-String)" }

$swaks = Measure-Median { & swaks @swaksArgs } $n
$warm = Measure-Median $check $n
$exe = [Environment]::ProcessPath
$prefix = [string[]]@(); if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $prefix = [string[]]@((Join-Path $PSHOME 'pwsh.dll')) }
$coldScript = "Import-Module '$(Join-Path $env:MAILOPS_MODULE 'MailOps.psd1')'; `$c = [pscredential]::new('relay', (ConvertTo-SecureString 'relaypass' -AsPlainText -Force)); `$env:MAILOPS_CONFIG = '$($lab.config)'; `$null = Test-MailRelay -Relay primary -Credential `$c -From news@lab.test -To alice@sink.test -SkipOpenRelayCheck -SkipDnsCheck"
$cold = Measure-Median { & $exe @prefix -NoProfile -NonInteractive -Command $coldScript } 5
$full = Measure-Median { Test-MailRelay -Relay primary -Credential $cred -From news@lab.test -To alice@sink.test } $n

Write-Host ''
Write-Host 'One full check (connect, STARTTLS + verify, AUTH, MAIL, RCPT) on the lab primary, median of runs:'
Write-Host ('  swaks (new process each)          {0,8:0.0} ms  (min {1:0.0}, max {2:0.0})' -f $swaks.Median, $swaks.Min, $swaks.Max)
Write-Host ('  Test-MailRelay (warm session)     {0,8:0.0} ms  (min {1:0.0}, max {2:0.0})' -f $warm.Median, $warm.Min, $warm.Max)
Write-Host ('  Test-MailRelay (new pwsh each)    {0,8:0.0} ms  (5 runs; includes starting PowerShell and importing the module)' -f $cold.Median)
Write-Host ('  Test-MailRelay + open relay + DNS {0,8:0.0} ms' -f $full.Median)
Write-Host ('RATIO swaks/MailOps per check (warm): {0:0.00}  (above 1: MailOps is faster)' -f ($swaks.Median / $warm.Median))
Write-Host ('RATIO swaks/MailOps per check (new pwsh each): {0:0.00}' -f ($swaks.Median / $cold.Median))

# 20 relays in parallel vs the slowest single check.
# (a) Latency-bound, as with relays across a network: each "relay" (Postfix's smtp-sink) waits 1 s before its banner.
$sinkPort = & { $l = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0); $l.Start(); $p = $l.LocalEndpoint.Port; $l.Stop(); $p }
$sinkPid = & sh -c "smtp-sink -u postfix -W connect:1 127.0.0.1:$sinkPort 1000 >/dev/null 2>&1 & echo `$!"
try {
    Start-Sleep -Milliseconds 500
    $slowServers = 1..20 | ForEach-Object { "127.0.0.1:$sinkPort" }
    $single = (Measure-Median { Test-MailRelay -Server "127.0.0.1:$sinkPort" -Security None -StopAfter Ehlo -SkipOpenRelayCheck -SkipDnsCheck } 3).Max
    $par = Measure-Median { $x = Test-MailRelay -Server $slowServers -Security None -StopAfter Ehlo -SkipOpenRelayCheck -SkipDnsCheck -ThrottleLimit 20; if (@($x).Count -ne 20 -or @($x | Where-Object { $_.FailedStage }).Count) { throw 'not all 20 checks completed' } } 3
    Write-Host ''
    Write-Host ('20 relays that each take 1 s to greet, in parallel: {0:0} ms; slowest single check: {1:0} ms' -f $par.Median, $single)
    Write-Host ('RATIO parallel20/slowest-single (latency-bound): {0:0.00}  (close to 1: the checks run concurrently)' -f ($par.Median / $single))
}
finally { & kill $sinkPid 2>$null }

# (b) CPU-bound on this machine: 20 full checks (TLS handshakes on both sides, AUTH through Dovecot) against the one
# lab Postfix, which runs on the same 2 cores and starts a new smtpd per connection.
$servers = 1..20 | ForEach-Object { "127.0.0.1:$port" }
$full20 = { param($t) $all = Test-MailRelay -Server $servers -Security StartTls -TrustedCaFile $lab.tls.ca -Credential $cred -From news@lab.test -To alice@sink.test -ThrottleLimit $t; if (@($all | Where-Object Status -ne 'Healthy').Count) { throw 'a check was not healthy' } }
$singles = foreach ($s in 1..5) { (Measure-Median { Test-MailRelay -Server "127.0.0.1:$port" -Security StartTls -TrustedCaFile $lab.tls.ca -Credential $cred -From news@lab.test -To alice@sink.test } 1).Median }
$slowest = ($singles | Measure-Object -Maximum).Maximum
$parallel = Measure-Median { & $full20 20 } 5
$sequential = Measure-Median { & $full20 1 } 3
Write-Host ''
Write-Host ('20 full checks against the one lab Postfix: parallel {0:0} ms, one at a time {1:0} ms; slowest single {2:0} ms' -f $parallel.Median, $sequential.Median, $slowest)
Write-Host ('RATIO parallel20/slowest-single (CPU-bound, servers on the same 2 cores): {0:0.00}; sequential/parallel: {1:0.00}' -f ($parallel.Median / $slowest), ($sequential.Median / $parallel.Median))
