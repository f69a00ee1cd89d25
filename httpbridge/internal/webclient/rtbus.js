// rtbus.js: the browser client of rtbus's HTTP gateway, served by rtbusd at /client/rtbus.js.
// A dependency-free ES module:
//
//   import { Client } from "https://rtbus.example/client/rtbus.js";
//   const rt = new Client();                       // the server that served this module
//   await rt.logIn("alice", "secret");
//   const sub = rt.subscribe({ transport: "auto" });
//   sub.on("chat", (m) => console.log(m.id, m.event, m.data));
//   sub.onState((records) => render(records));
//   await rt.insert({ event: "chat", collection_id: "room-1", data: { text: "hi" } });
//
// A subscription reconnects by itself (exponential backoff with jitter) and resumes from the
// last publication id it saw, so a dropped network loses nothing and doubles nothing. Messages
// are the same objects on every transport: {id, event, data}, where data is the event record
// and id its publication id (absent on ephemeral messages, and on the state messages that
// precede the last one).

const TRANSPORTS = ["ws", "sse", "poll"];

// The module is served at <base>/client/rtbus.js: by default the client talks to <base>/.
const moduleBase = (() => {
  try {
    return new URL("..", import.meta.url).href;
  } catch {
    return typeof location === "undefined" ? "" : location.origin + "/";
  }
})();

/** An error of the server or of the network. status is the HTTP status (0: no answer). */
export class RtbusError extends Error {
  constructor(message, { status = 0, code = "", body = null } = {}) {
    super(message);
    this.name = "RtbusError";
    this.status = status;
    // code names what happened for the client's own errors: "session_killed", "unauthorized",
    // "forbidden", "bad_request", "network", "protocol".
    this.code = code || codeOf(status);
    this.body = body;
  }
}

function codeOf(status) {
  switch (status) {
    case 0:
      return "network";
    case 400:
      return "bad_request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    default:
      return "http_" + status;
  }
}

// A refusal that no other transport or later attempt would change: the credentials, the
// tenant or the parameters are wrong.
const fatalStatus = (status) => status === 400 || status === 401 || status === 403;

/**
 * A client of one rtbus server. Options:
 *   url   the server's base URL (default: the server that served this module);
 *   token a JWT from a previous logIn (also settable as client.token).
 */
export class Client {
  constructor({ url = moduleBase, token = "" } = {}) {
    this.url = url.endsWith("/") ? url : url + "/";
    this.token = token;
  }

  /** POST /users. Returns {id}. */
  signUp({ username, password, tenant_id, collection_id, info } = {}) {
    return this.#request("POST", "users", { username, password, tenant_id, collection_id, info }, false);
  }

  /** POST /login. Keeps the token for the later calls and returns it. */
  async logIn(username, password) {
    const r = await this.#request("POST", "login", { username, password }, false);
    this.token = r.jwt;
    return r.jwt;
  }

  /**
   * POST /logout: ends the session of the current token (its streams get session_killed) and
   * forgets the token.
   */
  async logOut() {
    await this.#request("POST", "logout");
    this.token = "";
  }

  /**
   * POST /insert. timestamp (Unix seconds, or a Date) in the future schedules the event.
   * key (1-255 visible ASCII characters, e.g. crypto.randomUUID() made once per event) is
   * sent as the Idempotency-Key header: an insert retried with the same key after a network
   * error or a 503 is stored once, and answered with the stored record.
   * Returns the stored event record.
   */
  async insert({ event, data = null, collection_id, tenant_id, timestamp, key } = {}) {
    if (timestamp instanceof Date) timestamp = Math.ceil(timestamp.getTime() / 1000);
    const headers = key === undefined ? undefined : { "Idempotency-Key": key };
    const r = await this.#request("POST", "insert", { event, data, collection_id, tenant_id, timestamp }, true, headers);
    return r.event;
  }

