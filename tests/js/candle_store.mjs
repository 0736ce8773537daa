// The web client's candle store (lobby/web/candles.js), pure: how the candles API,
// the match's `sync` candles and official ticks merge into 1 s and 1 m candles.
// Usage: node candle_store.mjs   (exits 0, or throws on the first failed assertion)
import assert from "node:assert/strict";
import { CandleStore, fromWire } from "../../lobby/web/candles.js";

const W = (t, o, h, l, c, n = 1) => ({ t, o: String(o), h: String(h), l: String(l), c: String(c), n });
const times = (candles) => candles.map((c) => c.t);

// Wire form: decimal strings become numbers; malformed candles are dropped.
assert.deepEqual(fromWire(W(1000, "1.5", "2", "1", "1.75", 3)), { t: 1000, o: 1.5, h: 2, l: 1, c: 1.75, n: 3 });
assert.equal(fromWire({ t: 1000, o: "x", h: "1", l: "1", c: "1", n: 1 }), null);

{
  // Ticks alone: 1 s candles per second, the 1 m candle built from them.
  const s = new CandleStore();
  s.addTick(60_500, "10");
  s.addTick(60_900, "12");
  s.addTick(61_100, "9");
  assert.deepEqual(s.candles("1s"), [
    { t: 60_000, o: 10, h: 12, l: 10, c: 12, n: 2 },
    { t: 61_000, o: 9, h: 9, l: 9, c: 9, n: 1 },
  ]);
  assert.deepEqual(s.candles("1m"), [{ t: 60_000, o: 10, h: 12, l: 9, c: 9, n: 3 }]);
  assert.deepEqual(s.last("1s"), { t: 61_000, o: 9, h: 9, l: 9, c: 9, n: 1 });
  assert.equal(s.addTick(62_000, "nope"), null);
}

{
  // The API's history before the match; the match's own candles from its first second.
  const s = new CandleStore();
  assert.equal(s.addHistory("1m", Array.from({ length: 20 }, (_, i) => W(i * 60_000, 100 + i, 101 + i, 99 + i, 100 + i))), true);
  assert.equal(s.addHistory("1m", [W(0, 100, 101, 99, 100)]), false, "the same candle again changes nothing");
  s.addHistory("1s", [W(1_190_000, 1, 1, 1, 1), W(1_193_000, 2, 2, 2, 2)]);
  // sync: the match started at 1192 s (its newest candle still forming)
  assert.equal(s.addOfficial([W(1_192_000, 50, 51, 49, 50), W(1_193_000, 50, 52, 50, 52)]), true);
  assert.deepEqual(times(s.candles("1s")), [1_190_000, 1_192_000, 1_193_000], "the match's second wins over the API's");
  assert.equal(s.candles("1s")[2].c, 52);
  // a tick in the newest second sync sent extends it; an older one is ignored
  s.addTick(1_193_500, "53");
  assert.deepEqual(s.candles("1s")[2], { t: 1_193_000, o: 50, h: 53, l: 50, c: 53, n: 2 });
  assert.equal(s.addTick(1_192_500, "10"), null);
  // the minute the match started in stays the API's (whole); later minutes are the match's
  assert.equal(s.candles("1m").length, 20);
  assert.equal(s.candles("1m")[19].o, 119);
  s.addTick(1_200_100, "47");
  s.addTick(1_201_100, "48");
  const minutes = s.candles("1m");
  assert.equal(minutes.length, 21);
  assert.deepEqual(minutes[20], { t: 1_200_000, o: 47, h: 48, l: 47, c: 48, n: 2 });
  assert.deepEqual(s.last("1m"), minutes[20]);
  // the next sync closes the seconds built from ticks
  assert.equal(s.addOfficial([W(1_200_000, 47, 47.5, 46, 47.5, 3)]), true);
  assert.deepEqual(s.candles("1s").find((c) => c.t === 1_200_000), { t: 1_200_000, o: 47, h: 47.5, l: 46, c: 47.5, n: 3 });
  assert.deepEqual(s.candles("1m")[20], { t: 1_200_000, o: 47, h: 48, l: 46, c: 48, n: 4 });
  // a reset forgets everything (a new match)
  s.reset();
  assert.deepEqual(s.candles("1s"), []);
  assert.deepEqual(s.candles("1m"), []);
}

{
  // Bounded: 1 s candles older than two hours before the newest are dropped.
  const s = new CandleStore();
  s.addHistory("1s", [W(0, 1, 1, 1, 1)]);
  s.addHistory("1s", [W(3 * 3600 * 1000, 2, 2, 2, 2)]);
  assert.deepEqual(times(s.candles("1s")), [3 * 3600 * 1000]);
}

process.stdout.write("ok\n");
