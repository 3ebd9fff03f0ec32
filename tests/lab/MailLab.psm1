# The MailOps lab: real mail servers on loopback for the tests and the demo.
#
#   Start-MailLab  installs what is missing (as root), renders every configuration into a fresh scratch folder,
#                  starts Dovecot, three Postfix instances (primary, secondary, open relay), two misbehaving smtp-sink
#                  "remote hosts", nsd with the lab's DNS zones and a throwaway PostgreSQL cluster, each on a free
#                  loopback port, waits until each answers, and writes lab.json (ports, domains, credentials) and a
#                  MailOps configuration for the lab.
#   Stop-MailLab   stops every process the lab started, by PID (never by name), and reports any that survived.
#
# Nothing listens beyond 127.0.0.0/8. Everything is under the lab folder; nothing in /etc is changed except by
# apt-get when packages are missing.

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

$script:Templates = Join-Path $PSScriptRoot 'templates'

# Debian packages the lab needs, with a command that shows each is present.
$script:Packages = [ordered]@{
    'postfix'            = { Test-Path /usr/sbin/postfix }
    'nsd'                = { Test-Path /usr/sbin/nsd }
    'dovecot-imapd'      = { Test-Path /usr/sbin/dovecot }
    'swaks'              = { Test-Path /usr/bin/swaks }
    'libnet-ssleay-perl' = { & perl -MNet::SSLeay -e 1 2>$null; $LASTEXITCODE -eq 0 }
    'bind9-dnsutils'     = { Test-Path /usr/bin/dig }
    'openssl'            = { Test-Path /usr/bin/openssl }
    'postgresql'         = { @(Get-ChildItem /usr/lib/postgresql/*/bin/initdb -ErrorAction SilentlyContinue).Count -gt 0 }
    # an independent DKIM verifier (dkimpy) for the mail the send engine signs
    'python3-dkim'       = { & /usr/bin/python3 -c 'import dkim' 2>$null; $LASTEXITCODE -eq 0 }
    # the reference the traffic totals are checked against (issue 7)
    'pflogsumm'          = { Test-Path /usr/sbin/pflogsumm }
    # a headless browser and a PDF-to-text reader: what the inventory's HTML page shows, as a browser renders it (issue 8)
    'chromium'           = { Test-Path /usr/bin/chromium }
    'poppler-utils'      = { Test-Path /usr/bin/pdftotext }
}

function Install-MailLabPackage {
    <#
    .SYNOPSIS
    Installs the Debian packages the lab needs (as root), or says exactly what to install (otherwise).
    #>
    [CmdletBinding()]
    param()
    $missing = @($script:Packages.Keys | Where-Object { -not (& $script:Packages[$_]) })
    if ($missing.Count -eq 0) { return }
    $command = "apt-get install -y --no-install-recommends $($missing -join ' ')"
    if ((& id -u) -ne '0') {
        throw "The mail lab needs these Debian packages: $($missing -join ', '). Install them as root: sudo apt-get update && sudo $command"
    }
    Write-Host "lab: installing $($missing -join ', ')"
    $env:DEBIAN_FRONTEND = 'noninteractive'
    'postfix postfix/main_mailer_type select No configuration' | & debconf-set-selections
    & apt-get update -qq 2>&1 | Out-Null
    if ($LASTEXITCODE -ne 0) { throw "apt-get update failed (exit $LASTEXITCODE)." }
    $log = & apt-get install -y -qq --no-install-recommends @missing 2>&1
    if ($LASTEXITCODE -ne 0) { throw "'$command' failed (exit $LASTEXITCODE):`n$($log -join "`n")" }
    $still = @($missing | Where-Object { -not (& $script:Packages[$_]) })
    if ($still.Count) { throw "After apt-get install, still missing: $($still -join ', ')." }
}

function Get-FreeTcpPort {
    # Binds every listener before closing any, so the ports are distinct; UDP is checked too (nsd needs both).
    param([int]$Count)
    $listeners = @()
    $ports = @()
    try {
        while ($ports.Count -lt $Count) {
            $l = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
            $l.Start()
            $port = ([System.Net.IPEndPoint]$l.LocalEndpoint).Port
            $listeners += $l
            try {
                $u = [System.Net.Sockets.UdpClient]::new([System.Net.IPEndPoint]::new([System.Net.IPAddress]::Loopback, $port))
                $u.Dispose()
                $ports += $port
            }
            catch { continue }
        }
    }
    finally {
        $listeners | ForEach-Object { $_.Stop() }
    }
    return $ports
}

function Expand-Template {
    param([string]$Text, [hashtable]$Tokens)
    foreach ($k in $Tokens.Keys) { $Text = $Text.Replace("@$k@", [string]$Tokens[$k]) }
    if ($Text -match '@[A-Z_]+@') { throw "Unreplaced token $($Matches[0]) in a lab template." }
    return $Text
}

function Write-Template {
    param([string]$Source, [string]$Destination, [hashtable]$Tokens)
    $text = Expand-Template -Text ([System.IO.File]::ReadAllText($Source)) -Tokens $Tokens
    [System.IO.File]::WriteAllText($Destination, $text)
}

function Invoke-Native {
    # Runs a program and throws with its output when it fails.
    param([string]$File, [string[]]$Arguments, [string]$What)
    $out = & $File @Arguments 2>&1
    if ($LASTEXITCODE -ne 0) { throw "$What failed (exit $LASTEXITCODE): $File $($Arguments -join ' ')`n$($out -join "`n")" }
    return $out
}

function Start-Daemon {
    # Runs a program that forks into the background, with its standard streams sent to a log file: a daemon that
    # kept our pipe open would make PowerShell wait for it forever.
    param([string]$File, [string[]]$Arguments, [string]$What, [string]$Log)
    $quoted = ($File, $Arguments | ForEach-Object { $_ } | ForEach-Object { "'" + ($_ -replace "'", "'\''") + "'" }) -join ' '
    & sh -c "$quoted >>'$Log' 2>&1 </dev/null"
    if ($LASTEXITCODE -ne 0) {
        $text = if (Test-Path $Log) { (Get-Content -Raw $Log) } else { '' }
        throw "$What failed (exit $LASTEXITCODE): $File $($Arguments -join ' ')`n$text"
    }
}

function Test-TcpPort {
    param([string]$Address = '127.0.0.1', [int]$Port)
    $c = [System.Net.Sockets.TcpClient]::new()
    try { return ($c.ConnectAsync($Address, $Port).Wait(500) -and $c.Connected) }
    catch { return $false }
    finally { $c.Dispose() }
}

function Wait-TcpPort {
    param([string]$Address = '127.0.0.1', [int]$Port, [string]$Name, [int]$TimeoutSeconds = 20, [switch]$Closed)
    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    while ([DateTime]::UtcNow -lt $deadline) {
        if ((Test-TcpPort -Address $Address -Port $Port) -ne [bool]$Closed) { return }
        Start-Sleep -Milliseconds 100
    }
    throw "$Name did not $(if ($Closed) { 'stop' } else { 'start' }) listening on ${Address}:$Port within $TimeoutSeconds s."
}

function Read-PidFile {
    param([string]$Path)
    if (-not (Test-Path $Path)) { return $null }
    # cat, not Get-Content: daemons hold a lock on their pid file that .NET's file sharing check refuses
    $first = @(& cat $Path 2>$null)[0]
    if ($first -match '^\s*(\d+)') { return [int]$Matches[1] }
    return $null
}

function Test-ProcessAlive {
    param([int]$Id)
    return (Test-Path "/proc/$Id") -and -not ((Get-Content "/proc/$Id/stat" -ErrorAction SilentlyContinue) -match '^\d+ \(.*\) Z ')
}

function New-LabCertificates {
    # Made with .NET rather than openssl so that validity periods can lie in the past (an expired certificate).
    param([string]$Folder)
    $X = 'System.Security.Cryptography.X509Certificates'
    $now = [DateTimeOffset]::UtcNow
    $caKey = [System.Security.Cryptography.RSA]::Create(2048)
    $caReq = New-Object "$X.CertificateRequest" 'CN=MailOps Lab CA', $caKey, ([System.Security.Cryptography.HashAlgorithmName]::SHA256), ([System.Security.Cryptography.RSASignaturePadding]::Pkcs1)
    $caReq.CertificateExtensions.Add((New-Object "$X.X509BasicConstraintsExtension" $true, $false, 0, $true))
    $caReq.CertificateExtensions.Add((New-Object "$X.X509KeyUsageExtension" ([System.Security.Cryptography.X509Certificates.X509KeyUsageFlags]'KeyCertSign, CrlSign'), $true))
    $ca = $caReq.CreateSelfSigned($now.AddDays(-60), $now.AddDays(60))
    [System.IO.File]::WriteAllText("$Folder/ca.crt", $ca.ExportCertificatePem() + "`n")
    [System.IO.File]::WriteAllText("$Folder/ca.key", $caKey.ExportPkcs8PrivateKeyPem())
    $leaf = {
        param([string]$File, [string]$CommonName, [string[]]$Dns, [string[]]$Ip, [DateTimeOffset]$From, [DateTimeOffset]$To)
        $key = [System.Security.Cryptography.RSA]::Create(2048)
        $req = New-Object "$X.CertificateRequest" "CN=$CommonName", $key, ([System.Security.Cryptography.HashAlgorithmName]::SHA256), ([System.Security.Cryptography.RSASignaturePadding]::Pkcs1)
        $san = New-Object "$X.SubjectAlternativeNameBuilder"
        foreach ($d in $Dns) { $san.AddDnsName($d) }
        foreach ($i in $Ip) { $san.AddIpAddress([System.Net.IPAddress]::Parse($i)) }
        $req.CertificateExtensions.Add($san.Build())
        $eku = New-Object System.Security.Cryptography.OidCollection
        [void]$eku.Add((New-Object System.Security.Cryptography.Oid '1.3.6.1.5.5.7.3.1'))
        $req.CertificateExtensions.Add((New-Object "$X.X509EnhancedKeyUsageExtension" $eku, $false))
        $serial = [byte[]]::new(12); [System.Security.Cryptography.RandomNumberGenerator]::Fill($serial); $serial[0] = $serial[0] -band 0x7f
        $cert = $req.Create($ca, $From, $To, $serial)
        [System.IO.File]::WriteAllText("$Folder/$File.crt", $cert.ExportCertificatePem() + "`n" + $ca.ExportCertificatePem() + "`n")
        [System.IO.File]::WriteAllText("$Folder/$File.key", $key.ExportPkcs8PrivateKeyPem())
    }
    $names = 'mx1.lab.test', 'mx2.lab.test', 'openrelay.lab.test'
    & $leaf 'lab' 'mx1.lab.test' $names @('127.0.0.1') $now.AddDays(-1) $now.AddDays(45)
    & $leaf 'expired' 'mx1.lab.test' $names @('127.0.0.1') $now.AddDays(-40) $now.AddDays(-2)
    & $leaf 'soon' 'mx1.lab.test' $names @('127.0.0.1') $now.AddDays(-20) $now.AddDays(10).AddHours(1)
    & $leaf 'mismatch' 'wrong.example' @('wrong.example') @() $now.AddDays(-1) $now.AddDays(45)
}

function New-LabZones {
    # The lab's DNS: a sender domain with MX, SPF, DKIM, DMARC and PTR records; recipient domains hosted at
    # provider-like names (the real zone names, served only by this loopback nsd); test DNSBL zones.
    param([string]$DkimPublicKey)
    $dkim = "v=DKIM1; k=rsa; p=$DkimPublicKey"
    $chunks = for ($i = 0; $i -lt $dkim.Length; $i += 200) { '"' + $dkim.Substring($i, [Math]::Min(200, $dkim.Length - $i)) + '"' }
    [ordered]@{
        'lab.test'           = @(
            '@ IN MX 10 mx1.lab.test.'
            '@ IN MX 20 mx2.lab.test.'
            '@ IN TXT "v=spf1 ip4:127.0.0.1 include:_spf.lab.test -all"'
            '_spf IN TXT "v=spf1 ip4:127.0.0.2 -all"'
            '_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@sink.test; adkim=r; aspf=r"'
            "mailops._domainkey IN TXT ( $($chunks -join ' ') )"
            '_mta-sts IN TXT "v=STSv1; id=20261124"'
            '_smtp._tls IN TXT "v=TLSRPTv1; rua=mailto:tls@sink.test"'
            'ns1 IN A 127.0.0.1'
            'mx1 IN A 127.0.0.1'
            'mx2 IN A 127.0.0.2'
            'nomx IN A 127.0.0.3'
        )
        # the flow inventory's domains: corp.test authorises its own relay through three levels of includes, an ESP
        # (SendGrid) and a marketing service (Mailchimp) nobody declared; legacy.test needs more than ten DNS lookups
        'corp.test'          = @(
            '@ IN MX 10 mx1.lab.test.'
            '@ IN TXT "v=spf1 mx include:_spf.corp.test include:sendgrid.net include:servers.mcsv.net ~all"'
            '_spf IN TXT "v=spf1 ip4:127.0.0.1 include:_partners.corp.test -all"'
            '_partners IN TXT "v=spf1 ip4:198.51.100.0/24 -all"'
            '_dmarc IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@sink.test; adkim=r; aspf=r"'
            "mailops._domainkey IN TXT ( $($chunks -join ' ') )"
            "s1._domainkey IN TXT ( $($chunks -join ' ') )"
        )
        'legacy.test'        = @(
            '@ IN MX 10 mx1.lab.test.'
            '@ IN TXT "v=spf1 a mx include:_a.legacy.test include:_b.legacy.test include:_c.legacy.test ~all"'
            '_a IN TXT "v=spf1 a:h1.legacy.test a:h2.legacy.test a:h3.legacy.test -all"'
            '_b IN TXT "v=spf1 a:h4.legacy.test a:h5.legacy.test -all"'
            '_c IN TXT "v=spf1 a:h6.legacy.test mx:legacy.test -all"'
            'h1 IN A 127.0.6.1'
            'h2 IN A 127.0.6.2'
            'h3 IN A 127.0.6.3'
            'h4 IN A 127.0.6.4'
            'h5 IN A 127.0.6.5'
            'h6 IN A 127.0.6.6'
            '_dmarc IN TXT "v=DMARC1; p=none"'
        )
        'sendgrid.net'       = @(
            '@ IN TXT "v=spf1 ip4:127.0.4.0/24 -all"'
        )
        'mcsv.net'           = @(
            'servers IN TXT "v=spf1 ip4:127.0.5.0/24 -all"'
        )
        '127.in-addr.arpa'   = @(
            '1.0.0 IN PTR mx1.lab.test.'
            '2.0.0 IN PTR mx2.lab.test.'
            '1.4.0 IN PTR o1.ptr4001.sendgrid.net.'
            '1.5.0 IN PTR mail1.suw91.mcsv.net.'
            '1.1.0 IN PTR mx1.mail.ovh.net.'
            '2.1.0 IN PTR mx2.mail.ovh.net.'
            '1.2.0 IN PTR aspmx.l.google.com.'
            '1.3.0 IN PTR mail-protection.outlook.com.'
        )
        # provider-like hosts
        'ovh.net'            = @(
            'mx1.mail IN A 127.0.1.1'
            'mx2.mail IN A 127.0.1.2'
            'dns10 IN A 127.0.1.10'
            'ns10 IN A 127.0.1.11'
        )
        'google.com'         = @(
            'aspmx.l IN A 127.0.2.1'
            'alt1.aspmx.l IN A 127.0.2.2'
            'ns1 IN A 127.0.2.10'
            '_spf IN TXT "v=spf1 ip4:127.0.2.0/24 ~all"'
        )
        'outlook.com'        = @(
            'agence-m365-test.mail.protection IN A 127.0.3.1'
            'spf.protection IN TXT "v=spf1 ip4:127.0.3.0/24 -all"'
        )
        'azure-dns.com'      = @(
            'ns1-01 IN A 127.0.3.10'
        )
        # recipient domains hosted at those providers
        'boulangerie-martin.test' = @('@ IN MX 1 mx1.mail.ovh.net.', '@ IN MX 5 mx2.mail.ovh.net.', '@ IN NS dns10.ovh.net.', '@ IN NS ns10.ovh.net.')
        'cabinet-durand.test'     = @('@ IN MX 1 mx1.mail.ovh.net.', '@ IN NS dns10.ovh.net.', '@ IN NS ns10.ovh.net.')
        'startup-google.test'     = @('@ IN MX 1 aspmx.l.google.com.', '@ IN MX 5 alt1.aspmx.l.google.com.', '@ IN NS ns1.google.com.')
        'agence-m365.test'        = @('@ IN MX 0 agence-m365-test.mail.protection.outlook.com.', '@ IN NS ns1-01.azure-dns.com.')
        # IP-to-AS answers in Team Cymru's format for the provider addresses (the real zone name, served only here)
        'origin.asn.cymru.com'    = @(
            '1.1.0.127 IN TXT "16276 | 127.0.1.0/24 | FR | ripencc | 2026-11-25"'
            '2.1.0.127 IN TXT "16276 | 127.0.1.0/24 | FR | ripencc | 2026-11-25"'
            '1.2.0.127 IN TXT "15169 | 127.0.2.0/24 | US | arin | 2026-11-25"'
            '2.2.0.127 IN TXT "15169 | 127.0.2.0/24 | US | arin | 2026-11-25"'
            '1.3.0.127 IN TXT "8075 | 127.0.3.0/24 | US | arin | 2026-11-25"'
            '1.4.0.127 IN TXT "11377 | 127.0.4.0/24 | US | arin | 2026-11-25"'
            '1.5.0.127 IN TXT "394025 | 127.0.5.0/24 | US | arin | 2026-11-25"'
        )
        # DNSBL zones (RFC 5782 layout): one lists 127.0.0.1, one lists only the mandatory test entry 127.0.0.2
        'bl-listed.test'          = @('1.0.0.127 IN A 127.0.0.2', '1.0.0.127 IN TXT "Listed in the MailOps lab DNSBL"', '2.0.0.127 IN A 127.0.0.2')
        'bl-clean.test'           = @('2.0.0.127 IN A 127.0.0.2')
    }
}

function Write-LabZone {
    param([string]$Folder, [string]$Zone, [string[]]$Records)
    $lines = @(
        "`$ORIGIN $Zone."
        '$TTL 300'
        '@ IN SOA ns1.lab.test. hostmaster.lab.test. ( 2026112501 3600 600 86400 300 )'
    )
    if (-not ($Records | Where-Object { $_ -match '^@ IN NS ' })) { $lines += '@ IN NS ns1.lab.test.' }
    $lines += $Records
    [System.IO.File]::WriteAllText((Join-Path $Folder "$Zone.zone"), ($lines -join "`n") + "`n")
}

function Stop-StaleMailLab {
    # A lab whose owner process died (a killed test run) is stopped before a new one starts.
    foreach ($file in Get-ChildItem -Path ([System.IO.Path]::GetTempPath()) -Filter 'mailops-lab-*' -Directory -ErrorAction SilentlyContinue |
            ForEach-Object { Join-Path $_.FullName 'lab.json' } | Where-Object { Test-Path $_ }) {
        try {
            $lab = Get-Content -Raw $file | ConvertFrom-Json
            if (-not (Test-ProcessAlive $lab.ownerPid)) {
                Write-Host "lab: stopping a stale lab at $($lab.root) (its owner $($lab.ownerPid) is gone)"
                Stop-MailLab -Lab $lab -Quiet | Out-Null
            }
        }
        catch { Write-Warning "lab: could not read $file : $_" }
    }
}

function Start-MailLab {
    <#
    .SYNOPSIS
    Starts the mail lab on free loopback ports and returns its description (also written to <root>/lab.json).
    #>
    [CmdletBinding()]
    param(
        # Scratch folder (created, must not exist); default: a new folder under the system temp folder.
        [string]$Root,
        # Skip PostgreSQL (tests that only need mail and DNS).
        [switch]$NoPostgres
    )
    Install-MailLabPackage
    Stop-StaleMailLab
    if (-not $Root) { $Root = Join-Path ([System.IO.Path]::GetTempPath()) ("mailops-lab-" + [Guid]::NewGuid().ToString('N').Substring(0, 8)) }
    if (Test-Path $Root) { throw "The lab folder '$Root' already exists; give a new one." }
    $Root = [System.IO.Path]::GetFullPath($Root)
    New-Item -ItemType Directory -Path $Root | Out-Null
    & chmod 755 $Root

    $names = 'PRIMARY_SMTP', 'PRIMARY_SUBMISSION', 'SECONDARY_SMTP', 'SECONDARY_SUBMISSION', 'OPENRELAY_SMTP',
    'IMAP_PORT', 'DNS_PORT', 'TIMEOUT_PORT', 'STALL_PORT', 'REFUSED_PORT', 'PG_PORT', 'WEBHOOK_PORT',
    'EXPIRED_PORT', 'SOON_PORT', 'MISMATCH_PORT', 'BADTLS_PORT', 'AUTHCLEAR_PORT', 'PROVIDER_MX_PORT', 'SECONDARY_LIMITED'
    $free = Get-FreeTcpPort -Count $names.Count
    $t = @{ LAB = $Root; POSTFIX_UID = (& id -u postfix); POSTFIX_GID = (& id -g postfix) }
    for ($i = 0; $i -lt $names.Count; $i++) { $t[$names[$i]] = $free[$i] }

    $lab = [ordered]@{
        root      = $Root
        ownerPid  = $PID
        started   = [DateTime]::UtcNow.ToString('o')
        host      = '127.0.0.1'
        smtp      = [ordered]@{
            primary   = [ordered]@{ port = $t.PRIMARY_SMTP; submission = $t.PRIMARY_SUBMISSION; hostName = 'mx1.lab.test'; log = "$Root/postfix-primary/log/maillog"; config = "$Root/postfix-primary/etc" }
            secondary = [ordered]@{ port = $t.SECONDARY_SMTP; submission = $t.SECONDARY_SUBMISSION; limited = $t.SECONDARY_LIMITED; hostName = 'mx2.lab.test'; log = "$Root/postfix-secondary/log/maillog"; config = "$Root/postfix-secondary/etc" }
            openRelay = [ordered]@{ port = $t.OPENRELAY_SMTP; hostName = 'openrelay.lab.test'; log = "$Root/postfix-open-relay/log/maillog"; config = "$Root/postfix-open-relay/etc" }
            tlsExpired       = $t.EXPIRED_PORT
            tlsExpiresSoon   = $t.SOON_PORT
            tlsNameMismatch  = $t.MISMATCH_PORT
            tlsBroken        = $t.BADTLS_PORT
            authBeforeTls    = $t.AUTHCLEAR_PORT
            neverGreets      = $t.TIMEOUT_PORT
            neverAnswersEhlo = $t.STALL_PORT
            refused          = $t.REFUSED_PORT
        }
        providerMx = [ordered]@{ port = $t.PROVIDER_MX_PORT; ovh = '127.0.1.1'; google = '127.0.2.1'; microsoft = '127.0.3.1'
            config = "$Root/postfix-provider-mx/etc"; log = "$Root/postfix-provider-mx/log/maillog"; mail = "$Root/postfix-provider-mx/mail" }
        sasl      = [ordered]@{ user = 'relay'; password = 'relaypass' }
        imap      = [ordered]@{ port = $t.IMAP_PORT; user = 'sink'; password = 'sinkpass'; maildir = "$Root/postfix-primary/mail/sink" }
        dns       = [ordered]@{ port = $t.DNS_PORT; zones = @() }
        tls       = [ordered]@{ ca = "$Root/tls/ca.crt"; certificate = "$Root/tls/lab.crt"; names = @('mx1.lab.test', 'mx2.lab.test', 'openrelay.lab.test', '127.0.0.1') }
        domains   = [ordered]@{
            sender      = 'lab.test'
            sink        = 'sink.test'
            discard     = 'discard.test'
            remote      = 'remote.test'
            ovh         = @('boulangerie-martin.test', 'cabinet-durand.test')
            google      = @('startup-google.test')
            microsoft   = @('agence-m365.test')
            dnsblListed = 'bl-listed.test'
            dnsblClean  = 'bl-clean.test'
        }
        webhook   = [ordered]@{ port = $t.WEBHOOK_PORT; url = "http://127.0.0.1:$($t.WEBHOOK_PORT)/hook"; received = "$Root/webhook/received.jsonl" }
        postgres  = $null
        processes = [System.Collections.Generic.List[object]]::new()
        config    = "$Root/mailops.yaml"
    }
    $labObject = $lab
    $saveLab = { ($labObject | ConvertTo-Json -Depth 6) | Set-Content -LiteralPath (Join-Path $Root 'lab.json') }
    & $saveLab

    try {
        # TLS: a lab CA, the relays' certificate it signed, and three faulty ones for the certificate checks
        $tls = New-Item -ItemType Directory -Path "$Root/tls"
        New-LabCertificates -Folder $tls.FullName
        & chmod 600 (Get-ChildItem "$tls/*.key").FullName

        # DKIM key for the sender domain (published in the lab.test zone)
        $dkimKey = [System.Security.Cryptography.RSA]::Create(2048)
        [System.IO.File]::WriteAllText("$tls/dkim.key", $dkimKey.ExportRSAPrivateKeyPem())
        $dkimPublic = [Convert]::ToBase64String($dkimKey.ExportSubjectPublicKeyInfo())
        $lab.dkim = [ordered]@{ domain = 'lab.test'; selector = 'mailops'; privateKey = "$tls/dkim.key" }

        # Dovecot: IMAP for the sink Maildir, SASL for the relays
        New-Item -ItemType Directory -Path "$Root/dovecot/home" -Force | Out-Null
        Write-Template "$script:Templates/dovecot/dovecot.conf" "$Root/dovecot/dovecot.conf" $t
        Copy-Item "$script:Templates/dovecot/users" "$Root/dovecot/users"
        Start-Daemon dovecot @('-c', "$Root/dovecot/dovecot.conf") 'Starting Dovecot' "$Root/dovecot/start.log"
        $lab.processes.Add([ordered]@{ name = 'dovecot'; pidFile = "$Root/dovecot/run/master.pid" })
        & $saveLab

        # Postfix: primary, secondary, open relay, and the provider mail hosts
        $common = [System.IO.File]::ReadAllText("$script:Templates/master-common.cf")
        foreach ($instance in 'postfix-primary', 'postfix-secondary', 'postfix-open-relay', 'postfix-provider-mx') {
            foreach ($d in 'etc', 'spool', 'data', 'log', 'mail') { New-Item -ItemType Directory -Path "$Root/$instance/$d" -Force | Out-Null }
            foreach ($f in Get-ChildItem "$script:Templates/$instance" -File) {
                Write-Template $f.FullName "$Root/$instance/etc/$($f.Name)" $t
            }
            $master = Expand-Template ([System.IO.File]::ReadAllText("$script:Templates/$instance/master.cf")) $t
            if ($instance -ne 'postfix-primary') { $master = $master -replace '(?m)^dnssmtp.*\n(\s+-o.*\n)*', '' }
            [System.IO.File]::WriteAllText("$Root/$instance/etc/master.cf", $master + $common)
            & chown postfix:postfix "$Root/$instance/data" "$Root/$instance/mail"
            Invoke-Native postfix @('-c', "$Root/$instance/etc", 'check') "postfix check ($instance)" | Out-Null
            Start-Daemon postfix @('-c', "$Root/$instance/etc", 'start') "Starting Postfix ($instance)" "$Root/$instance/log/start.log"
            $lab.processes.Add([ordered]@{ name = $instance; pidFile = "$Root/$instance/spool/pid/master.pid"; postfixConfig = "$Root/$instance/etc" })
            & $saveLab
        }

        # misbehaving "remote hosts": one never greets, one never answers EHLO
        foreach ($p in @(@{ n = 'smtp-sink-never-greets'; w = 'connect:3600'; port = $t.TIMEOUT_PORT }, @{ n = 'smtp-sink-never-answers-ehlo'; w = 'ehlo:3600'; port = $t.STALL_PORT })) {
            $sinkPid = & sh -c "smtp-sink -u postfix -W $($p.w) 127.0.0.1:$($p.port) 100 >/dev/null 2>&1 & echo `$!"
            $lab.processes.Add([ordered]@{ name = $p.n; pid = [int]$sinkPid })
        }
        & $saveLab

        # the webhook receiver (a real HTTP server that keeps what it is sent)
        New-Item -ItemType Directory -Path "$Root/webhook" | Out-Null
        $hookPid = & sh -c "/usr/bin/python3 '$script:Templates/../webhook/receiver.py' $($t.WEBHOOK_PORT) '$Root/webhook' >>'$Root/webhook/receiver.log' 2>&1 </dev/null & echo `$!"
        $lab.processes.Add([ordered]@{ name = 'webhook-receiver'; pid = [int]$hookPid })
        & $saveLab

        # nsd
        New-Item -ItemType Directory -Path "$Root/nsd" | Out-Null
        $conf = Expand-Template ([System.IO.File]::ReadAllText("$script:Templates/nsd/nsd.conf")) $t
        $zones = New-LabZones -DkimPublicKey $dkimPublic
        foreach ($z in $zones.Keys) {
            Write-LabZone -Folder "$Root/nsd" -Zone $z -Records $zones[$z]
            $conf += "zone:`n    name: $z`n    zonefile: `"$z.zone`"`n"
        }
        [System.IO.File]::WriteAllText("$Root/nsd/nsd.conf", $conf)
        $lab.dns.zones = @($zones.Keys)
        Invoke-Native nsd-checkconf @("$Root/nsd/nsd.conf") 'nsd-checkconf' | Out-Null
        Start-Daemon nsd @('-c', "$Root/nsd/nsd.conf") 'Starting nsd' "$Root/nsd/start.log"
        $lab.processes.Add([ordered]@{ name = 'nsd'; pidFile = "$Root/nsd/nsd.pid" })
        & $saveLab

        # PostgreSQL: a throwaway cluster in the lab folder
        if (-not $NoPostgres) {
            $bin = (Get-ChildItem /usr/lib/postgresql/*/bin/initdb | Sort-Object FullName | Select-Object -Last 1).DirectoryName
            $pg = "$Root/pg"
            New-Item -ItemType Directory -Path "$pg/run" -Force | Out-Null
            [System.IO.File]::WriteAllText("$pg/pwfile", "adminpass`n")
            & chown -R postgres:postgres $pg
            & chmod 600 "$pg/pwfile"
            Invoke-Native runuser @('-u', 'postgres', '--', "$bin/initdb", '-D', "$pg/data", '-U', 'postgres', "--pwfile=$pg/pwfile",
                '--auth-local=peer', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8') 'initdb' | Out-Null
            Start-Daemon runuser @('-u', 'postgres', '--', "$bin/pg_ctl", '-D', "$pg/data", '-l', "$pg/postgres.log", '-w',
                '-o', "-p $($t.PG_PORT) -k $pg/run -c listen_addresses=127.0.0.1", 'start') 'Starting PostgreSQL' "$pg/start.log"
            $lab.processes.Add([ordered]@{ name = 'postgres'; pidFile = "$pg/data/postmaster.pid"; pgData = "$pg/data"; pgBin = $bin })
            Invoke-Native runuser @('-u', 'postgres', '--', "$bin/psql", '-h', "$pg/run", '-p', "$($t.PG_PORT)", '-U', 'postgres', '-q',
                '-c', "CREATE ROLE mailops LOGIN PASSWORD 'mailopspass'", '-c', 'CREATE DATABASE mailops OWNER mailops') 'Creating the PostgreSQL role' | Out-Null
            $lab.postgres = [ordered]@{ port = $t.PG_PORT; user = 'mailops'; password = 'mailopspass'; database = 'mailops'
                connectionString = "Host=127.0.0.1;Port=$($t.PG_PORT);Username=mailops;Password=mailopspass;Database=mailops" }
            & $saveLab
        }

        foreach ($w in @(
                @{ p = $t.PRIMARY_SMTP; n = 'Postfix primary' }, @{ p = $t.PRIMARY_SUBMISSION; n = 'Postfix primary submission' },
                @{ p = $t.SECONDARY_SMTP; n = 'Postfix secondary' }, @{ p = $t.SECONDARY_SUBMISSION; n = 'Postfix secondary submission' }, @{ p = $t.SECONDARY_LIMITED; n = 'Postfix secondary (throttling)' },
                @{ p = $t.OPENRELAY_SMTP; n = 'Postfix open relay' }, @{ p = $t.IMAP_PORT; n = 'Dovecot IMAP' }, @{ p = $t.DNS_PORT; n = 'nsd' },
                @{ p = $t.EXPIRED_PORT; n = 'Postfix primary (expired certificate)' }, @{ p = $t.SOON_PORT; n = 'Postfix primary (certificate expiring soon)' },
                @{ p = $t.MISMATCH_PORT; n = 'Postfix primary (certificate for another name)' }, @{ p = $t.BADTLS_PORT; n = 'Postfix primary (broken TLS)' }, @{ p = $t.AUTHCLEAR_PORT; n = 'Postfix primary (AUTH before STARTTLS)' },
                @{ p = $t.TIMEOUT_PORT; n = 'smtp-sink (never greets)' }, @{ p = $t.STALL_PORT; n = 'smtp-sink (never answers EHLO)' }, @{ p = $t.WEBHOOK_PORT; n = 'webhook receiver' })) {
            Wait-TcpPort -Port $w.p -Name $w.n
        }
        foreach ($a in '127.0.1.1', '127.0.2.1', '127.0.3.1') { Wait-TcpPort -Address $a -Port $t.PROVIDER_MX_PORT -Name "provider mail host $a" }

        Write-LabConfig -Lab $lab
        & $saveLab
    }
    catch {
        $failure = $_
        Write-Warning "lab: start failed, stopping what was started: $failure"
        Stop-MailLab -Lab ($lab | ConvertTo-Json -Depth 6 | ConvertFrom-Json) -Quiet | Out-Null
        throw $failure
    }
    return (Get-Content -Raw (Join-Path $Root 'lab.json') | ConvertFrom-Json)
}

