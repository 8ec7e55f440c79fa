// One application: its state, the actions on it, the path its last deploy took through the
// deploy state machine, and its history.

import { ApiError, path, request } from "./api.js";
import { commitCell } from "./applications.js";
import { badge, cell, h, replaceContent, route, say, shortCommit, timeAgo } from "./dom.js";
import { agentName, repositoryUrl, state } from "./store.js";

const HISTORY_PAGE = 50;
const RELOAD_DELAY_MS = 250;
// A deploy's states and the completion of its history event are not announced on the feed (only
// the application's status writes are): while its execution runs, it is read again, less and
// less often.
const FOLLOW_UP_MS = [1000, 2000, 4000, 8000, 15000];
const MAX_FOLLOW_UPS = 64; // about a quarter of an hour: longer than a deploy may wait

function offers(paths, action) {
  const pattern = new RegExp(`^/api/v1/applications/\\{[^}]+\\}/${action}$`);
  return [...paths].some((p) => pattern.test(p));
}

function field(label, ...value) {
  return [h("dt", {}, label), h("dd", {}, ...value)];
}

function historyRow(event) {
  return h(
    "tr",
    { "data-id": event.id },
    cell("When", {}, timeAgo(event.created_at)),
    cell("Type", {}, event.type.replaceAll("_", " ")),
    // `source` is being renamed `trigger`; read either.
    cell("Trigger", {}, String(event.trigger ?? event.source ?? "").replaceAll("_", " ")),
    cell("Status", {}, badge("status", event.status)),
    cell(
      "Commit",
      {},
      event.commit ? h("code", { title: event.commit }, shortCommit(event.commit)) : "—",
    ),
    cell(
      "Error",
      { class: "error-cell" },
      event.error
        ? h("span", { class: "error-text" }, event.error)
        : h("span", { class: "muted" }, event.message ? event.message.split("\n")[0] : "—"),
    ),
  );
}

