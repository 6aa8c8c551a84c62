using System.Globalization;
using Namra.Config.Validation;
using Tomlyn;
using Tomlyn.Parsing;
using Tomlyn.Syntax;

namespace Namra.Config.Parsing;

/// <summary>
/// Reads TOML into the same <see cref="ConfigNode"/> tree as YAML, from Tomlyn's syntax tree (which keeps
/// positions), applying TOML's table semantics: dotted keys, <c>[table]</c> headers, <c>[[array]]</c> tables.
/// </summary>
internal sealed class TomlDocumentReader(ParseLimits limits)
{
    public ParseResult Read(string text, DiagnosticBag diagnostics)
    {
        DocumentSyntax document;
        try
        {
            // Tomlyn's parser recurses on nested arrays and inline tables; its depth limit stops a file of a
            // million '[' before the stack does.
            document = SyntaxParser.Parse(text, new TomlSerializerOptions { MaxDepth = limits.MaxDepth + 1 }, diagnostics.File, true);
        }
        catch (TomlException exception)
        {
            var position = exception.Line is int line and > 0 ? new SourcePosition(line, Math.Max(1, exception.Column ?? 1)) : SourcePosition.Document;
            diagnostics.Error(DiagnosticCodes.TooDeep, position, "",
                $"Arrays and tables nest deeper than {limits.MaxDepth} levels.", "agent files need only a few levels; flatten the structure");
            return new ParseResult(null, diagnostics.Items);
        }

        if (document.HasErrors)
        {
            foreach (var message in document.Diagnostics)
            {
                var code = message.Message.Contains("already defined", StringComparison.Ordinal) ? DiagnosticCodes.DuplicateKey : DiagnosticCodes.Syntax;
                diagnostics.Error(code, ToPosition(message.Span.Start), "", $"Invalid TOML: {message.Message.TrimEnd('.')}.");
            }

            return new ParseResult(null, diagnostics.Items);
        }

        var builder = new TreeBuilder(limits, diagnostics);
        return new ParseResult(builder.Build(document), diagnostics.Items);
    }

    private static SourcePosition ToPosition(TextPosition position) => new(position.Line + 1, position.Column + 1);

    private sealed class TreeBuilder(ParseLimits limits, DiagnosticBag diagnostics)
    {
        private readonly HashSet<MappingNode> _explicitTables = [];

        public MappingNode Build(DocumentSyntax document)
        {
            var root = new MappingNode(new SourcePosition(1, 1));
            foreach (var keyValue in document.KeyValues)
            {
                AddKeyValue(root, "", keyValue, depth: 1);
            }

            foreach (var table in document.Tables)
            {
                var keys = KeyParts(table.Name);
                var position = ToPosition(table.Span.Start);
                if (TooDeep(keys.Count, position, string.Join('.', keys)))
                {
                    continue;
                }
                var (target, path) = table is TableArraySyntax
                    ? AppendArrayTable(root, keys, position)
                    : OpenTable(root, keys, position);
                if (target is null)
                {
                    continue;
                }

                foreach (var keyValue in table.Items)
                {
                    AddKeyValue(target, path, keyValue, depth: keys.Count + 1);
                }
            }

            return root;
        }

        private (MappingNode? Table, string Path) OpenTable(MappingNode root, List<string> keys, SourcePosition position)
        {
            var (table, path) = Navigate(root, keys, position);
            if (table is not null && !_explicitTables.Add(table))
            {
                diagnostics.Error(DiagnosticCodes.DuplicateKey, position, path, $"Table [{string.Join('.', keys)}] is defined twice.", "merge the two tables");
                return (null, path);
            }

            return (table, path);
        }

        private (MappingNode? Table, string Path) AppendArrayTable(MappingNode root, List<string> keys, SourcePosition position)
        {
            var (parent, parentPath) = Navigate(root, keys[..^1], position);
            if (parent is null)
            {
                return (null, parentPath);
            }

            var last = keys[^1];
            var path = Join(parentPath, last);
            var sequence = parent.Find(last)?.Value as SequenceNode;
            if (sequence is null)
            {
                if (parent.Find(last) is not null)
                {
                    diagnostics.Error(DiagnosticCodes.DuplicateKey, position, path, $"`{last}` is already defined as something other than an array of tables.");
                    return (null, path);
                }

                sequence = new SequenceNode(position);
                parent.Add(new MappingEntry(last, position, sequence));
            }

            var item = new MappingNode(position);
            sequence.Items.Add(item);
            return (item, $"{path}[{sequence.Items.Count - 1}]");
        }

