using System.Text.Json.Serialization;

namespace Namra.Memory.Stores;

/// <summary>The JSON the stores keep beside their columns and keys, serialized by generated code.</summary>
[JsonSerializable(typeof(RedisMemoryStore.StoredMemoryJson))]
[JsonSerializable(typeof(IReadOnlyDictionary<string, string>))]
[JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class StoredJson : JsonSerializerContext;
