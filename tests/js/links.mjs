// The web client's hash links (lobby/web/screens/links.js) under Node, with a stand-in
// for the page's `window` and `history`: which handler a link runs, with what value.
// Usage: node links.mjs   (prints "ok", or throws on the first failed assertion)
import assert from "node:assert/strict";

const listeners = {};
const location = { origin: "https://play.test", pathname: "/", search: "?x=1", hash: "" };
globalThis.window = {
  location,
  addEventListener: (name, fn) => {
    (listeners[name] ||= []).push(fn);
  },
};
globalThis.history = {
  replaceState: (_state, _title, url) => {
    const u = new URL(url, `${location.origin}${location.pathname}`);
    location.hash = u.hash;
    location.search = u.search;
  },
};
const { clearLink, linkTo, onLink, runLinks } = await import("../../lobby/web/screens/links.js");

const seen = [];
onLink("#/watch/", (id) => seen.push(["watch", id]));
onLink("#/replay/", (id) => seen.push(["replay", id]));

// No link: nothing runs.
assert.equal(runLinks(), false);
assert.deepEqual(seen, []);

// The page's link runs its handler with the decoded value; an empty value runs nothing.
location.hash = "#/watch/m-1%3Aa";
assert.equal(runLinks(), true);
assert.deepEqual(seen, [["watch", "m-1:a"]]);
location.hash = "#/watch/";
assert.equal(runLinks(), false);

// The module leaves hash changes to the app (which ignores them mid-match).
assert.equal(listeners.hashchange, undefined);
location.hash = "#/replay/m-2";
assert.equal(runLinks(), true);
assert.deepEqual(seen.at(-1), ["replay", "m-2"]);

// A link to share; leaving the screen clears only its own link.
assert.equal(linkTo("#/watch/", "m 3"), "https://play.test/#/watch/m%203");
location.hash = "#/replay/m-2";
clearLink("#/watch/");
assert.equal(location.hash, "#/replay/m-2");
clearLink("#/replay/");
assert.equal(location.hash, "");
assert.equal(location.search, "?x=1");
console.log("ok");
