// End-to-end test of the operator console in a real headless Chromium
// (Debian's chromium, driven by playwright-core; nothing is downloaded).
//
// It starts `toolbus demo` on free loopback ports with a catalog that has
// an admin API key, a webhook source and a projection; signs in; watches a
// tool call (made with `toolbus call`) appear live; opens its details;
// makes a call fail into a dead letter, replays it from the console and
// sees it succeed; sends a signed webhook and browses it and the entity it
// projected into. Screenshots go to docs/console/ and are checked to be
// real PNGs. Every request the browser makes must stay on the console's
// origin, and no page may log an error (a CSP violation would).
//
// Run: console/e2e/setup.sh && TOOLBUS_BIN=bin/toolbus node --test console/e2e/console.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const bin = path.resolve(root, process.env.TOOLBUS_BIN || "bin/toolbus");
const shots = path.resolve(root, process.env.SCREENSHOT_DIR || "docs/console");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const run = promisify(execFile);

const chromiumFlags = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

const sha256 = (s) => createHash("sha256").update(s).digest("hex");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, fn, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try { if (await fn()) return; } catch (e) { last = e; }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? ": " + last.message : ""}`);
}

function catalogFor(p, adminKey, appKey) {
  return `version: 1
auth:
  resource: http://127.0.0.1:${p.http}/mcp
  api_keys:
    - name: ops
      sha256: ${sha256(adminKey)}
      scopes: [toolbus.admin]
    - name: app
      sha256: ${sha256(appKey)}
      scopes: [tools.read, tools.write]
upstreams:
  crm:
    kind: rest
    base_url: http://127.0.0.1:${p.crm}/api/v1
    timeout: 10s
    concurrency: 16
    idempotency_header: Idempotency-Key
    retry: {max_attempts: 2, initial_backoff: 10ms}
tools:
  - name: get_customer
    title: Get customer
    description: Fetch one customer by id.
    upstream: crm
    method: GET
    path: /customers/{id}
    input_schema:
      type: object
      properties:
        id: {type: integer, minimum: 1}
      required: [id]
  - name: list_customers
    title: List customers
    description: List customers.
    upstream: crm
    method: GET
    path: /customers
sources:
  stripe:
    scheme: stripe
    secrets: ["\${env:E2E_STRIPE_SECRET}"]
projections:
  payments:
    sources: [stripe]
    events: ["payment_intent.*"]
    key: data.object.customer
    fields:
      payment_intent: data.object.id
      amount: data.object.amount
      currency: data.object.currency
      status: data.object.status
    version: created
`;
}

async function assertPNG(file) {
  const st = fs.statSync(file);
  assert.ok(st.size > 2000, `${file} is only ${st.size} bytes`);
  const sig = Buffer.alloc(8);
  const fd = fs.openSync(file, "r");
  fs.readSync(fd, sig, 0, 8, 0);
  fs.closeSync(fd);
  assert.deepEqual([...sig], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${file} is not a PNG`);
}

