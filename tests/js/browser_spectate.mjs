// Spectators in headless Chromium: two players (Node, on the lobby's REST API and the
// match server's Socket.IO, as tests/js/match_client.mjs does) play a duel; a third user
// in the browser sees it in the lobby's "Live matches", watches it, and a second tab
// opens the shared link.
// Usage: node browser_spectate.mjs LOBBY_URL ARTIFACT_DIR DELAY_MS
// Checks: the list shows the match with its players and counts, and its spectator count
// goes up; the spectator never sees anything newer than the delay (every frame's `at` is
// at most the time it was received minus the delay); a player's trade made at server time
// t shows on the spectator's board only at or after t + delay, with the position's side,
// entry, stops and liquidation as the player got them; the chart holds no candle newer
// than the view; the delay is shown; at phone width nothing scrolls sideways.
// Waits are on events or page state only. Prints one JSON line (the summary), exits 0 or 1.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { io } from "socket.io-client";
import { launch } from "./chromium.mjs";
import { Failure, check, report, reportFailure, stepLog } from "./steps.mjs";

const [baseUrl, artifacts, delayArg] = process.argv.slice(2);
if (!baseUrl || !artifacts || !delayArg) {
  console.error("usage: node browser_spectate.mjs LOBBY_URL ARTIFACT_DIR DELAY_MS");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const DELAY_MS = Number(delayArg);
const origin = new URL(baseUrl).origin;
const tag = Date.now().toString(36);
const PASSWORD = `pw-${tag}-correct-horse`;
const { started, log, note } = stepLog();
const id = (testid) => `[data-testid="${testid}"]`;
const shots = [];

// ---------- the players: REST and Socket.IO from Node ----------

async function api(method, path, token, body) {
  const resp = await fetch(`${origin}/api/v1${path}`, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await resp.json().catch(() => null);
  check(resp.ok, `${method} ${path}: ${resp.status} ${JSON.stringify(data)}`);
  return data;
}

function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Failure(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

class Player {
  constructor(name) {
    this.name = name;
    this.username = `spec-${name}-${tag}`;
    this.fills = [];
  }

  async join() {
    const pair = await api("POST", "/auth/register", null, { username: this.username, password: PASSWORD });
    this.token = pair.access_token;
    this.id = pair.user.id;
    this.lobby = io(`${origin}/lobby`, { auth: { token: this.token }, transports: ["websocket"], reconnection: false });
    this.ready = new Promise((resolve) => {
      this.lobby.on("notification", (note) => {
        if (note.kind === "match_ready") resolve(note.payload);
      });
    });
    await within(10000, `${this.name}: lobby socket`, new Promise((resolve, reject) => {
      this.lobby.on("connect", resolve);
      this.lobby.on("connect_error", (err) => reject(new Failure(`${this.name}: lobby refused: ${err.message}`)));
    }));
    await api("POST", "/queue", this.token, { mode: "duel", format: "blitz" });
    note(`${this.name}: registered and queued`);
  }

  async play() {
    const ready = await within(60000, `${this.name}: match_ready`, this.ready);
    this.matchId = ready.match_id;
    this.socket = io(`${ready.url}/match`, { auth: { token: ready.token }, transports: ["websocket"], reconnection: false });
    let acked = null;
    this.socket.on("tick", (data) => {
      if (Number.isInteger(data.seq) && (acked === null || data.seq - acked >= 4)) {
        acked = data.seq;
        this.socket.emit("tick_ack", { seq: acked });
      }
    });
    this.socket.on("fill", (fill) => this.fills.push(fill));
    await within(15000, `${this.name}: match socket`, new Promise((resolve, reject) => {
      this.socket.on("connect", resolve);
      this.socket.on("connect_error", (err) => reject(new Failure(`${this.name}: match refused: ${JSON.stringify(err.data)}`)));
    }));
    note(`${this.name}: connected to ${this.matchId}`);
  }

  async live() {
    for (;;) {
      const reply = await this.socket.timeout(10000).emitWithAck("sync", {});
      check(reply.ok, `${this.name}: sync ${JSON.stringify(reply)}`);
      if (reply.state.phase === "live" && reply.state.official_price) return reply.state;
      await within(20000, `${this.name}: the next phase`, new Promise((resolve) => this.socket.once("phase", resolve)));
    }
  }

  /** Opens a position with both stops; the fill as the player's own socket reports it. */
  async open(side, official) {
    const p = Number(official);
    const [sl, tp] = side === "long" ? [p * 0.99, p * 1.01] : [p * 1.01, p * 0.99];
    const got = new Promise((resolve) => this.socket.once("fill", resolve));
    const ack = await this.socket.timeout(10000).emitWithAck("action", {
      type: "open",
      side,
      margin: "200",
      leverage: 5,
      stop_loss: sl.toFixed(2),
      take_profit: tp.toFixed(2),
      client_order_id: `${this.name}-${tag}-${side}`,
    });
    check(ack.ok, `${this.name}: open ${side}: ${JSON.stringify(ack)}`);
    const fill = await within(10000, `${this.name}: fill`, got);
    check(fill.position?.side === side, `${this.name}: the fill holds the ${side} position`);
    note(`${this.name}: ${side} filled at server time ${fill.at} (entry ${fill.position.entry})`);
    return fill;
  }

  close() {
    this.socket?.disconnect();
    this.lobby?.disconnect();
  }
}

// ---------- the spectator: pages ----------

class Page {
  constructor(name, page) {
    this.name = name;
    this.page = page;
    this.errors = [];
    page.on("pageerror", (err) => this.errors.push(String(err)));
    page.on("console", (msg) => {
      if (msg.type() === "error") this.errors.push(msg.text());
    });
  }

  el(testid) {
    return this.page.locator(id(testid));
  }

  async until(description, fn, arg, timeout = 15000) {
    try {
      await this.page.waitForFunction(fn, arg, { timeout, polling: 100 });
    } catch (err) {
      throw new Failure(`${this.name}: ${description} (${String(err.message).split("\n")[0]})`);
    }
  }

  hook(name) {
    return this.page.evaluate((n) => window.tradearena.screens.spectate[n](), name);
  }

  async shot(step) {
    await this.page.bringToFront();
    await this.page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
    const file = join(artifacts, `${step}.png`);
    await this.page.screenshot({ path: file, fullPage: true });
    shots.push(`${step}.png`);
    note(`${this.name}: screenshot ${step}.png`);
  }

  async noSidewaysScroll(what) {
    const { scroll, client } = await this.page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
    }));
    check(scroll <= client, `${this.name}: ${what} scrolls sideways at phone width (${scroll} > ${client})`);
  }
}

