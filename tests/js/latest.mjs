// The web client's ordering of pushes and answers (lobby/web/screens/latest.js) under
// Node: the race the party panel once lost, an old answer landing after a newer push.
// Usage: node latest.mjs   (prints "ok", or throws on the first failed assertion)
import assert from "node:assert/strict";
import { Latest } from "../../lobby/web/screens/latest.js";

const shown = [];
const latest = new Latest();
const show = (s) => shown.push(s);
const deferred = () => {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
};
async function refresh(answer) {
  const t = latest.ticket();
  const s = await answer.promise;
  if (latest.answered(t)) show(s);
}

// One request, nothing else: its answer is shown.
const a = deferred();
const done = refresh(a);
a.resolve("party of 1");
await done;
assert.deepEqual(shown, ["party of 1"]);

// A request leaves, then a push of a later change arrives, then the stale answer: the
// push stands.
shown.length = 0;
const stale = deferred();
const first = refresh(stale);
latest.pushed();
show("invited");
stale.resolve("party of 1");
await first;
assert.deepEqual(shown, ["invited"]);

// Two requests whose answers land out of order: only the later request's answer shows.
shown.length = 0;
const older = deferred();
const newer = deferred();
const r1 = refresh(older);
const r2 = refresh(newer);
newer.resolve("newer");
await r2;
older.resolve("older");
await r1;
assert.deepEqual(shown, ["newer"]);

// A request sent after a push is shown when it answers.
shown.length = 0;
latest.pushed();
const after = deferred();
const r3 = refresh(after);
after.resolve("after the push");
await r3;
assert.deepEqual(shown, ["after the push"]);

console.log("ok");
