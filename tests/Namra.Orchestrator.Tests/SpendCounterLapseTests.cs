using Microsoft.Extensions.Time.Testing;
using Namra.Testing.Containers;
using StackExchange.Redis;
using static Namra.Orchestrator.Access.SpendCounters;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// A tenant's reservation that is never settled, as a replica killed during a model call leaves it in the counters the
/// replicas share (real Redis): it holds the tenant back only until it lapses after its call's deadline, then counts as
/// spent at its worst case, and a settlement that arrives later corrects that to what was spent.
/// </summary>
public sealed class SpendCounterLapseTests
{
    private const string Tenant = "acme";
    private static readonly DateTimeOffset Start = new(2026, 11, 28, 10, 0, 0, TimeSpan.Zero);
    private static readonly Period Day = new("day", "day:2026-11-28", Start.Date, Start.Date.AddDays(1), MaxTokens: 1_000, MaxNanoUsd: 0);
    private static readonly Period Month = new("month", "month:2026-11", new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero),
        new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero), MaxTokens: 0, MaxNanoUsd: 5_000_000_000);

    [Theory]
    [InlineData(10_000)]
    [InlineData(0)] // a quota in tokens only: no dollars reserved or spent
    public async Task AReservationNeverSettled_HoldsTheTenantBackUntilItLapses_ThenCountsAsSpent_AndALateSettlementCorrectsIt(long nanoPerToken)
    {
        Amount Of(long tokens) => new(tokens, tokens * nanoPerToken);
        await using var redis = await LocalContainers.StartRedisAsync();
        using var connection = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        var time = new FakeTimeProvider(Start);
        var counters = new Shared(connection, time);
        Period[] periods = [Day, Month];
        await counters.SeedAsync(Tenant, Day, Of(0));
        await counters.SeedAsync(Tenant, Month, Of(0));

        // The replica that reserved this was killed during its call: nobody settles it.
        var lost = new Hold("lost-call", Start.AddMinutes(5));
        Assert.Equal(-1, await counters.ReserveAsync(Tenant, periods, Of(800), lost));
        var other = new Hold("other-call", Start.AddMinutes(5));
        var refusedWhileHeld = await counters.ReserveAsync(Tenant, periods, Of(300), other);
        var heldBack = await counters.ReadAsync(Tenant, Day);

        time.Advance(TimeSpan.FromMinutes(6)); // past the lost call's deadline and grace
        var lapsed = await counters.ReadAsync(Tenant, Day);
        var month = await counters.ReadAsync(Tenant, Month);
        var fitsAfterLapse = await counters.ReserveAsync(Tenant, periods, Of(150), new Hold("small-call", Start.AddMinutes(20)));

        // The lost call's replica was only paused: its settlement, late, replaces the worst case with what was spent.
        await counters.SettleAsync(Tenant, periods, Of(800), Of(120), lost);
        var corrected = await counters.ReadAsync(Tenant, Day);
        // A call still held settles as before.
        await counters.SettleAsync(Tenant, periods, Of(150), Of(100), new Hold("small-call", Start.AddMinutes(20)));
        var settled = await counters.ReadAsync(Tenant, Day);

        Assert.Equal(0, refusedWhileHeld); // the day's 1,000 tokens: 800 held, 300 more do not fit
        Assert.Equal(new Standing(Of(0), Of(800)), heldBack);
        Assert.Equal(new Standing(Of(800), Of(0)), lapsed); // counted as spent at its worst case
        Assert.Equal(new Standing(Of(800), Of(0)), month);
        Assert.Equal(-1, fitsAfterLapse); // 800 spent + 150 within 1,000: the tenant is no longer held back by a call that will never settle
        Assert.Equal(new Standing(Of(120), Of(150)), corrected);
        Assert.Equal(new Standing(Of(220), Of(0)), settled);
    }
}
