// The player's screens and the navigation between them and the lobby:
//   const screens = initScreens({ call, user, show, play });
// `show(id)` is the app's screen switch (it calls screens.shown(id) back), `play()`
// goes to the lobby, `user()` is the signed-in player. The app forwards the /lobby
// socket's `notification` events to screens.notification(note).
import { HistoryScreen } from "./history.js";
import { LeaderboardScreen } from "./leaderboard.js";
import { onLink } from "./links.js";
import { LiveList } from "./live.js";
import { NotificationsScreen } from "./notifications.js";
import { ProfileScreen } from "./profile.js";
import { LINK_PREFIX as REPLAY_LINK, ReplayScreen } from "./replay.js";
import { SpectateScreen, WATCH_PREFIX } from "./spectate.js";

export const SCREEN_IDS = ["screen-leaderboards", "screen-history", "screen-notifications", "screen-profile", "screen-replay", "screen-private", "screen-spectate"];
// Screens the navigation is shown on (not while signing in or playing a match).
const WITH_NAV = new Set(["screen-lobby", "screen-results", ...SCREEN_IDS]);

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

export function initScreens({ call, user, show, play }) {
  const nav = $("nav");
  const badge = $("nav-unread");
  let signedIn = false;

  function go(id) {
    show(id);
    document.getElementById(id)?.querySelector("h2")?.focus({ preventScroll: true });
  }

  const openMatch = (matchId) => {
    go("screen-history");
    matches.openMatch(matchId);
  };
  const openProfile = (username) => {
    go("screen-profile");
    profile.open(username);
  };
  const openReplay = (matchId) => {
    go("screen-replay");
    history.replaceState(null, "", REPLAY_LINK + encodeURIComponent(matchId));
    replay.open(matchId);
  };
  onLink(REPLAY_LINK, openReplay);
  const replay = new ReplayScreen($("screen-replay"), { call, user, openProfile });
  const matches = new HistoryScreen($("screen-history"), { call, user, openProfile, openReplay });
  const leaderboard = new LeaderboardScreen($("screen-leaderboards"), { call, user, openProfile });
  const profile = new ProfileScreen($("screen-profile"), { call, user, openMatch });
  const notifications = new NotificationsScreen($("screen-notifications"), {
    call,
    openMatch,
    onUnread(count) {
      badge.hidden = count === 0;
      badge.textContent = String(count);
      badge.dataset.unread = String(count);
      $("nav-notifications").setAttribute("aria-label", count ? `Notifications, ${count} unread` : "Notifications");
    },
  });

  // Live matches on the lobby screen; Watch and `#/watch/<match id>` open the spectator screen.
  const spectate = new SpectateScreen($("screen-spectate"), { call, back: () => play() });
  const watchMatch = (matchId) => {
    if (!signedIn) return;
    go("screen-spectate");
    spectate.open(matchId);
  };
  const live = new LiveList($("live-matches"), {
    call,
    watch: (matchId) => {
      const link = `${WATCH_PREFIX}${encodeURIComponent(matchId)}`;
      if (window.location.hash === link) watchMatch(matchId);
      else window.location.hash = link; // the link opens it (links.js)
    },
  });
  onLink(WATCH_PREFIX, watchMatch);

  const targets = {
    "nav-play": () => play(),
    "nav-leaderboards": () => {
      go("screen-leaderboards");
      leaderboard.open();
    },
    "nav-history": () => {
      go("screen-history");
      matches.open();
    },
    "nav-notifications": () => {
      go("screen-notifications");
      notifications.open();
    },
    "nav-profile": () => openProfile(null),
  };
  for (const [testid, action] of Object.entries(targets)) $(testid).addEventListener("click", action);
  for (const id of SCREEN_IDS) document.getElementById(id)?.querySelector("h2")?.setAttribute("tabindex", "-1");

  return {
    signedIn() {
      signedIn = true;
      notifications.reset();
      notifications.refreshCount();
    },
    signedOut() {
      signedIn = false;
      live.stop();
      spectate.close();
      notifications.reset();
      nav.hidden = true;
    },
    /** The app switched to screen `id`: the navigation follows. */
    shown(id) {
      if (id !== "screen-replay") replay.pause();
      if (signedIn && id !== "screen-replay" && location.hash.startsWith(REPLAY_LINK)) history.replaceState(null, "", location.pathname + location.search);
      nav.hidden = !signedIn || !WITH_NAV.has(id);
      if (id === "screen-lobby" && signedIn) live.start();
      else live.stop();
      if (id !== "screen-spectate") spectate.close();
      const current = { "screen-lobby": "nav-play", "screen-leaderboards": "nav-leaderboards", "screen-history": "nav-history", "screen-notifications": "nav-notifications", "screen-profile": "nav-profile", "screen-private": "nav-private" }[id];
      for (const button of nav.querySelectorAll("button")) {
        if (button.dataset.testid === current) button.setAttribute("aria-current", "page");
        else button.removeAttribute("aria-current");
      }
    },
    notification(note) {
      if (note && Number.isInteger(note.id)) notifications.receive(note);
    },
    // Read-only test hooks: what each screen last loaded from the API.
    hooks: {
      leaderboard: () => leaderboard.page,
      history: () => matches.items,
      detail: () => matches.detail,
      notifications: () => ({ items: notifications.items, unread: notifications.unread }),
      profile: () => profile.profile,
      replay: () => replay.hooks(),
      live: () => live.matches,
      spectate: spectate.hooks(),
    },
  };
}
