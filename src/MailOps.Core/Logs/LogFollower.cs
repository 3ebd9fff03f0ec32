using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace MailOps.Core.Logs
{
    /// <summary>
    /// Follows a growing log file like <c>tail -F</c>: returns the complete lines appended since the last call, keeps a
    /// partial last line until its end arrives, and starts again from the top when the file is rotated (replaced by a
    /// new file, or truncated). Never holds the file open between calls, so rotation and deletion are not blocked.
    /// </summary>
    public sealed class LogFollower
    {
        private readonly StringBuilder _partial = new StringBuilder();
        private long _position;

        /// <param name="path">The log file (it may not exist yet).</param>
        /// <param name="fromEnd">Start at the current end (only new lines), or at the top.</param>
        public LogFollower(string path, bool fromEnd)
        {
            Path = path ?? throw new ArgumentNullException(nameof(path));
            if (fromEnd && File.Exists(path))
            {
                _position = new FileInfo(path).Length;
            }
        }

        public string Path { get; }

        /// <summary>How many times the file was found rotated or truncated.</summary>
        public int Rotations { get; private set; }

        /// <summary>The complete lines appended since the last call (none when the file does not exist).</summary>
        public IReadOnlyList<string> ReadNewLines()
        {
            var lines = new List<string>();
            if (!File.Exists(Path))
            {
                return lines;
            }

            var info = new FileInfo(Path);
            if (info.Length < _position)
            {
                // rotated (a new file, shorter than what was read of the old one) or truncated: read it from its top
                _position = 0;
                _partial.Clear();
                Rotations++;
            }

            if (info.Length == _position)
            {
                return lines;
            }

            using (var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16))
            {
                stream.Seek(_position, SeekOrigin.Begin);
                using (var reader = new StreamReader(stream, new UTF8Encoding(false), false, 1 << 16))
                {
                    var buffer = new char[1 << 16];
                    int n;
                    while ((n = reader.Read(buffer, 0, buffer.Length)) > 0)
                    {
                        var start = 0;
                        for (var i = 0; i < n; i++)
                        {
                            if (buffer[i] == '\n')
                            {
                                _partial.Append(buffer, start, i - start);
                                var line = _partial.ToString();
                                _partial.Clear();
                                lines.Add(line.Length > 0 && line[line.Length - 1] == '\r' ? line.Substring(0, line.Length - 1) : line);
                                start = i + 1;
                            }
                        }

                        _partial.Append(buffer, start, n - start);
                    }

                    _position = stream.Position; // what was read; a line written meanwhile is read next time
                }
            }

            return lines;
        }
    }
}
