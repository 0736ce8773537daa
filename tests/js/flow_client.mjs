// Flow-control scenarios on the stock socket.io-client: two players in one match,
// `alice` (the one under test) and `bob` (a healthy peer). Prints one JSON line with
// everything alice received, in arrival order, with the arrival time.
// Usage: node flow_client.mjs '{"url", "alice", "bob", "scenario", "pause_ms", "measure_ms", "ack"}'
//   scenario "lag":    alice stops reading her socket for pause_ms while she trades and bob
//                      leaves and comes back, then reads again until she has the newest tick.
//   scenario "stuck":  alice stops reading for good; ends when bob sees her disconnected.
//   scenario "steady": both read normally for measure_ms (alice acks only if "ack").
//   scenario "acks":   both read and ack normally for measure_ms; then alice sends tick_acks
//                      with a callback (one well-formed, the others malformed) and malformed
//                      ones without; both stop acking and make a round trip.
import { io } from "socket.io-client";

const cfg = JSON.parse(process.argv[2]);
const ACK_EVERY = 4; // docs/matchserver.md: acknowledge at least every 4 ticks
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const fail = (why) => { out({ error: why }); process.exit(3); };
let acking = true; // cleared once the "acks" scenario has sent what it counts
setTimeout(() => fail("timeout"), 60_000).unref();

function player(token, { ack = true } = {}) {
  const socket = io(`${cfg.url}/match`, {
    auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true,
  });
  const p = { socket, log: [], lastAcked: null, newest: null, acksSent: 0 };
  socket.on("connect", () => { p.lastAcked = null; }); // seq numbers are per connection
  socket.on("connect_error", (err) => fail(`connect_error ${err.message}`));
  socket.onAny((event, data) => {
    p.log.push({ t: Date.now(), event, data });
    if (event !== "tick") return;
    p.newest = data;
    const seq = data.seq;
    if (ack && acking && Number.isInteger(seq) && (p.lastAcked === null || seq - p.lastAcked >= ACK_EVERY)) {
      socket.emit("tick_ack", { seq });
      p.lastAcked = seq;
      p.acksSent += 1;
    }
  });
  return p;
}

function until(pred, ms, why) {
  return new Promise((resolve) => {
    const deadline = Date.now() + ms;
    const timer = setInterval(() => {
      if (pred()) { clearInterval(timer); resolve(); }
      else if (Date.now() > deadline) fail(`waited ${ms} ms for ${why}`);
    }, 5);
  });
}

const rawSocket = (p) => p.socket.io.engine.transport.ws._socket; // the TCP socket (ws on Node)
// Ticks on the steady beat: a new `at`, arrived within 300 ms of it (the feed's
// start-up burst shares one `at`).
const freshTicks = (p) => {
  let n = 0;
  let prevAt = null;
  for (const x of p.log) {
    if (x.event !== "tick") continue;
    if (x.data.at !== prevAt && x.t - x.data.at < 300) n += 1;
    prevAt = x.data.at;
  }
  return n;
};
const live = (p) => p.log.some((x) => x.event === "phase" && x.data.phase === "live");

const alice = player(cfg.alice, { ack: cfg.ack ?? true });
const bob = player(cfg.bob);
await until(() => live(alice) && live(bob), 15_000, "the match to go live");
await until(() => freshTicks(alice) >= 10 && freshTicks(bob) >= 10, 20_000, "ten fresh ticks");

if (cfg.scenario === "steady") {
  const from = alice.log.length;
  await new Promise((r) => setTimeout(r, cfg.measure_ms));
  out({ alice: alice.log.slice(from), acks_sent: alice.acksSent });
} else if (cfg.scenario === "lag") {
  const answers = [];
  // The callback runs as the answer is read, so the log keeps the arrival order.
  const send = (action) => alice.socket.emit("action", action, (ack) => {
    alice.log.push({ t: Date.now(), event: "__ack", data: { ...ack, client_order_id: action.client_order_id } });
    answers.push(ack);
  });
  rawSocket(alice).pause();
  const pausedAt = Date.now();
  send({ type: "open", client_order_id: "lag-1", side: "long", margin: "250", leverage: 2 });
  send({ type: "peek", client_order_id: "lag-2" });
  bob.socket.disconnect();
  await new Promise((r) => setTimeout(r, 300));
  bob.socket.connect();
  await until(() => bob.socket.connected, 5_000, "bob to come back");
  await new Promise((r) => setTimeout(r, Math.max(0, pausedAt + cfg.pause_ms - Date.now())));
  const newestAtResume = bob.newest;
  const resumedAt = Date.now();
  rawSocket(alice).resume();
  await until(
    () => answers.length === 2 && alice.newest && alice.newest.at >= newestAtResume.at,
    10_000, "alice to catch up",
  );
  out({ alice: alice.log, paused_at: pausedAt, resumed_at: resumedAt, newest_at_resume: newestAtResume });
} else if (cfg.scenario === "stuck") {
  rawSocket(alice).pause();
  const pausedAt = Date.now();
  const gone = () => bob.log.some((x) => x.event === "player" && x.data.player === "alice" && x.data.status === "disconnected");
  await until(gone, 15_000, "bob to see alice disconnected");
  out({ paused_at: pausedAt, gone_after_ms: Date.now() - pausedAt });
} else if (cfg.scenario === "acks") {
  await new Promise((r) => setTimeout(r, cfg.measure_ms));
  const ask = (p, ...args) => new Promise((resolve) => p.socket.emit(...args, resolve));
  const answers = {
    good: await ask(alice, "tick_ack", { seq: alice.lastAcked }),
    string: await ask(alice, "tick_ack", { seq: String(alice.lastAcked) }),
    negative: await ask(alice, "tick_ack", { seq: -1 }),
    fraction: await ask(alice, "tick_ack", { seq: 1.5 }),
    missing: await ask(alice, "tick_ack", {}),
    bare: await ask(alice, "tick_ack", 7),
  };
  acking = false;
  alice.socket.emit("tick_ack", { seq: String(alice.lastAcked) }); // malformed, no callback
  alice.socket.emit("tick_ack", { seq: alice.lastAcked, extra: 1 }); // valid, not the fast form
  alice.socket.emit("tick_ack");
  // A client's messages are handled in order: once these answers arrive, every ack before is in.
  const synced = [await ask(alice, "sync", {}), await ask(bob, "sync", {})];
  out({ answers, acks_sent: alice.acksSent + bob.acksSent, synced: synced.map((s) => s.ok) });
} else fail(`unknown scenario ${cfg.scenario}`);
process.exit(0);
