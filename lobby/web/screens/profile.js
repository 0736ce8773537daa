// A player's profile: username, rating (OpenSkill ordinal), matches, and the rating
// after each rated match as a small inline SVG chart and a table (the table is what
// a screen reader reads; the chart is its picture).
import { h, showError, signed, table, when } from "./common.js";

const W = 600;
const H = 180;
const PAD = { left: 44, right: 10, top: 12, bottom: 22 };

/** The rating history as an SVG line (role=img with a text alternative). */
export function ratingChart(points) {
  const values = points.map((p) => p.rating);
  const starts = points.length ? [points[0].rating - points[0].delta] : [];
  let lo = Math.min(...values, ...starts);
  let hi = Math.max(...values, ...starts);
  if (hi - lo < 1) {
    lo -= 0.5;
    hi += 0.5;
  }
  const series = [...starts, ...values];
  const x = (i) => PAD.left + (series.length === 1 ? 0 : (i * (W - PAD.left - PAD.right)) / (series.length - 1));
  const y = (v) => PAD.top + ((hi - v) * (H - PAD.top - PAD.bottom)) / (hi - lo);
  const path = series.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const first = values[0];
  const last = values[values.length - 1];
  const label = `Rating after each of the last ${points.length} rated matches: from ${first.toFixed(2)} to ${last.toFixed(2)}, between ${Math.min(...values).toFixed(2)} and ${Math.max(...values).toFixed(2)}.`;
  return h(
    "svg:svg",
    { viewBox: `0 0 ${W} ${H}`, class: "rating-chart", role: "img", "aria-label": label, "data-testid": "profile-chart", "data-points": points.length },
    h("svg:title", {}, label),
    [hi, (hi + lo) / 2, lo].map((v) =>
      h(
        "svg:g",
        {},
        h("svg:line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid" }),
        h("svg:text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, v.toFixed(1)),
      ),
    ),
    h("svg:path", { d: path, class: "line" }),
    values.map((v, i) =>
      h("svg:circle", { cx: x(i + starts.length), cy: y(v), r: 3, class: points[i].delta >= 0 ? "dot up" : "dot down" }, h("svg:title", {}, `${points[i].match_id}: ${v.toFixed(2)} (${signed(points[i].delta)})`)),
    ),
  );
}

export class ProfileScreen {
  constructor(section, { call, user, openMatch }) {
    this.section = section;
    this.call = call;
    this.user = user;
    this.openMatch = openMatch;
    this.profile = null;
    this.seq = 0;
    this.body = h("div", { "data-testid": "profile" });
    this.error = h("p", { class: "error", role: "alert", "data-testid": "profile-error" });
    this.section.replaceChildren(this.body, this.error);
  }

  async open(username) {
    const name = username || this.user()?.username;
    showError(this.error, null);
    this.body.dataset.loaded = "false";
    const seq = ++this.seq;
    try {
      const profile = await this.call("GET", `/players/${encodeURIComponent(name)}`);
      if (seq !== this.seq) return;
      this.profile = profile;
    } catch (err) {
      if (seq === this.seq) showError(this.error, err);
      return;
    }
    this.render();
  }

  render() {
    const p = this.profile;
    const mine = p.user_id === this.user()?.id;
    const points = p.rating_history;
    const rows = [...points].reverse().map((pt) =>
      h(
        "tr",
        { "data-testid": "profile-point", "data-match-id": pt.match_id, "data-rating": pt.rating },
        h("td", {}, when(pt.ended_at)),
        h("td", {}, mine ? h("button", { type: "button", class: "link", onclick: () => this.openMatch(pt.match_id) }, pt.match_id) : pt.match_id),
        h("td", {}, pt.rank ? `#${pt.rank} of ${pt.players}` : "–"),
        h("td", { class: `num ${pt.delta >= 0 ? "up" : "down"}` }, signed(pt.delta)),
        h("td", { class: "num" }, pt.rating.toFixed(2)),
      ),
    );
    this.body.replaceChildren(
      h("h2", { id: "profile-title", "data-testid": "profile-username" }, p.username, mine ? " (you)" : ""),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Rating"),
        h("dd", { "data-testid": "profile-rating", "data-rating": p.rating ?? "" }, p.rating === null ? "not rated yet" : p.rating.toFixed(2)),
        h("dt", {}, "Skill (mu ± sigma)"),
        h("dd", {}, p.mu === null ? "–" : `${p.mu.toFixed(2)} ± ${p.sigma.toFixed(2)}`),
        h("dt", {}, "Matches"),
        h("dd", { "data-testid": "profile-matches" }, String(p.matches)),
        h("dt", {}, "Rated matches"),
        h("dd", {}, String(p.rated_matches)),
        h("dt", {}, "Playing since"),
        h("dd", {}, when(p.created_at)),
      ),
      h("h3", {}, "Rating history"),
      ...(points.length
        ? [
            ratingChart(points),
            table("profile-history", "Rating after each rated match, newest first", ["Ended", "Match", "Result", "Change", "Rating"], rows),
          ]
        : [h("p", { class: "status", "data-testid": "profile-no-history" }, "No rated match yet.")]),
    );
    this.body.dataset.loaded = "true";
    this.body.dataset.username = p.username;
  }
}
