namespace MailOps.Core.Logs
{
    public static class MailLogRecordExtensions
    {
        /// <summary>Counts a record under a named relay (the relay whose log it comes from), whatever its syslog name.</summary>
        public static MailLogRecord AssignRelay(this MailLogRecord record, string relay)
        {
            record.Instance = relay;
            return record;
        }
    }
}
