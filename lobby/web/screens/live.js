// "Live matches" on the lobby screen: every match anyone may watch (GET /matches/live),
// refreshed while the lobby is shown; Watch opens the spectator screen (#/watch/<id>).
import { h, showError, table } from "./common.js";

const REFRESH_MS = 3000;
const LIMIT = 20;

export class LiveList {
  constructor(container, { call, watch }) {
    this.container = container;
    this.call = call;
    this.watch = watch;
    this.matches = [];
    this.timer = null;
    this.seq = 0;
    this.rows = h("div", { "data-testid": "live-list", "data-loaded": "false" });
    this.error = h("p", { class: "error", role: "alert", "data-testid": "live-error" });
    container.replaceChildren(h("h3", { id: "live-title" }, "Live matches"), this.rows, this.error);
  }

  start() {
    if (this.timer) return;
    this.refresh();
    this.timer = setInterval(() => {
      if (!document.hidden) this.refresh();
    }, REFRESH_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.seq += 1; // an answer on its way is dropped
  }

  async refresh() {
    const seq = ++this.seq;
    let page;
    try {
      page = await this.call("GET", `/matches/live?limit=${LIMIT}`);
    } catch (err) {
      if (seq === this.seq) showError(this.error, err);
      return;
    }
    if (seq !== this.seq) return;
    showError(this.error, null);
    this.matches = page.matches;
    this.render();
  }

  render() {
    const rows = this.matches.map((m) => {
      const full = m.spectators >= m.spectator_cap;
      const names = m.players.map((p) => p.username).join(" vs ");
      return h(
        "tr",
        {
          "data-testid": "live-row",
          "data-match-id": m.match_id,
          "data-spectators": m.spectators,
          "data-players-connected": m.players_connected,
        },
        h("td", {}, `${m.mode} / ${m.format}`),
        h("td", { class: "names" }, names),
        h("td", { class: "num", "data-testid": "live-connected" }, `${m.players_connected}/${m.players.length}`),
        h("td", { class: "num", "data-testid": "live-spectators" }, String(m.spectators)),
        h(
          "td",
          {},
          h(
            "button",
            {
              type: "button",
              class: "secondary",
              "data-testid": "live-watch",
              "aria-label": `Watch ${names} (${m.mode}), ${Math.round(m.spectate_delay_ms / 1000)} s behind`,
              disabled: full,
              title: full ? "no room for more spectators" : null,
              onclick: () => this.watch(m.match_id),
            },
            "Watch",
          ),
        ),
      );
    });
    this.rows.replaceChildren(
      rows.length
        ? table("live-table", "Live matches you may watch", ["Mode", "Players", "Online", "Watching", ""], rows)
        : h("p", { class: "status", "data-testid": "live-empty" }, "No live match right now."),
    );
    this.rows.dataset.loaded = "true";
    this.rows.dataset.count = String(this.matches.length);
  }
}
