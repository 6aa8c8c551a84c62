using System.Collections.Concurrent;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Namra.Contracts.V1;
using Namra.Hosting.Clients;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// The services the orchestrator calls, as fakes served in its process: a gateway that answers scripted turns, a
/// tool executor that answers scripted results, and a memory service that keeps records and journals with etags and
/// fails where a test says. The orchestrator's own code runs unchanged, through its in-process clients.
/// </summary>
internal sealed class FakeDownstream
{
    public FakeGateway Gateway { get; } = new();

    public FakeTools Tools { get; } = new();

    public FakeMemory Memory { get; } = new();

    /// <summary>Serves the fakes in place of the real services of a host's roles.</summary>
    public void Use(WebApplicationBuilder builder) => Use(builder, fakeMemory: true);

    /// <summary>Serves the fake gateway and tool executor, and the fake memory service or the real one.</summary>
    public void Use(WebApplicationBuilder builder, bool fakeMemory)
    {
        builder.Services.AddSingleton(Gateway).AddSingleton(Tools).AddSingleton(Memory);
        builder.Services.AddSingleton(InProcessService.Of<FakeGateway, LlmGatewayService.LlmGatewayServiceBase>("llm-gateway", LlmGatewayService.BindService));
        builder.Services.AddSingleton(InProcessService.Of<FakeTools, ToolExecutorService.ToolExecutorServiceBase>("tool-executor", ToolExecutorService.BindService));
        if (fakeMemory)
        {
            builder.Services.AddSingleton(InProcessService.Of<FakeMemory, MemoryService.MemoryServiceBase>("memory", MemoryService.BindService));
        }
    }
}

/// <summary>Answers each model call with the next scripted message; records what it was sent.</summary>
internal sealed class FakeGateway : LlmGatewayService.LlmGatewayServiceBase
{
    private readonly ConcurrentQueue<Message> _turns = new();

    public ConcurrentQueue<GenerateRequest> Requests { get; } = new();

    public void Enqueue(params Message[] turns)
    {
        foreach (var turn in turns)
        {
            _turns.Enqueue(turn);
        }
    }

    public static Message Text(string text) => new() { Role = Role.Assistant, Content = { new ContentBlock { Text = text } } };

    public static Message Calls(params (string Id, string Name, string Arguments)[] calls) =>
        new() { Role = Role.Assistant, Content = { calls.Select(c => new ContentBlock { ToolCall = new ToolCall { Id = c.Id, Name = c.Name, ArgumentsJson = c.Arguments } }) } };

    public override async Task StreamGenerate(StreamGenerateRequest request, IServerStreamWriter<StreamGenerateResponse> responseStream, ServerCallContext context)
    {
        var whole = await Generate(new GenerateRequest { Llm = request.Llm, Messages = { request.Messages }, Tools = { request.Tools }, Context = request.Context }, context);
        await responseStream.WriteAsync(new StreamGenerateResponse
        {
            Completed = new GenerateCompleted
            {
                Message = whole.Message, StopReason = whole.StopReason, Usage = whole.Usage, Cost = whole.Cost, Model = whole.Model, Attempts = { whole.Attempts },
            },
        });
    }

    public override Task<GenerateResponse> Generate(GenerateRequest request, ServerCallContext context)
    {
        Requests.Enqueue(request);
        if (!_turns.TryDequeue(out var turn))
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, "no model turn was scripted for this call"));
        }

        var usage = new TokenUsage { InputTokens = 10, OutputTokens = 5 };
        return Task.FromResult(new GenerateResponse
        {
            Message = turn,
            StopReason = turn.Content.Any(b => b.BlockCase == ContentBlock.BlockOneofCase.ToolCall) ? StopReason.ToolUse : StopReason.EndTurn,
            Usage = usage,
            Cost = new Cost { TotalUsd = 0.001 },
            Model = request.Llm.Model,
            Attempts = { new ProviderAttempt { Provider = request.Llm.Provider, Model = request.Llm.Model, Outcome = AttemptOutcome.Completed, Usage = usage, Cost = new Cost { TotalUsd = 0.001 } } },
        });
    }
}

/// <summary>One tool, <c>act</c>, whose calls take <see cref="Delay"/> and whose idempotence a test sets; records every call.</summary>
internal sealed class FakeTools : ToolExecutorService.ToolExecutorServiceBase
{
    // Any arguments but an `amount`, which no tool here takes.
    private const string Schema = """{"type":"object","not":{"required":["amount"]}}""";

    public bool Idempotent { get; set; }

    public TimeSpan Delay { get; set; }

    /// <summary>The clock <see cref="Delay"/> passes on.</summary>
    public TimeProvider Clock { get; set; } = TimeProvider.System;

