<#
.SYNOPSIS
The MailOps demo on the local lab (build.ps1 -Task Demo starts the lab and runs this in a fresh pwsh).

.DESCRIPTION
The module, its configuration and the lab of real servers, relay health, bounces, and the outage drill (the
incident that made false hard bounces: the OVH mail hosts of the lab go down, real bounces follow, Reset-HardBounce
takes exactly the false ones off the list, and the undo puts them back), then the bulk-mail drill (bulk refused on
the primary, a paced campaign through the secondary, the circuit breaker; then the traffic watch: a mailing sent
through the primary by mistake raises the volume alert before the provider's cap, by webhook and by mail through the
secondary, and the alert resolves once the mailing moves to the secondary); and last, the inventory of every flow that
sends as the lab's domains, declared, authorised in DNS and seen in the logs and DMARC reports, with the shadow flows
nobody declared, and the page for management; then the same remedy at the MTA: the Postfix routing policy generated
from the flows, applied to the lab's primary, proved with probes, and rolled back.
#>
$ErrorActionPreference = 'Stop'
$PSStyle.OutputRendering = 'PlainText'
Import-Module (Join-Path $env:MAILOPS_MODULE 'MailOps.psd1')
$lab = Get-Content -Raw $env:MAILOPS_LAB | ConvertFrom-Json

function Step([string]$Text) { Write-Host "`n### $Text" }
function Show { $input | Format-Table | Out-String -Width 180 | Write-Host }

Step 'MailOps and its dependencies (isolated in their own load context)'
Get-MailOpsEnvironment | Format-List | Out-Host
Get-MailOpsEnvironment -Dependencies | Format-Table Name, Version, LoadContext, Works | Out-Host

Step "The lab: Postfix primary $($lab.smtp.primary.submission), secondary $($lab.smtp.secondary.submission), open relay $($lab.smtp.openRelay.port), IMAP $($lab.imap.port), DNS $($lab.dns.port)"
$env:MAILOPS_CONFIG = $lab.config
Write-Host "Configuration: $($lab.config)"
$issues = @(Test-MailOpsConfig)
if ($issues.Count) { $issues | Format-Table | Out-Host; throw 'The lab configuration should be clean.' }
Write-Host 'Test-MailOpsConfig: no problems.'
Get-MailOpsConfig | Out-Host
Get-MailOpsConfig -Relay * | Out-Host
Get-MailOpsConfig -Flow * | Out-Host

Step 'A configuration with mistakes: every problem, with its line and column'
$bad = Join-Path $lab.root 'demo-bad.yaml'
@'
version: 1
relays:
  - name: primary
    hots: smtp.example.org
    port: 70000
    role: primery
    password: hunter2
flows:
  - name: newsletter
    kind: Campaign
    relay: secondry
'@ | Set-Content -LiteralPath $bad
Test-MailOpsConfig -Path $bad | Format-Table -Wrap | Out-Host
try { Get-MailOpsConfig -Path $bad -ErrorAction Stop } catch { Write-Host "Get-MailOpsConfig stops with ErrorId $($_.FullyQualifiedErrorId)" }

Step 'Relay health: every configured relay, in parallel (the open relay is there on purpose)'
$cred = [pscredential]::new($lab.sasl.user, (ConvertTo-SecureString $lab.sasl.password -AsPlainText -Force))
$relays = @(Test-MailRelay -Relay primary, secondary -Credential $cred -From news@lab.test) + @(Test-MailRelay -Relay openrelay -From news@lab.test)
$relays | Format-Table | Out-Host
($relays | Where-Object Relay -eq 'openrelay').Findings | Where-Object Severity -in 'Error', 'Critical' | Format-Table | Out-Host
Write-Host "Secondary relay before moving bulk mail to it: $((Test-MailRelay -Relay secondary -Credential $cred -Quiet) ? 'healthy' : 'NOT healthy')"
Test-SpfRecord -Domain lab.test -IPAddress 127.0.0.2 | Format-Table | Out-Host

