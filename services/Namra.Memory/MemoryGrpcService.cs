using System.Diagnostics;
using System.Text;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.VectorData;
using Namra.Contracts;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Memory.Options;
using Namra.Memory.Stores;

namespace Namra.Memory;

/// <summary>
/// The <c>namra.v1.MemoryService</c> endpoint: checks requests, picks the store, windows history by count and
/// token budget, keeps run records consistent with etags, and keeps and searches memories through their vector
/// collections (<see cref="Semantic.IMemoryCollections"/>).
/// </summary>
internal sealed class MemoryGrpcService(
    MemoryStores stores,
    Embedder embedder,
    Semantic.IMemoryCollections collections,
    IOptions<MemoryOptions> options,
    TimeProvider timeProvider) : MemoryService.MemoryServiceBase
{
    private const int MaxIdLength = 256;
    private const int DefaultPageSize = 50;
    private const int MaxPageSize = 1000;
    private const int MaxAuditPage = 1000;
    private const int MaxAuditEntryBytes = 16 * 1024;

    public override Task<AppendMessagesResponse> AppendMessages(AppendMessagesRequest request, ServerCallContext context) =>
        Traced("append_messages", request.Store, async store =>
        {
            CheckId(request.SessionId, "session_id");
            if (request.Messages.Count == 0 || request.Messages.Count > options.Value.MaxMessagesPerAppend)
            {
                throw new InvalidArgumentException("messages", $"Send 1 to {options.Value.MaxMessagesPerAppend:N0} messages.");
            }

            for (var i = 0; i < request.Messages.Count; i++)
            {
                var message = request.Messages[i];
                CheckId(message.Id, $"messages[{i}].id");
                if (message.Role == Role.Unspecified)
                {
                    throw new InvalidArgumentException($"messages[{i}].role", "Give every message its role.");
                }

                if (message.CalculateSize() > options.Value.MaxMessageBytes)
                {
                    throw new InvalidArgumentException($"messages[{i}]", $"The message is {message.CalculateSize():N0} bytes; the limit is {options.Value.MaxMessageBytes:N0}.");
                }

                message.CreateTime ??= Timestamp.FromDateTimeOffset(timeProvider.GetUtcNow());
            }

            var retention = request.Retention ?? new SessionRetention();
            if (retention.MaxMessages < 0 || retention.Ttl is { Seconds: < 0 })
            {
                throw new InvalidArgumentException("retention", "max_messages and ttl cannot be negative.");
            }

            var tenant = TenantOf(request.Tenant);
            Activity.Current?.SetTag("namra.session.id", request.SessionId);
            var outcome = await MemoryStores.Guard(store, () => store.AppendAsync(
                tenant, request.SessionId, request.AgentName, request.Messages,
                new Retention(retention.MaxMessages, retention.Ttl is { } ttl && ttl.ToTimeSpan() > TimeSpan.Zero ? ttl.ToTimeSpan() : null),
                context.CancellationToken)).ConfigureAwait(false);
            return new AppendMessagesResponse { Appended = outcome.Appended, Duplicates = outcome.Duplicates, MessageCount = outcome.MessageCount };
        }, context);

    public override Task<GetHistoryResponse> GetHistory(GetHistoryRequest request, ServerCallContext context) =>
        Traced("get_history", request.Store, async store =>
        {
            CheckId(request.SessionId, "session_id");
            if (request.MaxMessages < 0 || request.MaxTokens < 0)
            {
                throw new InvalidArgumentException(request.MaxMessages < 0 ? "max_messages" : "max_tokens", "Cannot be negative.");
            }

            var tenant = TenantOf(request.Tenant);
            Activity.Current?.SetTag("namra.session.id", request.SessionId);
            var limit = request.MaxMessages > 0 ? Math.Min(request.MaxMessages, options.Value.MaxHistoryMessages) : options.Value.MaxHistoryMessages;
            var history = await MemoryStores.Guard(store, () => store.GetHistoryAsync(tenant, request.SessionId, limit, context.CancellationToken)).ConfigureAwait(false);
            var response = new GetHistoryResponse();
            if (history is null)
            {
                return response;
            }

            var window = HistoryWindow.Fit(history.Messages, request.MaxTokens);
            response.Messages.AddRange(window);
            response.TotalMessages = history.Total;
            response.Truncated = window.Count < history.Total;
            return response;
        }, context);

    public override Task<ListSessionsResponse> ListSessions(ListSessionsRequest request, ServerCallContext context) =>
        Traced("list_sessions", request.Store, async store =>
        {
            var tenant = TenantOf(request.Tenant);
            var size = PageSize(request.PageSize);
            var after = request.PageToken.Length > 0 ? PageToken.Decode(request.PageToken) : "";
            var sessions = await MemoryStores.Guard(store, () => store.ListSessionsAsync(tenant, request.AgentName, size + 1, after, context.CancellationToken)).ConfigureAwait(false);
            var response = new ListSessionsResponse();
            response.Sessions.AddRange(sessions.Take(size));
            if (sessions.Count > size)
            {
                response.NextPageToken = PageToken.Encode(sessions[size - 1].SessionId);
            }

            return response;
        }, context);

    public override Task<DeleteSessionResponse> DeleteSession(DeleteSessionRequest request, ServerCallContext context) =>
        Traced("delete_session", request.Store, async store =>
        {
            CheckId(request.SessionId, "session_id");
            var tenant = TenantOf(request.Tenant);
            var deleted = await MemoryStores.Guard(store, () => store.DeleteSessionAsync(tenant, request.SessionId, context.CancellationToken)).ConfigureAwait(false);
            return new DeleteSessionResponse { Deleted = deleted };
        }, context);

    public override Task<CreateRunRecordResponse> CreateRunRecord(CreateRunRecordRequest request, ServerCallContext context) =>
        Traced("create_run", MemoryType.Unspecified, async store =>
        {
            var run = request.Run ?? throw new InvalidArgumentException("run", "Send the run record.");
            if (run.RunId.Length == 0)
            {
                run.RunId = Guid.CreateVersion7().ToString("N");
            }

            CheckId(run.RunId, "run.run_id");
            run.Tenant = TenantOf(run.Tenant, "run.tenant");
            var now = Timestamp.FromDateTimeOffset(timeProvider.GetUtcNow());
            var createTimeSent = run.CreateTime is not null;
            run.CreateTime ??= now;
            run.UpdateTime = now;
            run.Etag = "";
            CheckJournal(request.Journal, 0);
            run.JournalLength = request.Journal.Count;
            if (!await MemoryStores.Guard(store, () => store.CreateRunAsync(run, request.Journal, context.CancellationToken)).ConfigureAwait(false))
            {
                // A repeat of the create that made it (a retry whose first answer was lost) gets that record back.
                var stored = await MemoryStores.Guard(store, () => store.GetRunAsync(run.Tenant, run.RunId, context.CancellationToken)).ConfigureAwait(false);
                if (stored is not { Version: 1 } || !SameRecord(Loaded(stored, run.Tenant), run, createTimeSent))
                {
                    throw new AlreadyExistsException("namra.v1.Run", run.RunId, $"A run record '{run.RunId}' exists already and is not this one: its content differs, or it was updated since.");
                }

                run = stored.Run;
            }

            run.Etag = Etag(1);
            return new CreateRunRecordResponse { Run = Answer(run, request.View) };
        }, context);

    public override Task<UpdateRunRecordResponse> UpdateRunRecord(UpdateRunRecordRequest request, ServerCallContext context) =>
        Traced("update_run", MemoryType.Unspecified, async store =>
        {
            var update = request.Run ?? throw new InvalidArgumentException("run", "Send the run record.");
            CheckId(update.RunId, "run.run_id");
            var tenant = TenantOf(update.Tenant, "run.tenant");
            var mask = request.UpdateMask;
            if (mask is { Paths.Count: > 0 } && !FieldMask.IsValid<Run>(mask))
            {
                throw new InvalidArgumentException("update_mask", $"Not fields of a run: {mask}.");
            }

            if (request.Journal.Count > 0 && request.Etag.Length == 0)
            {
                throw new InvalidArgumentException("etag", "Journal steps are appended only to the record they follow: send its etag.");
            }

            var masked = mask is { Paths.Count: > 0 };
            for (var attempt = 0; ; attempt++)
            {
                // A masked update merges into the stored record; a whole one replaces it, keeping only its creation time.
                VersionedRun? stored = null;
                RunHead? head;
                if (masked)
                {
                    stored = await MemoryStores.Guard(store, () => store.GetRunAsync(tenant, update.RunId, context.CancellationToken)).ConfigureAwait(false);
                    head = stored is null ? null : RunHead.Of(stored);
                }
                else
                {
                    head = await MemoryStores.Guard(store, () => store.GetRunHeadAsync(tenant, update.RunId, context.CancellationToken)).ConfigureAwait(false);
                }

                if (head is null)
                {
                    throw new NotFoundException("namra.v1.Run", update.RunId, $"No run record '{update.RunId}'.");
                }
                if (request.Etag.Length > 0 && request.Etag != Etag(head.Version))
                {
                    throw new NamraException(StatusCode.Aborted, $"The run record changed since it was read (etag {request.Etag}, now {Etag(head.Version)}); read it again.");
                }

                // The stored record the store handed out is a copy of its own, and the request is this call's: either
                // can become the new record without another copy (the store copies what it keeps).
                Run merged;
                if (stored is not null)
                {
                    merged = Loaded(stored, tenant);
                    Merge(mask!, update, merged);
                }
                else
                {
                    merged = update;
                    merged.CreateTime = head.CreateTime;
                }

                merged.Tenant = tenant;
                CheckJournal(request.Journal, head.JournalLength);
                merged.JournalLength = head.JournalLength + request.Journal.Count;
                merged.Etag = "";
                merged.UpdateTime = Timestamp.FromDateTimeOffset(timeProvider.GetUtcNow());
                if (await MemoryStores.Guard(store, () => store.ReplaceRunAsync(merged, head.Version, request.Journal, context.CancellationToken)).ConfigureAwait(false))
                {
                    merged.Etag = Etag(head.Version + 1);
                    return new UpdateRunRecordResponse { Run = Answer(merged, request.View) };
                }

                if (request.Etag.Length > 0 || attempt == 16)
                {
                    throw new NamraException(StatusCode.Aborted, "The run record changed while it was being updated; read it again.");
                }
            }
        }, context);

    public override Task<GetRunJournalResponse> GetRunJournal(GetRunJournalRequest request, ServerCallContext context) =>
        Traced("get_run_journal", MemoryType.Unspecified, async store =>
        {
            CheckId(request.RunId, "run_id");
            var tenant = TenantOf(request.Tenant);
            _ = await MemoryStores.Guard(store, () => store.GetRunHeadAsync(tenant, request.RunId, context.CancellationToken)).ConfigureAwait(false)
                ?? throw new NotFoundException("namra.v1.Run", request.RunId, $"No run record '{request.RunId}'.");
            if (request.PageSize < 0 || request.PageSize > 1000)
            {
                throw new InvalidArgumentException("page_size", $"Between 1 and 1000 steps per page, or 0 for every step; got {request.PageSize}.");
            }

            long after = 0;
            if (request.PageToken.Length > 0 && !long.TryParse(PageToken.Decode(request.PageToken), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out after))
            {
                throw new InvalidArgumentException("page_token", "Not a page token of this journal.");
            }

            var paged = request.PageSize > 0;
            var entries = await MemoryStores.Guard(store, () => store.GetJournalAsync(tenant, request.RunId, after, paged ? request.PageSize : int.MaxValue, context.CancellationToken))
                .ConfigureAwait(false);
            var response = new GetRunJournalResponse();
            if (!paged)
            {
                response.Entries.AddRange(entries);
                return response;
            }

            Fill(response.Entries, entries);

            // A full page may be followed by more; the last page is the one that came back short.
            if (response.Entries.Count < entries.Count || entries.Count == request.PageSize)
            {
                response.NextPageToken = PageToken.Encode(response.Entries[^1].Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            return response;
        }, context);

    // A page of a journal or of run records stays within the largest message every gRPC client accepts by default.
    private const int PageBytes = 4 * 1024 * 1024 - 64 * 1024;

    // Adds items to a page until the next would take it past PageBytes; the first always goes in.
    private static void Fill<T>(Google.Protobuf.Collections.RepeatedField<T> page, IEnumerable<T> items)
        where T : Google.Protobuf.IMessage
    {
        var bytes = 0L;
        foreach (var item in items)
        {
            bytes += item.CalculateSize() + 8; // the field's tag and length
            if (page.Count > 0 && bytes > PageBytes)
            {
                return;
            }

            page.Add(item);
        }
    }

    // Steps are numbered on from the journal's length, without gaps, and each says what happened.
    private static void CheckJournal(Google.Protobuf.Collections.RepeatedField<RunJournalEntry> journal, long length)
    {
        for (var i = 0; i < journal.Count; i++)
        {
            if (journal[i].Sequence != length + i + 1)
            {
                throw new InvalidArgumentException($"journal[{i}].sequence", $"Expected {length + i + 1} (the journal holds {length} steps); got {journal[i].Sequence}.");
            }

            if (journal[i].StepCase == RunJournalEntry.StepOneofCase.None)
            {
                throw new InvalidArgumentException($"journal[{i}].step", "Say what happened.");
            }
        }
    }

    public override Task<GetRunRecordResponse> GetRunRecord(GetRunRecordRequest request, ServerCallContext context) =>
        Traced("get_run", MemoryType.Unspecified, async store =>
        {
            CheckId(request.RunId, "run_id");
            var tenant = TenantOf(request.Tenant);
            var stored = await MemoryStores.Guard(store, () => store.GetRunAsync(tenant, request.RunId, context.CancellationToken)).ConfigureAwait(false)
                ?? throw new NotFoundException("namra.v1.Run", request.RunId, $"No run record '{request.RunId}'.");
            Loaded(stored, tenant);
            stored.Run.Etag = Etag(stored.Version);
            return new GetRunRecordResponse { Run = stored.Run };
        }, context);

    public override Task<ListRunRecordsResponse> ListRunRecords(ListRunRecordsRequest request, ServerCallContext context) =>
        Traced("list_runs", MemoryType.Unspecified, async store =>
        {
            var size = PageSize(request.PageSize);
            RunPosition? after = null;
            if (request.PageToken.Length > 0)
            {
                var token = PageToken.Decode(request.PageToken);
                var separator = token.IndexOf(':', StringComparison.Ordinal);
                after = separator > 0 && long.TryParse(token.AsSpan(0, separator), System.Globalization.CultureInfo.InvariantCulture, out var millis)
                    ? new RunPosition(millis, token[(separator + 1)..])
                    : throw new InvalidArgumentException("page_token", "Not a page token of this list.");
            }

            if (request.AllTenants && (request.Tenant.Length > 0 || request.Status is not (RunStatus.Running or RunStatus.AwaitingApproval)))
            {
                throw new InvalidArgumentException("all_tenants", "Lists runs in progress (status RUNNING or AWAITING_APPROVAL) of every tenant; send no tenant with it.");
            }

            var filter = new RunFilter(request.AllTenants ? null : TenantOf(request.Tenant), request.AgentName, request.SessionId, request.Status);
            var runs = await MemoryStores.Guard(store, () => store.ListRunsAsync(filter, size + 1, after, context.CancellationToken)).ConfigureAwait(false);
            var response = new ListRunRecordsResponse();
            // A record holds its input and answer (a megabyte each, at most).
            Fill(response.Runs, runs.Take(size).Select(stored =>
            {
                Loaded(stored, Tenants.OrDefault(stored.Run.Tenant));
                stored.Run.Etag = Etag(stored.Version);
                return stored.Run;
            }));

            if (runs.Count > response.Runs.Count)
            {
                var last = response.Runs[^1];
                response.NextPageToken = PageToken.Encode(FormattableString.Invariant($"{RunPosition.Millis(last)}:{last.RunId}"));
            }

            return response;
        }, context);

    public override Task<RememberResponse> Remember(RememberRequest request, ServerCallContext context) =>
        Traced("remember", request.Store, async store =>
        {
            CheckId(request.Namespace, "namespace");
            var tenant = TenantOf(request.Tenant);
            if (request.Text.Length is 0 or > 100_000)
            {
                throw new InvalidArgumentException("text", "Send 1 to 100,000 characters.");
            }

            var id = request.Id.Length > 0 ? request.Id : Guid.CreateVersion7().ToString("N");
            CheckId(id, "id");
            var (model, vector, embedded) = request.Embedding.Count > 0
                ? (request.EmbeddingModel, request.Embedding.ToArray(), null)
                : await embedder.EmbedAsync(request.Embedder, request.EmbeddingModel, request.Text, request.Budget, context.CancellationToken).ConfigureAwait(false);
            var collection = collections.For(store, tenant, request.Namespace);
            await AfterEmbedding(embedded, () => MemoryStores.Guard(store, () => collection.UpsertAsync(
                new Semantic.MemoryRecord { Id = id, Text = request.Text, Metadata = request.Metadata.ToDictionary(), Model = model, Embedding = vector },
                context.CancellationToken))).ConfigureAwait(false);
            return new RememberResponse { Id = id, Attempts = { embedded?.Attempts ?? [] }, Reservation = embedded?.Reservation };
        }, context);

    // The embedding was paid for: a store that fails after it keeps its provider requests in the error's details, for
    // the caller's ledger.
    private static async Task<T> AfterEmbedding<T>(EmbedResponse? embedded, Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (NamraException exception) when (embedded is { Attempts.Count: > 0 })
        {
            throw new NamraException(exception.StatusCode, exception.Message, [.. exception.Details, new ProviderAttempts { Attempts = { embedded.Attempts } }], exception);
        }
    }

    private static async Task AfterEmbedding(EmbedResponse? embedded, Func<Task> call) => await AfterEmbedding(embedded, async () =>
    {
        await call().ConfigureAwait(false);
        return true;
    }).ConfigureAwait(false);

    public override Task<RecallResponse> Recall(RecallRequest request, ServerCallContext context) =>
        Traced("recall", request.Store, async store =>
        {
            CheckId(request.Namespace, "namespace");
            var tenant = TenantOf(request.Tenant);
            if (request.Query.Length == 0)
            {
                throw new InvalidArgumentException("query", "Send the text to search for.");
            }

            var topK = request.TopK == 0 ? 5 : request.TopK;
            if (topK is < 1 or > 100)
            {
                throw new InvalidArgumentException("top_k", "Between 1 and 100.");
            }

            var (model, query, embedded) = await embedder.EmbedAsync(request.Embedder, request.EmbeddingModel, request.Query, request.Budget, context.CancellationToken).ConfigureAwait(false);
            // Memories of the query's embedding model only, holding every label of the filter, at least min_score alike.
            var collection = collections.For(store, tenant, request.Namespace);
            var labels = request.Filter.ToDictionary();
            var search = new VectorSearchOptions<Semantic.MemoryRecord>
            {
                Filter = r => r.Model == model && labels.All(l => r.Metadata.ContainsKey(l.Key) && r.Metadata[l.Key] == l.Value),
                ScoreThreshold = request.MinScore,
            };
            var found = await AfterEmbedding(embedded, () => MemoryStores.Guard(store, async () =>
            {
                var results = new List<VectorSearchResult<Semantic.MemoryRecord>>(topK);
                await foreach (var result in collection.SearchAsync<ReadOnlyMemory<float>>(query, topK, search, context.CancellationToken).ConfigureAwait(false))
                {
                    results.Add(result);
                }

                return results;
            })).ConfigureAwait(false);
            var response = new RecallResponse { Attempts = { embedded.Attempts }, Reservation = embedded.Reservation };
            foreach (var result in found)
            {
                response.Memories.Add(new RecalledMemory { Id = result.Record.Id, Text = result.Record.Text, Metadata = { result.Record.Metadata }, Score = result.Score ?? 0 });
            }

            return response;
        }, context);

    public override Task<AppendAuditEntriesResponse> AppendAuditEntries(AppendAuditEntriesRequest request, ServerCallContext context) =>
        Traced("append_audit", MemoryType.Unspecified, async store =>
        {
            Audited(store);
            if (request.Entries.Count is 0 or > MaxAuditPage)
            {
                throw new InvalidArgumentException("entries", $"Send 1 to {MaxAuditPage:N0} entries.");
            }

            for (var i = 0; i < request.Entries.Count; i++)
            {
                var entry = request.Entries[i];
                entry.Tenant = TenantOf(entry.Tenant, $"entries[{i}].tenant");
                CheckId(entry.Id, $"entries[{i}].id");
                if (entry.Action.Length == 0 || entry.CalculateSize() > MaxAuditEntryBytes)
                {
                    throw new InvalidArgumentException($"entries[{i}]", $"Name the action; an entry is at most {MaxAuditEntryBytes:N0} bytes.");
                }

                entry.Time ??= Timestamp.FromDateTimeOffset(timeProvider.GetUtcNow());
            }

            var stored = await MemoryStores.Guard(store, () => store.AppendAuditAsync(request.Entries, context.CancellationToken)).ConfigureAwait(false);
            return new AppendAuditEntriesResponse { Entries = { stored } };
        }, context);

    public override Task<ListAuditEntriesResponse> ListAuditEntries(ListAuditEntriesRequest request, ServerCallContext context) =>
        Traced("list_audit", MemoryType.Unspecified, async store =>
        {
            Audited(store);
            if (request.AfterSequence < 0)
            {
                throw new InvalidArgumentException("after_sequence", "Cannot be negative.");
            }

            var size = PageSize(request.PageSize);
            var tenant = request.Tenant.Length > 0 ? TenantOf(request.Tenant) : null;
            var entries = await MemoryStores.Guard(store, () => store.ListAuditAsync(tenant, request.AfterSequence, size + 1, context.CancellationToken)).ConfigureAwait(false);
            return new ListAuditEntriesResponse { Entries = { entries.Take(size) }, More = entries.Count > size };
        }, context);

    private static void Audited(IMemoryStore store)
    {
        if (!store.KeepsAudit)
        {
            throw new NamraException(StatusCode.FailedPrecondition,
                $"The audit log is kept by the memory service's default store, and {MemoryOptions.Name(store.Type)} keeps none: make sqlite or postgres the default (Namra:Memory:DefaultStore).");
        }
    }

    private async Task<T> Traced<T>(string operation, MemoryType type, Func<IMemoryStore, Task<T>> call, ServerCallContext context)
    {
        using var activity = MemoryTelemetry.ActivitySource.StartActivity($"memory {operation}");
        activity?.SetTag("db.operation.name", operation);
        var started = timeProvider.GetTimestamp();
        var storeName = MemoryOptions.Name(type == MemoryType.Unspecified ? stores.Default : type);
        activity?.SetTag("namra.memory.store", storeName);
        var outcome = "ok";
        try
        {
            var store = await stores.GetAsync(type, context.CancellationToken).ConfigureAwait(false);
            return await call(store).ConfigureAwait(false);
        }
        catch (NamraException exception)
        {
            outcome = exception.StatusCode.ToString().ToLowerInvariant();
            activity?.SetStatus(ActivityStatusCode.Error, exception.Message);
            throw;
        }
        catch (Exception exception)
        {
            outcome = exception is OperationCanceledException ? "cancelled" : "error";
            activity?.SetStatus(ActivityStatusCode.Error, exception.GetType().Name);
            throw;
        }
        finally
        {
            MemoryTelemetry.Operations.Add(1, operation, storeName, outcome);
            MemoryTelemetry.Duration.Record(timeProvider.GetElapsedTime(started).TotalSeconds, operation, storeName);
        }
    }

    // FieldMask.Merge cannot copy map fields (it treats them as lists), so a map named by the mask is replaced here.
    private static void Merge(FieldMask mask, Run source, Run destination)
    {
        var maps = mask.Paths.Select(path => Run.Descriptor.FindFieldByName(path)).Where(field => field is { IsMap: true }).ToList();
        var rest = new FieldMask { Paths = { mask.Paths.Where(path => maps.All(map => map!.Name != path)) } };
        if (rest.Paths.Count > 0)
        {
            rest.Merge(source, destination, new FieldMask.MergeOptions { ReplaceMessageFields = true, ReplaceRepeatedFields = true });
        }

        foreach (var map in maps)
        {
            var target = (System.Collections.IDictionary)map!.Accessor.GetValue(destination);
            target.Clear();
            foreach (System.Collections.DictionaryEntry entry in (System.Collections.IDictionary)map.Accessor.GetValue(source))
            {
                target[entry.Key] = entry.Value;
            }
        }
    }

    private static void CheckId(string value, string field)
    {
        if (value.Length == 0)
        {
            throw new InvalidArgumentException(field, "Required.");
        }

        if (value.Length > MaxIdLength || value.Any(char.IsControl))
        {
            throw new InvalidArgumentException(field, $"At most {MaxIdLength} characters, none of them control characters.");
        }
    }

    private static string TenantOf(string tenant, string field = "tenant") =>
        Tenants.OrDefault(tenant) is var name && Tenants.IsValidName(name)
            ? name
            : throw new InvalidArgumentException(field, $"Not a tenant's name: {Tenants.NameRule}.");

    // Records stored before tenants name none in their body: they are the default tenant's (the one they were read from).
    private static Run Loaded(VersionedRun stored, string tenant)
    {
        stored.Run.Tenant = tenant;
        return stored.Run;
    }

    private static int PageSize(int requested) => requested switch
    {
        < 0 => throw new InvalidArgumentException("page_size", "Cannot be negative."),
        0 => DefaultPageSize,
        _ => Math.Min(requested, MaxPageSize),
    };

    // The same record but for what the service fills in itself: the update time, the etag, and the create time when
    // the caller sent none.
    private static bool SameRecord(Run stored, Run created, bool compareCreateTime)
    {
        var (a, b) = (stored.Clone(), created.Clone());
        a.UpdateTime = b.UpdateTime = null;
        a.Etag = b.Etag = "";
        if (!compareCreateTime)
        {
            a.CreateTime = b.CreateTime = null;
        }

        return a.Equals(b);
    }

    // The stored record, or as much of it as the writer asked for.
    private static Run Answer(Run stored, RunRecordView view) => view == RunRecordView.Version
        ? new Run { RunId = stored.RunId, Tenant = stored.Tenant, Etag = stored.Etag, JournalLength = stored.JournalLength }
        : stored;

    private static string Etag(long version) => $"\"{version.ToString(System.Globalization.CultureInfo.InvariantCulture)}\"";

    private static class PageToken
    {
        public static string Encode(string position) => Convert.ToBase64String(Encoding.UTF8.GetBytes(position)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

        public static string Decode(string token)
        {
            try
            {
                var base64 = token.Replace('-', '+').Replace('_', '/');
                return Encoding.UTF8.GetString(Convert.FromBase64String(base64.PadRight(base64.Length + ((4 - (base64.Length % 4)) % 4), '=')));
            }
            catch (FormatException)
            {
                throw new InvalidArgumentException("page_token", "Not a page token of this list.");
            }
        }
    }
}
