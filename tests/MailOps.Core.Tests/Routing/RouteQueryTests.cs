using MailOps.Core.Routing;
using Xunit;

namespace MailOps.Core.Tests.Routing
{
    /// <summary>The lookup keys Test-MailRouting asks postmap in access(5) order, and the probe's queue id (the live answers are in the lab drill).</summary>
    public class RouteQueryTests
    {
        [Fact]
        public void SenderKeysFollowAccessOrder() =>
            Assert.Equal(new[] { "news@lists.lab.test", "lists.lab.test", ".lab.test", ".test", "@lists.lab.test", "news@" }, RouteQuery.SenderKeys("<News@Lists.Lab.Test>"));

        [Fact]
        public void ClientKeysGoFromTheAddressToItsNetworks()
        {
            Assert.Equal(new[] { "192.0.2.10", "192.0.2", "192.0", "192" }, RouteQuery.ClientKeys("192.0.2.10"));
            Assert.Equal(new[] { "2001:db8::1" }, RouteQuery.ClientKeys("2001:db8::1"));
        }

        [Theory]
        [InlineData("2.0.0 Ok: queued as 4XyZ12AB", "4XyZ12AB")]
        [InlineData("250 2.0.0 Ok: queued as C57EBBAE98F", "C57EBBAE98F")]
        [InlineData("250 Ok", null)]
        [InlineData(null, null)]
        public void TheProbesQueueIdIsReadFromTheReply(string? reply, string? id) => Assert.Equal(id, RouteProbe.QueuedAs(reply));
    }
}
