using Namra.Hosting;
using Namra.Server;

// namra-server [--services config,llm-gateway,tool-executor,memory,orchestrator]  (default: all)
// namra-server health [ADDRESS]                                                    (a container health check)
return HealthProbe.IsRequested(args)
    ? await HealthProbe.RunAsync(args)
    // The slim builder leaves out what a Namra service does not use (IIS, HTTP/3, HTTPS endpoint configuration, regex
    // route constraints): about 4 MB less resident memory per process. Settings are read once, at start, where they
    // are checked: nothing watches the working directory for appsettings.json, a watch that covered every folder
    // under it (55 ms of a start from a source tree of 3,400 folders, and an inotify watch per folder).
    : await NamraStartup.RunAsync(() => NamraComposition.Build(WebApplication.CreateSlimBuilder([.. args, "--hostBuilder:reloadConfigOnChange=false"])));
