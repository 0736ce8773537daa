// TradeArena web client: sign in, queue, play a match on its match server, see results.
// Plain ES module; the stock socket.io-client bundle provides the global `io`.
import * as api from "./api.js";
import { TradeChart } from "./chart.js";
import { Latest } from "./screens/latest.js";
import { runLinks } from "./screens/links.js";
import { initScreens, SCREEN_IDS } from "./screens/nav.js";
import { PartyPanel } from "./screens/party.js";
import { initPrivate } from "./screens/private.js";

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const SCREENS = ["screen-auth", "screen-lobby", "screen-match", "screen-results", ...SCREEN_IDS];
const MATCH_KEY = "tradearena.match";
const RESYNC_MS = 5000;
const INTERVAL_KEY = "tradearena.chart.interval";
// How far back the chart's history reaches when a match screen opens (candles API).
const HISTORY_MS = { "1m": 24 * 3600 * 1000, "1s": 15 * 60 * 1000 };
const HISTORY_PAGES = 3;
// A match's phases in the only order they happen (tradearena.contracts.phases.GamePhase).
const PHASES = ["waiting", "live", "settling", "finished", "cancelled"];

// The queue's status comes both as answers to GET /queue and as `queue_status` pushes.
const queueLatest = new Latest();
const state = {
  user: null,
  lobby: null, // the /lobby socket
  catalogue: { modes: {}, formats: [] },
  queuedSince: null,
  ready: null, // the match_ready payload being played
  match: null, // the /match socket
  view: null, // last full state from `sync`
  clockOffset: 0, // server ms - local ms
  syncedAt: 0, // server ms of the last sync
  players: new Map(), // player id -> label
  ended: null,
  lastFillAt: 0,
};

// ---------- helpers ----------

function show(screen) {
  for (const id of SCREENS) $(id).hidden = id !== screen;
  screens.shown(screen);
}

function serverNow() {
  return Date.now() + state.clockOffset;
}

function money(value) {
  if (value === null || value === undefined) return "–";
  const n = Number(value);
  return Number.isFinite(n) ? n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }) : String(value);
}

function price(value) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(2);
}

