// The player's screens in headless Chromium: leaderboards (all-time, season, today,
// around me), match history and a match's detail (fills, final ledger, ledger lines),
// the profile with its rating history, and notifications (stored, live, mark read),
// each compared with what the lobby's API holds, at desktop and phone widths.
// Usage: node browser_screens.mjs LOBBY_URL ARTIFACT_DIR USERNAME PASSWORD MATCH_ID
//   MATCH_ID: a stored match of USERNAME whose detail is opened.
// Live notifications: the script prints `LIVE` on stdout once the notifications screen
// is open and waits for one new `notification` event (the caller stores a result).
// Every wait is on a selector or a page state (no sleeps); prints one JSON line (the
// summary) last and exits 0, or prints the failure and exits 1.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, parseNetworkArgs } from "./chromium.mjs";
import { Failure, check, stepLog } from "./steps.mjs";

const { rest: positional, network } = parseNetworkArgs(process.argv.slice(2));
const [baseUrl, artifacts, username, password, matchId] = positional;
if (!baseUrl || !artifacts || !username || !password || !matchId) {
  console.error("usage: node browser_screens.mjs LOBBY_URL ARTIFACT_DIR USERNAME PASSWORD MATCH_ID");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const VIEWPORTS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
const { started, log, note } = stepLog();
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const id = (testid) => `[data-testid="${testid}"]`;
// "+1,234.50" / "-3.00" / "1,234.50" -> a number
const num = (text) => Number(String(text).replace(/[,+\s]|USDT/g, ""));
const close = (a, b, eps = 0.006) => Math.abs(a - b) <= eps;

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

async function api(path, options = {}) {
  const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem("tradearena.session")).access_token);
  const resp = await fetch(new URL(`/api/v1${path}`, baseUrl), {
    ...options,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
  });
  check(resp.ok, `API ${path}: ${resp.status}`);
  return resp.json();
}

const rowsOf = (selector, ...attrs) =>
  page.locator(selector).evaluateAll(
    (els, names) => els.map((el) => ({ ...Object.fromEntries(names.map((n) => [n, el.getAttribute(`data-${n}`)])), cells: [...el.children].map((c) => c.textContent.trim()), me: el.classList.contains("me"), current: el.getAttribute("aria-current") })),
    attrs,
  );

async function nav(testid, screen) {
  await page.locator(id(testid)).click();
  await page.locator(id(screen)).waitFor({ state: "visible" });
  check((await page.locator(id(testid)).getAttribute("aria-current")) === "page", `${testid} marked as the current page`);
}

async function noSidewaysScroll(where) {
  const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check(scroll <= inner, `${where} at ${width}: the page does not scroll sideways (${scroll} > ${inner})`);
}

async function signIn() {
  const resp = await page.goto(baseUrl, { waitUntil: "domcontentloaded" });
  check(resp.status() === 200, "index served");
  await page.locator(id("screen-auth")).waitFor({ state: "visible" });
  await page.locator(id("auth-username")).fill(username);
  await page.locator(id("auth-password")).fill(password);
  await page.locator(id("auth-login")).click();
  await page.locator(id("screen-lobby")).waitFor({ state: "visible" });
  await page.locator(id("nav")).waitFor({ state: "visible" });
  note(`signed in as ${username}`);
}

async function leaderboards(me) {
  await nav("nav-leaderboards", "screen-leaderboards");
  const out = {};
  for (const period of ["all", "season", "daily"]) {
    await page.locator(id(`board-tab-${period}`)).click();
    await page.waitForSelector(`${id("board-panel")}[data-loaded="true"][data-period="${period}"][data-around="true"]`);
    check((await page.locator(id(`board-tab-${period}`)).getAttribute("aria-selected")) === "true", `${period} tab selected`);
    const want = await api(`/leaderboards/${period}?around=me&limit=20`);
    const rows = await rowsOf(id("board-row"), "user-id", "rank");
    check(same(rows.map((r) => r["user-id"]), want.items.map((e) => e.user_id)), `${period}: the rows are the API's around-me page`);
    check(same(rows.map((r) => Number(r.rank)), want.items.map((e) => e.rank)), `${period}: ranks as the API's`);
    for (const [i, e] of want.items.entries()) {
      const cells = rows[i].cells;
      check(cells[1].startsWith(e.username), `${period}: row ${e.rank} names ${e.username} (${cells[1]})`);
      if (period === "all") check(close(num(cells[2]), e.rating), `${period}: rating of ${e.username} (${cells[2]} vs ${e.rating})`);
      else check(close(num(cells[2]), Number(e.pnl)) && Number(cells[3]) === e.wins, `${period}: PnL and wins of ${e.username}`);
    }
    check(want.me && want.me.user_id === me, `${period}: the API ranks the player`);
    const mine = rows.filter((r) => r.me);
    check(mine.length === 1 && mine[0]["user-id"] === me && mine[0].current === "true", `${period}: the player's row is highlighted`);
    check((await page.locator(id("board-you")).textContent()).includes(`#${want.me.rank}`), `${period}: says the player's rank`);
    out[period] = { rank: want.me.rank, offset: want.offset, rows: rows.length };
    await noSidewaysScroll(`leaderboard ${period}`);
    await shot(`leaderboard-${period}`);
  }
  // Around me off: the top of the board.
  await page.locator(id("board-around")).click();
  await page.waitForSelector(`${id("board-panel")}[data-loaded="true"][data-around="false"]`);
  check((await page.locator(id("board-around")).getAttribute("aria-pressed")) === "false", "around-me toggled off");
  const top = await api("/leaderboards/daily?limit=20&offset=0");
  const rows = await rowsOf(id("board-row"), "user-id", "rank");
  check(same(rows.map((r) => r["user-id"]), top.items.map((e) => e.user_id)), "daily top page as the API's");
  await page.locator(id("board-around")).click();
  await page.waitForSelector(`${id("board-panel")}[data-loaded="true"][data-around="true"]`);
  return out;
}

