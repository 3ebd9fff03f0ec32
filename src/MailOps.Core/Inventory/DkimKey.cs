using System;
using System.Collections.Generic;
using System.Linq;

namespace MailOps.Core.Inventory
{
    /// <summary>A DKIM key record (RFC 6376 section 3.6.1) read into its tags, with the size of its key.</summary>
    internal sealed class DkimKeyRecord
    {
        private DkimKeyRecord()
        {
        }

        public Dictionary<string, string> Tags { get; } = new Dictionary<string, string>(StringComparer.Ordinal);
        public string? Version { get; private set; }
        public string KeyType { get; private set; } = "rsa";
        public int? KeyBits { get; private set; }
        public bool IsRevoked { get; private set; }
        public IReadOnlyList<string> Flags { get; private set; } = Array.Empty<string>();
        public IReadOnlyList<string> HashAlgorithms { get; private set; } = Array.Empty<string>();
        public IReadOnlyList<string> ServiceTypes { get; private set; } = Array.Empty<string>();
        public string? Notes { get; private set; }

        /// <summary>Why a verifier would refuse the key (null: none found).</summary>
        public string? Problem { get; private set; }

        /// <summary>Whether the text is meant as a DKIM key record at all (has a p= tag or starts with v=DKIM).</summary>
        public static bool LooksLikeKey(string text) =>
            text.TrimStart().StartsWith("v=DKIM", StringComparison.OrdinalIgnoreCase)
            || text.Split(';').Any(t => t.Trim().StartsWith("p=", StringComparison.Ordinal) || t.Trim().StartsWith("p =", StringComparison.Ordinal));

        public static DkimKeyRecord Parse(string text)
        {
            var r = new DkimKeyRecord();
            var first = true;
            foreach (var raw in text.Split(';'))
            {
                var part = raw.Trim(' ', '\t', '\r', '\n');
                if (part.Length == 0)
                {
                    continue; // a trailing ';' is allowed
                }

                var eq = part.IndexOf('=');
                if (eq <= 0)
                {
                    return r.Fail($"'{part}' is not a tag=value pair");
                }

                var tag = part.Substring(0, eq).Trim();
                var value = part.Substring(eq + 1).Trim(' ', '\t', '\r', '\n');
                if (r.Tags.ContainsKey(tag))
                {
                    return r.Fail($"the tag {tag}= appears twice");
                }

                r.Tags[tag] = value;
                if (tag == "v" && !first)
                {
                    return r.Fail("v= must be the first tag");
                }

                first = false;
            }

            static IReadOnlyList<string> List(string? v) =>
                v == null ? Array.Empty<string>() : v.Split(':').Select(x => x.Trim()).Where(x => x.Length > 0).ToList();

            r.Version = r.Tags.TryGetValue("v", out var version) ? version : null;
            r.KeyType = r.Tags.TryGetValue("k", out var k) ? k.ToLowerInvariant() : "rsa";
            r.Flags = List(r.Tags.TryGetValue("t", out var t) ? t : null);
            r.HashAlgorithms = List(r.Tags.TryGetValue("h", out var h) ? h : null);
            r.ServiceTypes = List(r.Tags.TryGetValue("s", out var s) ? s : null);
            r.Notes = r.Tags.TryGetValue("n", out var n) ? n : null;
            if (r.Version != null && r.Version != "DKIM1")
            {
                return r.Fail($"unknown version v={r.Version}");
            }

            if (!r.Tags.TryGetValue("p", out var p))
            {
                return r.Fail("no p= tag (the public key)");
            }

            var base64 = new string(p.Where(c => !char.IsWhiteSpace(c)).ToArray());
            if (base64.Length == 0)
            {
                r.IsRevoked = true; // RFC 6376 section 3.6.1: an empty p= means the key was revoked
                return r;
            }

            byte[] der;
            try
            {
                der = Convert.FromBase64String(base64);
            }
            catch (FormatException)
            {
                return r.Fail("p= is not valid base64");
            }

            switch (r.KeyType)
            {
                case "rsa":
                    r.KeyBits = RsaModulusBits(der);
                    return r.KeyBits == null ? r.Fail("p= is neither a SubjectPublicKeyInfo nor an RSAPublicKey (DER)") : r;
                case "ed25519":
                    // RFC 8463 section 4.2: the raw 32-byte public key, not wrapped in a SubjectPublicKeyInfo
                    if (der.Length != 32)
                    {
                        return r.Fail($"an ed25519 key is 32 bytes (RFC 8463); this p= has {der.Length}");
                    }

                    r.KeyBits = 256;
                    return r;
                default:
                    return r.Fail($"unknown key type k={r.KeyType}");
            }
        }

