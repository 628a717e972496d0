// Switchboard browser client: one ES module, no build step, no dependencies.
//
// Served by both Switchboard binaries at `GET /client.js`:
//
//   import { connect } from "https://switchboard.example/client.js";
//   const sb = connect("wss://switchboard.example/ws", { token: () => fetchToken() });
//   const off = sb.subscribe("chat.*", (m) => m.type === "message" && show(m.topic, m.data));
//
// The wire protocol it speaks is core/PROTOCOL.md (v1). What it adds on top:
// - a fresh token from `options.token()` on every (re)connect, sent in the first `auth` message
//   (not in the URL, so that it stays out of access logs);
// - reconnection with exponential backoff and full jitter, except after the close codes whose
//   rule is "do not reconnect automatically" (1000, 1008, 4001) and after 4003 (or a refused
//   token) when `token()` gives the refused token again;
// - after a reconnect, every subscription is sent again, and nothing is missed: a concrete topic
//   resubscribes with `since` (the last position seen on it), a pattern asks `history` for each
//   concrete topic it had delivered, and a gap that cannot be filled reaches the handlers as a
//   `{type: "gap", recovered: false}` event;
// - an application-level `ping` while the page is visible (browsers cannot send WebSocket pings);
//   a connection that does not answer within `pongTimeout` is dropped and replaced;
// - request/reply by `id` as Promises, and `SwitchboardError` for `error` replies.

/**
 * An `error` (or `auth_error`) reply from the server, or a request that ended without one.
 *
 * `code` is the server's code (400, 401, 403, 404, 409, 410, 429, ...; PROTOCOL.md), or, for a
 * request that got no reply: 408 when it timed out (`requestTimeout`), or the WebSocket close code
 * of the connection it was sent on (e.g. 1006) when that connection ended first, or 1000 when the
 * client was closed.
 */
export class SwitchboardError extends Error {
  /**
   * @param {number} code the server's error code, or as described on the class
   * @param {string} message what went wrong, as the server phrased it
   * @param {object} [reply] the server's reply frame, when there was one
   */
  constructor(code, message, reply) {
    super(message);
    /** @type {string} */
    this.name = "SwitchboardError";
    /** @type {number} */
    this.code = code;
    /** @type {object | undefined} */
    this.reply = reply;
  }
}

/**
 * @typedef {object} ConnectOptions
 * @property {() => (string | Promise<string>)} token called before every connection attempt;
 *   returns a fresh JWT (e.g. fetched from the application's backend).
 * @property {string} [device] this device's id (1..=64 of `[A-Za-z0-9._:-]`), e.g. one kept in
 *   `localStorage`: with the default session policy a newer connection of the same user and
 *   device replaces the older one (close 4001). Absent: every connection is a device of its own.
 * @property {string} [deviceName] free text (at most 128 bytes) recorded with the connection.
 * @property {number} [backoffBase=500] milliseconds: the first reconnect waits up to this long.
 * @property {number} [backoffCap=30000] milliseconds: no reconnect waits longer than this.
 * @property {number} [pingInterval=25000] milliseconds between application pings while the page
 *   is visible (0: never ping).
 * @property {number} [pongTimeout=10000] milliseconds a ping may go unanswered (no frame at all
 *   arrives) before the connection is dropped and replaced.
 * @property {number} [connectTimeout=10000] milliseconds an attempt may take from opening the
 *   socket to `auth_success` before it is given up (and retried with backoff).
 * @property {number} [requestTimeout=10000] milliseconds a request (publish, history, request)
 *   waits for its reply, connecting time included, before it rejects with code 408.
 */

/**
 * A topic message, a presence change, or a gap that recovery could not fill.
 *
 * - `{type: "message", topic, data, metadata, offset?, epoch?, timestamp, replayed}`: `offset`
 *   and `epoch` are the message's place in its topic's stream (absent with history off);
 *   `replayed` is true for a message that was missed while disconnected and delivered after
 *   the reconnect.
 * - `{type: "presence", topic, userId, online, connections, timestamp}`.
 * - `{type: "gap", topic, recovered: false, offset, epoch}`: after a reconnect, messages on
 *   `topic` may have been missed and cannot be replayed (the server restarted, or they left
 *   its history): reload the state from the application; delivery continues after `offset`.
 * @typedef {object} Event
 */

