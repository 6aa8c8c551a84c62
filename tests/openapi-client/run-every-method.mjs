// @ts-check
// Calls every operation of Namra's REST API through the client generated from its OpenAPI document (openapi-fetch, typed
// by generated/namra-api.d.ts), checks each answer's status and its shape against the document the server serves,
// and fails when the document has an operation this file never calls. `npm run typecheck` checks the calls against the
// generated types; `npm run generate` remakes them from the document.
//
//   NAMRA_URL=http://127.0.0.1:8080 [NAMRA_API_KEY=...] node run-every-method.mjs
//
// The agents run offline (the scripted provider). Cancelling a run in flight needs a tool that waits, which the
// server runs for an inline agent only with Namra__Orchestrator__TrustInlineAgents=true; otherwise that check is
// skipped and says so.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import createClient from "openapi-fetch";

/** @typedef {import("./generated/namra-api.js").paths} Paths */
/** @typedef {import("./generated/namra-api.js").components["schemas"]} Schemas */
/** @typedef {import("openapi-fetch").Client<Paths>} NamraClient */

const baseUrl = (process.env.NAMRA_URL ?? "").replace(/\/+$/, "");
if (!baseUrl) {
  console.error("Set NAMRA_URL to the server's HTTP address, e.g. NAMRA_URL=http://127.0.0.1:8080");
  process.exit(2);
}
const apiKey = process.env.NAMRA_API_KEY || undefined;
const requestTimeoutMs = 60_000;
// Bounded: a server that never answers fails the test instead of hanging it.
setTimeout(() => {
  console.error("openapi-client: gave up after 180 s");
  process.exit(1);
}, 180_000).unref();

/** "method /path" of every request any client here made, matched to the document's operations at the end. */
const called = new Set();

/**
 * @param {Record<string, string>} headers
 * @returns {NamraClient}
 */
function client(headers) {
  /** @type {NamraClient} */
  const made = createClient({ baseUrl, headers, fetch: (request) => fetch(request, { signal: AbortSignal.timeout(requestTimeoutMs) }) });
  made.use({
    onRequest({ request, schemaPath }) {
      called.add(`${request.method.toLowerCase()} ${schemaPath}`);
    },
  });
  return made;
}

const api = client(apiKey ? { authorization: `Bearer ${apiKey}` } : {});

// The document the server serves: the operations to cover and the schemas answers must match.
const documentResponse = await fetch(`${baseUrl}/openapi/v1.json`, { signal: AbortSignal.timeout(requestTimeoutMs) });
if (!documentResponse.ok) {
  console.error(`openapi-client: GET ${baseUrl}/openapi/v1.json answered ${documentResponse.status}`);
  process.exit(1);
}
/** @type {any} */
const document = await documentResponse.json();

let passed = 0;
let failed = 0;
let skipped = 0;

/**
 * @param {string} name
 * @param {() => Promise<void | string>} body returns a reason when it skipped
 */
async function check(name, body) {
  try {
    const skipReason = await body();
    if (typeof skipReason === "string") {
      skipped++;
      console.log(`skip ${name}: ${skipReason}`);
    } else {
      passed++;
      console.log(`ok   ${name}`);
    }
  } catch (error) {
    failed++;
    console.error(`FAIL ${name}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * Problems of a JSON value against an OpenAPI 3.0 schema of the document (the subset the document uses).
 * @param {unknown} value
 * @param {any} schema
 * @param {string} at
 * @returns {string[]}
 */
function problems(value, schema, at) {
  if (schema.$ref) {
    const name = schema.$ref.replace("#/components/schemas/", "");
    const target = document.components.schemas[name];
    return target ? problems(value, target, at) : [`${at}: the document has no schema ${schema.$ref}`];
  }
  if (value === null) {
    return schema.nullable || !schema.type ? [] : [`${at}: null`];
  }
  if (schema.enum && !schema.enum.includes(value)) {
    return [`${at}: ${JSON.stringify(value)} is none of ${schema.enum.join(", ")}`];
  }
  switch (schema.type) {
    case undefined:
      return [];
    case "string":
    case "boolean":
      return typeof value === schema.type ? [] : [`${at}: ${JSON.stringify(value)} is not a ${schema.type}`];
    case "integer":
      return Number.isInteger(value) ? [] : [`${at}: ${JSON.stringify(value)} is not an integer`];
    case "number":
      return typeof value === "number" ? [] : [`${at}: ${JSON.stringify(value)} is not a number`];
    case "array":
      return Array.isArray(value) ? value.flatMap((item, i) => problems(item, schema.items ?? {}, `${at}[${i}]`)) : [`${at}: not an array`];
    case "object": {
      if (typeof value !== "object" || Array.isArray(value)) {
        return [`${at}: not an object`];
      }
      const object = /** @type {Record<string, unknown>} */ (value);
      const properties = schema.properties ?? {};
      const found = (schema.required ?? []).filter((/** @type {string} */ key) => !(key in object)).map((/** @type {string} */ key) => `${at}.${key}: missing`);
      for (const [key, item] of Object.entries(object)) {
        if (key in properties) {
          found.push(...problems(item, properties[key], `${at}.${key}`));
        } else if (schema.additionalProperties === false) {
          found.push(`${at}.${key}: not in the document's schema`);
        } else if (typeof schema.additionalProperties === "object") {
          found.push(...problems(item, schema.additionalProperties, `${at}.${key}`));
        }
      }
      return found;
    }
    default:
      return [`${at}: the document's type ${schema.type} is unknown to this test`];
  }
}

