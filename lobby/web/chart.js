// The match screen's chart, drawn by TradingView's Lightweight Charts (vendored):
// candlesticks of the OFFICIAL price at 1 s or 1 m (the player switches), the
// player's position levels as price lines (stop-loss and take-profit can be
// dragged to move them), and the peeked live price as a line of its own.
// Times show in the player's time zone. Data: see candles.js.
import {
  CandlestickSeries,
  createChart,
  CrosshairMode,
  LineStyle,
  TickMarkType,
} from "./vendor/lightweight-charts-5.2.1.standalone.production.mjs";
import { CandleStore, INTERVAL_MS } from "./candles.js";

// Long and short, up and down: blue and orange (told apart with any colour vision),
// and never colour alone: lines carry a label and a style of their own.
export const COLORS = {
  text: "#8b98ad",
  grid: "#1c2638",
  border: "#24304a",
  up: "#4aa3ff",
  down: "#ff9f43",
  entry_long: "#4aa3ff",
  entry_short: "#ff9f43",
  liquidation: "#ff4d8d",
  stop_loss: "#ffd84a",
  take_profit: "#3ee0c8",
  peek: "#c58bff",
};
const PRICE_STEP = 0.01; // tick size of the symbol (modes.toml `price_step`)
const DECIMALS = 2;
const LEVELS = ["entry", "liquidation", "stop_loss", "take_profit"];
const DRAGGABLE = ["stop_loss", "take_profit"];
const NAMES = { entry: "entry", liquidation: "liquidation", stop_loss: "stop-loss", take_profit: "take-profit" };
const GRAB_PX = { mouse: 6, pen: 8, touch: 16 };
const PEEK_KEEP_MS = 15 * 60 * 1000;
const PEEK_SHOW_MS = 3000; // the peek line stays this long after the last peeked price

const toSeconds = (ms) => Math.floor(ms / 1000);

function bar(c) {
  return { time: toSeconds(c.t), open: c.o, high: c.h, low: c.l, close: c.c };
}

/** The newest of ascending `times` at or before `t`, or null. */
function slotAtOrBefore(times, t) {
  let lo = 0;
  let hi = times.length; // times[0, lo) <= t < times[hi, ...)
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid] <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo ? times[lo - 1] : null;
}

export function snap(price) {
  return (Math.round(price / PRICE_STEP) * PRICE_STEP).toFixed(DECIMALS);
}

// In the browser's own time zone and locale (the library itself knows only UTC).
const FORMATS = {
  time: new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" }),
  seconds: new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" }),
  day: new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" }),
  month: new Intl.DateTimeFormat(undefined, { month: "short" }),
  year: new Intl.DateTimeFormat(undefined, { year: "numeric" }),
  full: new Intl.DateTimeFormat(undefined, {
    day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  }),
};

export function formatTime(seconds) {
  return FORMATS.full.format(new Date(seconds * 1000));
}

function tickMark(seconds, type) {
  const at = new Date(seconds * 1000);
  switch (type) {
    case TickMarkType.Year:
      return FORMATS.year.format(at);
    case TickMarkType.Month:
      return FORMATS.month.format(at);
    case TickMarkType.DayOfMonth:
      return FORMATS.day.format(at);
    case TickMarkType.TimeWithSeconds:
      return FORMATS.seconds.format(at);
    default:
      return FORMATS.time.format(at);
  }
}

