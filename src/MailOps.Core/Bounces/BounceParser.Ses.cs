using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using System.Text.RegularExpressions;
using MimeKit;

namespace MailOps.Core.Bounces
{
    public static partial class BounceParser
    {
        private static readonly Regex SesDiagnostic = new Regex("\"diagnosticCode\"\\s*:\\s*\"([^\"]*)\"", RegexOptions.CultureInvariant);
        private static readonly Regex SesStatus = new Regex("\"status\"\\s*:\\s*\"([245]\\.\\d{1,3}\\.\\d{1,3})\"", RegexOptions.CultureInvariant);
        private static readonly Regex SesAddress = new Regex("\"emailAddress\"\\s*:\\s*\"([^\"]+@[^\"]+)\"", RegexOptions.CultureInvariant);

        /// <summary>
        /// An Amazon SES notification delivered by SNS as e-mail: JSON in the body, on its own or as the "Message" string
        /// of an SNS envelope. The fields are the ones AWS documents for SES notifications ("Amazon SES notification
        /// contents"): notificationType (or eventType) Bounce, Complaint or Delivery; bounce.bouncedRecipients[] with
        /// emailAddress, status, diagnosticCode; complaint.complainedRecipients[] and complaintFeedbackType;
        /// delivery.recipients[] and smtpResponse.
        /// </summary>
        private static List<BounceRecord> ParseSesNotification(string text, MimeMessage message, string? source)
        {
            var result = new List<BounceRecord>();
            if (text.IndexOf("notificationType", StringComparison.Ordinal) < 0 && text.IndexOf("eventType", StringComparison.Ordinal) < 0)
            {
                return result;
            }

            var time = message.Date == DateTimeOffset.MinValue ? (DateTimeOffset?)null : message.Date;
            var root = SesJson(text);
            if (root == null)
            {
                return ParseSesByPatterns(text, message, source);
            }

            var n = root.Value;
            var type = Str(n, "notificationType") ?? Str(n, "eventType") ?? "";
            var sender = n.TryGetProperty("mail", out var mail) ? Str(mail, "source") : null;
            var messageId = mail.ValueKind == JsonValueKind.Object ? Str(mail, "messageId") : null;
            switch (type)
            {
                case "Bounce" when n.TryGetProperty("bounce", out var bounce):
                {
                    var subType = Str(bounce, "bounceSubType") ?? "";
                    var permanent = string.Equals(Str(bounce, "bounceType"), "Permanent", StringComparison.OrdinalIgnoreCase);
                    foreach (var r in Items(bounce, "bouncedRecipients"))
                    {
                        var address = Str(r, "emailAddress");
                        if (address == null)
                        {
                            continue;
                        }

                        var diagnostic = BounceClassifier.Normalize(Regex.Replace(Str(r, "diagnosticCode") ?? "", @"^\s*smtp\s*;\s*", "", RegexOptions.IgnoreCase));
                        var status = BounceClassifier.FindStatusCode(Str(r, "status")) ?? BounceClassifier.FindStatusCode(diagnostic);
                        var reply = BounceClassifier.FindReplyCode(diagnostic);
                        string reason;
                        if (subType.IndexOf("Suppress", StringComparison.OrdinalIgnoreCase) >= 0)
                        {
                            // SES did not send at all: the address is on its (or the account's) suppression list
                            reason = BounceReasons.Suppressed;
                        }
                        else
                        {
                            reason = BounceClassifier.Classify(diagnostic, status, reply);
                            if ((reason == BounceReasons.OnHold || reason == BounceReasons.Undefined) && subType == "NoEmail" && permanent)
                            {
                                reason = BounceReasons.UserUnknown; // "the target email address does not exist"
                            }
                            else if ((reason == BounceReasons.OnHold || reason == BounceReasons.Undefined) && subType == "MailboxFull")
                            {
                                reason = BounceReasons.MailboxFull;
                            }
                        }

                        result.Add(new BounceRecord(BounceKind.Dsn, CleanAddress(address), Str(r, "action") ?? "failed", reply, status,
                            diagnostic.Length > 0 ? diagnostic : null, Str(bounce, "remoteMtaIp") ?? Str(bounce, "reportingMTA"), time, reason, null, sender,
                            messageId, message.MessageId, source));
                    }

                    break;
                }

                case "Complaint" when n.TryGetProperty("complaint", out var complaint):
                {
                    var feedbackType = Str(complaint, "complaintFeedbackType") ?? "abuse";
                    foreach (var r in Items(complaint, "complainedRecipients"))
                    {
                        var address = Str(r, "emailAddress");
                        if (address != null)
                        {
                            result.Add(new BounceRecord(BounceKind.Feedback, CleanAddress(address), null, 0, null, null, null, time, BounceReasons.Feedback,
                                feedbackType, sender, messageId, message.MessageId, source));
                        }
                    }

                    break;
                }

                case "Delivery" when n.TryGetProperty("delivery", out var delivery):
                {
                    var response = Str(delivery, "smtpResponse");
                    foreach (var r in Items(delivery, "recipients"))
                    {
                        if (r.ValueKind == JsonValueKind.String && r.GetString() is string address)
                        {
                            result.Add(new BounceRecord(BounceKind.Dsn, CleanAddress(address), "delivered", BounceClassifier.FindReplyCode(response),
                                BounceClassifier.FindStatusCode(response), response, Str(delivery, "reportingMTA"), time, BounceReasons.Delivered, null, sender,
                                messageId, message.MessageId, source));
                        }
                    }

                    break;
                }
            }

            return result;
        }