/**
 * Called with each {@link Event} of a subscription.
 * @callback Handler
 * @param {Event} event
 * @returns {void}
 */

/**
 * Ends a subscription (idempotent). `ready` settles once the server answered the first
 * `subscribe`: it resolves, or rejects with a {@link SwitchboardError} (e.g. 403).
 * @typedef {(() => void) & { ready: Promise<void> }} Unsubscribe
 */

/**
 * Opens a client to the Switchboard WebSocket endpoint `url` (`ws://HOST:PORT/ws`; `http(s)://`
 * is taken as `ws(s)://`, and a relative URL such as `/ws` is resolved against the page). It
 * connects at once and keeps reconnecting per the rules of {@link Switchboard}.
 * @param {string} url
 * @param {ConnectOptions} options
 * @returns {Switchboard}
 */
export function connect(url, options) {
  return new Switchboard(url, options);
}

/** Codes after which the client never reconnects by itself (PROTOCOL.md, "Close codes"). */
const FINAL_CODES = new Map([
  [1000, "closed normally by the server"],
  [1008, "closed by policy (1008): the server asked not to reconnect"],
  [4001, "session replaced (4001): a newer connection of this user and device took over"],
]);

/**
 * A connection to Switchboard that reconnects by itself.
 *
 * Events, observed with {@link Switchboard#on}:
 * - `"open"` `{userId, connId, reconnect}`: authenticated (`reconnect` false the first time);
 * - `"close"` `{code, reason, willReconnect, why}`: the connection ended; `why` says in a
 *   sentence why the client will (not) reconnect. `willReconnect` is false after 1000, 1008,
 *   4001, after 4003 or a refused token when `token()` returned the refused token again, and
 *   after {@link Switchboard#close}; true after anything else (1001 drain, 1006 lost, 1011,
 *   4008, 4009, 4029, ...);
 * - `"reconnecting"` `{attempt, delay}`: the next attempt starts in `delay` ms
 *   (full jitter: uniform in [0, min(backoffCap, backoffBase * 2^(attempt-1))]);
 * - `"push"` `{data, timestamp}`: a push from the application's backend (`/api/send`,
 *   `/api/broadcast`);
 * - `"error"` {@link SwitchboardError}: something failed that no Promise reports (a
 *   resubscription refused, `token()` threw).
 */
export class Switchboard {
  /**
   * Prefer {@link connect}.
   * @param {string} url
   * @param {ConnectOptions} options
   */
  constructor(url, options) {
    if (!options || typeof options.token !== "function") {
      throw new TypeError("connect(url, { token }): `token` must be a function returning a JWT");
    }
    const o = options;
    this._url = new URL(url, typeof location !== "undefined" ? location.href : undefined);
    if (this._url.protocol === "http:") this._url.protocol = "ws:";
    if (this._url.protocol === "https:") this._url.protocol = "wss:";
    if (o.device !== undefined) this._url.searchParams.set("device", o.device);
    if (o.deviceName !== undefined) this._url.searchParams.set("deviceName", o.deviceName);
    this._token = o.token;
    this._base = o.backoffBase ?? 500;
    this._cap = o.backoffCap ?? 30000;
    this._pingInterval = o.pingInterval ?? 25000;
    this._pongTimeout = o.pongTimeout ?? 10000;
    this._requestTimeout = o.requestTimeout ?? 10000;
    this._connectTimeout = o.connectTimeout ?? 10000;
    /** @type {"connecting" | "open" | "closed"} */
    this._state = "connecting";
    this._ws = null;
    this._attempt = 0;
    this._opened = false;
    this._timer = null;
    this._pingTimer = null;
    this._pongTimer = null;
    this._nextId = 0;
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
    /** @type {Map<string, {handlers: Set<Handler>, ready: Promise<void>, settle: Function[]}>} */
    this._subs = new Map();
    /** @type {Map<string, {offset: number, epoch: string}>} last position seen per topic */
    this._positions = new Map();
    /** @type {Map<string, {offset: number, epoch: string}>} replay of a `since` runs up to here */
    this._replaying = new Map();
    /** @type {Map<string, object[]>} live messages held while a topic's gap is being filled */
    this._held = new Map();
    /** @type {Map<string, {resolve: Function, reject: Function, sent: ?WebSocket, frame: object, timer: any}>} */
    this._pending = new Map();
    this._onVisibility = () => this._schedulePing(true);
    this._onOnline = () => {
      if (this._timer !== null && this._ws === null) {
        clearTimeout(this._timer);
        this._timer = null;
        this._open();
      }
    };
    if (typeof document !== "undefined") {
      document.addEventListener("visibilitychange", this._onVisibility);
    }
    if (typeof window !== "undefined") window.addEventListener("online", this._onOnline);
    this._open();
  }