/** @param {string} operationId */
function operation(operationId) {
  for (const methods of Object.values(document.paths)) {
    for (const candidate of Object.values(/** @type {Record<string, any>} */ (methods))) {
      if (candidate.operationId === operationId) {
        return candidate;
      }
    }
  }
  throw new Error(`the document has no operation ${operationId}`);
}

/**
 * Asserts the status and that the body is what the document says that operation answers with that status.
 * @param {string} operationId
 * @param {{ data?: unknown, error?: unknown, response: Response }} result
 * @param {number} status
 * @returns {any} the body
 */
function expectAnswer(operationId, result, status) {
  const body = result.response.ok ? result.data : result.error;
  assert.equal(result.response.status, status, `${operationId} answered ${result.response.status}, not ${status}: ${JSON.stringify(body)}`);
  const responses = operation(operationId).responses;
  const described = responses[String(status)] ?? responses[`${String(status)[0]}XX`] ?? responses.default;
  assert.ok(described, `the document gives ${operationId} no response for ${status}`);
  const schema = described.content?.["application/json"]?.schema;
  assert.ok(schema, `the document gives ${operationId}'s ${status} response no application/json schema`);
  const found = problems(body, schema, `${operationId} ${status}`);
  assert.ok(found.length === 0, `the answer does not match the document:\n  ${found.join("\n  ")}`);
  return body;
}

/**
 * An error answer: its status, a google.rpc.Status with this code and, for INVALID_ARGUMENT, a field violation of this field.
 * @param {string} operationId
 * @param {{ data?: unknown, error?: unknown, response: Response }} result
 * @param {number} status
 * @param {number} code
 * @param {string} [field]
 */
function expectError(operationId, result, status, code, field) {
  const error = expectAnswer(operationId, result, status);
  assert.equal(error.code, code, `${operationId}: gRPC code ${error.code}, not ${code}: ${error.message}`);
  assert.ok(typeof error.message === "string" && error.message.length > 0, `${operationId}: the error has no message`);
  if (field) {
    const violations = error.details.filter((/** @type {any} */ d) => d["@type"] === "type.googleapis.com/google.rpc.BadRequest").flatMap((/** @type {any} */ d) => d.fieldViolations);
    assert.ok(violations.some((/** @type {any} */ v) => v.field === field), `${operationId}: no field violation of ${field}: ${JSON.stringify(error.details)}`);
  }
}

/**
 * The messages of a newline-delimited JSON stream, each checked against the streaming operation's 200 schema.
 * @param {ReadableStream<Uint8Array>} body
 * @returns {AsyncGenerator<any>}
 */
async function* messages(body) {
  const schema = operation("ExecuteStream").responses["200"].content["application/json"].schema;
  const decoder = new TextDecoder();
  let buffered = "";
  /** @param {string} line */
  const parse = (line) => {
    const message = JSON.parse(line);
    const found = problems(message, schema, "ExecuteStream line");
    assert.ok(found.length === 0, `a streamed line does not match the document:\n  ${found.join("\n  ")}\n  ${line}`);
    return message;
  };
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true });
    for (let end = buffered.indexOf("\n"); end >= 0; end = buffered.indexOf("\n")) {
      const line = buffered.slice(0, end).trim();
      buffered = buffered.slice(end + 1);
      if (line) {
        yield parse(line);
      }
    }
  }
  buffered += decoder.decode();
  if (buffered.trim()) {
    yield parse(buffered.trim());
  }
}

