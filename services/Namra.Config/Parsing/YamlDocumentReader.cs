using System.Globalization;
using System.Text.RegularExpressions;
using Namra.Config.Validation;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Namra.Config.Parsing;

/// <summary>
/// Reads YAML into a <see cref="ConfigNode"/> tree from YamlDotNet's event parser, so every limit is enforced
/// while reading, before anything is built: nesting depth, nodes after alias expansion (a "billion laughs"
/// file stops at the limit, in microseconds), one document per file, no duplicate keys, no custom tags.
/// Plain scalars are typed by the YAML 1.2 core schema.
/// </summary>
internal sealed partial class YamlDocumentReader(ParseLimits limits)
{
    public ParseResult Read(string text, DiagnosticBag diagnostics)
    {
        var state = new ReadState(limits, diagnostics);
        var parser = new Parser(new StringReader(text));
        try
        {
            ConfigNode? root = null;
            var documents = 0;
            while (parser.MoveNext())
            {
                switch (parser.Current)
                {
                    case DocumentStart start when ++documents > 1:
                        diagnostics.Error(DiagnosticCodes.MultipleDocuments, ToPosition(start.Start), "",
                            "The file holds more than one YAML document.", "write one agent per file");
                        return new ParseResult(null, diagnostics.Items);
                    case NodeEvent node:
                        root = state.ReadNode(parser, node, depth: 1, path: "");
                        if (root is null)
                        {
                            return new ParseResult(null, diagnostics.Items);
                        }

                        break;
                }
            }

            return new ParseResult(root, diagnostics.Items);
        }
        catch (YamlException exception)
        {
            diagnostics.Error(DiagnosticCodes.Syntax, ToPosition(exception.Start), "", "Invalid YAML: " + CleanMessage(exception.Message));
            return new ParseResult(null, diagnostics.Items);
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's parser throws this (rather than a YamlException) on some unterminated flow
            // collections; the last event it produced is where the broken structure starts.
            var position = parser.Current is { } last ? ToPosition(last.Start) : SourcePosition.Document;
            diagnostics.Error(DiagnosticCodes.Syntax, position, "", "Invalid YAML: this list or mapping is not closed, or what follows it is not valid.",
                "check the brackets, quotes and indentation from here on");
            return new ParseResult(null, diagnostics.Items);
        }
    }

    private static SourcePosition ToPosition(Mark mark) => new((int)mark.Line, (int)mark.Column);

    // YamlDotNet prefixes messages with "(Line: 3, Col: 5, Idx: 20) - (Line: ...): "; we print positions ourselves.
    private static string CleanMessage(string message) => MarkPrefix().Replace(message, "").TrimEnd('.') + ".";

    [GeneratedRegex(@"^\(Line: \d+, Col: \d+, Idx: \d+\) - \(Line: \d+, Col: \d+, Idx: \d+\): ")]
    private static partial Regex MarkPrefix();

    private static readonly HashSet<string> CoreTags = new(StringComparer.Ordinal)
    {
        "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:null", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq",
    };

    private sealed partial class ReadState(ParseLimits limits, DiagnosticBag diagnostics)
    {
        private readonly Dictionary<string, (ConfigNode Node, long Size)> _anchors = new(StringComparer.Ordinal);
        private long _nodes;

        /// <summary>Reads the node that starts with <paramref name="start"/>; null after a fatal limit error.</summary>
        public ConfigNode? ReadNode(IParser parser, ParsingEvent start, int depth, string path)
        {
            var position = ToPosition(start.Start);
            if (start is AnchorAlias alias)
            {
                if (!_anchors.TryGetValue(alias.Value.Value, out var anchored))
                {
                    diagnostics.Error(DiagnosticCodes.Syntax, position, path, $"Alias *{alias.Value.Value} refers to no anchor before it.");
                    return null;
                }

                _nodes += anchored.Size;
                return CheckNodeCount(position, path) ? anchored.Node : null;
            }

            if (start is not NodeEvent nodeStart || !CheckTag(nodeStart, position, path))
            {
                return null;
            }

            _nodes++;
            if (!CheckNodeCount(position, path))
            {
                return null;
            }

            var before = _nodes;
            ConfigNode? node = start switch
            {
                Scalar scalar => ToScalar(scalar, position),
                MappingStart => depth > limits.MaxDepth ? TooDeep(position, path) : ReadMapping(parser, position, depth, path),
                SequenceStart => depth > limits.MaxDepth ? TooDeep(position, path) : ReadSequence(parser, position, depth, path),
                _ => null,
            };
            if (node is not null && !nodeStart.Anchor.IsEmpty)
            {
                _anchors[nodeStart.Anchor.Value] = (node, _nodes - before + 1);
            }

            return node;
        }

