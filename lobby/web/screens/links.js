// Hash links (`#/private/<code>`, `#/watch/<id>`, `#/replay/<id>`): a screen registers
//   onLink("#/private/", (rest) => ...)
// and the app calls runLinks() once signed in; later hash changes run them too.
// The handler gets the part after the prefix (URI-decoded).
const handlers = [];
let listening = false;

export function onLink(prefix, handler) {
  handlers.push({ prefix, handler });
}

export function runLinks() {
  if (!listening) {
    listening = true;
    window.addEventListener("hashchange", runLinks);
  }
  const hash = window.location.hash;
  for (const { prefix, handler } of handlers) {
    if (hash.startsWith(prefix) && hash.length > prefix.length) {
      handler(decodeURIComponent(hash.slice(prefix.length)));
      return true;
    }
  }
  return false;
}
