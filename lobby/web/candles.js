// Candles of the official price at 1 s and 1 m, merged from three sources:
//   - closed candles the server publishes (the candles API at either interval, the
//     match server's `sync` at 1 s): these are final and always win;
//   - the official `tick` events, aggregated here into the forming 1 s candle;
//   - 1 m candles the server has not published yet, built from the 1 s ones.
// Pure (no DOM): prices are numbers, times epoch ms; a candle is {t, o, h, l, c, n}.

export const INTERVAL_MS = { "1s": 1000, "1m": 60000 };
export const INTERVALS = Object.keys(INTERVAL_MS);

const KEEP_MS = { "1s": 2 * 3600 * 1000, "1m": 48 * 3600 * 1000 };

function bucket(at, interval) {
  const step = INTERVAL_MS[interval];
  return Math.floor(at / step) * step;
}

function same(a, b) {
  return a && b && a.o === b.o && a.h === b.h && a.l === b.l && a.c === b.c && a.n === b.n;
}

/** A candle's wire form ({t, o, h, l, c, n}, decimals as strings) as numbers; null if malformed. */
export function fromWire(candle) {
  const c = {
    t: Number(candle?.t),
    o: Number(candle?.o),
    h: Number(candle?.h),
    l: Number(candle?.l),
    c: Number(candle?.c),
    n: Number(candle?.n ?? 0),
  };
  return Object.values(c).every(Number.isFinite) ? c : null;
}

export class CandleStore {
  constructor() {
    this.reset();
  }

  reset() {
    this.closed = { "1s": new Map(), "1m": new Map() };
    this.forming = new Map(); // 1 s bucket -> candle built from official ticks
    this.newest = 0;
  }

  /** Closed candles from the server. Returns true when anything drawn changed. */
  addClosed(interval, wireCandles) {
    const into = this.closed[interval];
    if (!into) return false;
    let changed = false;
    for (const wire of wireCandles || []) {
      const c = fromWire(wire);
      if (!c || c.t !== bucket(c.t, interval)) continue;
      if (!same(into.get(c.t), c)) {
        into.set(c.t, c);
        changed = true;
      }
      if (interval === "1s" && this.forming.delete(c.t)) changed = true;
      this.newest = Math.max(this.newest, c.t);
    }
    if (changed) this.trim();
    return changed;
  }

  /** An official price. Returns the candles it changed: {"1s": candle, "1m": candle}, or null. */
  addTick(at, price) {
    const p = Number(price);
    if (!Number.isFinite(p) || !Number.isFinite(at)) return null;
    const t = bucket(at, "1s");
    if (this.closed["1s"].has(t)) return null; // the server already closed that second
    const c = this.forming.get(t);
    if (c) {
      c.h = Math.max(c.h, p);
      c.l = Math.min(c.l, p);
      c.c = p;
      c.n += 1;
    } else {
      this.forming.set(t, { t, o: p, h: p, l: p, c: p, n: 1 });
      if (t % INTERVAL_MS["1m"] === 0) this.trim(); // once a minute
    }
    this.newest = Math.max(this.newest, t);
    return { "1s": this.second(t), "1m": this.minute(bucket(t, "1m")) };
  }

  second(t) {
    return this.closed["1s"].get(t) || this.forming.get(t) || null;
  }

  /** The 1 m candle at `t`: the server's, else built from the 1 s candles in it. */
  minute(t) {
    const published = this.closed["1m"].get(t);
    if (published) return published;
    let out = null;
    for (let s = t; s < t + INTERVAL_MS["1m"]; s += INTERVAL_MS["1s"]) {
      const c = this.second(s);
      if (!c) continue;
      if (!out) out = { t, o: c.o, h: c.h, l: c.l, c: c.c, n: c.n };
      else {
        out.h = Math.max(out.h, c.h);
        out.l = Math.min(out.l, c.l);
        out.c = c.c;
        out.n += c.n;
      }
    }
    return out;
  }

  /** Every candle of an interval, ascending by time. */
  candles(interval) {
    if (interval === "1s") {
      const times = new Set([...this.closed["1s"].keys(), ...this.forming.keys()]);
      return [...times].sort((a, b) => a - b).map((t) => this.second(t));
    }
    const minutes = new Set(this.closed["1m"].keys());
    for (const t of this.closed["1s"].keys()) minutes.add(bucket(t, "1m"));
    for (const t of this.forming.keys()) minutes.add(bucket(t, "1m"));
    return [...minutes].sort((a, b) => a - b).map((t) => this.minute(t)).filter(Boolean);
  }

  /** The time of the newest candle of an interval the server has closed (0: none). */
  closedUntil(interval) {
    let newest = 0;
    for (const t of this.closed[interval].keys()) newest = Math.max(newest, t);
    return newest;
  }

  trim() {
    for (const interval of INTERVALS) {
      const from = this.newest - KEEP_MS[interval];
      for (const t of this.closed[interval].keys()) if (t < from) this.closed[interval].delete(t);
    }
    const from = this.newest - KEEP_MS["1s"];
    for (const t of this.forming.keys()) if (t < from) this.forming.delete(t);
  }
}