async function matchHistory() {
  await nav("nav-history", "screen-history");
  await page.waitForSelector(`${id("history-list")}[data-loaded="true"]`);
  const want = await api("/matches?limit=20");
  const rows = await rowsOf(id("history-row"), "match-id");
  check(same(rows.map((r) => r["match-id"]), want.items.map((m) => m.match_id)), "history rows are the API's matches, newest first");
  for (const [i, m] of want.items.entries()) {
    check(rows[i].cells[2] === (m.rank ? `#${m.rank}` : m.status), `history: result of ${m.match_id}`);
    check(close(num(rows[i].cells[3]), Number(m.equity)), `history: equity of ${m.match_id}`);
  }
  await noSidewaysScroll("history");
  await shot("history");

  await page.locator(`${id("history-row")}[data-match-id="${matchId}"] ${id("history-open")}`).click();
  await page.waitForSelector(`${id("match-detail")}[data-loaded="true"][data-match-id="${matchId}"]`);
  const detail = await api(`/matches/${encodeURIComponent(matchId)}`);
  check((await page.locator(id("detail-title")).textContent()).includes(matchId), "detail titled by the match");
  const players = await rowsOf(id("detail-player"), "user-id", "rank");
  check(same(players.map((p) => p["user-id"]), detail.players.map((p) => p.user_id)), "detail: players as the API's");
  const fills = await rowsOf(id("detail-fill"), "user-id", "ref");
  check(fills.length === detail.fills.length && detail.fills.length > 0, `detail: every fill (${fills.length} of ${detail.fills.length})`);
  for (const [i, f] of detail.fills.entries()) {
    const cells = fills[i].cells;
    check(fills[i].ref === f.ref && cells[1] === f.username && cells[2] === f.reason && cells[3] === f.side && cells[4] === f.qty, `detail: fill ${i} (${cells.join(" ")})`);
    check(close(num(cells[5]), Number(f.price)), `detail: fill ${i} price`);
  }
  const balances = await rowsOf(id("detail-balance"), "account", "balance");
  check(same(balances.map((b) => [b.account, b.balance]), detail.balances.map((b) => [b.account, b.balance])), "detail: final ledger as the API's");
  check(balances.reduce((sum, b) => sum + Number(b.balance), 0) === 0 || close(balances.reduce((sum, b) => sum + Number(b.balance), 0), 0, 1e-6), "detail: the final ledger sums to zero");
  const lines = await page.locator(id("detail-ledger-line")).count();
  check(lines === detail.ledger.length, `detail: every ledger line (${lines} of ${detail.ledger.length})`);
  await noSidewaysScroll("match detail");
  await shot("match-detail");
  await page.locator(`${id("detail-ledger")} summary`).click();
  await page.locator(id("detail-ledger-line")).first().waitFor({ state: "visible" });
  await noSidewaysScroll("match detail with its ledger lines");
  await page.locator(id("detail-back")).click();
  await page.locator(id("history-list")).waitFor({ state: "visible" });
  return { matches: rows.length, fills: fills.length, ledger: lines, balances: balances.length };
}