test("operator console end to end in headless Chromium", { timeout: 240_000 }, async (t) => {
  assert.ok(fs.existsSync(bin), `${bin} not built (make build)`);
  assert.ok(fs.existsSync(chromiumPath), `${chromiumPath} missing (console/e2e/setup.sh installs it)`);
  fs.mkdirSync(shots, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "toolbus-console-e2e-"));
  // Clean-ups run in reverse order of registration, like defers.
  const cleanups = [];
  t.after(async () => {
    for (const f of cleanups.reverse()) await f();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const p = { http: await freePort(), grpc: await freePort(), nats: await freePort(), crm: await freePort(), gql: await freePort() };
  const adminKey = "ops-" + randomBytes(24).toString("hex");
  const appKey = "app-" + randomBytes(24).toString("hex");
  const stripeSecret = "whsec_" + randomBytes(16).toString("hex");
  const catalog = path.join(tmp, "catalog.yaml");
  fs.writeFileSync(catalog, catalogFor(p, adminKey, appKey));
  const env = { ...process.env, E2E_STRIPE_SECRET: stripeSecret, OTEL_SDK_DISABLED: "true" };
  delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
  delete env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const origin = `http://127.0.0.1:${p.http}`;
  let failed = true; // until the last step passed

  // The system under test: every service, embedded NATS, the demo CRM.
  const logFile = path.join(tmp, "toolbus.log");
  const log = fs.openSync(logFile, "w");
  const proc = spawn(bin, ["demo", "--catalog", catalog,
    "--http", `127.0.0.1:${p.http}`, "--grpc", `127.0.0.1:${p.grpc}`, "--nats-listen", `127.0.0.1:${p.nats}`,
    "--upstream", `127.0.0.1:${p.crm}`, "--graphql-upstream", `127.0.0.1:${p.gql}`,
    "--data", path.join(tmp, "data"), "--log-level", "info"], { env, stdio: ["ignore", log, log] });
  const exited = new Promise((resolve) => proc.on("exit", resolve));
  cleanups.push(async () => {
    proc.kill("SIGTERM");
    const code = await Promise.race([exited, sleep(15000).then(() => "timeout")]);
    if (code === "timeout") proc.kill("SIGKILL");
    fs.closeSync(log);
    if (failed) process.stderr.write("--- toolbus log (tail) ---\n" + fs.readFileSync(logFile, "utf8").slice(-8000));
  });
  await until("toolbus ready", async () => (await fetch(`${origin}/readyz`)).ok, 60000);

  const toolbus = (args) => run(bin, args, { env, timeout: 30000 });
  const callTool = (name, args) =>
    toolbus(["call", "--url", `${origin}/mcp`, "--token", appKey, name, JSON.stringify(args)]).catch((e) => e);

  // A fresh profile, nothing but loopback to talk to.
  const profile = path.join(tmp, "chromium-profile");
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath, headless: true, args: chromiumFlags, viewport: { width: 1360, height: 860 },
  });
  cleanups.push(() => context.close());
  const requests = [];
  context.on("request", (r) => requests.push(r.url()));
  const page = context.pages()[0] || (await context.newPage());
  const pageErrors = [];
  page.on("console", (m) => { if (m.type() === "error") pageErrors.push(m.text()); });
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.setDefaultTimeout(15000);

  await t.test("sign in", async () => {
    await page.goto(`${origin}/console/`);
    assert.match(page.url(), /\/console\/login\?next=/);
    await page.getByLabel("API key or access token").fill("not-a-key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("This credential was not accepted.").waitFor();
    // The refused sign-in answers 401, which Chromium logs; that one is expected.
    assert.deepEqual(pageErrors, ["Failed to load resource: the server responded with a status of 401 (Unauthorized)"]);
    pageErrors.length = 0;
    await page.screenshot({ path: path.join(shots, "login.png") });
    await page.getByLabel("API key or access token").fill(adminKey);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${origin}/console/calls`);
    await page.getByText("apikey:ops").waitFor();
  });

  let callHref;
  await t.test("a tool call appears live and opens", async () => {
    await page.locator("#live-status.on").waitFor();
    await page.evaluate(() => { window.__stillHere = true; });
    const res = await callTool("get_customer", { id: 7 });
    assert.ok(!(res instanceof Error), `toolbus call failed: ${res.message}`);
    const row = page.locator('#calls-table tbody tr[data-tool="get_customer"][data-outcome="ok"]');
    await row.first().waitFor();
    assert.equal(await page.evaluate(() => window.__stillHere), true, "the page reloaded: the call did not arrive live");
    assert.match(await row.first().innerText(), /apikey:app/);
    await callTool("list_customers", {});
    await page.locator('#calls-table tbody tr[data-tool="list_customers"]').first().waitFor();
    await page.screenshot({ path: path.join(shots, "live-calls.png") });
    callHref = await row.first().getByRole("link", { name: "get_customer" }).getAttribute("href");
    await row.first().getByRole("link", { name: "get_customer" }).click();
    await page.waitForURL(`${origin}${callHref}`);
    assert.equal(await page.locator("#call-outcome").innerText(), "ok");
    assert.equal(await page.locator("#call-tool").innerText(), "get_customer");
    await page.screenshot({ path: path.join(shots, "call.png") });
  });

  await t.test("filtering keeps only matching calls", async () => {
    await page.goto(`${origin}/console/calls`);
    await page.locator("#live-status.on").waitFor();
    await page.getByLabel("Tool").selectOption("list_customers");
    assert.equal(await page.locator('#calls-table tbody tr[data-tool="get_customer"]:visible').count(), 0);
    assert.ok((await page.locator('#calls-table tbody tr[data-tool="list_customers"]:visible').count()) >= 1);
    await page.getByLabel("Tool").selectOption("");
  });

  await t.test("a dead letter is replayed and succeeds", async () => {
    // The upstream fails both attempts of the next call: it is dead-lettered.
    const fault = await fetch(`http://127.0.0.1:${p.crm}/_faults`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ method: "GET", path: "/api/v1/customers/3", action: "error", status: 503, times: 2 }),
    });
    assert.equal(fault.status, 201, await fault.text());
    await callTool("get_customer", { id: 3 });
    await page.locator('#calls-table tbody tr[data-tool="get_customer"][data-outcome="upstream_failed"]').first().waitFor();

    await page.getByRole("link", { name: "Dead letters" }).click();
    await until("the dead letter to be listed", async () => {
      if (await page.locator("#dlq-table tbody tr").count() > 0) return true;
      await page.reload();
      return false;
    });
    await page.locator("#dlq-table tbody tr a").first().click();
    assert.match(await page.locator("#dl-reason").innerText(), /retries exhausted/);
    await page.screenshot({ path: path.join(shots, "dead-letter.png"), fullPage: true });
    await page.getByRole("button", { name: "Replay" }).click();
    await page.getByText("Replay succeeded").waitFor();
    await page.screenshot({ path: path.join(shots, "replay.png"), fullPage: true });
    await page.getByRole("link", { name: "Back to dead letters" }).click();
    await page.locator("#dlq-empty").waitFor();
  });

  await t.test("a webhook and the projection it feeds", async () => {
    const payload = path.join(tmp, "payment.json");
    fs.writeFileSync(payload, JSON.stringify({
      id: "evt_e2e_1", object: "event", type: "payment_intent.succeeded", created: 1767225600,
      data: { object: { id: "pi_e2e_1", customer: "cus_e2e", amount: 4200, currency: "eur", status: "succeeded", client_secret: "pi_e2e_1_secret_hidden" } },
    }));
    const sent = await toolbus(["webhooks", "send", "--catalog", catalog, "--source", "stripe", "--file", payload, "--url", origin]);
    assert.match(sent.stdout, /202/);

    await page.getByRole("link", { name: "Webhooks" }).click();
    await page.locator("#events-table").getByText("evt_e2e_1").waitFor();
    await page.locator("#deliveries-table").getByText("stored").first().waitFor();
    await page.screenshot({ path: path.join(shots, "webhooks.png"), fullPage: true });
    await page.locator("#events-table tbody tr a").first().click();
    const body = await page.locator("#event-body").innerText();
    assert.match(body, /cus_e2e/);
    assert.doesNotMatch(body, /secret_hidden/);
    await page.screenshot({ path: path.join(shots, "webhook-event.png"), fullPage: true });

    await page.getByRole("link", { name: "State" }).click();
    await page.locator("#projections-table").getByRole("link", { name: "payments" }).click();
    await until("the entity to be projected", async () => {
      if (await page.getByRole("link", { name: "cus_e2e" }).count() > 0) return true;
      await page.reload();
      return false;
    });
    await page.getByRole("link", { name: "cus_e2e" }).click();
    assert.equal(await page.locator("#entity-key").innerText(), "cus_e2e");
    assert.match(await page.locator("#entity-value").innerText(), /4200/);
    assert.match(await page.locator("#history-table").innerText(), /payment_intent\.succeeded/);
    await page.screenshot({ path: path.join(shots, "state-entity.png"), fullPage: true });
  });

  await t.test("tools and upstreams", async () => {
    await page.getByRole("link", { name: "Tools & upstreams" }).click();
    await page.locator("#upstreams-table").getByText("crm").first().waitFor();
    assert.match(await page.locator("#tools-table").innerText(), /get_customer/);
    await page.screenshot({ path: path.join(shots, "tools.png"), fullPage: true });
  });

  await t.test("screenshots are real images", async () => {
    for (const f of ["login", "live-calls", "call", "dead-letter", "replay", "webhooks", "webhook-event", "state-entity", "tools"]) {
      await assertPNG(path.join(shots, f + ".png"));
    }
  });

  await t.test("the page never left its origin and logged no error", async () => {
    assert.ok(requests.length > 10, `only ${requests.length} requests recorded`);
    const outside = requests.filter((u) => !u.startsWith("data:") && new URL(u).origin !== origin);
    assert.deepEqual(outside, [], "requests outside the console's origin");
    assert.deepEqual(pageErrors, [], "errors logged by the page");
    failed = false;
  });
});
