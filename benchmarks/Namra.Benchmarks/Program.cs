using BenchmarkDotNet.Running;

// dotnet run -c Release --project benchmarks/Namra.Benchmarks -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Namra.Benchmarks.AgentParsingBenchmarks).Assembly).Run(args);