async function signIn(p, username, register) {
  await p.page.goto(baseUrl, { waitUntil: "domcontentloaded" });
  await p.el("screen-auth").waitFor({ state: "visible" });
  await p.el("auth-username").fill(username);
  await p.el("auth-password").fill(PASSWORD);
  await p.el(register ? "auth-register" : "auth-login").click();
  await p.el("screen-lobby").waitFor({ state: "visible" });
}

async function main() {
  const profile = mkdtempSync(join(tmpdir(), "tradearena-chromium-"));
  const context = await launch(profile, { hostResolverRules: null, spki: null }, { viewport: { width: 1280, height: 800 } });
  const a = new Player("a");
  const b = new Player("b");
  const watcher = new Page("watcher", await context.newPage());
  const phone = new Page("phone", await context.newPage());
  await phone.page.setViewportSize({ width: 390, height: 844 });
  const spectatorName = `spec-watch-${tag}`;
  try {
    // The spectator signs up while the duel forms.
    await Promise.all([a.join().then(() => b.join()), signIn(watcher, spectatorName, true)]);
    await Promise.all([a.play(), b.play()]);
    check(a.matchId === b.matchId, "both players in one match");
    const matchId = a.matchId;
    const state = await a.live();
    await b.live();
    note(`live: ${matchId}`);

    // The lobby's live list shows the duel: its players, both online, nobody watching.
    const row = `${id("live-row")}[data-match-id="${matchId}"]`;
    await watcher.page.waitForSelector(`${row}[data-players-connected="2"]`, { timeout: 15000 });
    const listed = await watcher.page.evaluate((mid) => window.tradearena.screens.live().find((m) => m.match_id === mid), matchId);
    check(listed.mode === "duel" && listed.format === "blitz", `the list names mode and format (${listed.mode}/${listed.format})`);
    check(listed.players.map((p) => p.username).sort().join() === [a.username, b.username].sort().join(), "the list names both players");
    check(listed.spectate_delay_ms === DELAY_MS, `the list gives the delay (${listed.spectate_delay_ms})`);
    const before = listed.spectators;
    check(before === 0, `nobody watches yet (${before})`);
    const rowText = await watcher.page.locator(row).textContent();
    check(rowText.includes(a.username) && rowText.includes("2/2"), `the row shows the players and the count (${rowText})`);
    await watcher.shot("01-live-list");

    // Watch: the spectator screen, its link, the delay shown.
    await watcher.page.locator(`${row} ${id("live-watch")}`).click();
    await watcher.el("screen-spectate").waitFor({ state: "visible" });
    check(watcher.page.url().endsWith(`#/watch/${matchId}`), `the address is the match's link (${watcher.page.url()})`);
    await watcher.page.waitForSelector(`${id("spectate-connection")}[data-state="connected"]`, { timeout: 15000 });
    const delayText = (await watcher.el("spectate-delay").textContent()).trim();
    check(delayText === `${DELAY_MS / 1000} s behind`, `the delay is shown (${delayText})`);
    const link = await watcher.el("spectate-link").inputValue();
    check(link.endsWith(`#/watch/${matchId}`), `the share link (${link})`);
    await watcher.until("a first delayed frame", () => window.tradearena.screens.spectate.frames().length > 0);

    // The players trade; the spectator sees each trade only once the delay has passed.
    const fillA = await a.open("long", state.official_price);
    const fillB = await b.open("short", state.official_price);
    await watcher.until(
      "both positions on the spectator's board",
      ([pa, pb]) => {
        const f = window.tradearena.screens.spectate.frames();
        const last = f[f.length - 1];
        return last && last.positions[pa] === "long" && last.positions[pb] === "short";
      },
      [a.id, b.id],
      DELAY_MS + 15000,
    );
    const frames = await watcher.hook("frames");
    const late = frames.filter((f) => f.at > f.received - DELAY_MS);
    check(late.length === 0, `no frame newer than the delay (${JSON.stringify(late.slice(0, 3))})`);
    const seen = {};
    for (const [p, fill, side] of [[a, fillA, "long"], [b, fillB, "short"]]) {
      const first = frames.find((f) => f.positions[p.id] === side);
      check(first.received >= fill.at + DELAY_MS, `${p.name}: the trade at ${fill.at} showed at ${first.received}, before t + delay`);
      check(first.at >= fill.at, `${p.name}: the view showing it is of its time or later (${first.at} vs ${fill.at})`);
      check(frames.every((f) => f.at >= fill.at || f.positions[p.id] !== side), `${p.name}: no view before the trade shows it`);
      seen[p.name] = { traded_at: fill.at, shown_at: first.received, view_at: first.at, waited_ms: first.received - fill.at };
      const cells = await watcher.page.evaluate(
        ([sel, player]) => {
          const tr = document.querySelector(`${sel}[data-player="${player}"]`);
          const cell = (t) => tr.querySelector(`[data-testid="${t}"]`)?.textContent.trim();
          return { side: cell("spectate-side"), entry: cell("spectate-entry"), sl: cell("spectate-sl"), tp: cell("spectate-tp"), liq: cell("spectate-liq"), balance: cell("spectate-balance"), equity: cell("spectate-equity") };
        },
        [id("spectate-row"), p.id],
      );
      const pos = fill.position;
      check(cells.side === side, `${p.name}: side on the board (${cells.side})`);
      for (const [shown, want, what] of [[cells.entry, pos.entry, "entry"], [cells.sl, pos.stop_loss, "stop-loss"], [cells.tp, pos.take_profit, "take-profit"], [cells.liq, pos.liquidation, "liquidation"]]) {
        check(Number(shown) === Number(Number(want).toFixed(2)), `${p.name}: ${what} ${shown} on the board, ${want} in the fill`);
      }
      check(cells.balance && cells.equity && cells.balance !== "–", `${p.name}: balance and equity shown (${cells.balance}, ${cells.equity})`);
    }
    const { view, candles } = await watcher.page.evaluate(() => {
      const s = window.tradearena.screens.spectate;
      return { view: s.view(), candles: s.chart.candles("1s") };
    });
    check(candles.length > 0, "the chart draws the delayed candles");
    const newest = candles[candles.length - 1].time * 1000;
    check(newest <= view.at, `no candle newer than the view (${newest} > ${view.at})`);
    await watcher.shot("02-watching");

    // A second tab: the list counts the spectator; then it opens the shared link.
    await signIn(phone, spectatorName, false);
    await phone.page.waitForSelector(`${row}[data-spectators="1"]`, { timeout: 15000 });
    await phone.noSidewaysScroll("the lobby");
    await phone.shot("03-phone-list-counts");
    await phone.page.goto(link, { waitUntil: "domcontentloaded" });
    await phone.el("screen-spectate").waitFor({ state: "visible", timeout: 15000 });
    await phone.page.waitForSelector(`${id("spectate-connection")}[data-state="connected"]`, { timeout: 15000 });
    await phone.until("its board", () => document.querySelectorAll('[data-testid="spectate-row"]').length === 2);
    await watcher.page.waitForSelector(`${id("spectate-count")}[data-count="2"]`, { timeout: 15000 });
    await phone.noSidewaysScroll("the spectator screen");
    await phone.shot("04-phone-watching");

    for (const p of [watcher, phone]) check(p.errors.length === 0, `${p.name}: no page errors: ${p.errors.join(" | ")}`);
    const summary = {
      ok: true,
      match_id: matchId,
      delay_ms: DELAY_MS,
      frames: frames.length,
      seen,
      spectators: { before, listed_after: 1, watching: 2 },
      screenshots: shots,
      seconds: Math.round((Date.now() - started) / 1000),
    };
    return report(artifacts, log, summary);
  } catch (err) {
    return await reportFailure(artifacts, log, note, err, [watcher, phone]);
  } finally {
    a.close();
    b.close();
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

process.exit(await main());
