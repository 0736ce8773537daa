// What every browser script shares: a timed step log (kept as steps.log beside the
// screenshots) and `check`, whose Failure is reported as the test's message.
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export class Failure extends Error {}

export function check(condition, message) {
  if (!condition) throw new Failure(message);
}

export function stepLog() {
  const started = Date.now();
  const log = [];
  const note = (line) => {
    const text = `${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s  ${line}`;
    log.push(text);
    process.stderr.write(text + "\n");
  };
  return { started, log, note };
}

/** A script's end: steps.log beside the screenshots, the summary as the last output
 *  line (what the Python side reads); the exit code. */
export function report(artifacts, log, summary) {
  writeFileSync(join(artifacts, "steps.log"), log.join("\n") + "\n");
  process.stdout.write(JSON.stringify(summary) + "\n");
  return summary.ok ? 0 : 1;
}

/** A failed script's end: the error, a full-page screenshot of each player's page
 *  (`failure-<name>.png`) and its page errors, then `report`. */
export async function reportFailure(artifacts, log, note, err, players) {
  note(`FAILED: ${err instanceof Failure ? err.message : err.stack || err}`);
  for (const p of players) {
    try {
      await p.page.screenshot({ path: join(artifacts, `failure-${p.name}.png`), fullPage: true });
    } catch {
      // the page may be gone
    }
    if (p.errors.length) note(`${p.name} page errors: ${p.errors.join(" | ")}`);
  }
  return report(artifacts, log, { ok: false, error: String(err.message || err) });
}
