// Toolbus served to the official MCP TypeScript SDK client (the client most
// desktop and web MCP hosts are built on), over Streamable HTTP.
//
// It starts `toolbus demo` (every service, embedded NATS, the demo CRM and
// the demo catalog) on free loopback ports and, with the pinned @modelcontextprotocol/sdk:
// initializes, lists the tools, calls them from several sessions at once
// (every answer must carry its own call's id), gets a tool error for
// invalid arguments, a JSON-RPC error for an unknown tool, and ends the
// sessions. mcp-front answers these tools/call requests on its fast path
// (services/mcp-front/directcall.go), so this also checks that path with a
// client that is not the Go SDK.
//
// Run: test/mcp-typescript/setup.sh && TOOLBUS_BIN=bin/toolbus node --test test/mcp-typescript/client.test.mjs
// (SHOW_LOG=1 prints toolbus's log and how long it took to stop, even on success.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const bin = path.resolve(root, process.env.TOOLBUS_BIN || "bin/toolbus");

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, fn, timeoutMs = 60000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try { if (await fn()) return; } catch (e) { last = e; }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? ": " + last.message : ""}`);
}

async function connect(url) {
  const client = new Client({ name: "toolbus-ts-interop", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  return { client, transport };
}

test("the MCP TypeScript SDK client uses Toolbus", async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "toolbus-ts-"));
  const p = { http: await freePort(), crm: await freePort(), gql: await freePort() };
  // The demo catalog, pointed at this run's ports (it names 8081 and 8082).
  const demo = path.join(root, "examples/demo");
  const catalog = path.join(tmp, "catalog.yaml");
  fs.writeFileSync(catalog, fs.readFileSync(path.join(demo, "catalog.yaml"), "utf8")
    .replaceAll("127.0.0.1:8081", `127.0.0.1:${p.crm}`).replaceAll("127.0.0.1:8082", `127.0.0.1:${p.gql}`));
  fs.copyFileSync(path.join(demo, "crm.graphql"), path.join(tmp, "crm.graphql"));
  const logFile = path.join(tmp, "toolbus.log");
  const log = fs.openSync(logFile, "w");
  const env = { ...process.env, OTEL_SDK_DISABLED: "true" };
  delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
  delete env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const proc = spawn(bin, ["demo", "--catalog", catalog, "--http", `127.0.0.1:${p.http}`, "--grpc", "none", "--nats-listen", "none",
    "--upstream", `127.0.0.1:${p.crm}`, "--graphql-upstream", `127.0.0.1:${p.gql}`,
    "--data", path.join(tmp, "data")], { env, stdio: ["ignore", log, log] });
  const exited = new Promise((resolve) => proc.on("exit", resolve));
  let passed = false;
  t.after(async () => {
    const stopAt = Date.now();
    proc.kill("SIGTERM");
    let timer;
    const code = await Promise.race([exited, new Promise((r) => { timer = setTimeout(() => r("timeout"), 15000); })]);
    clearTimeout(timer);
    if (code === "timeout") proc.kill("SIGKILL");
    if (process.env.SHOW_LOG) console.error(`toolbus exited (${code}) ${Date.now() - stopAt} ms after SIGTERM`);
    fs.closeSync(log);
    if (!passed || process.env.SHOW_LOG) process.stderr.write("--- toolbus log (tail) ---\n" + fs.readFileSync(logFile, "utf8").slice(-6000));
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const origin = `http://127.0.0.1:${p.http}`;
  await until("toolbus ready", async () => (await fetch(`${origin}/readyz`)).ok);

  const { client, transport } = await connect(`${origin}/mcp`);
  assert.equal(client.getServerVersion()?.name, "toolbus");
  assert.ok(transport.sessionId, "a stateful session");
  assert.ok(client.getServerCapabilities()?.tools, "tools capability");

  const { tools } = await client.listTools();
  const names = tools.map((tl) => tl.name);
  for (const want of ["lookup", "get_customer", "gql_get_customer", "customer_dashboard"]) {
    assert.ok(names.includes(want), `tools/list lacks ${want}: ${names.join(", ")}`);
  }
  const getCustomer = tools.find((tl) => tl.name === "get_customer");
  assert.equal(getCustomer.inputSchema.properties.id.type, "integer");

  // A REST tool with structured output.
  const one = await client.callTool({ name: "get_customer", arguments: { id: 1 } });
  assert.equal(one.isError ?? false, false, JSON.stringify(one));
  assert.equal(one.structuredContent.id, 1);
  assert.equal(typeof one.structuredContent.name, "string");
  assert.equal(JSON.parse(one.content[0].text).id, 1);

  // Several sessions at once: every answer carries its own call's id.
  const sessions = await Promise.all(Array.from({ length: 6 }, () => connect(`${origin}/mcp`)));
  const wrong = [];
  await Promise.all(sessions.map(async ({ client: c }, s) => {
    for (let i = 0; i < 25; i++) {
      const id = `ts-${s}-${i}`;
      const res = await c.callTool({ name: "lookup", arguments: { id } });
      if (res.isError || res.structuredContent?.id !== id) wrong.push({ id, res });
    }
  }));
  assert.deepEqual(wrong, [], "answers that are not their call's");

  // Invalid arguments: a tool error the model can act on, naming the field.
  const bad = await client.callTool({ name: "get_customer", arguments: { id: "one" } });
  assert.equal(bad.isError, true);
  assert.match(bad.content[0].text, /id/);

  // An unknown tool: a JSON-RPC error.
  await assert.rejects(client.callTool({ name: "no_such_tool", arguments: {} }), /no_such_tool/);

  for (const s of [{ client, transport }, ...sessions]) {
    await s.transport.terminateSession();
    await s.client.close();
  }
  passed = true;
});