function Write-LabConfig {
    # A MailOps configuration that points at the lab (used by the demo and the tests).
    param($Lab)
    $yaml = @"
# MailOps configuration for the lab at $($Lab.root) (generated by tests/lab/MailLab.psm1).
version: 1
dns:
  servers: ['127.0.0.1:$($Lab.dns.port)']
  timeoutSeconds: 2
  retries: 0
  dnsblZones: [bl-clean.test]     # bl-listed.test lists 127.0.0.1 (tests name it with -DnsblZone)
store:
  provider: sqlite
  path: $($Lab.root)/store/mailops.db
domains:
  - name: lab.test
    dkimSelectors: [mailops]
  - name: corp.test
    dkimSelectors: [mailops]
  - name: legacy.test
relays:
  - name: primary
    host: 127.0.0.1
    port: $($Lab.smtp.primary.submission)
    security: StartTls
    role: primary
    credential: lab-relay
    heloName: client.lab.test
    timeoutSeconds: 10
    caFile: $($Lab.tls.ca)
    log: $($Lab.smtp.primary.log)
    egress: [127.0.0.1]
    description: Lab primary (Postfix submission, STARTTLS + SASL)
  - name: secondary
    host: 127.0.0.1
    port: $($Lab.smtp.secondary.submission)
    security: StartTls
    role: secondary
    credential: lab-relay
    heloName: client.lab.test
    timeoutSeconds: 10
    caFile: $($Lab.tls.ca)
    log: $($Lab.smtp.secondary.log)
    egress: [127.0.0.2]
    description: Lab secondary (Postfix submission, STARTTLS + SASL)
  - name: secondary-mx
    host: 127.0.0.1
    port: $($Lab.smtp.secondary.port)
    security: StartTls
    role: secondary
    heloName: client.lab.test
    timeoutSeconds: 10
    caFile: $($Lab.tls.ca)
    egress: [127.0.0.2]
    description: Lab secondary's SMTP port (no AUTH, the lab's hosts may relay), which carries the alerts
  - name: throttled
    host: 127.0.0.1
    port: $($Lab.smtp.secondary.limited)
    security: None
    role: secondary
    heloName: client.lab.test
    timeoutSeconds: 10
    description: Lab secondary listener that throttles after 5 messages a minute
  - name: bulk-down
    host: 127.0.0.1
    port: $($Lab.smtp.refused)
    security: None
    role: secondary
    timeoutSeconds: 5
    description: A secondary relay that is down (nothing listens)
  - name: openrelay
    host: 127.0.0.1
    port: $($Lab.smtp.openRelay.port)
    security: StartTlsWhenAvailable
    role: secondary
    heloName: client.lab.test
    timeoutSeconds: 10
    description: Lab open relay (deliberately misconfigured)