        /// <summary>The SES notification object in a mail body: the outermost JSON object, unwrapped from an SNS envelope.</summary>
        private static JsonElement? SesJson(string text)
        {
            var start = text.IndexOf('{');
            var end = text.LastIndexOf('}');
            if (start < 0 || end <= start)
            {
                return null;
            }

            var json = text.Substring(start, end - start + 1);
            return ParseSesJson(json) ?? ParseSesJson(Regex.Replace(json, @"\r?\n[ \t]?", "")); // lines folded inside a string
        }

        private static JsonElement? ParseSesJson(string json)
        {
            try
            {
                using (var doc = JsonDocument.Parse(json))
                {
                    var root = doc.RootElement.Clone();
                    if (root.ValueKind == JsonValueKind.Object && Str(root, "Message") is string inner && inner.TrimStart().StartsWith("{", StringComparison.Ordinal))
                    {
                        using (var innerDoc = JsonDocument.Parse(inner))
                        {
                            return innerDoc.RootElement.Clone();
                        }
                    }

                    return root.ValueKind == JsonValueKind.Object ? root : (JsonElement?)null;
                }
            }
            catch (JsonException)
            {
                return null;
            }
        }

        private static string? Str(JsonElement e, string name) =>
            e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

        private static IEnumerable<JsonElement> Items(JsonElement e, string name) =>
            e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().ToList() : Enumerable.Empty<JsonElement>();

        /// <summary>A notification whose JSON does not parse (cut or re-wrapped lines): its bounce fields read by pattern.</summary>
        private static List<BounceRecord> ParseSesByPatterns(string text, MimeMessage message, string? source)
        {
            var result = new List<BounceRecord>();
            if (text.IndexOf("Bounce", StringComparison.Ordinal) < 0)
            {
                return result;
            }

            var json = text.Replace("\\\"", "\"").Replace("\\n", " ");
            var diagnostic = SesDiagnostic.Match(json).Groups[1].Value;
            var status = SesStatus.Match(json).Groups[1].Value;
            foreach (Match m in SesAddress.Matches(json))
            {
                var r = ParseDiagnosticLine(CleanAddress(m.Groups[1].Value), diagnostic, status.Length > 0 ? status : null, 0, source);
                result.Add(WithTime(r, message.Date));
            }

            return result;
        }
    }
}
