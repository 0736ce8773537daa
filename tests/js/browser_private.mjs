// A private duel in headless Chromium: the host opens it inviting the guest and a friend,
// the guest gets the invitation live and joins by the link, the host starts it, both
// trade and play it to the results screen; the friend, invited but not playing, opens
// the link once the duel is live and watches it from the room's Watch button.
// Usage: node browser_private.mjs LOBBY_URL ARTIFACT_DIR
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
  console.error("usage: node browser_private.mjs LOBBY_URL ARTIFACT_DIR");
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
    this.username = `pv-${name}-${tag}`;
    this.password = `pw-${tag}-correct-horse`;
    this.shots = 0;
    this.errors = [];
    page.on("pageerror", (err) => this.errors.push(String(err)));
    page.on("console", (msg) => {
      if (msg.type() === "error") this.errors.push(msg.text());
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
}

async function signUp(p) {
  await p.page.goto(baseUrl, { waitUntil: "domcontentloaded" });
  await p.el("screen-auth").waitFor({ state: "visible" });
  await p.el("auth-username").fill(p.username);
  await p.el("auth-password").fill(p.password);
  await p.el("auth-register").click();
  await p.el("screen-lobby").waitFor({ state: "visible" });
  await p.waitAttr("lobby-connection", "connected", "true");
  note(`${p.name}: registered as ${p.username}`);
}

async function create(host, guest, friend) {
  await host.el("nav-private").click();
  await host.el("screen-private").waitFor({ state: "visible" });
  await host.page.waitForSelector(`${id("private-mode")} option[value="duel"]`, { state: "attached" });
  await host.el("private-mode").selectOption("duel");
  await host.el("private-format").selectOption("blitz");
  await host.el("private-invitees").fill(`${guest.username} ${friend.username}`);
  await host.el("private-create").click();
  await host.waitAttr("private-state", "state", "open");
  const code = await host.text("private-code");
  check(/^[23456789BCDFGHJKMNPQRSTVWXZ]{8}$/.test(code), `host: an 8-character code (${code})`);
  const link = await host.el("private-link").inputValue();
  check(link.endsWith(`#/private/${code}`), `host: the link opens the room (${link})`);
  check((await host.page.locator(id("private-member")).count()) === 1, "host: alone in the room");
  check(await host.el("private-start").isDisabled(), "host: Start waits for a second player");
  note(`host: created ${code}`);
  await host.shot("01-created");
  return { code, link };
}

async function joinByLink(guest, code, link) {
  // The invitation arrives live, on the lobby screen.
  await guest.el("private-invite").waitFor({ state: "visible", timeout: 15000 });
  const text = await guest.text("private-invite-text");
  check(text.includes(code), `guest: the invitation names the code (${text})`);
  await guest.shot("02-invited");
  await guest.page.goto(link, { waitUntil: "domcontentloaded" }); // same page: a hash change
  await guest.el("screen-private").waitFor({ state: "visible" });
  await guest.el("private-room-join").waitFor({ state: "visible" });
  check((await guest.text("private-code")) === code, "guest: the link shows the room");
  await guest.el("private-room-join").click();
  await guest.page.waitForSelector(`${id("private-member")}[data-username="${guest.username}"]`);
  note("guest: joined by the link");
}

async function reachLive(p) {
  await p.el("screen-match").waitFor({ state: "visible", timeout: 60000 });
  await p.waitAttr("match-connection", "state", "connected", 30000);
  await p.waitAttr("match-phase", "phase", "live", 60000);
  note(`${p.name}: live in ${await p.text("match-id")}`);
}

async function trade(p, side, margin, leverage) {
  await p.el("order-margin").fill(String(margin));
  await p.el("order-leverage").fill(String(leverage));
  await p.el(`order-${side}`).click();
  await p.page.locator(`${id("fill-item")}[data-reason="open"]`).first().waitFor({ timeout: 15000 });
  await p.el("position").waitFor({ state: "visible" });
  note(`${p.name}: ${side} open`);
}

async function watchFromTheRoom(friend, link, matchId) {
  await friend.page.goto(link, { waitUntil: "domcontentloaded" }); // a hash change
  await friend.el("screen-private").waitFor({ state: "visible" });
  await friend.waitAttr("private-state", "state", "started");
  check(await friend.el("private-room-join").isHidden(), "friend: no seat to take in a started room");
  await friend.el("private-watch").waitFor({ state: "visible" });
  await friend.el("private-watch").click();
  await friend.el("screen-spectate").waitFor({ state: "visible", timeout: 15000 });
  await friend.waitAttr("spectate-connection", "state", "connected");
  const watched = await friend.el("screen-spectate").getAttribute("data-match-id");
  check(watched === matchId, `friend: watches the private duel (${watched})`);
  await friend.shot("04-watching");
  note("friend: invited, not playing, watches the private duel");
}

async function results(p) {
  await p.el("screen-results").waitFor({ state: "visible", timeout: 120000 });
  await p.waitAttr("results-table", "stored", "true", 60000);
  await p.waitAttr("results-rating", "kind", "private", 5000);
  const rank = Number(await p.el("results-you").getAttribute("data-rank"));
  const rows = await p.page.locator(id("results-row")).count();
  check(rows === 2, `${p.name}: both players on the results screen (${rows})`);
  await p.shot("05-results");
  return { rank, rating: await p.text("results-rating") };
}

async function main() {
  const profile = mkdtempSync(join(tmpdir(), "tradearena-chromium-"));
  const context = await launch(profile, network, { viewport: { width: 1280, height: 900 } });
  const host = new Player("host", await context.newPage());
  const guest = new Player("guest", await context.newPage());
  const friend = new Player("friend", await context.newPage());
  try {
    await Promise.all([signUp(host), signUp(guest), signUp(friend)]);
    const { code, link } = await create(host, guest, friend);
    await joinByLink(guest, code, link);
    // The host's waiting room follows live: two players, Start enabled.
    await host.page.waitForSelector(`${id("private-member")}[data-username="${guest.username}"]`, { timeout: 10000 });
    await host.page.waitForSelector(`${id("private-start")}:enabled`, { timeout: 5000 });
    await Promise.all([host.shot("03-room"), guest.shot("03-room")]);
    check(await guest.el("private-start").isHidden(), "guest: no Start button");
    await host.el("private-start").click();
    await Promise.all([reachLive(host), reachLive(guest)]);
    const matchId = await host.text("match-id");
    check(matchId === (await guest.text("match-id")), "both play the same match");
    await Promise.all([host.shot("04-live"), guest.shot("04-live")]);
    await Promise.all([trade(host, "long", 200, 5), trade(guest, "short", 100, 10), watchFromTheRoom(friend, link, matchId)]);
    const [rh, rg] = await Promise.all([results(host), results(guest)]);
    check(new Set([rh.rank, rg.rank]).size === 2, "two different ranks");
    const summary = {
      ok: true,
      code,
      match_id: matchId,
      players: [host.username, guest.username],
      watcher: friend.username,
      host: rh,
      guest: rg,
      screenshots: host.shots + guest.shots + friend.shots,
      seconds: Math.round((Date.now() - started) / 1000),
    };
    return report(artifacts, log, summary);
  } catch (err) {
    return await reportFailure(artifacts, log, note, err, [host, guest, friend]);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

process.exit(await main());
