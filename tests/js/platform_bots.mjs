// Bot players on the real protocols, many in one Node process: the light load generator
// of bench/platform_load.py. It plays exactly what `tradearena bots` (src/tradearena/bots.py)
// plays: REST register + login on the lobby, the `/lobby` namespace with the access token
// (waiting for the `notification` of kind `match_ready`), POST /api/v1/queue, then the match
// server's `/match` namespace with the match token: `sync`, then `action` calls answered by
// acknowledgements, like an impatient human (market orders long/short with margin, leverage
// and sometimes stop-loss/take-profit, set_stops, partial and full closes, abilities, peeks),
// sometimes dropping the connection and coming back, until `match_end`.
//
// Acknowledgements with a game-rule refusal (cooldown, insufficient balance, ...) are
// normal play; codes that say the action was malformed or out of the mode's ranges cannot
// happen for a client that speaks the protocol, so they count as errors, like failed
// requests, refused or dropped connections and unanswered calls.
//
// Prints one JSON summary on stdout with the keys of BotStats.summary() (bots.py), plus a
// few of its own. Exit status 0 without errors, 1 with.
//
// Usage: node platform_bots.mjs --url URL [--count N] [--mode M] [--format F] [--rounds R]
//          [--prefix P] [--seed S] [--think-min S] [--think-max S] [--reconnect P]
//          [--signup-concurrency N] [--match-ready-timeout S] [--together 1|0]
//          [--ca FILE] [--resolve NAME=ADDR[,NAME=ADDR...]]
// --ca and --resolve apply to the lobby and to the match servers each match_ready names
// (dial.mjs).
import { io } from "socket.io-client";
import { dialOptions, parseHosts, request } from "./dial.mjs";

// A match's phases in the only order they happen (tradearena.contracts.phases.GamePhase).
const PHASES = ["waiting", "live", "settling", "finished", "cancelled"];
const laterPhase = (a, b) => (PHASES.indexOf(b) >= PHASES.indexOf(a) ? b : a);

const options = {
  url: "http://127.0.0.1:8080",
  count: 20,
  mode: "duel",
  format: "blitz",
  rounds: 1,
  prefix: `bot${process.pid}`,
  seed: 1,
  thinkMin: 0.5,
  thinkMax: 2.0,
  reconnect: 0.2,
  signupConcurrency: 4, // argon2id is the lobby's costliest work: keep its pool busy, no more
  matchReadyTimeout: 300,
  together: 1, // 1: everyone signs in first, then all queue at once (all play at the same time)
  ca: "", // PEM CA trusted for wss:// match servers ("": the system's)
  resolve: "", // NAME=ADDR[,NAME=ADDR...]: a host map for match-server names
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, "").replace(/-([a-z])/g, (_, c) => c.toUpperCase());
  if (!(key in options) || i + 1 >= argv.length) {
    console.error(`unknown or incomplete option ${argv[i]}`);
    process.exit(2);
  }
  options[key] = typeof options[key] === "number" ? Number(argv[i + 1]) : argv[i + 1];
}
options.url = options.url.replace(/\/+$/, "");
const dial = { caFile: options.ca || null, hosts: parseHosts([options.resolve]) };

// Game-rule refusals: a well-behaved client meets them in normal play.
const RULE_CODES = new Set([
  "ok", "delayed", "match_not_live", "feed_stale", "cooldown", "insufficient_balance",
  "no_position", "invalid_stops", "not_enough_charges", "invalid_target", "target_shielded",
  "peek_not_ready", "match_over",
]);
// Everything else (invalid_action, invalid_leverage, invalid_margin, invalid_fraction,
// order_too_small, rate_limited, unknown_player, not_connected, ...) is an error.
const ACTION_TIMEOUT_MS = 20_000;
const STOPS = { sl: 3n, tp: 4n }; // per mille of the price, as ScriptedPlayer
const LEVERAGES = [2, 5, 10, 20]; // within the catalogue's max_leverage
const MARGINS = [100, 250, 500, 1000];