  /** `"connecting"` (also while waiting to reconnect), `"open"` (authenticated) or `"closed"`. */
  get state() {
    return this._state;
  }

  /**
   * Listens to an event (see the class); returns a function that stops listening.
   * @param {"open" | "close" | "reconnecting" | "push" | "error"} event
   * @param {(detail: any) => void} listener
   * @returns {() => void}
   */
  on(event, listener) {
    let set = this._listeners.get(event);
    if (!set) this._listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * Subscribes `handler` to a topic or pattern (`chat.*`: one segment, `chat.**`: one or
   * more). The subscription outlives reconnects: it is sent again on each, recovering what was
   * missed. Several handlers may share a pattern; the server is told once.
   * @param {string} pattern
   * @param {Handler} handler
   * @returns {Unsubscribe}
   */
  subscribe(pattern, handler) {
    let sub = this._subs.get(pattern);
    if (!sub) {
      sub = { handlers: new Set(), settle: null, ready: null };
      sub.ready = new Promise((resolve, reject) => (sub.settle = [resolve, reject]));
      sub.ready.catch(() => {});
      this._subs.set(pattern, sub);
      if (this._state === "open") this._sendSubscribe(pattern, sub);
    }
    const entry = { handler };
    sub.handlers.add(entry);
    const unsubscribe = () => {
      if (!sub.handlers.delete(entry) || sub.handlers.size > 0) return;
      if (this._subs.get(pattern) !== sub) return;
      this._forget(pattern);
      if (this._state === "open") {
        this._send({ type: "unsubscribe", topic: pattern, id: this._id() });
      }
    };
    unsubscribe.ready = sub.ready;
    return unsubscribe;
  }

  /**
   * Follows a user's presence: `handler` gets `{type: "presence", userId, online,
   * connections}` now (the current state) and on every change.
   * @param {string} user the user id (the token's `sub`)
   * @param {Handler} handler
   * @returns {Unsubscribe}
   */
  presence(user, handler) {
    return this.subscribe(presenceTopic(user), handler);
  }

  /**
   * Publishes `data` (any JSON value) on a concrete topic. Resolves with the server's `ack`
   * (`{offset, epoch}` with history on); rejects with a {@link SwitchboardError}.
   * @param {string} topic
   * @param {any} data
   * @param {object} [metadata]
   * @returns {Promise<{offset?: number, epoch?: string}>}
   */
  publish(topic, data, metadata) {
    const frame = { type: "message", topic, data: data === undefined ? null : data };
    if (metadata !== undefined) frame.metadata = metadata;
    return this.request(frame).then((ack) => ({ offset: ack.offset, epoch: ack.epoch }));
  }

  /**
   * Reads what the server keeps of a topic's stream (PROTOCOL.md `history`), without
   * subscribing: `{topic, offset, epoch, messages: [{offset, data, metadata, timestamp}]}`.
   * @param {string} topic
   * @param {{limit?: number, since?: {offset: number, epoch: string}}} [options]
   * @returns {Promise<object>}
   */
  history(topic, options = {}) {
    const frame = { type: "history", topic };
    if (options.limit !== undefined) frame.limit = options.limit;
    if (options.since !== undefined) frame.since = options.since;
    return this.request(frame);
  }

  /**
   * Sends any client message with a fresh `id` and resolves with the server's direct reply (the
   * frame, parsed); an `error` reply rejects with a {@link SwitchboardError}. Sent once
   * connected; rejects after `requestTimeout` (408) or when its connection ends first.
   * @param {object} message e.g. `{type: "ping"}`
   * @returns {Promise<object>}
   */
  request(message) {
    if (this._state === "closed") {
      return Promise.reject(new SwitchboardError(1000, "the client is closed"));
    }
    const id = this._id();
    const frame = { ...message, id };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new SwitchboardError(408, `no reply to ${message.type} within ${this._requestTimeout} ms`));
      }, this._requestTimeout);
      this._pending.set(id, { resolve, reject, sent: null, frame, timer });
      if (this._state === "open") this._sendPending(id);
    });
  }

  /** Closes the connection (1000) for good: no reconnect; pending requests reject (1000). */
  close() {
    if (this._state === "closed") return;
    const ws = this._ws;
    this._finish(1000, "closed by the client", "close() was called");
    if (ws) ws.close(1000, "bye");
  }

  // ---- connection lifecycle ----

  /** One connection attempt, with `token` if already fetched (after a refusal), else a fresh one. */
  async _open(token) {
    this._timer = null;
    this._state = "connecting";
    if (token === undefined) {
      token = await this._fetchToken();
      if (token === undefined) return;
    }
    let ws;
    try {
      ws = new WebSocket(this._url.href);
    } catch (e) {
      this._finish(1006, String(e && e.message ? e.message : e), "the URL cannot be connected to");
      return;
    }
    this._ws = ws;
    // Not authenticated within connectTimeout (a black-holed network, a hung server): replaced.
    this._pongTimer = setTimeout(() => this._abandon(ws, "not connected"), this._connectTimeout);
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: "auth", token }));
    };
    ws.onmessage = (e) => {
      if (this._ws !== ws) return;
      this._clearPongTimer();
      let frame;
      try {
        frame = JSON.parse(e.data);
      } catch {
        return;
      }
      if (frame.type === "auth_error") {
        // A refused token: like 4003, try a fresh one; the same one again is not retried.
        this._drop(4003, `auth_error ${frame.code}: ${frame.message}`, token);
        ws.close(1000, "auth refused");
        return;
      }
      if (frame.type === "auth_success") return this._authenticated(frame);
      this._frame(frame);
    };
    ws.onclose = (e) => {
      if (this._ws !== ws) return;
      this._drop(e.code, e.reason, e.code === 4003 ? token : undefined);
    };
    ws.onerror = () => {};
  }

  /** `token()`, or undefined when it threw (then a retry is scheduled) or the client closed. */
  async _fetchToken() {
    try {
      const token = await this._token();
      return this._state === "closed" ? undefined : token;
    } catch (e) {
      if (this._state === "closed") return undefined;
      const message = `token() failed: ${e && e.message ? e.message : e}`;
      this._emit("error", new SwitchboardError(0, message));
      this._retry(null, message);
      return undefined;
    }
  }

  _authenticated(frame) {
    this._state = "open";
    this._attempt = 0;
    const reconnect = this._opened;
    this._opened = true;
    for (const [pattern, sub] of this._subs) this._sendSubscribe(pattern, sub);
    for (const id of this._pending.keys()) this._sendPending(id);
    this._schedulePing(false);
    this._emit("open", { userId: frame.userId, connId: frame.connId, reconnect });
  }

  /**
   * The current socket ended (`code`): fail what was sent on it, then reconnect or stop.
   * `refused` is the token the server refused (4003, auth_error): a new one is fetched first,
   * and if it is the same, the client stops.
   */
  async _drop(code, reason, refused) {
    const ws = this._ws;
    this._ws = null;
    this._stopPinging();
    this._held.clear();
    this._replaying.clear();
    for (const [id, p] of this._pending) {
      if (p.sent === ws && ws !== null) {
        clearTimeout(p.timer);
        this._pending.delete(id);
        p.reject(new SwitchboardError(code, `the connection closed (${code}) before the reply`));
      }
    }
    const final = FINAL_CODES.get(code);
    if (final) return this._finish(code, reason, final);
    if (refused === undefined) return this._retry(code, reason);
    this._state = "connecting";
    let token;
    try {
      token = await this._token();
    } catch (e) {
      if (this._state === "closed") return;
      this._emit("error", new SwitchboardError(0, `token() failed: ${e && e.message ? e.message : e}`));
      return this._retry(code, reason);
    }
    if (this._state === "closed") return;
    if (token === refused) {
      const why = "the token was refused (expired or revoked) and token() returned it again";
      return this._finish(code, reason, why);
    }
    this._retry(code, reason, token);
  }

  /**
   * Schedules the next attempt with backoff and full jitter; `code` null: no socket ended
   * (`token()` failed), so no "close" event. `token`: already fetched for the next attempt.
   */
  _retry(code, reason, token) {
    this._state = "connecting";
    this._attempt += 1;
    const ceiling = Math.min(this._cap, this._base * 2 ** (this._attempt - 1));
    const delay = Math.floor(Math.random() * ceiling);
    if (code !== null) {
      const why =
        token !== undefined
          ? "the token was refused (expired or revoked): reconnecting with a fresh one"
          : "the connection was lost or closed by the server: reconnecting with backoff";
      this._emit("close", { code, reason, willReconnect: true, why });
    }
    this._emit("reconnecting", { attempt: this._attempt, delay });
    this._timer = setTimeout(() => this._open(token), delay);
  }

  _finish(code, reason, why) {
    const wasClosed = this._state === "closed";
    this._state = "closed";
    this._ws = null;
    this._stopPinging();
    if (this._timer !== null) clearTimeout(this._timer);
    this._timer = null;
    if (typeof document !== "undefined") {
      document.removeEventListener("visibilitychange", this._onVisibility);
    }
    if (typeof window !== "undefined") window.removeEventListener("online", this._onOnline);
    for (const [id, p] of this._pending) {
      clearTimeout(p.timer);
      this._pending.delete(id);
      p.reject(new SwitchboardError(code, `the client stopped: ${why}`));
    }
    if (!wasClosed) this._emit("close", { code, reason, willReconnect: false, why });
  }

  // ---- liveness ----

  _schedulePing(now) {
    this._stopPinging();
    if (this._state !== "open" || this._pingInterval <= 0) return;
    if (typeof document !== "undefined" && document.visibilityState !== "visible") return;
    const ping = () => {
      if (this._state !== "open" || !this._ws) return;
      this._send({ type: "ping" });
      // No frame since the first unanswered ping: the connection is dead though the socket
      // may not know. Later pings do not push the deadline back; any frame clears it.
      if (this._pongTimer !== null) return;
      const ws = this._ws;
      this._pongTimer = setTimeout(() => this._abandon(ws, "no pong"), this._pongTimeout);
    };
    if (now) ping();
    this._pingTimer = setInterval(ping, this._pingInterval);
  }

  /** Gives up on socket `ws` without waiting for its close handshake, and reconnects. */
  _abandon(ws, what) {
    if (this._ws !== ws) return;
    ws.onclose = null;
    ws.close(4000, what);
    this._drop(1006, what);
  }

  _clearPongTimer() {
    if (this._pongTimer !== null) clearTimeout(this._pongTimer);
    this._pongTimer = null;
  }

  _stopPinging() {
    if (this._pingTimer !== null) clearInterval(this._pingTimer);
    this._pingTimer = null;
    this._clearPongTimer();
  }

  // ---- frames ----

  _frame(frame) {
    switch (frame.type) {
      case "message":
        if (frame.id === undefined) return this._message(frame, false);
        break;
      case "presence":
        return this._dispatch(presenceTopic(frame.userId), {
          type: "presence",
          topic: presenceTopic(frame.userId),
          userId: frame.userId,
          online: frame.online,
          connections: frame.connections,
          timestamp: frame.timestamp,
        });
      case "push":
        return this._emit("push", { data: frame.data, timestamp: frame.timestamp });
    }
    if (frame.id !== undefined) {
      const p = this._pending.get(frame.id);
      if (!p) return;
      clearTimeout(p.timer);
      this._pending.delete(frame.id);
      if (frame.type === "error") p.reject(new SwitchboardError(frame.code, frame.message, frame));
      else p.resolve(frame);
    }
  }

  /** A topic message, live or replayed: delivered once, in stream order, to every match. */
  _message(frame, replayed) {
    const held = this._held.get(frame.topic);
    if (held && !replayed) return void held.push(frame);
    if (typeof frame.offset === "number" && typeof frame.epoch === "string") {
      const last = this._positions.get(frame.topic);
      if (last && last.epoch === frame.epoch && frame.offset <= last.offset) return;
      this._positions.set(frame.topic, { offset: frame.offset, epoch: frame.epoch });
      const replay = this._replaying.get(frame.topic);
      if (replay && replay.epoch === frame.epoch && frame.offset <= replay.offset) {
        replayed = true;
        if (frame.offset === replay.offset) this._replaying.delete(frame.topic);
      }
    }
    this._dispatch(frame.topic, {
      type: "message",
      topic: frame.topic,
      data: frame.data,
      metadata: frame.metadata ?? {},
      offset: frame.offset,
      epoch: frame.epoch,
      timestamp: frame.timestamp,
      replayed,
    });
  }

  /** Calls the handlers of every subscription whose pattern matches `topic`. */
  _dispatch(topic, event) {
    for (const [pattern, sub] of this._subs) {
      if (!matches(pattern, topic)) continue;
      for (const { handler } of [...sub.handlers]) {
        try {
          handler(event);
        } catch (e) {
          setTimeout(() => {
            throw e;
          });
        }
      }
    }
  }

  // ---- subscriptions and recovery ----

  _sendSubscribe(pattern, sub) {
    const concrete = !pattern.split(".").some((s) => s === "*" || s === "**");
    const isPresence = pattern.startsWith("presence.");
    const frame = { type: "subscribe", topic: pattern };
    const since = concrete && !isPresence ? this._positions.get(pattern) : undefined;
    if (since) frame.since = since;
    const ws = this._ws;
    this._sendRequest(frame).then(
      (reply) => {
        if (this._ws !== ws) return;
        sub.settle[0]();
        if (since && reply.recovered === false) {
          this._gap(pattern, reply);
        } else if (since && reply.recovered === true && reply.offset > since.offset) {
          // The replay of what was missed follows, up to the stream's current offset.
          this._replaying.set(pattern, { offset: reply.offset, epoch: reply.epoch });
        } else if (!since && concrete && typeof reply.offset === "number") {
          // A first subscription: live messages continue from here.
          if (!this._positions.has(pattern)) {
            this._positions.set(pattern, { offset: reply.offset, epoch: reply.epoch });
          }
        }
        if (!concrete) this._recoverPattern(pattern, ws);
      },
      (error) => {
        if (this._ws !== ws) return; // the connection ended: the next one subscribes again
        sub.settle[1](error);
        if (error.reply && this._subs.get(pattern) === sub) this._forget(pattern);
        this._emit("error", error);
      },
    );
  }

  /** Drops a subscription and the positions that no remaining subscription needs. */
  _forget(pattern) {
    this._subs.delete(pattern);
    for (const topic of this._positions.keys()) {
      if (![...this._subs.keys()].some((p) => matches(p, topic))) this._positions.delete(topic);
    }
  }

  /** After a pattern is subscribed again: fills the gap of each topic it had delivered. */
  _recoverPattern(pattern, ws) {
    for (const [topic, since] of this._positions) {
      if (!matches(pattern, topic) || this._held.has(topic)) continue;
      if (this._subs.has(topic)) continue; // a concrete subscription recovers it with `since`
      this._held.set(topic, []);
      this._fill(topic, since, ws);
    }
  }

  /** Reads `topic`'s stream after `since` (pages of 1000) while its live messages wait. */
  async _fill(topic, since, ws) {
    let from = since;
    try {
      for (;;) {
        const page = await this._sendRequest({ type: "history", topic, since: from, limit: 1000 });
        if (this._ws !== ws) return;
        for (const m of page.messages) {
          this._message({ type: "message", topic, ...m, epoch: page.epoch }, true);
        }
        const last = page.messages.length ? page.messages[page.messages.length - 1].offset : from.offset;
        if (page.messages.length < 1000 || last >= page.offset) break;
        from = { offset: last, epoch: page.epoch };
      }
    } catch (error) {
      if (this._ws !== ws) return;
      if (error.code === 410) {
        // Another epoch or an offset ahead: what was missed is gone. Continue from what comes.
        this._positions.delete(topic);
        this._gap(topic, { offset: undefined, epoch: undefined });
      } else {
        this._emit("error", error);
      }
    }
    if (this._ws !== ws) return;
    const held = this._held.get(topic) || [];
    this._held.delete(topic);
    for (const frame of held) this._message(frame, false);
  }

  /** What was missed on `topic` cannot be replayed: tells every subscription that matches it. */
  _gap(topic, reply) {
    if (typeof reply.offset === "number") {
      this._positions.set(topic, { offset: reply.offset, epoch: reply.epoch });
    }
    this._dispatch(topic, { type: "gap", topic, recovered: false, offset: reply.offset, epoch: reply.epoch });
  }

  // ---- sending ----

  /** A request on the current connection only (no queueing): resubscriptions and recovery. */
  _sendRequest(message) {
    const id = this._id();
    const frame = { ...message, id };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new SwitchboardError(408, `no reply to ${message.type} within ${this._requestTimeout} ms`));
      }, this._requestTimeout);
      this._pending.set(id, { resolve, reject, sent: this._ws, frame, timer });
      this._send(frame);
    });
  }

  _sendPending(id) {
    const p = this._pending.get(id);
    if (!p || p.sent !== null) return;
    p.sent = this._ws;
    this._send(p.frame);
  }

  _send(frame) {
    if (this._ws && this._ws.readyState === 1) this._ws.send(JSON.stringify(frame));
  }

  _id() {
    this._nextId += 1;
    return `c${this._nextId}`;
  }

  _emit(event, detail) {
    for (const listener of [...(this._listeners.get(event) || [])]) {
      try {
        listener(detail);
      } catch (e) {
        setTimeout(() => {
          throw e;
        });
      }
    }
  }
}

/**
 * The presence topic of a user (PROTOCOL.md "Presence"): `presence.` and the user id with every
 * byte outside `[A-Za-z0-9_:@+=~-]` percent-encoded, e.g. `presence.alice@example%2Ecom`.
 * @param {string} user
 * @returns {string}
 */
export function presenceTopic(user) {
  let out = "presence.";
  for (const b of new TextEncoder().encode(user)) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9_:@+=~-]/.test(c) ? c : "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/**
 * Whether a topic pattern matches a concrete topic: `*` is exactly one segment, a trailing `**`
 * one or more.
 * @param {string} pattern
 * @param {string} topic
 * @returns {boolean}
 */
export function matches(pattern, topic) {
  const p = pattern.split(".");
  const t = topic.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === "**" && i === p.length - 1) return t.length > i;
    if (i >= t.length) return false;
    if (p[i] !== "*" && p[i] !== t[i]) return false;
  }
  return p.length === t.length;
}
