<#
.SYNOPSIS
Provider attribution against a real DNS server: Resolve-MailProvider on 100,000 distinct domains served by a
scratch nsd on loopback, and dnsperf (the reference tool) on the same server in the same run with the same queries
(each domain's MX and NS). Prints both rates and their ratio (goal: MailOps at least half of dnsperf's rate).

.DESCRIPTION
The zone bench.test holds the domains d000000..d099999, each with MX records pointing at a few provider-like mail
hosts (mx1..mx40.mail.ovh.net, aspmx.l.google.com...), whose addresses have IP-to-AS answers in an
origin.asn.cymru.com zone. Per domain Resolve-MailProvider asks MX and NS (the NS of bench.test, the mail hosts'
addresses and AS answers are asked once for all); dnsperf replays exactly those MX and NS queries.
Resolve-MailProvider runs with -NoCache (no store reads or writes: the DNS rate is what is measured), then once more
with the store cache on (what a user's first run costs, writing 100,000 attributions to SQLite).
#>
param([int]$Domains = 100000, [int]$MaxConcurrency = 64)
$ErrorActionPreference = 'Stop'
$PSStyle.OutputRendering = 'PlainText'
$module = Join-Path $env:MAILOPS_MODULE 'MailOps.psd1'
$exe = [Environment]::ProcessPath
$prefix = [string[]]@(); if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $prefix = [string[]]@((Join-Path $PSHOME 'pwsh.dll')) }

foreach ($tool in @(@{ c = 'nsd'; p = 'nsd' }, @{ c = 'dnsperf'; p = 'dnsperf' })) {
    if (-not (Get-Command $tool.c -ErrorAction SilentlyContinue)) {
        Write-Host "installing $($tool.p) (apt-get)"
        & apt-get install -y -q $tool.p 2>&1 | Out-Null
        if ($LASTEXITCODE -ne 0) { & apt-get update -q 2>&1 | Out-Null; & apt-get install -y -q $tool.p 2>&1 | Out-Null }
        if (-not (Get-Command $tool.c -ErrorAction SilentlyContinue)) { throw "$($tool.p) could not be installed" }
    }
}
if (Test-Path /etc/systemd/system/multi-user.target.wants/nsd.service) { }  # the packaged service is not used

