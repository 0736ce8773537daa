// The replay viewer in headless Chromium: a finished match opened from the History
// screen's match detail ("Watch replay") and by its link (#/replay/<id>), played with
// the speed control (the pace follows it) to the end at 16x, the positions shown on
// the way, the final board read from the page; at phone width, no sideways scroll.
// Usage: node browser_replay.mjs LOBBY_URL ARTIFACT_DIR
//   Chromium starts at once; the script prints READY and then reads one JSON line on
//   stdin: {"username", "password", "match_id"} (a player of that finished match).
// Every wait is on a selector or a page state (no sleeps as synchronisation); prints
// one JSON line (the summary) last and exits 0, or prints the failure and exits 1.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { launch, parseNetworkArgs } from "./chromium.mjs";
import { Failure, check, stepLog } from "./steps.mjs";

const { rest: positional, network } = parseNetworkArgs(process.argv.slice(2));
const [baseUrl, artifacts] = positional;
if (!baseUrl || !artifacts) {
  console.error("usage: node browser_replay.mjs LOBBY_URL ARTIFACT_DIR");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const VIEWPORTS = { desktop: { width: 1280, height: 900 }, phone: { width: 390, height: 844 } };
const { started, log, note } = stepLog();
const id = (testid) => `[data-testid="${testid}"]`;
const hooks = () => page.evaluate(() => window.tradearena.screens.replay());

let page;
let width = "desktop";
let shots = 0;
const errors = [];

async function shot(step) {
  shots += 1;
  const file = join(artifacts, `${step}-${width}.png`);
  await page.screenshot({ path: file, fullPage: true });
  note(`screenshot ${file}`);
}

async function noSidewaysScroll(where) {
  const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check(scroll <= inner, `${where} at ${width}: the page does not scroll sideways (${scroll} > ${inner})`);
}

async function input() {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) if (line.trim()) return JSON.parse(line);
  throw new Failure("no match given on stdin");
}

async function signIn(username, password) {
  const resp = await page.goto(baseUrl, { waitUntil: "domcontentloaded" });
  check(resp.status() === 200, "index served");
  await page.locator(id("screen-auth")).waitFor({ state: "visible" });
  await page.locator(id("auth-username")).fill(username);
  await page.locator(id("auth-password")).fill(password);
  await page.locator(id("auth-login")).click();
  await page.locator(id("screen-lobby")).waitFor({ state: "visible" });
  note(`signed in as ${username}`);
}

async function loaded(matchId) {
  await page.waitForSelector(`${id("screen-replay")}[data-loaded="true"][data-match-id="${matchId}"]`, { timeout: 20000 });
  const h = await hooks();
  check(h.matchId === matchId && h.frames > 0, `the replay of ${matchId} is loaded (${h.frames} frames)`);
  return h;
}

/** Match ms per wall ms while playing at `speed`, over about `wallMs`. */
async function pace(speed, wallMs) {
  await page.locator(id(`replay-speed-${speed}`)).click();
  check((await page.locator(id(`replay-speed-${speed}`)).getAttribute("aria-pressed")) === "true", `${speed}x pressed`);
  const [t0, w0] = await page.evaluate(() => [window.tradearena.screens.replay().t, performance.now()]);
  await page.waitForFunction(([w, ms]) => performance.now() - w >= ms, [w0, wallMs], { polling: 50 });
  const [t1, w1] = await page.evaluate(() => [window.tradearena.screens.replay().t, performance.now()]);
  const rate = (t1 - t0) / (w1 - w0);
  note(`${speed}x: ${Math.round(t1 - t0)} match ms in ${Math.round(w1 - w0)} wall ms (x${rate.toFixed(2)})`);
  return rate;
}

