<#
.SYNOPSIS
The email flow inventory for 100 domains served by a scratch nsd on loopback: the total time of one
Get-EmailFlowInventory run for all of them against the slowest single domain (and the sum of the single runs), which
shows whether the domains' lookups really run concurrently.

.DESCRIPTION
Each domain dNNN.inv.test has an MX, an SPF record with two levels of includes plus an ESP include (sendgrid.net) and a
marketing include (servers.mcsv.net), a DMARC record, DKIM keys at two selectors, and a declared flow; per domain the
inventory reads the SPF tree (about 5 lookups), probes the configured, common and catalogue DKIM selectors (about 40
TXT queries), the DMARC record and the MX hosting (MX, NS, addresses, origin AS). There is no reference tool for
this one: the figure is the ratio of the 100-domain run to its slowest domain (1.0 would be perfect concurrency; the
sum of the single runs is what a sequential inventory would cost).
#>
param([int]$Domains = 100, [int]$ThrottleLimit = 16, [int]$Rounds = 3)
$ErrorActionPreference = 'Stop'
$PSStyle.OutputRendering = 'PlainText'
$module = Join-Path $env:MAILOPS_MODULE 'MailOps.psd1'
$exe = [Environment]::ProcessPath
$prefix = [string[]]@(); if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $prefix = [string[]]@((Join-Path $PSHOME 'pwsh.dll')) }
if (-not (Get-Command nsd -ErrorAction SilentlyContinue)) {
    Write-Host 'installing nsd (apt-get)'
    & apt-get install -y -q nsd 2>&1 | Out-Null
    if (-not (Get-Command nsd -ErrorAction SilentlyContinue)) { throw 'nsd could not be installed' }
}

