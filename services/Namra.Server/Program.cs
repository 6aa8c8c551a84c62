using Namra.Hosting;
using Namra.Server;

// namra-server [--services config,llm-gateway,tool-executor,memory,orchestrator]  (default: all)
return await NamraStartup.RunAsync(() => NamraComposition.Build(WebApplication.CreateBuilder(args)));