Step 'Bounces: real Postfix bounces from the lab, classified and stored'
$newDir = Join-Path $lab.imap.maildir 'new'
$before = @(Get-ChildItem $newDir -File -ErrorAction SilentlyContinue).Name
foreach ($c in @(@('unknown', 'nobody@remote.test'), @('full', 'full@remote.test'), @('refused', 'alice@refused.test'), @('spam', 'spam@remote.test'))) {
    & swaks -s 127.0.0.1 -p $lab.smtp.primary.port -f "mailops+demo-$($c[0])@sink.test" -t $c[1] --h-Subject "demo $($c[0])" 2>&1 | Out-Null
}
$deadline = (Get-Date).AddSeconds(45)
do { Start-Sleep -Milliseconds 500; $dsns = @(Get-ChildItem $newDir -File | Where-Object Name -notin $before | Where-Object { (Get-Content -Raw $_.FullName) -match 'mailops\+demo-' }) } until ($dsns.Count -ge 4 -or (Get-Date) -gt $deadline)
$dsns | ConvertFrom-BounceMessage | Format-Table Recipient, Reason, IsHard, IsInfrastructureFailure, StatusCode | Out-Host
$cred = [pscredential]::new($lab.imap.user, (ConvertTo-SecureString $lab.imap.password -AsPlainText -Force))
Import-Bounce -ImapServer 127.0.0.1 -ImapPort $lab.imap.port -ImapSecurity None -AllowAuthWithoutTls -ImapCredential $cred -Flow newsletter | Format-Table | Out-Host
Write-Host 'The same import again adds nothing (imports are idempotent):'
Import-Bounce -ImapServer 127.0.0.1 -ImapPort $lab.imap.port -ImapSecurity None -AllowAuthWithoutTls -ImapCredential $cred -Flow newsletter | Format-Table | Out-Host
Get-Bounce -Hard | Format-Table | Out-Host

Step 'Incident drill 1: an outage at the recipients'' provider makes false hard bounces'
Import-Module (Join-Path $env:MAILOPS_REPO 'tests/lab/MailLab.psm1')
$storeConfig = Join-Path $lab.root 'demo-drill.yaml'
(Get-Content -Raw $lab.config) -replace '(?m)^  path: .*$', "  path: '$($lab.root)/store/demo-drill.db'" | Set-Content $storeConfig
$env:MAILOPS_CONFIG = $storeConfig
Write-Host 'Where the recipient domains are hosted (the lab DNS: MX, NS and IP-to-AS answers):'
'boulangerie-martin.test', 'cabinet-durand.test', 'startup-google.test', 'agence-m365.test' | Resolve-MailProvider | Show
$tag = 'demodrill' + (Get-Random)
$n = 0
function Send-DemoMail([string]$To) { & swaks -s 127.0.0.1 -p $lab.smtp.primary.port -f "$tag+$script:n@sink.test" -t $To --h-Subject "drill" 2>&1 | Out-Null; $script:n++ }
Write-Host 'Before the outage: a genuine unknown user at OVH.'
Send-DemoMail 'nobody@boulangerie-martin.test'
Start-Sleep -Seconds 2
$since = [DateTimeOffset]::FromUnixTimeSeconds([DateTimeOffset]::UtcNow.ToUnixTimeSeconds())
Write-Host "$($since.ToString('HH:mm:ss')) OVH's mail hosts go down."
Set-LabProviderOutage -Lab $lab -Provider ovh -State Down
Send-DemoMail 'paul@boulangerie-martin.test'
Send-DemoMail 'secretariat@cabinet-durand.test'
Send-DemoMail 'nobody2@startup-google.test'
Start-Sleep -Seconds 2
Set-LabProviderOutage -Lab $lab -Provider ovh -State Up
$until = [DateTimeOffset]::FromUnixTimeSeconds([DateTimeOffset]::UtcNow.ToUnixTimeSeconds() + 1)
Write-Host "$($until.ToString('HH:mm:ss')) OVH is back."
$deadline = (Get-Date).AddSeconds(45)
do { Start-Sleep -Milliseconds 500; $drill = @(Get-ChildItem $newDir, (Join-Path $lab.imap.maildir 'cur') -File | Where-Object { (Get-Content -Raw $_.FullName) -match $tag }) } until ($drill.Count -ge 4 -or (Get-Date) -gt $deadline)
Write-Host 'The newsletter''s list manager suppresses every failed recipient (suppressOn: Failed), as the incident''s senders did:'
$drill | Import-Bounce -Flow newsletter | Show
Get-Bounce | Show
Write-Host "Reset-HardBounce -Since $($since.ToString('HH:mm:ss')) -Until $($until.ToString('HH:mm:ss')) -Provider OVH -WhatIf"
Reset-HardBounce -Since $since -Until $until -Provider OVH -WhatIf -Verbose
$op = Reset-HardBounce -Since $since -Until $until -Provider OVH -EspExportPath (Join-Path $lab.root 'unsuppress') -Confirm:$false 6>$null
Write-Host 'Reset for real (one audited operation; the SendGrid list of the newsletter flow is written next to it):'
$op | Show
$op.Items | Show
Get-ChildItem (Join-Path $lab.root 'unsuppress') | ForEach-Object { Write-Host "$($_.Name):"; Get-Content $_.FullName | Out-Host }
Get-Bounce | Show
Write-Host 'And the undo puts everything back exactly:'
$op | Undo-HardBounceReset -Confirm:$false | Show
Get-Bounce | Select-Object Address, Reason, SuppressionState | Show

