// The replay viewer: a finished match, replayed by the lobby from its log and
// verified against its stored result (GET /matches/{id}/replay), played back here:
// the official price on the match screen's chart (its 1 s candles), every
// player's position, equity and cash and the board over time, play/pause, a speed
// (1x to 16x), a time slider and a link (#/replay/<match id>) that opens it directly.
// Frames carry only what changed (docs/web.md): they are folded into complete states
// once, when the replay loads.
import { TradeChart } from "../chart.js";
import { h, money, showError, signed } from "./common.js";

export const SPEEDS = [1, 2, 4, 8, 16];
export const LINK_PREFIX = "#/replay/";
const TICK_MS = 100; // the playback clock's step (wall time)

/** Complete states from compact frames: {t, p, e[], c[], pos[], s[], b[], f[]}. */
export function fold(frames, players) {
  let state = { e: Array(players).fill(null), c: Array(players).fill(null), pos: Array(players).fill(null), s: Array(players).fill(null), b: [] };
  return frames.map((frame) => {
    const next = { ...state, b: frame.b || state.b };
    for (const key of ["e", "c", "pos", "s"]) {
      if (!frame[key]) continue;
      next[key] = state[key].slice();
      for (const [i, value] of Object.entries(frame[key])) next[key][Number(i)] = value;
    }
    state = next;
    return { ...next, t: frame.t, p: frame.p, f: frame.f || [] };
  });
}

function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function describe(pos) {
  if (!pos) return ["flat", ""];
  const levels = [
    pos.stop_loss ? `SL ${money(pos.stop_loss)}` : null,
    pos.take_profit ? `TP ${money(pos.take_profit)}` : null,
    pos.liquidation ? `liq. ${money(pos.liquidation)}` : null,
  ].filter(Boolean);
  return [`${pos.side} ${pos.qty} @ ${money(pos.entry)}`, levels.join(" · ")];
}

export class ReplayScreen {
  constructor(section, { call, user, openProfile }) {
    this.section = section;
    this.call = call;
    this.user = user;
    this.openProfile = openProfile;
    this.doc = null;
    this.states = [];
    this.t = 0;
    this.index = -1;
    this.drawn = -1; // the last frame given to the chart
    this.playing = false;
    this.speed = 1;
    this.timer = null;
    this.seq = 0;
    this.seen = { positions: 0, frames: 0 }; // what playback showed (test hooks)
    this.build();
  }

  build() {
    const $ = (tag, attrs, ...kids) => h(tag, attrs, ...kids);
    this.title = $("h2", { id: "replay-title", "data-testid": "replay-title", tabindex: "-1" }, "Replay");
    this.summary = $("p", { class: "status", "data-testid": "replay-summary" });
    this.playButton = $("button", { type: "button", "data-testid": "replay-play", onclick: () => this.toggle() }, "Play");
    this.speedButtons = SPEEDS.map((n) =>
      $("button", { type: "button", class: "secondary", "data-testid": `replay-speed-${n}`, "aria-pressed": String(n === this.speed), onclick: () => this.setSpeed(n) }, `${n}x`),
    );
    this.slider = $("input", { type: "range", min: "0", max: "0", step: "1000", value: "0", "data-testid": "replay-slider", "aria-label": "Match time" });
    this.slider.addEventListener("input", () => this.seek(Number(this.slider.value)));
    this.clock = $("span", { class: "strong", "data-testid": "replay-clock" }, "0:00");
    this.price = $("strong", { "data-testid": "replay-price" }, "–");
    this.focus = $("select", { "data-testid": "replay-focus", onchange: () => this.drawLevels() });
    this.link = $("input", { readonly: true, "data-testid": "replay-link", "aria-label": "Link to this replay", class: "replay-link" });
    this.copyButton = $("button", { type: "button", class: "secondary", "data-testid": "replay-copy-link", onclick: () => this.copyLink() }, "Copy link");
    this.chartBox = $("div", { class: "chart", "data-testid": "replay-chart", role: "img", "aria-label": "Candles of the match's official price, with the chosen player's position levels" });
    this.boardBody = $("tbody");
    this.fills = $("ol", { "data-testid": "replay-fills", reversed: true, class: "replay-fills" });
    this.error = $("p", { class: "error", role: "alert", "data-testid": "replay-error" });
    this.section.replaceChildren(
      this.title,
      this.summary,
      $(
        "div",
        { class: "row replay-controls" },
        this.playButton,
        $("span", { class: "intervals", role: "group", "aria-label": "Playback speed" }, this.speedButtons),
        this.clock,
      ),
      $("label", { class: "replay-slider" }, "Time", this.slider),
      $("div", { class: "prices" }, $("span", {}, "Official ", this.price), $("label", { class: "replay-focus" }, "Levels of", this.focus)),
      this.chartBox,
      $("h3", {}, "Board"),
      $(
        "table",
        { "data-testid": "replay-board", class: "replay-board" },
        $("caption", { class: "sr-only" }, "Every player at this moment of the match, rank 1 first"),
        $("thead", {}, $("tr", {}, ["#", "Player", "Equity", "Position"].map((name) => $("th", { scope: "col" }, name)))),
        this.boardBody,
      ),
      $("h3", {}, "Fills"),
      this.fills,
      $("div", { class: "row" }, this.link, this.copyButton),
      this.error,
    );
    this.chart = new TradeChart(this.chartBox, {
      onStops: async () => ({ ok: false, code: "read_only", message: "a replay cannot be changed" }),
      onStatus: () => {},
    });
  }