flows:
  - name: staff
    kind: PersonToPerson
    senders: ['@lab.test']
    relay: primary
  - name: newsletter
    kind: Campaign
    owner: marketing@lab.test
    senders: [news@lab.test]
    relay: secondary
    esp: sendgrid
    suppressOn: Failed
  - name: corp-newsletter
    kind: Campaign
    owner: marketing@corp.test
    senders: [news@corp.test]
    esp: sendgrid
  - name: corp-invoices
    kind: Transactional
    owner: finance@corp.test
    senders: [billing@corp.test]
    relay: secondary
  - name: legacy-alerts
    kind: Automation
    owner: it@corp.test
    senders: [alerts@legacy.test]
    relay: primary
providers:
  - name: LabHost
    mx: ['*.mx.labhost.test']
    asn: [64500]
  # what the lab's ESP accounts told the administrator to publish (the shipped catalogue only holds vendor-documented values)
  - name: SendGrid
    dkim: [s1, s2]
  - name: Mailchimp
    spf: [servers.mcsv.net]
alerts:
  sinks:
    - name: ops-mail
      type: email
      relay: secondary-mx
      to: [ops@sink.test]
    - name: ops-webhook
      type: webhook
      url: $($Lab.webhook.url)
"@
    [System.IO.File]::WriteAllText($Lab.config, $yaml)
}

