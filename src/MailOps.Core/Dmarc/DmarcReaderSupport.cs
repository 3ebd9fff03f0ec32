using System;
using System.IO;
using System.IO.Compression;
using System.Text;

namespace MailOps.Core.Dmarc
{
    /// <summary>
    /// The first member of a gzip stream (RFC 1952): its header is read here and the deflate data after it is decompressed
    /// by DeflateStream, which stops at the last deflate block. So whatever follows the member (its CRC and size, then a
    /// trailing CR LF or other bytes some mail gateways add) is never interpreted, on every runtime; GZipStream would try
    /// to read it as a further member and, depending on the runtime and the bytes, fail.
    /// </summary>
    internal static class GzipMember
    {
        private const int FlagHeaderCrc = 2;
        private const int FlagExtra = 4;
        private const int FlagName = 8;
        private const int FlagComment = 16;

        /// <summary>The decompressed data of the first member; disposing it disposes <paramref name="inner"/>.</summary>
        /// <exception cref="InvalidDataException">Not a gzip header, or not deflate.</exception>
        public static Stream Open(Stream inner)
        {
            try
            {
                var header = new byte[10];
                for (var i = 0; i < header.Length; i++)
                {
                    header[i] = Next(inner);
                }

                if (header[0] != 0x1f || header[1] != 0x8b)
                {
                    throw new InvalidDataException("not a gzip header");
                }

                if (header[2] != 8)
                {
                    throw new InvalidDataException($"gzip compression method {header[2]} is not deflate");
                }

                var flags = header[3];
                if ((flags & FlagExtra) != 0)
                {
                    var length = Next(inner) | (Next(inner) << 8);
                    for (var i = 0; i < length; i++)
                    {
                        Next(inner);
                    }
                }

                if ((flags & FlagName) != 0)
                {
                    while (Next(inner) != 0)
                    {
                    }
                }

                if ((flags & FlagComment) != 0)
                {
                    while (Next(inner) != 0)
                    {
                    }
                }

                if ((flags & FlagHeaderCrc) != 0)
                {
                    Next(inner);
                    Next(inner);
                }

                return new DeflateStream(inner, CompressionMode.Decompress, leaveOpen: false);
            }
            catch
            {
                inner.Dispose();
                throw;
            }
        }

        private static byte Next(Stream s)
        {
            var b = s.ReadByte();
            if (b < 0)
            {
                throw new InvalidDataException("the gzip header is cut short");
            }

            return (byte)b;
        }
    }

    /// <summary>Replaces undecodable bytes with U+FFFD, as the default fallback does, and remembers that it did.</summary>
    internal sealed class ReplacementCountingFallback : DecoderFallback
    {
        public bool Used { get; private set; }

        public override int MaxCharCount => 1;

        public override DecoderFallbackBuffer CreateFallbackBuffer() => new Buffer(this);

        private sealed class Buffer : DecoderFallbackBuffer
        {
            private readonly ReplacementCountingFallback _owner;
            private int _remaining;

            public Buffer(ReplacementCountingFallback owner)
            {
                _owner = owner;
            }

            public override int Remaining => _remaining;

            public override bool Fallback(byte[] bytesUnknown, int index)
            {
                _owner.Used = true;
                _remaining = 1;
                return true;
            }

            public override char GetNextChar()
            {
                if (_remaining > 0)
                {
                    _remaining--;
                    return '\uFFFD';
                }

                return '\0';
            }

            public override bool MovePrevious()
            {
                if (_remaining == 0)
                {
                    _remaining = 1;
                    return true;
                }

                return false;
            }

            public override void Reset() => _remaining = 0;
        }
    }

    /// <summary>
    /// The repair for XML that is not well-formed: a '&lt;' that does not start markup (a tag whose name is followed by a
    /// space, '/' or '&gt;', an end tag, a comment, CDATA, a processing instruction or a declaration) becomes "&amp;lt;", and
    /// a '&amp;' that does not start an entity or character reference becomes "&amp;amp;". Comments, CDATA and
    /// processing instructions are copied as they are. Only used after the document failed to read as it is.
    /// </summary>
    internal static class XmlRepair
    {
        private const int MaxName = 256;

