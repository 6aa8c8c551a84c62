using Namra.ToolExecutor.Tools;

namespace Namra.ToolExecutor.Tests;

/// <summary>HTML to text: what the model reads of a page, and pages built to break the conversion.</summary>
public sealed class HtmlTextTests
{
    [Theory]
    [InlineData("<h1>Title</h1><p>Hello &amp; welcome.</p>", "Title\n\nHello & welcome.")]
    [InlineData("<p>one\n   two</p>\n\n\n<p>three</p>", "one two\n\nthree")]
    [InlineData("a<br>b<br/>c", "a\nb\nc")]
    [InlineData("<ul><li>x</li><li>y</li></ul>", "x\ny")]
    [InlineData("<b>bold</b> and <i>it</i>alic", "bold and italic")]
    [InlineData("<script>var secret = '</p>';</script><style>p{}</style>shown<noscript>no</noscript>", "shown")]
    [InlineData("<SCRIPT type=\"text/javascript\">x</ScRiPt>after", "after")]
    [InlineData("<a href=\"x>y\" title='a>b'>link</a>", "link")]
    [InlineData("<!-- <p>hidden</p> -->visible<!DOCTYPE html><?xml x?>", "visible")]
    [InlineData("1 < 2 and 3 <= 4", "1 < 2 and 3 <= 4")]
    [InlineData("&lt;tag&gt; &#65;&#x42; &nbsp;&copy;", "<tag> AB \u00a9")]
    [InlineData("nul\0and\u001b[31mescape", "nuland[31mescape")]
    [InlineData("<p>unclosed <script>var x", "unclosed")]
    [InlineData("text<!-- unclosed comment", "text")]
    [InlineData("<", "<")]
    [InlineData("", "")]
    public void Extract_GivesTheReadableText(string html, string expected)
    {
        Assert.Equal(expected, HtmlText.Extract(html, 10_000, CancellationToken.None));
    }

    [Fact]
    public void Extract_KeepsAFlatStack_OnAHundredThousandNestedTags()
    {
        // A tree builder recurses and overflows the stack here, killing the process; it also spent seconds per page.
        var html = string.Concat(Enumerable.Repeat("<b><div>", 100_000)) + "deep";

        Assert.Equal("deep", HtmlText.Extract(html, 10_000, CancellationToken.None));
    }

    [Fact]
    public void Extract_StopsAtItsCap()
    {
        var text = HtmlText.Extract(string.Concat(Enumerable.Repeat("<p>word</p>", 100_000)), 1000, CancellationToken.None);

        Assert.Equal(1000, text.Length);
    }

    [Fact]
    public void Extract_HonoursCancellation()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();

        Assert.Throws<OperationCanceledException>(() => HtmlText.Extract(string.Concat(Enumerable.Repeat("<i>", 10_000)), 10_000, cancelled.Token));
    }
}
