// Hash links that open a screen directly (#/replay/<match id>, #/watch/<match id>,
// #/private/<code>): each feature registers its prefix once,
//   onLink("#/replay/", (id) => openReplay(id));
// and the app runs them once signed in and on every hash change: runLinks() is true
// when a link was handled (the rest of the hash, URI-decoded, goes to the handler).
const handlers = [];

export function onLink(prefix, handler) {
  handlers.push([prefix, handler]);
}

export function runLinks(hash = location.hash) {
  for (const [prefix, handler] of handlers) {
    const rest = hash.startsWith(prefix) ? hash.slice(prefix.length) : "";
    if (rest) {
      handler(decodeURIComponent(rest));
      return true;
    }
  }
  return false;
}
