using System.CommandLine;
using Namra.LoadDriver;

// namra-load drive     : the whole measurement (starts the provider, the baseline and Namra as child processes)
// namra-load provider  : the local provider alone
// namra-load baseline  : the bare C# loop alone (reports its own figures as JSON)
// namra-load embedded  : Namra embedded, all five services and the caller in one process (reports its own figures as JSON)
// namra-load bare-rest : the floor of a server driven over REST (the bare loop behind one ASP.NET Core route)
// namra-load bare-service: one process of the distributed baseline (the run's gRPC hops with no framework)
// namra-load targets  : every performance target with its floor (NativeAOT builds, start, memory, whole runs in every mode)
// namra-load coldstart : the CLI's start-up (version, validate, run to the first provider request): JIT, ReadyToRun, NativeAOT launcher
var root = new RootCommand("Namra's load driver: a standard agent (2 model calls, 1 calculator call per run) against a local provider with fixed latency.");

var latency = new Option<int>("--latency-ms") { Description = "The provider's fixed latency per call.", DefaultValueFactory = _ => 10 };
var runs = new Option<int>("--runs") { Description = "Runs measured per mode and concurrency (a tenth of them at concurrency 1).", DefaultValueFactory = _ => 10000 };
var concurrency = new Option<int[]>("--concurrency") { Description = "Runs in flight at once.", DefaultValueFactory = _ => [1, 16, 64], AllowMultipleArgumentsPerToken = true };
var modes = new Option<string[]>("--modes") { Description = "baseline, embedded (in one process, as namra run), bare-rest (the bare loop behind one ASP.NET Core route), server-rest (one namra-server, over REST), server (one namra-server, over gRPC), bare-distributed (the same hops with no framework), distributed (five namra-server processes).", DefaultValueFactory = _ => ["baseline", "embedded", "bare-rest", "server-rest", "server", "bare-distributed", "distributed"], AllowMultipleArgumentsPerToken = true };
var extra = new Option<string[]>("--namra-env") { Description = "Extra NAME=VALUE settings for the Namra processes (to compare configurations).", DefaultValueFactory = _ => [], AllowMultipleArgumentsPerToken = true };
var output = new Option<string>("--out") { Description = "Folder for the JSON and markdown results.", DefaultValueFactory = _ => "artifacts/load" };
var apiKey = new Option<string?>("--api-key") { Description = "An API key sent with every run to a server (server and distributed modes), for servers that require keys." };
var aotServer = new Option<string?>("--aot-server") { Description = "namra-server published with -p:PublishAot=true, for the modes ending in -aot (server-aot, server-rest-aot, distributed-aot)." };
var drive = new Command("drive", "Measure every mode at every concurrency and write the results.") { latency, runs, concurrency, modes, extra, output, apiKey, aotServer };
drive.SetAction(async (parse, cancellationToken) => await Driver.RunAsync(new DriverOptions(
    TimeSpan.FromMilliseconds(parse.GetValue(latency)), parse.GetValue(runs), parse.GetValue(concurrency)!, parse.GetValue(modes)!, parse.GetValue(output)!,
    parse.GetValue(extra)!.Select(pair => pair.Split('=', 2)).ToDictionary(pair => pair[0], pair => pair.Length > 1 ? pair[1] : ""), parse.GetValue(apiKey), parse.GetValue(aotServer)), cancellationToken));
root.Subcommands.Add(drive);

var port = new Option<int>("--port") { Description = "Port on 127.0.0.1.", Required = true };
var provider = new Command("provider", "Serve the local provider.") { port, latency };
provider.SetAction(async (parse, _) => await ProviderServer.RunAsync(parse.GetValue(port), TimeSpan.FromMilliseconds(parse.GetValue(latency))));
root.Subcommands.Add(provider);

var address = new Option<string>("--provider") { Description = "The provider's address.", Required = true };
var count = new Option<int>("--runs") { Description = "Runs to measure.", DefaultValueFactory = _ => 1000 };
var parallel = new Option<int>("--concurrency") { Description = "Runs in flight at once.", DefaultValueFactory = _ => 1 };
var baseline = new Command("baseline", "Run the bare C# loop and print its figures as JSON.") { address, count, parallel };
baseline.SetAction(async (parse, cancellationToken) => await Baseline.RunAsync(new Uri(parse.GetValue(address)!), parse.GetValue(count), parse.GetValue(parallel), cancellationToken));
root.Subcommands.Add(baseline);

