// Match history: the player's matches, newest first (pages by cursor); each opens
// its detail: the players' results, every fill, the final ledger (each account's
// balance) and the ledger's lines.
import { h, money, showError, signed, table, trend, when } from "./common.js";

const PAGE = 20;

function short(id) {
  return String(id).slice(0, 8);
}

export class HistoryScreen {
  constructor(section, { call, user, openProfile, openReplay }) {
    this.section = section;
    this.openReplay = openReplay;
    this.call = call;
    this.user = user;
    this.openProfile = openProfile;
    this.items = [];
    this.cursor = null;
    this.detail = null;
    this.seq = 0;
    this.build();
  }

  build() {
    this.rows = h("div");
    this.more = h("button", { type: "button", class: "secondary", "data-testid": "history-more", onclick: () => this.loadMore() }, "Older matches");
    this.list = h(
      "div",
      { "data-testid": "history-list" },
      h("h2", { id: "history-title" }, "Match history"),
      this.rows,
      h("div", { class: "row" }, this.more),
    );
    this.back = h("button", { type: "button", class: "secondary", "data-testid": "detail-back", onclick: () => this.showList() }, "Back to the history");
    this.body = h("div");
    this.panel = h("div", { "data-testid": "match-detail", hidden: true }, h("div", { class: "row" }, this.back), this.body);
    this.error = h("p", { class: "error", role: "alert", "data-testid": "history-error" });
    this.section.replaceChildren(this.list, this.panel, this.error);
  }

  async open() {
    this.showList();
    this.items = [];
    this.cursor = null;
    await this.loadMore(true);
  }

  showList() {
    this.panel.hidden = true;
    this.list.hidden = false;
    this.detail = null;
  }

  async loadMore(first = false) {
    showError(this.error, null);
    this.list.dataset.loaded = "false";
    const seq = ++this.seq;
    const query = `?limit=${PAGE}` + (!first && this.cursor ? `&cursor=${encodeURIComponent(this.cursor)}` : "");
    let page;
    try {
      page = await this.call("GET", `/matches${query}`);
    } catch (err) {
      if (seq === this.seq) showError(this.error, err);
      return;
    }
    if (seq !== this.seq) return;
    this.items = first ? page.items : [...this.items, ...page.items];
    this.cursor = page.next_cursor;
    this.renderList();
  }

  renderList() {
    const rows = this.items.map((m) =>
      h(
        "tr",
        { "data-testid": "history-row", "data-match-id": m.match_id },
        h("td", {}, when(m.ended_at || m.created_at)),
        h("td", { "data-kind": m.kind }, `${m.mode} / ${m.format}` + (m.kind && m.kind !== "ranked" ? ` · ${m.kind}` : "")),
        h("td", { "data-testid": "history-rank" }, m.rank ? `#${m.rank}` : m.status),
        h("td", { class: "num" }, money(m.equity)),
        h("td", { class: `num ${trend(m.realized_pnl)}` }, signed(m.realized_pnl)),
        h("td", { class: "num" }, String(m.trades)),
        h(
          "td",
          {},
          h(
            "button",
            { type: "button", class: "secondary", "data-testid": "history-open", "aria-label": `Details of match ${m.match_id}`, onclick: () => this.openMatch(m.match_id) },
            "Details",
          ),
        ),
      ),
    );
    this.rows.replaceChildren(
      rows.length
        ? table("history-table", "Your finished matches, newest first", ["Ended", "Mode", "Result", "Equity", "Realized PnL", "Trades", ""], rows, true)
        : h("p", { class: "status", "data-testid": "history-empty" }, "No matches yet: queue for one from Play."),
    );
    this.more.hidden = !this.cursor;
    this.list.dataset.loaded = "true";
    this.list.dataset.count = String(this.items.length);
  }

  async openMatch(matchId) {
    showError(this.error, null);
    this.list.hidden = true;
    this.panel.hidden = false;
    this.panel.dataset.loaded = "false";
    this.panel.dataset.matchId = matchId;
    this.body.replaceChildren(h("p", { class: "status" }, "Loading…"));
    const seq = ++this.seq;
    try {
      const detail = await this.call("GET", `/matches/${encodeURIComponent(matchId)}`);
      if (seq !== this.seq) return;
      this.detail = detail;
    } catch (err) {
      if (seq === this.seq) showError(this.error, err);
      return;
    }
    this.renderDetail();
    this.back.focus();
  }

