// Fan-out load generator: N stock socket.io-client connections (websocket only) in one
// process; counts every event delivered and the latency of `tick` events from the
// server's timestamp (`at`, ms since the epoch). Each client acknowledges about every
// 4th tick that carries a `seq` (the match server's flow control, docs/matchserver.md);
// ACK=0 in the environment turns that off. SPECTATOR_TOKENS=FILE adds one spectator
// connection per token of FILE (docs/matchserver.md, "Spectators"), counted apart: the
// players' figures are the players' alone. Prints one JSON summary line.
// Usage: node fanout_load.mjs URL NAMESPACE TOKENS_FILE|- COUNT WARMUP_S MEASURE_S
//          [--ca FILE] [--resolve NAME=ADDR]   (wss:// with a private CA, a host map: dial.mjs)
import { readFileSync } from "node:fs";
import { io } from "socket.io-client";
import { dialOptions, parseDialArgs } from "./dial.mjs";

const { rest, dial } = parseDialArgs(process.argv.slice(2));
const [url, ns, tokensFile, countArg, warmupArg, measureArg] = rest;
const count = Number(countArg);
const tokens = tokensFile === "-" ? [] : JSON.parse(readFileSync(tokensFile, "utf8"));
const warmupMs = Number(warmupArg) * 1000;
const measureMs = Number(measureArg) * 1000;
const acking = process.env.ACK !== "0";
const spectatorTokens = process.env.SPECTATOR_TOKENS
  ? JSON.parse(readFileSync(process.env.SPECTATOR_TOKENS, "utf8")) : [];
const everyone = count + spectatorTokens.length;

let measuring = false;
let delivered = 0;
let ticks = 0;
const latencies = [];
const byEvent = {};
let connected = 0;
let errors = 0;
let acks = 0;
let frames = 0;
const frameAges = [];
const sockets = [];
const t0 = Date.now();
let allConnected;
const everyoneIn = new Promise((resolve) => { allConnected = resolve; });

for (let i = 0; i < count; i++) {
  const socket = io(`${url}${ns}`, {
    transports: ["websocket"], reconnection: false, forceNew: true,
    auth: tokens.length ? { token: tokens[i] } : {},
    ...dialOptions(url, dial),
  });
  let acked = null;
  socket.on("connect", () => { acked = null; if (++connected === everyone) allConnected(); });
  socket.on("connect_error", (err) => { errors++; console.error(err.message); });
  socket.onAny((event, data) => {
    if (acking && event === "tick" && Number.isInteger(data.seq) && (acked === null || data.seq - acked >= 4)) {
      acked = data.seq;
      socket.emit("tick_ack", { seq: acked });
      if (measuring) acks++;
    }
    if (!measuring) return;
    delivered++;
    byEvent[event] = (byEvent[event] || 0) + 1;
    if (event === "tick") {
      ticks++;
      if (latencies.length < 2_000_000) latencies.push(Date.now() - data.at);
    }
  });
  sockets.push(socket);
}

// Spectators connect once the players are in, and try again later when the server is
// busy (`server_busy`: it gives its players priority), as a viewer's page would.
let busyRefusals = 0;
const playersIn = new Promise((resolve) => {
  const check = setInterval(() => { if (connected >= count) { clearInterval(check); resolve(); } }, 50);
});
let spectatorRetries = 0;
function watch(token, attempt = 0) {
  const socket = io(`${url}${ns}`, {
    transports: ["websocket"], reconnection: false, forceNew: true, auth: { token },
    ...dialOptions(url, dial),
  });
  socket.on("connect", () => { if (++connected === everyone) allConnected(); });
  socket.on("connect_error", (err) => {
    // Busy (the server's players come first) or a connection that failed under load:
    // try again a little later; anything else (a bad token, a full match) is an error.
    const code = err.data && err.data.code;
    if (code === "server_busy" || (!code && attempt < 10)) {
      if (code) busyRefusals++; else spectatorRetries++;
      socket.close();
      setTimeout(() => watch(token, attempt + 1), 500 + Math.random() * 1000);
      return;
    }
    errors++;
    console.error(err.message);
  });
  socket.on("spectate", (data) => {
    if (!measuring) return;
    frames++;
    if (frameAges.length < 2_000_000) frameAges.push(Date.now() - data.at - data.delay_ms);
  });
  sockets.push(socket);
}
if (spectatorTokens.length) {
  await playersIn;
  for (const token of spectatorTokens) watch(token);
}

const deadline = setTimeout(() => {
  console.log(JSON.stringify({ error: "not all clients connected", connected, errors }));
  process.exit(2);
}, 120_000);
await everyoneIn;
clearTimeout(deadline);
const connectS = (Date.now() - t0) / 1000;
await new Promise((r) => setTimeout(r, warmupMs));
measuring = true;
console.log(JSON.stringify({ measuring: true, connect_s: connectS }));
const started = Date.now();
await new Promise((r) => setTimeout(r, measureMs));
measuring = false;
const seconds = (Date.now() - started) / 1000;
latencies.sort((a, b) => a - b);
frameAges.sort((a, b) => a - b);
const pctOf = (xs, p) => (xs.length ? xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] : null);
const pct = (p) => pctOf(latencies, p);
console.log(JSON.stringify({
  clients: count, connected, errors, connect_s: connectS, seconds,
  delivered, delivered_per_s: delivered / seconds, tick_deliveries: ticks, acks_per_s: acks / seconds,
  ticks_per_client_per_s: ticks / seconds / count,
  p50_ms: pct(0.5), p99_ms: pct(0.99), max_ms: latencies.length ? latencies[latencies.length - 1] : null,
  by_event: byEvent,
  spectators: spectatorTokens.length, spectator_frames: frames, spectator_busy_refusals: busyRefusals,
  spectator_retries: spectatorRetries,
  spectator_frames_per_s: frames / seconds,
  // How late a frame arrived beyond its delay (ms): its age minus delay_ms.
  spectator_late_p50_ms: pctOf(frameAges, 0.5), spectator_late_p99_ms: pctOf(frameAges, 0.99),
}));
for (const s of sockets) s.disconnect();
process.exit(0);
