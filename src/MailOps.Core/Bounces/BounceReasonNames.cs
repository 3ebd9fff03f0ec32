using System.Collections.Generic;
using System.Linq;
using System.Reflection;

namespace MailOps.Core.Bounces
{
    /// <summary>Every reason name of <see cref="BounceReasons"/> (for validation and tab completion).</summary>
    public static class BounceReasonNames
    {
        public static IReadOnlyList<string> All { get; } = typeof(BounceReasons).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(string)).Select(f => (string)f.GetRawConstantValue()!).OrderBy(n => n).ToList();
    }
}
