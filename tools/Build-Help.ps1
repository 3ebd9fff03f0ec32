<#
.SYNOPSIS
Compiles docs/help/<Cmdlet>.md into MAML (lib/en-US/MailOps.PowerShell.dll-Help.xml) and fails when help and the
cmdlets drift apart.

.DESCRIPTION
Runs in its own pwsh (the build starts it) so that importing the built module never locks the build's session.
Syntax comes from the cmdlets themselves (parameter sets, types, positions, pipeline input); the words come from
the markdown. The check fails the build when a cmdlet has no help file, no synopsis, no description, no example, or
when a parameter is undocumented or documented but absent.

Markdown layout (one file per cmdlet, platyPS-like):
  # Verb-Noun
  ## SYNOPSIS / ## DESCRIPTION / ## EXAMPLES (### Example N: title, a ```powershell block, remarks)
  ## PARAMETERS (### -Name, description) / ## INPUTS / ## OUTPUTS (### Type, description) / ## NOTES / ## RELATED LINKS
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string]$ModulePath,
    [Parameter(Mandatory)][string]$Source
)
Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
$PSStyle.OutputRendering = 'PlainText'
$ModulePath = (Resolve-Path -LiteralPath $ModulePath).Path
$Source = (Resolve-Path -LiteralPath $Source).Path

$common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
$standard = @{
    WhatIf  = 'Shows what would happen if the cmdlet runs. The cmdlet is not run.'
    Confirm = 'Prompts you for confirmation before running the cmdlet.'
}

function Split-Sections {
    # Returns an ordered map: H2 title -> lines
    param([string[]]$Lines)
    $sections = [ordered]@{}
    $current = $null
    $inCode = $false
    foreach ($line in $Lines) {
        if ($line -match '^```') { $inCode = -not $inCode }
        if (-not $inCode -and $line -match '^## (.+)$') {
            $current = $Matches[1].Trim().ToUpperInvariant()
            $sections[$current] = [System.Collections.Generic.List[string]]::new()
            continue
        }
        if ($null -ne $current) { $sections[$current].Add($line) }
    }
    return $sections
}

function Split-Subsections {
    # H3 title -> lines
    param($Lines)
    $subs = [ordered]@{}
    $current = $null
    $inCode = $false
    foreach ($line in @($Lines)) {
        if ($line -match '^```') { $inCode = -not $inCode }
        if (-not $inCode -and $line -match '^### (.+)$') {
            $current = $Matches[1].Trim()
            $subs[$current] = [System.Collections.Generic.List[string]]::new()
            continue
        }
        if ($null -ne $current) { $subs[$current].Add($line) }
    }
    return $subs
}

function ConvertTo-Paragraphs {
    # Blank-line separated paragraphs; list items keep their own line.
    param($Lines)
    $paras = [System.Collections.Generic.List[string]]::new()
    $buf = [System.Collections.Generic.List[string]]::new()
    foreach ($l in @($Lines)) {
        if ($l.Trim() -eq '') {
            if ($buf.Count) { $paras.Add(($buf -join ' ')); $buf.Clear() }
        }
        elseif ($l -match '^\s*[-*] ' -and $buf.Count) {
            $paras.Add(($buf -join ' ')); $buf.Clear(); $buf.Add($l.Trim())
        }
        else { $buf.Add($l.Trim()) }
    }
    if ($buf.Count) { $paras.Add(($buf -join ' ')) }
    return , $paras
}

function X([string]$s) { [System.Security.SecurityElement]::Escape($s) }

function Paras($paras) {
    if (-not $paras -or $paras.Count -eq 0) { return '<maml:para />' }
    ($paras | ForEach-Object { "<maml:para>$(X $_)</maml:para>" }) -join ''
}