function countdown(untilMs) {
  const left = Math.max(0, untilMs - serverNow());
  const s = Math.ceil(left / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function label(player) {
  if (state.user && player === state.user.id) return `${state.user.username} (you)`;
  return state.players.get(player) || `player ${String(player).slice(0, 8)}`;
}

function clientOrderId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function setError(id, err) {
  const el = $(id);
  if (!err) {
    el.textContent = "";
    delete el.dataset.code;
    return;
  }
  el.dataset.code = err.code || "error";
  el.textContent = err.code ? `${err.code}: ${err.message}` : String(err.message || err);
}

// ---------- sign in ----------

function signedIn(user) {
  state.user = user;
  const who = $("whoami");
  who.textContent = user.username;
  who.hidden = false;
  $("logout").hidden = false;
  screens.signedIn();
  connectLobby();
  const saved = JSON.parse(sessionStorage.getItem(MATCH_KEY) || "null");
  if (saved && saved.token_expires_at * 1000 > Date.now()) {
    playMatch(saved);
  } else if (!runLinks()) {
    enterLobby(); // no shared link (#/watch/<id>, #/replay/<id>, #/private/<code>) to open
  }
}

async function onAuth(event) {
  event.preventDefault();
  const form = event.target;
  const how = event.submitter?.value || "login";
  setError("auth-error", null);
  const username = form.username.value.trim();
  const password = form.password.value;
  try {
    const pair = how === "register" ? await api.register(username, password) : await api.login(username, password);
    form.password.value = "";
    signedIn(pair.user);
  } catch (err) {
    setError("auth-error", err);
  }
}

async function onLogout() {
  leaveMatch();
  state.lobby?.disconnect();
  state.lobby = null;
  sessionStorage.removeItem(MATCH_KEY);
  await api.logout();
  state.user = null;
  screens.signedOut();
  $("whoami").hidden = true;
  $("logout").hidden = true;
  show("screen-auth");
}

// ---------- lobby ----------

async function loadCatalogue() {
  const doc = await api.openapi();
  const schemas = doc.components?.schemas || {};
  const body = schemas.QueueJoinRequest?.properties || {};
  const modes = body.mode?.enum || ["duel", "standard"];
  const formats = body.format?.enum || ["auto"];
  const modeSelect = $("queue-mode");
  modeSelect.replaceChildren(...modes.map((m) => new Option(m, m)));
  const formatSelect = $("queue-format");
  formatSelect.replaceChildren(...formats.map((f) => new Option(f === "auto" ? "auto (from the market's mood)" : f, f)));
  formatSelect.value = "auto";
}

function enterLobby() {
  show("screen-lobby");
  $("lobby-match").hidden = true;
  setError("lobby-error", null);
  refreshQueue();
}

function connectLobby() {
  if (state.lobby) return;
  const token = api.session.load()?.access_token;
  const socket = io("/lobby", { auth: { token }, transports: ["websocket", "polling"] });
  state.lobby = socket;
  const status = $("lobby-connection");
  socket.on("connect", () => {
    status.textContent = "lobby: connected";
    status.dataset.connected = "true";
    refreshQueue();
    party.refresh();
  });
  socket.on("disconnect", () => {
    status.textContent = "lobby: reconnecting…";
    status.dataset.connected = "false";
  });
  socket.on("connect_error", async (err) => {
    status.dataset.connected = "false";
    status.textContent = `lobby: ${err.data?.code || err.message}`;
    if (err.data?.code === "token_expired") {
      try {
        const renewed = await api.refresh();
        socket.auth = { token: renewed.access_token };
        socket.connect();
      } catch (e) {
        setError("lobby-error", e);
      }
    }
  });
  socket.on("queue_status", (s) => {
    queueLatest.pushed();
    renderQueue(s);
  });
  socket.on("notification", onNotification);
  socket.on("party_status", (s) => party.pushed(s));
  socket.on("private_match", privateMatches.update);
}

async function refreshQueue() {
  const ticket = queueLatest.ticket();
  try {
    const status = await api.call("GET", "/queue");
    if (queueLatest.answered(ticket)) renderQueue(status);
  } catch (err) {
    setError("lobby-error", err);
  }
}

function renderQueue(status) {
  const tickets = status?.tickets || [];
  const text = $("queue-status");
  $("queue-leave").disabled = tickets.length === 0;
  $("queue-join").disabled = tickets.length > 0;
  if (tickets.length === 0) {
    state.queuedSince = null;
    text.textContent = "Not queued.";
    text.dataset.queued = "false";
    return;
  }
  const t = tickets[0];
  state.queuedSince = Date.now() - t.waited_ms;
  text.dataset.queued = "true";
  text.dataset.mode = t.mode;
  text.dataset.format = t.format;
  text.textContent = `Queued for ${t.mode} / ${t.format}: waiting ${Math.round(t.waited_ms / 1000)} s`;
}

async function onQueue(event) {
  event.preventDefault();
  setError("lobby-error", null);
  const body = { mode: $("queue-mode").value, format: $("queue-format").value, queue: $("queue-kind").value };
  try {
    await api.call("POST", "/queue", body);
    await refreshQueue();
  } catch (err) {
    setError("lobby-error", err);
  }
}

async function onLeaveQueue() {
  try {
    await api.call("DELETE", "/queue");
    await refreshQueue();
  } catch (err) {
    setError("lobby-error", err);
  }
}

function onNotification(note) {
  screens.notification(note);
  party.notification(note);
  privateMatches.notification(note);
  const p = note.payload || {};
  const box = $("lobby-match");
  if (note.kind === "match_found") {
    box.hidden = false;
    box.dataset.state = "found";
    box.textContent = `Match found (${p.mode} / ${p.format}, ${p.players?.length || "?"} players): starting its server…`;
    $("queue-status").textContent = "Match found.";
  } else if (note.kind === "match_ready") {
    box.hidden = false;
    box.dataset.state = "ready";
    box.textContent = `Match ready at ${p.address}:${p.port}: connecting…`;
    if (!state.match || state.ready?.match_id !== p.match_id) playMatch(p);
  } else if (note.kind === "match_failed") {
    box.hidden = false;
    box.dataset.state = "failed";
    box.textContent = `The match could not start (${p.reason})${p.requeued ? "; you are back in the queue" : ""}.`;
    refreshQueue();
  } else if (note.kind === "match_result") {
    onStoredResult(p);
  }
}

// ---------- the player's screens (leaderboards, history, notifications, profile) ----------

const screens = initScreens({ call: api.call, user: () => state.user, show, play: enterLobby });
const party = new PartyPanel($("party-panel"), { call: api.call, user: () => state.user });
const privateMatches = initPrivate({ call: api.call, openapi: api.openapi, user: () => state.user, show });

// ---------- the match ----------

const chart = new TradeChart($("match-chart"), { onStops: moveStop, onStatus: chartStatus });

function chartStatus(text, state) {
  const el = $("chart-status");
  el.textContent = text;
  if (state) el.dataset.state = state;
  else delete el.dataset.state;
}

function chooseInterval(interval) {
  chart.setInterval(interval);
  localStorage.setItem(INTERVAL_KEY, chart.interval());
  for (const button of document.querySelectorAll("[data-interval]")) {
    button.setAttribute("aria-pressed", String(button.dataset.interval === chart.interval()));
  }
}

// A stop-loss or take-profit dragged on the chart: `set_stops` replaces both levels,
// so the other one is sent as the position has it.
async function moveStop(kind, value) {
  const pos = state.view?.position;
  if (!pos) return { ok: false, code: "no_position", message: "no open position" };
  const action = { type: "set_stops", stop_loss: pos.stop_loss ?? null, take_profit: pos.take_profit ?? null };
  action[kind] = value;
  return act(action);
}

// Closed candles from the lobby's candles API: the chart's history before (and
// during) the match. The newest seconds come from `sync` and the ticks.
async function loadHistory() {
  const ready = state.ready;
  if (!ready?.symbol) return;
  const path = `/symbols/${encodeURIComponent(ready.symbol)}/candles`;
  try {
    for (const interval of Object.keys(HISTORY_MS)) {
      let from = Math.floor(serverNow() - HISTORY_MS[interval]);
      for (let page = 0; page < HISTORY_PAGES && from !== null && from !== undefined; page++) {
        const query = new URLSearchParams({ interval, from: String(from), limit: "1000" });
        const body = await api.call("GET", `${path}?${query}`);
        if (state.ready !== ready) return;
        chart.addHistory(interval, body.candles);
        from = body.next_from;
      }
    }
  } catch (err) {
    chartStatus(`History unavailable (${err.code || err.message}).`, "error");
  }
}

function playMatch(ready) {
  leaveMatch();
  state.ready = ready;
  state.view = null;
  state.ended = null;
  state.players = new Map();
  sessionStorage.setItem(MATCH_KEY, JSON.stringify(ready));
  chart.reset();
  chartStatus("", null);
  $("fills-list").replaceChildren();
  $("match-id").textContent = ready.match_id;
  setError("match-rejection", null);
  $("match-notice").textContent = "";
  show("screen-match");
  const auth = { token: ready.token };
  // The lobby's trace of this player's journey goes on in the match server (when traced).
  if (ready.traceparent) auth.traceparent = ready.traceparent;
  const socket = io(`${ready.url}/match`, {
    auth,
    transports: ["websocket", "polling"],
    reconnectionDelay: 500,
    reconnectionDelayMax: 3000,
  });
  state.match = socket;
  $("match-back").hidden = true;
  let failures = 0;
  const conn = $("match-connection");
  let ackedSeq = null; // flow control (docs/matchserver.md): ack about every 4th tick
  socket.on("connect", () => {
    ackedSeq = null; // seqs are per server process: start again on every connection
    failures = 0;
    conn.textContent = "connected";
    conn.dataset.state = "connected";
    resync();
    loadHistory();
  });
  socket.on("disconnect", (reason) => {
    conn.dataset.state = "disconnected";
    conn.textContent = socket.active ? "reconnecting…" : `disconnected (${reason})`;
  });
  socket.on("connect_error", (err) => {
    const code = err.data?.code;
    conn.dataset.state = "refused";
    conn.textContent = code ? `refused: ${code}` : "reconnecting…";
    failures += 1;
    if (code || failures >= 10) {
      setError("match-rejection", code ? { code, message: err.data?.message || err.message }
        : { code: "unreachable", message: "the match server does not answer" });
      socket.disconnect();
      $("match-back").hidden = false;
    }
  });
  socket.on("replaced", (data) => {
    conn.dataset.state = "replaced";
    conn.textContent = "replaced";
    $("match-notice").textContent = data?.message || "connected from elsewhere";
  });
  socket.on("tick", (data) => {
    onTick(data);
    if (Number.isInteger(data.seq) && (ackedSeq === null || data.seq - ackedSeq >= 4)) {
      ackedSeq = data.seq;
      socket.emit("tick_ack", { seq: ackedSeq });
    }
  });
  socket.on("fill", onFill);
  socket.on("rejected", (data) => setError("match-rejection", data));
  socket.on("effect", onEffect);
  socket.on("peek", (data) => {
    chart.peek(data.at, data.price);
    const el = $("match-peek-price");
    el.hidden = false;
    el.textContent = `Peek: live ${price(data.price)}`;
  });
  socket.on("phase", onPhase);
  socket.on("feed", (data) => renderFrozen(data.frozen));
  socket.on("player", (data) => {
    if (data.player !== state.user?.id) $("match-notice").textContent = `${label(data.player)} ${data.status}`;
  });
  socket.on("charges", (data) => {
    if (state.view) state.view.charges = data.charges;
    renderCharges();
  });
  socket.on("leaderboard", (data) => renderBoard(data.top));
  socket.on("match_end", onMatchEnd);
}

function leaveMatch() {
  if (state.match) {
    state.match.removeAllListeners();
    state.match.disconnect();
    state.match = null;
  }
}

async function resync() {
  const socket = state.match;
  if (!socket || !socket.connected) return;
  const sentAt = Date.now();
  let reply;
  try {
    reply = await socket.timeout(10000).emitWithAck("sync", {});
  } catch {
    return;
  }
  if (!reply?.ok) {
    setError("match-rejection", reply || { code: "sync_failed", message: "no answer" });
    return;
  }
  const s = reply.state;
  state.clockOffset = s.now - (sentAt + Date.now()) / 2;
  state.syncedAt = s.now;
  // A phase event may overtake this answer: phases only move forward, so keep the later.
  if (state.view && PHASES.indexOf(state.view.phase) > PHASES.indexOf(s.phase)) {
    s.phase = state.view.phase;
    s.end_at = state.view.end_at ?? s.end_at;
  }
  state.view = s;
  if (s.candles) chart.addOfficial(s.candles);
  if (s.official_price && !chart.hasCandles()) chart.add(s.now, s.official_price);
  renderAll();
  if ((s.phase === "finished" || s.phase === "cancelled") && !state.ended) {
    // Came back after the end (match_end was missed): the final board is in the state.
    onMatchEnd({ match_id: s.match_id, phase: s.phase, standings: s.leaderboard || [] });
  }
}

async function act(action) {
  const socket = state.match;
  setError("match-rejection", null);
  if (!socket?.connected) {
    setError("match-rejection", { code: "not_connected", message: "not connected to the match server" });
    return null;
  }
  const payload = { ...action, client_order_id: clientOrderId() };
  let ack;
  try {
    ack = await socket.timeout(10000).emitWithAck("action", payload);
  } catch {
    setError("match-rejection", { code: "timeout", message: "no answer from the match server" });
    return null;
  }
  if (!ack.ok) {
    setError("match-rejection", ack);
    $("match-notice").textContent = "";
  } else if (ack.code === "delayed") $("match-notice").textContent = `Order delayed until ${new Date(ack.execute_at).toLocaleTimeString()}`;
  else $("match-notice").textContent = `${action.type}: ${ack.message}`;
  if (ack.cooldown_until && state.view) state.view.cooldown_until = ack.cooldown_until;
  await resync();
  return ack;
}

function decimal(input) {
  const v = input.value.trim();
  return v === "" ? null : v;
}

function openOrder(side) {
  const action = {
    type: "open",
    side,
    margin: decimal($("order-margin")) || "0",
    leverage: Number.parseInt($("order-leverage").value, 10),
  };
  const sl = decimal($("order-sl"));
  const tp = decimal($("order-tp"));
  if (sl) action.stop_loss = sl;
  if (tp) action.take_profit = tp;
  return act(action);
}

function onTick(data) {
  chart.add(data.at, data.price);
  if (state.view) {
    state.view.official_price = data.price;
    const pos = state.view.position;
    if (pos) {
      const diff = Number(data.price) - Number(pos.entry);
      pos.unrealized_pnl = String((pos.side === "long" ? diff : -diff) * Number(pos.qty));
    }
  }
  $("match-price").textContent = price(data.price);
  renderPosition();
}

function onFill(data) {
  state.lastFillAt = data.at;
  const li = document.createElement("li");
  li.dataset.testid = "fill-item";
  li.dataset.reason = data.reason;
  li.dataset.side = data.side;
  const pnl = Number(data.realized_pnl || 0);
  li.textContent = `${data.reason} ${data.side} ${data.qty} @ ${price(data.price)} · fee ${money(data.fee)}` +
    (data.realized_pnl && pnl !== 0 ? ` · PnL ${money(data.realized_pnl)}` : "") + (data.loss_capped ? " (loss capped)" : "");
  $("fills-list").prepend(li);
  if (state.view) {
    state.view.position = data.position;
    state.view.balance = data.balance;
  }
  renderAll();
  resync();
}

function onEffect(data) {
  if (!state.view) return;
  const effects = state.view.effects || (state.view.effects = {});
  const mine = data.player === state.user?.id;
  if (mine) {
    const key = { trade_delay: "trade_delay_until", shield: "shield_until", peek: "peek_until" }[data.effect];
    if (key) effects[key] = data.active ? data.until : null;
    if (data.effect === "peek" && !data.active) $("match-peek-price").hidden = true;
  }
  if (data.active && !mine) {
    $("match-notice").textContent = `${label(data.player)}: ${data.effect.replace("_", " ")} until ${new Date(data.until).toLocaleTimeString()}`;
  }
  renderEffects();
}

function onPhase(data) {
  if (state.view) {
    state.view.phase = data.phase;
    if (data.end_at) state.view.end_at = data.end_at;
  }
  renderAll();
}

function onMatchEnd(data) {
  state.ended = data;
  sessionStorage.removeItem(MATCH_KEY);
  leaveMatch();
  renderResults();
  show("screen-results");
}

async function onStoredResult(payload) {
  if (!state.ended || payload.match_id !== state.ended.match_id) return;
  if (payload.rating) {
    const d = payload.rating.delta;
    $("results-rating").textContent = `Rating ${payload.rating.ordinal.toFixed(2)} (${d >= 0 ? "+" : ""}${Number(d).toFixed(2)})`;
    $("results-rating").dataset.stored = "true";
  }
  try {
    const detail = await api.call("GET", `/matches/${encodeURIComponent(payload.match_id)}`);
    for (const p of detail.players) state.players.set(p.user_id, p.username);
    $("results-rating").dataset.kind = detail.kind;
    if (detail.kind !== "ranked") $("results-rating").textContent = `Unrated (${detail.kind} match)`;
    renderResults();
    $("results-table").dataset.stored = "true";
  } catch (err) {
    $("results-summary").textContent += ` (details unavailable: ${err.code})`;
  }
}

// ---------- rendering ----------

function renderAll() {
  const v = state.view;
  if (!v) return;
  $("match-phase").textContent = v.phase;
  $("match-phase").dataset.phase = v.phase;
  $("match-price").textContent = price(v.official_price);
  $("match-balance").textContent = money(v.balance);
  $("match-equity").textContent = money(v.equity);
  renderFrozen(v.frozen);
  renderPosition();
  renderCharges();
  renderEffects();
  if (v.leaderboard) renderBoard(v.leaderboard);
  tick();
}

function renderFrozen(frozen) {
  if (state.view) state.view.frozen = frozen;
  $("match-feed-frozen").hidden = !frozen;
}

function renderPosition() {
  const pos = state.view?.position;
  $("pos-none").hidden = Boolean(pos);
  $("position").hidden = !pos;
  chart.setPosition(pos);
  if (!pos) return;
  $("pos-side").textContent = pos.side;
  $("pos-side").className = pos.side;
  $("pos-qty").textContent = pos.qty;
  $("pos-entry").textContent = price(pos.entry);
  $("pos-margin").textContent = `${money(pos.margin)} × ${pos.leverage}`;
  $("pos-liquidation").textContent = price(pos.liquidation);
  $("pos-sl").textContent = pos.stop_loss ? price(pos.stop_loss) : "none";
  $("pos-tp").textContent = pos.take_profit ? price(pos.take_profit) : "none";
  const pnl = Number(pos.unrealized_pnl || 0);
  const el = $("pos-pnl");
  el.textContent = money(pos.unrealized_pnl);
  el.className = pnl > 0 ? "up" : pnl < 0 ? "down" : "";
}

function renderCharges() {
  const v = state.view;
  if (!v) return;
  const box = $("ability-charges");
  box.dataset.charges = String(v.charges);
  box.replaceChildren(
    ...Array.from({ length: v.max_charges || 3 }, (_, i) => {
      const pip = document.createElement("span");
      pip.className = i < v.charges ? "pip on" : "pip";
      return pip;
    }),
  );
  box.title = `${v.charges} of ${v.max_charges} charges`;
}

function renderEffects() {
  const effects = state.view?.effects || {};
  const items = [
    ["effect-delay", "Trade delay on you", effects.trade_delay_until],
    ["effect-shield", "Shield", effects.shield_until],
    ["effect-peek", "Peek", effects.peek_until],
  ];
  for (const [id, name, until] of items) {
    const el = $(id);
    const active = Boolean(until && until > serverNow());
    el.dataset.active = String(active);
    el.textContent = active ? `${name}: active, ${countdown(until)} left` : `${name}: off`;
  }
}

function renderBoard(top) {
  const rows = (top || []).map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.testid = "leaderboard-row";
    tr.dataset.player = r.player;
    if (r.player === state.user?.id) tr.className = "me";
    for (const text of [r.rank, label(r.player), money(r.equity), r.status]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  });
  $("leaderboard").tBodies[0].replaceChildren(...rows);
  const select = $("ability-target");
  const current = select.value;
  const options = [new Option("the leader", "leader")];
  for (const r of top || []) {
    if (r.player !== state.user?.id && r.status !== "abandoned") options.push(new Option(label(r.player), r.player));
  }
  const same = options.length === select.options.length && options.every((o, i) => o.value === select.options[i].value && o.text === select.options[i].text);
  if (!same) {
    select.replaceChildren(...options);
    select.value = options.some((o) => o.value === current) ? current : "leader";
  }
}

function renderResults() {
  const end = state.ended;
  if (!end) return;
  const standings = end.standings || [];
  $("results-summary").textContent = `Match ${end.match_id} ${end.phase}` +
    (end.reason ? ` (${end.reason})` : "") + (end.final_price ? ` · final price ${price(end.final_price)}` : "");
  const rows = standings.map((s) => {
    const tr = document.createElement("tr");
    tr.dataset.testid = "results-row";
    tr.dataset.player = s.player;
    tr.dataset.rank = String(s.rank);
    if (s.player === state.user?.id) tr.className = "me";
    for (const text of [s.rank, label(s.player), money(s.equity), money(s.realized_pnl), s.trades ?? "–", s.status]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  });
  $("results-table").tBodies[0].replaceChildren(...rows);
  const mine = standings.find((s) => s.player === state.user?.id);
  const you = $("results-you");
  you.textContent = mine ? `You finished #${mine.rank} of ${standings.length} with ${money(mine.equity)} USDT.` : "";
  you.dataset.rank = mine ? String(mine.rank) : "";
}

// A 4 Hz heartbeat for countdowns and meters; state comes from the server's events.
function tick() {
  const v = state.view;
  if (!v || !state.match) return;
  const now = serverNow();
  $("match-clock").textContent = v.end_at ? countdown(v.end_at) : "–";
  const live = v.phase === "live";
  const cooldown = $("order-cooldown");
  const cooling = v.cooldown_until && v.cooldown_until > now;
  cooldown.dataset.ready = String(!cooling);
  cooldown.textContent = cooling ? `Cooldown: ${((v.cooldown_until - now) / 1000).toFixed(1)} s` : "Orders ready.";
  // The meter refills 2 points/s during live play (docs/engine.md); the server has the last word.
  const level = live ? Math.min(100, Math.floor(v.peek_meter + ((now - state.syncedAt) / 1000) * 2)) : v.peek_meter || 0;
  $("peek-meter").textContent = String(level);
  $("peek-meter-fill").style.width = `${level}%`;
  $("peek-button").disabled = !live || level < 100;
  for (const id of ["order-long", "order-short", "order-close", "order-close-half", "order-set-stops", "ability-delay", "ability-shield"]) {
    $(id).disabled = !live;
  }
  renderEffects();
}

// ---------- wiring ----------

function wire() {
  window.addEventListener("hashchange", () => state.user && !state.match && runLinks());
  $("auth-form").addEventListener("submit", onAuth);
  $("logout").addEventListener("click", onLogout);
  $("queue-form").addEventListener("submit", onQueue);
  $("queue-leave").addEventListener("click", onLeaveQueue);
  $("order-long").addEventListener("click", () => openOrder("long"));
  $("order-short").addEventListener("click", () => openOrder("short"));
  $("order-close").addEventListener("click", () => act({ type: "close" }));
  $("order-close-half").addEventListener("click", () => act({ type: "close", fraction: "0.5" }));
  $("order-set-stops").addEventListener("click", () =>
    act({ type: "set_stops", stop_loss: decimal($("order-sl")), take_profit: decimal($("order-tp")) }),
  );
  $("ability-delay").addEventListener("click", () =>
    act({ type: "ability", ability: "trade_delay", target: $("ability-target").value }),
  );
  $("ability-shield").addEventListener("click", () => act({ type: "ability", ability: "shield" }));
  $("peek-button").addEventListener("click", () => act({ type: "peek" }));
  $("results-back").addEventListener("click", enterLobby);
  $("match-back").addEventListener("click", () => {
    leaveMatch();
    sessionStorage.removeItem(MATCH_KEY);
    enterLobby();
  });
  setInterval(tick, 250);
  setInterval(() => {
    if (state.match?.connected && state.view?.phase !== "finished") resync();
    if (state.queuedSince && $("queue-status").dataset.queued === "true") {
      const t = $("queue-status");
      t.textContent = `Queued for ${t.dataset.mode} / ${t.dataset.format}: waiting ${Math.round((Date.now() - state.queuedSince) / 1000)} s`;
    }
  }, RESYNC_MS);
  for (const button of document.querySelectorAll("[data-interval]")) {
    button.addEventListener("click", () => chooseInterval(button.dataset.interval));
  }
  chooseInterval(localStorage.getItem(INTERVAL_KEY) || "1s");
}

async function start() {
  wire();
  try {
    await loadCatalogue();
  } catch (err) {
    setError("lobby-error", err);
  }
  const saved = api.session.load();
  if (saved) {
    try {
      const me = await api.call("GET", "/me");
      signedIn({ id: me.id, username: me.username, role: me.role });
      return;
    } catch {
      api.session.clear();
    }
  }
  show("screen-auth");
}

// For tests and the curious: the live sockets (read-only use).
window.tradearena = {
  get lobby() {
    return state.lobby;
  },
  get match() {
    return state.match;
  },
  chart: chart.hooks(),
  screens: screens.hooks,
  private: privateMatches.hooks,
};

start();
