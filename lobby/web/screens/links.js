// Shareable links: `#/<prefix>/<value>` opens a screen (`#/watch/<match id>`, ...).
//   onLink("#/watch/", (matchId) => ...)   a handler per prefix
//   runLinks()                              the page's current link, once signed in;
//                                           later hash changes run by themselves
const handlers = new Map();
let listening = false;

export function onLink(prefix, handler) {
  handlers.set(prefix, handler);
}

/** Runs the handler of the current `location.hash` (if any); true when one ran. */
export function runLinks() {
  if (!listening) {
    listening = true;
    window.addEventListener("hashchange", () => runLinks());
  }
  const hash = window.location.hash;
  for (const [prefix, handler] of handlers) {
    if (!hash.startsWith(prefix)) continue;
    const value = decodeURIComponent(hash.slice(prefix.length));
    if (value) {
      handler(value);
      return true;
    }
  }
  return false;
}

/** The link of a screen, as the address bar shows it. */
export function linkTo(prefix, value) {
  return `${window.location.origin}${window.location.pathname}${prefix}${encodeURIComponent(value)}`;
}

/** Leaves a link's screen: the address no longer opens it again. */
export function clearLink(prefix) {
  if (window.location.hash.startsWith(prefix)) {
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}
