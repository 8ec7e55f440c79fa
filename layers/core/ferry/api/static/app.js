// The status page: sign-in, the views behind #/… routes, and the feed that keeps them current.

import {
  looksLikeToken,
  offeredPaths,
  onUnauthorized,
  takeTokenFromFragment,
  token,
} from "./api.js";
import { applicationView } from "./application.js";
import { applicationsView } from "./applications.js";
import { h, refreshTimes, replaceContent, say } from "./dom.js";
import { Feed } from "./feed.js";
import { agentsView, repositoriesView, repositoryView } from "./resources.js";
import { applyChange, clear, loadAll, state, subscribe } from "./store.js";

const TIME_REFRESH_MS = 15000;

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const live = document.getElementById("live");
const signOutButton = document.getElementById("sign-out");

let feed = null;
let view = null;
let offered = Promise.resolve(new Set());

function currentRoute() {
  const parts = window.location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  try {
    return parts.map(decodeURIComponent);
  } catch {
    return [];
  }
}

function markNavigation(section) {
  for (const link of nav.querySelectorAll("a[data-section]")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function show() {
  if (!token.get()) {
    signIn();
    return;
  }
  view?.dispose?.();
  const [section = "applications", id] = currentRoute();
  markNavigation(section);
  document.title = "Ferry";
  if (section === "applications" && id) view = applicationView(main, id, offered);
  else if (section === "applications") view = applicationsView(main);
  else if (section === "agents") view = agentsView(main);
  else if (section === "repositories" && id) view = repositoryView(main, id);
  else if (section === "repositories") view = repositoriesView(main);
  else {
    view = null;
    replaceContent(
      main,
      h("h1", {}, "Not found"),
      h("p", {}, h("a", { href: "#/" }, "All applications")),
    );
  }
  if (section === "applications" && !id) document.title = "Applications · Ferry";
  if (section === "agents") document.title = "Agents · Ferry";
  if (section === "repositories" && !id) document.title = "Repositories · Ferry";
}

function setLive(feedState, detail = "") {
  const text = {
    live: "● live",
    reconnecting: "○ reconnecting…",
    stopped: "○ stopped",
    offline: "",
  };
  live.textContent = text[feedState] ?? feedState;
  live.className = `live live-${feedState}`;
  live.title = detail;
  if (feedState === "stopped") say(`The live feed stopped: ${detail}`, { error: true });
}

const RELOAD_RETRY_MS = 5000;
let session = 0; // bumped by every sign-in and sign-out: late answers of an old session are dropped

let loadFailed = false;

function reload() {
  const current = session;
  loadAll()
    .then(() => {
      if (loadFailed) say("");
      loadFailed = false;
    })
    .catch((error) => {
      if (current !== session) return;
      loadFailed = true;
      say(`Could not read the API (${error.message}); trying again.`, { error: true });
      setTimeout(() => current === session && reload(), RELOAD_RETRY_MS);
    });
}

function startSession() {
  stopSession();
  nav.hidden = false;
  signOutButton.hidden = false;
  offered = offeredPaths();
  show();
  feed = new Feed({
    // The feed starts at "now": whatever changed before it connected is read once, here.
    onOpen: (resumed) => {
      if (!resumed || !state.loaded) reload();
    },
    onChange: (change) => {
      applyChange(change).catch((error) =>
        say(`Could not read a change: ${error.message}`, { error: true }),
      );
    },
    onState: setLive,
    onUnauthorized: () => signOut("The API refused this token. Sign in again."),
  }).start();
}

function stopSession() {
  session += 1;
  feed?.stop();
  feed = null;
  view?.dispose?.();
  view = null;
  clear();
}

function signOut(message = "") {
  stopSession();
  token.clear();
  say("");
  signIn(message);
}

function signIn(message = "") {
  nav.hidden = true;
  signOutButton.hidden = true;
  setLive("offline");
  document.title = "Sign in · Ferry";
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "token-help",
  });
  // method=post and the policy's form-action 'none': the token never lands in a URL, even if
  // this handler did not run.
  const form = h(
    "form",
    {
      class: "sign-in",
      method: "post",
      onsubmit: (event) => {
        event.preventDefault();
        const value = input.value.trim();
        if (!looksLikeToken(value)) {
          signIn("That is not an API token (they look like tok_….…).");
          return;
        }
        input.value = "";
        token.set(value);
        startSession();
      },
    },
    h("h1", {}, "Sign in"),
    message ? h("p", { class: "error-text", role: "alert" }, message) : null,
    h("label", { for: "token" }, "API token"),
    input,
    h(
      "p",
      { id: "token-help", class: "muted" },
      "ferry up prints a link that signs you in; ferry admin token create mints a token. ",
      "It is kept in this tab only (sessionStorage) and sent as a Bearer header.",
    ),
    h("button", { type: "submit" }, "Sign in"),
  );
  replaceContent(main, form);
  input.focus();
}

onUnauthorized(() => {
  if (token.get()) signOut("The API refused this token. Sign in again.");
});
subscribe((change) => view?.update(change));

signOutButton.addEventListener("click", () => signOut("Signed out."));
document.getElementById("skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", () => {
  if (takeTokenFromFragment()) {
    startSession();
    return;
  }
  if (!token.get()) return;
  show();
  main.focus();
});
// A page left for another keeps no stream open (and can go to the back/forward cache); coming
// back to it reads everything again.
window.addEventListener("pagehide", () => {
  feed?.stop();
  feed = null;
});
window.addEventListener("pageshow", (event) => {
  if (event.persisted && token.get()) startSession();
});
setInterval(() => refreshTimes(main), TIME_REFRESH_MS);

takeTokenFromFragment();
if (token.get()) startSession();
else signIn();
