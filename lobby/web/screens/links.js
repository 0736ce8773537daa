// Shareable links: `#/<prefix>/<value>` opens a screen (`#/watch/<match id>`,
// `#/replay/<match id>`, `#/private/<code>`).
//   onLink("#/watch/", (matchId) => ...)   a handler per prefix
//   runLinks()                              the page's current link: the app runs it once
//                                           signed in and on hash changes (not mid-match)
const handlers = new Map();

export function onLink(prefix, handler) {
  handlers.set(prefix, handler);
}

/** Runs the handler of the current `location.hash` (if any); true when one ran. */
export function runLinks() {
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
