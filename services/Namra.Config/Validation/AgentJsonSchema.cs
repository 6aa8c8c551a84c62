using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Namra.Config.Validation;

/// <summary>
/// Generates the JSON Schema (draft 2020-12) of agent files from <see cref="AgentSchema"/>, for editors
/// (yaml-language-server, VS Code, JetBrains) to complete and check them. The committed copy at
/// <c>schemas/agent.schema.json</c> is compared with this output by a test.
/// </summary>
public static class AgentJsonSchema
{
    /// <summary>The schema's <c>$id</c>.</summary>
    public const string Id = "https://namra.dev/schemas/agent.schema.json";

    private static readonly JsonSerializerOptions WriteOptions = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The schema as indented JSON text, ending with a newline.</summary>
    public static string Generate()
    {
        var schema = Object(AgentSchema.Agent);
        schema.Insert(0, "$schema", "https://json-schema.org/draft/2020-12/schema");
        schema.Insert(1, "$id", Id);
        schema.Insert(2, "title", "Namra agent definition");
        schema.Insert(3, "description", "An agent for Namra, in YAML or TOML. Validate with `namra validate FILE`.");

        var properties = schema["properties"]!.AsObject();
        properties["llm"] = WithRules(properties["llm"]!.AsObject(), LlmRules());
        var tool = properties["tools"]!["items"]!.AsObject();
        tool["allOf"] = new JsonArray([.. AgentSchema.ToolConfigs.Select(pair => ToolConfigRule(pair.Key, pair.Value))]);
        var semantic = properties["memory"]!["properties"]!["semantic"]!.AsObject();
        WithRules(semantic, [If(new JsonObject { ["enabled"] = Const(true) }, ["enabled"], new JsonObject { ["required"] = Strings("embedding_model") })]);
        return schema.ToJsonString(WriteOptions) + "\n";
    }

    private static JsonObject Object(ObjectSpec spec)
    {
        var properties = new JsonObject();
        foreach (var field in spec.Fields)
        {
            var property = Type(field.Type);
            property.Insert(0, "description", field.Description);
            if (field.Default is { } value)
            {
                property["default"] = value switch
                {
                    string[] items => Strings(items),
                    string text => JsonValue.Create(text),
                    long integer => JsonValue.Create(integer),
                    double number => JsonValue.Create(number),
                    bool flag => JsonValue.Create(flag),
                    _ => throw new InvalidOperationException($"Default of {field.Name} has unsupported type {value.GetType()}."),
                };
            }

            properties[field.Name] = property;
        }

        var result = new JsonObject { ["type"] = "object", ["additionalProperties"] = false, ["properties"] = properties };
        var required = spec.Fields.Where(f => f.Required).Select(f => f.Name).ToArray();
        if (required.Length > 0)
        {
            result["required"] = Strings(required);
        }

        return result;
    }

    private static JsonObject Type(FieldType type) => type switch
    {
        StringType text => Compact(new JsonObject
        {
            ["type"] = "string",
            ["pattern"] = text.Pattern is null ? null : $"(?:{text.Pattern})|\\$\\{{",
            ["maxLength"] = text.MaxLength > 0 ? text.MaxLength : null,
        }),
        IntegerType integer => OrVariable(new JsonObject { ["type"] = "integer", ["minimum"] = integer.Minimum, ["maximum"] = integer.Maximum }),
        NumberType number => OrVariable(number.ExclusiveMinimum
            ? new JsonObject { ["type"] = "number", ["exclusiveMinimum"] = number.Minimum, ["maximum"] = number.Maximum }
            : new JsonObject { ["type"] = "number", ["minimum"] = number.Minimum, ["maximum"] = number.Maximum }),
        BooleanType => OrVariable(new JsonObject { ["type"] = "boolean" }),
        DurationType => new JsonObject { ["type"] = "string", ["pattern"] = "^(" + DurationFormat.Pattern.Trim('^', '$') + "|.*\\$\\{.*)$" },
        EnumType choices => new JsonObject { ["enum"] = Strings([.. choices.Values]) },
        ListType list => Compact(new JsonObject
        {
            ["type"] = "array",
            ["items"] = Type(list.Items),
            ["minItems"] = list.MinItems > 0 ? list.MinItems : null,
            ["maxItems"] = list.MaxItems,
        }),
        MapType map => new JsonObject { ["type"] = "object", ["additionalProperties"] = Type(map.Values) },
        AnyObjectType => new JsonObject { ["type"] = "object" },
        ObjectType obj => Object(obj.Spec),
        WordOrObjectType either => new JsonObject { ["oneOf"] = new JsonArray(Type(either.Words), Object(either.Spec)) },
        _ => throw new InvalidOperationException($"Unknown field type {type}."),
    };

