// Two friends form a party in headless Chromium, each in their own browser profile, and
// are matched together into one casual match: the leader creates the party and invites
// the friend by username; the invitation appears live on the friend's page (no reload);
// the leader revokes it (it leaves both pages), invites again, the friend accepts, the
// leader disbands the party (both pages lose it), and they form it once more; both pages show two members and ranked is disabled; the leader
// queues casual and the friend's page shows the party waiting. The script then prints `QUEUED` on stdout and waits for both pages to
// open the same match (the caller fills it with solo casual players through the API).
// Usage: node browser_party.mjs LOBBY_URL ARTIFACT_DIR LEADER FRIEND PASSWORD MODE FORMAT
// Every wait is on a selector or a page state (no sleeps); prints one JSON line (the
// summary) last and exits 0, or prints the failure and exits 1.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, parseNetworkArgs } from "./chromium.mjs";
import { Failure, check, stepLog } from "./steps.mjs";

const { rest: positional, network } = parseNetworkArgs(process.argv.slice(2));
const [baseUrl, artifacts, leaderName, friendName, password, mode, format] = positional;
if (!baseUrl || !artifacts || !leaderName || !friendName || !password || !mode || !format) {
  console.error("usage: node browser_party.mjs LOBBY_URL ARTIFACT_DIR LEADER FRIEND PASSWORD MODE FORMAT");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const { started, log, note } = stepLog();
const id = (testid) => `[data-testid="${testid}"]`;
const WAIT = { timeout: 20_000 };
const errors = [];
let shots = 0;

async function shot(page, step) {
  shots += 1;
  const file = join(artifacts, `${step}.png`);
  await page.screenshot({ path: file, fullPage: true });
  note(`screenshot ${file}`);
}

async function open(name) {
  const profile = mkdtempSync(join(tmpdir(), "tradearena-chromium-"));
  const context = await launch(profile, network, { viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (err) => errors.push(`${name}: ${err}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`${name}: ${msg.text()}`);
  });
  page.on("response", (resp) => {
    if (resp.status() >= 400) errors.push(`${name}: ${resp.status()} ${resp.url()}`);
  });
  const resp = await page.goto(baseUrl, { waitUntil: "domcontentloaded" });
  check(resp.status() === 200, "index served");
  await page.locator(id("auth-username")).fill(name);
  await page.locator(id("auth-password")).fill(password);
  await page.locator(id("auth-login")).click();
  await page.locator(id("screen-lobby")).waitFor({ state: "visible", ...WAIT });
  await page.locator(`${id("lobby-connection")}[data-connected="true"]`).waitFor(WAIT);
  await page.locator(id("party-create")).waitFor(WAIT);
  note(`${name} signed in, lobby connected`);
  return { name, page, context, profile };
}

async function token(page) {
  return page.evaluate(() => JSON.parse(sessionStorage.getItem("tradearena.session")).access_token);
}

async function matchId(page) {
  await page.locator(id("screen-match")).waitFor({ state: "visible", timeout: 40_000 });
  const el = page.locator(id("match-id"));
  await page.waitForFunction((sel) => document.querySelector(sel)?.textContent.trim(), id("match-id"), WAIT);
  return (await el.textContent()).trim();
}

async function main() {
  const pages = [];
  try {
    const leader = await open(leaderName);
    pages.push(leader);
    const friend = await open(friendName);
    pages.push(friend);

    const invitation = friend.page.locator(id("party-invitation"));
    const invite = async () => {
      await leader.page.locator(id("party-invite-name")).fill(friendName);
      await leader.page.locator(id("party-invite")).click();
      await leader.page.locator(`${id("party-pending-invite")}[data-username="${friendName}"]`).waitFor(WAIT);
      await invitation.waitFor(WAIT); // live on the friend's page
      check((await invitation.textContent()).includes(leaderName), "the invitation names the leader");
    };
    const formParty = async () => {
      await leader.page.locator(id("party-create")).click();
      await leader.page.locator(`${id("party-members")}[data-size="1"]`).waitFor(WAIT);
      await invite();
      await friend.page.locator(id("party-accept")).click();
      for (const p of [leader, friend]) await p.page.locator(`${id("party-members")}[data-size="2"]`).waitFor(WAIT);
    };

    await leader.page.locator(id("party-create")).click();
    await leader.page.locator(`${id("party-members")}[data-size="1"]`).waitFor(WAIT);
    await invite();
    note(`${leaderName} created a party and invited ${friendName}; the invitation arrived live`);
    await shot(friend.page, "invitation-friend");

    // the leader revokes the invitation: gone from both pages, live
    await leader.page.locator(id("party-revoke")).click();
    await leader.page.locator(id("party-pending")).waitFor({ state: "detached", ...WAIT });
    await invitation.waitFor({ state: "detached", ...WAIT });
    note("the revoked invitation left both pages");

    // invited again and accepted, then disbanded by the leader: both pages lose the party
    await invite();
    await friend.page.locator(id("party-accept")).click();
    for (const p of [leader, friend]) await p.page.locator(`${id("party-members")}[data-size="2"]`).waitFor(WAIT);
    check((await friend.page.locator(id("party-disband")).count()) === 0, "only the leader may disband");
    await leader.page.locator(id("party-disband")).click();
    for (const p of [leader, friend]) {
      await p.page.locator(id("party-create")).waitFor(WAIT);
      const ranked = await p.page.locator(id("queue-kind")).evaluate((el) => el.querySelector('option[value="ranked"]').disabled);
      check(ranked === false, `${p.name}: ranked offered again out of a party`);
    }
    note("the disbanded party left both pages");

    await formParty();
    for (const p of [leader, friend]) {
      const kind = await p.page.locator(id("queue-kind")).evaluate((el) => ({ value: el.value, ranked: el.querySelector('option[value="ranked"]').disabled }));
      check(kind.ranked === true, `${p.name}: ranked disabled in a party (${JSON.stringify(kind)})`);
      check(kind.value === "casual", `${p.name}: casual chosen (${JSON.stringify(kind)})`);
    }
    check((await leader.page.locator(id("party-kick")).count()) === 1, "the leader may remove the friend");
    check((await friend.page.locator(id("party-kick")).count()) === 0, "a member may remove nobody");
    note("both pages show the party of two");
    await shot(leader.page, "party-leader");

    // a party member asking for ranked through the API is refused
    const ranked = await fetch(new URL("/api/v1/queue", baseUrl), {
      method: "POST",
      headers: { Authorization: `Bearer ${await token(friend.page)}`, "Content-Type": "application/json" },
      body: JSON.stringify({ mode, format, queue: "ranked" }),
    });
    const refusal = await ranked.json();
    note(`ranked for the party member: ${ranked.status} ${refusal.code}`);

    await leader.page.locator(id("queue-mode")).selectOption(mode);
    await leader.page.locator(id("queue-format")).selectOption(format);
    await leader.page.locator(id("queue-join")).click();
    await leader.page.locator(`${id("queue-status")}[data-queued="true"]`).waitFor(WAIT);
    await friend.page.locator(`${id("queue-status")}[data-queued="true"]`).waitFor(WAIT);
    await shot(leader.page, "queued-leader");
    note("the leader queued the party (casual); the friend's page shows it waiting");
    process.stdout.write("QUEUED\n");

    const [leaderMatch, friendMatch] = await Promise.all([matchId(leader.page), matchId(friend.page)]);
    note(`matches: ${leaderMatch} / ${friendMatch}`);
    await shot(leader.page, "match-leader");
    await shot(friend.page, "match-friend");
    check(errors.length === 0, `no page errors: ${errors.join(" | ")}`);
    const summary = {
      ok: true,
      leader_match: leaderMatch,
      friend_match: friendMatch,
      ranked: { status: ranked.status, code: refusal.code },
      screenshots: shots,
      seconds: Math.round((Date.now() - started) / 1000),
    };
    writeFileSync(join(artifacts, "steps.log"), log.join("\n") + "\n");
    process.stdout.write(JSON.stringify(summary) + "\n");
    return 0;
  } catch (err) {
    note(`FAILED: ${err instanceof Failure ? err.message : err.stack || err}`);
    for (const p of pages) {
      try {
        await p.page.screenshot({ path: join(artifacts, `failure-${p.name}.png`), fullPage: true });
      } catch {
        // the page may be gone
      }
    }
    if (errors.length) note(`page errors: ${errors.join(" | ")}`);
    writeFileSync(join(artifacts, "steps.log"), log.join("\n") + "\n");
    process.stdout.write(JSON.stringify({ ok: false, error: String(err.message || err) }) + "\n");
    return 1;
  } finally {
    for (const p of pages) {
      await p.context.close();
      rmSync(p.profile, { recursive: true, force: true });
    }
  }
}

process.exit(await main());
