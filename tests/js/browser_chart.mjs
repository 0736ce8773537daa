// The match screen's chart in headless Chromium: two players in a duel, one at desktop
// width (1280x800, mouse), one at phone width (390x844, touch), in the Asia/Kolkata
// time zone (UTC+05:30, so local times cannot pass for UTC).
// Usage: node browser_chart.mjs LOBBY_URL ARTIFACT_DIR
// Checks, through the page's read-only hooks (window.tradearena.chart) and the screen:
// candles in the series that grow with the official ticks; 1 m history longer than
// 15 minutes from the candles API, back after a reload; the position's levels as price
// lines; a stop-loss / take-profit dragged with the mouse and with a finger, acknowledged
// by the match server (its `set_stops` answer and the position it reports), and a drag
// the server refuses (the line goes back); the peeked live price as a line of its own.
// Waits are on page state only. Prints one JSON line (the summary), exits 0 or 1.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch } from "./chromium.mjs";
import { Failure, check, stepLog } from "./steps.mjs";

const [baseUrl, artifacts] = process.argv.slice(2);
if (!baseUrl || !artifacts) {
  console.error("usage: node browser_chart.mjs LOBBY_URL ARTIFACT_DIR");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const TIME_ZONE = "Asia/Kolkata";
const HISTORY_S = 15 * 60;
const tag = Date.now().toString(36);
const { started, log, note } = stepLog();

const id = (testid) => `[data-testid="${testid}"]`;

class Player {
  constructor(name, page, viewport) {
    this.name = name;
    this.page = page;
    this.viewport = viewport;
    this.username = `chart-${name}-${tag}`;
    this.password = `pw-${tag}-correct-horse`;
    this.shots = [];
    this.errors = [];
    page.on("pageerror", (err) => this.errors.push(String(err)));
    page.on("console", (msg) => {
      if (msg.type() === "error") this.errors.push(msg.text());
    });
    page.on("response", (resp) => {
      if (resp.status() >= 400) this.errors.push(`${resp.status()} ${resp.url()}`);
    });
  }

  el(testid) {
    return this.page.locator(id(testid));
  }

  async text(testid) {
    return (await this.el(testid).textContent())?.trim() ?? "";
  }

  // A hook of window.tradearena.chart, called in the page.
  hook(name, ...args) {
    return this.page.evaluate(([n, a]) => window.tradearena.chart[n](...a), [name, args]);
  }

  async until(description, fn, arg, timeout = 15000) {
    try {
      await this.page.waitForFunction(fn, arg, { timeout, polling: 100 });
    } catch (err) {
      throw new Failure(`${this.name}: ${description} (${String(err.message).split("\n")[0]})`);
    }
  }

  async showChart() {
    await this.page.evaluate((sel) => document.querySelector(sel).scrollIntoView({ block: "center" }), id("match-chart"));
  }

  async shot(step) {
    await this.showChart();
    // Two pages share the browser: the one in front gets the animation frames the
    // chart paints in, so bring this one forward and let it paint before the picture.
    await this.page.bringToFront();
    await this.page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
    const file = join(artifacts, `${this.viewport}-${step}.png`);
    await this.page.screenshot({ path: file });
    this.shots.push(file);
    note(`${this.name}: screenshot ${file}`);
  }

  async price() {
    const value = Number(await this.text("match-price"));
    check(Number.isFinite(value) && value > 0, `${this.name}: official price shown`);
    return value;
  }
}

async function signUp(p) {
  await p.page.goto(baseUrl, { waitUntil: "domcontentloaded" });
  await p.el("screen-auth").waitFor({ state: "visible" });
  await p.el("auth-username").fill(p.username);
  await p.el("auth-password").fill(p.password);
  await p.el("auth-register").click();
  await p.el("screen-lobby").waitFor({ state: "visible" });
  await p.page.waitForSelector(`${id("lobby-connection")}[data-connected="true"]`);
  await p.page.waitForSelector(`${id("queue-mode")} option[value="duel"]`, { state: "attached" });
  await p.el("queue-mode").selectOption("duel");
  await p.el("queue-format").selectOption("blitz");
  await p.el("queue-join").click();
  await p.page.waitForSelector(`${id("queue-status")}[data-queued="true"], ${id("screen-match")}:visible`);
  note(`${p.name}: registered and queued`);
}

async function reachLive(p) {
  await p.el("screen-match").waitFor({ state: "visible", timeout: 120000 });
  await p.page.waitForSelector(`${id("match-phase")}[data-phase="live"]`, { timeout: 90000 });
  await p.price();
  note(`${p.name}: live in ${await p.text("match-id")}`);
}

const span = (candles) => (candles.length ? candles[candles.length - 1].time - candles[0].time : 0);

async function candlesGrow(p) {
  // The series holds candles, and more of them as official ticks arrive.
  await p.until("candles drawn", () => window.tradearena.chart.candles("1s").length > 0);
  const before = await p.hook("candles", "1s");
  const last = before[before.length - 1].time;
  await p.until(
    "a new 1 s candle from the ticks",
    (t) => {
      const c = window.tradearena.chart.candles("1s");
      return c.length && c[c.length - 1].time > t;
    },
    last,
  );
  const after = await p.hook("candles", "1s");
  check(after.length > before.length, `${p.name}: candles grow with ticks (${before.length} -> ${after.length})`);
  const bad = after.filter((c) => !(c.low <= Math.min(c.open, c.close) && c.high >= Math.max(c.open, c.close)));
  check(bad.length === 0, `${p.name}: every candle is well formed (${JSON.stringify(bad.slice(0, 2))})`);
  // The candle of the last official tick holds its price (read together, in one go).
  const { candle, official } = await p.page.evaluate(() => {
    const chart = window.tradearena.chart;
    const o = chart.official();
    return { official: o, candle: chart.candles("1s").find((c) => c.time === Math.floor(o.at / 1000)) };
  });
  check(candle && candle.low <= official.price && official.price <= candle.high,
    `${p.name}: the candle of the last tick holds its price (${JSON.stringify(candle)} vs ${JSON.stringify(official)})`);
  return { before: before.length, after: after.length };
}

async function history(p, step) {
  // 1 m: the history from the candles API reaches back more than 15 minutes.
  await p.el("chart-interval-1m").click();
  check((await p.hook("interval")) === "1m", `${p.name}: switched to 1 m`);
  await p.until(
    "1 m history longer than 15 minutes",
    (s) => {
      const c = window.tradearena.chart.candles("1m");
      return c.length > 15 && c[c.length - 1].time - c[0].time > s;
    },
    HISTORY_S,
    20000,
  );
  const minutes = await p.hook("candles", "1m");
  check(minutes.every((c, i) => i === 0 || c.time - minutes[i - 1].time >= 60), `${p.name}: 1 m candles a minute apart`);
  check(minutes.every((c) => c.time % 60 === 0), `${p.name}: 1 m candles open on the minute`);
  await p.shot(step);
  await p.el("chart-interval-1s").click();
  check((await p.hook("interval")) === "1s", `${p.name}: back to 1 s`);
  return { candles: minutes.length, minutes: Math.round(span(minutes) / 60) };
}

async function localTime(p) {
  const zone = await p.hook("timeZone");
  check([TIME_ZONE, "Asia/Calcutta"].includes(zone), `${p.name}: the page runs in ${TIME_ZONE} (${zone})`);
  // The epoch is 05:30 in Kolkata: the chart's own formatter shows local time, not UTC.
  const epoch = await p.hook("formatTime", 0);
  check(epoch.includes("05:30") && !epoch.includes("00:00"), `${p.name}: times in the local zone (${epoch})`);
  return epoch;
}

async function open(p, side, margin, leverage, slPct, tpPct) {
  const price = await p.price();
  const sl = (side === "long" ? price * (1 - slPct) : price * (1 + slPct)).toFixed(2);
  const tp = (side === "long" ? price * (1 + tpPct) : price * (1 - tpPct)).toFixed(2);
  await p.el("order-margin").fill(String(margin));
  await p.el("order-leverage").fill(String(leverage));
  await p.el("order-sl").fill(sl);
  await p.el("order-tp").fill(tp);
  await p.el(side === "long" ? "order-long" : "order-short").click();
  await p.el("position").waitFor({ state: "visible", timeout: 15000 });
  await p.until(
    "entry, liquidation, stop-loss and take-profit lines",
    () => new Set(window.tradearena.chart.lines().map((l) => l.kind)).size === 4,
  );
  const lines = Object.fromEntries((await p.hook("lines")).map((l) => [l.kind, l]));
  check(lines.stop_loss.price === Number(sl) && lines.take_profit.price === Number(tp), `${p.name}: stop lines at the levels`);
  check(lines.entry.price === Number(await p.text("pos-entry")), `${p.name}: entry line at the entry`);
  check(lines.entry.title.includes(side), `${p.name}: the entry line names the side (${lines.entry.title})`);
  const styles = new Set(Object.values(lines).map((l) => l.lineStyle));
  check(styles.size === 4, `${p.name}: each level has its own line style (${[...styles]})`);
  note(`${p.name}: ${side} with stop-loss ${sl}, take-profit ${tp}`);
  return { price, sl, tp };
}

// Drags a level's line to a price with the mouse or a finger (CDP touch events).
async function drag(p, kind, target, how) {
  await p.showChart();
  for (let attempt = 0; attempt < 3; attempt++) {
    const from = await p.hook("lineAt", kind);
    const to = await p.hook("yOf", target);
    check(from && to !== null, `${p.name}: ${kind} line and ${target} on the chart`);
    const steps = 6;
    if (how === "mouse") {
      await p.page.mouse.move(from.x, from.y);
      await p.page.mouse.down();
      if ((await p.hook("dragging")) !== kind) {
        await p.page.mouse.up();
        continue;
      }
      for (let i = 1; i <= steps; i++) await p.page.mouse.move(from.x, from.y + ((to - from.y) * i) / steps);
      await p.page.mouse.up();
    } else {
      const cdp = p.cdp;
      const point = (y) => ({ touchPoints: [{ x: Math.round(from.x), y: Math.round(y), radiusX: 4, radiusY: 4, force: 1, id: 1 }] });
      await cdp.send("Input.dispatchTouchEvent", { type: "touchStart", ...point(from.y) });
      if ((await p.hook("dragging")) !== kind) {
        await cdp.send("Input.dispatchTouchEvent", { type: "touchEnd", touchPoints: [] });
        continue;
      }
      for (let i = 1; i <= steps; i++) {
        await cdp.send("Input.dispatchTouchEvent", { type: "touchMove", ...point(from.y + ((to - from.y) * i) / steps) });
      }
      await cdp.send("Input.dispatchTouchEvent", { type: "touchEnd", touchPoints: [] });
    }
    await p.until("the server's answer to the drag", () => window.tradearena.chart.stops()?.ack, null, 15000);
    return p.hook("stops");
  }
  throw new Failure(`${p.name}: could not grab the ${kind} line`);
}

async function dragAccepted(p, kind, target, how, posField) {
  const done = await drag(p, kind, target, how);
  check(done.kind === kind, `${p.name}: dragged ${kind}`);
  const ack = done.ack;
  check(ack.ok === true, `${p.name}: the server accepted the dragged ${kind}: ${JSON.stringify(ack)}`);
  check(Math.abs(Number(done.price) - target) < 0.25 + target * 0.0004, `${p.name}: dropped near ${target} (${done.price})`);
  // The server's own answer carries the position with the new level.
  check(ack.position && Number(ack.position[kind]) === Number(done.price), `${p.name}: the acknowledged position has ${kind} ${done.price} (${JSON.stringify(ack.position)})`);
  await p.until(`the position shows ${kind} ${done.price}`, ([sel, want]) => document.querySelector(sel)?.textContent.trim() === want, [id(posField), done.price]);
  const line = (await p.hook("lines")).find((l) => l.kind === kind);
  check(line.price === Number(done.price), `${p.name}: the ${kind} line stays at ${done.price} (${line.price})`);
  await p.page.waitForSelector(`${id("chart-status")}[data-state="ok"]`);
  note(`${p.name}: ${kind} dragged by ${how} to ${done.price}: ${ack.code} ${ack.message}`);
  return { kind, price: done.price, code: ack.code, how };
}

async function cooldown(p) {
  await p.page.waitForSelector(`${id("order-cooldown")}[data-ready="true"]`, { timeout: 10000 });
}

async function desktop(a) {
  const grow = await candlesGrow(a);
  const tz = await localTime(a);
  await a.shot("01-live");
  const hist = await history(a, "02-history-1m");
  const { price, tp } = await open(a, "long", 200, 5, 0.004, 0.004);
  await a.shot("03-position");

  // The take-profit, dragged with the mouse: a bit closer to the price.
  const target = Number(((Number(tp) + price) / 2 + price * 0.001).toFixed(2));
  const moved = await dragAccepted(a, "take_profit", target, "mouse", "pos-tp");
  await a.shot("04-dragged");

  // A take-profit dragged below the price of a long is refused: the line goes back.
  const now = await a.price();
  const refusedTarget = Number((now * 0.998).toFixed(2));
  const refused = await drag(a, "take_profit", refusedTarget, "mouse");
  check(refused.ack.ok === false && refused.ack.code === "invalid_stops", `A: the server refused a take-profit below the price: ${JSON.stringify(refused.ack)}`);
  await a.page.waitForSelector(`${id("chart-status")}[data-state="refused"]`);
  check((await a.text("chart-status")).includes("invalid_stops"), "A: the refusal is shown under the chart");
  const back = (await a.hook("lines")).find((l) => l.kind === "take_profit");
  check(back.price === Number(moved.price), `A: the take-profit line went back to ${moved.price} (${back.price})`);
  check((await a.text("pos-tp")) === moved.price, "A: the position keeps its take-profit");
  note(`A: refused drag: ${refused.ack.code}`);

  // A reload: the history, the candles and the levels are back.
  // Every 1 s candle of the match seen before is drawn again (the newest may have been forming).
  await a.until("some seconds of the match drawn", () => {
    const from = window.tradearena.chart.matchFrom();
    return window.tradearena.chart.candles("1s").filter((c) => c.time >= from).length >= 8;
  }, null, 20000);
  const before = await a.hook("candles", "1s");
  const matchFrom = await a.page.evaluate(() => window.tradearena.chart.matchFrom());
  const seen = before.filter((c) => c.time >= matchFrom && c.time < before[before.length - 1].time - 1).map((c) => c.time);
  check(seen.length > 5, `A: the match's candles before the reload (${seen.length})`);
  await a.page.reload({ waitUntil: "domcontentloaded" });
  await a.page.waitForSelector(`${id("match-connection")}[data-state="connected"]`, { timeout: 20000 });
  await a.until("the match's 1 s candles back after the reload", (times) => {
    const now = new Set(window.tradearena.chart.candles("1s").map((c) => c.time));
    return times.every((t) => now.has(t));
  }, seen, 20000);
  const countBefore = before.length;
  await a.until("1 m history back after the reload", (s) => {
    const c = window.tradearena.chart.candles("1m");
    return c.length && c[c.length - 1].time - c[0].time > s;
  }, HISTORY_S, 20000);
  // ... and the 1 s history from the API (the same 15 minutes, give or take the seconds the reload took)
  await a.until("1 s history back after the reload", (n) => window.tradearena.chart.candles("1s").length >= n - 30, countBefore, 20000);
  await a.until("the levels back after the reload", () => window.tradearena.chart.lines().length === 4);
  check((await a.hook("lines")).find((l) => l.kind === "take_profit").price === Number(moved.price), "A: the dragged take-profit is back after the reload");
  note(`A: reloaded: ${countBefore} candles before, ${(await a.hook("candles", "1s")).length} after`);
  await a.shot("05-reloaded");
  return { grow, tz, history: hist, moved, refused: refused.ack.code };
}

async function phone(b) {
  const grow = await candlesGrow(b);
  await b.shot("01-live");
  const { price, sl } = await open(b, "short", 100, 10, 0.004, 0.004);
  await b.shot("03-position");
  // The stop-loss of the short, dragged with a finger: closer to the price.
  const target = Number(((Number(sl) + price) / 2 + price * 0.001).toFixed(2));
  const moved = await dragAccepted(b, "stop_loss", target, "touch", "pos-sl");
  await b.shot("04-dragged");
  return { grow, moved };
}

async function peek(p) {
  // A full meter buys a Peek; the peeked price is a line of its own.
  await p.page.waitForSelector(`${id("peek-button")}:enabled`, { timeout: 70000 });
  let ok = false;
  for (let attempt = 0; attempt < 5 && !ok; attempt++) {
    await p.el("peek-button").click();
    ok = await Promise.race([
      p.page.waitForSelector(`${id("effect-peek")}[data-active="true"]`, { timeout: 10000 }).then(() => true),
      p.page.waitForSelector(`${id("match-rejection")}[data-code="peek_not_ready"]`, { timeout: 10000 }).then(() => false),
    ]);
    if (!ok) await p.page.waitForSelector(`${id("peek-button")}:enabled`, { timeout: 10000 });
  }
  check(ok, `${p.name}: the Peek started`);
  await p.until("peeked prices drawn", () => window.tradearena.chart.peeks().length > 0, null, 10000);
  const { peeks, looks, candles } = await p.page.evaluate(() => {
    const chart = window.tradearena.chart;
    return { peeks: chart.peeks(), looks: chart.looks(), candles: chart.candles("1s") };
  });
  check(looks.peek !== null, `${p.name}: the peeked price is drawn`);
  check(looks.peek.title !== looks.official.title && /peek/.test(looks.peek.title), `${p.name}: the peek line has its own label (${looks.peek.title})`);
  check(![looks.official.up, looks.official.down].includes(looks.peek.color), `${p.name}: the peek line has its own colour`);
  check(looks.peek.price === peeks[peeks.length - 1].value, `${p.name}: the peek line is at the last peeked price (${looks.peek.price})`);
  check(peeks.every((pt) => Number.isFinite(pt.value) && pt.value > 0 && !("open" in pt)), `${p.name}: peeks are prices, not candles`);

  const peekShown = await p.text("match-peek-price");
  check(/^Peek: live \d+\.\d\d$/.test(peekShown), `${p.name}: the peeked price is shown apart (${peekShown})`);
  check(candles.length > 0, `${p.name}: the official candles are still drawn`);
  await p.shot("06-peek");
  note(`${p.name}: ${peeks.length} peek point(s), last ${peeks[peeks.length - 1].value}`);
  return { points: peeks.length, title: looks.peek.title };
}

async function main() {
  const profile = mkdtempSync(join(tmpdir(), "tradearena-chromium-"));
  const context = await launch(profile, { hostResolverRules: null, spki: null }, {
    viewport: { width: 1280, height: 800 },
    timezoneId: TIME_ZONE,
  });
  const a = new Player("a", await context.newPage(), "desktop");
  const b = new Player("b", await context.newPage(), "phone");
  await b.page.setViewportSize({ width: 390, height: 844 });
  b.cdp = await context.newCDPSession(b.page);
  await b.cdp.send("Emulation.setTouchEmulationEnabled", { enabled: true, maxTouchPoints: 1 });
  try {
    await signUp(a);
    await signUp(b);
    await Promise.all([reachLive(a), reachLive(b)]);
    const [ra, rb] = await Promise.all([desktop(a), phone(b)]);
    const [pa, pb] = await Promise.all([peek(a), peek(b)]);
    for (const p of [a, b]) {
      check(p.errors.length === 0, `${p.name}: no page errors: ${p.errors.join(" | ")}`);
    }
    const summary = {
      ok: true,
      a: { ...ra, peek: pa },
      b: { ...rb, peek: pb },
      screenshots: [...a.shots, ...b.shots].map((f) => f.slice(artifacts.length + 1)),
      seconds: Math.round((Date.now() - started) / 1000),
    };
    writeFileSync(join(artifacts, "steps.log"), log.join("\n") + "\n");
    process.stdout.write(JSON.stringify(summary) + "\n");
    return 0;
  } catch (err) {
    note(`FAILED: ${err instanceof Failure ? err.message : err.stack || err}`);
    for (const p of [a, b]) {
      try {
        await p.page.screenshot({ path: join(artifacts, `failure-${p.viewport}.png`), fullPage: true });
      } catch {
        // the page may be gone
      }
      if (p.errors.length) note(`${p.name} page errors: ${p.errors.join(" | ")}`);
    }
    writeFileSync(join(artifacts, "steps.log"), log.join("\n") + "\n");
    process.stdout.write(JSON.stringify({ ok: false, error: String(err.message || err) }) + "\n");
    return 1;
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

process.exit(await main());