Step 'Incident drill 2 (first half): bulk mail only through the secondary relay, stopped when a provider pushes back'
$relayCred = [pscredential]::new($lab.sasl.user, (ConvertTo-SecureString $lab.sasl.password -AsPlainText -Force))
try { 'x@sink.test' | Send-ViaSecondaryRelay -Relay primary -From news@lab.test -Subject 'x' -TextBody 'x' -Credential $relayCred -ErrorAction Stop }
catch { Write-Host "Bulk through the primary relay is refused: $($_.FullyQualifiedErrorId -replace ',.*')" }
$subscribers = 1..20 | ForEach-Object { [pscustomobject]@{ Email = "subscriber$_@sink.test"; FirstName = "Reader $_" } }
Write-Host 'A campaign of 20 through the secondary relay, 600 a minute, DKIM-signed, one-click unsubscribe:'
$subscribers | Send-ViaSecondaryRelay -From news@lab.test -Subject 'November news for {{FirstName}}' -TextBody 'Hello {{FirstName}}' -UnsubscribeUrl 'https://lab.test/u?e={{Email}}' `
    -Credential $relayCred -PerMinute 600 -JobName demo-campaign -Flow newsletter -DkimKeyFile $lab.dkim.privateKey -DkimSelector mailops | Show
Get-MailOpsSendJob -Name demo-campaign -Items | Select-Object -First 5 | Show
Write-Host 'Running the same command again sends nothing twice:'
$subscribers | Send-ViaSecondaryRelay -From news@lab.test -Subject 'November news for {{FirstName}}' -TextBody 'Hello {{FirstName}}' -UnsubscribeUrl 'https://lab.test/u?e={{Email}}' `
    -Credential $relayCred -PerMinute 600 -JobName demo-campaign -Flow newsletter -DkimKeyFile $lab.dkim.privateKey -DkimSelector mailops | Show
Write-Host 'A relay that starts throttling (Postfix: 450 too much mail) trips the circuit breaker: the whole job pauses.'
1..10 | ForEach-Object { "burst$_@sink.test" } | Send-ViaSecondaryRelay -Relay throttled -From news@lab.test -Subject 'burst' -TextBody 'x' -JobName demo-burst -MaxConnections 1 | Show
Get-MailOpsSendJob | Show

Step 'Incident drill 2 (second half): the traffic watch sees the bulk mailing on the primary before the provider does'
# the lab's configuration with the provider's cap on the primary: 40 recipients a minute, a warning from half of it
$watchConfig = Join-Path $lab.root 'demo-watch.yaml'
(Get-Content -Raw $lab.config) + @'

thresholds:
  - name: provider-cap
    scope: relay
    match: primary
    metric: recipients
    per: minute
    limit: 40
    warnAt: 0.5
  - name: newsletter-bounces
    scope: flow
    match: newsletter
    metric: bounceRate
    per: hour
    limit: 0.2