        private DkimKeyRecord Fail(string why)
        {
            Problem = why;
            return this;
        }

        private static readonly byte[] RsaEncryption = { 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01 }; // 1.2.840.113549.1.1.1

        /// <summary>
        /// The bit length of the modulus of an RSA public key given as a SubjectPublicKeyInfo (what most DKIM records hold)
        /// or as a bare RSAPublicKey (RFC 6376 allows either in practice); null when it is neither.
        /// </summary>
        internal static int? RsaModulusBits(byte[] der)
        {
            var outer = new Der(der, 0, der.Length);
            if (!outer.Read(0x30, out var seq) || outer.Position != der.Length)
            {
                return null;
            }

            if (seq.PeekTag() == 0x30)
            {
                // SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { OID rsaEncryption, NULL }, BIT STRING { RSAPublicKey } }
                if (!seq.Read(0x30, out var algorithm) || !algorithm.Read(0x06, out var oid) || !oid.Content.SequenceEqual(RsaEncryption)
                    || !seq.Read(0x03, out var bits) || bits.Length < 1 || bits.Bytes[bits.Start] != 0)
                {
                    return null;
                }

                var inner = new Der(bits.Bytes, bits.Start + 1, bits.Length - 1);
                if (!inner.Read(0x30, out seq))
                {
                    return null;
                }
            }

            if (!seq.Read(0x02, out var modulus) || !seq.Read(0x02, out _))
            {
                return null;
            }

            var m = modulus.Content.SkipWhile(b => b == 0).ToArray();
            if (m.Length == 0)
            {
                return null;
            }

            var top = 0;
            for (var b = m[0]; b != 0; b >>= 1)
            {
                top++;
            }

            return (m.Length - 1) * 8 + top;
        }

        /// <summary>Just enough DER to walk a public key: tag, definite length, content.</summary>
        private sealed class Der
        {
            public Der(byte[] bytes, int start, int length)
            {
                Bytes = bytes;
                Start = start;
                Length = length;
                Position = start;
            }

            public byte[] Bytes { get; }
            public int Start { get; }
            public int Length { get; }
            public int Position { get; private set; }

            public IEnumerable<byte> Content => Bytes.Skip(Start).Take(Length);

            public int PeekTag() => Position < Start + Length ? Bytes[Position] : -1;

            public bool Read(byte tag, out Der value)
            {
                value = this;
                var end = Start + Length;
                var p = Position;
                if (p + 2 > end || Bytes[p] != tag)
                {
                    return false;
                }

                p++;
                int len = Bytes[p++];
                if (len >= 0x80)
                {
                    var count = len & 0x7F;
                    if (count == 0 || count > 4 || p + count > end)
                    {
                        return false;
                    }

                    len = 0;
                    for (var i = 0; i < count; i++)
                    {
                        len = (len << 8) | Bytes[p++];
                    }

                    if (len < 0)
                    {
                        return false;
                    }
                }

                if (len > end - p)
                {
                    return false;
                }

                value = new Der(Bytes, p, len);
                Position = p + len;
                return true;
            }
        }
    }
}