        public static string EscapeStrayMarkup(string text, out int escaped)
        {
            escaped = 0;
            var sb = new StringBuilder(text.Length + 64);
            var i = 0;
            while (i < text.Length)
            {
                var c = text[i];
                if (c == '<')
                {
                    if (Starts(text, i, "<!--"))
                    {
                        i = CopyThrough(text, i, "-->", sb);
                        continue;
                    }

                    if (Starts(text, i, "<![CDATA["))
                    {
                        i = CopyThrough(text, i, "]]>", sb);
                        continue;
                    }

                    if (Starts(text, i, "<?"))
                    {
                        i = CopyThrough(text, i, "?>", sb);
                        continue;
                    }

                    if (Starts(text, i, "<!") || IsTag(text, i))
                    {
                        i = CopyTag(text, i, sb);
                        continue;
                    }

                    sb.Append("&lt;");
                    escaped++;
                    i++;
                    continue;
                }

                if (c == '&' && !IsReference(text, i))
                {
                    sb.Append("&amp;");
                    escaped++;
                    i++;
                    continue;
                }

                sb.Append(c);
                i++;
            }

            return sb.ToString();
        }

        private static bool Starts(string text, int i, string what) => string.CompareOrdinal(text, i, what, 0, what.Length) == 0;

        private static int CopyThrough(string text, int i, string end, StringBuilder sb)
        {
            var at = text.IndexOf(end, i + 2, StringComparison.Ordinal);
            var stop = at < 0 ? text.Length : at + end.Length;
            sb.Append(text, i, stop - i);
            return stop;
        }

        /// <summary>Copies a tag up to its '&gt;' (outside quotes).</summary>
        private static int CopyTag(string text, int i, StringBuilder sb)
        {
            var quote = '\0';
            var j = i + 1;
            while (j < text.Length)
            {
                var c = text[j];
                if (quote != '\0')
                {
                    if (c == quote)
                    {
                        quote = '\0';
                    }
                }
                else if (c == '"' || c == '\'')
                {
                    quote = c;
                }
                else if (c == '>')
                {
                    j++;
                    break;
                }

                j++;
            }

            sb.Append(text, i, j - i);
            return j;
        }

        /// <summary>"&lt;name" or "&lt;/name" followed by white space, '/' or '&gt;' (or the end).</summary>
        private static bool IsTag(string text, int i)
        {
            var j = i + 1;
            if (j < text.Length && text[j] == '/')
            {
                j++;
            }

            if (j >= text.Length || !IsNameStart(text[j]))
            {
                return false;
            }

            var start = j;
            while (j < text.Length && j - start < MaxName && IsNameChar(text[j]))
            {
                j++;
            }

            return j >= text.Length || j - start >= MaxName || text[j] == '>' || text[j] == '/' || char.IsWhiteSpace(text[j]);
        }

        /// <summary>"&amp;name;", "&amp;#123;" or "&amp;#x1F;".</summary>
        private static bool IsReference(string text, int i)
        {
            var j = i + 1;
            if (j < text.Length && text[j] == '#')
            {
                j++;
                var hex = j < text.Length && (text[j] == 'x' || text[j] == 'X');
                if (hex)
                {
                    j++;
                }

                var start = j;
                while (j < text.Length && (char.IsDigit(text[j]) || (hex && Uri.IsHexDigit(text[j]))))
                {
                    j++;
                }

                return j > start && j < text.Length && text[j] == ';';
            }

            if (j >= text.Length || !IsNameStart(text[j]))
            {
                return false;
            }

            var nameStart = j;
            while (j < text.Length && j - nameStart < MaxName && IsNameChar(text[j]))
            {
                j++;
            }

            return j < text.Length && text[j] == ';';
        }

        private static bool IsNameStart(char c) => char.IsLetter(c) || c == '_' || c == ':' || c > 0x7f;

        private static bool IsNameChar(char c) => IsNameStart(c) || char.IsDigit(c) || c == '-' || c == '.';
    }
}