export class TradeChart {
  /**
   * @param container the element the chart fills
   * @param onStops async (kind, price) => the server's acknowledgement of `set_stops`
   *        (kind: stop_loss | take_profit, price: decimal string), or null
   * @param onStatus (text, state) => shows the outcome of a drag to the player
   */
  constructor(container, { onStops, onStatus }) {
    this.container = container;
    this.onStops = onStops;
    this.onStatus = onStatus;
    this.store = new CandleStore();
    this.current = "1s";
    this.peekPoints = []; // {at, price}, ascending
    this.position = null;
    this.lines = new Map(); // kind -> IPriceLine
    this.drag = null;
    this.lastStops = null;
    this.pending = null; // what the next paint redraws: "all" | "last"
    this.scheduled = false;
    this.lastTick = null;
    this.chart = createChart(container, {
      autoSize: true,
      layout: {
        background: { color: "transparent" },
        textColor: COLORS.text,
        fontFamily: "system-ui, sans-serif",
        // The library's logo injects a <style> element, which the page's CSP refuses:
        // the attribution notice and link sit under the chart instead (index.html).
        attributionLogo: false,
      },
      grid: { vertLines: { color: COLORS.grid }, horzLines: { color: COLORS.grid } },
      rightPriceScale: { borderColor: COLORS.border },
      timeScale: {
        borderColor: COLORS.border,
        timeVisible: true,
        secondsVisible: true,
        rightOffset: 4,
        tickMarkFormatter: tickMark,
        tickMarkMaxCharacterLength: 12, // local times may be long ("01:02:16 AM")
      },
      crosshair: { mode: CrosshairMode.Normal },
      localization: { timeFormatter: formatTime, priceFormatter: (p) => p.toFixed(DECIMALS) },
    });
    this.candles = this.chart.addSeries(CandlestickSeries, {
      title: "official",
      upColor: COLORS.up,
      downColor: "transparent", // hollow falling candles: told apart by shape too
      borderUpColor: COLORS.up,
      borderDownColor: COLORS.down,
      wickUpColor: COLORS.up,
      wickDownColor: COLORS.down,
      priceFormat: { type: "price", precision: DECIMALS, minMove: PRICE_STEP },
      autoscaleInfoProvider: (original) => this.autoscale(original()),
    });
    // The peeked live price: a line of its own colour, style and label across the
    // candles, while a Peek lasts. (A second series for it, with points on the candles'
    // times, made the library fail while drawing the candles: "Value is null".)
    this.peekLine = null;
    this.peekTimer = null;
    this.wireDrag();
  }

  // ---------- data ----------

  reset() {
    this.store.reset();
    this.peekPoints = [];
    this.lastTick = null;
    this.lastStops = null;
    this.cancelDrag();
    this.setPosition(null);
    this.candles.setData([]);
    this.showPeek(null);
  }

  /** Closed candles of the feed from the candles API. */
  addHistory(interval, items) {
    if (this.store.addHistory(interval, items)) this.redraw("all");
  }

  /** The match's official candles (`sync`: {interval, items}). */
  addOfficial(candles) {
    if (candles?.interval === "1s" && this.store.addOfficial(candles.items)) this.redraw("all");
  }

  /** An official price (a `tick`, or the price `sync` reports). */
  add(at, price) {
    this.lastTick = { at, price: Number(price) };
    const changed = this.store.addTick(at, price);
    if (changed) this.redraw("last");
  }

  hasCandles() {
    return this.store.newest > 0;
  }

  /** A peeked live price: not official; drawn as a line of its own. */
  peek(at, price) {
    const p = Number(price);
    if (!Number.isFinite(p)) return;
    const last = this.peekPoints[this.peekPoints.length - 1];
    if (last && at < last.at) return;
    this.peekPoints.push({ at, price: p });
    while (this.peekPoints.length && this.peekPoints[0].at < at - PEEK_KEEP_MS) this.peekPoints.shift();
    this.showPeek(p);
    clearTimeout(this.peekTimer);
    this.peekTimer = setTimeout(() => this.showPeek(null), PEEK_SHOW_MS); // the Peek is over
  }

  showPeek(price) {
    if (price === null) {
      if (this.peekLine) this.candles.removePriceLine(this.peekLine);
      this.peekLine = null;
      return;
    }
    const options = {
      price,
      color: COLORS.peek,
      lineWidth: 2,
      lineStyle: LineStyle.Dotted,
      axisLabelVisible: true,
      title: "◆ peek (live)",
    };
    if (this.peekLine) this.peekLine.applyOptions(options);
    else this.peekLine = this.candles.createPriceLine(options);
  }

  setInterval(interval) {
    if (!INTERVAL_MS[interval] || interval === this.current) return;
    this.current = interval;
    this.redraw("all");
    this.chart.timeScale().scrollToRealTime();
  }

  interval() {
    return this.current;
  }

