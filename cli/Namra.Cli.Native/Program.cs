using Namra.Cli;

// The commands that need no service run here, compiled ahead of time; run, chat, help and anything else go
// to the full CLI installed beside this file.
if (args is [var command, ..] && AuthoringCommands.Names.Contains(command))
{
    var console = CliConsole.FromEnvironment();
    return await AuthoringCommands.InvokeAsync(AuthoringCommands.CreateRoot(console), args, console).ConfigureAwait(false);
}

return FullCli.Run(args);