export function applicationView(main, id, offeredPaths) {
  let history = [];
  let nextBefore = null;
  let execution = null; // {request_id, status, path} of the newest deploy
  let executionError = null;
  let offered = new Set();
  let reloadTimer = null;
  let followUps = 0;
  let gone = false;
  let disposed = false;

  const heading = h("h1", {});
  const badges = h("p", { class: "badges" });
  const facts = h("dl", { class: "facts" });
  const actions = h("div", { class: "actions", role: "group", "aria-label": "Actions" });
  const deployPath = h("div", { class: "deploy-path" });
  const historyBody = h("tbody");
  const older = h(
    "button",
    { type: "button", class: "secondary", hidden: true, onclick: () => loadOlder() },
    "Older",
  );

  async function act(button, label, call) {
    button.disabled = true;
    say(`${label}…`);
    try {
      const answer = await call();
      const reference = answer?.request_id ?? answer?.job_id;
      say(`${label}: accepted${reference ? ` (${reference})` : ""}.`);
    } catch (error) {
      say(`${label} failed: ${error.message}`, { error: true });
    } finally {
      button.disabled = false;
      renderActions();
    }
  }

  function button(label, call, { disabled = false, confirmText = null, key } = {}) {
    const element = h(
      "button",
      {
        type: "button",
        "data-key": key,
        disabled,
        onclick: () => {
          if (confirmText && !window.confirm(confirmText)) return;
          act(element, label, call);
        },
      },
      label,
    );
    return element;
  }

  function renderActions() {
    const application = state.applications.get(id);
    if (!application) {
      replaceContent(actions);
      return;
    }
    const running = application.sync_status === "syncing";
    const pinned = Boolean(application.pinned_commit);
    replaceContent(
      actions,
      button(
        "Sync repository",
        () => request(path`repositories/${application.repository_id}/sync`, { method: "POST" }),
        {
          key: "sync",
        },
      ),
      button("Redeploy", () => request(path`applications/${id}/deploy`, { method: "POST" }), {
        key: "redeploy",
        disabled: !application.commit,
        confirmText: `Redeploy ${application.name} at ${shortCommit(application.commit)}?`,
      }),
      button("Cancel deploy", () => request(path`applications/${id}/cancel`, { method: "POST" }), {
        key: "cancel",
        disabled: !running,
        confirmText: `Cancel the deploy of ${application.name} in flight?`,
      }),
      offers(offered, "rollback")
        ? button(
            "Roll back",
            () => request(path`applications/${id}/rollback`, { method: "POST", body: {} }),
            {
              key: "rollback",
              confirmText: `Roll ${application.name} back to its last good commit and pin it?`,
            },
          )
        : null,
      offers(offered, "unpin") && pinned
        ? button(
            "Unpin",
            () => request(path`applications/${id}/unpin`, { method: "POST", body: {} }),
            {
              key: "unpin",
            },
          )
        : null,
    );
  }

  function renderFacts(application) {
    document.title = `${application.name} · Ferry`;
    heading.textContent = application.name;
    replaceContent(
      badges,
      badge("sync_status", application.sync_status),
      " ",
      badge("health_status", application.health_status),
      application.pinned_commit
        ? h(
            "span",
            { class: "badge badge-pinned" },
            `pinned at ${shortCommit(application.pinned_commit)}`,
          )
        : null,
    );
    replaceContent(
      facts,
      field("Agent", h("a", { href: route("agents") }, agentName(application.agent_id))),
      field(
        "Repository",
        h(
          "a",
          { href: route("repositories", application.repository_id) },
          repositoryUrl(application.repository_id),
        ),
      ),
      field("Branch", application.branch),
      field("Compose file", application.path),
      field("Compose project", application.project_name),
      field("Commit", commitCell(application)),
      field("Last synced", timeAgo(application.last_synced_at)),
      field(
        "Last error",
        application.last_sync_error
          ? h(
              "span",
              { class: "error-text", "data-field": "last_sync_error" },
              application.last_sync_error,
            )
          : h("span", { class: "muted" }, "none"),
      ),
    );
  }

  function renderDeployPath() {
    if (executionError) {
      replaceContent(deployPath, h("p", { class: "muted" }, executionError));
    } else if (!execution) {
      replaceContent(deployPath, h("p", { class: "muted" }, "No deploy yet."));
    } else {
      replaceContent(
        deployPath,
        h(
          "p",
          {},
          "Step Functions execution ",
          h("code", {}, execution.request_id),
          " ",
          badge("execution", execution.status.toLowerCase()),
        ),
        h(
          "ol",
          { class: "states" },
          execution.path.map((name) => h("li", {}, name)),
        ),
      );
    }
  }

  function renderHistory() {
    replaceContent(
      historyBody,
      history.length
        ? history.map(historyRow)
        : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No history yet.")),
    );
    older.hidden = nextBefore === null;
  }

  async function loadDeployPath() {
    const newest = history.find((event) => event.type === "deployment" && event.request_id);
    if (!newest) {
      execution = null;
      executionError = null;
      return;
    }
    try {
      execution = await request(path`applications/${id}/deploys/${newest.request_id}`);
      executionError = null;
    } catch (error) {
      execution = null;
      executionError = `The deploy's path could not be read: ${error.message}`;
    }
  }

  async function reload() {
    if (disposed) return;
    try {
      const page = await request(`${path`applications/${id}/events`}?limit=${HISTORY_PAGE}`);
      history = page.items;
      nextBefore = page.next_before;
      await loadDeployPath();
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return;
      say(`History could not be read: ${error.message}`, { error: true });
    }
    if (disposed) return;
    renderHistory();
    renderDeployPath();
    const unfinished =
      execution?.status === "RUNNING" || history.some((event) => event.status === "running");
    if (unfinished && followUps < MAX_FOLLOW_UPS) {
      reloadTimer = setTimeout(reload, FOLLOW_UP_MS[Math.min(followUps, FOLLOW_UP_MS.length - 1)]);
      followUps += 1;
    }
  }

  async function loadOlder() {
    if (nextBefore === null) return;
    try {
      const page = await request(
        `${path`applications/${id}/events`}?limit=${HISTORY_PAGE}&before=${nextBefore}`,
      );
      history = [...history, ...page.items];
      nextBefore = page.next_before;
      renderHistory();
    } catch (error) {
      say(`Older history could not be read: ${error.message}`, { error: true });
    }
  }

  function scheduleReload() {
    clearTimeout(reloadTimer);
    followUps = 0;
    reloadTimer = setTimeout(reload, RELOAD_DELAY_MS);
  }

  function dispose() {
    disposed = true;
    clearTimeout(reloadTimer);
  }

  function update(change) {
    const application = state.applications.get(id);
    if (!application) {
      if (!state.loaded) {
        heading.textContent = "Loading…";
        return;
      }
      gone = true;
      document.title = "Not found · Ferry";
      replaceContent(
        main,
        h("h1", {}, "Application not found"),
        h("p", {}, "It may have been deleted. ", h("a", { href: "#/" }, "All applications")),
      );
      return;
    }
    if (gone) return;
    renderFacts(application);
    renderActions();
    if (!change || change.collection === "all" || change.id === id) scheduleReload();
  }

  replaceContent(
    main,
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Applications"), " / "),
    heading,
    badges,
    facts,
    h("h2", {}, "Actions"),
    actions,
    h("h2", {}, "Last deploy"),
    deployPath,
    h("h2", {}, "History"),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "history responsive" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["When", "Type", "Trigger", "Status", "Commit", "Error or message"].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        historyBody,
      ),
    ),
    older,
  );
  offeredPaths.then((paths) => {
    offered = paths;
    renderActions();
  });
  update(null);
  return { update, dispose };
}
