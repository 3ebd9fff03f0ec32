using System;
using System.IO;
using System.Management.Automation;
using MailOps.Core.Config;

namespace MailOps.PowerShell
{
    /// <summary>Maps configuration issues to ErrorRecords with stable ids (Config&lt;Code&gt;) and the right category.</summary>
    internal static class ConfigErrors
    {
        public static ErrorRecord ToErrorRecord(ConfigIssue issue, string path)
        {
            var category = issue.Code switch
            {
                ConfigIssueCodes.FileNotFound => ErrorCategory.ObjectNotFound,
                ConfigIssueCodes.FileUnreadable => ErrorCategory.ReadError,
                ConfigIssueCodes.YamlSyntax => ErrorCategory.ParserError,
                ConfigIssueCodes.MultipleDocuments => ErrorCategory.ParserError,
                ConfigIssueCodes.SecretInConfig => ErrorCategory.SecurityError,
                ConfigIssueCodes.InsecureSetting => ErrorCategory.SecurityError,
                ConfigIssueCodes.UnsupportedVersion => ErrorCategory.NotImplemented,
                _ => ErrorCategory.InvalidData,
            };
            Exception exception = issue.Code == ConfigIssueCodes.FileNotFound
                ? new FileNotFoundException(issue.Message, path)
                : new InvalidDataException(issue.ToString());
            var record = new ErrorRecord(exception, "Config" + issue.Code, category, path)
            {
                ErrorDetails = new ErrorDetails(issue.ToString()),
            };
            record.ErrorDetails.RecommendedAction = issue.Code == ConfigIssueCodes.FileNotFound
                ? "Create a configuration with New-MailOpsConfig, or name one with -Path or $env:MAILOPS_CONFIG."
                : "Correct the file at the line and column given, then run Test-MailOpsConfig.";
            return record;
        }
    }
}
