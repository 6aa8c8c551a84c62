using System.Net;
using System.Text;

namespace Namra.ToolExecutor.Tools;

/// <summary>
/// Turns an HTML page into readable text for the model in one pass over the markup, with no document tree: tags
/// become line breaks or nothing, the contents of scripts, styles and templates are dropped, entities are decoded
/// and whitespace is collapsed. Time is linear in the input and the stack is flat whatever the page nests (a tree
/// builder is quadratic in depth and its recursive walks overflow the stack on a page of deeply nested tags),
/// the output is capped and the token is honoured throughout.
/// </summary>
internal static class HtmlText
{
    // Elements whose content is code or markup, not text.
    private static readonly HashSet<string> Hidden = new(StringComparer.OrdinalIgnoreCase) { "script", "style", "noscript", "template", "svg", "math", "iframe", "object" };

    // Elements that start a new line of text.
    private static readonly HashSet<string> Blocks = new(StringComparer.OrdinalIgnoreCase)
    {
        "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div", "dl", "dt", "fieldset", "figcaption", "figure",
        "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary",
        "table", "td", "th", "title", "tr", "ul",
    };

    // Elements that end a paragraph: a blank line after them.
    private static readonly HashSet<string> Paragraphs = new(StringComparer.OrdinalIgnoreCase)
    {
        "article", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "p", "pre", "section", "table", "title", "ul", "ol",
    };

    private const int CheckEvery = 4096;

    /// <summary>The text of <paramref name="html"/>, at most <paramref name="maxCharacters"/> long.</summary>
    public static string Extract(string html, int maxCharacters, CancellationToken cancellationToken)
    {
        var text = new Writer(maxCharacters);
        var steps = 0;
        for (var i = 0; i < html.Length && !text.Full;)
        {
            if (++steps % CheckEvery == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            if (html[i] != '<' || i + 1 >= html.Length)
            {
                var next = html.IndexOf('<', i + 1);
                var end = next < 0 ? html.Length : next;
                text.Append(WebUtility.HtmlDecode(html[i..end]));
                i = end;
                continue;
            }

            var c = html[i + 1];
            if (c == '!' && string.CompareOrdinal(html, i, "<!--", 0, 4) == 0)
            {
                var close = html.IndexOf("-->", i + 4, StringComparison.Ordinal);
                i = close < 0 ? html.Length : close + 3;
            }
            else if (c is '!' or '?')
            {
                i = TagEnd(html, i + 2);
            }
            else if (c == '/' && i + 2 < html.Length && char.IsAsciiLetter(html[i + 2]))
            {
                var name = Name(html, i + 2);
                text.Break(Paragraphs.Contains(name) ? 2 : Blocks.Contains(name) ? 1 : 0);
                i = TagEnd(html, i + 2 + name.Length);
            }
            else if (char.IsAsciiLetter(c))
            {
                var name = Name(html, i + 1);
                var end = TagEnd(html, i + 1 + name.Length);
                text.Break(Blocks.Contains(name) ? 1 : 0);
                i = Hidden.Contains(name) && !(end >= 2 && html[end - 2] == '/') ? SkipPast(html, end, name) : end;
            }
            else
            {
                text.Append("<");
                i++;
            }
        }

        return text.ToString();
    }

    private static string Name(string html, int start)
    {
        var end = start;
        while (end < html.Length && end - start < 32 && (char.IsAsciiLetterOrDigit(html[end]) || html[end] is '-' or ':'))
        {
            end++;
        }

        return html[start..end];
    }

    // The index after the tag's '>', past quoted attribute values.
    private static int TagEnd(string html, int i)
    {
        char quote = '\0';
        for (; i < html.Length; i++)
        {
            var c = html[i];
            if (quote != '\0')
            {
                quote = c == quote ? '\0' : quote;
            }
            else if (c is '"' or '\'')
            {
                quote = c;
            }
            else if (c == '>')
            {
                return i + 1;
            }
        }

        return html.Length;
    }

    // The index after the hidden element's closing tag (nesting of the same element is not tracked: browsers end
    // a script at its first closing tag too).
    private static int SkipPast(string html, int i, string name)
    {
        var close = html.IndexOf("</" + name, i, StringComparison.OrdinalIgnoreCase);
        return close < 0 ? html.Length : TagEnd(html, close + 2 + name.Length);
    }

    /// <summary>Collapses whitespace as it goes: a run of blanks is one space, breaks between elements at most one blank line.</summary>
    private sealed class Writer(int maxCharacters)
    {
        private readonly StringBuilder _text = new();
        private int _pendingBreaks;
        private bool _pendingSpace;

        public bool Full => _text.Length >= maxCharacters;

        public void Break(int lines) => _pendingBreaks = Math.Max(_pendingBreaks, lines);

        public void Append(string decoded)
        {
            foreach (var c in decoded)
            {
                if (char.IsWhiteSpace(c))
                {
                    // Line breaks in the markup are blanks, as a browser shows them; lines come from the elements.
                    _pendingSpace = true;
                }
                else if (!char.IsControl(c))
                {
                    Write(c);
                }

                // NUL and the other control characters of a page are not text: the model never sees them.
            }
        }

        private void Write(char c)
        {
            if (_text.Length > 0)
            {
                if (_pendingBreaks > 0)
                {
                    _text.Append('\n', Math.Min(_pendingBreaks, 2));
                }
                else if (_pendingSpace)
                {
                    _text.Append(' ');
                }
            }

            _pendingBreaks = 0;
            _pendingSpace = false;
            if (_text.Length < maxCharacters)
            {
                _text.Append(c);
            }
        }

        public override string ToString() => _text.ToString();
    }
}