$scratch = Join-Path ([IO.Path]::GetTempPath()) ("mailops-bench-dns-" + [Guid]::NewGuid().ToString('N').Substring(0, 8))
New-Item -ItemType Directory $scratch | Out-Null
$nsdPid = $null
try {
    # a free port
    $l = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0); $l.Start(); $port = $l.LocalEndpoint.Port; $l.Stop()

    # zones
    $hosts = @(1..40 | ForEach-Object { "mx$_.mail.ovh.net" }) + @('aspmx.l.google.com', 'alt1.aspmx.l.google.com', 'contoso.mail.protection.outlook.com', 'mx.example-hosting.net')
    $sb = [System.Text.StringBuilder]::new()
    [void]$sb.Append("`$ORIGIN bench.test.`n`$TTL 3600`n@ IN SOA ns1.bench.test. hostmaster.bench.test. ( 1 3600 600 86400 300 )`n@ IN NS dns10.ovh.net.`n@ IN NS ns10.ovh.net.`n")
    $queries = [System.Text.StringBuilder]::new()
    for ($i = 0; $i -lt $Domains; $i++) {
        $d = 'd{0:000000}' -f $i
        [void]$sb.Append("$d IN MX 1 $($hosts[$i % $hosts.Count]).`n$d IN MX 5 $($hosts[($i + 7) % $hosts.Count]).`n")
        [void]$queries.Append("$d.bench.test MX`n$d.bench.test NS`n")
    }
    [IO.File]::WriteAllText("$scratch/bench.test.zone", $sb.ToString())
    [IO.File]::WriteAllText("$scratch/queries.txt", $queries.ToString())
    $zones = [ordered]@{
        'ovh.net'              = (@(1..40 | ForEach-Object { "mx$_.mail IN A 192.0.2.$_" }) + 'dns10 IN A 192.0.2.100', 'ns10 IN A 192.0.2.101')
        'google.com'           = @('aspmx.l IN A 198.51.100.1', 'alt1.aspmx.l IN A 198.51.100.2')
        'outlook.com'          = @('contoso.mail.protection IN A 198.51.100.10')
        'example-hosting.net'  = @('mx IN A 203.0.113.5')
        'origin.asn.cymru.com' = (@(1..40 | ForEach-Object { "$_.2.0.192 IN TXT `"16276 | 192.0.2.0/24 | FR | ripencc | 2004-01-01`"" }) +
            '1.100.51.198 IN TXT "15169 | 198.51.100.0/26 | US | arin | 2004-01-01"', '2.100.51.198 IN TXT "15169 | 198.51.100.0/26 | US | arin | 2004-01-01"',
            '10.100.51.198 IN TXT "8075 | 198.51.100.0/26 | US | arin | 2004-01-01"', '5.113.0.203 IN TXT "64500 | 203.0.113.0/24 | ZZ | test | 2004-01-01"')
    }
    $conf = "server:`n    ip-address: 127.0.0.1@$port`n    port: $port`n    username: `"`"`n    chroot: `"`"`n    zonesdir: `"$scratch`"`n    database: `"`"`n    zonelistfile: `"$scratch/zone.list`"`n    xfrdfile: `"$scratch/xfrd.state`"`n    pidfile: `"$scratch/nsd.pid`"`n    logfile: `"$scratch/nsd.log`"`n    server-count: 2`n    verbosity: 0`n    rrl-ratelimit: 0`n    rrl-whitelist-ratelimit: 0`nremote-control:`n    control-enable: no`nzone:`n    name: bench.test`n    zonefile: `"bench.test.zone`"`n"
    foreach ($z in $zones.Keys) {
        [IO.File]::WriteAllText("$scratch/$z.zone", "`$ORIGIN $z.`n`$TTL 3600`n@ IN SOA ns1.bench.test. hostmaster.bench.test. ( 1 3600 600 86400 300 )`n@ IN NS ns1.bench.test.`n" + ($zones[$z] -join "`n") + "`n")
        $conf += "zone:`n    name: $z`n    zonefile: `"$z.zone`"`n"
    }
    [IO.File]::WriteAllText("$scratch/nsd.conf", $conf)
    & sh -c "nsd -c '$scratch/nsd.conf' >'$scratch/start.log' 2>&1 </dev/null"
    $deadline = (Get-Date).AddSeconds(60)
    do { Start-Sleep -Milliseconds 200; $nsdPid = @(& cat "$scratch/nsd.pid" 2>$null)[0] } until ($nsdPid -or (Get-Date) -gt $deadline)
    if (-not $nsdPid) { throw "nsd did not start: $(Get-Content -Raw "$scratch/start.log" -ErrorAction SilentlyContinue)" }
    do { Start-Sleep -Milliseconds 300; $probe = & dig +short -p $port '@127.0.0.1' d000000.bench.test MX 2>$null } until ($probe -or (Get-Date) -gt $deadline)
    Write-Host "nsd on 127.0.0.1:$port serves $Domains domains (bench.test) and the provider zones"

    # 1. dnsperf: the same MX and NS queries, once through
    $perf = & dnsperf -s 127.0.0.1 -p $port -d "$scratch/queries.txt" -n 1 -c 4 -q 256 2>&1
    $qps = [double](($perf | Select-String 'Queries per second:\s+([\d.]+)').Matches[0].Groups[1].Value)
    $lost = ($perf | Select-String 'Queries lost:\s+(\d+)').Matches[0].Groups[1].Value
    Write-Host ('dnsperf:              {0} queries, {1:0} queries/s (lost {2})' -f (2 * $Domains), $qps, $lost)

    # 2. Resolve-MailProvider on the same domains, in a fresh pwsh, without and with the store cache
    $cfg = "$scratch/mailops.yaml"
    "version: 1`ndns:`n  servers: ['127.0.0.1:$port']`n  timeoutSeconds: 5`n  retries: 1`nstore:`n  provider: sqlite`n  path: '$scratch/store.db'`n" | Set-Content $cfg
    $results = @{}
    foreach ($mode in 'NoCache', 'Cache') {
        $flag = if ($mode -eq 'NoCache') { '-NoCache' } else { '' }
        $script = "Import-Module '$module'; `$names = 0..$($Domains - 1) | ForEach-Object { 'd{0:000000}.bench.test' -f `$_ }; " +
            "`$sw = [Diagnostics.Stopwatch]::StartNew(); `$v = `$null; `$ovh = 0; `$unknown = 0; " +
            "Resolve-MailProvider -Name `$names -ConfigPath '$cfg' -MaxConcurrency $MaxConcurrency $flag -Verbose 4>&1 | ForEach-Object { if (`$_ -is [System.Management.Automation.VerboseRecord]) { `$v = `$_.Message } elseif (`$_.Provider -eq 'OVH') { `$ovh++ } elseif (`$_.Status -ne 'Resolved') { `$unknown++ } }; " +
            "'{0:0.00}|{1}|{2}|{3}|{4}' -f `$sw.Elapsed.TotalSeconds, `$ovh, `$unknown, [Diagnostics.Process]::GetCurrentProcess().PeakWorkingSet64, `$v"
        $out = & $exe @prefix -NoProfile -NonInteractive -Command $script 2>&1
        $line = @($out | Where-Object { $_ -match '^\d+\.\d+\|' })[-1]
        if (-not $line) { throw "Resolve-MailProvider run failed:`n$($out -join "`n")" }
        $p = $line -split '\|', 5
        $lookups = [double](([regex]::Match($p[4], 'with (\d+) DNS lookup')).Groups[1].Value)
        $seconds = [double]$p[0]
        $results[$mode] = $lookups / $seconds
        Write-Host ('Resolve-MailProvider ({0}): {1} domains in {2:0.0} s = {3:0} domains/s, {4} DNS lookups = {5:0} lookups/s; OVH {6}, not resolved {7}; peak memory {8:0} MB' -f
            $mode, $Domains, $seconds, ($Domains / $seconds), $lookups, ($lookups / $seconds), $p[1], $p[2], ([double]$p[3] / 1MB))
    }
    Write-Host ('ratio MailOps/dnsperf query rate: {0:0.00} without the store cache, {1:0.00} with it (goal >= 0.5)' -f ($results['NoCache'] / $qps), ($results['Cache'] / $qps))
}
finally {
    if ($nsdPid) { & kill -TERM $nsdPid 2>&1 | Out-Null }
    Start-Sleep -Milliseconds 300
    Remove-Item -Recurse -Force $scratch -ErrorAction SilentlyContinue
}