  redraw(what) {
    const rank = { last: 1, all: 2 };
    if (!this.pending || rank[what] > rank[this.pending]) this.pending = what;
    if (this.scheduled) return;
    this.scheduled = true;
    // At the next frame; a timer too, as a tab in the background gets no frames (the
    // series then stay current, for when the player comes back and for the hooks).
    const flush = () => this.flush();
    requestAnimationFrame(flush);
    setTimeout(flush, 250);
  }

  /** Paints what is pending now (no-op if nothing is). */
  flush() {
    if (!this.scheduled) return;
    this.scheduled = false;
    const pending = this.pending;
    this.pending = null;
    this.paint(pending);
  }

  paint(what) {
    // Whole data sets only: the library's incremental `update` beside a second series
    // was seen to leave the candles' rows out of step with the time scale ("Value is
    // null" when drawing). A paint is at most one a frame, of a few thousand candles.
    if (what === "all" || what === "last") this.candles.setData(this.store.candles(this.current).map(bar));
  }

  peekData() {
    // One point per candle of the current interval (the newest price in it): the peeks
    // sit on the candles' time slots and never add slots of their own. A peek ahead of
    // the newest candle waits on it until its own candle comes. (A point at a time the
    // candle series lacks also trips the library when the candles are then updated.)
    const step = INTERVAL_MS[this.current];
    const times = this.candles.data().map((c) => c.time);
    const out = [];
    for (const p of this.peekPoints) {
      const time = slotAtOrBefore(times, toSeconds(Math.floor(p.at / step) * step));
      if (time === null) continue;
      if (out.length && out[out.length - 1].time === time) out[out.length - 1].value = p.price;
      else out.push({ time, value: p.price });
    }
    return out;
  }

  // ---------- position lines ----------

  lineOptions(kind, price) {
    const side = this.position?.side;
    if (kind === "entry") {
      const long = side === "long";
      return {
        price,
        color: long ? COLORS.entry_long : COLORS.entry_short,
        lineWidth: 2,
        lineStyle: LineStyle.Solid,
        axisLabelVisible: true,
        title: long ? "▲ long entry" : "▼ short entry",
      };
    }
    if (kind === "liquidation") {
      return { price, color: COLORS.liquidation, lineWidth: 2, lineStyle: LineStyle.SparseDotted, axisLabelVisible: true, title: "✕ liquidation" };
    }
    const dragging = this.drag?.kind === kind;
    return {
      price,
      color: COLORS[kind],
      lineWidth: dragging ? 3 : 2,
      lineStyle: kind === "stop_loss" ? LineStyle.Dashed : LineStyle.LargeDashed,
      axisLabelVisible: true,
      title: `${kind === "stop_loss" ? "SL" : "TP"} ⇕${dragging ? " drop to set" : ""}`,
    };
  }

  /** The player's position (as in `sync`/`fill`), or null: draws its levels. */
  setPosition(position) {
    const sideChanged = position?.side !== this.position?.side;
    this.position = position || null;
    for (const kind of LEVELS) {
      const value = position?.[kind];
      const line = this.lines.get(kind);
      if (value === null || value === undefined || value === "") {
        if (line && this.drag?.kind !== kind) {
          this.candles.removePriceLine(line);
          this.lines.delete(kind);
        }
        continue;
      }
      if (this.drag?.kind === kind) continue; // the player holds it
      const price = Number(value);
      if (!line) this.lines.set(kind, this.candles.createPriceLine(this.lineOptions(kind, price)));
      else if (line.options().price !== price || sideChanged) line.applyOptions(this.lineOptions(kind, price));
    }
  }

  /** The price scale also shows the entry and the stops (a liquidation only when near):
   * a level the player may drag is always on screen. Held still while dragging. */
  autoscale(info) {
    if (this.drag?.range) return this.drag.range;
    this.scaled = this.scale(info);
    return this.scaled;
  }

