// A live line chart of the official price on a canvas: the last few minutes of
// ticks, the player's entry, liquidation, stop-loss and take-profit levels, and
// Peek prices (live, not yet official) as dots ahead of the line.

const WINDOW_MS = 3 * 60 * 1000;
const COLORS = {
  grid: "#2a3344",
  text: "#8b98ad",
  line: "#4aa3ff",
  entry: "#e8eef7",
  liquidation: "#ff4d5e",
  stop_loss: "#ff9f43",
  take_profit: "#2ed47a",
  peek: "#c58bff",
};

export class PriceChart {
  constructor(canvas) {
    this.canvas = canvas;
    this.ticks = [];
    this.peeks = [];
    this.levels = {};
    this.pending = false;
  }

  add(at, price) {
    const last = this.ticks[this.ticks.length - 1];
    if (last && at < last.at) return;
    this.ticks.push({ at, price: Number(price) });
    this.trim(at);
    this.draw();
  }

  peek(at, price) {
    this.peeks.push({ at, price: Number(price) });
    this.trim(at);
    this.draw();
  }

  setLevels(position) {
    this.levels = {};
    if (position) {
      for (const key of ["entry", "liquidation", "stop_loss", "take_profit"]) {
        if (position[key]) this.levels[key] = Number(position[key]);
      }
    }
    this.draw();
  }

  reset() {
    this.ticks = [];
    this.peeks = [];
    this.levels = {};
    this.draw();
  }

  trim(now) {
    const from = now - WINDOW_MS;
    while (this.ticks.length > 2 && this.ticks[0].at < from) this.ticks.shift();
    while (this.peeks.length && this.peeks[0].at < from) this.peeks.shift();
  }

  draw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.paint();
    });
  }

  paint() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || canvas.width;
    const height = canvas.clientHeight || canvas.height;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "11px system-ui, sans-serif";
    if (this.ticks.length === 0) {
      ctx.fillStyle = COLORS.text;
      ctx.fillText("waiting for the official price…", 12, height / 2);
      return;
    }
    const pad = { left: 8, right: 78, top: 10, bottom: 20 };
    const points = [...this.ticks, ...this.peeks];
    const t0 = Math.min(...points.map((p) => p.at));
    const t1 = Math.max(...points.map((p) => p.at), t0 + 10_000);
    // The scale follows the prices; a level far outside (say a liquidation at -20 %) is
    // pinned to the edge with its value instead of flattening the line.
    const prices = points.map((p) => p.price);
    let lo = Math.min(...prices);
    let hi = Math.max(...prices);
    const reach = Math.max((hi - lo) * 3, hi * 0.005);
    for (const level of Object.values(this.levels)) {
      if (level >= lo - reach && level <= hi + reach) {
        lo = Math.min(lo, level);
        hi = Math.max(hi, level);
      }
    }
    if (hi - lo < hi * 0.0005) {
      const mid = (hi + lo) / 2;
      lo = mid - mid * 0.00025;
      hi = mid + mid * 0.00025;
    }
    const margin = (hi - lo) * 0.08;
    lo -= margin;
    hi += margin;
    const x = (t) => pad.left + ((t - t0) / (t1 - t0)) * (width - pad.left - pad.right);
    const y = (p) => pad.top + (1 - (p - lo) / (hi - lo)) * (height - pad.top - pad.bottom);

    // grid and price axis
    ctx.strokeStyle = COLORS.grid;
    ctx.fillStyle = COLORS.text;
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const p = lo + ((hi - lo) * i) / 4;
      const yy = Math.round(y(p)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(pad.left, yy);
      ctx.lineTo(width - pad.right, yy);
      ctx.stroke();
      ctx.fillText(p.toFixed(2), width - pad.right + 6, yy + 4);
    }
    const seconds = Math.round((t1 - t0) / 1000);
    ctx.fillText(`last ${seconds} s`, pad.left, height - 5);

    // position levels
    ctx.setLineDash([5, 4]);
    const pinned = { above: 0, below: 0 };
    for (const [key, level] of Object.entries(this.levels)) {
      const outside = level < lo ? "↓" : level > hi ? "↑" : "";
      const yy = Math.round(y(Math.min(hi, Math.max(lo, level)))) + 0.5;
      ctx.strokeStyle = COLORS[key];
      ctx.fillStyle = COLORS[key];
      const name = key.replace("_", " ");
      if (outside) {
        const side = level < lo ? "below" : "above";
        const at = side === "below" ? yy - 4 - 13 * pinned.below : yy + 12 + 13 * pinned.above;
        pinned[side] += 1;
        ctx.fillText(`${name} ${level.toFixed(2)} ${outside}`, pad.left + 4, at);
        continue;
      }
      ctx.beginPath();
      ctx.moveTo(pad.left, yy);
      ctx.lineTo(width - pad.right, yy);
      ctx.stroke();
      ctx.fillText(name, pad.left + 4, yy - 3);
    }
    ctx.setLineDash([]);

    // the official price
    ctx.strokeStyle = COLORS.line;
    ctx.lineWidth = 2;
    ctx.beginPath();
    this.ticks.forEach((tick, i) => {
      if (i === 0) ctx.moveTo(x(tick.at), y(tick.price));
      else ctx.lineTo(x(tick.at), y(tick.price));
    });
    ctx.stroke();
    const last = this.ticks[this.ticks.length - 1];
    ctx.fillStyle = COLORS.line;
    ctx.fillRect(width - pad.right + 2, y(last.price) - 8, pad.right - 4, 16);
    ctx.fillStyle = "#0b1220";
    ctx.fillText(last.price.toFixed(2), width - pad.right + 6, y(last.price) + 4);

    // peeked live prices
    ctx.fillStyle = COLORS.peek;
    for (const p of this.peeks) {
      ctx.beginPath();
      ctx.arc(x(p.at), y(p.price), 3, 0, Math.PI * 2);
      ctx.fill();
    }
  }
}
