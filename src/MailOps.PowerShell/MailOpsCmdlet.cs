using System;
using System.Collections.Concurrent;
using System.Linq;
using System.Threading.Tasks;
using System.Management.Automation;
using System.Threading;
using MailOps.Core.Config;

namespace MailOps.PowerShell
{
    /// <summary>
    /// Base of every MailOps cmdlet: owns the CancellationTokenSource that Ctrl+C (StopProcessing) cancels, so every
    /// network call in Core, which takes this token, stops promptly.
    /// </summary>
    public abstract class MailOpsCmdlet : PSCmdlet, IDisposable
    {
        private readonly CancellationTokenSource _cancel = new CancellationTokenSource();
        private bool _disposed;

        /// <summary>Cancelled when the user presses Ctrl+C or the pipeline is stopped.</summary>
        protected CancellationToken CancellationToken => _cancel.Token;

        protected override void StopProcessing()
        {
            _cancel.Cancel();
        }

        /// <summary>Turns a PowerShell path (relative, ~, PSDrive) into a file-system path; the file need not exist.</summary>
        protected string ToFileSystemPath(string path) =>
            SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);

        /// <summary>
        /// Reads the configuration (parameter, then $env:MAILOPS_CONFIG, then the per-user default). Warnings become
        /// warning records and every error an error record of its own (ErrorId Config&lt;Code&gt;), so -ErrorAction Stop
        /// stops at the first with its specific id. When <paramref name="terminating"/> is set (cmdlets that cannot
        /// work without a configuration) a terminating ConfigInvalid error follows them.
        /// </summary>
        protected MailOpsConfig? LoadConfig(string? path, bool terminating)
        {
            var (resolved, source) = ConfigLocator.Resolve(path == null ? null : ToFileSystemPath(path));
            WriteVerbose($"Configuration: {resolved} (from {DescribeSource(source)}).");
            var result = ConfigReader.ReadFile(resolved);
            foreach (var issue in result.Issues)
            {
                if (issue.Severity == IssueSeverity.Warning)
                {
                    WriteWarning(issue.ToString());
                }
                else
                {
                    WriteError(ConfigErrors.ToErrorRecord(issue, resolved));
                }
            }

            if (result.IsValid)
            {
                return result.Config;
            }

            if (terminating)
            {
                var count = result.Errors.Count();
                ThrowTerminatingError(new ErrorRecord(
                    new System.IO.InvalidDataException($"The configuration '{resolved}' has {count} error(s); see the errors above or run Test-MailOpsConfig."),
                    "ConfigInvalid", ErrorCategory.InvalidData, resolved));
            }

            return null;
        }

        /// <summary>
        /// Reads the configuration when one is named or exists; a missing default file is not an error (cmdlets that can
        /// work from parameters alone). A named file that is missing, or any invalid file, is.
        /// </summary>
        protected MailOpsConfig? LoadOptionalConfig(string? path)
        {
            var (resolved, source) = ConfigLocator.Resolve(path == null ? null : ToFileSystemPath(path));
            if (source != ConfigPathSource.Parameter && !System.IO.File.Exists(resolved))
            {
                WriteVerbose($"No configuration at {resolved} (from {DescribeSource(source)}): using defaults.");
                return null;
            }

            return LoadConfig(path, terminating: true);
        }

        /// <summary>
        /// Runs Core work on the thread pool while this (the pipeline) thread writes what the work reports: PowerShell
        /// accepts output, verbose lines and progress only from the pipeline thread. Ctrl+C cancels the work's token.
        /// </summary>
        protected T RunPumped<T>(Func<CmdletSink, Task<T>> work)
        {
            using (var queue = new BlockingCollection<Action>())
            {
                var sink = new CmdletSink(queue);
                var task = Task.Run(() => work(sink), CancellationToken);
                Exception? failure = null;
                void Invoke(Action action)
                {
                    if (failure != null)
                    {
                        return; // the pipeline is stopping: drop what the work still reports
                    }

                    try
                    {
                        action();
                    }
                    catch (Exception e) when (e is PipelineStoppedException || e is ActionPreferenceStopException || e is RuntimeException)
                    {
                        // stopped (Ctrl+C) or -ErrorAction Stop: cancel the work and wait for it to finish its current
                        // step, so that it never outlives this cmdlet (and the store it writes to)
                        failure = e;
                        _cancel.Cancel();
                    }
                }

                while (!task.IsCompleted)
                {
                    if (queue.TryTake(out var action, 50))
                    {
                        Invoke(action);
                    }
                }

                while (queue.TryTake(out var rest))
                {
                    Invoke(rest);
                }

                if (failure != null)
                {
                    try
                    {
                        task.GetAwaiter().GetResult();
                    }
                    catch (OperationCanceledException)
                    {
                        // the cancellation this caused
                    }

                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
                }

                return task.GetAwaiter().GetResult();
            }
        }