function Get-PipelineText($p) {
    $by = @()
    foreach ($a in $p.Attributes | Where-Object { $_ -is [System.Management.Automation.ParameterAttribute] }) {
        if ($a.ValueFromPipeline) { $by += 'ByValue' }
        if ($a.ValueFromPipelineByPropertyName) { $by += 'ByPropertyName' }
    }
    $by = $by | Select-Object -Unique
    if ($by) { "True ($($by -join ', '))" } else { 'False' }
}

function Get-ParameterXml {
    param($Name, $Type, [bool]$Required, $Position, $Pipeline, $Aliases, $Description, [bool]$IsSwitch)
    $typeName = $Type.Name
    $value = if ($IsSwitch) { '' } else { "<command:parameterValue required=`"true`" variableLength=`"false`">$(X $typeName)</command:parameterValue>" }
    $aliasText = if ($Aliases) { $Aliases -join ', ' } else { 'none' }
    @"
<command:parameter required="$($Required.ToString().ToLowerInvariant())" variableLength="true" globbing="false" pipelineInput="$Pipeline" position="$Position" aliases="$(X $aliasText)">
<maml:name>$(X $Name)</maml:name>
<maml:description>$(Paras $Description)</maml:description>
$value
<dev:type><maml:name>$(X $Type.FullName)</maml:name><maml:uri /></dev:type>
<dev:defaultValue>None</dev:defaultValue>
</command:parameter>
"@
}

$problems = [System.Collections.Generic.List[string]]::new()
Import-Module (Join-Path $ModulePath 'MailOps.psd1') -Force
$commands = @(Get-Command -Module MailOps -CommandType Cmdlet | Sort-Object Name)
if ($commands.Count -eq 0) { throw 'The built module exports no cmdlets.' }

# the manifest's CmdletsToExport must list exactly the cmdlets in the assembly
$manifest = Import-PowerShellDataFile (Join-Path $ModulePath 'MailOps.psd1')
$inAssembly = @((Get-Module MailOps).NestedModules | ForEach-Object { $_.ExportedCmdlets.Keys }) | Sort-Object -Unique
$listed = @($manifest.CmdletsToExport) | Sort-Object -Unique
foreach ($c in $inAssembly | Where-Object { $_ -notin $listed }) { $problems.Add("MailOps.psd1: CmdletsToExport lacks $c.") }
foreach ($c in $listed | Where-Object { $_ -notin $inAssembly }) { $problems.Add("MailOps.psd1: CmdletsToExport lists $c, which the assembly does not define.") }

$sb = [System.Text.StringBuilder]::new()
[void]$sb.AppendLine('<?xml version="1.0" encoding="utf-8"?>')
[void]$sb.AppendLine('<helpItems schema="maml" xmlns="http://msh">')
foreach ($cmd in $commands) {
    $file = Join-Path $Source "$($cmd.Name).md"
    if (-not (Test-Path $file)) { $problems.Add("$($cmd.Name): no help file ($file)."); continue }
    $sections = Split-Sections (Get-Content -LiteralPath $file)
    $synopsis = if ($sections.Contains('SYNOPSIS')) { ConvertTo-Paragraphs $sections['SYNOPSIS'] } else { @() }
    $description = if ($sections.Contains('DESCRIPTION')) { ConvertTo-Paragraphs $sections['DESCRIPTION'] } else { @() }
    if ($synopsis.Count -eq 0) { $problems.Add("$($cmd.Name): SYNOPSIS is empty.") }
    if ($description.Count -eq 0) { $problems.Add("$($cmd.Name): DESCRIPTION is empty.") }
    $paramDocs = if ($sections.Contains('PARAMETERS')) { Split-Subsections $sections['PARAMETERS'] } else { [ordered]@{} }
    $examples = if ($sections.Contains('EXAMPLES')) { Split-Subsections $sections['EXAMPLES'] } else { [ordered]@{} }
    if ($examples.Count -eq 0) { $problems.Add("$($cmd.Name): no example.") }

    $params = @($cmd.Parameters.Values | Where-Object { $_.Name -notin $common -or $_.Name -in 'WhatIf', 'Confirm' })
    $docNames = @($paramDocs.Keys | ForEach-Object { $_.TrimStart('-') })
    foreach ($p in $params) {
        if ($p.Name -notin $docNames -and -not $standard.ContainsKey($p.Name)) { $problems.Add("$($cmd.Name): parameter -$($p.Name) is not documented.") }
    }
    foreach ($d in $docNames) {
        if ($d -notin $params.Name) { $problems.Add("$($cmd.Name): help documents -$d, which the cmdlet does not have.") }
    }
    $describe = {
        param($name)
        $key = @($paramDocs.Keys | Where-Object { $_.TrimStart('-') -eq $name })
        if ($key) { ConvertTo-Paragraphs $paramDocs[$key[0]] } else { , [System.Collections.Generic.List[string]]@($standard[$name]) }
    }

    $verb, $noun = $cmd.Name -split '-', 2
    [void]$sb.AppendLine('<command:command xmlns:maml="http://schemas.microsoft.com/maml/2004/10" xmlns:command="http://schemas.microsoft.com/maml/dev/command/2004/10" xmlns:dev="http://schemas.microsoft.com/maml/dev/2004/10" xmlns:MSHelp="http://msdn.microsoft.com/mshelp">')
    [void]$sb.AppendLine("<command:details><command:name>$(X $cmd.Name)</command:name><command:verb>$verb</command:verb><command:noun>$noun</command:noun><maml:description>$(Paras $synopsis)</maml:description></command:details>")
    [void]$sb.AppendLine("<maml:description>$(Paras $description)</maml:description>")
    [void]$sb.AppendLine('<command:syntax>')
    foreach ($set in $cmd.ParameterSets) {
        [void]$sb.AppendLine("<command:syntaxItem><maml:name>$(X $cmd.Name)</maml:name>")
        foreach ($sp in $set.Parameters | Where-Object { $_.Name -notin $common -or $_.Name -in 'WhatIf', 'Confirm' } | Sort-Object { if ($_.Position -ge 0) { $_.Position } else { 1000 } }, { -not $_.IsMandatory }) {
            $pos = if ($sp.Position -ge 0) { $sp.Position } else { 'named' }
            $pipe = if ($sp.ValueFromPipeline -or $sp.ValueFromPipelineByPropertyName) { "True ($((@(if ($sp.ValueFromPipeline) { 'ByValue' }) + @(if ($sp.ValueFromPipelineByPropertyName) { 'ByPropertyName' })) -join ', '))" } else { 'False' }
            [void]$sb.AppendLine((Get-ParameterXml -Name $sp.Name -Type $sp.ParameterType -Required $sp.IsMandatory -Position $pos -Pipeline $pipe -Aliases $sp.Aliases -Description (& $describe $sp.Name) -IsSwitch ($sp.ParameterType -eq [switch])))
        }
        [void]$sb.AppendLine('</command:syntaxItem>')
    }
    [void]$sb.AppendLine('</command:syntax>')
    [void]$sb.AppendLine('<command:parameters>')
    foreach ($p in $params | Sort-Object Name) {
        $pa = @($p.Attributes | Where-Object { $_ -is [System.Management.Automation.ParameterAttribute] })
        $required = [bool]($pa | Where-Object Mandatory)
        $positions = @($pa | Where-Object { $_.Position -ge 0 } | ForEach-Object Position)
        $pos = if ($positions.Count) { $positions[0] } else { 'named' }
        [void]$sb.AppendLine((Get-ParameterXml -Name $p.Name -Type $p.ParameterType -Required $required -Position $pos -Pipeline (Get-PipelineText $p) -Aliases $p.Aliases -Description (& $describe $p.Name) -IsSwitch $p.SwitchParameter))
    }
    [void]$sb.AppendLine('</command:parameters>')
    foreach ($kind in @(@{ s = 'INPUTS'; outer = 'inputTypes'; inner = 'inputType' }, @{ s = 'OUTPUTS'; outer = 'returnValues'; inner = 'returnValue' })) {
        [void]$sb.AppendLine("<command:$($kind.outer)>")
        if ($sections.Contains($kind.s)) {
            $subs = Split-Subsections $sections[$kind.s]
            foreach ($k in $subs.Keys) {
                [void]$sb.AppendLine("<command:$($kind.inner)><dev:type><maml:name>$(X $k)</maml:name></dev:type><maml:description>$(Paras (ConvertTo-Paragraphs $subs[$k]))</maml:description></command:$($kind.inner)>")
            }
        }
        [void]$sb.AppendLine("</command:$($kind.outer)>")
    }
    if ($sections.Contains('NOTES')) {
        [void]$sb.AppendLine("<maml:alertSet><maml:alert>$(Paras (ConvertTo-Paragraphs $sections['NOTES']))</maml:alert></maml:alertSet>")
    }
    [void]$sb.AppendLine('<command:examples>')
    foreach ($title in $examples.Keys) {
        $lines = @($examples[$title])
        $code = [System.Collections.Generic.List[string]]::new()
        $remarks = [System.Collections.Generic.List[string]]::new()
        $state = 'before'
        foreach ($l in $lines) {
            if ($l -match '^```') { $state = if ($state -eq 'before') { 'code' } else { 'after' }; continue }
            if ($state -eq 'code') { $code.Add($l) } elseif ($state -eq 'after') { $remarks.Add($l) }
        }
        if ($code.Count -eq 0) { $problems.Add("$($cmd.Name): example '$title' has no code block.") }
        if (-not ($code -join "`n").Contains($cmd.Name)) { $problems.Add("$($cmd.Name): example '$title' does not use $($cmd.Name).") }
        $codeText = ($code | ForEach-Object { $_ -replace '^PS> ', 'PS C:\> ' }) -join "`n"
        [void]$sb.AppendLine("<command:example><maml:title>-------------------------- $(X $title) --------------------------</maml:title><dev:code>$(X $codeText)</dev:code><dev:remarks>$(Paras (ConvertTo-Paragraphs $remarks))</dev:remarks></command:example>")
    }
    [void]$sb.AppendLine('</command:examples>')
    [void]$sb.AppendLine('<command:relatedLinks>')
    if ($sections.Contains('RELATED LINKS')) {
        foreach ($l in $sections['RELATED LINKS'] | Where-Object { $_ -match '\S' }) {
            $text = ($l -replace '^\s*[-*]\s*', '').Trim()
            [void]$sb.AppendLine("<maml:navigationLink><maml:linkText>$(X $text)</maml:linkText><maml:uri /></maml:navigationLink>")
        }
    }
    [void]$sb.AppendLine('</command:relatedLinks>')
    [void]$sb.AppendLine('</command:command>')
}
[void]$sb.AppendLine('</helpItems>')

foreach ($extra in Get-ChildItem $Source -Filter '*.md' | Where-Object { $_.BaseName -notin $commands.Name }) {
    $problems.Add("$($extra.Name): help for a cmdlet the module does not have.")
}

if ($problems.Count) {
    $problems | ForEach-Object { Write-Host "help: $_" -ForegroundColor Red }
    exit 1
}

$xmlText = $sb.ToString()
[void][xml]$xmlText   # must be well-formed
# beside the cmdlet assembly (found on the first import) and in the module's own en-US folder: after Import-Module
# -Force the cmdlets are re-exported through the script module, and PowerShell then looks for the file there
foreach ($folder in 'lib/en-US', 'en-US') {
    $target = Join-Path $ModulePath $folder
    New-Item -ItemType Directory -Path $target -Force | Out-Null
    [System.IO.File]::WriteAllText((Join-Path $target 'MailOps.PowerShell.dll-Help.xml'), $xmlText)
}
Write-Host "help: $($commands.Count) cmdlets documented."
exit 0
