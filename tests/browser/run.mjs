// The browser client (core/src/http/assets/client.js, served at /client.js) in headless
// Chromium against a real Switchboard server. Started by tests/src/binary/browser.rs:
//
//   SB_TOKENS='{"alice":"eyJ…",…}' node run.mjs http://127.0.0.1:PORT API_KEY
//
// SB_TOKENS maps names to JWTs the server accepts: alice, alice2 (alice again, another token),
// bob, carol. CHROMIUM: the browser (default /usr/bin/chromium).
//
// The server is restarted by the Rust side: this script prints `@@kill` or `@@start` on a line
// of its own and waits for `@@ok` on stdin. Each case prints `ok - name` or `not ok - name`
// with what failed; the exit status is 0 when every case passed.

import { createServer } from "node:http";
import { createInterface } from "node:readline";
import puppeteer from "puppeteer-core";

const [base, apiKey] = process.argv.slice(2);
if (!base || !apiKey) {
  console.error("usage: SB_TOKENS='{…}' node run.mjs http://127.0.0.1:PORT API_KEY");
  process.exit(2);
}
const tokens = JSON.parse(process.env.SB_TOKENS || "{}");
const wsUrl = base.replace(/^http/, "ws") + "/ws";

// ---- the Rust side, over stdin/stdout ----

const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function control(command) {
  console.log(`@@${command}`);
  const { value, done } = await stdinLines.next();
  if (done || value.trim() !== "@@ok")
    throw new Error(`the test driver did not confirm ${command}: ${value}`);
}

// ---- the HTTP API ----

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
const publish = (topic, data) => api("POST", "/api/publish", { topic, data });

// ---- the page: an application's page, on an origin of its own (another port) ----

const app = createServer((_, res) => {
  res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
  res.end("<!doctype html><title>an application</title><h1>an application</h1>");
});
await new Promise((resolve) => app.listen(0, "127.0.0.1", resolve));
const appUrl = `http://127.0.0.1:${app.address().port}/`;

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const page = await browser.newPage();
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(String(e)));
page.on("console", (m) => {
  // Attempts while the server is down are expected to fail; anything else is worth showing.
  if (m.type() === "error" && !m.text().includes("ERR_CONNECTION_REFUSED")) pageErrors.push(m.text());
});

/** Runs `fn(args)` in the page, with `window.T` (the test state) set up. */
const inPage = (fn, ...args) => page.evaluate(fn, ...args);

/** Waits until `fn(...args)` is truthy in the page; on timeout throws `what` and the client's log. */
async function until(what, name, fn, args = [], timeout = 10000) {
  try {
    await page.waitForFunction(fn, { timeout, polling: 50 }, ...args);
  } catch {
    const log = await inPage((n) => JSON.stringify(window.T.clients[n]?.log ?? null), name);
    throw new Error(`${what} (within ${timeout} ms); ${name}'s log: ${log}`);
  }
}

/** The events of client `name` so far. */
const log = (name) => inPage((n) => window.T.clients[n].log, name);

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the cases ----

const cases = [];
const test = (name, fn) => cases.push({ name, fn });