// ---------------------------------------------------------------- statistics
const stats = {
  registered: 0,
  matchesPlayed: 0,
  matchesEnded: 0,
  matchIds: new Set(),
  actions: {},
  actionTypes: {},
  reconnects: 0,
  errors: [],
  // tick latency histogram in ms (0 .. 120 s, the last bucket holds anything slower)
  latency: new Uint32Array(120_001),
  ticks: 0,
  matchFailed: 0,
  // per player and match: ms from POST /queue to the match server's socket connected
  queueToConnected: [],
  live: 0,
  liveMax: 0,
  allLiveMs: null,
  signedInMs: null,
  firstEndMs: null,
};
const t0 = Date.now();
const error = (text) => stats.errors.push(text);
const countAction = (code) => { stats.actions[code] = (stats.actions[code] || 0) + 1; };

function percentile(p) {
  if (stats.ticks === 0) return null;
  const rank = Math.min(stats.ticks - 1, Math.floor(p * stats.ticks));
  let seen = 0;
  for (let ms = 0; ms < stats.latency.length; ms++) {
    seen += stats.latency[ms];
    if (seen > rank) return ms;
  }
  return stats.latency.length - 1;
}

function summary() {
  return {
    registered: stats.registered,
    matches_played: stats.matchesPlayed,
    matches_ended: stats.matchesEnded,
    match_ids: [...stats.matchIds].sort(),
    actions: stats.actions,
    reconnects: stats.reconnects,
    errors: stats.errors.slice(0, 20),
    error_count: stats.errors.length,
    tick_latency_p50_ms: percentile(0.5),
    tick_latency_p99_ms: percentile(0.99),
    // this generator's own
    generator: "node",
    ticks: stats.ticks,
    tick_latency_max_ms: stats.ticks ? percentile(1) : null,
    match_failed: stats.matchFailed,
    live_players_max: stats.liveMax,
    signed_in_after_s: stats.signedInMs === null ? null : stats.signedInMs / 1000,
    all_live_after_s: stats.allLiveMs === null ? null : stats.allLiveMs / 1000,
    first_end_after_s: stats.firstEndMs === null ? null : stats.firstEndMs / 1000,
    action_types: stats.actionTypes,
    queue_to_connected_p50_ms: quantile(stats.queueToConnected, 0.5),
    queue_to_connected_p99_ms: quantile(stats.queueToConnected, 0.99),
    queue_to_connected_max_ms: quantile(stats.queueToConnected, 1),
    seconds: (Date.now() - t0) / 1000,
  };
}

/** Nearest-rank quantile of a list of numbers; null when empty. */
function quantile(values, q) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

// ---------------------------------------------------------------- helpers
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A decimal price string ("67012.5", "67012.50") as integer cents (the symbol's price step). */
function cents(price) {
  const [whole, frac = ""] = String(price).split(".");
  return BigInt(whole) * 100n + BigInt((frac + "00").slice(0, 2));
}
const fromCents = (c) => `${c / 100n}.${String(c % 100n).padStart(2, "0")}`;
/** price * (1 + sign * perMille / 1000), rounded to the cent. */
const offset = (priceCents, sign, perMille) =>
  (priceCents * (1000n + BigInt(sign) * perMille) + 500n) / 1000n;

/** A slot pool: at most `n` holders at a time. */
function limiter(n) {
  let free = n;
  const waiting = [];
  return async (fn) => {
    if (free === 0) await new Promise((resolve) => waiting.push(resolve));
    else free--;
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else free++;
    }
  };
}
const signupSlot = limiter(options.signupConcurrency);

/** Emit and wait for the acknowledgement; null when none came in time. */
async function call(socket, event, data) {
  try {
    return await socket.timeout(ACTION_TIMEOUT_MS).emitWithAck(event, data);
  } catch {
    return null;
  }
}

