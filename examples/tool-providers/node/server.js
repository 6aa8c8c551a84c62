// A Namra tool provider in Node.js: serves namra.v1.ToolProviderService with @grpc/grpc-js.
// An agent uses it as a tool entry of type `grpc`:
//
//   tools:
//     - name: text_tools
//       type: grpc
//       config:
//         address: http://127.0.0.1:50070
//         headers: { authorization: "Bearer ${TOOL_PROVIDER_TOKEN}" }
//
// Settings (environment): HOST (default 127.0.0.1), PORT (default 50070; 0 picks a free port),
// TOOL_PROVIDER_TOKEN (when set, calls must send `authorization: Bearer <token>`).
import { fileURLToPath } from "node:url";
import path from "node:path";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const here = path.dirname(fileURLToPath(import.meta.url));
const protos = process.env.NAMRA_PROTOS ?? path.resolve(here, "../../../protos");
const definition = protoLoader.loadSync("namra/v1/tool_provider_service.proto", {
  includeDirs: [protos, path.join(protos, "third_party")],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const namra = grpc.loadPackageDefinition(definition).namra.v1;

const tools = [
  {
    name: "word_count",
    description: "Counts the words, lines and characters of a text.",
    input_schema_json: JSON.stringify({
      type: "object",
      properties: { text: { type: "string", maxLength: 1000000 } },
      required: ["text"],
      additionalProperties: false,
    }),
    run: ({ text }) => {
      const words = text.split(/\s+/u).filter((w) => w.length > 0).length;
      const lines = text.length === 0 ? 0 : text.split("\n").length;
      return JSON.stringify({ words, lines, characters: [...text].length });
    },
  },
  {
    name: "convert_length",
    description: "Converts a length between units: m, km, cm, mm, in, ft, yd, mi.",
    input_schema_json: JSON.stringify({
      type: "object",
      properties: {
        value: { type: "number" },
        from: { type: "string" },
        to: { type: "string" },
      },
      required: ["value", "from", "to"],
      additionalProperties: false,
    }),
    run: ({ value, from, to }) => {
      const metres = { m: 1, km: 1000, cm: 0.01, mm: 0.001, in: 0.0254, ft: 0.3048, yd: 0.9144, mi: 1609.344 };
      const unknown = [from, to].filter((u) => !(u in metres));
      if (unknown.length > 0) {
        // A tool's own failure is a result the model reads, not a failed call.
        return { error: `Unknown unit ${unknown.map((u) => `'${u}'`).join(" and ")}; use one of ${Object.keys(metres).join(", ")}.` };
      }
      return JSON.stringify({ value: (value * metres[from]) / metres[to], unit: to });
    },
  },
];

function authorized(call) {
  const token = process.env.TOOL_PROVIDER_TOKEN;
  return !token || call.metadata.get("authorization")[0] === `Bearer ${token}`;
}

function unauthenticated(callback) {
  callback({ code: grpc.status.UNAUTHENTICATED, details: "Send authorization: Bearer <TOOL_PROVIDER_TOKEN>." });
}

const server = new grpc.Server();
server.addService(namra.ToolProviderService.service, {
  DescribeTools(call, callback) {
    if (!authorized(call)) return unauthenticated(callback);
    callback(null, { tools: tools.map(({ name, description, input_schema_json }) => ({ name, description, input_schema_json })) });
  },
  InvokeTool(call, callback) {
    if (!authorized(call)) return unauthenticated(callback);
    const tool = tools.find((t) => t.name === call.request.name);
    if (!tool) {
      return callback({ code: grpc.status.NOT_FOUND, details: `No tool named '${call.request.name}'.` });
    }
    let args;
    try {
      args = JSON.parse(call.request.arguments_json || "{}");
    } catch (error) {
      return callback({ code: grpc.status.INVALID_ARGUMENT, details: `arguments_json is not JSON: ${error.message}` });
    }
    const result = tool.run(args);
    if (typeof result === "object" && result.error) {
      return callback(null, { content: result.error, is_error: true });
    }
    callback(null, { content: result, is_error: false });
  },
});

const host = process.env.HOST ?? "127.0.0.1";
const port = process.env.PORT ?? "50070";
server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) => {
  if (error) {
    console.error(`could not listen on ${host}:${port}: ${error.message}`);
    process.exit(1);
  }
  console.log(`namra tool provider listening on ${host}:${bound}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => server.tryShutdown(() => process.exit(0)));
}