  renderDetail() {
    const d = this.detail;
    const me = this.user()?.id;
    const names = new Map(d.players.map((p) => [p.user_id, p.username]));
    const owner = (account) => {
      const [who, kind] = account.split(":");
      return who === "house" ? `house ${kind}` : `${names.get(who) || short(who)} ${kind}`;
    };
    const players = d.players.map((p) =>
      h(
        "tr",
        { class: p.user_id === me ? "me" : null, "data-testid": "detail-player", "data-user-id": p.user_id, "data-rank": p.rank ?? "" },
        h("td", {}, p.rank ? String(p.rank) : "–"),
        h("td", {}, h("button", { type: "button", class: "link", onclick: () => this.openProfile(p.username) }, p.username)),
        h("td", { class: "num" }, money(p.equity)),
        h("td", { class: `num ${trend(p.realized_pnl)}` }, signed(p.realized_pnl)),
        h("td", { class: "num" }, money(p.fees)),
        h("td", { class: "num" }, String(p.trades)),
        h("td", { class: "num" }, p.rating_delta === null ? "–" : signed(p.rating_delta)),
        h("td", {}, p.status),
      ),
    );
    const fills = d.fills.map((f) =>
      h(
        "tr",
        { class: f.user_id === me ? "me" : null, "data-testid": "detail-fill", "data-user-id": f.user_id, "data-ref": f.ref },
        h("td", {}, when(f.at)),
        h("td", {}, f.username),
        h("td", {}, f.reason),
        h("td", { class: f.side === "buy" ? "up" : "down" }, f.side),
        h("td", { class: "num" }, f.qty),
        h("td", { class: "num" }, money(f.price)),
        h("td", { class: "num" }, money(f.fee)),
        h("td", { class: `num ${trend(f.realized_pnl)}` }, signed(f.realized_pnl) + (f.loss_capped ? " (capped)" : "")),
      ),
    );
    const balances = d.balances.map((b) =>
      h(
        "tr",
        { class: b.user_id && b.user_id === me ? "me" : null, "data-testid": "detail-balance", "data-account": b.account, "data-balance": b.balance },
        h("td", {}, owner(b.account)),
        h("td", { class: "num" }, money(b.balance)),
      ),
    );
    const lines = d.ledger.map((l) =>
      h(
        "tr",
        { "data-testid": "detail-ledger-line", "data-seq": l.seq },
        h("td", { class: "num" }, String(l.seq)),
        h("td", {}, when(l.at)),
        h("td", {}, l.kind),
        h("td", {}, owner(l.debit)),
        h("td", {}, owner(l.credit)),
        h("td", { class: "num" }, l.amount),
      ),
    );
    this.body.replaceChildren(
      h("h2", { id: "detail-title", "data-testid": "detail-title" }, `Match ${d.match_id}`),
      ["finished", "cancelled"].includes(d.phase) && this.openReplay
        ? h("div", { class: "row" }, h("button", { type: "button", "data-testid": "detail-replay", onclick: () => this.openReplay(d.match_id) }, "Watch replay"))
        : null,
      h(
        "p",
        { class: "status", "data-testid": "detail-summary" },
        `${d.mode} / ${d.format}${d.kind && d.kind !== "ranked" ? ` · ${d.kind}` : ""} · ${d.symbol} · ${d.phase}` + (d.reason ? ` (${d.reason})` : "") +
          (d.final_price ? ` · final price ${money(d.final_price)}` : "") + ` · ended ${when(d.ended_at)}`,
      ),
      h("h3", {}, "Players"),
      table("detail-players", "Players' results", ["Rank", "Player", "Equity", "Realized PnL", "Fees", "Trades", "Rating Δ", "Status"], players, true),
      h("h3", {}, `Fills (${d.fills.length})`),
      fills.length
        ? table("detail-fills", "Every fill of the match, in order", ["Time", "Player", "Reason", "Side", "Qty", "Price", "Fee", "Realized PnL"], fills, true)
        : h("p", { class: "status" }, "No fills."),
      h("h3", {}, "Final ledger"),
      table("detail-balances", "Each account's balance at the end", ["Account", "Balance (USDT)"], balances),
      h(
        "details",
        { "data-testid": "detail-ledger" },
        h("summary", {}, `Ledger lines (${d.ledger.length})`),
        table("detail-ledger-lines", "The double-entry ledger, line by line", ["#", "Time", "Kind", "From", "To", "Amount"], lines, true),
      ),
    );
    this.panel.dataset.loaded = "true";
  }
}