  scale(info) {
    if (!info?.priceRange || !this.position) return info;
    let { minValue: lo, maxValue: hi } = info.priceRange;
    const levels = ["entry", "stop_loss", "take_profit"].map((k) => Number(this.position[k])).filter((v) => v > 0);
    for (const v of levels) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const liquidation = Number(this.position.liquidation);
    const reach = Math.max(hi - lo, hi * 0.002);
    if (liquidation > 0 && liquidation > lo - reach && liquidation < hi + reach) {
      lo = Math.min(lo, liquidation);
      hi = Math.max(hi, liquidation);
    }
    return { ...info, priceRange: { minValue: lo, maxValue: hi } };
  }

  // ---------- dragging stop-loss / take-profit ----------

  wireDrag() {
    const el = this.container;
    const opts = { capture: true };
    el.addEventListener("pointerdown", (e) => this.pointerDown(e), opts);
    el.addEventListener("pointermove", (e) => this.pointerMove(e), opts);
    el.addEventListener("pointerup", (e) => this.pointerUp(e), opts);
    el.addEventListener("pointercancel", (e) => this.pointerCancel(e), opts);
    // While a level is held the chart must not pan or zoom with the same gesture: its
    // own mouse and touch handlers (on elements inside) never see these events.
    const swallow = (e) => {
      if (!this.drag) return;
      e.stopPropagation();
      if (e.cancelable && e.type.startsWith("touch")) e.preventDefault();
    };
    for (const type of ["mousedown", "mousemove", "mouseup", "touchstart", "touchmove", "touchend"]) {
      el.addEventListener(type, swallow, { capture: true, passive: false });
    }
  }

  paneY(e) {
    return e.clientY - this.container.getBoundingClientRect().top;
  }

  grabbed(e) {
    const y = this.paneY(e);
    const x = e.clientX - this.container.getBoundingClientRect().left;
    if (x < 0 || x > this.chart.timeScale().width()) return null; // not the price axis
    const reach = GRAB_PX[e.pointerType] ?? GRAB_PX.mouse;
    let best = null;
    for (const kind of DRAGGABLE) {
      const line = this.lines.get(kind);
      if (!line) continue;
      const ly = this.candles.priceToCoordinate(line.options().price);
      if (ly === null) continue;
      const d = Math.abs(ly - y);
      if (d <= reach && (!best || d < best.d)) best = { kind, d };
    }
    return best?.kind ?? null;
  }

  pointerDown(e) {
    if (this.drag || !this.position || (e.pointerType === "mouse" && e.button !== 0)) return;
    const kind = this.grabbed(e);
    if (!kind) return;
    e.preventDefault(); // no mouse events follow: the chart does not pan
    e.stopPropagation();
    this.container.setPointerCapture?.(e.pointerId);
    const line = this.lines.get(kind);
    const range = this.scaled; // the scale as it is now, held still during the drag
    this.drag = { kind, pointerId: e.pointerId, from: line.options().price, price: line.options().price, range };
    this.chart.applyOptions({ handleScroll: false, handleScale: false });
    this.container.dataset.dragging = kind;
    line.applyOptions(this.lineOptions(kind, this.drag.price));
  }

  pointerMove(e) {
    if (!this.drag) {
      if (e.pointerType === "mouse" && this.position) this.container.classList.toggle("grab", Boolean(this.grabbed(e)));
      return;
    }
    if (e.pointerId !== this.drag.pointerId) return;
    e.stopPropagation();
    const price = this.candles.coordinateToPrice(this.paneY(e));
    if (price === null || !(price > 0)) return;
    this.drag.price = Number(snap(price));
    this.lines.get(this.drag.kind)?.applyOptions(this.lineOptions(this.drag.kind, this.drag.price));
  }

  async pointerUp(e) {
    const drag = this.drag;
    if (!drag || e.pointerId !== drag.pointerId) return;
    e.stopPropagation();
    this.endDrag();
    if (Math.abs(drag.price - drag.from) < PRICE_STEP / 2) {
      this.restore(drag.kind);
      return;
    }
    const price = snap(drag.price);
    const name = NAMES[drag.kind];
    this.onStatus?.(`Moving the ${name} to ${price}…`, "pending");
    this.lastStops = { kind: drag.kind, price, ack: null, at: Date.now() };
    let ack = null;
    try {
      ack = await this.onStops(drag.kind, price);
    } catch (err) {
      ack = { ok: false, code: "error", message: String(err?.message || err) };
    }
    ack = ack || { ok: false, code: "no_answer", message: "the match server did not answer" };
    this.lastStops = { ...this.lastStops, ack };
    if (ack.ok) {
      this.onStatus?.(`The ${name} is now ${price} (server: ${ack.code || "ok"}).`, "ok");
      if (ack.position) this.setPosition(ack.position);
    } else {
      this.onStatus?.(`The ${name} stays at ${this.position?.[drag.kind] ?? "–"}: refused, ${ack.code}: ${ack.message}`, "refused");
      this.restore(drag.kind);
    }
  }

