<#
.SYNOPSIS
Runs the Pester tests against the built module and the running lab; build.ps1 -Task Test starts it in a fresh pwsh.
Environment: MAILOPS_MODULE (built module folder), MAILOPS_LAB (lab.json), MAILOPS_PESTER (Pester.psd1).
#>
param(
    [string]$Filter = '*',
    [Parameter(Mandatory)][string]$Summary,
    [Parameter(Mandatory)][string]$ResultsFolder
)
$ErrorActionPreference = 'Stop'
$PSStyle.OutputRendering = 'PlainText'
Import-Module $env:MAILOPS_PESTER -Force
$config = New-PesterConfiguration
$config.Run.Path = @(Get-ChildItem $PSScriptRoot -Filter "$Filter.Tests.ps1" | ForEach-Object FullName)
$config.Run.PassThru = $true
$config.Output.Verbosity = 'Detailed'
$config.TestResult.Enabled = $true
$config.TestResult.OutputFormat = 'NUnitXml'
$config.TestResult.OutputPath = Join-Path $ResultsFolder 'pester.xml'
$result = Invoke-Pester -Configuration $config
[pscustomobject]@{
    Passed  = $result.PassedCount
    Failed  = $result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount
    Skipped = $result.SkippedCount + $result.NotRunCount
} | ConvertTo-Json | Set-Content -LiteralPath $Summary
if ($result.FailedCount -or $result.FailedBlocksCount -or $result.FailedContainersCount) { exit 1 }
exit 0
