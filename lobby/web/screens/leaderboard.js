// Leaderboards: all-time (rating), season and today (net PnL), "around me" (the
// page centred on the player, who is highlighted), pages of PAGE entries.
import { arrowKeys, h, showError, signed, table, trend } from "./common.js";

const PERIODS = [
  ["all", "All-time"],
  ["season", "Season"],
  ["daily", "Today"],
];
const PAGE = 20;

export class LeaderboardScreen {
  constructor(section, { call, user, openProfile }) {
    this.section = section;
    this.call = call;
    this.user = user;
    this.openProfile = openProfile;
    this.period = "all";
    this.around = true;
    this.offset = 0;
    this.page = null;
    this.seq = 0; // only the latest request renders
    this.build();
  }

  build() {
    this.tabs = h(
      "div",
      { class: "tabs", role: "tablist", "aria-label": "Leaderboard period" },
      PERIODS.map(([period, name]) =>
        h(
          "button",
          {
            type: "button",
            role: "tab",
            id: `board-tab-${period}`,
            "aria-controls": "board-panel",
            "data-testid": `board-tab-${period}`,
            onclick: () => this.select(period),
          },
          name,
        ),
      ),
    );
    arrowKeys(this.tabs);
    this.aroundButton = h(
      "button",
      { type: "button", class: "secondary", "aria-pressed": "true", "data-testid": "board-around", onclick: () => this.toggleAround() },
      "Around me",
    );
    this.caption = h("p", { class: "status", "data-testid": "board-window", "aria-live": "polite" });
    this.you = h("p", { class: "status strong", "data-testid": "board-you" });
    this.holder = h("div");
    this.prev = h("button", { type: "button", class: "secondary", "data-testid": "board-prev", onclick: () => this.turn(-1) }, "Previous");
    this.next = h("button", { type: "button", class: "secondary", "data-testid": "board-next", onclick: () => this.turn(1) }, "Next");
    this.error = h("p", { class: "error", role: "alert", "data-testid": "board-error" });
    this.panel = h(
      "div",
      { role: "tabpanel", id: "board-panel", "data-testid": "board-panel" },
      this.caption,
      this.you,
      this.holder,
      h("div", { class: "row" }, this.prev, this.next),
    );
    this.section.replaceChildren(
      h("h2", { id: "leaderboards-title" }, "Leaderboards"),
      h("div", { class: "row spread" }, this.tabs, this.aroundButton),
      this.panel,
      this.error,
    );
  }

  select(period) {
    this.period = period;
    this.offset = 0;
    this.load();
  }

  toggleAround() {
    this.around = !this.around;
    this.offset = 0;
    this.load();
  }

  turn(step) {
    if (!this.page) return;
    this.around = false;
    this.offset = Math.max(0, this.page.offset + step * PAGE);
    this.load();
  }

  async open() {
    await this.load();
  }

  async load() {
    for (const tab of this.tabs.children) {
      const on = tab.id === `board-tab-${this.period}`;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
    }
    this.panel.setAttribute("aria-labelledby", `board-tab-${this.period}`);
    this.aroundButton.setAttribute("aria-pressed", String(this.around));
    this.panel.dataset.loaded = "false";
    showError(this.error, null);
    const seq = ++this.seq;
    const query = this.around ? `?around=me&limit=${PAGE}` : `?limit=${PAGE}&offset=${this.offset}`;
    try {
      const page = await this.call("GET", `/leaderboards/${this.period}${query}`);
      if (seq !== this.seq) return;
      this.page = page;
    } catch (err) {
      if (seq === this.seq) showError(this.error, err);
      return;
    }
    this.render();
  }

  render() {
    const page = this.page;
    const rating = page.period === "all";
    const me = this.user()?.id;
    if (rating) this.caption.textContent = "Skill rating (OpenSkill ordinal: mu − 3 sigma), all matches.";
    else if (page.period === "season") this.caption.textContent = `Season ${page.season}: net PnL from ${page.window_start.slice(0, 10)} until ${page.window_end.slice(0, 10)} (UTC).`;
    else this.caption.textContent = `Today (${page.window_start.slice(0, 10)} UTC): net PnL.`;
    if (this.around) {
      this.you.textContent = page.me ? `You are #${page.me.rank}.` : "You are not on this board yet: play a match.";
    } else this.you.textContent = "";
    const headers = rating ? ["#", "Player", "Rating", "Matches"] : ["#", "Player", "Net PnL (USDT)", "Wins", "Matches"];
    const rows = page.items.map((e) => {
      const mine = e.user_id === me;
      const cells = rating
        ? [e.rating.toFixed(2), String(e.matches)]
        : [h("span", { class: trend(e.pnl) }, signed(e.pnl)), String(e.wins), String(e.matches)];
      return h(
        "tr",
        {
          class: mine ? "me" : null,
          "aria-current": mine ? "true" : null,
          "data-testid": "board-row",
          "data-user-id": e.user_id,
          "data-rank": e.rank,
        },
        h("td", {}, String(e.rank)),
        h(
          "td",
          {},
          h("button", { type: "button", class: "link", "data-testid": "board-player", onclick: () => this.openProfile(e.username) }, e.username),
          mine ? " (you)" : "",
        ),
        cells.map((c) => h("td", { class: "num" }, c)),
      );
    });
    const name = PERIODS.find(([p]) => p === page.period)[1];
    this.holder.replaceChildren(
      rows.length ? table("board-table", `${name} leaderboard`, headers, rows) : h("p", { class: "status", "data-testid": "board-empty" }, "Nobody on this board yet."),
    );
    this.prev.disabled = page.offset === 0;
    this.next.disabled = page.next_offset === null;
    this.panel.dataset.period = page.period;
    this.panel.dataset.around = String(this.around);
    this.panel.dataset.offset = String(page.offset);
    this.panel.dataset.loaded = "true";
  }
}
