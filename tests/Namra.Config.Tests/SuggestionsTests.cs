using Namra.Config.Validation;

namespace Namra.Config.Tests;

public sealed class SuggestionsTests
{
    [Theory]
    [InlineData("temprature", "temperature")]
    [InlineData("max_token", "max_tokens")]
    [InlineData("MODEL", "model")]
    [InlineData("porvider", "provider")]
    [InlineData("system", null)]
    [InlineData("xyz", null)]
    public void Closest_SuggestsOnlyLikelyTypos(string input, string? expected) =>
        Assert.Equal(expected, Suggestions.Closest(input, ["provider", "model", "temperature", "max_tokens", "top_p"]));

    [Theory]
    [InlineData("", "", 0)]
    [InlineData("abc", "abc", 0)]
    [InlineData("ab", "ba", 1)]
    [InlineData("kitten", "sitting", 3)]
    [InlineData("ca", "abc", 3)]
    public void Distance_IsTheOptimalStringAlignmentDistance(string a, string b, int expected) =>
        Assert.Equal(expected, Suggestions.Distance(a, b));
}
