# The lab itself: each server answers as the tests expect. Checked with independent tools (swaks, dig, psql and a
# raw IMAP conversation), not with MailOps, so that a MailOps bug cannot hide a broken lab.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Lab = Get-Lab
    function Invoke-Swaks([string[]]$Arguments) { (& swaks -s 127.0.0.1 @Arguments 2>&1) -join "`n" }
}

Describe 'The mail lab' {
    It 'primary and secondary offer STARTTLS on SMTP (<_>)' -ForEach 'primary', 'secondary' {
        $port = $script:Lab.smtp.$_.port
        Invoke-Swaks @('-p', $port, '--quit-after', 'EHLO') | Should -Match '(?m)^<-  250-STARTTLS'
    }

    It '<_> submission: no AUTH in clear, AUTH after STARTTLS, lab credential accepted, wrong one refused' -ForEach 'primary', 'secondary' {
        $port = $script:Lab.smtp.$_.submission
        $clear = Invoke-Swaks @('-p', $port, '--quit-after', 'EHLO')
        $clear | Should -Match '(?m)^<-  250-STARTTLS'
        $clear | Should -Not -Match '250-AUTH'
        Invoke-Swaks @('-p', $port, '--tls', '--quit-after', 'EHLO') | Should -Match '(?m)^<~  250-AUTH PLAIN LOGIN'
        Invoke-Swaks @('-p', $port, '--tls', '-a', 'PLAIN', '-au', $script:Lab.sasl.user, '-ap', $script:Lab.sasl.password, '--quit-after', 'AUTH') |
            Should -Match '235 2\.7\.0 Authentication successful'
        Invoke-Swaks @('-p', $port, '--tls', '-a', 'LOGIN', '-au', $script:Lab.sasl.user, '-ap', 'wrong', '--quit-after', 'AUTH') | Should -Match '535 5\.7\.8'
    }

    It '<_> refuses to relay for an unauthenticated client' -ForEach 'primary', 'secondary' {
        Invoke-Swaks @('-p', $script:Lab.smtp.$_.submission, '--tls', '-f', 'a@sink.test', '-t', 'x@discard.test', '--quit-after', 'RCPT') |
            Should -Match '554 5\.7\.1 <x@discard\.test>: Relay access denied'
    }

    It 'the STARTTLS certificate chains to the lab CA and names 127.0.0.1' {
        $out = ('' | & openssl s_client -connect "127.0.0.1:$($script:Lab.smtp.primary.submission)" -starttls smtp -CAfile $script:Lab.tls.ca -verify_ip 127.0.0.1 -verify_return_error 2>&1) -join "`n"
        $out | Should -Match 'Verify return code: 0 \(ok\)'
    }

    It 'the open relay accepts mail for any domain from an outside client' {
        Invoke-Swaks @('-p', $script:Lab.smtp.openRelay.port, '--xclient-addr', '198.51.100.7', '-f', 'spammer@elsewhere.example', '-t', 'victim@example.org') |
            Should -Match '(?m)^<-  250 2\.0\.0 Ok: queued'
    }

    It 'the misbehaving hosts accept connections and then stay silent' {
        $c = [System.Net.Sockets.TcpClient]::new('127.0.0.1', $script:Lab.smtp.neverGreets)
        try {
            $s = $c.GetStream()
            $s.ReadTimeout = 1500
            $buf = [byte[]]::new(100)
            { $s.Read($buf, 0, 100) } | Should -Throw   # no banner within 1.5 s
        }
        finally { $c.Dispose() }
    }

    It 'Dovecot accepts the IMAP login of the sink user and refuses a wrong password' {
        function Invoke-Imap([string]$User, [string]$Password) {
            $c = [System.Net.Sockets.TcpClient]::new('127.0.0.1', $script:Lab.imap.port)
            try {
                $s = $c.GetStream(); $s.ReadTimeout = 5000
                $r = [System.IO.StreamReader]::new($s); $w = [System.IO.StreamWriter]::new($s); $w.NewLine = "`r`n"; $w.AutoFlush = $true
                $greeting = $r.ReadLine()
                $w.WriteLine("a1 LOGIN $User $Password")
                do { $line = $r.ReadLine() } until ($line -like 'a1 *')
                $w.WriteLine('a2 LOGOUT')
                return "$greeting | $line"
            }
            finally { $c.Dispose() }
        }
        Invoke-Imap $script:Lab.imap.user $script:Lab.imap.password | Should -Match '^\* OK .* \| a1 OK '
        Invoke-Imap $script:Lab.imap.user 'wrong' | Should -Match '\| a1 NO '
    }

    It 'nsd answers for zone <_>' -ForEach @((Get-Content -Raw $env:MAILOPS_LAB | ConvertFrom-Json).dns.zones) {
        $out = (& dig "@127.0.0.1" -p $script:Lab.dns.port +norec +time=2 +tries=1 $_ SOA 2>&1) -join "`n"
        $out | Should -Match 'status: NOERROR'
        $out | Should -Match 'flags: qr aa'
    }

    It 'DNS has the sender domain''s MX, SPF, DKIM, DMARC and PTR, and provider-hosted recipient domains' {
        $q = { param($name, $type) (& dig "@127.0.0.1" -p $script:Lab.dns.port +short $name $type) -join "`n" }
        & $q lab.test MX | Should -Match '10 mx1\.lab\.test\.'
        & $q lab.test TXT | Should -Match 'v=spf1 ip4:127\.0\.0\.1'
        & $q mailops._domainkey.lab.test TXT | Should -Match 'v=DKIM1; k=rsa; p=MII'
        & $q _dmarc.lab.test TXT | Should -Match 'v=DMARC1; p=reject'
        (& dig "@127.0.0.1" -p $script:Lab.dns.port +short -x 127.0.0.1) | Should -Be 'mx1.lab.test.'
        & $q boulangerie-martin.test MX | Should -Match 'mx1\.mail\.ovh\.net\.'
        & $q boulangerie-martin.test NS | Should -Match 'ovh\.net\.'
        & $q startup-google.test MX | Should -Match 'aspmx\.l\.google\.com\.'
        & $q agence-m365.test MX | Should -Match 'mail\.protection\.outlook\.com\.'
        & $q 1.0.0.127.bl-listed.test A | Should -Be '127.0.0.2'
        & $q 1.0.0.127.bl-clean.test A | Should -BeNullOrEmpty
    }

    It 'the DKIM record publishes the key the lab signs with' {
        $published = ((& dig "@127.0.0.1" -p $script:Lab.dns.port +short mailops._domainkey.lab.test TXT) -join '' -replace '"\s*"', '' -replace '"', '') -replace '^.*p=', ''
        $actual = ((& openssl rsa -in $script:Lab.dkim.privateKey -pubout 2>$null) | Where-Object { $_ -notmatch '-----' }) -join ''
        $published | Should -Be $actual
    }

    It 'PostgreSQL accepts the lab role over TCP and refuses a wrong password' {
        $env:PGPASSWORD = $script:Lab.postgres.password
        try {
            (& psql "host=127.0.0.1 port=$($script:Lab.postgres.port) user=mailops dbname=mailops" -tAc 'select 40+2' 2>&1) | Should -Be '42'
            $env:PGPASSWORD = 'wrong'
            (& psql "host=127.0.0.1 port=$($script:Lab.postgres.port) user=mailops dbname=mailops" -tAc 'select 1' 2>&1) -join ' ' | Should -Match 'password authentication failed'
        }
        finally { Remove-Item Env:PGPASSWORD }
    }
}