// The offline agents: the calculator of examples/agents, and one that waits in a tool call until it is cancelled.
const calculator = await readFile(new URL("../../examples/agents/calculator.yaml", import.meta.url), "utf8");
const answer = "(17 + 25) * 2 = 84.";
const waiter = `name: openapi_client_waiter
version: 1.0.0
description: Waits in a tool call until it is cancelled.
llm:
  provider: scripted
  model: scripted
  script:
    - text: "Waiting."
      tool_calls:
        - name: shell
          arguments: { command: sleep, args: ["30"] }
    - text: "Done waiting."
tools:
  - name: shell
    type: builtin.shell
    config:
      allowed_commands: [sleep]
execution:
  max_iterations: 3
  timeout: 60s
`;
/** @type {Schemas["AgentSource"]} */
const calculatorSource = { inline: { content: calculator, format: "AGENT_FORMAT_YAML", fileName: "calculator.yaml" } };
/** @type {Schemas["AgentSource"]} */
const waiterSource = { inline: { content: waiter, format: "AGENT_FORMAT_YAML" } };
// Unique per test run, so the session's list holds this run's runs only.
const session = `openapi-client-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
const labels = { suite: "openapi-client" };
const executeRunId = `${session}-execute`;
const streamRunId = `${session}-stream`;

/** @param {any} run */
function expectCalculatorRun(run) {
  assert.equal(run.status, "RUN_STATUS_COMPLETED", `run ${run.runId} is ${run.status}`);
  assert.equal(run.agent.name, "calculator_agent");
  assert.equal(run.agent.version, "1.0.0");
  assert.match(run.agent.contentHash, /^sha256:[0-9a-f]{64}$/);
  assert.equal(run.sessionId, session);
  assert.equal(run.iterations, 2);
  assert.equal(run.eventsSummary.toolCalls, 1);
  assert.ok(run.usage.inputTokens > 0, "no input tokens counted");
  assert.deepEqual(run.labels, labels);
  assert.ok(Date.parse(run.createTime) <= Date.parse(run.endTime), `createTime ${run.createTime} is after endTime ${run.endTime}`);
  assert.match(run.duration, /^\d+(\.\d+)?s$/);
}

await check("ValidateAgent: a valid agent", async () => {
  const result = await api.POST("/v1/agents/validate", { body: { agent: calculatorSource.inline } });
  const body = expectAnswer("ValidateAgent", result, 200);
  assert.equal(body.valid, true, JSON.stringify(body.diagnostics));
  assert.deepEqual(body.diagnostics, []);
  assert.equal(body.ref.name, "calculator_agent");
  assert.equal(body.ref.version, "1.0.0");
});

await check("ValidateAgent: an invalid agent gets every diagnostic", async () => {
  const result = await api.POST("/v1/agents/validate", { body: { agent: { content: "name: incomplete\n", format: "AGENT_FORMAT_YAML" } } });
  const body = expectAnswer("ValidateAgent", result, 200);
  assert.equal(body.valid, false);
  const fields = body.diagnostics.filter((/** @type {any} */ d) => d.severity === "SEVERITY_ERROR").map((/** @type {any} */ d) => d.fieldPath);
  assert.ok(fields.includes("version") && fields.includes("llm"), `errors of ${fields.join(", ")}, not of version and llm`);
  assert.equal(body.ref, undefined, "an invalid agent has a ref");
});

await check("ValidateAgent: no agent is INVALID_ARGUMENT (400)", async () => {
  expectError("ValidateAgent", await api.POST("/v1/agents/validate", { body: {} }), 400, 3, "agent");
});

await check("Execute: runs the agent to its answer", async () => {
  const result = await api.POST("/v1/agents/execute", { body: { agent: calculatorSource, input: "What is (17 + 25) * 2?", sessionId: session, labels, runId: executeRunId } });
  const run = expectAnswer("Execute", result, 200).run;
  assert.equal(run.runId, executeRunId);
  assert.equal(run.answer, answer);
  assert.equal(run.input, "What is (17 + 25) * 2?");
  assert.equal(run.ledger.length, 2, "a ledger entry per model call");
  expectCalculatorRun(run);
});

await check("Execute: the same run_id again gets that run, not a second", async () => {
  const result = await api.POST("/v1/agents/execute", { body: { agent: calculatorSource, input: "What is (17 + 25) * 2?", sessionId: session, labels, runId: executeRunId } });
  const run = expectAnswer("Execute", result, 200).run;
  assert.equal(run.runId, executeRunId);
  assert.equal(run.answer, answer);
});

await check("Execute: the run_id of another request is ALREADY_EXISTS (409)", async () => {
  const result = await api.POST("/v1/agents/execute", { body: { agent: calculatorSource, input: "Another input.", sessionId: session, labels, runId: executeRunId } });
  expectError("Execute", result, 409, 6);
});

await check("Execute: no agent is INVALID_ARGUMENT (400)", async () => {
  expectError("Execute", await api.POST("/v1/agents/execute", { body: { input: "Hello." } }), 400, 3, "agent");
});

/**
 * The events of one ExecuteStream call, read line by line as they come.
 * @param {Schemas["ExecuteStreamRequest"]} body
 */
async function streamedEvents(body) {
  const result = await api.POST("/v1/agents/execute:stream", { body, parseAs: "stream" });
  assert.equal(result.response.status, 200, `ExecuteStream answered ${result.response.status}: ${JSON.stringify(result.error)}`);
  assert.ok(result.data, "ExecuteStream answered no body");
  const events = [];
  for await (const message of messages(result.data)) {
    events.push(message.event);
  }
  return events;
}

/** How many events the first stream of the run sent: the repeated stream's one event carries the last number. */
let streamedCount = 0;

await check("ExecuteStream: streams the run's events, numbered, to run_completed", async () => {
  const events = await streamedEvents({ agent: calculatorSource, input: "What is (17 + 25) * 2?", sessionId: session, labels, runId: streamRunId });
  assert.ok(events.length > 0, "no events");
  assert.deepEqual(events.map((e) => e.sequence), events.map((_, i) => i + 1), "events are not numbered 1, 2, 3, …");
  assert.ok(events.every((e) => e.runId === streamRunId), "an event of another run");
  assert.equal(events[0].runStarted?.agent?.name, "calculator_agent", `the first event is not run_started: ${JSON.stringify(events[0])}`);
  const last = events[events.length - 1];
  assert.equal(last.runCompleted?.answer, answer, `the last event is not run_completed: ${JSON.stringify(last)}`);
  const toolCall = events.find((e) => e.toolCall)?.toolCall;
  assert.equal(toolCall?.name, "calculator");
  assert.equal(events.find((e) => e.toolResult)?.toolResult.content, "84");
  assert.equal(events.find((e) => e.toolResult)?.toolResult.toolCallId, toolCall?.id);
  const text = events.filter((e) => e.textDelta).map((e) => e.textDelta.text).join("");
  assert.ok(text.endsWith(answer), `the text deltas do not end with the answer: ${text}`);
  streamedCount = events.length;
});

await check("ExecuteStream: the same run_id again gets how the run ended", async () => {
  const events = await streamedEvents({ agent: calculatorSource, input: "What is (17 + 25) * 2?", sessionId: session, labels, runId: streamRunId });
  assert.equal(events.length, 1, `${events.length} events, not the last one only`);
  assert.equal(events[0].runId, streamRunId);
  assert.equal(Number(events[0].sequence), streamedCount, "the repeated last event is not numbered as it was");
  assert.ok(events[0].time, "the repeated last event has no time");
  assert.equal(events[0].runCompleted?.answer, answer);
});

await check("ExecuteStream: no agent is INVALID_ARGUMENT (400) before the stream starts", async () => {
  const result = await api.POST("/v1/agents/execute:stream", { body: { input: "Hello." }, parseAs: "stream" });
  expectError("ExecuteStream", result, 400, 3, "agent");
});

await check("GetRun: the whole record of each run", async () => {
  for (const runId of [executeRunId, streamRunId]) {
    const run = expectAnswer("GetRun", await api.GET("/v1/agents/{runId}/status", { params: { path: { runId } } }), 200).run;
    assert.equal(run.runId, runId);
    assert.equal(run.answer, answer);
    assert.equal(run.input, "What is (17 + 25) * 2?");
    assert.equal(run.ledger.length, 2);
    assert.equal(run.cancelRequested, false);
    expectCalculatorRun(run);
  }
});

await check("GetRun: an unknown run is NOT_FOUND (404)", async () => {
  expectError("GetRun", await api.GET("/v1/agents/{runId}/status", { params: { path: { runId: `${session}-unknown` } } }), 404, 5);
});

await check("ListRuns: the basic view, newest first, a page at a time", async () => {
  const first = expectAnswer("ListRuns", await api.GET("/v1/runs", { params: { query: { sessionId: session, pageSize: 1 } } }), 200);
  assert.deepEqual(first.runs.map((/** @type {any} */ r) => r.runId), [streamRunId], "the first page is not the newest run");
  assert.ok(first.nextPageToken, "no token for the second page");
  const second = expectAnswer("ListRuns", await api.GET("/v1/runs", { params: { query: { sessionId: session, pageSize: 1, pageToken: first.nextPageToken } } }), 200);
  assert.deepEqual(second.runs.map((/** @type {any} */ r) => r.runId), [executeRunId], "the second page is not the older run");
  if (second.nextPageToken) {
    const third = expectAnswer("ListRuns", await api.GET("/v1/runs", { params: { query: { sessionId: session, pageSize: 1, pageToken: second.nextPageToken } } }), 200);
    assert.deepEqual(third.runs, [], "a third run in a session of two");
    assert.equal(third.nextPageToken, "");
  }
  for (const run of [...first.runs, ...second.runs]) {
    assert.equal(run.input, "", "the basic view has the input");
    assert.equal(run.answer, "", "the basic view has the answer");
    assert.deepEqual(run.ledger, [], "the basic view has the ledger");
    expectCalculatorRun(run);
  }
});

await check("ListRuns: the full view and the filters", async () => {
  const full = expectAnswer("ListRuns", await api.GET("/v1/runs", { params: { query: { sessionId: session, view: "RUN_VIEW_FULL", agentName: "calculator_agent", status: "RUN_STATUS_COMPLETED" } } }), 200);
  assert.deepEqual(full.runs.map((/** @type {any} */ r) => r.runId), [streamRunId, executeRunId]);
  for (const run of full.runs) {
    assert.equal(run.answer, answer, "the full view lacks the answer");
    assert.equal(run.ledger.length, 2, "the full view lacks the ledger");
  }
  const failedRuns = expectAnswer("ListRuns", await api.GET("/v1/runs", { params: { query: { sessionId: session, status: "RUN_STATUS_FAILED" } } }), 200);
  assert.deepEqual(failedRuns.runs, [], "failed runs in a session of completed ones");
  const otherAgent = expectAnswer("ListRuns", await api.GET("/v1/runs", { params: { query: { sessionId: session, agentName: "no_such_agent" } } }), 200);
  assert.deepEqual(otherAgent.runs, [], "runs of another agent");
});

await check("ListRuns: a page size out of range is INVALID_ARGUMENT (400)", async () => {
  expectError("ListRuns", await api.GET("/v1/runs", { params: { query: { pageSize: 1001 } } }), 400, 3, "page_size");
  expectError("ListRuns", await api.GET("/v1/runs", { params: { query: { pageSize: 11, view: "RUN_VIEW_FULL" } } }), 400, 3, "page_size");
});

await check("GetUsage: the day and the month of the caller's tenant", async () => {
  const usage = expectAnswer("GetUsage", await api.GET("/v1/usage"), 200);
  assert.equal(typeof usage.tenant, "string");
  assert.deepEqual(usage.periods.map((/** @type {any} */ p) => p.period), ["day", "month"]);
  for (const period of usage.periods) {
    assert.ok(Date.parse(period.startTime) < Date.parse(period.endTime), "a period ends after it starts");
    assert.ok(Number(period.tokens ?? 0) > 0, "the runs above spent tokens");
  }
});

await check("ListAudit: the calls above, chained by hash", async () => {
  const audit = expectAnswer("ListAudit", await api.GET("/v1/audit", { params: { query: { pageSize: 1000 } } }), 200);
  assert.ok(audit.entries.length > 0, "no audit entries");
  for (const [i, entry] of audit.entries.entries()) {
    assert.equal(Number(entry.sequence), i + 1, "the entries are numbered without gaps");
    assert.match(entry.hash, /^[0-9a-f]{64}$/);
    assert.equal(entry.previousHash ?? "", i === 0 ? "" : audit.entries[i - 1].hash, "each entry names the hash of the one before");
  }
  assert.ok(audit.entries.some((/** @type {any} */ e) => e.action === "Execute" && e.outcome === "OK"), "the runs above are not in the audit log");
});

await check("CancelRun: cancelling an ended run is a no-op", async () => {
  const result = await api.POST("/v1/agents/{runId}/cancel", { params: { path: { runId: executeRunId } }, body: { reason: "too late" } });
  const run = expectAnswer("CancelRun", result, 200).run;
  assert.equal(run.runId, executeRunId);
  assert.equal(run.status, "RUN_STATUS_COMPLETED");
  assert.equal(run.cancelRequested, false);
  const after = expectAnswer("GetRun", await api.GET("/v1/agents/{runId}/status", { params: { path: { runId: executeRunId } } }), 200).run;
  assert.equal(after.status, "RUN_STATUS_COMPLETED");
  assert.equal(after.cancelReason, "");
});

await check("CancelRun: an unknown run is NOT_FOUND (404)", async () => {
  const result = await api.POST("/v1/agents/{runId}/cancel", { params: { path: { runId: `${session}-unknown` } }, body: {} });
  expectError("CancelRun", result, 404, 5);
});

await check("CancelRun: a run in flight stops, cancelled", async () => {
  const runId = `${session}-cancel`;
  const result = await api.POST("/v1/agents/execute:stream", {
    body: { agent: waiterSource, input: "Wait.", sessionId: `${session}-waiter`, runId },
    parseAs: "stream",
  });
  if (result.response.status === 403) {
    expectError("ExecuteStream", result, 403, 7);
    return "the server runs no shell tool for an inline agent (Namra__Orchestrator__TrustInlineAgents is off)";
  }
  assert.equal(result.response.status, 200, `ExecuteStream answered ${result.response.status}: ${JSON.stringify(result.error)}`);
  assert.ok(result.data, "ExecuteStream answered no body");
  const events = messages(result.data);
  // Cancel once the tool is running, so there is something in flight to stop.
  for (let next = await events.next(); !next.done; next = await events.next()) {
    if (next.value.event.toolCall) {
      break;
    }
    assert.ok(!next.value.event.runCompleted && !next.value.event.runFailed, `the run ended before its tool call: ${JSON.stringify(next.value)}`);
  }
  const cancelled = await api.POST("/v1/agents/{runId}/cancel", { params: { path: { runId } }, body: { reason: "the test is done" } });
  const run = expectAnswer("CancelRun", cancelled, 200).run;
  assert.equal(run.runId, runId);
  assert.equal(run.status, "RUN_STATUS_RUNNING", "CancelRun's record of a run in flight");
  assert.equal(run.cancelRequested, true, "CancelRun's record has no cancel_requested");
  assert.equal(run.cancelReason, "the test is done", "CancelRun's record lacks the reason");
  let last;
  for await (const message of events) {
    last = message.event;
  }
  assert.equal(last?.runFailed?.status, "RUN_STATUS_CANCELLED", `the stream did not end cancelled: ${JSON.stringify(last)}`);
  const after = expectAnswer("GetRun", await api.GET("/v1/agents/{runId}/status", { params: { path: { runId } } }), 200).run;
  assert.equal(after.status, "RUN_STATUS_CANCELLED", "GetRun after the cancellation");
  assert.equal(after.error?.message, "Cancelled: the test is done", "GetRun after the cancellation: the run's error lacks the reason");
  assert.equal(after.cancelReason, "the test is done", "GetRun after the cancellation: the record lacks the reason");
});

// An agent whose calculator needs a person's approval: the run waits, and a decision over REST resumes it.
const guarded = `name: openapi_client_guarded
version: 1.0.0
llm:
  provider: scripted
  model: scripted
  script:
    - text: "Paying."
      tool_calls:
        - name: calculator
          arguments: { expression: "2 + 2" }
    - text: "Done."
