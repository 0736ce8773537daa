// What every browser script shares: a timed step log (kept as steps.log beside the
// screenshots) and `check`, whose Failure is reported as the test's message.
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
