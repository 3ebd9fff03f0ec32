<#
.SYNOPSIS
The MailOps demo on the local lab (build.ps1 -Task Demo starts the lab and runs this in a fresh pwsh).

.DESCRIPTION
What exists so far is the foundation: the module, its configuration and the lab of real servers. The two incident
drills (the outage that made false hard bounces, the bulk mailing that suspended all mail) join this script as the
issues that build them land; until then the demo says so instead of pretending.
#>
$ErrorActionPreference = 'Stop'
$PSStyle.OutputRendering = 'PlainText'
Import-Module (Join-Path $env:MAILOPS_MODULE 'MailOps.psd1')
$lab = Get-Content -Raw $env:MAILOPS_LAB | ConvertFrom-Json

function Step([string]$Text) { Write-Host "`n### $Text" }

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

Step 'Incident drills'
Write-Host 'Outage drill (false hard bounces, Reset-HardBounce): not built yet (issue 5).'
Write-Host 'Bulk-mail drill (traffic watch and secondary relay): not built yet (issues 6 and 7).'
Write-Host "`nDemo finished."