  /** POST /cancel/{id}: cancels a scheduled event. Returns its record. */
  async cancel(id) {
    const r = await this.#request("POST", "cancel/" + encodeURIComponent(id));
    return r.event;
  }

  /** GET /collections/{id}: the collection's published events, oldest first. */
  async collection(id) {
    const r = await this.#request("GET", "collections/" + encodeURIComponent(id));
    return r.events;
  }

  /** GET /verify: {id, username, tenant_id, roles, exp} of the current token. */
  verify() {
    return this.#request("GET", "verify");
  }

  /**
   * Opens a stream. Options:
   *   tenant       tenant id (default: the token's own tenant);
   *   events, collections, users   arrays (or comma-separated strings) narrowing the stream;
   *   transport    "auto" (default: WebSocket, then SSE, then long-polling), "ws", "sse", "poll";
   *   lastEventId  resume from this publication id instead of taking the current state;
   *   backoff      {initial: ms, max: ms} of the reconnection delays (default 500, 30000);
   *   pollWait     seconds a long poll waits for news (default 25);
   *   heartbeatTimeout  ms without a byte after which an SSE stream counts as dead (default
   *                45000: three of the server's 15 s keep-alives).
   */
  subscribe(options = {}) {
    return new Subscription(this, options);
  }

  async #request(method, path, body, auth = true, extra = undefined) {
    const headers = { ...extra };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth && this.token) headers.Authorization = "Bearer " + this.token;
    let res;
    try {
      res = await fetch(this.url + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (e) {
      throw new RtbusError("network error: " + e.message, { code: "network" });
    }
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: said below if it is an error
    }
    if (!res.ok) {
      const msg = json && typeof json.error === "string" ? json.error : `HTTP ${res.status}`;
      throw new RtbusError(msg, { status: res.status, body: json });
    }
    return json;
  }
}

