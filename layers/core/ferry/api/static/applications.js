// The applications list: every application's state at a glance, filtered by agent and status.

import { badge, cell, h, replaceContent, route, shortCommit, timeAgo } from "./dom.js";
import { agentName, repositoryUrl, state } from "./store.js";

const SYNC_STATUSES = ["unknown", "syncing", "synced", "out_of_sync"];
const HEALTH_STATUSES = ["healthy", "unhealthy", "unknown"];

// Kept while the tab lives, so coming back to the list keeps the filters.
const filters = { agent: "", status: "" };

function matches(application) {
  if (filters.agent && application.agent_id !== filters.agent) return false;
  if (!filters.status) return true;
  const [field, value] = filters.status.split(":");
  return application[field] === value;
}

function statusOptions() {
  return [
    h("option", { value: "" }, "Any status"),
    h(
      "optgroup",
      { label: "Sync" },
      SYNC_STATUSES.map((s) => h("option", { value: `sync_status:${s}` }, s.replaceAll("_", " "))),
    ),
    h(
      "optgroup",
      { label: "Health" },
      HEALTH_STATUSES.map((s) => h("option", { value: `health_status:${s}` }, `health ${s}`)),
    ),
  ];
}

function agentOptions() {
  const agents = [...state.agents.values()].sort((a, b) => a.name.localeCompare(b.name));
  return [
    h("option", { value: "" }, "All agents"),
    agents.map((agent) => h("option", { value: agent.id }, agent.name)),
  ];
}

export function commitCell(application) {
  if (!application.commit) return h("span", { class: "muted" }, "none yet");
  return [
    h("code", { class: "commit", title: application.commit }, shortCommit(application.commit)),
    application.commit_message
      ? h("span", { class: "commit-message" }, application.commit_message.split("\n")[0])
      : null,
  ];
}

function row(application) {
  return h(
    "tr",
    { "data-id": application.id },
    cell(
      "Name",
      {},
      h(
        "a",
        { href: route("applications", application.id), "data-key": `app:${application.id}` },
        application.name,
      ),
    ),
    cell("Agent", {}, agentName(application.agent_id)),
    cell(
      "Source",
      { class: "source" },
      h("span", { class: "repository" }, repositoryUrl(application.repository_id)),
      h("span", { class: "where" }, `${application.branch} · ${application.path}`),
    ),
    cell("Commit", { class: "commit-cell" }, commitCell(application)),
    cell("Sync", {}, badge("sync_status", application.sync_status)),
    cell("Health", {}, badge("health_status", application.health_status)),
    cell("Last synced", {}, timeAgo(application.last_synced_at)),
    cell(
      "Last error",
      { class: "error-cell" },
      application.last_sync_error
        ? h(
            "span",
            { class: "error-text", "data-field": "last_sync_error" },
            application.last_sync_error,
          )
        : h("span", { class: "muted" }, "—"),
    ),
  );
}

export function applicationsView(main) {
  const agentSelect = h("select", {
    id: "filter-agent",
    onchange: () => {
      filters.agent = agentSelect.value;
      update();
    },
  });
  const statusSelect = h("select", {
    id: "filter-status",
    onchange: () => {
      filters.status = statusSelect.value;
      update();
    },
  });
  replaceContent(statusSelect, statusOptions());
  statusSelect.value = filters.status;
  const count = h("p", { class: "count" });
  const body = h("tbody");
  const table = h(
    "table",
    { class: "applications responsive" },
    h("caption", { class: "visually-hidden" }, "Applications and their state"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Name", "Agent", "Source", "Commit", "Sync", "Health", "Last synced", "Last error"].map(
          (title) => h("th", { scope: "col" }, title),
        ),
      ),
    ),
    body,
  );
  const empty = h("p", { class: "empty" });

  let agentsShown = null;

  function update() {
    // Rebuilt only when the agents changed: rebuilding would close a list the user has open.
    const agents = JSON.stringify([...state.agents.values()].map((a) => [a.id, a.name]));
    if (agents !== agentsShown) {
      agentsShown = agents;
      replaceContent(agentSelect, agentOptions());
      agentSelect.value = state.agents.has(filters.agent) ? filters.agent : "";
      filters.agent = agentSelect.value;
    }
    const all = [...state.applications.values()].sort((a, b) => a.name.localeCompare(b.name));
    const shown = all.filter(matches);
    replaceContent(body, shown.map(row));
    table.hidden = shown.length === 0;
    empty.hidden = shown.length > 0;
    if (!state.loaded) empty.textContent = "Loading…";
    else if (all.length === 0)
      empty.textContent = "No applications yet (ferry app add registers one).";
    else empty.textContent = "No application matches these filters.";
    count.textContent = state.loaded ? `${shown.length} of ${all.length} shown` : "";
  }

  replaceContent(
    main,
    h("h1", {}, "Applications"),
    h(
      "div",
      { class: "filters", role: "group", "aria-label": "Filters" },
      h("span", { class: "filter" }, h("label", { for: "filter-agent" }, "Agent"), agentSelect),
      h("span", { class: "filter" }, h("label", { for: "filter-status" }, "Status"), statusSelect),
      count,
    ),
    empty,
    h("div", { class: "table-wrap" }, table),
  );
  update();
  return { update };
}