function Stop-MailLab {
    <#
    .SYNOPSIS
    Stops every process of a lab by PID and returns those still alive afterwards (none when all went well).
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)] $Lab,
        [switch]$Quiet,
        # Also delete the lab folder.
        [switch]$Remove
    )
    if ($Lab -is [string]) { $Lab = Get-Content -Raw (Join-Path $Lab 'lab.json') | ConvertFrom-Json }
    $pids = @()
    foreach ($p in @($Lab.processes)) {
        $id = $null
        try {
            $id = if ($p.PSObject.Properties['pid'] -and $p.pid) { [int]$p.pid } elseif ($p.PSObject.Properties['pidFile']) { Read-PidFile $p.pidFile } else { $null }
            if ($p.PSObject.Properties['postfixConfig']) {
                & postfix -c $p.postfixConfig stop 2>&1 | Out-Null
            }
            elseif ($p.PSObject.Properties['pgData']) {
                & runuser -u postgres -- "$($p.pgBin)/pg_ctl" -D $p.pgData -m fast -w -t 20 stop 2>&1 | Out-Null
            }
            elseif ($id) {
                & kill -TERM $id 2>&1 | Out-Null
            }
        }
        catch { if (-not $Quiet) { Write-Warning "lab: stopping $($p.name): $_" } }
        if ($id) { $pids += [pscustomobject]@{ Name = $p.name; Id = $id } }
    }
    $deadline = [DateTime]::UtcNow.AddSeconds(10)
    while ([DateTime]::UtcNow -lt $deadline -and ($pids | Where-Object { Test-ProcessAlive $_.Id })) { Start-Sleep -Milliseconds 100 }
    $survivors = @($pids | Where-Object { Test-ProcessAlive $_.Id })
    foreach ($s in $survivors) {
        if (-not $Quiet) { Write-Warning "lab: $($s.Name) (pid $($s.Id)) did not stop; killing it." }
        & kill -KILL $s.Id 2>&1 | Out-Null
    }
    if ($Remove -and (Test-Path $Lab.root)) { Remove-Item -Recurse -Force -LiteralPath $Lab.root }
    elseif (Test-Path (Join-Path $Lab.root 'lab.json')) {
        # mark the lab as stopped so it is never reaped twice
        Rename-Item -LiteralPath (Join-Path $Lab.root 'lab.json') -NewName 'lab.stopped.json' -ErrorAction SilentlyContinue
    }
    return $survivors
}