// compareIds orders publication ids (decimal strings of any size, or a cluster's
// "<epoch>.<seq>"); null when either is not one, or they are of two epochs.
function compareIds(a, b) {
  // A cluster's ids are "<epoch>.<seq>": comparable within one epoch only.
  const i = a.lastIndexOf("."), j = b.lastIndexOf(".");
  if (a.slice(0, i + 1) !== b.slice(0, j + 1)) return null;
  a = a.slice(i + 1);
  b = b.slice(j + 1);
  if (!/^\d+$/.test(a) || !/^\d+$/.test(b)) return null;
  const x = BigInt(a), y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

const list = (v) => (v == null ? "" : Array.isArray(v) ? v.join(",") : String(v));

const isRecord = (m) =>
  m.data !== null &&
  typeof m.data === "object" &&
  typeof m.data.id === "string" &&
  m.data.event === m.event &&
  typeof m.data.collection_id === "string";

// message makes the one message object every transport delivers.
function message(id, event, data) {
  const m = id == null || id === "" ? { event, data } : { id: String(id), event, data };
  return Object.freeze(m);
}

/**
 * A stream that stays open until close(): on(eventName, fn) for messages ("*": all of them),
 * onState(fn) for the current state, onStatus(fn) for the connection, onError(fn) for the
 * error that ends it.
 */
export class Subscription {
  #client;
  #opts;
  #candidates;
  #preferred = 0; // index of the transport that last opened: where each round starts
  #conn = null;
  #timer = 0;
  #attempt = 0;
  #cursor = null; // the last publication id seen: where a reconnection resumes
  #statePhase = false; // id-less records are state until the first message with an id
  #state = new Map(); // "event\u0000collection" → latest record
  #handlers = new Map();
  #stateFns = new Set();
  #statusFns = new Set();
  #errorFns = new Set();
  #stateQueued = false;
  #pollConn = "";
  #onOnline = null;

  /** "connecting", "open", "reconnecting" or "closed". */
  status = "connecting";
  /** The transport of the current (or last) connection: "ws", "sse" or "poll". */
  transport = "";
  /** The error that closed the subscription, if any. */
  error = null;
  /** connects: connections opened; duplicates: messages already seen, dropped. */
  stats = { connects: 0, duplicates: 0 };

  constructor(client, opts) {
    this.#client = client;
    this.#opts = opts;
    const t = opts.transport || "auto";
    if (t !== "auto" && !TRANSPORTS.includes(t)) throw new RtbusError(`unknown transport ${t}`, { code: "bad_request" });
    this.#candidates = t === "auto" ? TRANSPORTS : [t];
    if (opts.lastEventId != null && opts.lastEventId !== "") this.#cursor = String(opts.lastEventId);
    if (typeof window !== "undefined") {
      // Back online: try now rather than at the end of the backoff.
      this.#onOnline = () => {
        if (this.status === "reconnecting") this.#retryNow();
      };
      window.addEventListener("online", this.#onOnline);
    }
    this.#connect(this.#preferred);
  }

  /** The last publication id seen (null before the first). */
  get lastEventId() {
    return this.#cursor;
  }

  /** The current state: the latest record of each (event, collection), oldest first. */
  get state() {
    return [...this.#state.values()].sort(
      (a, b) => a.timestamp - b.timestamp || (a.seq ?? 0) - (b.seq ?? 0),
    );
  }

  /** Calls fn(message) for each message named eventName ("*": every message). Returns an unsubscribe function. */
  on(eventName, fn) {
    let set = this.#handlers.get(eventName);
    if (!set) this.#handlers.set(eventName, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Calls fn(records, subscription) whenever the current state changes (and once soon after). */
  onState(fn) {
    this.#stateFns.add(fn);
    this.#queueState();
    return () => this.#stateFns.delete(fn);
  }

  /** Calls fn({status, transport, attempt, delay, error}) on each change of the connection. */
  onStatus(fn) {
    this.#statusFns.add(fn);
    return () => this.#statusFns.delete(fn);
  }

  /** Calls fn(error) when the subscription ends on an error (session killed, credentials refused). */
  onError(fn) {
    this.#errorFns.add(fn);
    return () => this.#errorFns.delete(fn);
  }

  /** Ends the subscription for good. */
  close() {
    this.#stop(null);
  }

  #stop(error) {
    if (this.status === "closed") return;
    clearTimeout(this.#timer);
    this.#conn?.close();
    this.#conn = null;
    if (this.#onOnline) window.removeEventListener("online", this.#onOnline);
    this.error = error;
    this.#setStatus("closed", { error });
    if (error) for (const fn of this.#errorFns) call(fn, error);
  }

  #setStatus(status, extra = {}) {
    this.status = status;
    const info = { status, transport: this.transport, attempt: this.#attempt, ...extra };
    for (const fn of this.#statusFns) call(fn, info);
  }

  #url(kind) {
    const o = this.#opts;
    const route = { ws: "ws", sse: "events", poll: "poll" }[kind];
    const path = o.tenant ? route + "/" + encodeURIComponent(o.tenant) : kind === "sse" ? "sse" : route;
    const u = new URL(path, this.#client.url);
    for (const k of ["events", "collections", "users"]) {
      const v = list(o[k]);
      if (v) u.searchParams.set(k, v);
    }
    if (this.#cursor != null) u.searchParams.set("last_event_id", this.#cursor);
    if (kind === "ws") {
      // Browsers cannot set headers on a WebSocket: the token goes in the query.
      if (this.#client.token) u.searchParams.set("token", this.#client.token);
      u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    }
    return u;
  }

  // #connect opens candidate i of the current round.
  #connect(i) {
    if (this.status === "closed") return;
    const kind = this.#candidates[i];
    this.transport = kind;
    this.#statePhase = this.#cursor == null;
    this.#setStatus("connecting");
    let conn = null;
    const h = {
      open: () => {
        if (conn !== this.#conn) return;
        this.#preferred = i;
        this.#attempt = 0;
        this.stats.connects++;
        this.#setStatus("open");
      },
      message: (m) => {
        if (conn === this.#conn) this.#dispatch(m);
      },
      advance: (id) => {
        if (conn === this.#conn) this.#advance(String(id));
      },
      end: (e) => {
        if (conn !== this.#conn) return;
        this.#conn = null;
        this.#ended(i, e);
      },
      cursor: () => this.#cursor,
      // A long-polling connection id outlives the polls and reconnections: the ephemeral
      // messages held for it meanwhile come with the next poll.
      pollConn: (v) => (v === undefined ? this.#pollConn : (this.#pollConn = v)),
    };
    const open = { ws: openWS, sse: openSSE, poll: openPoll }[kind];
    conn = this.#conn = open(this.#url(kind), this.#client.token, h, this.#opts);
  }

  // #ended decides what follows the end of a connection: the next transport of an "auto"
  // round when this one never opened, a reconnection after a backoff, or the end.
  async #ended(i, { opened = false, status = 0, error = null, fatal = false }) {
    if (this.status === "closed") return;
    if (fatal || fatalStatus(status)) {
      this.#stop(error || new RtbusError(`stream refused (HTTP ${status})`, { status }));
      return;
    }
    if (!opened && this.#candidates.length === 1 && this.#candidates[i] === "ws") {
      // A refused WebSocket handshake hides its HTTP status from scripts: ask the server
      // whether it would refuse this stream before trying again. (With auto, the next
      // transport finds out.)
      const refusal = await this.#probe();
      if (this.status === "closed") return;
      if (refusal) {
        this.#stop(refusal);
        return;
      }
    }
    if (!opened && i + 1 < this.#candidates.length) {
      this.#connect(i + 1);
      return;
    }
    const b = this.#opts.backoff || {};
    const initial = b.initial ?? 500, max = b.max ?? 30000;
    const full = Math.min(max, initial * 2 ** Math.min(this.#attempt, 30));
    const delay = Math.round(full / 2 + (Math.random() * full) / 2); // "equal jitter"
    this.#attempt++;
    this.#setStatus("reconnecting", { delay, error });
    this.#timer = setTimeout(() => this.#connect(this.#preferred), delay);
  }

  // #probe returns the error that would refuse this stream (400, 401, 403), or null when it
  // would be served or the server cannot tell: the same request over SSE, dropped as soon as
  // its status is known.
  async #probe() {
    const ac = new AbortController();
    const headers = { Accept: "text/event-stream" };
    if (this.#client.token) headers.Authorization = "Bearer " + this.#client.token;
    try {
      const res = await fetch(this.#url("sse"), { headers, signal: ac.signal, cache: "no-store" });
      if (fatalStatus(res.status)) return (await httpError(res)).error;
    } catch {
      // no answer: the network, not a refusal
    } finally {
      ac.abort();
    }
    return null;
  }

  #retryNow() {
    clearTimeout(this.#timer);
    this.#connect(this.#preferred);
  }

  // #advance moves the cursor forward (a poll's last_event_id may pass filtered-out ids).
  #advance(id) {
    const c = this.#cursor == null ? 1 : compareIds(id, this.#cursor);
    if (c === null || c > 0) this.#cursor = id;
  }

  #dispatch(m) {
    if (m.event === "resync") {
      // The server does not have our cursor (a reset log, a cursor ahead of it): drop what
      // we hold; the full state follows.
      this.#cursor = null;
      this.#state.clear();
      this.#statePhase = true;
      this.#queueState();
    } else if (m.id !== undefined) {
      const c = this.#cursor == null ? 1 : compareIds(m.id, this.#cursor);
      if (c !== null && c <= 0) {
        this.stats.duplicates++;
        return;
      }
      this.#cursor = m.id;
    }
    if (isRecord(m) && (m.id !== undefined || this.#statePhase)) {
      const rec = m.data;
      const key = rec.event + "\u0000" + rec.collection_id;
      const cur = this.#state.get(key);
      if (cur && cur.id === rec.id) {
        // A state message sent again after a connection cut before the end of the state.
        this.stats.duplicates++;
        return;
      }
      if (!cur || rec.timestamp >= cur.timestamp) {
        this.#state.set(key, rec);
        this.#queueState();
      }
    }
    if (m.id !== undefined) this.#statePhase = false;
    this.#emit(m);
    if (m.event === "session_killed") {
      this.#stop(new RtbusError("session killed", { status: 401, code: "session_killed", body: m.data }));
    }
  }

  #emit(m) {
    for (const name of [m.event, "*"]) {
      const set = this.#handlers.get(name);
      if (set) for (const fn of set) call(fn, m);
    }
  }

  #queueState() {
    if (this.#stateQueued) return;
    this.#stateQueued = true;
    queueMicrotask(() => {
      this.#stateQueued = false;
      const records = this.state;
      for (const fn of this.#stateFns) call(fn, records, this);
    });
  }
}

// call runs an application callback: its exception is reported, not allowed to break the stream.
function call(fn, ...args) {
  try {
    fn(...args);
  } catch (e) {
    setTimeout(() => {
      throw e;
    });
  }
}

// Each transport opener returns {close()} and reports through h: open(), message(m),
// advance(id), end({opened, status, error, fatal}); end is called at most once, and never
// after close(). h.cursor() is where to resume.

// SSE over fetch rather than EventSource: EventSource delivers named events only to listeners
// registered by name in advance (a stream's names are not known in advance), reconnects on
// its own schedule, and cannot send the Authorization header.
function openSSE(url, token, h, opts) {
  const ac = new AbortController();
  let done = false, opened = false, watchdog = 0;
  const idle = opts.heartbeatTimeout ?? 45000; // three missed 15 s keep-alives
  const end = (e) => {
    if (done) return;
    done = true;
    clearTimeout(watchdog);
    ac.abort();
    h.end({ opened, ...e });
  };
  const alive = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => end({ error: new RtbusError("no data or keep-alive within " + idle + " ms", { code: "network" }) }), idle);
  };
  (async () => {
    const headers = { Accept: "text/event-stream" };
    if (token) headers.Authorization = "Bearer " + token;
    let res;
    try {
      res = await fetch(url, { headers, signal: ac.signal, cache: "no-store" });
    } catch (e) {
      return end({ error: new RtbusError("network error: " + e.message, { code: "network" }) });
    }
    if (!res.ok) return end(await httpError(res));
    opened = true;
    h.open();
    alive();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "", event = "", data = [], id = null;
    for (;;) {
      let r;
      try {
        r = await reader.read();
      } catch (e) {
        return end({ error: new RtbusError("stream cut: " + e.message, { code: "network" }) });
      }
      if (done) return;
      if (r.done) return end({});
      alive();
      buf += r.value;
      // Lines end with LF, CRLF or CR (the SSE format); a CR at the very end may be half a CRLF.
      let start = 0;
      for (;;) {
        const lf = buf.indexOf("\n", start), cr = buf.indexOf("\r", start);
        let at = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
        if (at < 0 || (at === cr && at === buf.length - 1)) break;
        const line = buf.slice(start, at);
        start = at + (buf[at] === "\r" && buf[at + 1] === "\n" ? 2 : 1);
        if (line === "") {
          if (data.length && event !== "keepalive") {
            const text = data.join("\n");
            let value = text;
            try {
              value = JSON.parse(text);
            } catch {
              // not JSON: handed over as the string it is
            }
            h.message(message(id, event || "message", value));
            if (done) return;
          }
          event = "";
          data = [];
          id = null;
          continue;
        }
        if (line[0] === ":") continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value[0] === " ") value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
        else if (field === "id") id = value;
      }
      buf = buf.slice(start);
    }
  })();
  return {
    close() {
      done = true;
      clearTimeout(watchdog);
      ac.abort();
    },
  };
}

async function httpError(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // no JSON body
  }
  const msg = body && typeof body.error === "string" ? body.error : `HTTP ${res.status}`;
  return { status: res.status, error: new RtbusError(msg, { status: res.status, body }) };
}

function openWS(url, token, h) {
  let done = false, opened = false, ws;
  const end = (e) => {
    if (done) return;
    done = true;
    h.end({ opened, ...e });
  };
  try {
    ws = new WebSocket(url);
  } catch (e) {
    queueMicrotask(() => end({ error: new RtbusError("websocket: " + e.message, { code: "network" }) }));
    return { close() { done = true; } };
  }
  ws.onopen = () => {
    if (done) return;
    opened = true;
    h.open();
  };
  ws.onmessage = (ev) => {
    if (done) return;
    let m;
    try {
      m = JSON.parse(ev.data);
    } catch {
      ws.close(1003);
      return end({ error: new RtbusError("websocket: a frame that is not JSON", { code: "protocol" }) });
    }
    h.message(message(m.id, m.event, m.data));
  };
  ws.onclose = (ev) => {
    if (ev.code === 4001) {
      // The session was killed (logout, blacklist, revocation): the same message as on SSE.
      if (!done) h.message(message(null, "session_killed", { reason: ev.reason }));
      return end({ fatal: true, error: new RtbusError("session killed", { status: 401, code: "session_killed" }) });
    }
    if (ev.code === 4002) {
      // The token expired: as SSE and long-polling would find on reconnecting (401).
      return end({ status: 401, error: new RtbusError("token expired", { status: 401 }) });
    }
    end({ error: new RtbusError(`websocket closed (${ev.code}${ev.reason ? " " + ev.reason : ""})`, { code: "network" }) });
  };
  return {
    close() {
      done = true;
      ws.onopen = ws.onmessage = ws.onclose = null;
      ws.close(1000);
    },
  };
}

function openPoll(url, token, h, opts) {
  let done = false, opened = false, ac = null;
  const wait = opts.pollWait ?? 25;
  const end = (e) => {
    if (done) return;
    done = true;
    h.end({ opened, ...e });
  };
  (async () => {
    while (!done) {
      const u = new URL(url);
      const cursor = h.cursor();
      if (cursor != null) u.searchParams.set("last_event_id", cursor);
      else u.searchParams.delete("last_event_id");
      u.searchParams.set("wait", String(wait));
      if (h.pollConn()) u.searchParams.set("conn", h.pollConn());
      ac = new AbortController();
      // A poll that outlives its wait by far went down with the network.
      const timer = setTimeout(() => ac.abort(), (wait + 15) * 1000);
      const headers = {};
      if (token) headers.Authorization = "Bearer " + token;
      let res, body;
      try {
        res = await fetch(u, { headers, signal: ac.signal, cache: "no-store" });
        if (!res.ok) {
          clearTimeout(timer);
          const e = await httpError(res);
          if (res.status === 401 && opened && e.error.message !== "token expired") {
            // Refused after it was accepted: the session was killed (logout, blacklist,
            // revocation); SSE says so with a message, long-polling with this 401.
            if (!done) h.message(message(null, "session_killed", e.error.body));
            return end({ fatal: true, error: new RtbusError("session killed", { status: 401, code: "session_killed", body: e.error.body }) });
          }
          return end(e);
        }
        body = await res.json();
      } catch (e) {
        clearTimeout(timer);
        return end({ error: new RtbusError("network error: " + e.message, { code: "network" }) });
      }
      clearTimeout(timer);
      if (done) return;
      if (!opened) {
        opened = true;
        h.open();
      }
      if (typeof body.conn === "string" && body.conn) h.pollConn(body.conn);
      for (const m of body.messages || []) {
        h.message(message(m.id, m.event, m.data));
        if (done) return;
      }
      if (body.last_event_id != null && body.last_event_id !== "") h.advance(body.last_event_id);
    }
  })();
  return {
    close() {
      done = true;
      ac?.abort();
    },
  };
}
