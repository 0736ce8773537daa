// A player on the stock socket.io-client: connects to /match with a match token,
// sends the actions given as JSON on argv, prints one JSON line per thing seen.
// Usage: node match_client.mjs URL TOKEN '[{"type":"open",...}]' [wait_for_event]
//          [--ca FILE] [--resolve NAME=ADDR]   (wss:// with a private CA, a host map: dial.mjs)
import { io } from "socket.io-client";
import { dialOptions, parseDialArgs } from "./dial.mjs";

const { rest, dial } = parseDialArgs(process.argv.slice(2));
const [url, token, actionsJson = "[]", waitFor = "fill"] = rest;
const actions = JSON.parse(actionsJson);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const socket = io(`${url}/match`, {
  auth: { token }, transports: ["websocket"], reconnection: false, ...dialOptions(url, dial),
});
const timer = setTimeout(() => { out({ kind: "timeout" }); process.exit(3); }, 20000);
let resolveSeen;
const seen = new Promise((resolve) => { resolveSeen = resolve; });

let acked = null; // flow control (docs/matchserver.md): ack about every 4th tick
socket.onAny((event, data) => {
  out({ kind: "event", event, data });
  if (event === "tick" && Number.isInteger(data.seq) && (acked === null || data.seq - acked >= 4)) {
    acked = data.seq;
    socket.emit("tick_ack", { seq: acked });
  }
  if (event === waitFor) resolveSeen();
});
socket.on("connect_error", (err) => {
  out({ kind: "connect_error", message: err.message, data: err.data ?? null });
  clearTimeout(timer);
  process.exit(2);
});
socket.on("connect", async () => {
  out({ kind: "connected" });
  const state = await socket.timeout(10000).emitWithAck("sync", {});
  out({ kind: "sync", data: state });
  for (const action of actions) {
    const ack = await socket.timeout(10000).emitWithAck("action", action);
    out({ kind: "ack", data: ack });
  }
  await seen; // the timer above fails the run if it never comes
  clearTimeout(timer);
  socket.disconnect();
  process.exit(0);
});