async function main() {
  const profileDir = mkdtempSync(join(tmpdir(), "tradearena-chromium-"));
  const context = await launch(profileDir, network, { viewport: VIEWPORTS.desktop });
  page = await context.newPage();
  page.on("pageerror", (err) => errors.push(String(err)));
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(msg.text());
  });
  page.on("response", (resp) => {
    if (resp.status() >= 400) errors.push(`${resp.status()} ${resp.url()}`);
  });
  try {
    process.stdout.write("READY\n");
    const { username, password, match_id: matchId } = await input();
    note(`match ${matchId}`);
    await signIn(username, password);

    // From the History screen's match detail.
    await page.locator(id("nav-history")).click();
    await page.locator(`${id("history-row")}[data-match-id="${matchId}"] ${id("history-open")}`).click();
    await page.waitForSelector(`${id("match-detail")}[data-loaded="true"][data-match-id="${matchId}"]`);
    await page.locator(id("detail-replay")).click();
    await loaded(matchId);
    const link = new URL(`#/replay/${matchId}`, baseUrl).href;
    check(page.url() === link, `the address is the replay's link (${page.url()})`);
    await page.locator(id("replay-copy-link")).click();
    await page.waitForSelector(`${id("replay-copy-link")}[data-copied="true"]`);
    check((await page.locator(id("replay-link")).inputValue()) === link, "Copy link gives #/replay/<match id>");
    await shot("replay-start");

    // The link opens the viewer: on a hash change, and on a fresh load of the page.
    await page.goto(baseUrl, { waitUntil: "domcontentloaded" });
    await page.locator(id("screen-lobby")).waitFor({ state: "visible" });
    await page.goto(link, { waitUntil: "domcontentloaded" });
    await loaded(matchId);
    await page.reload({ waitUntil: "domcontentloaded" });
    const first = await loaded(matchId);
    check(first.t === 0 && !first.playing, "the replay starts paused at the start");
    check((await page.locator(id("screen-replay")).isVisible()) && (await page.locator(id("screen-lobby")).isHidden()), "the link shows the replay screen");

    // Play: the pace follows the speed control.
    await page.locator(id("replay-play")).click();
    await page.waitForSelector(`${id("screen-replay")}[data-playing="true"]`);
    const slow = await pace(2, 1200);
    await page.waitForSelector(`${id("replay-position")}:not([data-side=""])`, { timeout: 20000 });
    await shot("replay-position");
    const fast = await pace(16, 1200);
    check(slow > 1.2 && slow < 3, `2x plays about twice real time (x${slow.toFixed(2)})`);
    check(fast / slow > 4, `16x is much faster than 2x (x${fast.toFixed(2)} vs x${slow.toFixed(2)})`);
    await page.waitForSelector(`${id("screen-replay")}[data-ended="true"][data-playing="false"]`, { timeout: 30000 });
    const end = await hooks();
    check(end.t === end.duration && end.index === end.frames - 1, "played to the last frame");
    check(end.seen.positions > 0, `positions were shown during playback (${end.seen.positions} frames)`);
    const rows = await page.locator(id("replay-row")).evaluateAll((els) =>
      els.map((el) => ({ player: el.dataset.player, rank: Number(el.dataset.rank), equity: el.dataset.equity, side: el.querySelector('[data-testid="replay-position"]').dataset.side })),
    );
    check(JSON.stringify(rows.map((r) => [r.player, r.rank, r.equity])) === JSON.stringify(end.board.map((b) => [b.player, b.rank, b.equity])), "the board shown is the final frame's");
    check(rows.every((r) => r.side === ""), "everything is settled at the end");
    const fills = await page.locator(id("replay-fill")).count();
    check(fills > 0, `fills listed (${fills})`);
    await shot("replay-end");

    // Back in time with the slider: the state follows.
    await page.locator(id("replay-slider")).fill(String(Math.floor(end.duration / 2 / 1000) * 1000));
    await page.waitForFunction(() => window.tradearena.screens.replay().t < window.tradearena.screens.replay().duration);
    check((await hooks()).index < end.index, "the slider goes back in time");

    width = "phone";
    await page.setViewportSize(VIEWPORTS.phone);
    await noSidewaysScroll("replay");
    await shot("replay-middle");

    check(errors.length === 0, `no page errors: ${errors.join(" | ")}`);
    const summary = {
      ok: true,
      match_id: matchId,
      board: rows,
      result: end.result,
      pace: { x2: slow, x16: fast },
      frames: end.frames,
      positions_shown: end.seen.positions,
      screenshots: shots,
      seconds: Math.round((Date.now() - started) / 1000),
    };
    writeFileSync(join(artifacts, "steps.log"), log.join("\n") + "\n");
    process.stdout.write(JSON.stringify(summary) + "\n");
    return 0;
  } catch (err) {
    note(`FAILED: ${err instanceof Failure ? err.message : err.stack || err}`);
    try {
      await page.screenshot({ path: join(artifacts, `failure-${width}.png`), fullPage: true });
    } catch {
      // the page may be gone
    }
    if (errors.length) note(`page errors: ${errors.join(" | ")}`);
    writeFileSync(join(artifacts, "steps.log"), log.join("\n") + "\n");
    process.stdout.write(JSON.stringify({ ok: false, error: String(err.message || err) }) + "\n");
    return 1;
  } finally {
    await context.close();
    rmSync(profileDir, { recursive: true, force: true });
  }
}

process.exit(await main());
