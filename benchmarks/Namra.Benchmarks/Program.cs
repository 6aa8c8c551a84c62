using BenchmarkDotNet.Running;

// dotnet run -c Release --project benchmarks/Namra.Benchmarks -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
