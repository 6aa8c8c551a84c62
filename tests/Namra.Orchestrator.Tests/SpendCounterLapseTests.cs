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

    [Fact]
    public async Task ThousandsOfReservationsInFlight_AreNotScannedOnEachCall_AndOnesHeldWithoutTheSortedSetStillLapse()
    {
        await using var redis = await LocalContainers.StartRedisAsync();
        using var connection = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true");
        var database = connection.GetDatabase();
        var server = connection.GetServer(connection.GetEndPoints()[0]);
        var time = new FakeTimeProvider(Start);
        var counters = new Shared(connection, time);
        Period[] periods = [Day with { MaxTokens = 0 }, Month];
        await counters.SeedAsync(Tenant, periods[0], new Amount(0, 0));
        await counters.SeedAsync(Tenant, Month, new Amount(0, 0));
        // A reservation held by a replica that kept only the hash of reservations (as versions before the sorted set did).
        var day = $"namra:spend:{Tenant}:{Day.Key}";
        await database.HashSetAsync($"{day}:held", "old-call", $"70 0 {Start.AddMinutes(5).ToUnixTimeMilliseconds()}");
        await database.HashIncrementAsync(day, "rtokens", 70);
        await Task.WhenAll(Enumerable.Range(0, 2_000).Select(i => counters.ReserveAsync(Tenant, periods, new Amount(1, 0), new Hold($"call-{i}", Start.AddHours(1)))));
        var scansBefore = Scans(server);

        for (var i = 0; i < 50; i++)
        {
            await counters.ReadAsync(Tenant, periods[0]);
        }

        var scans = Scans(server) - scansBefore;
        time.Advance(TimeSpan.FromMinutes(6));
        var oldLapsed = await counters.ReadAsync(Tenant, periods[0]);
        await Task.WhenAll(Enumerable.Range(0, 2_000).Select(i => counters.SettleAsync(Tenant, periods, new Amount(1, 0), new Amount(1, 0), new Hold($"call-{i}", Start.AddHours(1)))));
        var settled = await counters.ReadAsync(Tenant, periods[0]);

        Assert.Equal(0, scans); // the hash was indexed once, when the first call met it
        Assert.Equal(new Standing(new Amount(70, 0), new Amount(2_000, 0)), oldLapsed);
        Assert.Equal(new Standing(new Amount(2_070, 0), new Amount(0, 0)), settled);
        Assert.Equal((0L, 0L), (await database.HashLengthAsync($"{day}:held"), await database.SortedSetLengthAsync($"{day}:due")));
    }

    // How many times Redis has read a whole hash (HGETALL), scripts' calls included.
    private static long Scans(IServer server)
    {
        var stats = server.Info("commandstats").SelectMany(group => group).FirstOrDefault(pair => pair.Key == "cmdstat_hgetall").Value;
        return stats is null ? 0 : long.Parse(stats.Split(',')[0].Split('=')[1], System.Globalization.CultureInfo.InvariantCulture);
    }
}
