// Small DOM and formatting helpers the player's screens share.

/** An element: h("td", { class: "me", "data-rank": 1, onclick: fn }, "text", child). */
export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith("svg:");
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.setAttribute("class", value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function money(value) {
  if (value === null || value === undefined) return "–";
  const n = Number(value);
  return Number.isFinite(n) ? n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }) : String(value);
}

/** A signed amount: "+12.50", "-3.00". */
export function signed(value, digits = 2) {
  if (value === null || value === undefined) return "–";
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  const text = Math.abs(n).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return `${n < 0 ? "-" : "+"}${text}`;
}

export function trend(value) {
  const n = Number(value);
  return n > 0 ? "up" : n < 0 ? "down" : "";
}

export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString("en-GB", { dateStyle: "short", timeStyle: "medium", timeZone: "UTC" }) + " UTC";
}

/** A table that scrolls sideways on a narrow screen rather than the page; a `wide`
 * one keeps a minimum width (many columns) instead of squeezing its cells. */
export function table(testid, caption, headers, rows, wide = false) {
  return h(
    "div",
    { class: "scroll", tabindex: "0", role: "region", "aria-label": caption },
    h(
      "table",
      { "data-testid": testid, class: wide ? "wide-table" : null },
      h("caption", { class: "sr-only" }, caption),
      h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, rows),
    ),
  );
}

export function showError(el, err) {
  if (!err) {
    el.textContent = "";
    delete el.dataset.code;
    return;
  }
  el.dataset.code = err.code || "error";
  el.textContent = err.code ? `${err.code}: ${err.message}` : String(err.message || err);
}

/** Tabs that move with the arrow keys (WAI-ARIA tabs pattern). */
export function arrowKeys(tablist) {
  tablist.addEventListener("keydown", (event) => {
    const tabs = [...tablist.querySelectorAll('[role="tab"]')];
    const at = tabs.indexOf(document.activeElement);
    if (at < 0) return;
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    event.preventDefault();
    const next = tabs[(at + step + tabs.length) % tabs.length];
    next.focus();
    next.click();
  });
}
