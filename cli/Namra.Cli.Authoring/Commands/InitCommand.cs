using System.CommandLine;
using Namra.Config;
using Spectre.Console;

namespace Namra.Cli.Commands;

internal static class InitCommand
{
    public static Command Create(CliConsole console)
    {
        var name = new Argument<string>("name") { Description = "Name of the agent (lower case letters, digits, _ and -).", DefaultValueFactory = _ => "my_agent" };
        var output = new Option<string?>("--output", "-o") { Description = "File to write; <name>.yaml when omitted." };
        var force = new Option<bool>("--force") { Description = "Overwrite the file if it exists." };
        var command = new Command("init", "Write a working example agent to start from.") { name, output, force };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var agentName = parse.GetRequiredValue(name);
            if (!AgentLoader.IsValidAgentName(agentName))
            {
                await console.Error.WriteLineAsync($"namra init: '{agentName}' is not a valid agent name; use lower case letters, digits, '_' and '-', starting with a letter (such as support_agent).").ConfigureAwait(false);
                return 2;
            }

            var file = parse.GetValue(output) ?? $"{agentName}.yaml";
            var path = Path.IsPathRooted(file) ? file : Path.Combine(console.WorkingDirectory, file);
            if (File.Exists(path) && !parse.GetValue(force))
            {
                await console.Error.WriteLineAsync($"namra init: {file} exists; pass --force to overwrite it.").ConfigureAwait(false);
                return 2;
            }

            var content = Template(agentName);

            // The template is checked like any user file, so init can never write something validate rejects.
            var check = new AgentLoader().Load(content, file);
            if (!check.IsValid)
            {
                throw new InvalidOperationException($"The init template is invalid: {check.Diagnostics[0]}");
            }

            await File.WriteAllTextAsync(path, content, cancellationToken).ConfigureAwait(false);
            console.Out.MarkupLineInterpolated($"[green]Created[/] {file}: agent [bold]{agentName}@1.0.0[/] with a calculator tool and a scripted model (runs offline).");
            console.Out.MarkupLineInterpolated($"Next: [bold]namra validate {file}[/], then switch [bold]llm.provider[/] to anthropic or openai (see the comments in the file).");
            return 0;
        });
        return command;
    }

    public static string Template(string name) => $$"""
        # A Namra agent. Check it with `namra validate {{name}}.yaml`.
        # Editor completion: `namra schema -o agent.schema.json`, then keep the next line.
        # yaml-language-server: $schema=./agent.schema.json
        name: {{name}}
        version: 1.0.0
        description: Answers arithmetic questions with the calculator tool.

        llm:
          # `scripted` replays the turns below, so the agent runs with no API key. For a real model:
          #   provider: anthropic                      (reads ANTHROPIC_API_KEY)
          #   model: claude-sonnet-5-5
          # or
          #   provider: openai                         (reads OPENAI_API_KEY)
          #   model: gpt-4o-mini
          # and remove `script`.
          provider: scripted
          model: scripted
          temperature: 0.2
          max_tokens: 1024
          script:
            - text: "I'll compute that with the calculator."
              tool_calls:
                - name: calculator
                  arguments: { expression: "(17 + 25) * 2" }
            - text: "(17 + 25) * 2 = 84."

        tools:
          - name: calculator
            type: builtin.calculator

        memory:
          type: in_memory
          max_messages: 50

        execution:
          max_iterations: 5
          timeout: 60s
          budget:
            max_cost_usd: 0.10
            max_tool_calls: 10

        system_prompt: |
          You are a careful assistant. Use the calculator for every computation,
          and give the final answer in one sentence.

        """;
}
