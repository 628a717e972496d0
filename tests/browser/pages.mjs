// The admin page (GET /admin) and the demo page (GET /demo, the server runs with demo on) in
// headless Chromium against a real Switchboard server. Started by tests/src/binary/browser.rs
// after run.mjs:
//
//   SB_TOKENS='{"dana":"eyJ…",…}' node pages.mjs http://127.0.0.1:PORT API_KEY
//
// SB_TOKENS maps names to JWTs the server accepts: dana (pasted into the demo page), erin and
// frank (the connections the admin page lists), bob (whose presence the demo page watches).
// CHROMIUM: the browser (default /usr/bin/chromium). SWITCHBOARD_SCREENSHOTS=1: also write
// core/src/http/assets/admin.png and demo.png (the README's pictures) at a fixed viewport.
//
// Each case prints `ok - name` or `not ok - name` with what failed; the exit status is 0 when
// every case passed.

import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";

const [base, apiKey] = process.argv.slice(2);
if (!base || !apiKey) {
  console.error("usage: SB_TOKENS='{…}' node pages.mjs http://127.0.0.1:PORT API_KEY");
  process.exit(2);
}
const tokens = JSON.parse(process.env.SB_TOKENS || "{}");
const wsUrl = base.replace(/^http/, "ws") + "/ws";
const screenshots = ["1", "true"].includes(process.env.SWITCHBOARD_SCREENSHOTS ?? "");
const assets = new URL("../../core/src/http/assets/", import.meta.url);
const VIEWPORT = { width: 1280, height: 760, deviceScaleFactor: 1 };

