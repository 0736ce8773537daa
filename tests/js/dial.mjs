// How a Node client dials a match server: a CA it trusts (instead of the system's)
// and a host map (instead of DNS), both per client: nothing on the machine changes.
//   --ca FILE             PEM CA bundle trusted for wss:// (https://)
//   --resolve NAME=ADDR   dial NAME (or *.SUFFIX) at ADDR; repeatable, or comma-separated
// dialOptions() returns the extra socket.io-client options: `ca`, and an `agent` whose
// `lookup` applies the host map (socket.io-client hands `agent` and `ca` to the
// WebSocket it opens; the agent passes `lookup` on to net/tls.connect).
import { lookup as dnsLookup } from "node:dns";
import { readFileSync } from "node:fs";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";

export function parseHosts(items) {
  const hosts = new Map();
  for (const item of items.flatMap((s) => s.split(",")).filter((s) => s.trim())) {
    const [name, address] = item.split("=");
    if (!name || !address) throw new Error(`expected NAME=ADDRESS, got ${item}`);
    hosts.set(name.trim().toLowerCase(), address.trim());
  }
  return hosts;
}

export function mappedHost(hosts, hostname) {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  if (hosts.has(host)) return hosts.get(host);
  let best = null;
  for (const [pattern, address] of hosts) {
    if (pattern.startsWith("*.") && host.endsWith(pattern.slice(1))) {
      if (best === null || pattern.length > best[0]) best = [pattern.length, address];
    }
  }
  return best === null ? null : best[1];
}

// `lookup` for net/tls.connect: mapped names to their address, the rest through DNS.
export function hostMapLookup(hosts) {
  return (hostname, options, callback) => {
    if (typeof options === "function") [options, callback] = [{}, options];
    dnsLookup(mappedHost(hosts, hostname) ?? hostname, options, callback);
  };
}

// { caFile, hosts } -> extra socket.io-client options for `url` (http: or https:).
export function dialOptions(url, { caFile = null, hosts = new Map() } = {}) {
  const secure = url.startsWith("https:") || url.startsWith("wss:");
  const ca = caFile ? readFileSync(caFile) : undefined;
  if (!ca && hosts.size === 0) return {};
  const agentOptions = { keepAlive: false, ...(ca ? { ca } : {}) };
  if (hosts.size > 0) agentOptions.lookup = hostMapLookup(hosts);
  const agent = secure ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
  return { agent, ...(ca ? { ca } : {}) };
}

// Split `--ca FILE` / `--resolve NAME=ADDR` out of argv: { rest, dial }.
export function parseDialArgs(argv) {
  const rest = [];
  const dial = { caFile: null, hosts: new Map() };
  const resolve = [];
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === "--ca" && i + 1 < argv.length) dial.caFile = argv[++i];
    else if (argv[i] === "--resolve" && i + 1 < argv.length) resolve.push(argv[++i]);
    else rest.push(argv[i]);
  }
  dial.hosts = parseHosts(resolve);
  return { rest, dial };
}

// One HTTP(S) request through the same dial options (fetch cannot take an agent):
// resolves to { status, headers, text }.
export async function request(url, { method = "GET", headers = {}, body = null } = {}, dial = {}) {
  const { agent } = dialOptions(url, dial);
  const { request: send } = await import(url.startsWith("https:") ? "node:https" : "node:http");
  return new Promise((resolve, reject) => {
    const req = send(url, { method, headers, ...(agent ? { agent } : {}) }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({
        status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString(),
      }));
      res.on("error", reject);
    });
    req.on("error", reject);
    if (body !== null) req.write(body);
    req.end();
  });
}
