// Notifications: the stored ones (newest first, pages) and the live `notification`
// events of the /lobby socket, read or unread; mark one or all read. The unread
// count is also shown on the navigation (`onUnread`).
import { h, showError, signed, when } from "./common.js";

const PAGE = 30;

/** One line saying what happened. */
export function describe(note) {
  const p = note.payload || {};
  switch (note.kind) {
    case "match_result": {
      if (p.phase === "cancelled") return `Match ${p.match_id} was cancelled${p.reason ? ` (${p.reason})` : ""}.`;
      const place = p.rank ? `#${p.rank} of ${p.players}` : p.status;
      const pnl = p.pnl !== null && p.pnl !== undefined ? `, net PnL ${signed(p.pnl)} USDT` : "";
      const rating = p.rating ? `, rating ${p.rating.ordinal.toFixed(2)} (${signed(p.rating.delta)})` : "";
      return `Match ${p.match_id} (${p.mode} / ${p.format}) finished: ${place}${pnl}${rating}.`;
    }
    case "match_found":
      return `Match found (${p.mode} / ${p.format}).`;
    case "match_ready":
      return `Match ${p.match_id} is ready.`;
    case "party_invite":
      return `${p.leader} invites you to their party (${(p.members || []).join(", ")}).`;
    case "match_failed":
      return `A match could not start (${p.reason})${p.requeued ? "; you were put back in the queue" : ""}.`;
    case "private_invite":
      return `${p.host} invites you to a private ${p.mode} / ${p.format}: code ${p.code}.`;
    default:
      return `${note.kind.replaceAll("_", " ")}${p.match_id ? ` (match ${p.match_id})` : ""}.`;
  }
}

export class NotificationsScreen {
  constructor(section, { call, openMatch, onUnread }) {
    this.section = section;
    this.call = call;
    this.openMatch = openMatch;
    this.onUnread = onUnread;
    this.items = []; // newest first, by id
    this.unread = 0;
    this.next = null;
    this.loaded = false;
    this.build();
  }

  build() {
    this.count = h("p", { class: "status", "data-testid": "notes-unread", "aria-live": "polite" });
    this.markAll = h("button", { type: "button", class: "secondary", "data-testid": "notes-mark-all", onclick: () => this.mark({ all: true }) }, "Mark all read");
    this.list = h("ul", { class: "notes", "data-testid": "notes-list", "aria-labelledby": "notes-title" });
    this.more = h("button", { type: "button", class: "secondary", "data-testid": "notes-more", onclick: () => this.load(false) }, "Older");
    this.error = h("p", { class: "error", role: "alert", "data-testid": "notes-error" });
    this.section.replaceChildren(
      h("h2", { id: "notes-title" }, "Notifications"),
      h("div", { class: "row spread" }, this.count, this.markAll),
      this.list,
      h("div", { class: "row" }, this.more),
      this.error,
    );
  }

  /** The unread count only (after sign-in), for the navigation's badge. */
  async refreshCount() {
    try {
      const page = await this.call("GET", "/notifications?unread_only=true&limit=1");
      this.setUnread(page.unread);
    } catch {
      // the badge waits for the next event
    }
  }

  reset() {
    this.items = [];
    this.loaded = false;
    this.setUnread(0);
  }

  async open() {
    await this.load(true);
  }

  async load(first) {
    showError(this.error, null);
    this.list.dataset.loaded = "false";
    const query = `?limit=${PAGE}` + (!first && this.next ? `&before=${this.next}` : "");
    let page;
    try {
      page = await this.call("GET", `/notifications${query}`);
    } catch (err) {
      showError(this.error, err);
      return;
    }
    const known = new Set(page.items.map((n) => n.id));
    // Live events that arrived while loading stay; the stored copy wins.
    const kept = first ? this.items.filter((n) => !known.has(n.id) && n.id > (page.items[0]?.id ?? 0)) : this.items;
    this.items = [...kept, ...page.items.filter((n) => first || !this.items.some((m) => m.id === n.id))];
    this.next = page.next_before;
    this.loaded = true;
    this.setUnread(page.unread + kept.filter((n) => !n.read_at).length);
    this.render();
  }

  /** A live `notification` event from the lobby socket. */
  receive(note) {
    if (this.items.some((n) => n.id === note.id)) return;
    this.items.unshift(note);
    this.setUnread(this.unread + (note.read_at ? 0 : 1));
    if (this.loaded) this.render();
  }

  async mark(body) {
    showError(this.error, null);
    try {
      await this.call("POST", "/notifications/read", body);
    } catch (err) {
      showError(this.error, err);
      return;
    }
    const now = new Date().toISOString();
    for (const n of this.items) if (!n.read_at && (body.all || body.ids.includes(n.id))) n.read_at = now;
    if (body.all) this.setUnread(0);
    else this.setUnread(Math.max(0, this.unread - body.ids.length));
    this.render();
  }

  setUnread(count) {
    this.unread = count;
    this.count.textContent = count === 1 ? "1 unread." : `${count} unread.`;
    this.count.dataset.unread = String(count);
    this.markAll.disabled = count === 0;
    this.onUnread(count);
  }

  render() {
    const items = this.items.map((n) => {
      const unread = !n.read_at;
      const matchId = n.payload?.match_id;
      return h(
        "li",
        { class: unread ? "unread" : null, "data-testid": "note", "data-id": n.id, "data-kind": n.kind, "data-read": String(!unread) },
        h("p", { class: "note-text" }, unread ? h("span", { class: "sr-only" }, "Unread: ") : null, describe(n)),
        h(
          "div",
          { class: "row note-meta" },
          h("time", { datetime: n.created_at || "" }, when(n.created_at)),
          matchId && n.kind === "match_result"
            ? h("button", { type: "button", class: "link", "data-testid": "note-open", onclick: () => this.openMatch(matchId) }, "See the match")
            : null,
          unread ? h("button", { type: "button", class: "link", "data-testid": "note-mark", onclick: () => this.mark({ ids: [n.id] }) }, "Mark read") : null,
        ),
      );
    });
    this.list.replaceChildren(...(items.length ? items : [h("li", { class: "status", "data-testid": "notes-empty" }, "No notifications yet.")]));
    this.more.hidden = !this.next;
    this.list.dataset.loaded = "true";
    this.list.dataset.count = String(this.items.length);
  }
}