test("the module loads from /client.js (cross-origin, as a page of the application would)", async () => {
  await page.goto(appUrl);
  const exports = await inPage(async (url) => {
    // Record every frame the page's WebSockets send, to see pings and subscriptions.
    window.T = { clients: {}, sent: [] };
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) {
      const frame = JSON.parse(data);
      if (frame.type === "auth") this.token = frame.token; // which client's socket
      if (frame.type === "ping" && window.T.dropPingsOf === this.token) return; // a dead network
      window.T.sent.push({ at: Date.now(), token: this.token, frame });
      return send.call(this, data);
    };
    window.SB = await import(url);
    return Object.keys(window.SB).sort();
  }, base + "/client.js");
  for (const name of ["connect", "Switchboard", "SwitchboardError"]) {
    check(exports.includes(name), `client.js exports ${exports}, not ${name}`);
  }
  const helpers = await inPage(() => ({
    presence: window.SB.presenceTopic("alice@example.com"),
    matches: [
      ["chat.*", "chat.a"],
      ["chat.*", "chat.a.b"],
      ["chat.**", "chat.a.b"],
      ["chat.**", "chat"],
      ["a.*.c", "a.b.c"],
    ].map(([p, t]) => window.SB.matches(p, t)),
  }));
  check(helpers.presence === "presence.alice@example%2Ecom", `presenceTopic: ${helpers.presence}`);
  check(helpers.matches.join() === "true,false,true,false,true", `matches: ${helpers.matches}`);
  // A client in the page: its events in `log`, its handlers' events in `got`; `gate`, when
  // set, holds back `token()` until released.
  await inPage(() => {
    window.T.open = (name, wsUrl, token, options = {}) => {
      const entry = { log: [], got: [], gate: null, tokens: [token] }; // token() returns tokens[0]
      const c = window.SB.connect(wsUrl, {
        backoffBase: 200,
        backoffCap: 1000,
        ...options,
        token: async () => {
          entry.log.push({ ev: "token" });
          if (entry.gate) await entry.gate.promise;
          return entry.tokens[0];
        },
      });
      for (const ev of ["open", "close", "reconnecting", "error", "push"]) {
        c.on(ev, (d) =>
          entry.log.push({
            ev,
            at: Date.now(),
            ...(d instanceof Error ? { code: d.code, message: d.message } : d),
          }),
        );
      }
      entry.c = c;
      entry.handler = (e) => entry.got.push(e);
      window.T.clients[name] = entry;
    };
    window.T.hold = (name) => {
      const entry = window.T.clients[name];
      let release;
      const promise = new Promise((r) => (release = r));
      entry.gate = { promise, release };
    };
    window.T.release = (name) => {
      const entry = window.T.clients[name];
      entry.gate?.release();
      entry.gate = null;
    };
  });
});

test("connects: the token from token() authenticates, `open` says who", async () => {
  await inPage(
    (u, t) => window.T.open("a", u, t, { device: "laptop", deviceName: "Browser test" }),
    wsUrl,
    tokens.alice,
  );
  await until("alice's client opens", "a", () => window.T.clients.a.c.state === "open");
  const [open] = (await log("a")).filter((e) => e.ev === "open");
  check(open.userId === "alice" && open.reconnect === false, `open event: ${JSON.stringify(open)}`);
  check(
    (await log("a")).some((e) => e.ev === "token"),
    "token() was called",
  );
  const auth = await inPage(() => window.T.sent.find((s) => s.frame.type === "auth")?.frame);
  check(
    auth && auth.token === tokens.alice,
    `the first frame is auth with the token: ${JSON.stringify(auth)}`,
  );
  const presence = await api("GET", "/api/presence/alice");
  check(
    presence.online &&
      presence.connections[0].deviceId === "laptop" &&
      presence.connections[0].deviceName === "Browser test",
    `device and deviceName reach the server: ${JSON.stringify(presence)}`,
  );
  const sent = await api("POST", "/api/send", { userId: "alice", data: { hello: "from the backend" } });
  check(sent.delivered === 1, `POST /api/send reached ${sent.delivered}`);
  await until("alice's client emits the push", "a", () =>
    window.T.clients.a.log.some((e) => e.ev === "push" && e.data.hello === "from the backend"),
  );
});

test("subscribes with a wildcard and receives publishes from the HTTP API and from another client", async () => {
  await inPage(async () => {
    const a = window.T.clients.a;
    await a.c.subscribe("chat.*", a.handler).ready;
    await a.c.subscribe("news.today", a.handler).ready;
  });
  const first = await publish("chat.lobby", { text: "hi" });
  check(first.delivered === 1, `POST /api/publish reached ${first.delivered}, not alice's client`);
  await until("alice gets chat.lobby", "a", () =>
    window.T.clients.a.got.some((m) => m.topic === "chat.lobby"),
  );
  const [m] = await inPage(() => window.T.clients.a.got);
  check(
    m.type === "message" &&
      m.data.text === "hi" &&
      m.metadata.senderId === "server" &&
      m.offset === 1 &&
      m.replayed === false,
    `the message: ${JSON.stringify(m)}`,
  );

  await inPage((u, t) => window.T.open("b", u, t), wsUrl, tokens.bob);
  await until("bob's client opens", "b", () => window.T.clients.b.c.state === "open");
  const ack = await inPage(() => window.T.clients.b.c.publish("chat.room", { n: 1 }));
  check(
    ack.offset === 1 && typeof ack.epoch === "string",
    `publish resolves with the ack's position: ${JSON.stringify(ack)}`,
  );
  await until("alice gets bob's chat.room", "a", () =>
    window.T.clients.a.got.some(
      (m) => m.topic === "chat.room" && m.metadata.senderId === "bob" && m.data.n === 1,
    ),
  );
  await publish("news.today", { n: 1 });
  await until("alice gets news.today", "a", () =>
    window.T.clients.a.got.some((m) => m.topic === "news.today"),
  );
  await publish("chat.deep.er", 1);

  const error = await inPage(() =>
    window.T.clients.b.c.publish("chat.*", 1).then(
      () => null,
      (e) => ({ isError: e instanceof window.SB.SwitchboardError, code: e.code, message: e.message }),
    ),
  );
  check(
    error && error.isError && error.code === 400,
    `publishing on a pattern rejects with SwitchboardError 400: ${JSON.stringify(error)}`,
  );
  const got = await inPage(() => window.T.clients.a.got.map((m) => m.topic));
  check(!got.includes("chat.deep.er"), `chat.* does not match chat.deep.er: ${got}`);
});