    // Numbers and booleans may come from ${VAR} interpolation, which editors see as a string.
    private static JsonObject OrVariable(JsonObject type) =>
        new() { ["anyOf"] = new JsonArray(type, new JsonObject { ["type"] = "string", ["pattern"] = "\\$\\{" }) };

    private static IEnumerable<JsonObject> LlmRules() =>
    [
        If(new JsonObject { ["provider"] = Const("anthropic") }, ["provider"],
            new JsonObject { ["properties"] = new JsonObject { ["temperature"] = OrVariable(new JsonObject { ["type"] = "number", ["maximum"] = 1 }) } }),
        If(new JsonObject { ["provider"] = Const("openai_compatible") }, ["provider"], new JsonObject { ["required"] = Strings("base_url") }),
        If(new JsonObject { ["provider"] = Const("scripted") }, ["provider"], new JsonObject { ["required"] = Strings("script") }),
        If(new JsonObject { ["provider"] = new JsonObject { ["not"] = Const("scripted") } }, ["provider"],
            new JsonObject { ["not"] = new JsonObject { ["required"] = Strings("script") } }),
    ];

    private static JsonObject ToolConfigRule(string type, ObjectSpec spec)
    {
        var config = Object(spec);
        switch (type)
        {
            case "mcp":
                WithRules(config,
                [
                    If(new JsonObject { ["transport"] = Const("http") }, ["transport"],
                        new JsonObject { ["required"] = Strings("url"), ["not"] = new JsonObject { ["required"] = Strings("command") } }),
                    new JsonObject
                    {
                        ["if"] = new JsonObject { ["not"] = new JsonObject { ["properties"] = new JsonObject { ["transport"] = Const("http") }, ["required"] = Strings("transport") } },
                        ["then"] = new JsonObject { ["required"] = Strings("command"), ["not"] = new JsonObject { ["required"] = Strings("url") } },
                    },
                ]);
                break;
            case "builtin.database":
                config["oneOf"] = new JsonArray(new JsonObject { ["required"] = Strings("connection_string") }, new JsonObject { ["required"] = Strings("connection_string_env") });
                break;
        }

        // A config is optional only for types whose fields all have defaults.
        var then = new JsonObject { ["properties"] = new JsonObject { ["config"] = config } };
        if (spec.Fields.Any(f => f.Required) || type is "builtin.database" or "mcp")
        {
            then["required"] = Strings("config");
        }

        return If(new JsonObject { ["type"] = Const(type) }, ["type"], then);
    }

    private static JsonObject If(JsonObject properties, string[] required, JsonObject then) => new()
    {
        ["if"] = new JsonObject { ["properties"] = properties, ["required"] = Strings(required) },
        ["then"] = then,
    };

    private static JsonObject WithRules(JsonObject target, IEnumerable<JsonObject> rules)
    {
        target["allOf"] = new JsonArray([.. rules]);
        return target;
    }

    private static JsonObject Const(JsonNode value) => new() { ["const"] = value };

    private static JsonArray Strings(params string[] values) => new([.. values.Select(v => (JsonNode)v)]);

    private static JsonObject Compact(JsonObject node)
    {
        foreach (var key in node.Where(p => p.Value is null).Select(p => p.Key).ToList())
        {
            node.Remove(key);
        }

        return node;
    }
}
