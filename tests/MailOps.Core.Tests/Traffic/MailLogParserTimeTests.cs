using System;
using MailOps.Core.Logs;
using Xunit;

namespace MailOps.Core.Tests.Traffic
{
    /// <summary>The parser's stamp reading (kept from line to line for speed) gives the times the zone rules give.</summary>
    public class MailLogParserTimeTests
    {
        // Central European time: +01:00, +02:00 from the last Sunday of March 02:00 to the last Sunday of October 03:00
        private static readonly TimeZoneInfo Cet = TimeZoneInfo.CreateCustomTimeZone("Test/CET", TimeSpan.FromHours(1), "CET", "CET", "CEST", new[]
        {
            TimeZoneInfo.AdjustmentRule.CreateAdjustmentRule(DateTime.MinValue.Date, DateTime.MaxValue.Date, TimeSpan.FromHours(1),
                TimeZoneInfo.TransitionTime.CreateFloatingDateRule(new DateTime(1, 1, 1, 2, 0, 0), 3, 5, DayOfWeek.Sunday),
                TimeZoneInfo.TransitionTime.CreateFloatingDateRule(new DateTime(1, 1, 1, 3, 0, 0), 10, 5, DayOfWeek.Sunday)),
        });

        private static DateTimeOffset Expected(int y, int mo, int d, int h, int mi, int s)
        {
            var dt = new DateTime(y, mo, d, h, mi, s, DateTimeKind.Unspecified);
            return new DateTimeOffset(dt, Cet.GetUtcOffset(dt));
        }

        [Theory]
        [InlineData("Mar 29 01:59:59", 2026, 3, 29, 1, 59, 59)]
        [InlineData("Mar 29 03:00:00", 2026, 3, 29, 3, 0, 0)]
        [InlineData("Oct 25 02:30:00", 2026, 10, 25, 2, 30, 0)]
        [InlineData("Oct 25 03:30:00", 2026, 10, 25, 3, 30, 0)]
        [InlineData("Nov  5 23:59:60", 2026, 11, 5, 23, 59, 59)]
        [InlineData("Nov 5 08:00:01", 2026, 11, 5, 8, 0, 1)]
        [InlineData("Jul 14 12:00:00", 2026, 7, 14, 12, 0, 0)]
        [InlineData("2026-07-14T12:00:00", 2026, 7, 14, 12, 0, 0)]
        [InlineData("2026-01-14T12:00:00.5", 2026, 1, 14, 12, 0, 0)]
        public void LocalStampsTakeTheZonesOffsetOfTheirHour(string stamp, int y, int mo, int d, int h, int mi, int s)
        {
            var p = new MailLogParser(2026, Cet);
            // a line of another day first, so that nothing is left over from it
            Assert.NotNull(p.Parse("Jan  1 00:00:00 mx postfix/qmgr[1]: 1A2B3C4D5E: removed"));
            var r = p.Parse(stamp + " mx postfix/qmgr[1]: 1A2B3C4D5E: removed")!;
            var e = Expected(y, mo, d, h, mi, s);
            Assert.Equal(e, r.Time.AddTicks(-(r.Time.Ticks % TimeSpan.TicksPerSecond)));
            Assert.Equal(e.Offset, r.Time.Offset);
        }

        [Theory]
        [InlineData("2026-11-25T09:00:01.123456+01:00", "2026-11-25T08:00:01.123456Z")]
        [InlineData("2026-11-25T09:00:01+0130", "2026-11-25T07:30:01Z")]
        [InlineData("2026-11-25T09:00:01Z", "2026-11-25T09:00:01Z")]
        [InlineData("2026-11-25T09:00:01-05:00", "2026-11-25T14:00:01Z")]
        public void Rfc3339StampsKeepTheirOffset(string stamp, string utc)
        {
            var r = new MailLogParser(null, Cet).Parse(stamp + " mx postfix/qmgr[1]: 1A2B3C4D5E: removed")!;
            Assert.Equal(DateTimeOffset.Parse(utc, System.Globalization.CultureInfo.InvariantCulture), r.Time);
        }

        [Fact]
        public void TheYearDecidesWhetherTheTwentyNinthOfFebruaryIsADate()
        {
            const string line = "Feb 29 10:00:00 mx postfix/qmgr[1]: 1A2B3C4D5E: removed";
            Assert.Equal(new DateTime(2024, 2, 29, 10, 0, 0), new MailLogParser(2024, Cet).Parse(line)!.Time.DateTime);
            Assert.Null(new MailLogParser(2026, Cet).Parse(line));
        }

        [Fact]
        public void DatesAheadOfTodayAreLastYears()
        {
            var ahead = DateTime.UtcNow.AddDays(20);
            if (ahead.Year != DateTime.UtcNow.Year)
            {
                ahead = DateTime.UtcNow.AddDays(-40); // late December: take a date behind instead (this year's)
            }

            var stamp = ahead.ToString("MMM dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture);
            var r = new MailLogParser(null, TimeZoneInfo.Utc).Parse(stamp + " mx postfix/qmgr[1]: 1A2B3C4D5E: removed")!;
            Assert.Equal(ahead > DateTime.UtcNow ? ahead.Year - 1 : ahead.Year, r.Time.Year);
        }
    }
}
