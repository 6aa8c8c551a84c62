using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Namra.Testing.Telemetry;

/// <summary>A logger provider that keeps every line a host logs (after its filters), for tests that read the log.</summary>
public sealed class CapturedLogs : ILoggerProvider
{
    private readonly ConcurrentQueue<(string Category, string Text)> _entries = new();

    /// <summary>The categories of the lines, in order.</summary>
    public IEnumerable<string> Categories => _entries.Select(e => e.Category);

    /// <summary>Each line as <c>category: message exception</c>.</summary>
    public IEnumerable<string> Lines => _entries.Select(e => $"{e.Category}: {e.Text}");

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _entries);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, ConcurrentQueue<(string Category, string Text)> entries) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            entries.Enqueue((category, $"{formatter(state, exception)} {exception}"));
    }
}
