// The reference: a minimal Node socket.io 4 server doing the same broadcast as a match
// server (a ~60-byte `tick` to one room, `hz` times a second). Prints READY when listening.
// Usage: node reference_server.mjs PORT HZ
import { createServer } from "node:http";
import { Server } from "socket.io";

const [portArg, hzArg] = process.argv.slice(2);
const httpServer = createServer();
const io = new Server(httpServer, { transports: ["websocket"] });
const match = io.of("/match");
match.on("connection", (socket) => socket.join("match"));
let price = 100000;
setInterval(() => {
  price += Math.round((Math.random() - 0.5) * 200) / 100;
  match.to("match").emit("tick", { price: price.toFixed(2), at: Date.now() });
}, 1000 / Number(hzArg));
httpServer.listen(Number(portArg), "127.0.0.1", () => console.log("READY"));
