using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.VectorData;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Testing;
using Namra.Testing.Providers;

namespace Namra.Memory.Tests;

/// <summary>
/// What every memory store promises, checked through the gRPC API on a real socket: one subclass per backend
/// sets the store up. Each test uses its own session ids, so tests of one class may share a backend.
/// </summary>
public abstract class MemoryContract : IAsyncLifetime
{
    private readonly string _prefix = Guid.NewGuid().ToString("N")[..8];
    private NamraTestHost _host = null!;
    private FakeProviderServer _embeddings = null!;

    protected MemoryService.MemoryServiceClient Client { get; private set; } = null!;

    /// <summary>The store under test.</summary>
    protected abstract MemoryType Store { get; }

    /// <summary>Settings that configure the store (and make it the default).</summary>
    protected abstract IDictionary<string, string?> Settings { get; }

    public async ValueTask InitializeAsync()
    {
        // With the gateway and a provider of embeddings beside it, for semantic recall.
        _embeddings = await FakeProviderServer.StartAsync();
        var environment = new Dictionary<string, string> { ["OPENAI_API_KEY"] = "sk-test", ["OPENAI_BASE_URL"] = new Uri(_embeddings.BaseUrl, "/v1").ToString() };
        _host = await NamraTestHost.StartAsync("memory,llm-gateway", Settings, configure: builder => ProviderEnvironment.Use(builder, environment));
        Client = new MemoryService.MemoryServiceClient(_host.Channel);
    }