test("sees another user's presence: the snapshot, then online when they connect, offline when they leave", async () => {
  await inPage(async () => {
    const a = window.T.clients.a;
    await a.c.presence("carol", (e) => a.got.push(e)).ready;
  });
  await until("alice gets carol's snapshot", "a", () =>
    window.T.clients.a.got.some((e) => e.type === "presence" && e.userId === "carol" && e.online === false),
  );
  await inPage((u, t) => window.T.open("c", u, t), wsUrl, tokens.carol);
  await until("alice sees carol come online", "a", () =>
    window.T.clients.a.got.some(
      (e) => e.type === "presence" && e.userId === "carol" && e.online && e.connections === 1,
    ),
  );
  await inPage(() => window.T.clients.c.c.close());
  await until("alice sees carol go offline", "a", () => {
    const p = window.T.clients.a.got.filter((e) => e.type === "presence");
    return p.length >= 3 && p[p.length - 1].online === false;
  });
  const closes = (await log("c")).filter((e) => e.ev === "close");
  check(closes.length === 1 && !closes[0].willReconnect, `close() ends for good: ${JSON.stringify(closes)}`);
});

test("pings while the page is visible, not while hidden; a connection that answers no ping is replaced", async () => {
  await inPage(
    (u, t) => window.T.open("p", u, t, { pingInterval: 200, pongTimeout: 1000 }),
    wsUrl,
    tokens.carol,
  );
  await until("the pinging client opens", "p", () => window.T.clients.p.c.state === "open");
  const pings = () =>
    inPage((t) => window.T.sent.filter((s) => s.frame.type === "ping" && s.token === t).length, tokens.carol);
  const start = await pings();
  await sleep(700);
  const visible = await pings();
  check(visible - start >= 2, `pings while visible: ${visible - start} in 700 ms at a 200 ms interval`);
  await inPage(() => {
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  const hiddenStart = await pings();
  await sleep(700);
  check((await pings()) === hiddenStart, "no ping while hidden");
  await inPage(() => {
    Object.defineProperty(document, "visibilityState", { value: "visible", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  check((await pings()) === hiddenStart + 1, "a ping at once when the page is visible again");
  await sleep(1200);
  check((await inPage(() => window.T.clients.p.c.state)) === "open", "pongs keep the connection open");
  // Pings that get no answer (here: never sent) end the connection pongTimeout after the first.
  const before = (await log("p")).length;
  const dropAt = await inPage((t) => {
    window.T.dropPingsOf = t;
    return Date.now();
  }, tokens.carol);
  await until(
    "a client without pongs gives up its connection",
    "p",
    (n) =>
      window.T.clients.p.log
        .slice(n)
        .some((e) => e.ev === "close" && e.reason === "no pong" && e.willReconnect),
    [before],
  );
  await inPage(() => (window.T.dropPingsOf = null));
  const gaveUp = (await log("p")).slice(before).find((e) => e.ev === "close").at - dropAt;
  check(gaveUp >= 950 && gaveUp < 2500, `gave up ${gaveUp} ms after the pongs stopped (pongTimeout 1000 ms)`);
  await until(
    "and connects again",
    "p",
    (n) => window.T.clients.p.log.slice(n).some((e) => e.ev === "open"),
    [before],
  );
  await inPage(() => window.T.clients.p.c.close());
});

test("a dropped connection reconnects and recovers what was published meanwhile (since, and history for a pattern)", async () => {
  await inPage(() => window.T.hold("a"));
  const sentBefore = await inPage(() => window.T.sent.length);
  const closed = await api("POST", "/api/disconnect", { userId: "alice", code: 4000, reason: "test drop" });
  check(closed.closed === 1, `/api/disconnect closed ${closed.closed}`);
  await until("alice's client is closed and asks for a token", "a", () => {
    const log = window.T.clients.a.log;
    const close = log.findIndex((e) => e.ev === "close" && e.code === 4000);
    return close >= 0 && log.slice(close).some((e) => e.ev === "token");
  });
  const close = (await log("a")).find((e) => e.ev === "close");
  check(
    close.willReconnect === true && close.reason === "test drop",
    `close event: ${JSON.stringify(close)}`,
  );
  const missed = await publish("chat.lobby", { text: "missed" });
  const missedNews = await publish("news.today", { n: 2 });
  check(missed.delivered === 0 && missedNews.delivered === 0, "the publishes happened while alice was away");
  // A publish while disconnected waits for the next connection.
  await inPage(() => {
    const a = window.T.clients.a;
    a.queued = a.c.publish("chat.lobby", { text: "queued" }).then((ack) => (a.ack = ack));
  });
  await inPage(() => window.T.release("a"));
  await until("alice's client opens again", "a", () =>
    window.T.clients.a.log.some((e) => e.ev === "open" && e.reconnect),
  );
  await until("the missed chat.lobby message is delivered", "a", () =>
    window.T.clients.a.got.some((m) => m.topic === "chat.lobby" && m.data.text === "missed"),
  );
  await until("the missed news.today message is delivered", "a", () =>
    window.T.clients.a.got.some((m) => m.topic === "news.today" && m.data.n === 2),
  );
  await until("the publish made while away is acknowledged and delivered", "a", () => {
    const a = window.T.clients.a;
    return a.ack && a.got.some((m) => m.data?.text === "queued");
  });
  const got = await inPage(() => window.T.clients.a.got);
  const lobby = got.filter((m) => m.topic === "chat.lobby");
  check(
    lobby.map((m) => m.data.text).join() === "hi,missed,queued" &&
      lobby[1].replayed &&
      lobby[1].offset === missed.offset &&
      lobby[2].offset === missed.offset + 1,
    `chat.lobby, in order, once each: ${JSON.stringify(lobby)}`,
  );
  const news = got.filter((m) => m.topic === "news.today");
  check(
    news.length === 2 && news[1].replayed && news[1].offset === 2,
    `news.today, once each: ${JSON.stringify(news)}`,
  );
  check(!got.some((e) => e.type === "gap"), `no gap: ${JSON.stringify(got.filter((e) => e.type === "gap"))}`);
  const resent = await inPage((n) => window.T.sent.slice(n).map((s) => s.frame), sentBefore);
  const sub = resent.find((f) => f.type === "subscribe" && f.topic === "news.today");
  check(
    sub && sub.since && sub.since.offset === 1 && sub.since.epoch === missedNews.epoch,
    `news.today resubscribed with since: ${JSON.stringify(sub)}`,
  );
  const hist = resent.find((f) => f.type === "history" && f.topic === "chat.lobby");
  check(
    hist && hist.since && hist.since.offset === 1,
    `chat.* recovered chat.lobby with history since: ${JSON.stringify(hist)}`,
  );
  check(
    resent.some((f) => f.type === "subscribe" && f.topic === "presence.carol"),
    "presence resubscribed",
  );
  await publish("chat.lobby", { text: "live" });
  await until("live messages follow", "a", () => window.T.clients.a.got.some((m) => m.data?.text === "live"));
  const page = await inPage(() => window.T.clients.a.c.history("chat.lobby", { limit: 2 }));
  check(
    page.type === "history" && page.messages.map((m) => m.data.text).join() === "queued,live",
    `history() lists the latest two: ${JSON.stringify(page)}`,
  );
});

test("reconnects with backoff after a server restart, resubscribes, and reports recovered:false", async () => {
  const before = (await log("a")).length;
  await control("kill");
  await until(
    "alice's client sees the connection lost",
    "a",
    (n) =>
      window.T.clients.a.log.slice(n).some((e) => e.ev === "close" && e.code === 1006 && e.willReconnect),
    [before],
  );
  await sleep(2500);
  const waits = (await log("a")).slice(before).filter((e) => e.ev === "reconnecting");
  check(waits.length >= 3, `at least 3 attempts while the server was down 2.5 s: ${JSON.stringify(waits)}`);
  waits.forEach((w, i) => {
    check(w.attempt === i + 1, `attempts count up: ${JSON.stringify(waits)}`);
    const ceiling = Math.min(1000, 200 * 2 ** i);
    check(
      w.delay >= 0 && w.delay < ceiling,
      `attempt ${w.attempt} waits ${w.delay} ms, within [0, ${ceiling}) (full jitter)`,
    );
  });
  await control("start");
  await until(
    "alice's client reconnects",
    "a",
    (n) => window.T.clients.a.log.slice(n).some((e) => e.ev === "open" && e.reconnect),
    [before],
    10000,
  );
  await until("the new run's streams are reported as gaps", "a", () => {
    const gaps = window.T.clients.a.got.filter((e) => e.type === "gap");
    return ["news.today", "chat.lobby"].every((t) =>
      gaps.some((g) => g.topic === t && g.recovered === false),
    );
  });
  const sent = await publish("news.today", { n: 3 });
  check(sent.delivered === 1, `resubscribed: POST /api/publish reached ${sent.delivered}`);
  await until("alice gets the next news.today", "a", () =>
    window.T.clients.a.got.some((m) => m.topic === "news.today" && m.data?.n === 3),
  );
  await publish("chat.elsewhere", { n: 4 });
  await until("chat.* is subscribed again", "a", () =>
    window.T.clients.a.got.some((m) => m.topic === "chat.elsewhere"),
  );
  const after = (await log("a")).slice(before);
  const opens = after.filter((e) => e.ev === "open");
  check(opens.length === 1, `one reconnect: ${JSON.stringify(opens)}`);
  const attempts = after.filter((e) => e.ev === "reconnecting").length;
  check(after.filter((e) => e.ev === "token").length === attempts, "a fresh token() for every attempt");
});

test("4003 with token() returning the same token: stops; with a new token: reconnects", async () => {
  await inPage(() => window.T.clients.b.c.close());
  await inPage((u, t) => window.T.open("d", u, t, { device: "desk" }), wsUrl, tokens.bob);
  await until("bob's second client opens", "d", () => window.T.clients.d.c.state === "open");
  await api("POST", "/api/disconnect", { userId: "bob", code: 4003, reason: "token revoked" });
  await until("bob's client stops", "d", () => window.T.clients.d.c.state === "closed");
  const closes = (await log("d")).filter((e) => e.ev === "close");
  check(
    closes.length === 1 &&
      closes[0].code === 4003 &&
      closes[0].willReconnect === false &&
      /same|again/.test(closes[0].why),
    `one close, 4003, no reconnect, saying why: ${JSON.stringify(closes)}`,
  );

  const before = (await log("a")).length;
  await inPage((t) => (window.T.clients.a.tokens = [t]), tokens.alice2);
  await api("POST", "/api/disconnect", { userId: "alice", code: 4003, reason: "token expired" });
  await until(
    "alice's client reconnects with the new token",
    "a",
    (n) => window.T.clients.a.log.slice(n).some((e) => e.ev === "open"),
    [before],
  );
  const close = (await log("a")).slice(before).find((e) => e.ev === "close");
  check(
    close.code === 4003 && close.willReconnect === true,
    `close before the new token: ${JSON.stringify(close)}`,
  );
});

test("does not reconnect after 4001 (another connection of the same user and device replaced it)", async () => {
  const before = (await log("a")).length;
  await inPage((u, t) => window.T.open("a2", u, t, { device: "laptop" }), wsUrl, tokens.alice);
  await until("the newer client opens", "a2", () => window.T.clients.a2.c.state === "open");
  await until("the older client is closed", "a", () => window.T.clients.a.c.state === "closed");
  await sleep(1500); // longer than backoffCap: a reconnect would have happened by now
  const after = (await log("a")).slice(before);
  const closes = after.filter((e) => e.ev === "close");
  check(
    closes.length === 1 &&
      closes[0].code === 4001 &&
      closes[0].willReconnect === false &&
      /replaced/.test(closes[0].why),
    `one close 4001 without reconnecting, saying why: ${JSON.stringify(closes)}`,
  );
  check(
    !after.some((e) => e.ev === "reconnecting" || e.ev === "token"),
    `no attempt after 4001: ${JSON.stringify(after)}`,
  );
  const presence = await api("GET", "/api/presence/alice");
  check(presence.connections.length === 1, `alice has one connection: ${JSON.stringify(presence)}`);
  check((await inPage(() => window.T.clients.a2.c.state)) === "open", "the newer client stays");
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
  console.log(`page errors:\n  ${pageErrors.join("\n  ")}`);
}
console.log(`${failed ? "FAILED" : "passed"}: ${cases.length} cases, ${Date.now() - started} ms`);
await browser.close();
app.close();
process.exit(failed ? 1 : 0);
