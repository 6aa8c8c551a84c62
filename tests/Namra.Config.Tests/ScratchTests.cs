using Namra.Config;
using Xunit.Abstractions;
namespace Namra.Config.Tests;
public sealed class ScratchTests(ITestOutputHelper output)
{
    [Fact]
    public void Print()
    {
        var text = """
name: Example Agent
version: 1.0
llm:
  provider: antropic
  model: claude
  temprature: 0.7
  max_tokens: "4096"
  api_key: sk-123
tools:
  - name: calc
    type: builtin.calculater
  - name: calc
    type: builtin.filesystem
    config: { read_only: yes }
  - name: web
    type: mcp
    config:
      transport: http
      command: npx
execution:
  timeout: 90
  max_iterations: 0
  budget: { max_cost_usd: 0 }
system_prompt: "Hello ${NAMRA_UNSET_VAR_X}"
""";
        var result = new AgentLoader().Load(text, "agent.yaml");
        foreach (var d in result.Diagnostics) output.WriteLine(d.ToString() + "   [" + d.FieldPath + "]");
        var toml = """
name = "toml_agent"
version = "1.0.0"
system_prompt = "hi"
[llm]
provider = "scripted"
model = "scripted"
[[llm.script]]
text = "I'll compute"
tool_calls = [ { name = "calculator", arguments = { expression = "2+2" } } ]
[[llm.script]]
text = "4"
[[tools]]
name = "calculator"
type = "builtin.calculator"
""";
        var r2 = new AgentLoader().Load(toml, "a.toml");
        foreach (var d in r2.Diagnostics) output.WriteLine(d.ToString());
        output.WriteLine(r2.Agent?.ToString() ?? "null");
        output.WriteLine(r2.Ref?.ToString() ?? "null");
    }
}
