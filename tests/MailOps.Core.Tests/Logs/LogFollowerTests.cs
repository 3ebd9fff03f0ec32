using System.IO;
using System.Text;
using MailOps.Core.Logs;
using Xunit;

namespace MailOps.Core.Tests.Logs
{
    public class LogFollowerTests
    {
        [Fact]
        public void FollowsAppendsKeepsPartialLinesAndNoticesRotation()
        {
            var dir = Directory.CreateTempSubdirectory("mailops-follow-").FullName;
            var path = Path.Combine(dir, "mail.log");
            File.WriteAllText(path, "old line 1\nold line 2\n");
            var f = new LogFollower(path, fromEnd: true);
            Assert.Empty(f.ReadNewLines());

            File.AppendAllText(path, "new 1\nnew 2\r\npart");
            Assert.Equal(new[] { "new 1", "new 2" }, f.ReadNewLines());
            Assert.Empty(f.ReadNewLines());
            File.AppendAllText(path, "ial é\n");
            Assert.Equal(new[] { "partial é" }, f.ReadNewLines());

            // rotated: renamed away, a new shorter file in its place
            File.Move(path, path + ".1");
            Assert.Empty(f.ReadNewLines()); // no file for a moment: nothing, no error
            File.WriteAllText(path, "fresh\n", new UTF8Encoding(false));
            Assert.Equal(new[] { "fresh" }, f.ReadNewLines());
            Assert.Equal(1, f.Rotations);

            // from the top
            Assert.Equal(new[] { "fresh" }, new LogFollower(path, fromEnd: false).ReadNewLines());
            Directory.Delete(dir, true);
        }
    }
}
