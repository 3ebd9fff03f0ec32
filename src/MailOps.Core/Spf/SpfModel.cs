using System;
using System.Collections.Generic;

namespace MailOps.Core.Spf
{
    /// <summary>The results of RFC 7208 check_host().</summary>
    public enum SpfResultKind
    {
        None,
        Neutral,
        Pass,
        Fail,
        SoftFail,
        TempError,
        PermError,
    }

    /// <summary>Limits and names used by the evaluation (RFC 7208 section 4.6.4 and 7.3).</summary>
    public sealed class SpfOptions
    {
        /// <summary>Terms that cause DNS queries (include, a, mx, ptr, exists, redirect): more is a permerror.</summary>
        public int MaxDnsMechanisms { get; set; } = 10;

        /// <summary>Lookups answering NXDOMAIN or no data: more is a permerror.</summary>
        public int MaxVoidLookups { get; set; } = 2;

        /// <summary>MX hosts resolved by one mx term (more is a permerror), PTR names checked by one ptr term.</summary>
        public int MaxNamesPerMechanism { get; set; } = 10;

        /// <summary>The receiving host's name, for the %{r} macro.</summary>
        public string ReceiverName { get; set; } = "unknown";
    }

    /// <summary>One step of an evaluation, for people: which record, which term, what it gave.</summary>
    public sealed class SpfTraceStep
    {
        internal SpfTraceStep(int depth, string domain, string term, string outcome)
        {
            Depth = depth;
            Domain = domain;
            Term = term;
            Outcome = outcome;
        }

        /// <summary>0 for the domain asked; 1 inside its include or redirect, and so on.</summary>
        public int Depth { get; }
        public string Domain { get; }
        public string Term { get; }
        public string Outcome { get; }

        public override string ToString() => $"{new string(' ', Depth * 2)}{Domain}: {Term} -> {Outcome}";
    }

    /// <summary>The result of an SPF evaluation and how it was reached.</summary>
    public sealed class SpfResult
    {
        internal SpfResult(SpfResultKind result, string domain, string? record, string? mechanism, string? explanation, string reason,
            int dnsLookups, int voidLookups, IReadOnlyList<SpfTraceStep> trace)
        {
            Result = result;
            Domain = domain;
            Record = record;
            Mechanism = mechanism;
            Explanation = explanation;
            Reason = reason;
            DnsLookups = dnsLookups;
            VoidLookups = voidLookups;
            Trace = trace;
        }

        public SpfResultKind Result { get; }

        /// <summary>The domain whose policy was evaluated.</summary>
        public string Domain { get; }

        /// <summary>The SPF record of that domain, when one was found.</summary>
        public string? Record { get; }

        /// <summary>The mechanism that matched (null: none matched, or an error ended the evaluation).</summary>
        public string? Mechanism { get; }

        /// <summary>For a fail: the text of the domain's exp= modifier, expanded.</summary>
        public string? Explanation { get; }

        /// <summary>Why, in a sentence.</summary>
        public string Reason { get; }

        /// <summary>DNS-querying terms used (the RFC's limit is 10).</summary>
        public int DnsLookups { get; }

        /// <summary>Lookups that found nothing (the RFC's limit is 2).</summary>
        public int VoidLookups { get; }
        public IReadOnlyList<SpfTraceStep> Trace { get; }

        public override string ToString() => $"{Result.ToString().ToLowerInvariant()} ({Reason})";
    }

    /// <summary>The result of Test-SpfRecord: the address asked about, and the evaluation.</summary>
    public sealed class SpfCheck
    {
        public SpfCheck(string ipAddress, string sender, SpfResult evaluation)
        {
            IPAddress = ipAddress;
            Sender = sender;
            Evaluation = evaluation ?? throw new ArgumentNullException(nameof(evaluation));
        }

        public string IPAddress { get; }
        public string Sender { get; }
        public SpfResult Evaluation { get; }
        public string Domain => Evaluation.Domain;
        public SpfResultKind Result => Evaluation.Result;
        public string? Mechanism => Evaluation.Mechanism;
        public string? Record => Evaluation.Record;
        public string? Explanation => Evaluation.Explanation;
        public string Reason => Evaluation.Reason;
        public int DnsLookups => Evaluation.DnsLookups;
        public int VoidLookups => Evaluation.VoidLookups;
        public IReadOnlyList<SpfTraceStep> Trace => Evaluation.Trace;
    }
}
