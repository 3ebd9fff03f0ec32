using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using MailOps.Core.Config;
using Xunit;

namespace MailOps.Core.Tests
{
    public class ConfigReaderTests
    {
        private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "config", name);

        [Fact]
        public void ValidFileBindsEverySection()
        {
            var result = ConfigReader.ReadFile(Fixture("valid-full.yaml"));

            Assert.True(result.IsValid, string.Join("\n", result.Issues));
            var c = result.Config!;
            Assert.Equal("MailOps", c.SecretVault);
            Assert.Equal(new[] { "192.0.2.53:53", "192.0.2.54:5353", "[2001:db8::53]:53" }, c.Dns.Servers.Select(s => s.ToString()));
            Assert.Equal(3, c.Dns.TimeoutSeconds);
            Assert.Equal(StoreProvider.PostgreSql, c.Store.Provider);
            Assert.Equal("mailops-db", c.Store.Credential);
            Assert.Equal(new[] { "example.org", "example.net" }, c.Domains.Select(d => d.Name));
            Assert.Equal(new[] { "s1", "s2" }, c.Domains[1].DkimSelectors);

            var secondary = c.FindRelay("SECONDARY")!;
            Assert.Equal(RelayRole.Secondary, secondary.Role);
            Assert.Equal(SmtpSecurity.SslOnConnect, secondary.Security);
            Assert.Equal(465, secondary.Port); // SslOnConnect without a port means 465
            Assert.True(secondary.SkipCertificateCheck);
            Assert.False(c.FindRelay("primary")!.SkipCertificateCheck); // validation is the default

            var newsletter = c.FindFlow("newsletter")!;
            Assert.Equal(FlowKind.Campaign, newsletter.Kind); // enum values are case-insensitive
            Assert.True(newsletter.IsBulk);
            Assert.False(c.FindFlow("staff")!.IsBulk);
            Assert.Equal(new[] { 64500, 64501 }, c.Providers[0].AsNumbers);
            Assert.Equal(1000, c.Thresholds[0].Limit);
            Assert.Equal(new[] { "email", "webhook", "syslog" }, c.AlertSinks.Select(s => s.Type));

            // the skipped certificate check is reported, as a warning
            var warning = Assert.Single(result.Issues);
            Assert.Equal(IssueSeverity.Warning, warning.Severity);
            Assert.Equal(ConfigIssueCodes.InsecureSetting, warning.Code);
            Assert.Equal(29, warning.Line);
        }

        public static IEnumerable<object[]> BadFiles => new List<object[]>
        {
            // file, code, line, column, words the message must contain
            new object[] { "unknown-key.yaml", ConfigIssueCodes.UnknownKey, 4, 5, "Did you mean 'host'" },
            new object[] { "missing-host.yaml", ConfigIssueCodes.MissingKey, 3, 5, "'host' is missing" },
            new object[] { "bad-port.yaml", ConfigIssueCodes.InvalidValue, 5, 11, "from 1 to 65535" },
            new object[] { "bad-security.yaml", ConfigIssueCodes.InvalidValue, 5, 15, "did you mean 'StartTls'" },
            new object[] { "duplicate-key.yaml", ConfigIssueCodes.DuplicateKey, 6, 5, "first at line 4" },
            new object[] { "duplicate-relay.yaml", ConfigIssueCodes.DuplicateName, 6, 5, "named 'Primary'" },
            new object[] { "flow-unknown-relay.yaml", ConfigIssueCodes.UnknownReference, 7, 5, "did you mean 'secondary'" },
            new object[] { "password-in-file.yaml", ConfigIssueCodes.SecretInConfig, 7, 5, "name a credential" },
            new object[] { "relays-not-a-list.yaml", ConfigIssueCodes.WrongType, 2, 9, "must be a list" },
            new object[] { "empty.yaml", ConfigIssueCodes.EmptyDocument, 1, 1, "is empty" },
            new object[] { "version-2.yaml", ConfigIssueCodes.UnsupportedVersion, 1, 10, "version 2" },
            new object[] { "two-documents.yaml", ConfigIssueCodes.MultipleDocuments, 3, 1, "more than one YAML document" },
            new object[] { "key-case.yaml", ConfigIssueCodes.UnknownKey, 4, 5, "case-sensitive" },
            new object[] { "bad-dns-server.yaml", ConfigIssueCodes.InvalidValue, 3, 27, "not a DNS server address" },
            new object[] { "connection-string-password.yaml", ConfigIssueCodes.SecretInConfig, 4, 21, "holds a password" },
            new object[] { "plain-auth.yaml", ConfigIssueCodes.InsecureSetting, 3, 5, "in clear" },
            new object[] { "missing-role.yaml", ConfigIssueCodes.MissingKey, 3, 5, "no 'role'" },
            new object[] { "missing-version.yaml", ConfigIssueCodes.MissingKey, 1, 1, "'version: 1'" },
        };