/** Resolves on `connect`, rejects with the refusal on `connect_error`. */
function connected(socket) {
  return new Promise((resolve, reject) => {
    const ok = () => { socket.off("connect_error", ko); resolve(socket); };
    const ko = (err) => {
      socket.off("connect", ok);
      socket.close();
      const code = err.data && err.data.code ? err.data.code : null;
      reject(Object.assign(new Error(`${err.message}${code ? ` (${code})` : ""}`), { code }));
    };
    socket.once("connect", ok);
    socket.once("connect_error", ko);
  });
}

// ---------------------------------------------------------------- decisions
/** ScriptedPlayer (src/matchserver/simulate.py), with set_stops and partial closes. */
class Script {
  constructor(pid, rng) {
    this.pid = pid;
    this.rng = rng;
    this.orders = 0;
  }

  choice(items) {
    return items[Math.floor(this.rng() * items.length)];
  }

  action(state) {
    const rng = this.rng;
    this.orders += 1;
    const coid = `${this.pid}-${this.orders}`;
    const price = state.official_price ? cents(state.official_price) : 0n;
    const roll = rng();
    if (state.charges && roll < 0.05) {
      if (rng() < 0.5) return { type: "ability", ability: "shield", client_order_id: coid };
      return { type: "ability", ability: "trade_delay", target: "leader", client_order_id: coid };
    }
    if (state.peek_meter >= 100 && roll < 0.2) return { type: "peek", client_order_id: coid };
    if (!state.position) {
      if (roll > 0.3 || price <= 0n) return null;
      const side = this.choice(["long", "short"]);
      const sign = side === "long" ? 1 : -1;
      const order = {
        type: "open",
        side,
        margin: String(this.choice(MARGINS)),
        leverage: this.choice(LEVERAGES),
        client_order_id: coid,
      };
      if (rng() < 0.7) {
        order.stop_loss = fromCents(offset(price, -sign, STOPS.sl));
        order.take_profit = fromCents(offset(price, sign, STOPS.tp));
      }
      return order;
    }
    if (roll < 0.08) {
      return { type: "close", fraction: this.choice(["0.25", "0.5", "1"]), client_order_id: coid };
    }
    if (roll < 0.12 && price > 0n) {
      const sign = state.position.side === "long" ? 1 : -1;
      if (rng() < 0.2) return { type: "set_stops", stop_loss: null, take_profit: null, client_order_id: coid };
      return {
        type: "set_stops",
        stop_loss: fromCents(offset(price, -sign, 5n)),
        take_profit: fromCents(offset(price, sign, 6n)),
        client_order_id: coid,
      };
    }
    return null;
  }
}

// ---------------------------------------------------------------- one bot
class Bot {
  constructor(n) {
    this.n = n;
    this.rng = mulberry32(options.seed * 100_003 + n);
    this.username = `${options.prefix}-${n}`;
    this.password = `pw-${Math.floor(this.rng() * 2 ** 48).toString(16)}-${options.prefix}`;
    this.token = "";
    this.lobby = null;
    this.readyQueue = [];
    this.readyWaiter = null;
  }

  uniform(lo, hi) {
    return lo + (hi - lo) * this.rng();
  }