  pointerCancel(e) {
    if (!this.drag || e.pointerId !== this.drag.pointerId) return;
    const kind = this.drag.kind;
    this.endDrag();
    this.restore(kind);
  }

  endDrag() {
    const kind = this.drag?.kind;
    this.drag = null;
    delete this.container.dataset.dragging;
    this.chart.applyOptions({ handleScroll: true, handleScale: true });
    const line = this.lines.get(kind);
    if (line) line.applyOptions(this.lineOptions(kind, line.options().price)); // drop the "held" look
  }

  cancelDrag() {
    if (this.drag) this.endDrag();
  }

  /** Puts a level back where the position has it. */
  restore(kind) {
    const line = this.lines.get(kind);
    const value = this.position?.[kind];
    if (!line) return;
    if (value === null || value === undefined) {
      this.candles.removePriceLine(line);
      this.lines.delete(kind);
    } else line.applyOptions(this.lineOptions(kind, Number(value)));
  }

  // ---------- read-only hooks for tests (window.tradearena.chart) ----------

  hooks() {
    const chart = this;
    const series = (s) => {
      chart.flush(); // what is drawn, pending changes included
      return s.data().map((d) => ({ ...d }));
    };
    return {
      interval: () => chart.current,
      /** The candles of an interval as the series holds them ({time (s), open, high, low, close}). */
      candles: (interval = chart.current) =>
        interval === chart.current ? series(chart.candles) : chart.store.candles(interval).map(bar),
      /** Current price lines: [{kind, price, title, color, lineStyle}]. */
      lines: () =>
        [...chart.lines.entries()].map(([kind, line]) => {
          const o = line.options();
          return { kind, price: o.price, title: o.title, color: o.color, lineStyle: o.lineStyle };
        }),
      /** Peeked live prices received ({time (s), value}, one a candle slot), never in the candles. */
      peeks: () => chart.peekData(),
      /** How the official candles and the peek line look (peek: null when no Peek shows). */
      looks: () => {
        const o = chart.candles.options();
        const peek = chart.peekLine?.options();
        return {
          official: { title: o.title, up: o.upColor, down: o.borderDownColor },
          peek: peek ? { title: peek.title, color: peek.color, lineStyle: peek.lineStyle, price: peek.price } : null,
        };
      },
      official: () => (chart.lastTick ? { ...chart.lastTick } : null),
      /** The first second (epoch s) of the match's own official prices; null before any. */
      matchFrom: () => (Number.isFinite(chart.store.matchFrom) ? toSeconds(chart.store.matchFrom) : null),
      /** Where a level's line is on screen (viewport px), for pointer input; null if not drawn. */
      lineAt: (kind) => {
        const line = chart.lines.get(kind);
        const y = line && chart.candles.priceToCoordinate(line.options().price);
        if (y === null || y === undefined) return null;
        const box = chart.container.getBoundingClientRect();
        return { x: box.left + chart.chart.timeScale().width() / 2, y: box.top + y };
      },
      /** The viewport y of a price on the chart's scale (null if off the pane). */
      yOf: (price) => {
        const y = chart.candles.priceToCoordinate(price);
        return y === null ? null : chart.container.getBoundingClientRect().top + y;
      },
      /** The last dragged level and the server's acknowledgement of it. */
      stops: () => (chart.lastStops ? JSON.parse(JSON.stringify(chart.lastStops)) : null),
      timeZone: () => Intl.DateTimeFormat().resolvedOptions().timeZone,
      formatTime,
      dragging: () => chart.drag?.kind ?? null,
    };
  }
}