'@ | Set-Content -LiteralPath $watchConfig
$env:MAILOPS_CONFIG = $watchConfig
function Get-WholeSecond { [DateTimeOffset]::FromUnixTimeSeconds([DateTimeOffset]::Now.ToUnixTimeSeconds()).ToLocalTime() }
function Wait-QuietPrimary {
    # the figure of a per-minute rule counts whole minutes: wait until the primary's last mail is out of it
    $last = (Get-MailTrafficReport -Relay primary -Path $lab.smtp.primary.log -Since (Get-Date).AddMinutes(-3) -Totals).Last
    if ($last) {
        $clear = [DateTimeOffset]::FromUnixTimeSeconds([Math]::Floor($last.ToUnixTimeSeconds() / 60) * 60 + 121).ToLocalTime()
        if ($clear -gt [DateTimeOffset]::Now) { Write-Host "(waiting $([int]($clear - [DateTimeOffset]::Now).TotalSeconds) s for the primary's rolling minute to pass)" }
        while ([DateTimeOffset]::Now -lt $clear) { Start-Sleep -Milliseconds 500 }
    }
}
Write-Host 'What the relays carried so far, per flow (from their own Postfix logs):'
Get-MailTrafficReport -By Relay, Flow -Bucket Day | Format-Table Start, Dimension, Key, Messages, Recipients, Delivered, Deferred, Bounced, Rejected, TopReasons -AutoSize | Out-String -Width 200 | Write-Host
Wait-QuietPrimary
Write-Host 'A quiet minute: Test-MailTraffic raises nothing, and a scheduled task would exit with 0.'
Test-MailTraffic | Show
Write-Host "Test-MailTraffic -Quiet: $(Test-MailTraffic -Quiet)"
$bulkStart = Get-WholeSecond
Write-Host 'Someone sends a mailing of 24 through the PRIMARY relay anyway (-AllowPrimary: the mistake of the incident):'
1..24 | ForEach-Object { "member$_@discard.test" } | Send-ViaSecondaryRelay -Relay primary -AllowPrimary -From news@lab.test -Subject 'Members news' -TextBody 'Hello' `
    -Credential $relayCred -JobName demo-wrong-relay -WarningAction SilentlyContinue | Show
do { Start-Sleep -Milliseconds 300 } until ((Get-MailTrafficReport -Relay primary -Path $lab.smtp.primary.log -Since $bulkStart -Totals).Received -ge 24)
$hooksBefore = @(Get-Content $lab.webhook.received -ErrorAction SilentlyContinue).Count
$alert = Test-MailTraffic
$alert | Format-List Severity, State, Rule, Value, Limit, Summary, SuggestedAction, TopFlows, TopSenders | Out-Host
Write-Host 'The webhook receiver (Slack/Teams/Mattermost format) got:'
(@(Get-Content $lab.webhook.received)[$hooksBefore..1000] | ForEach-Object { ($_ | ConvertFrom-Json).body | ConvertFrom-Json } | Select-Object -First 1).text | Out-Host
$deadline = (Get-Date).AddSeconds(20)
do {
    $mail = Get-ChildItem "$($lab.imap.maildir)/new" -File | Where-Object { $_.LastWriteTime -ge $bulkStart.LocalDateTime -and (Get-Content -Raw $_.FullName) -match '(?m)^Subject: \[MailOps\]' } | Select-Object -First 1
    if (-not $mail) { Start-Sleep -Milliseconds 300 }
} until ($mail -or (Get-Date) -gt $deadline)
if ($mail) { Write-Host "And ops@sink.test got the email through the secondary relay: $((Get-Content $mail.FullName | Where-Object { $_ -like 'Subject:*' }) -join ' ')" }
Write-Host "A scheduled Test-MailTraffic -ExitCode would now exit with 1 (a warning is active); -Quiet says: $(Test-MailTraffic -Quiet)"
Write-Host 'The rest of the mailing goes where it belongs: the secondary relay.'
$moved = Get-WholeSecond
25..60 | ForEach-Object { "member$_@discard.test" } | Send-ViaSecondaryRelay -From news@lab.test -Subject 'Members news' -TextBody 'Hello' -Credential $relayCred -JobName demo-right-relay | Show
Wait-QuietPrimary
Write-Host 'The primary is back to normal: the alert resolves (and the sinks are told).'
Test-MailTraffic | Format-List Severity, State, Rule, Value, Summary | Out-Host
Get-MailTrafficReport -By Relay -Bucket Minute -Since $bulkStart.AddMinutes(-1) | Format-Table Start, Key, Messages, Recipients, Delivered, @{ n = 'TopFlows'; e = { ($_.TopFlows | ForEach-Object { "$($_.Key) ($($_.Value))" }) -join ', ' } } -AutoSize | Out-String -Width 200 | Write-Host

Step 'The same figures as pflogsumm, and a report with charts'
Start-Sleep -Seconds 3   # the resolution's alert mail reaches the primary too: let it land before counting
$totals = Get-MailTrafficReport -Path $lab.smtp.primary.log -Relay primary -Totals
$totals | Format-List Received, Delivered, Deferred, Deferrals, Bounced, Rejected, Senders, Recipients | Out-Host
Write-Host 'pflogsumm on the same log:'
& pflogsumm $lab.smtp.primary.log 2>$null | Select-String -Pattern '^\s+\d+\s+(received|delivered|deferred|bounced|rejected|senders|recipients)\b' | ForEach-Object { $_.Line } | Out-Host
$html = Get-MailTrafficReport -By Flow -Bucket Minute -AsHtml (Join-Path $lab.root 'traffic.html')
Write-Host "HTML report with charts: $($html.FullName) ($([int]($html.Length / 1024)) KB)"

Step 'Know every flow: declared, authorised in DNS, seen in the logs and in DMARC reports'
$invStart = [DateTimeOffset]::UtcNow.AddSeconds(-1)
# a CRM nobody declared sends order mail through the primary; the invoices flow goes through the secondary
1..3 | ForEach-Object { & swaks -s 127.0.0.1 -p $lab.smtp.primary.port -f crm@corp.test -t "customer$_@sink.test" --h-Subject "Order $_" 2>&1 | Out-Null }
1..2 | ForEach-Object { & swaks -s 127.0.0.1 -p $lab.smtp.secondary.port -f billing@corp.test -t "client$_@sink.test" --h-Subject "Invoice $_" 2>&1 | Out-Null }
# a receiver's DMARC aggregate report about corp.test (as Google would send it, gzipped)
$now = [DateTimeOffset]::UtcNow.ToUnixTimeSeconds()
$rec = { param($ip, $n, $disp, $dkim, $spf, $d) "<record><row><source_ip>$ip</source_ip><count>$n</count><policy_evaluated><disposition>$disp</disposition><dkim>$dkim</dkim><spf>$spf</spf></policy_evaluated></row><identifiers><header_from>corp.test</header_from></identifiers><auth_results><dkim><domain>$d</domain><result>pass</result></dkim><spf><domain>$d</domain><result>pass</result></spf></auth_results></record>" }
$xml = "<?xml version=`"1.0`"?><feedback><report_metadata><org_name>google.com</org_name><email>noreply-dmarc-support@google.com</email><report_id>demo-1</report_id><date_range><begin>$($now - 86400)</begin><end>$now</end></date_range></report_metadata><policy_published><domain>corp.test</domain><p>quarantine</p></policy_published>" +
    (& $rec 127.0.0.1 120 none pass pass corp.test) + (& $rec 127.0.0.2 40 none pass fail corp.test) + (& $rec 127.0.4.1 580 none pass fail corp.test) +
    (& $rec 127.0.5.1 300 quarantine fail fail mcsv.net) + (& $rec 203.0.113.9 15 quarantine fail fail corp.test) + '</feedback>'
