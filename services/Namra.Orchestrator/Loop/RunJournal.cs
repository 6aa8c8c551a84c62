using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Clients;
using Namra.Hosting.Errors;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// The journal of one run as this replica writes it. Every write appends steps and replaces the run record in one
/// call to the memory service, guarded by the record's etag, and renews this replica's lease. A write that finds the
/// record changed re-reads it: a cancel request from another replica is taken in and the write goes again; a record
/// leased to another replica (this one was presumed gone) ends this replica's part in the run.
/// </summary>
internal sealed class RunJournal(Downstream downstream, Run run, string owner, TimeSpan leaseDuration, TimeProvider timeProvider) : IDisposable
{
    private readonly SemaphoreSlim _writing = new(1, 1);
    private readonly Lock _pendingGate = new();
    private readonly List<RunJournalEntry> _pending = [];
    private string _etag = run.Etag;
    private long _length = run.JournalLength;
    private long _lastWrite = timeProvider.GetTimestamp();

    /// <summary>Called when the record says <c>CancelRun</c> was asked for, with its reason.</summary>
    public Action<string>? CancelRequested { get; set; }

    /// <summary>Steps written so far.</summary>
    public long Length => Interlocked.Read(ref _length);

    /// <summary>
    /// The whole journal of <paramref name="run"/>, oldest step first, read a page at a time: a long run's journal is
    /// larger than any one message may be.
    /// </summary>
    public static async Task<List<RunJournalEntry>> ReadAsync(Downstream downstream, Run run, DateTime deadline, CancellationToken cancellationToken)
    {
        var journal = new List<RunJournalEntry>((int)Math.Min(run.JournalLength, 10_000));
        var request = new GetRunJournalRequest { RunId = run.RunId, Tenant = run.Tenant, PageSize = 500 };
        do
        {
            var page = await downstream.Memory.GetRunJournalAsync(request, deadline: deadline, cancellationToken: cancellationToken).ConfigureAwait(false);
            journal.AddRange(page.Entries);
            request.PageToken = page.NextPageToken;
        }
        while (request.PageToken.Length > 0);
        return journal;
    }

    /// <summary>Creates the record with the run's first step, leased to this replica.</summary>
    public async Task CreateAsync(RunBegan began, DateTime deadline, CancellationToken cancellationToken)
    {
        run.Lease = Lease();
        var created = await downstream.Memory.CreateRunRecordAsync(
            new CreateRunRecordRequest { Run = run, Journal = { Entry(1, new RunJournalEntry { Began = began }) }, View = RunRecordView.Version },
            deadline: deadline, cancellationToken: cancellationToken).ConfigureAwait(false);
        _etag = created.Run.Etag;
        _length = created.Run.JournalLength;
        run.JournalLength = _length;
        _lastWrite = timeProvider.GetTimestamp();
    }

    /// <summary>Keeps a step to go with the next write (a model turn that ends the run goes with its end).</summary>
    public void Add(RunJournalEntry step)
    {
        lock (_pendingGate)
        {
            _pending.Add(step);
        }
    }

    /// <summary>Writes the steps kept and <paramref name="steps"/> with the record as it is now; with none, renews the lease.</summary>
    public async Task WriteAsync(DateTime deadline, CancellationToken cancellationToken, params RunJournalEntry[] steps)
    {
        await _writing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_waiting)
            {
                return; // the run waits for approval on no replica: nothing more is written here (a late renewal would take it back)
            }

            List<RunJournalEntry> batch;
            lock (_pendingGate)
            {
                batch = [.. _pending, .. steps];
                _pending.Clear();
            }

