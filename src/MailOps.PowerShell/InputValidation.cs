using System.Text.RegularExpressions;

namespace MailOps.PowerShell
{
    /// <summary>Refuses parameter values that could inject SMTP commands or message headers.</summary>
    internal static class InputValidation
    {
        private static readonly Regex HeloName = new Regex(@"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)$", RegexOptions.CultureInvariant);

        public static bool IsSafeAddress(string address, out string why)
        {
            if (address.IndexOfAny(new[] { '\r', '\n', '\0' }) >= 0)
            {
                why = "it contains a line break (header or command injection)";
                return false;
            }

            if (address.IndexOfAny(new[] { '<', '>', ' ', ',', ';', '"' }) >= 0)
            {
                why = "give the bare address (user@example.org), without a display name, brackets, spaces or separators";
                return false;
            }

            var at = address.LastIndexOf('@');
            if (at <= 0 || at == address.Length - 1 || !MimeKit.MailboxAddress.TryParse(address, out _))
            {
                why = "it is not an address of the form user@example.org";
                return false;
            }

            why = "";
            return true;
        }

        public static bool IsSafeHeloName(string name) => HeloName.IsMatch(name) && name.Length <= 253;
    }
}