var embedded = new Command("embedded", "Run Namra embedded (settings from the environment) and print its figures as JSON.") { count, parallel };
embedded.SetAction(async (parse, cancellationToken) => await Embedded.RunAsync(parse.GetValue(count), parse.GetValue(parallel), cancellationToken));
root.Subcommands.Add(embedded);

var role = new Option<string>("--role") { Description = "orchestrator, llm-gateway, tool-executor or memory.", Required = true };
var gatewayAddress = new Option<string>("--gateway") { Description = "The bare LLM gateway's address.", Required = true };
var toolsAddress = new Option<string>("--tools") { Description = "The bare tool executor's address.", Required = true };
var memoryAddress = new Option<string>("--memory") { Description = "The bare memory service's address.", Required = true };
var bareService = new Command("bare-service", "Serve one process of the distributed baseline (the run's hops with no framework).") { role, port, address, gatewayAddress, toolsAddress, memoryAddress };
bareService.SetAction(async (parse, _) => await BareServices.RunAsync(parse.GetValue(role)!, parse.GetValue(port), new Uri(parse.GetValue(address)!), new Dictionary<string, Uri>
{
    [BareServices.Gateway] = new(parse.GetValue(gatewayAddress)!),
    [BareServices.Tools] = new(parse.GetValue(toolsAddress)!),
    [BareServices.Memory] = new(parse.GetValue(memoryAddress)!),
}));
root.Subcommands.Add(bareService);

var bareRest = new Command("bare-rest", "Serve the bare loop behind one ASP.NET Core route (the floor of a server driven over REST).") { port, address };
bareRest.SetAction(async (parse, _) => await BareRest.RunAsync(parse.GetValue(port), new Uri(parse.GetValue(address)!)));
root.Subcommands.Add(bareRest);

var repeat = new Option<int>("--repeat") { Description = "Starts measured per command and build (the median is reported).", DefaultValueFactory = _ => 5 };
var coldOutput = new Option<string>("--out") { Description = "Folder for the CLI builds and the results.", DefaultValueFactory = _ => "artifacts/coldstart" };
var coldStart = new Command("coldstart", "Build the CLI four ways (JIT, ReadyToRun, composite, NativeAOT launcher) and time namra version, validate and run from process start.") { repeat, coldOutput };
coldStart.SetAction(async (parse, cancellationToken) => await ColdStart.RunAsync(new ColdStartOptions(parse.GetValue(repeat), parse.GetValue(coldOutput)!), cancellationToken));
root.Subcommands.Add(coldStart);

var targetRuns = new Option<int>("--runs") { Description = "Measured runs per load cell.", DefaultValueFactory = _ => 3000 };
var targetConcurrency = new Option<int[]>("--concurrency") { Description = "Runs in flight at once, per load cell.", DefaultValueFactory = _ => [16, 64], AllowMultipleArgumentsPerToken = true };
var targetRepeat = new Option<int>("--repeat") { Description = "Starts measured per command and build (the median is reported).", DefaultValueFactory = _ => 5 };
var targetOutput = new Option<string>("--out") { Description = "Folder for the builds and the results.", DefaultValueFactory = _ => "artifacts/targets" };
var reuse = new Option<bool>("--reuse-builds") { Description = "Use the builds an earlier run left in the output folder instead of building them again." };
var startupOnly = new Option<bool>("--startup-only") { Description = "Measure start-up, memory and size only, not whole runs under load (a few minutes with --reuse-builds)." };
var targets = new Command("targets", "Every performance target with its floor, from one run: NativeAOT builds (start, memory, size), then whole runs in every mode.") { targetRuns, targetConcurrency, targetRepeat, targetOutput, reuse, startupOnly };
targets.SetAction(async (parse, cancellationToken) => await Targets.RunAsync(
    new TargetsOptions(parse.GetValue(targetRuns), parse.GetValue(targetConcurrency)!, parse.GetValue(targetRepeat), parse.GetValue(targetOutput)!, parse.GetValue(reuse), parse.GetValue(startupOnly)), cancellationToken));
root.Subcommands.Add(targets);

return await root.Parse(args).InvokeAsync();