$scratch = Join-Path ([IO.Path]::GetTempPath()) ("mailops-bench-inv-" + [Guid]::NewGuid().ToString('N').Substring(0, 8))
New-Item -ItemType Directory $scratch | Out-Null
$nsdPid = $null
try {
    $l = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0); $l.Start(); $port = $l.LocalEndpoint.Port; $l.Stop()
    $rsa = [System.Security.Cryptography.RSA]::Create(2048); $key = [Convert]::ToBase64String($rsa.ExportSubjectPublicKeyInfo()); $rsa.Dispose()
    $dkim = "v=DKIM1; k=rsa; p=$key"
    $dkimTxt = '( ' + ((0..([Math]::Ceiling($dkim.Length / 200) - 1) | ForEach-Object { '"' + $dkim.Substring($_ * 200, [Math]::Min(200, $dkim.Length - $_ * 200)) + '"' }) -join ' ') + ' )'
    $sb = [System.Text.StringBuilder]::new()
    [void]$sb.Append("`$ORIGIN inv.test.`n`$TTL 3600`n@ IN SOA ns1.inv.test. hostmaster.inv.test. ( 1 3600 600 86400 300 )`n@ IN NS ns1.inv.test.`nns1 IN A 127.0.0.1`nmx IN A 192.0.2.25`n")
    $cfg = [System.Text.StringBuilder]::new()
    [void]$cfg.Append("version: 1`ndns:`n  servers: ['127.0.0.1:$port']`n  timeoutSeconds: 5`n  retries: 1`n  asnZone: origin.asn.cymru.com`nstore:`n  provider: sqlite`n  path: '$scratch/store.db'`nrelays:`n  - name: primary`n    host: 192.0.2.25`n    role: primary`n    egress: [192.0.2.25]`ndomains:`n")
    $flows = [System.Text.StringBuilder]::new()
    for ($i = 0; $i -lt $Domains; $i++) {
        $d = 'd{0:000}' -f $i
        [void]$sb.Append("$d IN MX 10 mx.inv.test.`n")
        [void]$sb.Append("$d IN TXT `"v=spf1 mx include:_spf.$d.inv.test include:sendgrid.net include:servers.mcsv.net ~all`"`n")
        [void]$sb.Append("_spf.$d IN TXT `"v=spf1 ip4:192.0.2.25 include:_p.$d.inv.test -all`"`n")
        [void]$sb.Append("_p.$d IN TXT `"v=spf1 ip4:198.51.100.0/24 -all`"`n")
        [void]$sb.Append("_dmarc.$d IN TXT `"v=DMARC1; p=quarantine; rua=mailto:dmarc@$d.inv.test`"`n")
        [void]$sb.Append("mail._domainkey.$d IN TXT $dkimTxt`n")
        [void]$sb.Append("s1._domainkey.$d IN TXT $dkimTxt`n")
        [void]$cfg.Append("  - name: $d.inv.test`n    dkimSelectors: [mail]`n")
        [void]$flows.Append("  - name: app-$d`n    kind: Transactional`n    senders: [app@$d.inv.test]`n    relay: primary`n")
    }
    [void]$cfg.Append("flows:`n").Append($flows.ToString())
    [IO.File]::WriteAllText("$scratch/inv.test.zone", $sb.ToString())
    [IO.File]::WriteAllText("$scratch/mailops.yaml", $cfg.ToString())
    $zones = [ordered]@{
        'sendgrid.net'         = @('@ IN TXT "v=spf1 ip4:203.0.113.0/25 -all"')
        'mcsv.net'             = @('servers IN TXT "v=spf1 ip4:203.0.113.128/25 -all"')
        'origin.asn.cymru.com' = @('25.2.0.192 IN TXT "64500 | 192.0.2.0/24 | ZZ | test | 2004-01-01"')
    }
    $conf = "server:`n    ip-address: 127.0.0.1@$port`n    port: $port`n    username: `"`"`n    chroot: `"`"`n    zonesdir: `"$scratch`"`n    database: `"`"`n    zonelistfile: `"$scratch/zone.list`"`n    xfrdfile: `"$scratch/xfrd.state`"`n    pidfile: `"$scratch/nsd.pid`"`n    logfile: `"$scratch/nsd.log`"`n    server-count: 2`n    verbosity: 0`n    rrl-ratelimit: 0`n    rrl-whitelist-ratelimit: 0`nremote-control:`n    control-enable: no`nzone:`n    name: inv.test`n    zonefile: `"inv.test.zone`"`n"
    foreach ($z in $zones.Keys) {
        [IO.File]::WriteAllText("$scratch/$z.zone", "`$ORIGIN $z.`n`$TTL 3600`n@ IN SOA ns1.inv.test. hostmaster.inv.test. ( 1 3600 600 86400 300 )`n@ IN NS ns1.inv.test.`n" + ($zones[$z] -join "`n") + "`n")
        $conf += "zone:`n    name: $z`n    zonefile: `"$z.zone`"`n"
    }
    [IO.File]::WriteAllText("$scratch/nsd.conf", $conf)
    & sh -c "nsd -c '$scratch/nsd.conf' >'$scratch/start.log' 2>&1 </dev/null"
    $deadline = (Get-Date).AddSeconds(60)
    do { Start-Sleep -Milliseconds 200; $nsdPid = @(& cat "$scratch/nsd.pid" 2>$null)[0] } until ($nsdPid -or (Get-Date) -gt $deadline)
    if (-not $nsdPid) { throw "nsd did not start: $(Get-Content -Raw "$scratch/start.log" -ErrorAction SilentlyContinue)" }
    do { Start-Sleep -Milliseconds 300; $probe = & dig +short -p $port '@127.0.0.1' d000.inv.test MX 2>$null } until ($probe -or (Get-Date) -gt $deadline)
    Write-Host "nsd on 127.0.0.1:$port serves $Domains inventory domains (inv.test)"

    # one fresh pwsh: a warm-up domain (JIT), then each domain alone, then all of them in one run (several rounds)
    $script = @"
Import-Module '$module'
`$cfg = '$scratch/mailops.yaml'
`$null = Get-EmailFlowInventory -ConfigPath `$cfg -Domain d000.inv.test
`$names = 0..$($Domains - 1) | ForEach-Object { 'd{0:000}.inv.test' -f `$_ }
for (`$round = 1; `$round -le $Rounds; `$round++) {
    `$single = foreach (`$n in `$names) { `$sw = [Diagnostics.Stopwatch]::StartNew(); `$r = @(Get-EmailFlowInventory -ConfigPath `$cfg -Domain `$n -ThrottleLimit $ThrottleLimit); `$sw.Stop(); if (`$r.Count -lt 1) { throw "no item for `$n" }; `$sw.Elapsed.TotalMilliseconds }
    `$sw = [Diagnostics.Stopwatch]::StartNew()
    `$all = @(Get-EmailFlowInventory -ConfigPath `$cfg -ThrottleLimit $ThrottleLimit)
    `$sw.Stop()
    `$bad = @(`$all | Where-Object { `$_.Declared -and `$_.SpfAuthorised -ne `$true }).Count
    '{0}|{1:0}|{2:0}|{3:0}|{4}|{5}|{6}' -f `$round, `$sw.Elapsed.TotalMilliseconds, (`$single | Measure-Object -Maximum).Maximum, (`$single | Measure-Object -Sum).Sum, `$all.Count, `$bad, [Diagnostics.Process]::GetCurrentProcess().PeakWorkingSet64
}
"@
    $out = & $exe @prefix -NoProfile -NonInteractive -Command $script 2>&1
    $lines = @($out | Where-Object { $_ -match '^\d+\|' })
    if ($lines.Count -eq 0) { throw "the inventory runs failed:`n$($out -join "`n")" }
    foreach ($line in $lines) {
        $p = $line -split '\|'
        Write-Host ('round {0}: {1} domains in one run {2} ms ({5} items, {6} declared flows not authorised); slowest single domain {3} ms; sum of the {1} single runs {4} ms; ratio all/slowest {7:0.0}, all/sum {8:0.00}; peak memory {9:0} MB' -f
            $p[0], $Domains, $p[1], $p[2], $p[3], $p[4], $p[5], ([double]$p[1] / [double]$p[2]), ([double]$p[1] / [double]$p[3]), ([double]$p[6] / 1MB))
    }
    Write-Host 'No reference tool: the figure is the 100-domain run against its slowest domain (lookups concurrent: far below the sum of the single runs).'
}
finally {
    if ($nsdPid) { & kill -TERM $nsdPid 2>&1 | Out-Null }
    Start-Sleep -Milliseconds 300
    Remove-Item -Recurse -Force $scratch -ErrorAction SilentlyContinue
}
