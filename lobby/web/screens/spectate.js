// Watching a live match, read-only and delayed (#/watch/<match id>):
//   POST /matches/{id}/spectate -> {url, token, delay_ms, players}; then the match
//   server's `/match` namespace with the spectator token: `spectate_sync` (the view and
//   its 1 s candles) on connect, a `spectate` frame every second after.
// Everything shown is the match as it was `delay_ms` ago (the server never sends newer):
// the official candles, the board, every listed player's position with its stops and
// liquidation, balance and equity. Nothing here can act in the match.
import { TradeChart } from "../chart.js";
import { h, money, showError, signed, table, trend } from "./common.js";
import { clearLink, linkTo } from "./links.js";

export const WATCH_PREFIX = "#/watch/";
const HISTORY_MS = 15 * 60 * 1000;
const KEEP_FRAMES = 600;
const OVER = new Set(["finished", "cancelled"]);

function price(value) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(2);
}

function clock(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export class SpectateScreen {
  constructor(section, { call, back }) {
    this.section = section;
    this.call = call;
    this.back = back;
    this.socket = null;
    this.grant = null;
    this.view = null;
    this.frames = []; // {at, received, phase, spectators, positions: {player: side|null}}
    this.seq = 0;
    this.build();
    this.chart = new TradeChart(this.chartBox, {
      onStops: async () => ({ ok: false, code: "read_only", message: "spectators cannot trade" }),
      onStatus: () => {},
    });
  }

  build() {
    const el = (tag, testid, attrs = {}, ...children) => h(tag, { "data-testid": testid, ...attrs }, ...children);
    this.title = el("h2", "spectate-title", { id: "spectate-title" }, "Watching");
    this.summary = el("span", "spectate-summary");
    this.delay = el("span", "spectate-delay", { class: "pill delay" });
    this.phase = el("strong", "spectate-phase");
    this.clock = el("strong", "spectate-clock", {}, "–");
    this.count = el("span", "spectate-count");
    this.conn = el("span", "spectate-connection", { class: "pill" }, "connecting");
    this.price = el("strong", "spectate-price", {}, "–");
    this.link = el("input", "spectate-link", { readonly: true, "aria-label": "Link to watch this match", class: "link-field" });
    this.copy = el("button", "spectate-copy", { type: "button", class: "secondary", onclick: () => this.copyLink() }, "Copy link");
    this.chartBox = el("div", "spectate-chart", {
      class: "chart",
      role: "img",
      "aria-label": "Candlestick chart of the official price, as it was when the delay began",
    });
    this.board = el("div", "spectate-board-box");
    this.error = el("p", "spectate-error", { class: "error", role: "alert" });
    this.section.replaceChildren(
      h(
        "div",
        { class: "matchbar card" },
        this.title,
        this.summary,
        this.delay,
        h("span", {}, "Phase ", this.phase),
        h("span", {}, "Ends in ", this.clock),
        this.count,
        this.conn,
        el("button", "spectate-back", { type: "button", class: "secondary", onclick: () => this.back() }, "Back to the lobby"),
      ),
      this.error,
      h(
        "div",
        { class: "card" },
        h("div", { class: "prices" }, h("span", {}, "Official ", this.price)),
        this.chartBox,
        h(
          "div",
          { class: "chart-foot" },
          h("span", { class: "status" }, "Read-only: the match as it was, never as it is."),
          h(
            "span",
            { class: "attribution" },
            "TradingView Lightweight Charts™ · Copyright (c) 2023 TradingView, Inc. · ",
            h("a", { href: "https://www.tradingview.com/", target: "_blank", rel: "noopener noreferrer" }, "tradingview.com"),
          ),
        ),
      ),
      h("div", { class: "card board-card" }, h("h3", {}, "Players"), this.board),
      h("div", { class: "card row share" }, h("label", {}, "Share", this.link), this.copy),
    );
  }

  /** Watch `matchId`: a token from the lobby, then the match server. */
  async open(matchId) {
    this.close(false);
    const seq = ++this.seq;
    this.grant = null;
    this.view = null;
    this.frames = [];
    this.chart.reset();
    showError(this.error, null);
    this.section.dataset.matchId = matchId;
    this.section.dataset.state = "opening";
    this.title.textContent = `Watching match ${matchId}`;
    this.link.value = linkTo(WATCH_PREFIX, matchId);
    this.summary.textContent = "";
    this.delay.textContent = "";
    this.board.replaceChildren(h("p", { class: "status" }, "Loading…"));
    let grant;
    try {
      grant = await this.call("POST", `/matches/${encodeURIComponent(matchId)}/spectate`);
    } catch (err) {
      if (seq !== this.seq) return;
      showError(this.error, err);
      this.section.dataset.state = "refused";
      this.board.replaceChildren();
      return;
    }
    if (seq !== this.seq) return;
    this.grant = grant;
    this.delay.textContent = `${Math.round(grant.delay_ms / 1000)} s behind`;
    this.delay.dataset.delayMs = String(grant.delay_ms);
    this.connect(seq);
  }

  connect(seq) {
    const socket = io(`${this.grant.url}/match`, {
      auth: { token: this.grant.token },
      transports: ["websocket", "polling"],
      reconnectionDelay: 500,
      reconnectionDelayMax: 3000,
    });
    this.socket = socket;
    socket.on("connect", () => {
      this.setConn("connected", "watching");
      this.sync(seq);
    });
    socket.on("disconnect", () => this.setConn("disconnected", socket.active ? "reconnecting…" : "disconnected"));
    socket.on("connect_error", (err) => {
      const code = err.data?.code;
      this.setConn("refused", code ? `refused: ${code}` : "reconnecting…");
      if (code) {
        showError(this.error, { code, message: err.data?.message || err.message });
        socket.disconnect();
      }
    });
    socket.on("spectate", (view) => {
      if (seq === this.seq) this.frame(view, Date.now());
    });
  }

  async sync(seq) {
    const socket = this.socket;
    let reply;
    try {
      reply = await socket.timeout(10000).emitWithAck("spectate_sync", {});
    } catch {
      return;
    }
    if (seq !== this.seq) return;
    if (!reply?.ok) {
      showError(this.error, reply || { code: "sync_failed", message: "no answer" });
      return;
    }
    const received = Date.now();
    const state = reply.state;
    if (state.candles) this.chart.addOfficial(Array.isArray(state.candles) ? { interval: "1s", items: state.candles } : state.candles);
    this.frame(state, received);
    this.loadHistory(seq, state);
  }

  // The feed's closed candles before the match's own (candles API), none newer than the view.
  async loadHistory(seq, state) {
    if (!state.symbol || this.historyLoaded === seq) return;
    this.historyLoaded = seq;
    const to = Math.floor(state.at / 1000) * 1000 - 1000;
    const query = new URLSearchParams({ interval: "1s", from: String(to - HISTORY_MS), to: String(to), limit: "1000" });
    try {
      const body = await this.call("GET", `/symbols/${encodeURIComponent(state.symbol)}/candles?${query}`);
      if (seq === this.seq) this.chart.addHistory("1s", body.candles.filter((c) => c.t + 1000 <= state.at));
    } catch {
      // the match's own candles still show
    }
  }

  frame(view, received) {
    if (this.view && view.at < this.view.at) return; // never back in time
    this.view = view;
    const positions = {};
    for (const row of view.players || []) positions[row.player] = row.position ? row.position.side : null;
    this.frames.push({ at: view.at, received, phase: view.phase, spectators: view.spectators, positions });
    if (this.frames.length > KEEP_FRAMES) this.frames.shift();
    if (view.candle) this.chart.addOfficial({ interval: "1s", items: [view.candle] });
    this.render();
    if (OVER.has(view.phase)) {
      this.section.dataset.state = "over";
      this.setConn("over", "match over");
      this.socket?.disconnect();
    }
  }

  setConn(state, text) {
    this.conn.dataset.state = state;
    this.conn.textContent = text;
    if (state === "connected" && this.section.dataset.state !== "over") this.section.dataset.state = "watching";
  }

  name(player) {
    return this.grant?.players?.[player] || `player ${String(player).slice(0, 8)}`;
  }

  render() {
    const v = this.view;
    this.summary.textContent = `${v.mode} · ${v.symbol}`;
    this.phase.textContent = v.phase;
    this.phase.dataset.phase = v.phase;
    this.clock.textContent = v.end_at ? clock(v.end_at - v.at) : "–";
    this.count.textContent = `${v.spectators} watching`;
    this.count.dataset.count = String(v.spectators);
    this.price.textContent = price(v.official_price);
    this.section.dataset.at = String(v.at);
    const rows = (v.players || []).map((r) => {
      const pos = r.position;
      const cells = pos
        ? [
            h("td", { class: pos.side, "data-testid": "spectate-side" }, pos.side),
            h("td", { class: "num", "data-testid": "spectate-qty" }, pos.qty),
            h("td", { class: "num", "data-testid": "spectate-entry" }, price(pos.entry ?? pos.entry_price)),
            h("td", { class: "num", "data-testid": "spectate-sl" }, pos.stop_loss ? price(pos.stop_loss) : "none"),
            h("td", { class: "num", "data-testid": "spectate-tp" }, pos.take_profit ? price(pos.take_profit) : "none"),
            h("td", { class: "num danger-text", "data-testid": "spectate-liq" }, price(pos.liquidation ?? pos.liquidation_price)),
            h("td", { class: `num ${trend(pos.unrealized_pnl)}` }, signed(pos.unrealized_pnl)),
          ]
        : [h("td", { "data-testid": "spectate-side", colspan: "7", class: "status" }, "no position")];
      return h(
        "tr",
        { "data-testid": "spectate-row", "data-player": r.player, "data-side": pos ? pos.side : "" },
        h("td", {}, String(r.rank)),
        h("td", {}, this.name(r.player)),
        h("td", { class: "num", "data-testid": "spectate-equity" }, money(r.equity)),
        h("td", { class: "num", "data-testid": "spectate-balance" }, money(r.balance)),
        ...cells,
        h("td", {}, r.status),
      );
    });
    this.board.replaceChildren(
      table(
        "spectate-board",
        "The board as it was: each player's equity, balance and position",
        ["#", "Player", "Equity", "Balance", "Side", "Size", "Entry", "Stop-loss", "Take-profit", "Liquidation", "Unreal. PnL", "Status"],
        rows,
        true,
      ),
    );
  }

  async copyLink() {
    try {
      await navigator.clipboard.writeText(this.link.value);
      this.copy.textContent = "Copied";
    } catch {
      this.link.select();
    }
  }

  /** Stop watching (the screen is left); `unlink`: the address stops pointing here. */
  close(unlink = true) {
    this.seq += 1;
    if (this.socket) {
      this.socket.removeAllListeners();
      this.socket.disconnect();
      this.socket = null;
    }
    if (unlink) clearLink(WATCH_PREFIX);
    this.copy.textContent = "Copy link";
  }

  // Read-only test hooks (window.tradearena.screens.spectate).
  hooks() {
    return {
      grant: () => (this.grant ? { match_id: this.grant.match_id, delay_ms: this.grant.delay_ms, players: { ...this.grant.players } } : null),
      view: () => (this.view ? JSON.parse(JSON.stringify(this.view)) : null),
      frames: () => this.frames.map((f) => ({ ...f, positions: { ...f.positions } })),
      chart: this.chart.hooks(),
    };
  }
}
