<#
.SYNOPSIS
The MailOps demo on the local lab (build.ps1 -Task Demo starts the lab and runs this in a fresh pwsh).

.DESCRIPTION
The module, its configuration and the lab of real servers, relay health, bounces, and the outage drill (the
incident that made false hard bounces: the OVH mail hosts of the lab go down, real bounces follow, Reset-HardBounce
takes exactly the false ones off the list, and the undo puts them back). The bulk-mail drill joins this script when
issues 6 and 7 land; until then the demo says so instead of pretending.
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
Write-Host 'Traffic watch and alerts (the second half of this drill): not built yet (issue 7).'
Write-Host "`nDemo finished."
