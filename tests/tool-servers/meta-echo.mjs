// An MCP server (stdio) with one tool, `meta`, that answers the `_meta` its call carried: what the tool executor
// sends to MCP servers besides the arguments (the call's idempotency key).
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";

const server = new McpServer({ name: "meta-echo", version: "1.0.0" });
server.registerTool("meta", { description: "Answers the call's _meta." }, async (extra) => ({
  content: [{ type: "text", text: JSON.stringify(extra._meta ?? {}) }],
}));
await server.connect(new StdioServerTransport());
