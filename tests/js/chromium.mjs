// Headless Chromium as the tests launch it, and the network options every browser
// script accepts (no system file is touched):
//   --host-resolver-rules RULES  Chromium's own resolver map, e.g. "MAP *.play.test 10.77.0.1"
//   --spki HASH[,HASH...]        base64 SHA-256 SPKI hashes of certificates to accept (a test
//                                CA's or its leaf's: tradearena.testing.tls), for wss:// to
//                                match servers without a trust-store edit
import { chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

// Split the network options out of argv: { rest, network }.
export function parseNetworkArgs(argv) {
  const rest = [];
  const network = { hostResolverRules: null, spki: null };
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === "--host-resolver-rules" && i + 1 < argv.length) network.hostResolverRules = argv[++i];
    else if (argv[i] === "--spki" && i + 1 < argv.length) network.spki = argv[++i];
    else rest.push(argv[i]);
  }
  return { rest, network };
}

export function networkArgs(network) {
  return [
    ...(network.hostResolverRules ? [`--host-resolver-rules=${network.hostResolverRules}`] : []),
    ...(network.spki ? [`--ignore-certificate-errors-spki-list=${network.spki}`] : []),
  ];
}

export async function launch(profile, network, options = {}) {
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ...options,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      ...networkArgs(network),
    ],
  });
}