  async open(matchId) {
    this.pause();
    showError(this.error, null);
    this.section.dataset.loaded = "false";
    this.section.dataset.matchId = matchId;
    this.doc = null;
    this.states = [];
    this.seen = { positions: 0, frames: 0 };
    this.summary.textContent = "Loading the replay (the match is replayed from its log and checked)…";
    this.link.value = `${location.origin}${location.pathname}${LINK_PREFIX}${encodeURIComponent(matchId)}`;
    const seq = ++this.seq;
    let doc;
    try {
      doc = await this.call("GET", `/matches/${encodeURIComponent(matchId)}/replay`);
    } catch (err) {
      if (seq !== this.seq) return;
      this.summary.textContent = "";
      showError(this.error, err);
      this.section.dataset.loaded = "error";
      return;
    }
    if (seq !== this.seq) return;
    this.doc = doc;
    this.names = doc.players.map((p) => p.username);
    this.states = fold(doc.frames, doc.players.length);
    this.duration = this.states.length ? this.states[this.states.length - 1].t : 0;
    this.slider.max = String(this.duration);
    const me = this.user()?.id;
    const mine = doc.players.findIndex((p) => p.player === me);
    this.focus.replaceChildren(...doc.players.map((p, i) => new Option(p.username + (i === mine ? " (you)" : ""), String(i))));
    this.focus.value = String(mine >= 0 ? mine : this.states[0]?.b[0] ?? 0);
    this.summary.textContent = `${doc.mode} / ${doc.format} · ${doc.symbol} · ${doc.players.length} players · ${clock(this.duration)} · ${doc.kind} · ` +
      `${doc.verified ? "verified: the log reproduces the stored result" : "not verified"}`;
    this.chart.reset();
    this.candle = 0;
    this.drawn = -1;
    this.index = -1;
    this.seek(0);
    this.section.dataset.loaded = "true";
  }

  // ---------- playback ----------

  toggle() {
    if (this.playing) this.pause();
    else this.play();
  }