        private MappingNode? ReadMapping(IParser parser, SourcePosition position, int depth, string path)
        {
            var mapping = new MappingNode(position);
            while (parser.MoveNext() && parser.Current is not MappingEnd)
            {
                if (parser.Current is not Scalar key)
                {
                    diagnostics.Error(DiagnosticCodes.Syntax, ToPosition(parser.Current!.Start), path,
                        "Mapping keys must be plain names, not lists, mappings or aliases.");
                    return null;
                }

                var keyPosition = ToPosition(key.Start);
                var childPath = path.Length == 0 ? key.Value : $"{path}.{key.Value}";
                if (!parser.MoveNext() || parser.Current is not (NodeEvent or AnchorAlias))
                {
                    return null;
                }

                var value = ReadNode(parser, parser.Current, depth + 1, childPath);
                if (value is null)
                {
                    return null;
                }

                if (mapping.Find(key.Value) is { } first)
                {
                    diagnostics.Error(DiagnosticCodes.DuplicateKey, keyPosition, childPath,
                        $"Duplicate key `{key.Value}` (first at line {first.KeyPosition.Line}).", "remove one of the two");
                    continue;
                }

                mapping.Add(new MappingEntry(key.Value, keyPosition, value));
            }

            return mapping;
        }

        private SequenceNode? ReadSequence(IParser parser, SourcePosition position, int depth, string path)
        {
            var sequence = new SequenceNode(position);
            while (parser.MoveNext() && parser.Current is not SequenceEnd)
            {
                if (parser.Current is not (NodeEvent or AnchorAlias))
                {
                    return null;
                }

                var item = ReadNode(parser, parser.Current, depth + 1, $"{path}[{sequence.Items.Count}]");
                if (item is null)
                {
                    return null;
                }

                sequence.Items.Add(item);
            }

            return sequence;
        }

        private ConfigNode? TooDeep(SourcePosition position, string path)
        {
            diagnostics.Error(DiagnosticCodes.TooDeep, position, path,
                $"Mappings and lists nest deeper than {limits.MaxDepth} levels.", "agent files need only a few levels; flatten the structure");
            return null;
        }

        private bool CheckNodeCount(SourcePosition position, string path)
        {
            if (_nodes <= limits.MaxNodes)
            {
                return true;
            }

            diagnostics.Error(DiagnosticCodes.TooManyNodes, position, path,
                $"The document expands to more than {limits.MaxNodes:N0} values (YAML aliases multiply what they refer to).",
                "remove the aliases (`*name`) that repeat large parts of the file");
            return false;
        }

        private bool CheckTag(NodeEvent node, SourcePosition position, string path)
        {
            if (node.Tag.IsEmpty || node.Tag.IsNonSpecific || CoreTags.Contains(node.Tag.Value))
            {
                return true;
            }

            diagnostics.Error(DiagnosticCodes.UnsupportedTag, position, path,
                $"The YAML tag `{node.Tag.Value}` is not supported.", "agent files use plain YAML values; remove the tag");
            return false;
        }

        private static ScalarNode ToScalar(Scalar scalar, SourcePosition position)
        {
            if (scalar.Style is not ScalarStyle.Plain)
            {
                return new ScalarNode(position, scalar.Value, ScalarKind.String);
            }

            if (!scalar.Tag.IsEmpty && scalar.Tag.Value == "tag:yaml.org,2002:str")
            {
                return new ScalarNode(position, scalar.Value, ScalarKind.String);
            }

            return ResolvePlain(scalar.Value, position);
        }
    }

    /// <summary>Types a plain scalar by the YAML 1.2 core schema.</summary>
    internal static ScalarNode ResolvePlain(string value, SourcePosition position)
    {
        switch (value)
        {
            case "" or "~" or "null" or "Null" or "NULL":
                return new ScalarNode(position, value, ScalarKind.Null);
            case "true" or "True" or "TRUE":
                return new ScalarNode(position, "true", ScalarKind.Boolean);
            case "false" or "False" or "FALSE":
                return new ScalarNode(position, "false", ScalarKind.Boolean);
        }

        if (IntegerPattern().IsMatch(value))
        {
            return new ScalarNode(position, value, ScalarKind.Integer);
        }

        if (value.StartsWith("0x", StringComparison.Ordinal) && long.TryParse(value.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hex))
        {
            return new ScalarNode(position, hex.ToString(CultureInfo.InvariantCulture), ScalarKind.Integer);
        }

        return FloatPattern().IsMatch(value)
            ? new ScalarNode(position, value, ScalarKind.Float)
            : new ScalarNode(position, value, ScalarKind.PlainString);
    }

    [GeneratedRegex(@"^[-+]?[0-9]+$")]
    private static partial Regex IntegerPattern();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex FloatPattern();
}
