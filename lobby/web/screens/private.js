// Private matches by invite code: open one (mode, format, size, invitees), show its
// code and a copyable link, join by code or by the link `#/private/<code>`, and the
// waiting room (who joined; the host starts or cancels, the others leave; an invitee who
// did not join watches it once started).
//   const priv = initPrivate({ call, openapi, user, show });
// The app forwards the /lobby socket's `private_match` events to priv.update(room) and
// every notification to priv.notification(note) (a `private_invite` shows a banner in
// the lobby). Once the host starts, formation sends `match_found` and `match_ready`
// like a queued match, and the app plays it.
import { onLink } from "./links.js";
import { WATCH_PREFIX } from "./spectate.js";

export const PRIVATE_SCREEN = "screen-private";
const LINK = "#/private/";
const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const STATES = {
  open: "Waiting for players",
  starting: "Starting: the match server is on its way…",
  started: "Started",
  cancelled: "Cancelled by the host",
  expired: "Expired: the code is no longer valid",
};

function fullLink(code) {
  return `${window.location.origin}${window.location.pathname}${LINK}${code}`;
}

export function initPrivate({ call, openapi, user, show }) {
  let room = null;

  function setError(err) {
    const el = $("private-error");
    el.textContent = err ? (err.code ? `${err.code}: ${err.message}` : String(err.message || err)) : "";
    if (err) el.dataset.code = err.code || "error";
    else delete el.dataset.code;
  }

  function render() {
    const box = $("private-room");
    box.hidden = !room;
    if (!room) return;
    const me = user()?.id;
    const host = room.host.user_id === me;
    const member = room.joined.some((m) => m.user_id === me);
    $("private-code").textContent = room.code;
    $("private-link").value = fullLink(room.code);
    const status = $("private-state");
    status.dataset.state = room.state;
    const seats = `${room.joined.length} of ${room.size} seats taken (at least ${room.min} to start)`;
    const when = room.state === "open" ? ` · expires ${new Date(room.expires_at).toLocaleTimeString()}` : "";
    status.textContent = `${STATES[room.state] || room.state} · ${room.mode} / ${room.format} · ${seats}${when}`;
    $("private-joined").replaceChildren(
      ...room.joined.map((m) => {
        const li = document.createElement("li");
        li.dataset.testid = "private-member";
        li.dataset.username = m.username;
        li.textContent = m.username + (m.user_id === room.host.user_id ? " (host)" : "") + (m.user_id === me ? " (you)" : "");
        return li;
      }),
    );
    const open = room.state === "open";
    const start = $("private-start");
    start.hidden = !host;
    start.disabled = !open || room.joined.length < room.min;
    const join = $("private-room-join");
    join.hidden = member || !open;
    const leave = $("private-leave");
    leave.hidden = !member || !open;
    leave.textContent = host ? "Cancel the match" : "Leave";
    // Invited but not playing: once it has started, watch it (delayed, read-only).
    const invited = host || room.invited.some((m) => m.user_id === me);
    const watch = $("private-watch");
    watch.hidden = member || !invited || room.state !== "started";
    watch.href = `${WATCH_PREFIX}${encodeURIComponent(room.match_id)}`;
  }

  function open() {
    show(PRIVATE_SCREEN);
    render();
  }

  async function act(method, path) {
    setError(null);
    try {
      room = await call(method, `/private-matches/${encodeURIComponent(room.code)}${path}`);
    } catch (err) {
      setError(err);
    }
    render();
  }

  async function join(code) {
    setError(null);
    const banner = $("private-invite");
    if (banner.dataset.code === code) banner.hidden = true;
    open();
    try {
      room = await call("POST", `/private-matches/${encodeURIComponent(code)}/join`);
    } catch (err) {
      setError(err);
      try {
        room = await call("GET", `/private-matches/${encodeURIComponent(code)}`);
      } catch {
        room = null;
      }
    }
    render();
  }

  async function view(code) {
    if (!user()) return; // signing in runs the links again
    setError(null);
    open();
    try {
      room = await call("GET", `/private-matches/${encodeURIComponent(code)}`);
    } catch (err) {
      room = null;
      setError(err);
    }
    render();
  }

  async function create(event) {
    event.preventDefault();
    setError(null);
    const names = $("private-invitees").value.split(/[\s,;]+/).filter(Boolean);
    const body = { mode: $("private-mode").value, format: $("private-format").value, invite: names };
    const size = $("private-size").value.trim();
    if (size) body.size = Number(size);
    try {
      room = await call("POST", "/private-matches", body);
      window.history.replaceState(null, "", LINK + room.code);
    } catch (err) {
      setError(err);
    }
    render();
  }

  async function loadOptions() {
    const props = (await openapi()).components?.schemas?.PrivateCreateRequest?.properties || {};
    $("private-mode").replaceChildren(...(props.mode?.enum || ["duel"]).map((m) => new Option(m, m)));
    $("private-format").replaceChildren(...(props.format?.enum || ["blitz"]).map((f) => new Option(f, f)));
  }

  $("nav-private").addEventListener("click", open);
  $("private-create-form").addEventListener("submit", create);
  $("private-join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    join($("private-code-input").value.trim());
  });
  $("private-copy").addEventListener("click", async () => {
    const input = $("private-link");
    try {
      await navigator.clipboard.writeText(input.value);
      $("private-copy").textContent = "Copied";
    } catch {
      input.select(); // no clipboard permission: selected for the player to copy
    }
  });
  $("private-start").addEventListener("click", () => act("POST", "/start"));
  $("private-leave").addEventListener("click", () => act("POST", "/leave"));
  $("private-room-join").addEventListener("click", () => join(room.code));
  $("private-invite-join").addEventListener("click", () => join($("private-invite").dataset.code));
  onLink(LINK, view);
  loadOptions().catch(setError);

  return {
    /** A `private_match` event: the room changed. */
    update(next) {
      if (!room || next.code === room.code) {
        room = next;
        render();
      }
    },
    notification(note) {
      if (note?.kind !== "private_invite") return;
      const p = note.payload || {};
      const banner = $("private-invite");
      banner.dataset.code = p.code;
      $("private-invite-text").textContent = `${p.host} invites you to a private ${p.mode} / ${p.format} (code ${p.code}).`;
      const a = $("private-invite-link");
      a.href = p.link;
      a.textContent = p.link;
      banner.hidden = false;
    },
    hooks: { room: () => room },
  };
}
