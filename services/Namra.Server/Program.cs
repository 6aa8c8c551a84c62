using Namra.Hosting;
using Namra.Server;

// namra-server [--services config,llm-gateway,tool-executor,memory,orchestrator]  (default: all)
// namra-server health [ADDRESS]                                                    (a container health check)
return HealthProbe.IsRequested(args)
    ? await HealthProbe.RunAsync(args)
    : await NamraStartup.RunAsync(() => NamraComposition.Build(WebApplication.CreateBuilder(args)));