function Set-LabProviderOutage {
    <#
    .SYNOPSIS
    Takes a provider's mail hosts down (its listener removed, Postfix reloaded: connections to its address are refused)
    or brings them back, and waits until the address refuses or accepts connections.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)] $Lab,
        [Parameter(Mandatory)][ValidateSet('ovh', 'google', 'microsoft')][string]$Provider,
        [Parameter(Mandatory)][ValidateSet('Down', 'Up')][string]$State
    )
    $address = $Lab.providerMx.$Provider
    $file = Join-Path $Lab.providerMx.config 'master.cf'
    $text = [System.IO.File]::ReadAllText($file)
    $line = "(?m)^#?${address}:$($Lab.providerMx.port) inet"
    if ($State -eq 'Down') { $text = [regex]::Replace($text, $line, "#${address}:$($Lab.providerMx.port) inet") -replace "(?m)^(  -o syslog_name=postfix/mx-$Provider)$", '#$1' }
    else { $text = [regex]::Replace($text, $line, "${address}:$($Lab.providerMx.port) inet") -replace "(?m)^#(  -o syslog_name=postfix/mx-$Provider)$", '$1' }
    [System.IO.File]::WriteAllText($file, $text)
    Invoke-Native postfix @('-c', $Lab.providerMx.config, 'reload') "postfix reload (provider mail hosts)" | Out-Null
    Wait-TcpPort -Address $address -Port $Lab.providerMx.port -Name "the $Provider mail host" -Closed:($State -eq 'Down')
}

Export-ModuleMember -Function Start-MailLab, Stop-MailLab, Install-MailLabPackage, Set-LabProviderOutage
