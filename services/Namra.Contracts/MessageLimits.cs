namespace Namra.Contracts;

/// <summary>
/// Sizes every service agrees on, in bytes, so what one accepts the next can store: a run's input is checked against
/// them where it enters (the public API), before any model is called, and the memory service keeps messages of at
/// least this size.
/// </summary>
public static class MessageLimits
{
    /// <summary>The smallest largest message a memory service keeps, in bytes of its protobuf encoding: 1 MiB.</summary>
    public const int MaxMessageBytes = 1024 * 1024;

    /// <summary>The largest input a run accepts, in UTF-8 bytes: a message's limit less room for its envelope (id, role, framing).</summary>
    public const int MaxInputBytes = MaxMessageBytes - (4 * 1024);
}