  play() {
    if (!this.states.length) return;
    if (this.t >= this.duration) this.seek(0);
    this.playing = true;
    this.section.dataset.playing = "true";
    this.playButton.textContent = "Pause";
    let last = performance.now();
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      const now = performance.now();
      const step = (now - last) * this.speed;
      last = now;
      this.seek(Math.min(this.duration, this.t + step));
      if (this.t >= this.duration) this.pause();
    }, TICK_MS);
  }

  pause() {
    clearInterval(this.timer);
    this.timer = null;
    this.playing = false;
    this.section.dataset.playing = "false";
    this.playButton.textContent = this.t >= this.duration && this.states.length ? "Play again" : "Play";
  }

  setSpeed(n) {
    this.speed = n;
    this.section.dataset.speed = String(n);
    for (const button of this.speedButtons) button.setAttribute("aria-pressed", String(button.dataset.testid === `replay-speed-${n}`));
  }

  /** Shows the match at `t` ms from its start. */
  seek(t) {
    if (!this.states.length) return;
    this.t = Math.max(0, Math.min(this.duration, t));
    let i = Math.max(0, Math.min(this.index, this.states.length - 1));
    if (this.states[i].t > this.t) i = 0;
    while (i + 1 < this.states.length && this.states[i + 1].t <= this.t) i += 1;
    this.slider.value = String(Math.floor(this.t));
    this.clock.textContent = `${clock(this.t)} / ${clock(this.duration)}`;
    this.section.dataset.t = String(Math.floor(this.t));
    this.section.dataset.ended = String(this.t >= this.duration);
    if (i !== this.index) this.show(i);
  }

  show(i) {
    const state = this.states[i];
    const start = this.doc.started_at;
    const from = i < this.drawn ? 0 : this.drawn + 1;
    if (i < this.drawn) {
      this.chart.reset();
      this.candle = 0;
    }
    // The official 1 s candles closed by now, then the frames' prices (the forming one).
    const closed = [];
    const candles = this.doc.candles || [];
    while (this.candle < candles.length && start + candles[this.candle][0] + 1000 <= start + state.t) {
      const [t, o, hi, lo, c, n] = candles[this.candle];
      closed.push({ t: start + t, o, h: hi, l: lo, c, n });
      this.candle += 1;
    }
    if (closed.length) this.chart.addOfficial({ interval: "1s", items: closed });
    for (let k = from; k <= i; k += 1) {
      const s = this.states[k];
      if (s.p !== null) this.chart.add(start + s.t, s.p);
    }
    this.drawn = i;
    this.index = i;
    this.price.textContent = state.p === null ? "–" : money(state.p);
    this.renderBoard(state);
    this.renderFills(i);
    this.drawLevels();
    this.seen.frames += 1;
    if (state.pos.some(Boolean)) this.seen.positions += 1;
  }

  drawLevels() {
    const state = this.states[this.index];
    this.chart.setPosition(state ? state.pos[Number(this.focus.value)] : null);
  }

  renderBoard(state) {
    const me = this.user()?.id;
    this.boardBody.replaceChildren(
      ...state.b.map((i, rank) => {
        const player = this.doc.players[i].player;
        const pos = state.pos[i];
        const [line, levels] = describe(pos);
        return h(
          "tr",
          { class: player === me ? "me" : null, "data-testid": "replay-row", "data-player": player, "data-rank": rank + 1, "data-equity": state.e[i], "data-status": state.s[i] },
          h("td", {}, String(rank + 1)),
          h("td", {}, h("button", { type: "button", class: "link", onclick: () => this.openProfile?.(this.names[i]) }, this.names[i]), state.s[i] === "abandoned" ? " (abandoned)" : ""),
          h("td", { class: "num" }, money(state.e[i]), h("div", { class: "hint" }, `cash ${money(state.c[i])}`)),
          h(
            "td",
            { "data-testid": "replay-position", "data-side": pos ? pos.side : "" , class: pos ? (pos.side === "long" ? "up" : "down") : null },
            line,
            levels ? h("div", { class: "hint" }, levels) : null,
          ),
        );
      }),
    );
  }

  renderFills(i) {
    const out = [];
    for (let k = i; k >= 0 && out.length < 8; k -= 1) {
      for (const [who, reason, side, qty, price, pnl] of [...this.states[k].f].reverse()) {
        if (out.length >= 8) break;
        out.push(
          h(
            "li",
            { "data-testid": "replay-fill" },
            `${clock(this.states[k].t)} ${this.names[who]} ${reason} ${side} ${qty} @ ${money(price)}` + (Number(pnl) ? ` (${signed(pnl)})` : ""),
          ),
        );
      }
    }
    this.fills.replaceChildren(...out);
  }

  async copyLink() {
    this.link.select();
    try {
      await navigator.clipboard.writeText(this.link.value);
      this.copyButton.textContent = "Copied";
    } catch {
      document.execCommand?.("copy");
      this.copyButton.textContent = "Copied (select)";
    }
    this.copyButton.dataset.copied = "true";
  }

  /** Read-only hooks for tests (window.tradearena.screens.replay()). */
  hooks() {
    const state = this.states[this.index];
    return {
      matchId: this.doc?.match_id ?? null,
      loaded: Boolean(this.doc),
      t: this.t,
      duration: this.duration ?? 0,
      index: this.index,
      frames: this.states.length,
      playing: this.playing,
      speed: this.speed,
      seen: { ...this.seen },
      board: state ? state.b.map((i, rank) => ({ rank: rank + 1, player: this.doc.players[i].player, username: this.names[i], equity: state.e[i], position: state.pos[i] })) : [],
      result: this.doc?.result ?? [],
      link: this.link.value,
    };
  }
}
