#Requires -Version 7.4
<#
.SYNOPSIS
Builds, tests, demonstrates, packages and benchmarks MailOps.

.DESCRIPTION
Tasks (several may be given; each runs what it depends on):
  Build    an importable module folder in out/MailOps (version stamped from Directory.Build.props, help compiled)
  Test     Build, start the real mail lab, then xunit on MailOps.Core (SQLite and the lab's PostgreSQL), then Pester
           against the module and the lab; the lab is stopped whatever happens
  Demo     Build, then the incident drills on the local lab
  Package  Build, then out/packages/MailOps.<version>.nupkg (accepted by Publish-Module and Install-PSResource)
  Bench    Build, then every benchmark under bench/ (they print ratios against the reference tools)
  Clean    remove out/ and the projects' bin/ and obj/

Run from a fresh clone with only the .NET SDK:
  dotnet tool restore && dotnet pwsh -NoProfile -File ./build.ps1 -Task Test
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Demo', 'Package', 'Bench', 'Clean')]
    [string[]]$Task = 'Build',

    [ValidateSet('Debug', 'Release')]
    [string]$Configuration = 'Release',

    # Treat compiler and analyzer warnings as errors (always on when $env:CI is 'true').
    [switch]$WarningsAsErrors,

    # Run only the Pester files whose names match (for example 'Config').
    [string]$PesterFilter = '*'
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$PSStyle.OutputRendering = 'PlainText'
$env:NO_COLOR = '1'
$env:DOTNET_NOLOGO = '1'
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'

$Root = $PSScriptRoot
$Out = Join-Path $Root 'out'
$ModuleOut = Join-Path $Out 'MailOps'
$ResultsOut = Join-Path $Out 'test-results'
$Strict = $WarningsAsErrors -or $env:CI -eq 'true'
$script:Done = @{}

function Write-Step([string]$Text) { Write-Host "==> $Text" -ForegroundColor Cyan }

function Invoke-Exe {
    param([string]$File, [string[]]$Arguments)
    & $File @Arguments
    if ($LASTEXITCODE -ne 0) { throw "'$File $($Arguments -join ' ')' failed with exit code $LASTEXITCODE." }
}

function Get-Version {
    $xml = [xml](Get-Content -Raw (Join-Path $Root 'Directory.Build.props'))
    return ($xml.Project.PropertyGroup | Where-Object { $_['Version'] } | Select-Object -First 1)['Version'].InnerText
}

function Get-PwshCommand {
    # The pwsh that runs this script, as a command line for child processes (dotnet tool: dotnet + pwsh.dll).
    $exe = [Environment]::ProcessPath
    if ([System.IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { return , [string[]]@($exe, (Join-Path $PSHOME 'pwsh.dll')) }
    return , [string[]]@($exe)
}

function Invoke-ChildPwsh {
    param([string]$File, [string[]]$Arguments)
    $cmd = Get-PwshCommand
    $exe = $cmd[0]
    $rest = @($cmd | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-File', $File) + $Arguments
    & $exe @rest | Out-Host
    return $LASTEXITCODE
}

function Get-NuGetPackagesFolder {
    $line = (& dotnet nuget locals global-packages --list) -join "`n"
    if ($line -match 'global-packages:\s*(.+)') { return $Matches[1].Trim() }
    throw "Could not find the NuGet packages folder ('dotnet nuget locals global-packages --list' said: $line)."
}

function Copy-NativeSqlite {
    # A netstandard2.0 publish leaves out native libraries; SQLite's come from the package the restore chose
    # (read from the assets file, so the version is never written twice). MailOps' load context probes
    # lib/runtimes/<rid>/native.
    param([string]$Destination)
    $assets = Get-Content -Raw (Join-Path $Root 'src/MailOps.Core/obj/project.assets.json') | ConvertFrom-Json -AsHashtable
    $key = @($assets.libraries.Keys | Where-Object { $_ -like 'SQLitePCLRaw.lib.e_sqlite3/*' })[0]
    if (-not $key) { throw 'SQLitePCLRaw.lib.e_sqlite3 is not in the restore of MailOps.Core.' }
    $package = $null
    foreach ($folder in $assets.packageFolders.Keys) {
        $candidate = Join-Path $folder $assets.libraries[$key].path
        if (Test-Path $candidate) { $package = $candidate; break }
    }
    if (-not $package) { throw "The package $key is not in the NuGet folders." }
    foreach ($rid in 'linux-x64', 'linux-arm64', 'linux-musl-x64', 'linux-musl-arm64', 'osx-x64', 'osx-arm64', 'win-x64', 'win-x86', 'win-arm64') {
        $src = Join-Path $package "runtimes/$rid/native"
        if (Test-Path $src) {
            New-Item -ItemType Directory -Path "$Destination/$rid/native" -Force | Out-Null
            Copy-Item "$src/*" "$Destination/$rid/native"
        }
    }
}

function Invoke-Build {
    if ($script:Done['Build']) { return }
    $version = Get-Version
    Write-Step "Build MailOps $version ($Configuration$(if ($Strict) { ', warnings as errors' }))"
    $props = @("-p:Configuration=$Configuration", '-nologo', '-v:minimal')
    if ($Strict) { $props += '-p:MailOpsStrict=true' }
    $obj = Join-Path $Out 'obj'
    if (Test-Path $ModuleOut) { Remove-Item -Recurse -Force $ModuleOut }
    Invoke-Exe dotnet (@('publish', (Join-Path $Root 'src/MailOps.PowerShell/MailOps.PowerShell.csproj'), '-o', "$obj/lib") + $props)
    Invoke-Exe dotnet (@('publish', (Join-Path $Root 'src/MailOps.LoadContext/MailOps.LoadContext.csproj'), '-o', "$obj/bin") + $props)

    New-Item -ItemType Directory -Path $ModuleOut, "$ModuleOut/lib", "$ModuleOut/bin", "$ModuleOut/en-US" -Force | Out-Null
    # lib: the cmdlets, Core and every dependency (loaded in the private context on PowerShell 7)
    Get-ChildItem "$obj/lib" -File | Where-Object { $_.Extension -in '.dll', '.pdb' } | Copy-Item -Destination "$ModuleOut/lib"
    if (Test-Path "$obj/lib/runtimes") { Copy-Item -Recurse "$obj/lib/runtimes" "$ModuleOut/lib/runtimes" }
    Copy-NativeSqlite -Destination "$ModuleOut/lib/runtimes"
    Copy-Item "$obj/bin/MailOps.LoadContext.dll" "$ModuleOut/bin"
    Copy-Item (Join-Path $Root 'Module/MailOps.psm1'), (Join-Path $Root 'Module/MailOps.Format.ps1xml') $ModuleOut
    Copy-Item (Join-Path $Root 'Module/en-US/*') "$ModuleOut/en-US"
    # the manifest, with the one version stamped in
    $manifest = Get-Content -Raw (Join-Path $Root 'MailOps.psd1')
    $stamped = $manifest -replace "ModuleVersion\s*=\s*'[^']*'", "ModuleVersion        = '$version'"
    if ($stamped -eq $manifest -and $manifest -notmatch "'$([regex]::Escape($version))'") { throw 'Could not stamp ModuleVersion into MailOps.psd1.' }
    Set-Content -LiteralPath "$ModuleOut/MailOps.psd1" -Value $stamped -NoNewline

    Write-Step 'Compile help (docs/help/*.md -> MAML) and check it against the cmdlets'
    $rc = Invoke-ChildPwsh (Join-Path $Root 'tools/Build-Help.ps1') @('-ModulePath', $ModuleOut, '-Source', (Join-Path $Root 'docs/help'))
    if ($rc -ne 0) { throw 'Help is missing or does not match the cmdlets (see above).' }
    $script:Done['Build'] = $true
    Write-Host "Module: $ModuleOut"
}

function Invoke-CoreTests {
    param([string]$Filter, [string]$Suite = 'xunit', [string]$Name = 'core')
    Write-Step "${Suite}: MailOps.Core"
    New-Item -ItemType Directory -Path $ResultsOut -Force | Out-Null
    $trx = Join-Path $ResultsOut "$Name.trx"
    if (Test-Path $trx) { Remove-Item $trx }
    $props = @("-p:Configuration=$Configuration")
    if ($Strict) { $props += '-p:MailOpsStrict=true' }
    $filterArgs = if ($Filter) { @('--filter', $Filter) } else { @() }
    & dotnet test (Join-Path $Root 'tests/MailOps.Core.Tests/MailOps.Core.Tests.csproj') @props --nologo @filterArgs `
        --logger "trx;LogFileName=$trx" --logger 'console;verbosity=normal' --results-directory $ResultsOut | Out-Host
    $exit = $LASTEXITCODE
    if (-not (Test-Path $trx)) { throw "xunit produced no results (dotnet test exit code $exit): the tests did not build or run." }
    $run = ([xml](Get-Content -Raw $trx)).TestRun
    $c = $run.ResultSummary.Counters
    $skipped = [int]$c.total - [int]$c.executed
    foreach ($r in @($run.Results.UnitTestResult | Where-Object outcome -eq 'NotExecuted')) {
        $why = $r.Output.ErrorInfo.Message
        if (-not $why) { $why = ($r.Output.StdOut) }
        Write-Warning "SKIPPED: $($r.testName): $why"
    }
    return [pscustomobject]@{ Suite = $Suite; Passed = [int]$c.passed; Failed = [int]$c.failed + [int]$c.error + [int]$c.timeout + [int]$c.aborted; Skipped = $skipped }
}

function Get-TestPackages {
    Write-Step 'Fetch test packages (Pester, and an older MimeKit for the load-context test) into the NuGet cache'
    Invoke-Exe dotnet @('restore', (Join-Path $Root 'tests/tools/TestDependencies.csproj'), '-nologo', '-v:quiet') | Out-Host
    $packages = Get-NuGetPackagesFolder
    $pester = Join-Path $packages 'pester/5.7.1/tools/Pester.psd1'
    if (-not (Test-Path $pester)) { throw "Pester was restored but $pester is missing." }
    $env:MAILOPS_PESTER = $pester
    $env:MAILOPS_NUGET_PACKAGES = $packages
}

function Invoke-PesterTests {
    param($LabFile)
    Write-Step 'Pester: the module against the lab'
    New-Item -ItemType Directory -Path $ResultsOut -Force | Out-Null
    $summary = Join-Path $ResultsOut 'pester-summary.json'
    if (Test-Path $summary) { Remove-Item $summary }
    $env:MAILOPS_MODULE = $ModuleOut
    $env:MAILOPS_LAB = $LabFile
    $env:MAILOPS_REPO = $Root
    # (a bare '*' would be expanded by PowerShell's native-command globbing on Unix: pass the filter only when given)
    $filterArgs = if ($PesterFilter -ne '*') { @('-Filter', $PesterFilter) } else { @() }
    $rc = Invoke-ChildPwsh (Join-Path $Root 'tests/Pester/Invoke-MailOpsPester.ps1') ($filterArgs + @('-Summary', $summary, '-ResultsFolder', $ResultsOut))
    if (-not (Test-Path $summary)) { throw "Pester produced no summary (exit code $rc): it did not run." }
    $s = Get-Content -Raw $summary | ConvertFrom-Json
    return [pscustomobject]@{ Suite = 'Pester'; Passed = [int]$s.Passed; Failed = [int]$s.Failed; Skipped = [int]$s.Skipped }
}

function Invoke-Test {
    Invoke-Build
    $env:MAILOPS_NUPKG = (Invoke-Package).FullName
    Get-TestPackages
    Import-Module (Join-Path $Root 'tests/lab/MailLab.psm1') -Force
    Write-Step 'Start the mail lab (Postfix x3, Dovecot, nsd, PostgreSQL on loopback)'
    $lab = Start-MailLab
    $labFile = Join-Path $lab.root 'lab.json'
    $env:MAILOPS_LAB = $labFile
    $results = @()
    # the pflogsumm agreement on the lab's own Postfix logs needs the mail the Pester drills send: it runs after them
    $labLogTest = 'FullyQualifiedName~PflogsummAgreementTests.LabLogsAgree'
    try {
        $results += Invoke-CoreTests -Filter ($labLogTest -replace '~', '!~')
        $results += Invoke-PesterTests -LabFile $labFile
        $env:MAILOPS_LAB_MAILLOG = (@('postfix-primary', 'postfix-secondary' | ForEach-Object { Join-Path $lab.root "$_/log/maillog" } |
            Where-Object { (Test-Path $_) -and (Get-Item $_).Length -gt 0 }) -join ':')
        $results += Invoke-CoreTests -Filter $labLogTest -Suite 'xunit on the lab logs' -Name 'core-lablogs'
    }
    finally {
        Remove-Item Env:MAILOPS_LAB_MAILLOG -ErrorAction SilentlyContinue
        Write-Step 'Stop the mail lab'
        # the lab folder (logs, Maildir, configurations) is kept when something failed, for the post-mortem
        $allPassed = $results.Count -eq 3 -and -not ($results | Where-Object Failed -gt 0)
        $survivors = @(Stop-MailLab -Lab $lab -Remove:$allPassed)
        if ($survivors.Count) { Write-Warning "lab: $($survivors.Count) process(es) had to be killed: $($survivors.Name -join ', ')" }
        if (-not $allPassed) { Write-Host "lab: kept for inspection at $($lab.root)" }
    }
    $passed = ($results | Measure-Object Passed -Sum).Sum
    $failed = ($results | Measure-Object Failed -Sum).Sum
    $skipped = ($results | Measure-Object Skipped -Sum).Sum
    Write-Host ''
    foreach ($r in $results) { Write-Host ("{0,-22} {1} passed, {2} failed, {3} skipped" -f "$($r.Suite):", $r.Passed, $r.Failed, $r.Skipped) }
    Write-Host "Tests: $passed passed, $failed failed, $skipped skipped"
    if ($failed -gt 0) { throw "$failed test(s) failed." }
    if ($passed -eq 0) { throw 'No test ran.' }
}

function Invoke-Demo {
    Invoke-Build
    Import-Module (Join-Path $Root 'tests/lab/MailLab.psm1') -Force
    Write-Step 'Start the mail lab'
    $lab = Start-MailLab
    try {
        $env:MAILOPS_MODULE = $ModuleOut
        $env:MAILOPS_LAB = Join-Path $lab.root 'lab.json'
        $env:MAILOPS_REPO = $Root
        $rc = Invoke-ChildPwsh (Join-Path $Root 'examples/Demo.ps1') @()
        if ($rc -ne 0) { throw "The demo failed (exit code $rc)." }
    }
    finally {
        Write-Step 'Stop the mail lab'
        Stop-MailLab -Lab $lab | Out-Null
    }
}

function Invoke-Package {
    Invoke-Build
    $version = Get-Version
    Write-Step "Package MailOps $version as a .nupkg"
    $feed = Join-Path $Out 'packages'
    New-Item -ItemType Directory -Path $feed -Force | Out-Null
    Get-ChildItem $feed -Filter 'MailOps.*.nupkg' | Remove-Item
    # Publish-PSResource to a folder repository writes exactly the package the Gallery would accept.
    $repo = 'MailOpsBuild-' + [Guid]::NewGuid().ToString('N').Substring(0, 8)
    Register-PSResourceRepository -Name $repo -Uri $feed -Trusted
    try {
        Publish-PSResource -Path $ModuleOut -Repository $repo -SkipDependenciesCheck
    }
    finally {
        Unregister-PSResourceRepository -Name $repo
    }
    $pkg = Get-ChildItem $feed -Filter "MailOps.$version.nupkg"
    if (-not $pkg) { throw "Publish-PSResource wrote no MailOps.$version.nupkg in $feed." }
    Write-Host "Package: $($pkg.FullName)"
    return $pkg
}

function Invoke-Bench {
    Invoke-Build
    $benches = @(Get-ChildItem (Join-Path $Root 'bench') -Filter '*.bench.ps1' -ErrorAction SilentlyContinue)
    if ($benches.Count -eq 0) { Write-Host 'No benchmarks yet (bench/*.bench.ps1).'; return }
    Import-Module (Join-Path $Root 'tests/lab/MailLab.psm1') -Force
    $lab = Start-MailLab
    try {
        $env:MAILOPS_MODULE = $ModuleOut
        $env:MAILOPS_LAB = Join-Path $lab.root 'lab.json'
        $env:MAILOPS_REPO = $Root
        foreach ($b in $benches) {
            Write-Step "Benchmark $($b.Name)"
            $rc = Invoke-ChildPwsh $b.FullName @()
            if ($rc -ne 0) { Write-Warning "$($b.Name) failed (exit code $rc)." }
        }
    }
    finally { Stop-MailLab -Lab $lab | Out-Null }
}

function Invoke-Clean {
    Write-Step 'Clean'
    foreach ($p in @($Out) + @(Get-ChildItem (Join-Path $Root 'src'), (Join-Path $Root 'tests') -Recurse -Directory -Include bin, obj | ForEach-Object FullName)) {
        if (Test-Path $p) { Remove-Item -Recurse -Force $p }
    }
}

Push-Location $Root
try {
    foreach ($t in $Task) {
        switch ($t) {
            'Build' { Invoke-Build }
            'Test' { Invoke-Test }
            'Demo' { Invoke-Demo }
            'Package' { Invoke-Package | Out-Null }
            'Bench' { Invoke-Bench }
            'Clean' { Invoke-Clean }
        }
    }
}
finally {
    Pop-Location
}
