// A player on the stock socket.io-client: connects to /lobby with an access token and
// prints one JSON line per thing seen, until the event named on argv arrives.
// Usage: node lobby_client.mjs URL TOKEN [wait_for_event]
import { io } from "socket.io-client";

const [url, token, waitFor = "notification"] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const socket = io(`${url}/lobby`, { auth: { token }, transports: ["websocket"], reconnection: false });
const timer = setTimeout(() => { out({ kind: "timeout" }); process.exit(3); }, 20000);

socket.on("connect_error", (err) => {
  out({ kind: "connect_error", message: err.message, data: err.data ?? null });
  clearTimeout(timer);
  process.exit(2);
});
socket.on("connect", () => out({ kind: "connected" }));
socket.onAny((event, data) => {
  out({ kind: "event", event, data });
  if (event === waitFor) {
    clearTimeout(timer);
    socket.disconnect();
    process.exit(0);
  }
});
