// Headless Chromium opens wss:// to a match server by name, with only the network
// options of chromium.mjs (its own resolver map, the test CA's SPKI hash).
// Usage: node browser_wss.mjs HTTPS_URL [--host-resolver-rules RULES] [--spki HASHES]
// Loads HTTPS_URL/healthz (the page's origin is the server's own), then opens a
// WebSocket to the Engine.IO endpoint and waits for the server's open packet.
// Prints one JSON line: { healthz, open } or { error }; exits 0, or 1 on error.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, parseNetworkArgs } from "./chromium.mjs";

const { rest, network } = parseNetworkArgs(process.argv.slice(2));
const [url] = rest;
const profile = mkdtempSync(join(tmpdir(), "tradearena-chromium-"));
const context = await launch(profile, network);
let code = 0;
try {
  const page = await context.newPage();
  const resp = await page.goto(`${url}/healthz`);
  const healthz = { status: resp.status(), body: await resp.json() };
  const wss = url.replace(/^https:/, "wss:") + "/socket.io/?EIO=4&transport=websocket";
  const open = await page.evaluate((target) => new Promise((resolve, reject) => {
    const ws = new WebSocket(target);
    ws.onmessage = (event) => { resolve(String(event.data)); ws.close(); };
    ws.onerror = () => reject(new Error(`websocket to ${target} failed`));
    setTimeout(() => reject(new Error("no open packet within 10 s")), 10000);
  }), wss);
  process.stdout.write(JSON.stringify({ healthz, open }) + "\n");
} catch (err) {
  process.stdout.write(JSON.stringify({ error: String(err.message || err).split("\n")[0] }) + "\n");
  code = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(code);
