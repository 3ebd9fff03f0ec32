using System.Collections.Generic;
using System.Linq;

namespace MailOps.Core.Config
{
    public enum IssueSeverity
    {
        Warning,
        Error,
    }

    /// <summary>
    /// One problem found in a configuration file: where (file, line, column, key path), how bad, a stable code that
    /// scripts can match on, and a sentence that says what was expected.
    /// </summary>
    public sealed class ConfigIssue
    {
        internal ConfigIssue(string? file, int line, int column, IssueSeverity severity, string code, string keyPath, string message)
        {
            File = file;
            Line = line;
            Column = column;
            Severity = severity;
            Code = code;
            KeyPath = keyPath;
            Message = message;
        }

        public string? File { get; }

        /// <summary>1-based line (0 when the problem is the file as a whole).</summary>
        public int Line { get; }

        /// <summary>1-based column (0 when the problem is the file as a whole).</summary>
        public int Column { get; }
        public IssueSeverity Severity { get; }

        /// <summary>Stable identifier, for example UnknownKey or InvalidValue (see ConfigIssueCodes).</summary>
        public string Code { get; }

        /// <summary>Where in the document, for example relays[1].port.</summary>
        public string KeyPath { get; }
        public string Message { get; }

        /// <summary>file:line:column: message, as compilers print it.</summary>
        public override string ToString()
        {
            var where = File ?? "(configuration)";
            if (Line > 0)
            {
                where += $":{Line}:{Column}";
            }

            return $"{where}: {Severity.ToString().ToLowerInvariant()} {Code}: {Message}";
        }
    }

    /// <summary>The stable codes of <see cref="ConfigIssue"/>.</summary>
    public static class ConfigIssueCodes
    {
        public const string FileNotFound = "FileNotFound";
        public const string FileUnreadable = "FileUnreadable";
        public const string YamlSyntax = "YamlSyntax";
        public const string EmptyDocument = "EmptyDocument";
        public const string MultipleDocuments = "MultipleDocuments";
        public const string WrongType = "WrongType";
        public const string UnknownKey = "UnknownKey";
        public const string DuplicateKey = "DuplicateKey";
        public const string MissingKey = "MissingKey";
        public const string InvalidValue = "InvalidValue";
        public const string DuplicateName = "DuplicateName";
        public const string UnknownReference = "UnknownReference";
        public const string SecretInConfig = "SecretInConfig";
        public const string UnsupportedVersion = "UnsupportedVersion";
        public const string InsecureSetting = "InsecureSetting";
        public const string NoSecondaryRelay = "NoSecondaryRelay";
    }

    /// <summary>The outcome of reading a configuration: the configuration when it has no errors, and every issue found.</summary>
    public sealed class ConfigReadResult
    {
        internal ConfigReadResult(MailOpsConfig? config, IReadOnlyList<ConfigIssue> issues)
        {
            Config = config;
            Issues = issues;
        }

        /// <summary>Null when the file has errors.</summary>
        public MailOpsConfig? Config { get; }
        public IReadOnlyList<ConfigIssue> Issues { get; }
        public IEnumerable<ConfigIssue> Errors => Issues.Where(i => i.Severity == IssueSeverity.Error);
        public bool IsValid => Config != null;
    }
}