            try
            {
                await WriteBatchAsync(batch, deadline, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception exception) when (exception is not LeaseLostException)
            {
                // Not written (or not known to be): the steps go with the next write, which finds out.
                lock (_pendingGate)
                {
                    _pending.InsertRange(0, batch);
                }

                throw;
            }
        }
        finally
        {
            _writing.Release();
        }
    }

    /// <summary>Whether the lease is due for renewal (a third of it has passed since the last write).</summary>
    public bool RenewalDue => timeProvider.GetElapsedTime(Interlocked.Read(ref _lastWrite)) >= leaseDuration / 3;

    private async Task WriteBatchAsync(List<RunJournalEntry> batch, DateTime deadline, CancellationToken cancellationToken)
    {
        while (true)
        {
            for (var i = 0; i < batch.Count; i++)
            {
                Entry(_length + i + 1, batch[i]);
            }

            // The record says the run ended only with its last step (its messages are in the session by then), and an ended
            // run is nobody's to hold. A renewal that happens to come between the loop's end and that step leaves it running.
            var ending = batch.Exists(step => step.StepCase == RunJournalEntry.StepOneofCase.Ended);
            // A run that starts waiting for approval is nobody's either, until a decision makes it resumable.
            var waiting = _toWait;
            run.Lease = ending || waiting ? null : Lease();
            var snapshot = run.Clone();
            snapshot.JournalLength = _length;
            if (waiting)
            {
                snapshot.Status = RunStatus.AwaitingApproval;
            }
            else if (!ending)
            {
                snapshot.Status = RunStatus.Running;
                snapshot.Error = null;
                snapshot.EndTime = null;
            }
            try
            {
                var written = await downstream.Memory.UpdateRunRecordAsync(new UpdateRunRecordRequest { Run = snapshot, Etag = _etag, Journal = { batch }, View = RunRecordView.Version },
                    deadline: deadline, cancellationToken: cancellationToken).ConfigureAwait(false);
                Advance(written.Run);
                _waiting = waiting;
                return;
            }
            catch (DownstreamException exception) when (exception.StatusCode == StatusCode.Aborted)
            {
                var stored = await ReadAsync(deadline, cancellationToken).ConfigureAwait(false);
                // Steps past those this replica knows were written by an earlier attempt whose answer was lost (only the
                // lease holder appends; the run's end clears the lease): they are not written again.
                var landed = (int)Math.Clamp(stored.JournalLength - _length, 0, batch.Count);
                if (waiting && stored.Lease is null && stored.Status == RunStatus.AwaitingApproval && landed == batch.Count)
                {
                    Advance(stored); // the write that made the run wait had landed
                    _waiting = true;
                    return;
                }

                var endedHere = stored.Lease is null && stored.Status is not (RunStatus.Running or RunStatus.AwaitingApproval) && landed == batch.Count && landed > 0;
                if (stored.Lease?.Owner != owner && !endedHere)
                {
                    throw new LeaseLostException(run.RunId, stored.Lease?.Owner ?? "");
                }

                batch.RemoveRange(0, landed);
                if (landed > 0 && batch.Count == 0)
                {
                    Advance(stored);
                    return;
                }

                _length = Math.Max(_length, stored.JournalLength);
                _etag = stored.Etag;
                TakeCancel(stored);
            }
        }
    }

    /// <summary>Reads the record for a cancel request sent to another replica, and for another replica's claim.</summary>
    public async Task CheckCancelAsync(DateTime deadline, CancellationToken cancellationToken)
    {
        if (_waiting)
        {
            return; // waiting on no replica: a decision or a claim elsewhere is no loss of this one's lease
        }

        var stored = await ReadAsync(deadline, cancellationToken).ConfigureAwait(false);
        if (stored.Status == RunStatus.Running && stored.Lease is { } lease && lease.Owner != owner)
        {
            throw new LeaseLostException(run.RunId, lease.Owner); // this replica was presumed gone (paused, cut off)
        }

        TakeCancel(stored);
    }

    private async Task<Run> ReadAsync(DateTime deadline, CancellationToken cancellationToken) =>
        (await downstream.Memory.GetRunRecordAsync(new GetRunRecordRequest { RunId = run.RunId, Tenant = run.Tenant },
            deadline: deadline, cancellationToken: cancellationToken).ConfigureAwait(false)).Run;

    private void TakeCancel(Run stored)
    {
        if (stored.CancelRequested && !run.CancelRequested)
        {
            run.CancelRequested = true;
            run.CancelReason = stored.CancelReason;
            CancelRequested?.Invoke(stored.CancelReason);
        }
    }

    private void Advance(Run written)
    {
        _etag = written.Etag;
        Interlocked.Exchange(ref _length, written.JournalLength);
        run.JournalLength = written.JournalLength;
        Interlocked.Exchange(ref _lastWrite, timeProvider.GetTimestamp());
    }

    private bool _released;
    private bool _toWait;
    private bool _waiting;

    /// <summary>
    /// Writes the steps kept with the record waiting for approval and held by no replica; nothing more is written here
    /// after it. A failed write leaves the run running here, holding its lease.
    /// </summary>
    public async Task WaitForDecisionAsync(DateTime deadline, CancellationToken cancellationToken)
    {
        _toWait = true;
        try
        {
            await WriteAsync(deadline, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _toWait = false;
        }
    }

    private RunLease Lease() => new() { Owner = owner, ExpireTime = Timestamp.FromDateTimeOffset(timeProvider.GetUtcNow() + (_released ? TimeSpan.Zero : leaseDuration)) };

    /// <summary>Writes the steps kept with a lease that has lapsed already, so another replica resumes the run at once.</summary>
    public Task ReleaseAsync(DateTime deadline, CancellationToken cancellationToken)
    {
        _released = true;
        return WriteAsync(deadline, cancellationToken);
    }

    private RunJournalEntry Entry(long sequence, RunJournalEntry step)
    {
        step.Sequence = sequence;
        step.Time ??= Timestamp.FromDateTimeOffset(timeProvider.GetUtcNow());
        return step;
    }

    /// <summary>Whether the run's last step is among those still to write.</summary>
    public bool EndQueued { get; private set; }

    /// <summary>Keeps the run's last step, once, for the next write.</summary>
    public void AddEnd(RunStatus status)
    {
        if (!EndQueued)
        {
            Add(new RunJournalEntry { Ended = new RunEnded { Status = status } });
            EndQueued = true;
        }
    }

    public void Dispose() => _writing.Dispose();
}

/// <summary>This replica is shutting down: the run goes on on another, which claims it from its journal.</summary>
internal sealed class RunHandedOverException(string runId)
    : NamraException(StatusCode.Unavailable, $"This orchestrator replica is shutting down; run {runId} goes on on another replica. GetRun follows it, and so does Execute sent again with the same run_id.");

/// <summary>Another replica holds the run's lease: this one was presumed gone, and the run goes on there.</summary>
internal sealed class LeaseLostException(string runId, string owner)
    : NamraException(StatusCode.Aborted, $"Run {runId} was taken over by another replica ({owner}) after its lease lapsed here; GetRun has its outcome.");
