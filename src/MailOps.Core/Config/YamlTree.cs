using System;
using System.Collections.Generic;
using System.IO;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace MailOps.Core.Config
{
    /// <summary>
    /// A minimal YAML node tree that keeps the position of every key and value, built from YamlDotNet's parser
    /// events. YamlDotNet's own representation model throws on duplicate keys without saying where, so the
    /// configuration reader builds this one and reports duplicates (and everything else) by line and column.
    /// </summary>
    internal abstract class YNode
    {
        protected YNode(int line, int column)
        {
            Line = line;
            Column = column;
        }

        public int Line { get; }
        public int Column { get; }
        public abstract string Kind { get; }
    }

    internal sealed class YScalar : YNode
    {
        public YScalar(string value, bool isPlain, int line, int column) : base(line, column)
        {
            Value = value;
            IsPlain = isPlain;
        }

        public string Value { get; }
        public bool IsPlain { get; }

        /// <summary>A plain ~, null or empty value: YAML's null.</summary>
        public bool IsNull => IsPlain && (Value.Length == 0 || Value == "~" || Value == "null" || Value == "Null" || Value == "NULL");
        public override string Kind => IsNull ? "nothing" : "a single value";
    }

    internal sealed class YSequence : YNode
    {
        public YSequence(int line, int column) : base(line, column)
        {
        }

        public List<YNode> Items { get; } = new List<YNode>();
        public override string Kind => "a list";
    }

    internal sealed class YMapping : YNode
    {
        public YMapping(int line, int column) : base(line, column)
        {
        }

        public List<KeyValuePair<YScalar, YNode>> Entries { get; } = new List<KeyValuePair<YScalar, YNode>>();
        public override string Kind => "a mapping (key: value lines)";
    }

    /// <summary>Raised for YAML that does not parse; carries the 1-based position.</summary>
    internal sealed class YamlTreeException : Exception
    {
        public YamlTreeException(string message, int line, int column, string code) : base(message)
        {
            Line = line;
            Column = column;
            Code = code;
        }

        public YamlTreeException()
        {
        }

        public YamlTreeException(string message) : base(message)
        {
        }

        public YamlTreeException(string message, Exception innerException) : base(message, innerException)
        {
        }

        public int Line { get; }
        public int Column { get; }
        public string Code { get; } = ConfigIssueCodes.YamlSyntax;
    }

    internal static class YamlTree
    {
        /// <summary>Parses one YAML document; null for an empty stream. Duplicate keys are reported to the callback.</summary>
        public static YNode? Parse(string text, Action<YScalar, YScalar> onDuplicateKey)
        {
            var parser = new Parser(new StringReader(text));
            var anchors = new Dictionary<string, YNode>(StringComparer.Ordinal);
            try
            {
                Expect<StreamStart>(parser);
                if (parser.Current is StreamEnd)
                {
                    return null;
                }

                Expect<DocumentStart>(parser);
                YNode? root = null;
                if (!(parser.Current is DocumentEnd))
                {
                    root = ReadNode(parser, anchors, onDuplicateKey);
                }

                Expect<DocumentEnd>(parser);
                if (parser.Current is DocumentStart second)
                {
                    throw new YamlTreeException(
                        "The file holds more than one YAML document ('---'); a configuration is a single document.",
                        (int)second.Start.Line, (int)second.Start.Column, ConfigIssueCodes.MultipleDocuments);
                }

                return root;
            }
            catch (YamlException e)
            {
                throw new YamlTreeException(CleanMessage(e.Message), (int)e.Start.Line, (int)e.Start.Column, ConfigIssueCodes.YamlSyntax);
            }
            catch (InvalidOperationException)
            {
                // YamlDotNet's scanner throws this (instead of a YamlException) for some malformed input, such as an
                // unterminated flow sequence; report it after the last event that did parse.
                var at = parser.Current?.End ?? Mark.Empty;
                throw new YamlTreeException(
                    $"The file is not valid YAML: it stops making sense after line {at.Line}, column {at.Column}; look for an unclosed [ or {{, or a missing quote.",
                    (int)Math.Max(1, at.Line), (int)Math.Max(1, at.Column), ConfigIssueCodes.YamlSyntax);
            }
        }

        private static void Expect<T>(Parser parser) where T : ParsingEvent
        {
            if (parser.Current == null)
            {
                parser.MoveNext();
            }

            if (!(parser.Current is T))
            {
                var at = parser.Current?.Start ?? Mark.Empty;
                throw new YamlTreeException($"Unexpected {parser.Current?.GetType().Name ?? "end of file"}.", (int)at.Line, (int)at.Column, ConfigIssueCodes.YamlSyntax);
            }

            parser.MoveNext();
        }

        private static YNode ReadNode(Parser parser, Dictionary<string, YNode> anchors, Action<YScalar, YScalar> onDuplicateKey)
        {
            var ev = parser.Current!;
            var line = (int)ev.Start.Line;
            var column = (int)ev.Start.Column;
            switch (ev)
            {
                case AnchorAlias alias:
                    parser.MoveNext();
                    if (!anchors.TryGetValue(alias.Value.Value, out var target))
                    {
                        throw new YamlTreeException($"The alias *{alias.Value.Value} refers to no anchor defined before it.", line, column, ConfigIssueCodes.YamlSyntax);
                    }

                    return target;
                case Scalar scalar:
                    {
                        parser.MoveNext();
                        var node = new YScalar(scalar.Value, scalar.Style == ScalarStyle.Plain, line, column);
                        Remember(scalar.Anchor, node, anchors);
                        return node;
                    }

                case SequenceStart start:
                    {
                        parser.MoveNext();
                        var seq = new YSequence(line, column);
                        Remember(start.Anchor, seq, anchors);
                        while (!(parser.Current is SequenceEnd))
                        {
                            seq.Items.Add(ReadNode(parser, anchors, onDuplicateKey));
                        }

                        parser.MoveNext();
                        return seq;
                    }

                case MappingStart start:
                    {
                        parser.MoveNext();
                        var map = new YMapping(line, column);
                        Remember(start.Anchor, map, anchors);
                        var seen = new Dictionary<string, YScalar>(StringComparer.Ordinal);
                        while (!(parser.Current is MappingEnd))
                        {
                            var keyNode = ReadNode(parser, anchors, onDuplicateKey);
                            if (!(keyNode is YScalar key))
                            {
                                throw new YamlTreeException("A key must be a plain word, not a list or a mapping.", keyNode.Line, keyNode.Column, ConfigIssueCodes.WrongType);
                            }

                            var value = ReadNode(parser, anchors, onDuplicateKey);
                            if (seen.TryGetValue(key.Value, out var first))
                            {
                                onDuplicateKey(first, key);
                                continue;
                            }

                            seen.Add(key.Value, key);
                            map.Entries.Add(new KeyValuePair<YScalar, YNode>(key, value));
                        }

                        parser.MoveNext();
                        return map;
                    }

                default:
                    throw new YamlTreeException($"Unexpected {ev.GetType().Name}.", line, column, ConfigIssueCodes.YamlSyntax);
            }
        }

        private static void Remember(AnchorName anchor, YNode node, Dictionary<string, YNode> anchors)
        {
            if (!anchor.IsEmpty)
            {
                anchors[anchor.Value] = node;
            }
        }

        // YamlDotNet prefixes messages with "(Line: 3, Col: 5, Idx: 20) - (Line: ...): "; the issue carries the position itself.
        private static string CleanMessage(string message)
        {
            var i = message.LastIndexOf("): ", StringComparison.Ordinal);
            var text = i >= 0 && message.StartsWith("(Line:", StringComparison.Ordinal) ? message.Substring(i + 3) : message;
            text = text.Trim();
            if (text.Length > 0 && !text.EndsWith(".", StringComparison.Ordinal))
            {
                text += ".";
            }

            return "The file is not valid YAML: " + text;
        }
    }
}