async function profile() {
  await nav("nav-profile", "screen-profile");
  await page.waitForSelector(`${id("profile")}[data-loaded="true"]`);
  const want = await api(`/players/${encodeURIComponent(username)}`);
  check((await page.locator(id("profile-username")).textContent()).startsWith(username), "profile names the player");
  check((await page.locator(id("profile-rating")).textContent()) === want.rating.toFixed(2), "profile: rating as the API's");
  check((await page.locator(id("profile-matches")).textContent()) === String(want.matches), "profile: matches as the API's");
  const points = await rowsOf(id("profile-point"), "match-id", "rating");
  const newestFirst = [...want.rating_history].reverse();
  check(same(points.map((p) => p["match-id"]), newestFirst.map((p) => p.match_id)), "profile: rating history as the API's");
  check(points.every((p, i) => close(Number(p.rating), newestFirst[i].rating, 1e-9) && p.cells[4] === newestFirst[i].rating.toFixed(2)), "profile: rating after each match");
  const dots = await page.locator(`${id("profile-chart")} circle`).count();
  check(dots === want.rating_history.length, `profile: one chart point per match (${dots})`);
  check((await page.locator(id("profile-chart")).getAttribute("role")) === "img", "profile: the chart is an image with a text alternative");
  await noSidewaysScroll("profile");
  await shot("profile");
  return { points: points.length, rating: want.rating };
}

async function notifications(live) {
  await nav("nav-notifications", "screen-notifications");
  await page.waitForSelector(`${id("notes-list")}[data-loaded="true"]`);
  const want = await api("/notifications?limit=30");
  const items = await rowsOf(id("note"), "id", "read", "kind");
  check(same(items.map((n) => Number(n.id)), want.items.map((n) => n.id)), "notifications as the API's, newest first");
  check(same(items.map((n) => n.read === "true"), want.items.map((n) => n.read_at !== null)), "read and unread as the API's");
  check((await page.locator(id("notes-unread")).getAttribute("data-unread")) === String(want.unread), "unread count as the API's");
  const badge = page.locator(id("nav-unread"));
  check(want.unread === 0 ? await badge.isHidden() : (await badge.textContent()) === String(want.unread), "the navigation shows the unread count");
  await noSidewaysScroll("notifications");
  await shot("notifications");
  if (!live) return { stored: items.length, unread: want.unread };

  // A live event: the caller stores a result now; it appears at the top, unread.
  const known = new Set(items.map((n) => n.id));
  process.stdout.write("LIVE\n");
  await page.waitForFunction(
    ([sel, ids]) => [...document.querySelectorAll(sel)].some((el) => !ids.includes(el.dataset.id)),
    [id("note"), [...known]],
    { timeout: 60000 },
  );
  const first = (await rowsOf(id("note"), "id", "read", "kind"))[0];
  check(!known.has(first.id) && first.read === "false" && first.kind === "match_result", `the live notification is on top, unread (${JSON.stringify(first)})`);
  check((await badge.textContent()) === String(want.unread + 1), "the badge counts the live notification");
  const stored = await api("/notifications?limit=1");
  check(String(stored.items[0].id) === first.id, "the live notification is the stored one");
  await shot("notifications-live");

  // Mark that one read, then all.
  await page.locator(`${id("note")}[data-id="${first.id}"] ${id("note-mark")}`).click();
  await page.waitForSelector(`${id("note")}[data-id="${first.id}"][data-read="true"]`);
  const one = await api("/notifications?limit=1");
  check(one.items[0].read_at !== null && one.unread === want.unread, "marked read in the API");
  await page.locator(id("notes-mark-all")).click();
  await page.waitForSelector(`${id("notes-unread")}[data-unread="0"]`);
  check((await api("/notifications?limit=1")).unread === 0, "all read in the API");
  check(await badge.isHidden(), "no badge once all are read");
  check((await page.locator(`${id("note")}[data-read="false"]`).count()) === 0, "no unread item shown");
  await shot("notifications-read");
  return { stored: items.length, unread: want.unread, live: Number(first.id) };
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
    await signIn();
    const me = await page.evaluate(() => JSON.parse(sessionStorage.getItem("tradearena.session")).user.id);
    const summary = { ok: true, user_id: me };
    for (const [name, size] of Object.entries(VIEWPORTS)) {
      width = name;
      await page.setViewportSize(size);
      await nav("nav-play", "screen-lobby");
      await shot("lobby");
      const live = name === "desktop";
      summary[name] = {
        leaderboards: await leaderboards(me),
        history: await matchHistory(),
        profile: await profile(),
        notifications: await notifications(live),
      };
      note(`${name}: every screen checked`);
    }
    check(errors.length === 0, `no page errors: ${errors.join(" | ")}`);
    summary.screenshots = shots;
    summary.seconds = Math.round((Date.now() - started) / 1000);
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
