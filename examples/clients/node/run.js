// Runs an agent through Namra's public gRPC API from Node.js and prints each run event as a JSON line.
//
//   node run.js 127.0.0.1:50051 examples/agents/calculator.yaml "What is (17 + 25) * 2?"
//
// The client is generated at load time from protos/ (NAMRA_PROTOS overrides where they are); the agent file is
// sent inline. The exit code is 0 when the run completed, 1 otherwise.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const [address, agentFile, input] = process.argv.slice(2);
if (!address || !agentFile || !input) {
  console.error("usage: node run.js HOST:PORT AGENT_FILE INPUT");
  process.exit(2);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const protos = process.env.NAMRA_PROTOS ?? path.resolve(here, "../../../protos");
const definition = protoLoader.loadSync("namra/v1/agent_service.proto", {
  includeDirs: [protos, path.join(protos, "third_party")],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
});
const namra = grpc.loadPackageDefinition(definition).namra.v1;
const client = new namra.AgentService(address, grpc.credentials.createInsecure());

const content = readFileSync(agentFile, "utf8");
const format = agentFile.endsWith(".toml") ? "AGENT_FORMAT_TOML" : "AGENT_FORMAT_YAML";
const call = client.ExecuteStream({ agent: { inline: { content, format, file_name: path.basename(agentFile) } }, input });

let completed = false;
call.on("data", ({ event }) => {
  console.log(JSON.stringify(event));
  if (event.event === "run_completed") completed = true;
});
call.on("error", (error) => {
  console.error(`namra: ${error.details} (${grpc.status[error.code]})`);
  process.exit(1);
});
call.on("end", () => process.exit(completed ? 0 : 1));