        // Walks (creating as needed) the tables named by keys; inside an array of tables, the last element.
        private (MappingNode? Table, string Path) Navigate(MappingNode from, IEnumerable<string> keys, SourcePosition position)
        {
            var current = from;
            var path = "";
            foreach (var key in keys)
            {
                path = Join(path, key);
                switch (current.Find(key)?.Value)
                {
                    case null:
                        var created = new MappingNode(position);
                        current.Add(new MappingEntry(key, position, created));
                        current = created;
                        break;
                    case MappingNode mapping:
                        current = mapping;
                        break;
                    case SequenceNode { Items: [.., MappingNode lastTable] } sequence:
                        path += $"[{sequence.Items.Count - 1}]";
                        current = lastTable;
                        break;
                    default:
                        diagnostics.Error(DiagnosticCodes.DuplicateKey, position, path, $"`{key}` is already defined as a value, not a table.");
                        return (null, path);
                }
            }

            return (current, path);
        }

        private void AddKeyValue(MappingNode table, string tablePath, KeyValueSyntax keyValue, int depth)
        {
            var keys = KeyParts(keyValue.Key);
            var keyPosition = ToPosition(keyValue.Span.Start);
            if (TooDeep(depth + keys.Count - 1, keyPosition, Join(tablePath, string.Join('.', keys))))
            {
                return;
            }
            var (target, path) = Navigate(table, keys[..^1], keyPosition);
            if (target is null)
            {
                return;
            }

            path = Join(Join(tablePath, path), keys[^1]);
            if (target.Find(keys[^1]) is { } first)
            {
                diagnostics.Error(DiagnosticCodes.DuplicateKey, keyPosition, path,
                    $"Duplicate key `{keys[^1]}` (first at line {first.KeyPosition.Line}).", "remove one of the two");
                return;
            }

            if (ToNode(keyValue.Value, path, depth + keys.Count) is { } value)
            {
                target.Add(new MappingEntry(keys[^1], keyPosition, value));
            }
        }

        private ConfigNode? ToNode(ValueSyntax? value, string path, int depth)
        {
            if (value is null)
            {
                return null;
            }

            var position = ToPosition(value.Span.Start);
            if (TooDeep(depth, position, path))
            {
                return null;
            }

            switch (value)
            {
                case StringValueSyntax text:
                    return new ScalarNode(position, text.Value ?? "", ScalarKind.String);
                case IntegerValueSyntax integer:
                    return new ScalarNode(position, integer.Value.ToString(CultureInfo.InvariantCulture), ScalarKind.Integer);
                case FloatValueSyntax number:
                    return new ScalarNode(position, number.Value.ToString("R", CultureInfo.InvariantCulture), ScalarKind.Float);
                case BooleanValueSyntax boolean:
                    return new ScalarNode(position, boolean.Value ? "true" : "false", ScalarKind.Boolean);
                case DateTimeValueSyntax dateTime:
                    return new ScalarNode(position, dateTime.ToString().Trim(), ScalarKind.DateTime);
                case ArraySyntax array:
                    var sequence = new SequenceNode(position);
                    foreach (var item in array.Items)
                    {
                        if (ToNode(item.Value, $"{path}[{sequence.Items.Count}]", depth + 1) is { } node)
                        {
                            sequence.Items.Add(node);
                        }
                    }

                    return sequence;
                case InlineTableSyntax inline:
                    var mapping = new MappingNode(position);
                    foreach (var item in inline.Items)
                    {
                        if (item.KeyValue is { } keyValue)
                        {
                            AddKeyValue(mapping, path, keyValue, depth + 1);
                        }
                    }

                    return mapping;
                default:
                    diagnostics.Error(DiagnosticCodes.Syntax, position, path, $"Unsupported TOML value `{value.ToString().Trim()}`.");
                    return null;
            }
        }

        // Dotted keys and table headers nest as much as brackets do, and are bounded the same way.
        private bool TooDeep(int depth, SourcePosition position, string path)
        {
            if (depth <= limits.MaxDepth)
            {
                return false;
            }

            diagnostics.Error(DiagnosticCodes.TooDeep, position, path,
                $"Arrays and tables nest deeper than {limits.MaxDepth} levels.", "agent files need only a few levels; flatten the structure");
            return true;
        }

        private static List<string> KeyParts(KeySyntax? key)
        {
            if (key is null)
            {
                return [""];
            }

            List<string> parts = [KeyText(key.Key)];
            foreach (var dotted in key.DotKeys)
            {
                parts.Add(KeyText(dotted.Key));
            }

            return parts;
        }

        private static string KeyText(SyntaxNode? key) => key switch
        {
            BareKeySyntax bare => bare.Key?.Text ?? "",
            StringValueSyntax quoted => quoted.Value ?? "",
            _ => key?.ToString()?.Trim() ?? "",
        };

        private static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";
    }
}
