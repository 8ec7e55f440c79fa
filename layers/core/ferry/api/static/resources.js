// Agents, repositories, and one repository with its webhook delivery log.

import { ApiError, path, request } from "./api.js";
import { badge, cell, h, replaceContent, route, say, timeAgo } from "./dom.js";
import { refreshAgents, state } from "./store.js";

const AGENTS_REFRESH_MS = 30000;

function table(className, titles, rows, emptyText) {
  if (rows.length === 0) return h("p", { class: "empty" }, emptyText);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: `${className} responsive` },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          titles.map((title) => h("th", { scope: "col" }, title)),
        ),
      ),
      h("tbody", {}, rows),
    ),
  );
}

function countApplications(key, id) {
  return [...state.applications.values()].filter((application) => application[key] === id).length;
}

export function agentsView(main) {
  const content = h("div");
  function update() {
    const agents = [...state.agents.values()].sort((a, b) => a.name.localeCompare(b.name));
    replaceContent(
      content,
      table(
        "agents",
        ["Name", "State", "Last seen", "Applications"],
        agents.map((agent) =>
          h(
            "tr",
            { "data-id": agent.id },
            cell("Name", {}, agent.name),
            cell("State", {}, badge("online", agent.online ? "online" : "offline")),
            cell("Last seen", {}, timeAgo(agent.last_seen_at)),
            cell("Applications", {}, String(countApplications("agent_id", agent.id))),
          ),
        ),
        state.loaded ? "No agents yet (ferry agent add registers one)." : "Loading…",
      ),
    );
  }
  // Whether an agent is online follows from its heartbeats, which the feed does not announce:
  // while this list is open, the agents are read again now and then.
  const refresher = setInterval(() => {
    refreshAgents().catch(() => {}); // the next round, or the feed, brings it
  }, AGENTS_REFRESH_MS);
  replaceContent(main, h("h1", {}, "Agents"), content);
  update();
  return { update, dispose: () => clearInterval(refresher) };
}

function repositoryRow(repository) {
  return h(
    "tr",
    { "data-id": repository.id },
    cell(
      "Repository",
      { class: "repository-cell" },
      h(
        "a",
        { href: route("repositories", repository.id), "data-key": `repo:${repository.id}` },
        repository.url,
      ),
    ),
    cell("Sync type", {}, repository.sync_type),
    cell("Sync", {}, badge("sync_status", repository.sync_status)),
    cell("Last synced", {}, timeAgo(repository.last_synced_at)),
    cell(
      "Last error",
      { class: "error-cell" },
      repository.last_sync_error
        ? h("span", { class: "error-text" }, repository.last_sync_error)
        : h("span", { class: "muted" }, "—"),
    ),
  );
}

export function repositoriesView(main) {
  const content = h("div");
  function update() {
    const repositories = [...state.repositories.values()].sort((a, b) =>
      a.url.localeCompare(b.url),
    );
    replaceContent(
      content,
      table(
        "repositories",
        ["Repository", "Sync type", "Sync", "Last synced", "Last error"],
        repositories.map(repositoryRow),
        state.loaded ? "No repositories yet (ferry repo add registers one)." : "Loading…",
      ),
    );
  }
  replaceContent(main, h("h1", {}, "Repositories"), content);
  update();
  return { update };
}

function deliveryRow(delivery) {
  return h(
    "tr",
    { "data-id": delivery.id },
    cell("Received", {}, timeAgo(delivery.received_at)),
    cell("Sender", {}, delivery.sender),
    cell("Event", {}, delivery.event ?? "—"),
    cell("Outcome", {}, badge("outcome", delivery.outcome), ` ${delivery.status_code}`),
    cell("Reason", { class: "error-cell" }, delivery.reason ?? "—"),
    cell("Job", {}, delivery.job_id ? h("code", {}, delivery.job_id) : "—"),
  );
}

export function repositoryView(main, id) {
  const heading = h("h1", { class: "repository-title" });
  const facts = h("dl", { class: "facts" });
  const actions = h("div", { class: "actions", role: "group", "aria-label": "Actions" });
  const applications = h("div");
  const deliveries = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  let reloadTimer = null;

  const sync = h(
    "button",
    {
      type: "button",
      "data-key": "sync",
      onclick: async () => {
        sync.disabled = true;
        say("Sync…");
        try {
          const answer = await request(path`repositories/${id}/sync`, { method: "POST" });
          say(`Sync: accepted (${answer.job_id}).`);
        } catch (error) {
          say(`Sync failed: ${error.message}`, { error: true });
        } finally {
          sync.disabled = false;
        }
      },
    },
    "Sync now",
  );
  actions.append(sync);

  async function loadDeliveries() {
    try {
      const items = await request(path`repositories/${id}/deliveries`);
      replaceContent(
        deliveries,
        table(
          "deliveries",
          ["Received", "Sender", "Event", "Outcome", "Reason", "Job"],
          items.map(deliveryRow),
          "No webhook deliveries yet.",
        ),
      );
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return;
      replaceContent(
        deliveries,
        h("p", { class: "error-text" }, `Could not read: ${error.message}`),
      );
    }
  }

  function update(change) {
    const repository = state.repositories.get(id);
    if (!repository) {
      heading.textContent = state.loaded ? "Repository not found" : "Loading…";
      replaceContent(facts);
      return;
    }
    document.title = `${repository.url} · Ferry`;
    heading.textContent = repository.url;
    replaceContent(
      facts,
      [
        ["Sync", badge("sync_status", repository.sync_status)],
        ["Sync type", repository.sync_type],
        ["Provider", repository.provider],
        ["Last synced", timeAgo(repository.last_synced_at)],
        [
          "Last error",
          repository.last_sync_error
            ? h("span", { class: "error-text" }, repository.last_sync_error)
            : h("span", { class: "muted" }, "none"),
        ],
      ].map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]),
    );
    const used = [...state.applications.values()].filter((a) => a.repository_id === id);
    replaceContent(
      applications,
      used.length
        ? h(
            "ul",
            {},
            used.map((a) =>
              h(
                "li",
                {},
                h("a", { href: route("applications", a.id) }, a.name),
                " ",
                badge("sync_status", a.sync_status),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No application uses it."),
    );
    if (!change || change.collection === "all" || change.id === id) {
      clearTimeout(reloadTimer);
      reloadTimer = setTimeout(loadDeliveries, 250);
    }
  }

  replaceContent(
    main,
    h("p", { class: "crumbs" }, h("a", { href: route("repositories") }, "Repositories"), " / "),
    heading,
    facts,
    h("h2", {}, "Actions"),
    actions,
    h("h2", {}, "Applications"),
    applications,
    h("h2", {}, "Webhook deliveries"),
    deliveries,
  );
  update(null);
  return { update, dispose: () => clearTimeout(reloadTimer) };
}