$dmarcDir = Join-Path $lab.root 'dmarc-demo'
New-Item -ItemType Directory -Force $dmarcDir | Out-Null
$fs = [IO.File]::Create((Join-Path $dmarcDir 'google.com!corp.test!demo-1.xml.gz')); $gz = [IO.Compression.GZipStream]::new($fs, [IO.Compression.CompressionLevel]::Optimal)
$bytes = [Text.Encoding]::UTF8.GetBytes($xml); $gz.Write($bytes, 0, $bytes.Length); $gz.Dispose(); $fs.Dispose()
$deadline = (Get-Date).AddSeconds(20)
do { Start-Sleep -Milliseconds 300 } until (((Get-Content -Raw $lab.smtp.primary.log) -match 'to=<client2@sink\.test>.*status=sent') -or (Get-Date) -gt $deadline)
$inventory = Get-EmailFlowInventory -IncludeLogs -Since $invStart -DmarcReports $dmarcDir
$inventory | Format-Table | Out-String -Width 200 | Write-Host
Write-Host 'What to fix first:'
$inventory | ForEach-Object Findings | Where-Object Severity -ge High | Sort-Object Severity -Descending |
    Format-Table Severity, Code, Flow, Message -Wrap | Out-String -Width 200 | Write-Host
$page = $inventory | Export-EmailFlowInventory -Path (Join-Path $lab.root 'inventory.html') -Title 'Lab email flows' -Force
Write-Host "The inventory for management: $($page.FullName) ($([int]($page.Length / 1024)) KB)"

