using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using MailOps.Core.Bounces;
using MailOps.Core.Config;

namespace MailOps.Core.Store
{
    /// <summary>
    /// Streams bounce records into the store in batches: memory stays flat however large the source (a 1 GB log, a
    /// 100 MB mbox), and each batch is one transaction, so an interruption loses at most the batch in progress, which
    /// is then absent, never half-written.
    /// </summary>
    public static class BounceImporter
    {
        public const int DefaultBatchSize = 5000;

        /// <param name="store">Null: read and count only (-WhatIf).</param>
        /// <param name="onRecord">Called for each record read (for -PassThru).</param>
        /// <param name="onBatch">Called after each batch with the running totals (for progress and per-item errors).</param>
        public static Task<BounceImportResult> ImportAsync(IEnumerable<BounceRecord> records, BounceStore? store, string? flow, int batchSize,
            Action<BounceRecord>? onRecord, Action<int, BounceImportResult>? onBatch, CancellationToken cancellationToken) =>
            ImportAsync(records, store, flow, SuppressOn.Hard, batchSize, onRecord, onBatch, cancellationToken);

        /// <param name="suppressOn">Which failures suppress an address (see <see cref="SuppressOn"/>).</param>
        public static async Task<BounceImportResult> ImportAsync(IEnumerable<BounceRecord> records, BounceStore? store, string? flow, SuppressOn suppressOn, int batchSize,
            Action<BounceRecord>? onRecord, Action<int, BounceImportResult>? onBatch, CancellationToken cancellationToken)
        {
            if (records == null)
            {
                throw new ArgumentNullException(nameof(records));
            }

            var read = 0;
            var added = 0;
            var duplicates = 0;
            var skipped = 0;
            var suppressed = 0;
            var batch = new List<BounceRecord>(Math.Max(1, batchSize));

            async Task FlushAsync()
            {
                if (store != null && batch.Count > 0)
                {
                    var r = await store.ImportAsync(batch, flow, suppressOn, cancellationToken).ConfigureAwait(false);
                    added += r.Added;
                    duplicates += r.Duplicates;
                    skipped += r.Skipped;
                    suppressed += r.Suppressed;
                }

                batch.Clear();
                onBatch?.Invoke(read, new BounceImportResult(added, duplicates, skipped, suppressed));
            }

            foreach (var record in records)
            {
                cancellationToken.ThrowIfCancellationRequested();
                read++;
                onRecord?.Invoke(record);
                batch.Add(record);
                if (batch.Count >= batchSize)
                {
                    await FlushAsync().ConfigureAwait(false);
                }
            }

            await FlushAsync().ConfigureAwait(false);
            return new BounceImportResult(added, duplicates, skipped, suppressed, read);
        }
    }
}