async function api(method, path, body) {
  const response = await fetch(base + path, {
    method,
    headers: { Authorization: `apikey ${apiKey}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// ---- the browser: the two pages, and the test's own clients on an origin of their own ----

const app = createServer((_, res) => {
  res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
  res.end("<!doctype html><title>the test's clients</title>");
});
await new Promise((resolve) => app.listen(0, "127.0.0.1", resolve));
const appUrl = `http://127.0.0.1:${app.address().port}/`;

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--font-render-hinting=none"],
});
const pageErrors = [];
async function newPage(name) {
  const page = await browser.newPage();
  await page.setViewport(VIEWPORT);
  page.on("pageerror", (e) => pageErrors.push(`${name}: ${e}`));
  page.on("console", (m) => {
    // A 401 is what the wrong-key case asks for; anything else is worth showing.
    if (m.type() === "error" && !m.text().includes("401")) pageErrors.push(`${name}: ${m.text()}`);
  });
  return page;
}
const admin = await newPage("admin");
const demo = await newPage("demo");
const clients = await newPage("clients");

/**
 * Waits until `fn(...args)` is truthy in `page`; on timeout throws `what` and the page's text.
 * Polls with `evaluate` (not `waitForFunction`, whose in-page polling the pages' CSP forbids).
 */
async function until(page, what, fn, args = [], timeout = 10000) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    if (await page.evaluate(fn, ...args)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  const text = await page.evaluate(() => document.body?.innerText ?? "").catch(() => "?");
  throw new Error(`${what} (within ${timeout} ms); the page says:\n${text}`);
}

// Typing and clicking act on the tab in front (a background tab is not rendered, and
// puppeteer waits for a click's target to be in view).
async function fill(page, selector, value) {
  await page.bringToFront();
  await page.$eval(selector, (e) => (e.value = ""));
  await page.type(selector, value);
}

async function click(page, selector) {
  await page.bringToFront();
  await page.click(selector);
}

async function screenshot(page, name) {
  if (!screenshots) return;
  await page.bringToFront();
  const path = fileURLToPath(new URL(name, assets));
  await page.screenshot({ path, type: "png" });
  console.log(`# wrote ${path}`);
}

// ---- the cases ----

const cases = [];
const test = (name, fn) => cases.push({ name, fn });

test("the test's clients connect with the browser client (another origin)", async () => {
  await clients.goto(appUrl);
  await clients.evaluate(async (url) => {
    window.SB = await import(url);
    window.C = {};
    window.open_ = (name, wsUrl, token, options) => {
      const entry = { log: [], got: [] };
      entry.c = window.SB.connect(wsUrl, { token: () => token, ...options });
      for (const ev of ["open", "close"]) entry.c.on(ev, (d) => entry.log.push({ ev, ...d }));
      window.C[name] = entry;
      return new Promise((resolve) => entry.c.on("open", resolve));
    };
  }, base + "/client.js");
  await clients.evaluate(
    async (u, erin, frank) => {
      await window.open_("erin", u, erin, { device: "laptop-7", deviceName: "Erin's laptop" });
      await window.open_("frank", u, frank, { device: "phone-2" });
      const e = window.C.erin;
      await e.c.subscribe("orders.*", (m) => e.got.push(m)).ready;
      await e.c.subscribe("alerts", (m) => e.got.push(m)).ready;
      await window.C.frank.c.subscribe("orders.*", () => {}).ready;
    },
    wsUrl,
    tokens.erin,
    tokens.frank,
  );
});

test("the admin page loads without a key and shows an error for a wrong one", async () => {
  const response = await admin.goto(base + "/admin");
  check(response.status() === 200, `GET /admin: ${response.status()}`);
  const csp = response.headers()["content-security-policy"] ?? "";
  check(csp.includes("frame-ancestors 'none'"), `CSP: ${csp}`);
  const shown = await admin.evaluate(() => ({
    signin: !document.getElementById("signin").hidden,
    console: !document.getElementById("console").hidden,
  }));
  check(shown.signin && !shown.console, `asks for the key first: ${JSON.stringify(shown)}`);
  await fill(admin, "#key", "not-the-key");
  await click(admin, "#key-form button[type=submit]");
  await until(admin, "the wrong key is reported", () => {
    const error = document.getElementById("error");
    return !error.hidden && /refused/.test(error.textContent);
  });
  const after = await admin.evaluate(() => ({
    signin: !document.getElementById("signin").hidden,
    kept: sessionStorage.getItem("switchboard.apiKey"),
  }));
  check(after.signin && after.kept === null, `asks again, keeps no wrong key: ${JSON.stringify(after)}`);
});

test("with the right key: live counts, users, topics, and the connections the test opened", async () => {
  await fill(admin, "#key", apiKey);
  await click(admin, "#key-form button[type=submit]");
  await until(admin, "the table lists erin and frank", () => {
    const users = [...document.querySelectorAll("#connections tr")].map((tr) => tr.cells[0]?.textContent);
    return users.includes("erin") && users.includes("frank");
  });
  const kept = await admin.evaluate(() => sessionStorage.getItem("switchboard.apiKey"));
  check(kept === apiKey, "the key is kept in sessionStorage");
  const view = await admin.evaluate(() => {
    const erin = [...document.querySelectorAll("#connections tr")].find((tr) => tr.cells[0].textContent === "erin");
    return {
      conn: erin.dataset.conn,
      cells: [...erin.cells].map((td) => td.textContent.trim()),
      users: document.getElementById("users").textContent,
      topics: document.getElementById("topics").textContent,
      connections: document.querySelector('[data-count="connections"] b').textContent,
      errorHidden: document.getElementById("error").hidden,
    };
  });
  const presence = await api("GET", "/api/presence/erin");
  check(view.conn === presence.connections[0].connId, `the row's connection: ${view.conn}`);
  check(
    view.cells[1] === "laptop-7" && view.cells[2] === "127.0.0.1" && view.cells[4] === "alerts orders.*",
    `erin's row: ${JSON.stringify(view.cells)}`,
  );
  check(/erin/.test(view.users) && /frank/.test(view.users), `users online: ${view.users}`);
  check(/orders\.\*\s*×2/.test(view.topics) && /alerts\s*×1/.test(view.topics), `topics: ${view.topics}`);
  check(view.connections === "2" && view.errorHidden, `counts: ${JSON.stringify(view)}`);
});

test("the publish form delivers a message to a subscriber", async () => {
  await fill(admin, "#pub-topic", "orders.created");
  await fill(admin, "#pub-data", '{"order": 1042, "total": "19.90"}');
  await click(admin, "#publish-form button[type=submit]");
  await until(admin, "the page says where it went", () =>
    /delivered to 2/.test(document.getElementById("pub-result").textContent),
  );
  await until(clients, "erin gets the message", () => window.C.erin.got.some((m) => m.topic === "orders.created"));
  const m = await clients.evaluate(() => window.C.erin.got.find((m) => m.topic === "orders.created"));
  check(
    m.data.order === 1042 && m.data.total === "19.90" && m.metadata.senderId === "server",
    `the message: ${JSON.stringify(m)}`,
  );
  await screenshot(admin, "admin.png");
});

test("a row's disconnect button closes that connection (and only it)", async () => {
  const conn = (await api("GET", "/api/presence/erin")).connections[0].connId;
  await click(admin, `#connections tr[data-conn="${conn}"] button`);
  await until(clients, "erin's client is closed", () => window.C.erin.c.state === "closed");
  const close = await clients.evaluate(() => window.C.erin.log.find((e) => e.ev === "close"));
  check(
    close.code === 1008 && close.reason === "disconnected by an admin" && close.willReconnect === false,
    `the close: ${JSON.stringify(close)}`,
  );
  await until(admin, "the row is gone", () => {
    const users = [...document.querySelectorAll("#connections tr")].map((tr) => tr.cells[0]?.textContent);
    return !users.includes("erin") && users.includes("frank");
  });
  check((await clients.evaluate(() => window.C.frank.c.state)) === "open", "frank stays connected");
});

test("the demo page connects with a pasted token, subscribes, and shows a message published through the API", async () => {
  const response = await demo.goto(base + "/demo");
  check(response.status() === 200, `GET /demo: ${response.status()}`);
  await fill(demo, "#token", tokens.dana);
  await fill(demo, "#device", "demo-tab");
  await click(demo, "#connect");
  await until(demo, "the page is connected", () => document.getElementById("state").dataset.state === "open");
  const who = await demo.$eval("#who", (e) => e.textContent);
  check(who === "as dana", `who: ${who}`);
  await fill(demo, "#topic", "chat.lobby");
  await click(demo, "#subscribe");
  await until(demo, "the subscription is confirmed", () =>
    /subscribed to chat\.lobby/.test(document.getElementById("events").textContent),
  );
  const sent = await api("POST", "/api/publish", { topic: "chat.lobby", data: { text: "welcome, from the API" } });
  check(sent.delivered === 1, `POST /api/publish reached ${sent.delivered}`);
  await until(demo, "the message is shown", () =>
    [...document.querySelectorAll("#messages li")].some(
      (li) => li.dataset.topic === "chat.lobby" && /welcome, from the API/.test(li.textContent) && /from server/.test(li.textContent),
    ),
  );
  await fill(demo, "#pub-topic", "chat.lobby");
  await fill(demo, "#pub-data", "hi all");
  await click(demo, "#publish");
  await until(demo, "its own publish comes back", () =>
    [...document.querySelectorAll("#messages li")].some((li) => /from dana/.test(li.textContent) && /hi all/.test(li.textContent)),
  );
  const presence = await api("GET", "/api/presence/dana");
  check(presence.connections[0]?.deviceId === "demo-tab", `dana's device: ${JSON.stringify(presence)}`);
});

test("the demo page shows presence changes live", async () => {
  await fill(demo, "#watch", "bob");
  await click(demo, "#watch-button");
  await until(demo, "bob is offline", () => document.querySelector('#presence tr[data-user="bob"]')?.dataset.online === "false");
  await clients.evaluate((u, t) => window.open_("bob", u, t, {}), wsUrl, tokens.bob);
  await until(demo, "bob comes online", () => {
    const row = document.querySelector('#presence tr[data-user="bob"]');
    return row?.dataset.online === "true" && /online \(1\)/.test(row.textContent);
  });
  await fill(demo, "#watch", "frank");
  await click(demo, "#watch-button");
  await until(demo, "frank is online", () => document.querySelector('#presence tr[data-user="frank"]')?.dataset.online === "true");
  await screenshot(demo, "demo.png");
  await clients.evaluate(() => window.C.bob.c.close());
  await until(demo, "bob goes offline", () => document.querySelector('#presence tr[data-user="bob"]')?.dataset.online === "false");
});

// ---- run ----

let failed = 0;
const started = Date.now();
for (const { name, fn } of cases) {
  const t = Date.now();
  try {
    await fn();
    console.log(`ok - ${name} (${Date.now() - t} ms)`);
  } catch (e) {
    failed += 1;
    console.log(`not ok - ${name}\n  ${String(e && e.stack ? e.stack : e).replace(/\n/g, "\n  ")}`);
    break; // the cases build on each other
  }
}
if (pageErrors.length) {
  failed += 1;
  console.log(`page errors:\n  ${pageErrors.join("\n  ")}`);
}
console.log(`${failed ? "FAILED" : "passed"}: ${cases.length} cases, ${Date.now() - started} ms`);
await browser.close();
app.close();
process.exit(failed ? 1 : 0);