Step 'Route bulk at the MTA: the Postfix policy from the flows, applied to the primary, proved by probes'
# the lab's configuration, with the newsletter on the secondary's MTA port (an MTA hands mail to an MTA without AUTH)
$routeCfg = Join-Path $lab.root 'routing.yaml'
(Get-Content -Raw $lab.config).Replace("    senders: [news@lab.test]`n    relay: secondary`n", "    senders: [news@lab.test]`n    relay: secondary-mx`n") | Set-Content $routeCfg
$policyDir = Join-Path $lab.root 'policy'
Export-MailRoutingPolicy -Path $policyDir -ConfigPath $routeCfg -IncludeDecision -WarningAction SilentlyContinue | Where-Object Flow |
    Format-Table Flow, Kind, Path, Why -Wrap | Out-String -Width 200 | Write-Host
Write-Host 'The transport and the sender map it writes (each line under the flow it comes from):'
Get-Content (Join-Path $policyDir 'master.cf.fragment') | Where-Object { $_ -and $_ -notmatch '^# (MailOps|Generated)' } | Out-Host
Get-Content (Join-Path $policyDir 'mailops_sender_filter') | Where-Object { $_ -and $_ -notmatch '^# (MailOps|Generated)' } | Out-Host
Export-MailRoutingPolicy -Path $policyDir -ConfigPath $routeCfg -Apply -PostfixConfig $lab.smtp.primary.config -Confirm:$false -WarningAction SilentlyContinue | Out-Null
Write-Host 'Applied to the lab''s primary Postfix (backup, postmap, postconf, postfix check, reload). What the maps answer:'
'news@lab.test', 'anna@lab.test' | ForEach-Object { Test-MailRouting -ConfigPath $routeCfg -Path $lab.smtp.primary.config -Sender $_ } |
    Format-Table Sender, Flow, Relay, Transport, Decision -Wrap | Out-String -Width 200 | Write-Host
Write-Host 'And what really happens, with a marked message through the primary for each:'
'news@lab.test', 'anna@lab.test' | ForEach-Object { Test-MailRouting -ConfigPath $routeCfg -Sender $_ -Recipient "probe-$($_.Split('@')[0])@sink.test" -Probe -ProbeRelay primary -Credential $relayCred -ProbeTimeoutSeconds 30 } |
    Format-Table Sender, DeliveredBy, @{ n = 'Evidence'; e = { $_.ProbeEvidence[-1] } } -Wrap | Out-String -Width 200 | Write-Host
Write-Host 'Can the CRM flow move to the secondary relay? (readiness: the relay, SPF for its egress, DKIM, DMARC)'
Test-MailRouting -ConfigPath $routeCfg -Flow corp-invoices -Relay secondary-mx | Format-List Flow, Relay, Ready, Reason, Checks | Out-Host
Export-MailRoutingPolicy -Rollback -PostfixConfig $lab.smtp.primary.config -Confirm:$false | Out-Null
Write-Host 'Rolled back: the primary runs its previous configuration again.'
Write-Host "`nDemo finished."