  /** POST, honouring 429/503 with Retry-After like a well-behaved client. */
  async post(path, body) {
    const headers = { "content-type": "application/json" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let status = 0;
    let payload = {};
    for (let attempt = 0; attempt < 30; attempt++) {
      const resp = await request(`${options.url}${path}`, {
        method: "POST", headers, body: JSON.stringify(body),
      }, dial);
      status = resp.status;
      const text = resp.text;
      try { payload = text ? JSON.parse(text) : {}; } catch { payload = {}; }
      if (status !== 429 && status !== 503) return [status, payload];
      const wait = Number(resp.headers["retry-after"] || "1");
      await sleep(Math.min(30, wait) * this.uniform(1.0, 1.5) * 1000);
    }
    return [status, payload];
  }

  async signIn() {
    const creds = { username: this.username, password: this.password };
    await signupSlot(async () => {
      let [status, body] = await this.post("/api/v1/auth/register", creds);
      if (status !== 200 && status !== 201) throw new Error(`register: ${status} ${body.code}`);
      [status, body] = await this.post("/api/v1/auth/login", creds);
      if (status !== 200) throw new Error(`login: ${status} ${body.code}`);
      this.token = body.access_token;
    });
    stats.registered += 1;
    this.lobby = io(`${options.url}/lobby`, {
      transports: ["websocket"], forceNew: true, reconnection: true, auth: { token: this.token },
      ...dialOptions(options.url, dial),
    });
    this.lobby.on("notification", (note) => {
      if (note.kind === "match_ready") this.deliver(note.payload);
      else if (note.kind === "match_failed") {
        stats.matchFailed += 1;
        error(`${this.username}: match ${note.payload.match_id} failed: ${note.payload.reason}`);
      }
    });
    await connected(this.lobby);
  }

  deliver(ready) {
    if (this.readyWaiter) {
      const waiter = this.readyWaiter;
      this.readyWaiter = null;
      waiter(ready);
    } else this.readyQueue.push(ready);
  }

  nextReady() {
    if (this.readyQueue.length) return Promise.resolve(this.readyQueue.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.readyWaiter = null;
        reject(new Error("no match_ready in time"));
      }, options.matchReadyTimeout * 1000);
      this.readyWaiter = (ready) => { clearTimeout(timer); resolve(ready); };
    });
  }

  async playRounds() {
    for (let round = 0; round < options.rounds; round++) {
      this.queuedAt = Date.now();
      const [status, body] = await this.post("/api/v1/queue", { mode: options.mode, format: options.format });
      if (status !== 200 && status !== 201) {
        error(`${this.username} queue: ${status} ${body.code}`);
        return;
      }
      await this.play(await this.nextReady());
    }
  }

  async play(ready) {
    const { match_id: matchId, token } = ready;
    const url = ready.url.replace(/\/+$/, "");
    stats.matchesPlayed += 1;
    stats.matchIds.add(matchId);
    const script = new Script(this.username, this.rng);
    const state = {};
    let startedAt = null;
    let ended = false;
    let wake = null; // resolves the think pause early when the match ends
    let isLive = false;
    const end = () => {
      if (stats.firstEndMs === null) stats.firstEndMs = Date.now() - t0;
      ended = true;
      if (wake) wake();
    };
    const setLive = (live) => {
      if (live === isLive) return;
      isLive = live;
      stats.live += live ? 1 : -1;
      if (stats.live > stats.liveMax) {
        stats.liveMax = stats.live;
        if (stats.live === options.count && stats.allLiveMs === null) stats.allLiveMs = Date.now() - t0;
      }
    };

    const join = async (rejoin) => {
      const socket = io(`${url}/match`, {
        transports: ["websocket"], forceNew: true, reconnection: false, auth: { token },
        ...dialOptions(url, dial),
      });
      let acked = null; // flow control (docs/matchserver.md): ack about every 4th tick
      socket.on("tick", (data) => {
        state.official_price = data.price;
        const ms = Date.now() - Number(data.at);
        stats.latency[Math.max(0, Math.min(stats.latency.length - 1, ms))] += 1;
        stats.ticks += 1;
        if (Number.isInteger(data.seq) && (acked === null || data.seq - acked >= 4)) {
          acked = data.seq;
          socket.emit("tick_ack", { seq: acked });
        }
      });
      socket.on("fill", (data) => {
        state.position = data.position;
        state.balance = data.balance;
      });
      socket.on("charges", (data) => { state.charges = data.charges; });
      socket.on("phase", (data) => {
        state.phase = data.phase;
        if (data.phase === "live") {
          startedAt = Number(data.at);
          setLive(true);
        } else setLive(false);
      });
      socket.on("match_end", () => { setLive(false); end(); });
      socket.on("replaced", () => error(`${this.username}: replaced in ${matchId}`));
      socket.on("disconnect", (reason) => {
        if (!ended && reason !== "io client disconnect") {
          error(`${this.username}: dropped from ${matchId}: ${reason}`);
          socket.dropped = true;
          if (wake) wake();
        }
      });
      try {
        await connected(socket);
      } catch (exc) {
        // Connecting is allowed until the final bell: this refusal says the match ended
        // while we were away (a reconnect at the last moment), as the web client reads it.
        if (!rejoin || exc.code !== "match_not_live") throw exc;
        setLive(false);
        end();
        return socket;
      }
      const reply = await call(socket, "sync", {});
      if (!reply || !reply.ok) throw new Error(`sync in ${matchId}: ${reply ? reply.code : "no answer"}`);
      // A phase event may overtake the sync's answer: phases only move forward, so the
      // later of the two wins (never back to "waiting" after "live" was seen).
      const phase = laterPhase(state.phase, reply.state.phase);
      Object.assign(state, reply.state, { phase });
      if (phase === "finished" || phase === "cancelled") end();
      if (phase === "live") setLive(true);
      if (reply.state.started_at && startedAt === null) startedAt = Number(reply.state.started_at);
      return socket;
    };

    let socket = await join(false);
    stats.queueToConnected.push(Date.now() - this.queuedAt);
    let reconnected = false;
    try {
      while (!ended) {
        await new Promise((resolve) => {
          wake = resolve;
          setTimeout(resolve, this.uniform(options.thinkMin, options.thinkMax) * 1000);
        });
        wake = null;
        if (ended) break;
        if (socket.dropped) { // like a real client: come back
          socket = await join(true);
          continue;
        }
        if (state.phase !== "live") continue;
        if (!reconnected && this.rng() < options.reconnect / 20) {
          reconnected = true;
          socket.disconnect();
          socket = await join(true);
          stats.reconnects += 1;
          continue;
        }
        // Peek refills 2 points/s from the start (or the last peek): enough to know "full".
        state.peek_meter = startedAt === null ? 0 : Math.min(100, Math.floor((Date.now() - startedAt) / 500));
        const action = script.action({ ...state, charges: state.charges || 0 });
        if (action === null) continue;
        const kind = action.type === "close" && action.fraction !== "1" ? "partial" : action.type;
        stats.actionTypes[kind] = (stats.actionTypes[kind] || 0) + 1;
        const ack = await call(socket, "action", action);
        if (ack === null) {
          if (!ended && !socket.dropped) error(`${this.username}: ${action.type} in ${matchId}: no answer`);
          continue;
        }
        const code = String(ack.code);
        countAction(code);
        if (!RULE_CODES.has(code)) {
          error(`${this.username}: ${action.type} in ${matchId}: ${code}: ${ack.message} ${JSON.stringify(action)}`);
        }
        if (action.type === "peek") startedAt = Date.now(); // used (or not full): the meter starts again
        if (action.type === "set_stops" && ack.ok && ack.position) state.position = ack.position;
      }
      stats.matchesEnded += 1;
    } finally {
      setLive(false);
      socket.disconnect();
    }
  }

  close() {
    if (this.lobby) this.lobby.disconnect();
  }
}

// ---------------------------------------------------------------- run
const bots = Array.from({ length: options.count }, (_, i) => new Bot(i));
let signedIn = 0;
let everyoneIn;
const allSignedIn = new Promise((resolve) => { everyoneIn = resolve; });
const oneIn = () => {
  if (++signedIn === options.count) {
    stats.signedInMs = Date.now() - t0;
    everyoneIn();
  }
};
await Promise.all(bots.map(async (bot) => {
  try {
    try {
      await bot.signIn();
    } finally {
      oneIn();
    }
    if (options.together) await allSignedIn;
    await bot.playRounds();
  } catch (exc) {
    error(`${bot.username}: ${exc.message}`);
  } finally {
    bot.close();
  }
}));
process.stdout.write(JSON.stringify(summary(), null, 2) + "\n");
process.exit(stats.errors.length === 0 ? 0 : 1);
