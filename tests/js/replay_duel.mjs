// A duel with trades on the real platform, played on the protocols (no pages): two
// signed-in players queue for it on the lobby's REST API, get `match_ready` on the
// `/lobby` namespace, then trade on the match server's `/match` namespace until
// `match_end`. `a` goes long with stops and later closes half, `b` goes short, moves
// its stops and later flips long; whatever is open at the bell is settled.
// Usage: node replay_duel.mjs LOBBY_URL TOKEN_A TOKEN_B [MODE] [FORMAT]
// Prints one JSON line: {match_id, acks: {a: [codes], b: [codes]}}; exits 0, or 1.
import { io } from "socket.io-client";

const [url, tokenA, tokenB, mode = "duel", format = "blitz"] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const fail = (why) => {
  out({ error: why });
  process.exit(1);
};
setTimeout(() => fail("timeout"), 150_000).unref();

const step = (price) => (Math.round(price * 100) / 100).toFixed(2);

function lobbySocket(token) {
  const socket = io(`${url}/lobby`, { transports: ["websocket"], forceNew: true, auth: { token } });
  const ready = new Promise((resolve) => {
    socket.on("notification", (note) => {
      if (note.kind === "match_ready") resolve(note.payload);
      if (note.kind === "match_failed") fail(`match failed: ${note.payload.reason}`);
    });
  });
  const connected = new Promise((resolve) => socket.on("connect", resolve));
  socket.on("connect_error", (err) => fail(`lobby: ${err.message}`));
  return { socket, ready, connected };
}

async function queue(token) {
  const resp = await fetch(`${url}/api/v1/queue`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ mode, format }),
  });
  if (!resp.ok) fail(`queue: ${resp.status} ${await resp.text()}`);
}

/** One player in the match: `script(act, ticks)` runs once the official price flows. */
function play(ready, script) {
  return new Promise((resolve) => {
    const socket = io(`${ready.url.replace(/\/+$/, "")}/match`, {
      transports: ["websocket"], forceNew: true, reconnection: false, auth: { token: ready.token },
    });
    const codes = [];
    let n = 0;
    let price = null;
    const waiters = [];
    let acked = null;
    socket.on("tick", (data) => {
      price = Number(data.price);
      n += 1;
      if (Number.isInteger(data.seq) && (acked === null || data.seq - acked >= 4)) {
        acked = data.seq;
        socket.emit("tick_ack", { seq: acked });
      }
      for (const w of waiters.splice(0)) if (n >= w.n) w.resolve(); else waiters.push(w);
    });
    const ticks = (k) => new Promise((res) => waiters.push({ n: n + k, resolve: res }));
    let seq = 0;
    const act = async (action) => {
      seq += 1;
      const ack = await socket.timeout(10_000).emitWithAck("action", { client_order_id: `${ready.match_id}-${seq}-${Math.random().toString(16).slice(2, 8)}`, ...action });
      codes.push(ack.code || (ack.ok ? "ok" : "refused"));
      return ack;
    };
    socket.on("match_end", () => {
      socket.disconnect();
      resolve(codes);
    });
    socket.on("connect_error", (err) => fail(`match: ${err.message}`));
    socket.on("connect", async () => {
      await socket.timeout(10_000).emitWithAck("sync", {});
      await ticks(2); // the official price flows: the match is live
      await script(act, ticks, () => price);
    });
  });
}

const a = lobbySocket(tokenA);
const b = lobbySocket(tokenB);
await Promise.all([a.connected, b.connected]);
await queue(tokenA);
await queue(tokenB);
const [readyA, readyB] = await Promise.all([a.ready, b.ready]);
if (readyA.match_id !== readyB.match_id) fail("two matches");

// Orders keep to the cooldown (3 s): they come a few official ticks apart.
const results = await Promise.all([
  play(readyA, async (act, ticks, price) => {
    const p = price();
    await act({ type: "open", side: "long", margin: "200", leverage: 10, stop_loss: step(p * 0.97), take_profit: step(p * 1.03) });
    await ticks(14);
    await act({ type: "close", fraction: "0.5" });
    await ticks(14);
    await act({ type: "open", side: "long", margin: "100", leverage: 5 });
  }),
  play(readyB, async (act, ticks, price) => {
    await ticks(4);
    await act({ type: "open", side: "short", margin: "300", leverage: 5 });
    await ticks(6);
    const p = price();
    await act({ type: "set_stops", stop_loss: step(p * 1.02), take_profit: step(p * 0.98) });
    await ticks(14);
    await act({ type: "open", side: "long", margin: "400", leverage: 5 }); // flips
  }),
]);
a.socket.disconnect();
b.socket.disconnect();
out({ match_id: readyA.match_id, acks: { a: results[0], b: results[1] } });
process.exit(0);
