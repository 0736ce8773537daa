// Two players in headless Chromium play a whole duel through the web client.
// Usage: node browser_match.mjs LOBBY_URL ARTIFACT_DIR
//          [--host-resolver-rules "MAP *.play.test 10.77.0.1"] [--spki BASE64[,BASE64...]]
// (the network options of chromium.mjs: match servers' names and a test CA, for wss://)
// Every wait is on a selector or a page state (no sleeps); every step leaves a
// screenshot in ARTIFACT_DIR. Prints one JSON line (the summary) and exits 0, or
// prints the failure, takes a screenshot of each page and exits 1.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, parseNetworkArgs } from "./chromium.mjs";
import { Failure, check, report, reportFailure, stepLog } from "./steps.mjs";

const { rest: positional, network } = parseNetworkArgs(process.argv.slice(2));
const [baseUrl, artifacts] = positional;
if (!baseUrl || !artifacts) {
  console.error("usage: node browser_match.mjs LOBBY_URL ARTIFACT_DIR [--host-resolver-rules RULES] [--spki HASHES]");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const tag = Date.now().toString(36);
const { started, log, note } = stepLog();

const id = (testid) => `[data-testid="${testid}"]`;

class Player {
  constructor(name, page) {
    this.name = name;
    this.page = page;
    this.username = `web-${name}-${tag}`;
    this.password = `pw-${tag}-correct-horse`;
    this.shots = 0;
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

  async shot(step) {
    this.shots += 1;
    const file = join(artifacts, `${step}-${this.name}.png`);
    await this.page.screenshot({ path: file, fullPage: true });
    note(`${this.name}: screenshot ${file}`);
  }

  async waitAttr(testid, attr, value, timeout = 15000) {
    await this.page.waitForSelector(`${id(testid)}[data-${attr}="${value}"]`, { timeout });
  }

  async rejection(code, timeout = 10000) {
    await this.waitAttr("match-rejection", "code", code, timeout);
    const text = await this.text("match-rejection");
    check(text.startsWith(`${code}: `) && text.length > code.length + 3, `${this.name}: rejection shows code and message: ${text}`);
    return text;
  }

  async price() {
    const text = await this.text("match-price");
    const value = Number(text);
    check(Number.isFinite(value) && value > 0, `${this.name}: official price shown (${text})`);
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
  check((await p.text("whoami")) === p.username, `${p.name}: the top bar names the player`);
  await p.waitAttr("lobby-connection", "connected", "true");
  await p.page.waitForSelector(`${id("queue-mode")} option[value="duel"]`, { state: "attached" });
  note(`${p.name}: registered as ${p.username}`);
}

async function queue(p) {
  await p.el("queue-mode").selectOption("duel");
  await p.el("queue-format").selectOption("blitz");
  await p.el("queue-join").click();
}

async function reachLive(p) {
  await p.el("screen-match").waitFor({ state: "visible", timeout: 120000 });
  note(`${p.name}: match screen (${await p.text("match-id")})`);
  await p.waitAttr("match-connection", "state", "connected", 60000);
  await p.waitAttr("match-phase", "phase", "live", 90000);
  await p.price();
  await p.page.waitForSelector(`${id("leaderboard-row")}:nth-of-type(2)`, { timeout: 15000 });
  const rows = await p.page.locator(id("leaderboard-row")).count();
  check(rows === 2, `${p.name}: the live leaderboard has both players (${rows})`);
  check((await p.page.locator(`${id("leaderboard-row")}.me`).count()) === 1, `${p.name}: own row marked`);
  check(/^\d+:\d\d$/.test(await p.text("match-clock")), `${p.name}: match clock counts down`);
  check(await p.el("match-feed-frozen").isHidden(), `${p.name}: feed not frozen`);
  note(`${p.name}: live`);
}

const fills = (p, reason) => p.page.locator(`${id("fill-item")}[data-reason="${reason}"]`);

async function traderA(a, b) {
  // A stop-loss on the wrong side is refused with its code and message.
  let price = await a.price();
  await a.el("order-margin").fill("200");
  await a.el("order-leverage").fill("5");
  await a.el("order-sl").fill((price * 1.02).toFixed(2));
  await a.el("order-tp").fill((price * 1.04).toFixed(2));
  await a.el("order-long").click();
  await a.rejection("invalid_stops");
  check(await a.el("pos-none").isVisible(), "A: no position after a refused order");
  await a.shot("04-rejected");

  // A long with stop-loss and take-profit: the fill and the position are shown.
  price = await a.price();
  const sl = (price * 0.98).toFixed(2);
  const tp = (price * 1.02).toFixed(2);
  await a.el("order-sl").fill(sl);
  await a.el("order-tp").fill(tp);
  await a.el("order-long").click();
  await fills(a, "open").first().waitFor({ timeout: 15000 });
  await a.el("position").waitFor({ state: "visible" });
  check((await a.text("pos-side")) === "long", "A: position side long");
  const entry = Number(await a.text("pos-entry"));
  const liquidation = Number(await a.text("pos-liquidation"));
  check(entry > 0 && Math.abs(entry - price) / price < 0.01, `A: entry near the price (${entry} vs ${price})`);
  check(liquidation > 0 && liquidation < entry, `A: liquidation price below entry (${liquidation} < ${entry})`);
  check(Math.abs(liquidation - entry * (1 - 1 / 5)) / entry < 0.01, `A: liquidation ≈ entry × (1 − 1/leverage) (${liquidation})`);
  check((await a.text("pos-sl")) === sl, `A: stop-loss shown (${await a.text("pos-sl")} vs ${sl})`);
  check((await a.text("pos-tp")) === tp, `A: take-profit shown`);
  check((await a.text("pos-margin")).includes("× 5"), "A: leverage shown");
  check(/^-?[\d,]+\.\d\d$/.test(await a.text("pos-pnl")), `A: unrealized PnL shown (${await a.text("pos-pnl")})`);
  check((await fills(a, "open").first().getAttribute("data-side")) === "buy", "A: fill is a buy");
  const qtyOpen = Number(await a.text("pos-qty"));
  note(`A: long ${qtyOpen} @ ${entry}, liquidation ${liquidation}`);
  await a.shot("05-position");

  // Set stops: a new take-profit replaces the old one.
  const tp2 = (Number(tp) + 10).toFixed(2);
  await a.el("order-tp").fill(tp2);
  await a.el("order-set-stops").click();
  await a.page.waitForFunction(([sel, want]) => document.querySelector(sel)?.textContent.trim() === want,
    [id("pos-tp"), tp2], { timeout: 10000 });

  // After the cooldown, close half: a close fill, half the quantity left.
  await a.waitAttr("order-cooldown", "ready", "true", 10000);
  await a.el("order-close-half").click();
  await a.waitAttr("order-cooldown", "ready", "false", 5000);
  await fills(a, "close").first().waitFor({ timeout: 15000 });
  await a.page.waitForFunction(([sel, before]) => Number(document.querySelector(sel)?.textContent) < before,
    [id("pos-qty"), qtyOpen], { timeout: 10000 });
  note(`A: closed half (${await a.text("pos-qty")} left)`);

  // The Action Bar: trade delay on the leader if charged, else a refusal.
  const charges = Number(await a.el("ability-charges").getAttribute("data-charges"));
  await a.el("ability-target").selectOption("leader");
  await a.el("ability-delay").click();
  let ability;
  if (charges > 0) {
    await b.waitAttr("effect-delay", "active", "true", 10000);
    ability = "trade_delay on the leader";
  } else {
    await a.rejection("not_enough_charges");
    ability = "refused: not_enough_charges";
  }
  note(`A: ability with ${charges} charge(s): ${ability}`);
  await a.shot("06-after-close");

  // Lose the connection: the client reconnects with the same match token and resyncs.
  await a.page.evaluate(() => window.tradearena.match.io.engine.close());
  await a.page.waitForSelector(`${id("match-connection")}:not([data-state="connected"])`, { timeout: 10000 });
  await a.waitAttr("match-connection", "state", "connected", 20000);
  await a.el("position").waitFor({ state: "visible" });
  note("A: reconnected and resynced");

  // Peek: the meter fills during the match; a full meter buys a Peek.
  await a.page.waitForSelector(`${id("peek-button")}:enabled`, { timeout: 60000 });
  let peek = "none";
  for (let attempt = 0; attempt < 5 && peek === "none"; attempt++) {
    await a.el("peek-button").click();
    const outcome = await Promise.race([
      a.waitAttr("effect-peek", "active", "true", 10000).then(() => "peek"),
      a.waitAttr("match-rejection", "code", "peek_not_ready", 10000).then(() => "not_ready"),
    ]);
    if (outcome === "peek") peek = "peek";
    else await a.page.waitForSelector(`${id("peek-button")}:enabled`, { timeout: 10000 });
  }
  check(peek === "peek", "A: the Peek started");
  await a.el("match-peek-price").waitFor({ state: "visible", timeout: 10000 });
  check(/^Peek: live \d+\.\d\d$/.test(await a.text("match-peek-price")), "A: the peeked live price is shown");
  await a.shot("07-peek");
  return { entry, liquidation, ability, peek };
}

async function traderB(b) {
  await b.el("order-margin").fill("100");
  await b.el("order-leverage").fill("10");
  await b.el("order-short").click();
  await fills(b, "open").first().waitFor({ timeout: 15000 });
  await b.el("position").waitFor({ state: "visible" });
  check((await b.text("pos-side")) === "short", "B: position side short");
  const entry = Number(await b.text("pos-entry"));
  const liquidation = Number(await b.text("pos-liquidation"));
  check(liquidation > entry, `B: short liquidation above entry (${liquidation} > ${entry})`);
  check((await b.text("pos-sl")) === "none", "B: no stop-loss");
  // The shield needs a charge: none yet unless the bar regenerated.
  const charges = Number(await b.el("ability-charges").getAttribute("data-charges"));
  await b.el("ability-shield").click();
  if (charges > 0) await b.waitAttr("effect-shield", "active", "true", 10000);
  else await b.rejection("not_enough_charges");
  await b.shot("05-position");

  // A reload mid-match: the tab keeps its session and match token, reconnects and resyncs.
  await b.page.reload({ waitUntil: "domcontentloaded" });
  await b.el("screen-match").waitFor({ state: "visible", timeout: 20000 });
  await b.waitAttr("match-connection", "state", "connected", 20000);
  await b.el("position").waitFor({ state: "visible", timeout: 10000 });
  check((await b.text("pos-side")) === "short", "B: the position is back after a reload");
  check(Number(await b.text("pos-entry")) === entry, "B: same entry after a reload");
  await b.waitAttr("match-phase", "phase", "live");
  note("B: reloaded, reconnected and resynced");
  return { entry, liquidation };
}

async function results(p, other) {
  await p.el("screen-results").waitFor({ state: "visible", timeout: 150000 });
  const rows = p.page.locator(id("results-row"));
  check((await rows.count()) === 2, `${p.name}: two result rows`);
  const ranks = (await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.rank))).sort();
  check(JSON.stringify(ranks) === '["1","2"]', `${p.name}: ranks 1 and 2 (${ranks})`);
  const rank = await p.el("results-you").getAttribute("data-rank");
  check(rank === "1" || rank === "2", `${p.name}: own rank shown (${rank})`);
  check((await p.text("results-summary")).includes("finished"), `${p.name}: the match finished`);
  // The results worker stores the match; then the names come from the match detail.
  await p.waitAttr("results-table", "stored", "true", 90000);
  const table = await p.text("results-table");
  check(table.includes(p.username) && table.includes(other.username), `${p.name}: both names in the results`);
  const equities = await rows.evaluateAll((trs) => trs.map((tr) => tr.children[2].textContent));
  await p.shot("08-results");
  return { rank: Number(rank), equities, rating: await p.text("results-rating") };
}

async function main() {
  const profile = mkdtempSync(join(tmpdir(), "tradearena-chromium-"));
  const context = await launch(profile, network, { viewport: { width: 1360, height: 1000 } });
  const a = new Player("a", await context.newPage());
  const b = new Player("b", await context.newPage());
  try {
    // The page itself: a strict CSP and no-cache on the index. Loaded by the browser
    // (not Playwright's own HTTP client), so the browser's resolver rules and trusted
    // certificates apply.
    const resp = await a.page.goto(baseUrl);
    check(resp.status() === 200, "index served");
    const csp = resp.headers()["content-security-policy"] || "";
    check(csp.includes("default-src 'none'") && csp.includes("script-src 'self'"), `strict CSP (${csp})`);

    await Promise.all([signUp(a), signUp(b)]);
    await a.shot("01-lobby");

    await queue(a);
    await a.waitAttr("queue-status", "queued", "true");
    check((await a.text("queue-status")).startsWith("Queued for duel / blitz"), "A: queue status shown");
    check(await a.el("queue-leave").isEnabled(), "A: can leave the queue");
    await a.shot("02-queued");

    await queue(b);
    // Matched: the lobby says so (attached: the lobby screen may already be hidden
    // behind the match screen, which opens as soon as the match is ready).
    await a.page.waitForSelector(`${id("lobby-match")}[data-state], ${id("screen-match")}:visible`, { state: "attached", timeout: 120000 });
    await Promise.all([reachLive(a), reachLive(b)]);
    check((await a.text("match-id")) === (await b.text("match-id")), "both players in the same match");
    await Promise.all([a.shot("03-live"), b.shot("03-live")]);

    const [ra, rb] = await Promise.all([traderA(a, b), traderB(b)]);
    const [resA, resB] = await Promise.all([results(a, b), results(b, a)]);
    check(resA.rank !== resB.rank, "different ranks");
    for (const p of [a, b]) {
      check(p.errors.length === 0, `${p.name}: no page errors: ${p.errors.join(" | ")}`);
    }
    const summary = {
      ok: true,
      players: [a.username, b.username],
      match_id: await a.text("match-id"),
      a: { ...ra, ...resA },
      b: { ...rb, ...resB },
      screenshots: a.shots + b.shots,
      seconds: Math.round((Date.now() - started) / 1000),
    };
    return report(artifacts, log, summary);
  } catch (err) {
    return await reportFailure(artifacts, log, note, err, [a, b]);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

process.exit(await main());
