using Namra.Cli;

return await NamraCli.RunAsync(args, CliConsole.FromEnvironment()).ConfigureAwait(false);