    /// <summary>What a call returns; <c>done ID</c> when unset.</summary>
    public Func<ExecuteToolRequest, string>? Output { get; set; }

    public ConcurrentQueue<ExecuteToolRequest> Calls { get; } = new();

    public ConcurrentQueue<string> Cancelled { get; } = new();

    public override Task<ListToolsResponse> ListTools(ListToolsRequest request, ServerCallContext context) =>
        Task.FromResult(new ListToolsResponse
        {
            Tools = { request.Tools.Select(t => new ToolDefinition { Name = t.Name, Description = "acts", InputSchemaJson = Schema, Source = t.Name, Idempotent = Idempotent }) },
        });

    public override async Task<ExecuteToolResponse> ExecuteTool(ExecuteToolRequest request, ServerCallContext context)
    {
        Calls.Enqueue(request);
        try
        {
            await Task.Delay(Delay, Clock, context.CancellationToken);
        }
        catch (OperationCanceledException)
        {
            Cancelled.Enqueue(request.Call.Id);
            throw;
        }

        return new ExecuteToolResponse { Result = new ToolResult { ToolCallId = request.Call.Id, Content = Output?.Invoke(request) ?? $"done {request.Call.Id}{(request.Resumed ? " (resumed)" : "")}" } };
    }
}

/// <summary>
/// Run records and journals as the memory service keeps them (versions, etags, journal sequences); a test may fail
/// the next updates or appends, or change a record behind the orchestrator's back.
/// </summary>
internal sealed class FakeMemory : MemoryService.MemoryServiceBase
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (Run Run, long Version)> _runs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<RunJournalEntry>> _journals = new(StringComparer.Ordinal);
    private int _failedGets;

    /// <summary>Says how to fail an update (the n-th, from 1), before or after applying it; null lets it pass.</summary>
    public Func<UpdateRunRecordRequest, int, (StatusCode Code, bool Applied)?>? FailUpdate { get; set; }

    /// <summary>Says how to fail an append of session messages; null lets it pass.</summary>
    public Func<AppendMessagesRequest, StatusCode?>? FailAppend { get; set; }

    /// <summary>How to fail reads of a record while set (a store that is down).</summary>
    public StatusCode? FailGet { get; set; }

    public int FailedGets => Volatile.Read(ref _failedGets);

    public int Updates { get; private set; }

    /// <summary>Every record written: its status, and whether the write ended the journal.</summary>
    public ConcurrentQueue<(RunStatus Status, bool Ended)> Writes { get; } = new();

    public ConcurrentQueue<Message> Appended { get; } = new();

    /// <summary>The run's record once it has ended (neither running nor waiting for approval); fails after <paramref name="within"/> (5 s).</summary>
    public async Task<Run> EndedAsync(string runId, TimeSpan? within = null)
    {
        var ended = Record(runId);
        await Testing.Eventually.HoldsAsync(() => (ended = Record(runId)).Status is not (RunStatus.Running or RunStatus.AwaitingApproval), within, $"run {runId} to end");
        return ended;
    }

    public Run Record(string runId)
    {
        lock (_gate)
        {
            return _runs[runId].Run.Clone();
        }
    }

    public List<RunJournalEntry> Journal(string runId)
    {
        lock (_gate)
        {
            return [.. _journals[runId].Select(e => e.Clone())];
        }
    }

    /// <summary>Changes a record as another replica would (a claim, a cancel request): its version moves on.</summary>
    public void Change(string runId, Action<Run> change)
    {
        lock (_gate)
        {
            var (run, version) = _runs[runId];
            change(run);
            _runs[runId] = (run, version + 1);
        }
    }

    /// <summary>Stores a run as a lost replica left it.</summary>
    public void Seed(Run run, IEnumerable<RunJournalEntry> journal)
    {
        lock (_gate)
        {
            run.JournalLength = journal.Count();
            _runs[run.RunId] = (run.Clone(), 1);
            _journals[run.RunId] = [.. journal];
        }
    }

    public override Task<CreateRunRecordResponse> CreateRunRecord(CreateRunRecordRequest request, ServerCallContext context)
    {
        lock (_gate)
        {
            var run = request.Run.Clone();
            run.JournalLength = request.Journal.Count;
            run.UpdateTime = Timestamp.FromDateTime(DateTime.UtcNow);
            if (!_runs.TryAdd(run.RunId, (run, 1)))
            {
                throw new RpcException(new Status(StatusCode.AlreadyExists, "exists"));
            }

            _journals[run.RunId] = [.. request.Journal.Select(e => e.Clone())];
            return Task.FromResult(new CreateRunRecordResponse { Run = Answer(WithEtag(run, 1), request.View) });
        }
    }

    public override Task<UpdateRunRecordResponse> UpdateRunRecord(UpdateRunRecordRequest request, ServerCallContext context)
    {
        lock (_gate)
        {
            var n = ++Updates;
            var failure = FailUpdate?.Invoke(request, n);
            if (failure is { Applied: false } before)
            {
                throw new RpcException(new Status(before.Code, "the fake memory failed the update"));
            }

            var (stored, version) = _runs[request.Run.RunId];
            if (request.Etag.Length > 0 && request.Etag != Etag(version))
            {
                throw new RpcException(new Status(StatusCode.Aborted, "stale etag"));
            }

            var journal = _journals[request.Run.RunId];
            for (var i = 0; i < request.Journal.Count; i++)
            {
                Assert.Equal(journal.Count + 1, request.Journal[i].Sequence);
                journal.Add(request.Journal[i].Clone());
            }

            Run merged;
            if (request.UpdateMask is { Paths.Count: > 0 } mask)
            {
                merged = stored.Clone();
                mask.Merge(request.Run, merged);
            }
            else
            {
                merged = request.Run.Clone();
            }

            merged.JournalLength = journal.Count;
            merged.UpdateTime = Timestamp.FromDateTime(DateTime.UtcNow);
            Writes.Enqueue((merged.Status, request.Journal.Any(e => e.StepCase == RunJournalEntry.StepOneofCase.Ended)));
            _runs[merged.RunId] = (merged, version + 1);
            if (failure is { Applied: true } after)
            {
                throw new RpcException(new Status(after.Code, "the fake memory applied the update and lost its answer"));
            }

            return Task.FromResult(new UpdateRunRecordResponse { Run = Answer(WithEtag(merged, version + 1), request.View) });
        }
    }

    // As the memory service answers: a writer that asked for the version gets nothing else to rely on.
    private static Run Answer(Run run, RunRecordView view) =>
        view == RunRecordView.Version ? new Run { RunId = run.RunId, Tenant = run.Tenant, Etag = run.Etag, JournalLength = run.JournalLength } : run;

    public override Task<GetRunRecordResponse> GetRunRecord(GetRunRecordRequest request, ServerCallContext context)
    {
        if (FailGet is { } code)
        {
            Interlocked.Increment(ref _failedGets);
            throw new RpcException(new Status(code, "the fake memory is down"));
        }

        lock (_gate)
        {
            return _runs.TryGetValue(request.RunId, out var stored)
                ? Task.FromResult(new GetRunRecordResponse { Run = WithEtag(stored.Run, stored.Version) })
                : throw new RpcException(new Status(StatusCode.NotFound, "no run"));
        }
    }

    // Pages of at most two steps, as if each were large: a reader that stops at the first page replays too little.
    public override Task<GetRunJournalResponse> GetRunJournal(GetRunJournalRequest request, ServerCallContext context)
    {
        var journal = Journal(request.RunId);
        if (request.PageSize == 0)
        {
            return Task.FromResult(new GetRunJournalResponse { Entries = { journal } });
        }

        var after = request.PageToken.Length > 0 ? int.Parse(request.PageToken, System.Globalization.CultureInfo.InvariantCulture) : 0;
        var page = journal.Skip(after).Take(Math.Min(request.PageSize, 2)).ToList();
        return Task.FromResult(new GetRunJournalResponse
        {
            Entries = { page },
            NextPageToken = after + page.Count < journal.Count ? (after + page.Count).ToString(System.Globalization.CultureInfo.InvariantCulture) : "",
        });
    }

    public override Task<ListRunRecordsResponse> ListRunRecords(ListRunRecordsRequest request, ServerCallContext context)
    {
        lock (_gate)
        {
            return Task.FromResult(new ListRunRecordsResponse
            {
                Runs = { _runs.Values.Where(v => request.Status == RunStatus.Unspecified || v.Run.Status == request.Status).Select(v => WithEtag(v.Run, v.Version)) },
            });
        }
    }

    public override Task<AppendMessagesResponse> AppendMessages(AppendMessagesRequest request, ServerCallContext context)
    {
        if (FailAppend?.Invoke(request) is { } code)
        {
            throw new RpcException(new Status(code, "the fake memory refused the messages"));
        }

        foreach (var message in request.Messages)
        {
            Appended.Enqueue(message);
        }

        return Task.FromResult(new AppendMessagesResponse { Appended = request.Messages.Count });
    }

    public override Task<GetHistoryResponse> GetHistory(GetHistoryRequest request, ServerCallContext context) => Task.FromResult(new GetHistoryResponse());

    private static string Etag(long version) => $"\"{version}\"";

    private static Run WithEtag(Run run, long version)
    {
        var copy = run.Clone();
        copy.Etag = Etag(version);
        return copy;
    }
}
