# Shared by the Pester tests: where the module, the lab and a fresh pwsh are.
$ErrorActionPreference = 'Stop'

function Get-TestModulePath {
    if (-not $env:MAILOPS_MODULE) { throw 'MAILOPS_MODULE is not set: run the tests with build.ps1 -Task Test.' }
    return (Join-Path $env:MAILOPS_MODULE 'MailOps.psd1')
}

function Get-Lab {
    if (-not $env:MAILOPS_LAB -or -not (Test-Path $env:MAILOPS_LAB)) { throw 'MAILOPS_LAB does not name a lab.json: run the tests with build.ps1 -Task Test.' }
    return (Get-Content -Raw $env:MAILOPS_LAB | ConvertFrom-Json)
}

function Invoke-FreshPwsh {
    <# Runs a script in a new pwsh process and returns its standard output (lines); throws on a non-zero exit. #>
    param([Parameter(Mandatory)][string]$Script, [switch]$AllowFailure)
    $exe = [Environment]::ProcessPath
    $prefix = [string[]]@()
    if ([System.IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $prefix = [string[]]@((Join-Path $PSHOME 'pwsh.dll')) }
    $file = Join-Path ([System.IO.Path]::GetTempPath()) ("mailops-test-" + [Guid]::NewGuid().ToString('N') + '.ps1')
    Set-Content -LiteralPath $file -Value ("`$ErrorActionPreference = 'Stop'; `$PSStyle.OutputRendering = 'PlainText'`n" + $Script)
    try {
        $out = & $exe @prefix -NoProfile -NonInteractive -File $file 2>&1
        $code = $LASTEXITCODE
    }
    finally { Remove-Item -LiteralPath $file -ErrorAction SilentlyContinue }
    if ($code -ne 0 -and -not $AllowFailure) { throw "fresh pwsh exited with $code`n$($out -join "`n")" }
    return $out
}

function New-TestFolder {
    $d = Join-Path ([System.IO.Path]::GetTempPath()) ("mailops-pester-" + [Guid]::NewGuid().ToString('N').Substring(0, 8))
    New-Item -ItemType Directory -Path $d | Out-Null
    return $d
}

function Find-Corpus {
    <# The third-party corpora ($env:MAILOPS_CORPORA, else shared/corpora in a parent folder of the tests), as the
       xunit tests find them: a path under them, or $null (the caller skips, saying where it looked). #>
    param([Parameter(Mandatory)][string]$Relative)
    $root = $env:MAILOPS_CORPORA
    if (-not $root) {
        $dir = Get-Item $PSScriptRoot
        while ($dir -and -not (Test-Path (Join-Path $dir.FullName 'shared/corpora'))) { $dir = $dir.Parent }
        if ($dir) { $root = Join-Path $dir.FullName 'shared/corpora' }
    }
    if (-not $root) { return $null }
    $path = Join-Path $root $Relative
    if (Test-Path -LiteralPath $path) { return $path }
    return $null
}

Export-ModuleMember -Function *
