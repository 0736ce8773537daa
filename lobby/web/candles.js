// Candles of the official price at 1 s and 1 m, merged from what the client gets:
//   - the match server's own official 1 s candles (`sync`: the match's history, the
//     newest possibly still forming), and the official `tick` events, aggregated here
//     into the forming 1 s candle: the match's prices, timed as they became official;
//   - the lobby's candles API (closed candles of the feed at 1 s and 1 m, served only
//     once older than the longest price delay): the history before the match.
// Where the match's own prices exist they win: from the first of them on, 1 s candles
// come only from the match, and so do the 1 m candles after the minute it started in.
// Pure (no DOM): prices are numbers, times epoch ms; a candle is {t, o, h, l, c, n}.

export const INTERVAL_MS = { "1s": 1000, "1m": 60000 };
export const INTERVALS = Object.keys(INTERVAL_MS);

const KEEP_MS = { "1s": 2 * 3600 * 1000, "1m": 48 * 3600 * 1000 };

export function bucket(at, interval) {
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

function extend(c, price) {
  c.h = Math.max(c.h, price);
  c.l = Math.min(c.l, price);
  c.c = price;
  c.n += 1;
}

export class CandleStore {
  constructor() {
    this.reset();
  }

  reset() {
    this.history = { "1s": new Map(), "1m": new Map() }; // the candles API
    this.official = new Map(); // 1 s candles of the match (`sync`)
    this.forming = new Map(); // 1 s candles built from official ticks
    this.matchFrom = Infinity; // the first second of the match's own prices
    this.matchNewest = 0; // ... and the newest
    this.newest = 0;
  }

  /** Closed candles from the candles API. Returns true when anything drawn changed. */
  addHistory(interval, wireCandles) {
    const into = this.history[interval];
    if (!into) return false;
    let changed = false;
    for (const wire of wireCandles || []) {
      const c = fromWire(wire);
      if (!c || c.t !== bucket(c.t, interval) || same(into.get(c.t), c)) continue;
      into.set(c.t, c);
      changed = true;
      this.newest = Math.max(this.newest, c.t);
    }
    if (changed) this.trim();
    return changed;
  }

  /** The match's official 1 s candles (`sync`). Returns true when anything drawn changed. */
  addOfficial(wireCandles) {
    let changed = false;
    for (const wire of wireCandles || []) {
      const c = fromWire(wire);
      if (!c || c.t !== bucket(c.t, "1s")) continue;
      if (this.forming.delete(c.t)) changed = true;
      if (same(this.official.get(c.t), c)) continue;
      this.official.set(c.t, c);
      changed = true;
      this.matchFrom = Math.min(this.matchFrom, c.t);
      this.matchNewest = Math.max(this.matchNewest, c.t);
      this.newest = Math.max(this.newest, c.t);
    }
    if (changed) this.trim();
    return changed;
  }

  /** An official price. Returns the 1 s candle it changed, or null. */
  addTick(at, price) {
    const p = Number(price);
    if (!Number.isFinite(p) || !Number.isFinite(at)) return null;
    const t = bucket(at, "1s");
    const known = this.official.get(t);
    if (known) {
      // The second `sync` sent may still have been forming: a later tick extends it.
      if (t < this.matchNewest) return null;
      extend(known, p);
      return known;
    }
    const c = this.forming.get(t);
    if (c) extend(c, p);
    else {
      this.forming.set(t, { t, o: p, h: p, l: p, c: p, n: 1 });
      this.matchFrom = Math.min(this.matchFrom, t);
      if (t % INTERVAL_MS["1m"] === 0) this.trim(); // once a minute
    }
    this.matchNewest = Math.max(this.matchNewest, t);
    this.newest = Math.max(this.newest, t);
    return this.forming.get(t);
  }

  second(t) {
    if (t >= this.matchFrom) return this.official.get(t) || this.forming.get(t) || null;
    return this.history["1s"].get(t) || null;
  }

  /** The 1 m candle at `t`: the API's up to the minute the match started in, else built
   * from the match's 1 s candles in it. */
  minute(t) {
    const published = this.history["1m"].get(t);
    if (published && t <= bucket(this.matchFrom, "1m")) return published;
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
    return out || published || null;
  }

  /** Every candle of an interval, ascending by time. */
  candles(interval) {
    const times = new Set();
    const add = (t) => times.add(bucket(t, interval));
    for (const t of this.history[interval].keys()) add(t);
    if (interval === "1m") for (const t of this.history["1s"].keys()) add(t);
    for (const t of this.official.keys()) add(t);
    for (const t of this.forming.keys()) add(t);
    const at = interval === "1s" ? (t) => this.second(t) : (t) => this.minute(t);
    return [...times].sort((a, b) => a - b).map(at).filter(Boolean);
  }

  /** The newest candle of an interval (the one a new tick changes), or null. */
  last(interval) {
    const t = this.matchNewest || this.newest;
    return interval === "1s" ? this.second(t) : this.minute(bucket(t, "1m"));
  }

  trim() {
    for (const interval of INTERVALS) {
      const from = this.newest - KEEP_MS[interval];
      for (const t of this.history[interval].keys()) if (t < from) this.history[interval].delete(t);
    }
    const from = this.newest - KEEP_MS["1s"];
    for (const map of [this.official, this.forming]) for (const t of map.keys()) if (t < from) map.delete(t);
  }
}