Describe 'Lab lifecycle' {
    It 'a second lab starts beside the first on other ports and stops leaving no process behind' {
        Import-Module (Join-Path $PSScriptRoot '../lab/MailLab.psm1') -Force
        $second = Start-MailLab -NoPostgres
        try {
            $second.smtp.primary.port | Should -Not -Be $script:Lab.smtp.primary.port
            (& swaks -s 127.0.0.1 -p $second.smtp.primary.port --quit-after EHLO 2>&1) -join "`n" | Should -Match '250-STARTTLS'
            $pids = foreach ($p in $second.processes) {
                if ($p.PSObject.Properties['pid']) { $p.pid } else { [int](@(& cat $p.pidFile)[0].Trim()) }
            }
            $pids.Count | Should -BeGreaterOrEqual 6
        }
        finally { $survivors = @(Stop-MailLab -Lab $second -Remove) }
        $survivors | Should -BeNullOrEmpty -Because 'every process stops on TERM'
        foreach ($id in $pids) {
            $state = if (Test-Path "/proc/$id/stat") { (Get-Content "/proc/$id/stat") -replace '^\d+ \(.*\) (\w).*', '$1' } else { 'gone' }
            $state | Should -BeIn @('gone', 'Z') -Because "process $id must be stopped"
        }
        # the first lab is untouched
        (& swaks -s 127.0.0.1 -p $script:Lab.smtp.primary.port --quit-after EHLO 2>&1) -join "`n" | Should -Match '250-STARTTLS'
    }
}