        /// <summary>Thread-safe messages from Core work to the pipeline thread.</summary>
        public sealed class CmdletSink
        {
            private readonly BlockingCollection<Action> _queue;

            internal CmdletSink(BlockingCollection<Action> queue)
            {
                _queue = queue;
            }

            public void Post(Action action)
            {
                if (!_queue.IsAddingCompleted)
                {
                    _queue.Add(action);
                }
            }
        }

        /// <summary>Opens the store the configuration names (SQLite per user by default); a failure is terminating (StoreUnavailable).</summary>
        /// <summary>
        /// What it takes to talk to a configured relay: its credential (<paramref name="given"/>, else its named credential
        /// from the SecretManagement vault; terminating CredentialNotAvailable/CredentialNotFound otherwise) and the CA
        /// certificates of its caFile (terminating CaFileUnreadable). Call it on the pipeline thread.
        /// </summary>
        protected (System.Net.NetworkCredential? Credential, System.Collections.Generic.IReadOnlyList<System.Security.Cryptography.X509Certificates.X509Certificate2> TrustedCa) RelayAccess(
            RelayConfig relay, MailOpsConfig? config, PSCredential? given)
        {
            if (relay == null)
            {
                throw new ArgumentNullException(nameof(relay));
            }

            var credential = given?.GetNetworkCredential();
            if (credential == null && relay.Credential != null)
            {
                var c = CredentialResolver.Resolve(this, relay.Credential, config?.SecretVault, out var error);
                if (c == null)
                {
                    ThrowTerminatingError(error!);
                }

                credential = c!.GetNetworkCredential();
            }

            System.Collections.Generic.IReadOnlyList<System.Security.Cryptography.X509Certificates.X509Certificate2> ca = Array.Empty<System.Security.Cryptography.X509Certificates.X509Certificate2>();
            if (relay.CaFile != null)
            {
                try
                {
                    var collection = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
                    collection.Import(relay.CaFile);
                    ca = collection.Cast<System.Security.Cryptography.X509Certificates.X509Certificate2>().ToList();
                }
                catch (Exception e) when (e is System.IO.IOException || e is System.Security.Cryptography.CryptographicException || e is UnauthorizedAccessException)
                {
                    ThrowTerminatingError(new ErrorRecord(e, "CaFileUnreadable", ErrorCategory.ReadError, relay.CaFile)
                    {
                        ErrorDetails = new ErrorDetails($"The CA certificate file '{relay.CaFile}' of the relay '{relay.Name}' cannot be read: {e.Message}"),
                    });
                }
            }

            return (credential, ca);
        }

        protected MailOps.Core.Store.BounceStore OpenStore(MailOpsConfig? config, PSCredential? storeCredential)
        {
            var store = config?.Store ?? StoreConfig.Default;
            var password = storeCredential?.GetNetworkCredential().Password;
            if (store.Provider == StoreProvider.PostgreSql && password == null && store.Credential != null)
            {
                var credential = CredentialResolver.Resolve(this, store.Credential, config?.SecretVault, out var error);
                if (credential == null)
                {
                    ThrowTerminatingError(error!);
                }

                password = credential!.GetNetworkCredential().Password;
            }

            try
            {
                return RunPumped(_ => MailOps.Core.Store.BounceStore.OpenAsync(store, password, CancellationToken));
            }
            catch (Exception e) when (e is System.Data.Common.DbException || e is System.IO.IOException || e is UnauthorizedAccessException || e is InvalidOperationException || e is TimeoutException || e is System.Net.Sockets.SocketException)
            {
                var where = store.Provider == StoreProvider.PostgreSql ? "the PostgreSQL store" : "the SQLite store " + (store.Path ?? "(per-user default)");
                ThrowTerminatingError(new ErrorRecord(e, "StoreUnavailable", ErrorCategory.ResourceUnavailable, where)
                {
                    ErrorDetails = new ErrorDetails($"Could not open {where}: {e.Message}"),
                });
                throw;
            }
        }

        internal static string DescribeSource(ConfigPathSource source) => source switch
        {
            ConfigPathSource.Parameter => "the -Path parameter",
            ConfigPathSource.EnvironmentVariable => "$env:" + ConfigLocator.EnvironmentVariable,
            _ => "the per-user default",
        };

        public void Dispose()
        {
            Dispose(true);
            GC.SuppressFinalize(this);
        }

        protected virtual void Dispose(bool disposing)
        {
            if (!_disposed && disposing)
            {
                _cancel.Dispose();
            }

            _disposed = true;
        }
    }
}
