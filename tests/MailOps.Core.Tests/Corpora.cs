using System;
using System.IO;
using Xunit;

namespace MailOps.Core.Tests
{
    /// <summary>
    /// Finds the third-party corpora (../shared/corpora beside the repository, or $MAILOPS_CORPORA). Tests read them in
    /// place; when they are absent the tests are reported as skipped, with where we looked, never as passed.
    /// </summary>
    internal static class Corpora
    {
        // Where is declared first: static initialisers run in order, and Locate() sets it.
        public static string Where { get; private set; } = "";

        public static string? Root { get; } = Locate();

        public static string? Find(string relative)
        {
            if (Root == null)
            {
                return null;
            }

            var path = Path.Combine(Root, relative);
            return File.Exists(path) || Directory.Exists(path) ? path : null;
        }

        private static string? Locate()
        {
            var env = Environment.GetEnvironmentVariable("MAILOPS_CORPORA");
            if (!string.IsNullOrEmpty(env))
            {
                Where = env;
                return Directory.Exists(env) ? env : null;
            }

            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir != null)
            {
                var candidate = Path.Combine(dir.FullName, "shared", "corpora");
                if (Directory.Exists(candidate))
                {
                    Where = candidate;
                    return candidate;
                }

                dir = dir.Parent;
            }

            Where = "MAILOPS_CORPORA and every parent folder's shared/corpora from " + AppContext.BaseDirectory;
            return null;
        }
    }

    /// <summary>A fact that is skipped, loudly, when its corpus file is missing.</summary>
    public sealed class CorpusFactAttribute : FactAttribute
    {
        public CorpusFactAttribute(string relativePath)
        {
            if (Corpora.Find(relativePath) == null)
            {
                Skip = $"CORPUS MISSING: {relativePath} not found (looked in {Corpora.Where}). This test did not run.";
            }
        }
    }

    /// <summary>A theory that is skipped, loudly, when its corpus file is missing.</summary>
    public sealed class CorpusTheoryAttribute : TheoryAttribute
    {
        public CorpusTheoryAttribute(string relativePath)
        {
            if (Corpora.Find(relativePath) == null)
            {
                Skip = $"CORPUS MISSING: {relativePath} not found (looked in {Corpora.Where}). This test did not run.";
            }
        }
    }
}