tools:
  - name: calculator
    type: builtin.calculator
    approval: always
`;
/** @type {Schemas["AgentSource"]} */
const guardedSource = { inline: { content: guarded, format: "AGENT_FORMAT_YAML" } };

/** A run of the guarded agent, waiting for its call to be decided. @param {string} runId */
async function waitingRun(runId) {
  const run = expectAnswer("Execute", await api.POST("/v1/agents/execute", { body: { agent: guardedSource, input: "Pay.", runId } }), 200).run;
  assert.equal(run.status, "RUN_STATUS_AWAITING_APPROVAL", `the run did not wait: ${JSON.stringify(run)}`);
  assert.equal(run.approvals?.length, 1);
  assert.equal(run.approvals[0].state, "APPROVAL_STATE_PENDING");
  assert.equal(run.approvals[0].toolCall.name, "calculator");
  return run;
}

/** The run once it has ended, read with GetRun. @param {string} runId */
async function endedRun(runId) {
  for (const until = Date.now() + 20_000; Date.now() < until; await new Promise((resolve) => setTimeout(resolve, 100))) {
    const run = expectAnswer("GetRun", await api.GET("/v1/agents/{runId}/status", { params: { path: { runId } } }), 200).run;
    if (run.status !== "RUN_STATUS_RUNNING" && run.status !== "RUN_STATUS_AWAITING_APPROVAL") {
      return run;
    }
  }
  throw new Error(`run ${runId} did not end within 20 s of the decision`);
}

await check("ApproveToolCalls: the approved call runs, and the run completes on a replica that resumes it", async () => {
  const runId = `${session}-approved`;
  const waiting = await waitingRun(runId);
  const result = await api.POST("/v1/runs/{runId}/approvals", {
    params: { path: { runId } },
    body: { toolCallIds: [waiting.approvals[0].toolCall.id], decidedBy: "openapi-client", reason: "checked" },
  });
  const decided = expectAnswer("ApproveToolCalls", result, 200).run;
  assert.equal(decided.approvals[0].state, "APPROVAL_STATE_APPROVED");
  // With keys, the record names the key that decided too.
  assert.match(decided.approvals[0].decidedBy, /^openapi-client( \(key [^)]+\))?$/);
  const ended = await endedRun(runId);
  assert.equal(ended.status, "RUN_STATUS_COMPLETED");
  assert.equal(ended.answer, "Done.");
  assert.equal(ended.eventsSummary.toolCalls, 1);
});

await check("ApproveToolCalls: a run not waiting is FAILED_PRECONDITION (400)", async () => {
  expectError("ApproveToolCalls", await api.POST("/v1/runs/{runId}/approvals", { params: { path: { runId: executeRunId } }, body: {} }), 400, 9);
});

await check("DenyToolCalls: the denied call never runs, and the model reads why", async () => {
  const runId = `${session}-denied`;
  await waitingRun(runId);
  const result = await api.POST("/v1/runs/{runId}/denials", { params: { path: { runId } }, body: { reason: "not now", decidedBy: "openapi-client" } });
  const decided = expectAnswer("DenyToolCalls", result, 200).run;
  assert.equal(decided.approvals[0].state, "APPROVAL_STATE_DENIED");
  const ended = await endedRun(runId);
  assert.equal(ended.status, "RUN_STATUS_COMPLETED");
  assert.equal(ended.eventsSummary.toolCalls, 0);
});

await check("API keys: a call without one is UNAUTHENTICATED (401); x-api-key carries one as well as a bearer token", async () => {
  if (!apiKey) {
    return "NAMRA_API_KEY is not set";
  }
  expectError("ListRuns", await client({}).GET("/v1/runs", { params: { query: { pageSize: 1 } } }), 401, 16);
  expectAnswer("ListRuns", await client({ "x-api-key": apiKey }).GET("/v1/runs", { params: { query: { pageSize: 1 } } }), 200);
});

await check("every operation of the document was called", async () => {
  const inDocument = new Map();
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const [method, candidate] of Object.entries(/** @type {Record<string, any>} */ (methods))) {
      inDocument.set(`${method} ${path}`, candidate.operationId);
    }
  }
  const notCalled = [...inDocument].filter(([key]) => !called.has(key)).map(([key, id]) => `${id} (${key})`);
  const notInDocument = [...called].filter((key) => !inDocument.has(key));
  assert.ok(notCalled.length === 0, `operations this test never calls; add a call to run-every-method.mjs: ${notCalled.join(", ")}`);
  assert.ok(notInDocument.length === 0, `calls to operations the document does not have: ${notInDocument.join(", ")}`);
  console.log(`     ${inDocument.size} operations: ${[...inDocument.values()].sort().join(", ")}`);
});

console.log(`openapi-client: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exitCode = failed > 0 ? 1 : 0;