    public virtual async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _embeddings.DisposeAsync();
        GC.SuppressFinalize(this);
    }

    protected string Id(string name) => $"{_prefix}-{name}";

    [Fact]
    public async Task ANamespaceOfMemories_IsAVectorCollection_ToUpsertGetSearchAndDelete()
    {
        var store = await _host.Services.GetRequiredService<Stores.MemoryStores>().GetAsync(Store, CancellationToken.None);
        var collections = _host.Services.GetRequiredService<Semantic.IMemoryCollections>();
        var collection = collections.For(store, "acme", Id("vectors"));
        static Semantic.MemoryRecord Record(string id, float[] vector, string text = "", string kind = "") => new()
        {
            Id = id, Text = text.Length > 0 ? text : id, Model = "m", Embedding = vector, Metadata = kind.Length > 0 ? new() { ["kind"] = kind } : [],
        };
        static async Task<List<T>> All<T>(IAsyncEnumerable<T> items)
        {
            var list = new List<T>();
            await foreach (var item in items)
            {
                list.Add(item);
            }

            return list;
        }

        await collection.UpsertAsync([Record("north", [1, 0, 0], kind: "a"), Record("east", [0, 1, 0]), Record("northeast", [0.7f, 0.7f, 0], kind: "a")]);
        await collection.UpsertAsync(Record("east", [0, 1, 0], text: "east, again"));
        var nearest = await All(collection.SearchAsync(new float[] { 1, 0.1f, 0 }, 2));
        var labelled = await All(collection.SearchAsync(new float[] { 0, 1, 0 }, 5, new VectorSearchOptions<Semantic.MemoryRecord> { Filter = r => r.Metadata.ContainsKey("kind") }));
        var close = await All(collection.SearchAsync(new float[] { 1, 0.1f, 0 }, 5, new VectorSearchOptions<Semantic.MemoryRecord> { ScoreThreshold = 0.9 }));
        var skipped = await All(collection.SearchAsync(new float[] { 1, 0.1f, 0 }, 1, new VectorSearchOptions<Semantic.MemoryRecord> { Skip = 1 }));
        var byText = await All(collection.GetAsync(r => r.Text.StartsWith("north", StringComparison.Ordinal), 10));

        Assert.Equal(["north", "northeast"], nearest.Select(r => r.Record.Id));
        Assert.True(nearest[0].Score > nearest[1].Score);
        Assert.Equal(["northeast", "north"], labelled.Select(r => r.Record.Id));
        Assert.Equal(["north"], close.Select(r => r.Record.Id));
        Assert.Equal(["northeast"], skipped.Select(r => r.Record.Id));
        Assert.Equal(["north", "northeast"], byText.Select(r => r.Id).Order(StringComparer.Ordinal));
        Assert.Equal("east, again", (await collection.GetAsync("east"))!.Text);
        Assert.Null(await collection.GetAsync("west"));
        Assert.Empty(await All(collections.For(store, "globex", Id("vectors")).SearchAsync(new float[] { 1, 0, 0 }, 5)));
        await Assert.ThrowsAsync<NotSupportedException>(async () => await All(collection.SearchAsync("north", 1)));

        await collection.DeleteAsync("north");

        Assert.Null(await collection.GetAsync("north"));
        Assert.Equal(["northeast", "east"], (await All(collection.SearchAsync(new float[] { 1, 0.1f, 0 }, 5))).Select(r => r.Record.Id));
        await collection.EnsureCollectionDeletedAsync();
        Assert.False(await collection.CollectionExistsAsync());
    }

    [Fact]
    public async Task Appends_AreReadBackInOrder()
    {
        var session = Id("order");
        await Append(session, Text("m1", Role.User, "hello"), Text("m2", Role.Assistant, "hi"));
        await Append(session, Text("m3", Role.User, "how are you?"));

        var history = await Client.GetHistoryAsync(new GetHistoryRequest { SessionId = session, Store = Store });

        Assert.Equal(["m1", "m2", "m3"], history.Messages.Select(m => m.Id));
        Assert.Equal("how are you?", history.Messages[2].Content[0].Text);
        Assert.Equal(Role.Assistant, history.Messages[1].Role);
        Assert.Equal(3, history.TotalMessages);
        Assert.False(history.Truncated);
    }

    [Fact]
    public async Task AnAppendRetried_IsNotStoredTwice()
    {
        var session = Id("idempotent");
        var first = await Append(session, Text("a", Role.User, "one"), Text("b", Role.Assistant, "two"));
        var retried = await Append(session, Text("a", Role.User, "one"), Text("b", Role.Assistant, "two"), Text("c", Role.User, "three"));

        var history = await Client.GetHistoryAsync(new GetHistoryRequest { SessionId = session, Store = Store });

        Assert.Equal((2, 0, 2L), (first.Appended, first.Duplicates, first.MessageCount));
        Assert.Equal((1, 2, 3L), (retried.Appended, retried.Duplicates, retried.MessageCount));
        Assert.Equal(["a", "b", "c"], history.Messages.Select(m => m.Id));
    }

    [Fact]
    public async Task History_IsWindowedByCount_NewestKept()
    {
        var session = Id("window");
        await Append(session, [.. Enumerable.Range(1, 10).Select(i => Text($"m{i}", i % 2 == 1 ? Role.User : Role.Assistant, $"message {i}"))]);

        var history = await Client.GetHistoryAsync(new GetHistoryRequest { SessionId = session, MaxMessages = 3, Store = Store });

        Assert.Equal(["m8", "m9", "m10"], history.Messages.Select(m => m.Id));
        Assert.True(history.Truncated);
        Assert.Equal(10, history.TotalMessages);
    }

    [Fact]
    public async Task History_IsWindowedByTokens_AndNeverStartsWithAnOrphanedToolResult()
    {
        var session = Id("tokens");
        var call = new Message { Id = "call", Role = Role.Assistant, Content = { new ContentBlock { ToolCall = new ToolCall { Id = "t1", Name = "calculator", ArgumentsJson = "{\"expression\":\"" + string.Join('+', Enumerable.Repeat("2", 200)) + "\"}" } } } };
        var result = new Message { Id = "result", Role = Role.Tool, Content = { new ContentBlock { ToolResult = new ToolResult { ToolCallId = "t1", Content = new string('4', 400) } } } };
        await Append(session, Text("old", Role.User, new string('x', 4000)), call, result, Text("answer", Role.Assistant, new string('y', 400)));

        // 400 characters is about 100 tokens: the answer and the tool result fit 250, the call (as long) does not.
        var history = await Client.GetHistoryAsync(new GetHistoryRequest { SessionId = session, MaxTokens = 250, Store = Store });

        Assert.Equal(["answer"], history.Messages.Select(m => m.Id));
        Assert.True(history.Truncated);
    }

    [Fact]
    public async Task ConcurrentAppends_ToOneSession_LoseAndDuplicateNothing()
    {
        var session = Id("concurrent");
        const int callers = 16, appendsEach = 20;

        await Task.WhenAll(Enumerable.Range(0, callers).Select(caller => Task.Run(async () =>
        {
            for (var i = 0; i < appendsEach; i++)
            {
                var message = Text($"c{caller}-{i}", Role.User, $"caller {caller} message {i}");
                await Append(session, message);
                if (i % 5 == 0)
                {
                    await Append(session, message); // a retry of an acknowledged append
                }
            }
        })));

        var history = await Client.GetHistoryAsync(new GetHistoryRequest { SessionId = session, Store = Store });
        var ids = history.Messages.Select(m => m.Id).ToList();

        Assert.Equal(callers * appendsEach, ids.Count);
        Assert.Equal(ids.Count, ids.Distinct().Count());
        for (var caller = 0; caller < callers; caller++)
        {
            var mine = ids.Where(id => id.StartsWith($"c{caller}-", StringComparison.Ordinal)).ToList();
            Assert.Equal(Enumerable.Range(0, appendsEach).Select(i => $"c{caller}-{i}"), mine);
        }
    }

    [Fact]
    public async Task LargeMessages_RoundTrip_AndOversizedOnesAreRefused()
    {
        var session = Id("large");
        var large = new string('z', 900 * 1024);
        await Append(session, Text("big", Role.User, large));

        var history = await Client.GetHistoryAsync(new GetHistoryRequest { SessionId = session, Store = Store });
        var error = await Assert.ThrowsAsync<RpcException>(() => Append(session, Text("huge", Role.User, new string('z', 1100 * 1024))));

        Assert.Equal(large, history.Messages.Single().Content[0].Text);
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("messages[0]", RpcDetails.Of<Google.Rpc.BadRequest>(error)[0].FieldViolations[0].Field, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DeleteSession_RemovesItsMessages()
    {
        var session = Id("delete");
        await Append(session, Text("m1", Role.User, "forget me"));

        var deleted = await Client.DeleteSessionAsync(new DeleteSessionRequest { SessionId = session, Store = Store });
        var again = await Client.DeleteSessionAsync(new DeleteSessionRequest { SessionId = session, Store = Store });
        var history = await Client.GetHistoryAsync(new GetHistoryRequest { SessionId = session, Store = Store });
        var fresh = await Append(session, Text("m1", Role.User, "a new start"));

        Assert.True(deleted.Deleted);
        Assert.False(again.Deleted);
        Assert.Empty(history.Messages);
        Assert.Equal(1, fresh.Appended);
    }

    [Fact]
    public async Task Retention_KeepsTheNewestMessages()
    {
        var session = Id("retention");
        var retention = new SessionRetention { MaxMessages = 4 };
        for (var i = 1; i <= 7; i++)
        {
            await Client.AppendMessagesAsync(new AppendMessagesRequest { SessionId = session, Store = Store, Retention = retention, Messages = { Text($"m{i}", Role.User, $"{i}") } });
        }

        var history = await Client.GetHistoryAsync(new GetHistoryRequest { SessionId = session, Store = Store });

        Assert.Equal(["m4", "m5", "m6", "m7"], history.Messages.Select(m => m.Id));
        Assert.Equal(4, history.TotalMessages);
    }

    [Fact]
    public async Task Retention_ExpiresAnIdleSession()
    {
        var session = Id("ttl");
        var kept = Id("kept");
        await Client.AppendMessagesAsync(new AppendMessagesRequest
        {
            SessionId = session, Store = Store, Retention = new SessionRetention { Ttl = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(300)) },
            Messages = { Text("m1", Role.User, "short-lived") },
        });
        await Append(kept, Text("m1", Role.User, "kept"));

        var history = await Client.GetHistoryAsync(new GetHistoryRequest { SessionId = session, Store = Store });
        Assert.Single(history.Messages);
        for (var i = 0; i < 50 && history.Messages.Count > 0; i++)
        {
            await Task.Delay(100);
            history = await Client.GetHistoryAsync(new GetHistoryRequest { SessionId = session, Store = Store });
        }

        Assert.Empty(history.Messages);
        Assert.Single((await Client.GetHistoryAsync(new GetHistoryRequest { SessionId = kept, Store = Store })).Messages);
    }

    [Fact]
    public async Task ListSessions_PagesInIdOrder_AndFiltersByAgent()
    {
        var agent = Id("agent");
        foreach (var name in new[] { "s3", "s1", "s2" })
        {
            await Client.AppendMessagesAsync(new AppendMessagesRequest { SessionId = Id(name), AgentName = agent, Store = Store, Messages = { Text("m", Role.User, "x") } });
        }

        await Client.AppendMessagesAsync(new AppendMessagesRequest { SessionId = Id("other"), AgentName = "someone-else", Store = Store, Messages = { Text("m", Role.User, "x") } });

        var first = await Client.ListSessionsAsync(new ListSessionsRequest { AgentName = agent, PageSize = 2, Store = Store });
        var second = await Client.ListSessionsAsync(new ListSessionsRequest { AgentName = agent, PageSize = 2, PageToken = first.NextPageToken, Store = Store });

        Assert.Equal([Id("s1"), Id("s2")], first.Sessions.Select(s => s.SessionId));
        Assert.Equal([Id("s3")], second.Sessions.Select(s => s.SessionId));
        Assert.Equal("", second.NextPageToken);
        Assert.All(first.Sessions, s => Assert.Equal(1, s.MessageCount));
    }

    [Fact]
    public async Task BadRequests_SayWhatAndWhere()
    {
        var noSession = await Assert.ThrowsAsync<RpcException>(() => Append("", Text("m", Role.User, "x")));
        var noRole = await Assert.ThrowsAsync<RpcException>(() => Append(Id("bad"), new Message { Id = "m", Content = { new ContentBlock { Text = "x" } } }));
        var noId = await Assert.ThrowsAsync<RpcException>(() => Append(Id("bad"), Text("", Role.User, "x")));

        Assert.Equal("session_id", RpcDetails.Of<Google.Rpc.BadRequest>(noSession)[0].FieldViolations[0].Field);
        Assert.Equal("messages[0].role", RpcDetails.Of<Google.Rpc.BadRequest>(noRole)[0].FieldViolations[0].Field);
        Assert.Equal("messages[0].id", RpcDetails.Of<Google.Rpc.BadRequest>(noId)[0].FieldViolations[0].Field);
    }

    [Fact]
    public async Task RunRecords_AreCreatedReadUpdatedWithEtagsAndListed()
    {
        var agent = Id("runner");
        var created = await Client.CreateRunRecordAsync(new CreateRunRecordRequest { Run = NewRun(Id("run-1"), agent) });
        var second = await Client.CreateRunRecordAsync(new CreateRunRecordRequest { Run = NewRun(Id("run-2"), agent, createdLater: true) });
        var repeated = await Client.CreateRunRecordAsync(new CreateRunRecordRequest { Run = NewRun(Id("run-1"), agent) });
        var otherRun = NewRun(Id("run-1"), agent);
        otherRun.Input = "what is 6*9?";
        var duplicate = await Assert.ThrowsAsync<RpcException>(() => Client.CreateRunRecordAsync(new CreateRunRecordRequest { Run = otherRun }).ResponseAsync);

        var updated = await Client.UpdateRunRecordAsync(new UpdateRunRecordRequest
        {
            Run = new Run { RunId = Id("run-1"), Status = RunStatus.Completed, Answer = "42", Iterations = 2 },
            UpdateMask = new FieldMask { Paths = { "status", "answer", "iterations" } },
            Etag = created.Run.Etag,
        });
        var stale = await Assert.ThrowsAsync<RpcException>(() => Client.UpdateRunRecordAsync(new UpdateRunRecordRequest
        {
            Run = new Run { RunId = Id("run-1"), Status = RunStatus.Failed },
            UpdateMask = new FieldMask { Paths = { "status" } },
            Etag = created.Run.Etag,
        }).ResponseAsync);
        var repeatedAfterUpdate = await Assert.ThrowsAsync<RpcException>(() => Client.CreateRunRecordAsync(new CreateRunRecordRequest { Run = NewRun(Id("run-1"), agent) }).ResponseAsync);
        var read = await Client.GetRunRecordAsync(new GetRunRecordRequest { RunId = Id("run-1") });
        var missing = await Assert.ThrowsAsync<RpcException>(() => Client.GetRunRecordAsync(new GetRunRecordRequest { RunId = Id("nope") }).ResponseAsync);
        var page1 = await Client.ListRunRecordsAsync(new ListRunRecordsRequest { AgentName = agent, PageSize = 1 });
        var page2 = await Client.ListRunRecordsAsync(new ListRunRecordsRequest { AgentName = agent, PageSize = 1, PageToken = page1.NextPageToken });
        var completed = await Client.ListRunRecordsAsync(new ListRunRecordsRequest { AgentName = agent, Status = RunStatus.Completed });

        // A repeated create (a retry whose answer was lost) gets the record it made; other content, or a record updated
        // since, is another run's id.
        Assert.Equal((created.Run.Etag, created.Run.CreateTime, created.Run.UpdateTime), (repeated.Run.Etag, repeated.Run.CreateTime, repeated.Run.UpdateTime));
        Assert.Equal(StatusCode.AlreadyExists, duplicate.StatusCode);
        Assert.Equal(StatusCode.AlreadyExists, repeatedAfterUpdate.StatusCode);
        Assert.NotEqual(created.Run.Etag, updated.Run.Etag);
        Assert.Equal(StatusCode.Aborted, stale.StatusCode);
        Assert.Equal((RunStatus.Completed, "42", 2, "what is 6*7?"), (read.Run.Status, read.Run.Answer, read.Run.Iterations, read.Run.Input));
        Assert.Equal(updated.Run.Etag, read.Run.Etag);
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        Assert.Equal([Id("run-2")], page1.Runs.Select(r => r.RunId));
        Assert.Equal([Id("run-1")], page2.Runs.Select(r => r.RunId));
        Assert.Equal([Id("run-1")], completed.Runs.Select(r => r.RunId));
        Assert.NotNull(second.Run.UpdateTime);
    }

    [Fact]
    public async Task ConcurrentRunUpdates_WithoutEtags_AllLand()
    {
        var runId = Id("counted");
        await Client.CreateRunRecordAsync(new CreateRunRecordRequest { Run = NewRun(runId, Id("counter")) });

        await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Client.UpdateRunRecordAsync(new UpdateRunRecordRequest
        {
            Run = new Run { RunId = runId, Labels = { [$"k{i}"] = "v" } },
            UpdateMask = new FieldMask { Paths = { $"labels" } },
        }).ResponseAsync));
        var read = await Client.GetRunRecordAsync(new GetRunRecordRequest { RunId = runId });

        Assert.Equal("\"9\"", read.Run.Etag);
        Assert.Single(read.Run.Labels);
    }

    [Fact]
    public async Task Journal_GrowsWithItsRecord_InOrder_AndNeverHalfWritten()
    {
        var runId = Id("journaled");
        var created = await Client.CreateRunRecordAsync(new CreateRunRecordRequest { Run = NewRun(runId, Id("journalist")), Journal = { Step(1, "hello") } });
        var updated = await Client.UpdateRunRecordAsync(new UpdateRunRecordRequest
        {
            Run = new Run { RunId = runId, Iterations = 1 },
            UpdateMask = new FieldMask { Paths = { "iterations" } },
            Etag = created.Run.Etag,
            Journal = { Turn(2, "thinking"), Turn(3, "done") },
            View = RunRecordView.Version,
        });
        var stale = await Assert.ThrowsAsync<RpcException>(() => Client.UpdateRunRecordAsync(new UpdateRunRecordRequest
        {
            Run = new Run { RunId = runId, Iterations = 9 },
            UpdateMask = new FieldMask { Paths = { "iterations" } },
            Etag = created.Run.Etag,
            Journal = { Turn(4, "a retry whose first attempt landed") },
        }).ResponseAsync);
        var gap = await Assert.ThrowsAsync<RpcException>(() => Client.UpdateRunRecordAsync(new UpdateRunRecordRequest
        {
            Run = new Run { RunId = runId }, UpdateMask = new FieldMask { Paths = { "iterations" } }, Etag = updated.Run.Etag, Journal = { Turn(5, "skips 4") },
        }).ResponseAsync);
        var noEtag = await Assert.ThrowsAsync<RpcException>(() => Client.UpdateRunRecordAsync(new UpdateRunRecordRequest
        {
            Run = new Run { RunId = runId }, UpdateMask = new FieldMask { Paths = { "iterations" } }, Journal = { Turn(4, "blind") },
        }).ResponseAsync);
        var journal = await Client.GetRunJournalAsync(new GetRunJournalRequest { RunId = runId });
        var read = await Client.GetRunRecordAsync(new GetRunRecordRequest { RunId = runId });
        var missing = await Assert.ThrowsAsync<RpcException>(() => Client.GetRunJournalAsync(new GetRunJournalRequest { RunId = Id("no-such-run") }).ResponseAsync);

        Assert.Equal([1L, 2L, 3L], journal.Entries.Select(e => e.Sequence));
        Assert.Equal("hello", journal.Entries[0].Began.Input.Content[0].Text);
        Assert.Equal(["thinking", "done"], journal.Entries.Skip(1).Select(e => e.ModelTurn.Message.Content[0].Text));
        Assert.Equal((3L, 1), (read.Run.JournalLength, read.Run.Iterations));
        Assert.Equal(new Run { RunId = runId, Tenant = "default", Etag = read.Run.Etag, JournalLength = 3 }, updated.Run); // the writer's view: no more
        Assert.Equal(Id("journalist"), created.Run.Agent.Name); // the whole record, unless asked otherwise
        Assert.Equal(StatusCode.Aborted, stale.StatusCode);
        Assert.Equal("journal[0].sequence", RpcDetails.Of<Google.Rpc.BadRequest>(gap)[0].FieldViolations[0].Field);
        Assert.Equal("etag", RpcDetails.Of<Google.Rpc.BadRequest>(noEtag)[0].FieldViolations[0].Field);
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task AWholeRecordUpdate_KeepsTheStoredCreationTimeAndJournalLength_WhateverItSays()
    {
        var runId = Id("replaced");
        var created = await Client.CreateRunRecordAsync(new CreateRunRecordRequest { Run = NewRun(runId, Id("replacer")), Journal = { Step(1, "go") } });
        var whole = NewRun(runId, Id("replacer"), createdLater: true);
        whole.Iterations = 7;
        whole.JournalLength = 99;
        var updated = await Client.UpdateRunRecordAsync(new UpdateRunRecordRequest { Run = whole, Etag = created.Run.Etag, Journal = { Turn(2, "on") } });
        var read = await Client.GetRunRecordAsync(new GetRunRecordRequest { RunId = runId });

        Assert.Equal((created.Run.CreateTime, 2L, 7), (read.Run.CreateTime, read.Run.JournalLength, read.Run.Iterations));
        Assert.Equal(read.Run, updated.Run);
    }

    [Fact]
    public async Task AJournalLargerThanAClientsLargestMessage_IsReadInPages_EachWithinIt()
    {
        // Nine steps of 1 MiB: more than the 4 MiB a gRPC client accepts by default, as a long run's journal outgrows any limit.
        var runId = Id("long-journal");
        var created = await Client.CreateRunRecordAsync(new CreateRunRecordRequest { Run = NewRun(runId, Id("talker")), Journal = { Step(1, "go") } });
        var etag = created.Run.Etag;
        for (var sequence = 2; sequence <= 10; sequence += 3)
        {
            var written = await Client.UpdateRunRecordAsync(new UpdateRunRecordRequest
            {
                Run = new Run { RunId = runId }, UpdateMask = new FieldMask { Paths = { "iterations" } }, Etag = etag,
                Journal = { Enumerable.Range(sequence, 3).Select(s => Turn(s, new string((char)('a' + s), 1024 * 1024))) },
            });
            etag = written.Run.Etag;
        }

        var whole = await Assert.ThrowsAsync<RpcException>(() => Client.GetRunJournalAsync(new GetRunJournalRequest { RunId = runId }).ResponseAsync);
        var pages = new List<GetRunJournalResponse>();
        var small = new List<GetRunJournalResponse>();
        foreach (var (list, size) in new[] { (pages, 1000), (small, 4) })
        {
            var request = new GetRunJournalRequest { RunId = runId, PageSize = size };
            do
            {
                var page = await Client.GetRunJournalAsync(request);
                list.Add(page);
                request.PageToken = page.NextPageToken;
            }
            while (request.PageToken.Length > 0);
        }

        var badSize = await Assert.ThrowsAsync<RpcException>(() => Client.GetRunJournalAsync(new GetRunJournalRequest { RunId = runId, PageSize = 1001 }).ResponseAsync);
        var badToken = await Assert.ThrowsAsync<RpcException>(() => Client.GetRunJournalAsync(new GetRunJournalRequest { RunId = runId, PageSize = 10, PageToken = "not-a-token" }).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, whole.StatusCode);
        Assert.Equal(Enumerable.Range(1, 10).Select(s => (long)s), pages.SelectMany(p => p.Entries).Select(e => e.Sequence));
        Assert.Equal(["go", .. Enumerable.Range(2, 9).Select(s => new string((char)('a' + s), 1024 * 1024))],
            pages.SelectMany(p => p.Entries).Select(e => e.Began?.Input.Content[0].Text ?? e.ModelTurn.Message.Content[0].Text));
        Assert.All(pages, page => Assert.InRange(page.CalculateSize(), 1, 4 * 1024 * 1024));
        Assert.Equal(3, pages.Count);
        Assert.Equal([4, 3, 3], small.Select(p => p.Entries.Count));
        Assert.Equal(Enumerable.Range(1, 10).Select(s => (long)s), small.SelectMany(p => p.Entries).Select(e => e.Sequence));
        Assert.Equal(["page_size", "page_token"], new[] { badSize, badToken }.Select(e => RpcDetails.Of<Google.Rpc.BadRequest>(e)[0].FieldViolations[0].Field));
    }

    [Fact]
    public async Task RunsWithLargeInputs_AreListedInPagesWithinAClientsLargestMessage()
    {
        // Six runs with an input of a megabyte each (the most Execute takes): more than a default client's 4 MiB in one page.
        var agent = Id("large-inputs");
        for (var i = 0; i < 6; i++)
        {
            var run = NewRun(Id($"large-{i}"), agent);
            run.Input = new string((char)('a' + i), 1_000_000);
            await Client.CreateRunRecordAsync(new CreateRunRecordRequest { Run = run, Journal = { Step(1, "go") } });
        }

        var pages = new List<ListRunRecordsResponse>();
        var request = new ListRunRecordsRequest { AgentName = agent, PageSize = 100 };
        do
        {
            var page = await Client.ListRunRecordsAsync(request);
            pages.Add(page);
            request.PageToken = page.NextPageToken;
        }
        while (request.PageToken.Length > 0);

        Assert.Equal(Enumerable.Range(0, 6).Select(i => Id($"large-{i}")).Order(StringComparer.Ordinal), pages.SelectMany(p => p.Runs).Select(r => r.RunId).Order(StringComparer.Ordinal));
        Assert.All(pages, page => Assert.InRange(page.CalculateSize(), 1, 4 * 1024 * 1024));
        Assert.Equal([4, 2], pages.Select(p => p.Runs.Count)); // four inputs of 1,000,000 bytes fit in 4 MiB, five do not
    }

    [Fact]
    public async Task ALapsedLease_IsClaimedByExactlyOneOfManyReplicas_AndFinishedRunsLeaveTheRunningList()
    {
        var agent = Id("leased");
        var runId = Id("leased-run");
        var created = await Client.CreateRunRecordAsync(new CreateRunRecordRequest
        {
            Run = NewRun(runId, agent, lease: new RunLease { Owner = "gone", ExpireTime = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddSeconds(-1)) }),
            Journal = { Step(1, "go") },
        });
        var running = await Client.ListRunRecordsAsync(new ListRunRecordsRequest { AgentName = agent, Status = RunStatus.Running });

        // Every replica sees the lapsed lease at once and claims it with the etag it read: one wins.
        var claims = await Task.WhenAll(Enumerable.Range(0, 8).Select(async i =>
        {
            try
            {
                await Client.UpdateRunRecordAsync(new UpdateRunRecordRequest
                {
                    Run = new Run { RunId = runId, Lease = new RunLease { Owner = $"replica-{i}", ExpireTime = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddSeconds(10)) } },
                    UpdateMask = new FieldMask { Paths = { "lease" } },
                    Etag = created.Run.Etag,
                    Journal = { new RunJournalEntry { Sequence = 2, Resumed = new RunResumed { Owner = $"replica-{i}" } } },
                });
                return true;
            }
            catch (RpcException exception) when (exception.StatusCode == StatusCode.Aborted)
            {
                return false;
            }
        }));
        var claimed = await Client.GetRunRecordAsync(new GetRunRecordRequest { RunId = runId });
        var journal = await Client.GetRunJournalAsync(new GetRunJournalRequest { RunId = runId });
        await Client.UpdateRunRecordAsync(new UpdateRunRecordRequest
        {
            Run = new Run { RunId = runId, Status = RunStatus.Completed }, UpdateMask = new FieldMask { Paths = { "status" } }, Etag = claimed.Run.Etag,
            Journal = { new RunJournalEntry { Sequence = 3, Ended = new RunEnded { Status = RunStatus.Completed } } },
        });
        var stillRunning = await Client.ListRunRecordsAsync(new ListRunRecordsRequest { AgentName = agent, Status = RunStatus.Running });

        Assert.Equal([runId], running.Runs.Select(r => r.RunId));
        Assert.Single(claims, won => won);
        Assert.Equal(claimed.Run.Lease.Owner, journal.Entries[1].Resumed.Owner);
        Assert.Equal(2, journal.Entries.Count);
        Assert.Empty(stillRunning.Runs);
    }

    [Fact]
    public async Task ARunWaitingForApproval_IsListedAsWaiting_NotAsRunning_UntilADecisionMakesItRunAgain()
    {
        // The recovery scan lists waiting runs (to end those past their approval timeout) apart from running ones.
        var agent = Id("waiting-agent");
        var runId = Id("waiting");
        var created = await Client.CreateRunRecordAsync(new CreateRunRecordRequest { Run = NewRun(runId, agent), Journal = { Step(1, "pay") } });
        var waiting = await Client.UpdateRunRecordAsync(new UpdateRunRecordRequest
        {
            Run = new Run { RunId = runId, Status = RunStatus.AwaitingApproval }, UpdateMask = new FieldMask { Paths = { "status", "lease" } }, Etag = created.Run.Etag,
            Journal = { new RunJournalEntry { Sequence = 2, ApprovalsRequested = new ApprovalsRequested { Approvals = { new ToolApproval { ToolCall = new ToolCall { Id = "c1", Name = "pay" }, State = ApprovalState.Pending } } } } },
        });
        var listedWaiting = await Client.ListRunRecordsAsync(new ListRunRecordsRequest { AgentName = agent, Status = RunStatus.AwaitingApproval });
        var listedRunning = await Client.ListRunRecordsAsync(new ListRunRecordsRequest { AgentName = agent, Status = RunStatus.Running });
        await Client.UpdateRunRecordAsync(new UpdateRunRecordRequest
        {
            Run = new Run { RunId = runId, Status = RunStatus.Running }, UpdateMask = new FieldMask { Paths = { "status" } }, Etag = waiting.Run.Etag,
            Journal = { new RunJournalEntry { Sequence = 3, ApprovalsDecided = new ApprovalsDecided { Approvals = { new ToolApproval { ToolCall = new ToolCall { Id = "c1", Name = "pay" }, State = ApprovalState.Approved } } } } },
        });
        var afterDecision = await Client.ListRunRecordsAsync(new ListRunRecordsRequest { AgentName = agent, Status = RunStatus.Running });

        Assert.Equal([runId], listedWaiting.Runs.Select(r => r.RunId));
        Assert.Empty(listedRunning.Runs);
        Assert.Equal([runId], afterDecision.Runs.Select(r => r.RunId));
        Assert.Null(waiting.Run.Lease);
    }

    [Fact]
    public async Task Tenants_ShareNoSession_Run_OrJournal_EvenUnderTheSameIds()
    {
        var (session, runId, agent) = (Id("shared-name"), Id("shared-run"), Id("tenant-agent"));
        await Client.AppendMessagesAsync(new AppendMessagesRequest { Tenant = "acme", SessionId = session, AgentName = agent, Store = Store, Messages = { Text("a1", Role.User, "acme's secret") } });
        await Client.AppendMessagesAsync(new AppendMessagesRequest { Tenant = "globex", SessionId = session, AgentName = agent, Store = Store, Messages = { Text("a1", Role.User, "globex's own") } });
        var acmeRun = NewRun(runId, agent);
        acmeRun.Tenant = "acme";
        var created = await Client.CreateRunRecordAsync(new CreateRunRecordRequest { Run = acmeRun, Journal = { Step(1, "acme's input") } });
        var globexRun = NewRun(runId, agent);
        (globexRun.Tenant, globexRun.Input) = ("globex", "another question");
        var globexCreated = await Client.CreateRunRecordAsync(new CreateRunRecordRequest { Run = globexRun, Journal = { Step(1, "globex's input") } });

        var acmeHistory = await Client.GetHistoryAsync(new GetHistoryRequest { Tenant = "acme", SessionId = session, Store = Store });
        var globexHistory = await Client.GetHistoryAsync(new GetHistoryRequest { Tenant = "globex", SessionId = session, Store = Store });
        var defaultHistory = await Client.GetHistoryAsync(new GetHistoryRequest { SessionId = session, Store = Store });
        var initechSessions = await Client.ListSessionsAsync(new ListSessionsRequest { Tenant = "initech", AgentName = agent, Store = Store });
        var acmeSessions = await Client.ListSessionsAsync(new ListSessionsRequest { Tenant = "acme", AgentName = agent, Store = Store });
        var initechDelete = await Client.DeleteSessionAsync(new DeleteSessionRequest { Tenant = "initech", SessionId = session, Store = Store });
        var initechRead = await Assert.ThrowsAsync<RpcException>(() => Client.GetRunRecordAsync(new GetRunRecordRequest { Tenant = "initech", RunId = runId }).ResponseAsync);
        var initechJournal = await Assert.ThrowsAsync<RpcException>(() => Client.GetRunJournalAsync(new GetRunJournalRequest { Tenant = "initech", RunId = runId }).ResponseAsync);
        var initechUpdate = await Assert.ThrowsAsync<RpcException>(() => Client.UpdateRunRecordAsync(new UpdateRunRecordRequest
        {
            Run = new Run { Tenant = "initech", RunId = runId, CancelRequested = true }, UpdateMask = new FieldMask { Paths = { "cancel_requested" } },
        }).ResponseAsync);
        var initechRuns = await Client.ListRunRecordsAsync(new ListRunRecordsRequest { Tenant = "initech", AgentName = agent });
        var acmeRuns = await Client.ListRunRecordsAsync(new ListRunRecordsRequest { Tenant = "acme", AgentName = agent });
        var acmeRunning = await Client.ListRunRecordsAsync(new ListRunRecordsRequest { Tenant = "acme", AgentName = agent, Status = RunStatus.Running });
        var everyTenant = await Client.ListRunRecordsAsync(new ListRunRecordsRequest { AllTenants = true, AgentName = agent, Status = RunStatus.Running });
        var acmeJournal = await Client.GetRunJournalAsync(new GetRunJournalRequest { Tenant = "acme", RunId = runId });
        var badTenant = await Assert.ThrowsAsync<RpcException>(() => Client.GetRunRecordAsync(new GetRunRecordRequest { Tenant = "Acme Corp", RunId = runId }).ResponseAsync);
        var everyTenantFinished = await Assert.ThrowsAsync<RpcException>(() => Client.ListRunRecordsAsync(new ListRunRecordsRequest { AllTenants = true }).ResponseAsync);
        var renamed = await Assert.ThrowsAsync<RpcException>(() => Client.UpdateRunRecordAsync(new UpdateRunRecordRequest
        {
            Run = new Run { Tenant = "initech", RunId = runId, Status = RunStatus.Failed }, Etag = created.Run.Etag,
        }).ResponseAsync);
        var acmeAfter = await Client.GetRunRecordAsync(new GetRunRecordRequest { Tenant = "acme", RunId = runId });

        Assert.Equal("acme's secret", acmeHistory.Messages.Single().Content[0].Text);
        Assert.Equal("globex's own", globexHistory.Messages.Single().Content[0].Text);
        Assert.Empty(defaultHistory.Messages);
        Assert.Empty(initechSessions.Sessions);
        Assert.Equal([session], acmeSessions.Sessions.Select(s => s.SessionId));
        Assert.False(initechDelete.Deleted);
        Assert.Equal(("acme", "globex"), (created.Run.Tenant, globexCreated.Run.Tenant));
        Assert.Equal([StatusCode.NotFound, StatusCode.NotFound, StatusCode.NotFound, StatusCode.NotFound], new[] { initechRead, initechJournal, initechUpdate, renamed }.Select(e => e.StatusCode));
        Assert.Empty(initechRuns.Runs);
        Assert.Equal([("acme", "what is 6*7?")], acmeRuns.Runs.Select(r => (r.Tenant, r.Input)));
        Assert.Equal([runId], acmeRunning.Runs.Select(r => r.RunId));
        Assert.Equal(["acme", "globex"], everyTenant.Runs.Select(r => r.Tenant).Order());
        Assert.Equal("acme's input", acmeJournal.Entries.Single().Began.Input.Content[0].Text);
        Assert.Equal("tenant", RpcDetails.Of<Google.Rpc.BadRequest>(badTenant)[0].FieldViolations[0].Field);
        Assert.Equal("all_tenants", RpcDetails.Of<Google.Rpc.BadRequest>(everyTenantFinished)[0].FieldViolations[0].Field);
        Assert.Equal((RunStatus.Running, false, created.Run.Etag), (acmeAfter.Run.Status, acmeAfter.Run.CancelRequested, acmeAfter.Run.Etag));
    }

    [Fact]
    public async Task Tenants_ShareNoMemories_EvenUnderTheSameNamespaceAndIds()
    {
        var space = Id("user");
        var embedder = new LlmConfig { Provider = LlmProvider.Openai, Model = "text-embedding-3-small" };
        foreach (var (tenant, text) in new[] { ("acme", "acme's launch date is May 4"), ("globex", "globex likes tea") })
        {
            await Client.RememberAsync(new RememberRequest
            {
                Tenant = tenant, Namespace = space, Id = "fact-1", Text = text, Embedding = { 1f, 0f }, EmbeddingModel = embedder.Model, Store = Store,
            });
        }

        _embeddings.Enqueue(new JsonReply(OpenAiWire.Embeddings([1f, 0f])), new JsonReply(OpenAiWire.Embeddings([1f, 0f])), new JsonReply(OpenAiWire.Embeddings([1f, 0f])));
        var acme = await Client.RecallAsync(new RecallRequest { Tenant = "acme", Namespace = space, Query = "launch", Embedder = embedder, Store = Store });
        var globex = await Client.RecallAsync(new RecallRequest { Tenant = "globex", Namespace = space, Query = "launch", Embedder = embedder, Store = Store });
        var initech = await Client.RecallAsync(new RecallRequest { Tenant = "initech", Namespace = space, Query = "launch", Embedder = embedder, Store = Store });

        Assert.Equal("acme's launch date is May 4", Assert.Single(acme.Memories).Text);
        Assert.Equal("globex likes tea", Assert.Single(globex.Memories).Text);
        Assert.Empty(initech.Memories);
    }

    [Fact]
    public async Task AuditEntries_AppendedAtOnceByManyWriters_FormOneUnbrokenChain()
    {
        var tenant = $"t{Id("audit").Replace("-", "", StringComparison.Ordinal)}";
        AppendAuditEntriesRequest Batch(int writer) => new()
        {
            Entries = { Enumerable.Range(0, 5).Select(i => new AuditEntry { Id = $"{tenant}-{writer}-{i}", Tenant = tenant, Principal = $"writer-{writer}", Action = "Execute", Outcome = "OK", Detail = $"call {i}" }) },
        };
        var appends = Enumerable.Range(0, 8).Select(writer => Client.AppendAuditEntriesAsync(Batch(writer)).ResponseAsync).ToList();

        if (Store == MemoryType.Redis)
        {
            var refused = await Assert.ThrowsAsync<RpcException>(() => appends[0]);
            Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
            Assert.Contains("audit log", refused.Status.Detail, StringComparison.Ordinal);
            await Task.WhenAll(appends.Skip(1).Select(a => a.ContinueWith(_ => { }, TaskScheduler.Default)));
            return;
        }

        var stored = await Task.WhenAll(appends);
        var retried = await Client.AppendAuditEntriesAsync(Batch(3)); // a retry whose first answer was lost
        var chain = new List<AuditEntry>();
        ListAuditEntriesResponse page;
        do
        {
            page = await Client.ListAuditEntriesAsync(new ListAuditEntriesRequest { AfterSequence = chain.Count > 0 ? chain[^1].Sequence : 0, PageSize = 7 });
            chain.AddRange(page.Entries);
        }
        while (page.More);
        var mine = await Client.ListAuditEntriesAsync(new ListAuditEntriesRequest { Tenant = tenant, PageSize = 1000 });

        Assert.Empty(Namra.Contracts.AuditChain.Problems(chain));
        Assert.Equal(40, mine.Entries.Count);
        Assert.Empty(retried.Entries);
        Assert.All(stored, response => Assert.Equal(Enumerable.Range(0, 4).Select(i => response.Entries[0].Sequence + i + 1), response.Entries.Skip(1).Select(e => e.Sequence)));
        Assert.Equal(stored.SelectMany(r => r.Entries).Select(e => e.Hash).Order(), mine.Entries.Select(e => e.Hash).Order());
    }

    protected Task<AppendMessagesResponse> Append(string session, params Message[] messages) =>
        Client.AppendMessagesAsync(new AppendMessagesRequest { SessionId = session, AgentName = "tester", Store = Store, Messages = { messages } }).ResponseAsync;

    protected static Message Text(string id, Role role, string text) => new() { Id = id, Role = role, Content = { new ContentBlock { Text = text } } };

    private static RunJournalEntry Step(long sequence, string input) =>
        new() { Sequence = sequence, Began = new RunBegan { Agent = new AgentDefinition { Name = "a" }, Input = Text("in", Role.User, input) } };

    private static RunJournalEntry Turn(long sequence, string text) =>
        new() { Sequence = sequence, ModelTurn = new ModelTurn { Iteration = 1, Message = Text($"m{sequence}", Role.Assistant, text) } };

    private static Run NewRun(string id, string agent, bool createdLater = false, RunLease? lease = null) => new()
    {
        Lease = lease,
        RunId = id,
        Agent = new AgentRef { Name = agent, Version = "1.0.0" },
        Status = RunStatus.Running,
        Input = "what is 6*7?",
        CreateTime = Timestamp.FromDateTimeOffset(new DateTimeOffset(2026, 11, 26, 12, 0, createdLater ? 1 : 0, TimeSpan.Zero)),
    };
}