        [Theory]
        [MemberData(nameof(BadFiles))]
        public void BadFileGivesTheExpectedErrorWithItsPosition(string file, string code, int line, int column, string words)
        {
            var path = Fixture(file);
            var result = ConfigReader.ReadFile(path);

            Assert.False(result.IsValid);
            Assert.Null(result.Config);
            var issue = result.Errors.FirstOrDefault(i => i.Code == code);
            Assert.True(issue != null, $"expected {code}; got: {string.Join(" | ", result.Issues)}");
            Assert.Equal(path, issue!.File);
            Assert.Equal((line, column), (issue.Line, issue.Column));
            Assert.Contains(words, issue.Message, StringComparison.Ordinal);
            Assert.StartsWith($"{path}:{line}:{column}: error {code}: ", issue.ToString(), StringComparison.Ordinal);
        }

        [Fact]
        public void YamlSyntaxErrorNamesItsPosition()
        {
            var result = ConfigReader.ReadFile(Fixture("syntax-error.yaml"));

            var issue = Assert.Single(result.Issues);
            Assert.Equal(ConfigIssueCodes.YamlSyntax, issue.Code);
            Assert.InRange(issue.Line, 4, 6);
            Assert.True(issue.Column > 0);
            Assert.StartsWith("The file is not valid YAML: ", issue.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("(Line:", issue.Message, StringComparison.Ordinal);
        }

        [Fact]
        public void MissingFileIsAnIssueNotAnException()
        {
            var result = ConfigReader.ReadFile(Fixture("no-such-file.yaml"));

            var issue = Assert.Single(result.Issues);
            Assert.Equal(ConfigIssueCodes.FileNotFound, issue.Code);
            Assert.Contains("New-MailOpsConfig", issue.Message, StringComparison.Ordinal);
        }

        [Fact]
        public void NonUtf8FileIsReported()
        {
            var issue = Assert.Single(ConfigReader.ReadFile(Fixture("not-utf8.yaml")).Issues);
            Assert.Equal(ConfigIssueCodes.FileUnreadable, issue.Code);
        }

        [Fact]
        public void EveryProblemIsReportedNotOnlyTheFirst()
        {
            const string text = "version: 1\nrelays:\n  - name: a\n    host: h.example.org\n    port: zero\n    role: primery\n    colour: blue\n";
            var result = ConfigReader.Read(text, "inline.yaml");

            Assert.Equal(new[] { "InvalidValue@5", "InvalidValue@6", "UnknownKey@7" },
                result.Errors.Select(i => $"{i.Code}@{i.Line}"));
        }

        [Fact]
        public void AnchorsAndAliasesAreFollowed()
        {
            const string text = "version: 1\nrelays:\n  - &r\n    name: a\n    host: h.example.org\n    role: secondary\nflows:\n  - name: f\n    kind: List\n    relay: a\n";
            Assert.True(ConfigReader.Read(text).IsValid);
        }

        [Fact]
        public void NoSecondaryRelayIsAWarning()
        {
            var result = ConfigReader.Read("version: 1\nrelays:\n  - name: a\n    host: h.example.org\n    role: primary\n");

            Assert.True(result.IsValid);
            Assert.Equal(ConfigIssueCodes.NoSecondaryRelay, Assert.Single(result.Issues).Code);
        }

        [Fact]
        public void StarterTemplateIsValidAndHasBothRoles()
        {
            var result = ConfigReader.Read(ConfigTemplate.Render(new[] { "Example.ORG", "example.net" }));

            Assert.True(result.IsValid, string.Join("\n", result.Issues));
            Assert.Empty(result.Issues);
            Assert.Equal(new[] { "example.org", "example.net" }, result.Config!.Domains.Select(d => d.Name));
            Assert.Contains(result.Config.Relays, r => r.Role == RelayRole.Secondary);
            Assert.All(result.Config.Relays, r => Assert.False(r.SkipCertificateCheck));
            Assert.Equal("smtp.example.org", result.Config.FindRelay("primary")!.Host);
        }

        [Fact]
        public void ProvidersSendingKeysAreCheckedWithTheirPlace()
        {
            var r = ConfigReader.Read(@"version: 1
providers:
  - name: A
    kind: Espp
    spf: ['include:spf.a.test', 'spf.a.test', 'not a domain']
    ptr: ['*.out.a.test', 'localhost']
    dkim: [s1, 's1._domainkey.a.test', 'bad selector']
  - name: B
    kind: Esp
");
            Assert.False(r.IsValid);
            string Where(ConfigIssue i) => $"{i.KeyPath}@{i.Line}:{i.Column}";
            var all = r.Errors.ToList();
            var errors = all.Select(Where).ToList();
            Assert.Equal(new[] { "providers[0].kind@4:11", "providers[0].spf@5:11", "providers[0].spf@5:47", "providers[0].ptr@6:27", "providers[0].dkim@7:16", "providers[0].dkim@7:40", "providers[1]@8:5" }, errors);
            Assert.Contains("did you mean 'Esp'", all[0].Message);
            Assert.Contains("give the domain alone ('spf.a.test')", all[1].Message);
            Assert.Contains("give the selector alone ('s1')", all[4].Message);
            Assert.Contains("'spf', 'ptr' or 'dkim'", all[6].Message);
        }

        [Fact]
        public void TheTemplatesProviderExampleIsValidOnceUncommented()
        {
            var text = ConfigTemplate.Render(new[] { "example.org" });
            var start = text.IndexOf("\nproviders: []\n", StringComparison.Ordinal);
            Assert.True(start > 0);
            var end = text.IndexOf("\n\n", start + 1, StringComparison.Ordinal);
            var block = text.Substring(start + 1, end - start - 1).Split('\n')
                .Select(l => l == "providers: []" ? "providers:" : l.StartsWith("  # ", StringComparison.Ordinal) ? "  " + l.Substring(4) : l);
            var r = ConfigReader.Read(text.Substring(0, start + 1) + string.Join("\n", block) + text.Substring(end));

            Assert.True(r.IsValid, string.Join("\n", r.Issues));
            var p = Assert.Single(r.Config!.Providers);
            Assert.Equal(MailOps.Core.Providers.ProviderKind.Hosting, p.Kind);
            Assert.Equal(new[] { "spf.examplehost.net" }, p.SpfPatterns);
            Assert.Equal(new[] { "*.out.examplehost.net" }, p.PtrPatterns);
            Assert.Equal(new[] { "eh1", "eh2" }, p.DkimSelectors);
            Assert.Equal(new[] { 64500 }, p.AsNumbers);
        }

        [Theory]
        [InlineData("192.0.2.1", "192.0.2.1:53")]
        [InlineData("192.0.2.1:5353", "192.0.2.1:5353")]
        [InlineData("2001:db8::1", "[2001:db8::1]:53")]
        [InlineData("[2001:db8::1]:5300", "[2001:db8::1]:5300")]
        public void DnsServerEndpointsParse(string text, string expected)
        {
            var result = ConfigReader.Read($"version: 1\ndns:\n  servers: ['{text}']\n");
            Assert.True(result.IsValid, string.Join("\n", result.Issues));
            Assert.Equal(expected, result.Config!.Dns.Servers.Single().ToString());
        }

        [Fact]
        public void DefaultsWhenSectionsAreAbsent()
        {
            var c = ConfigReader.Read("version: 1\n").Config!;

            Assert.Empty(c.Dns.Servers);
            Assert.Equal(DnsConfig.DefaultDnsblZones, c.Dns.DnsblZones);
            Assert.Equal(StoreProvider.Sqlite, c.Store.Provider);
            Assert.Empty(c.Relays);
        }
    }

    public class ConfigLocatorTests
    {
        private static Func<string, string?> Env(Dictionary<string, string> values) =>
            name => values.TryGetValue(name, out var v) ? v : null;

        [Fact]
        public void ParameterWinsOverEnvironmentAndDefault()
        {
            var (path, source) = ConfigLocator.Resolve("/etc/mailops.yaml", Env(new Dictionary<string, string> { ["MAILOPS_CONFIG"] = "/x.yaml" }));
            Assert.Equal(("/etc/mailops.yaml", ConfigPathSource.Parameter), (path, source));
        }

        [Fact]
        public void EnvironmentWinsOverDefault()
        {
            var (path, source) = ConfigLocator.Resolve(null, Env(new Dictionary<string, string> { ["MAILOPS_CONFIG"] = "/x.yaml", ["HOME"] = "/home/u" }));
            Assert.Equal(("/x.yaml", ConfigPathSource.EnvironmentVariable), (path, source));
        }

        [Fact]
        public void DefaultFollowsXdgOnUnix()
        {
            if (Path.DirectorySeparatorChar == '\\')
            {
                return;
            }

            Assert.Equal("/home/u/.config/mailops/config.yaml", ConfigLocator.Resolve(null, Env(new Dictionary<string, string> { ["HOME"] = "/home/u" })).Path);
            Assert.Equal("/cfg/mailops/config.yaml", ConfigLocator.Resolve("", Env(new Dictionary<string, string> { ["HOME"] = "/home/u", ["XDG_CONFIG_HOME"] = "/cfg" })).Path);
            Assert.Equal("/home/u/.local/share/mailops", ConfigLocator.UserDataFolder(Env(new Dictionary<string, string> { ["HOME"] = "/home/u" })));
        }

        [Theory]
        [InlineData("hots", "host")]
        [InlineData("secondry", "secondary")]
        [InlineData("zzzz", null)]
        public void SuggestionsAreCloseMatchesOnly(string typo, string? expected)
        {
            Assert.Equal(expected, ConfigReader.Suggest(typo, new[] { "host", "port", "secondary", "primary" }));
        }
    }
}
