// What the page knows: applications, agents and repositories, kept current from the feed.
// A change names a resource path; the resource is read again (a 404 means it is gone).

import { ApiError, path, request } from "./api.js";

export const state = {
  applications: new Map(),
  agents: new Map(),
  repositories: new Map(),
  loaded: false,
};

const listeners = new Set();

/** `listener({collection, id})` after every change; `collection` is "all" after a reload. */
export function subscribe(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function emit(change) {
  for (const listener of listeners) listener(change);
}

const byId = (items) => new Map(items.map((item) => [item.id, item]));

/** Read everything again (on sign-in, and after the feed reconnected without resuming). */
export async function loadAll() {
  const [applications, agents, repositories] = await Promise.all([
    request("applications"),
    request("agents"),
    request("repositories"),
  ]);
  state.applications = byId(applications);
  state.agents = byId(agents);
  state.repositories = byId(repositories);
  state.loaded = true;
  emit({ collection: "all", id: null });
}

/** Read the agents again (their `online` is not announced on the feed). */
export async function refreshAgents() {
  state.agents = byId(await request("agents"));
  emit({ collection: "agents", id: null });
}

export function clear() {
  state.applications = new Map();
  state.agents = new Map();
  state.repositories = new Map();
  state.loaded = false;
}

const KNOWN = new Set(["applications", "agents", "repositories"]);
const reading = new Map(); // path → {again}: one read per resource at a time, repeated if needed

/** A change from the feed: `{path: "/api/v1/applications/app_1", kind, ok, detail}`. */
export async function applyChange(change) {
  const parts = String(change.path ?? "")
    .replace(/\/+$/, "")
    .split("/");
  const [collection, id] = parts.slice(-2);
  if (!KNOWN.has(collection) || !id) {
    emit({ collection: collection ?? "", id: id ?? null, change });
    return;
  }
  const key = `${collection}/${id}`;
  const pending = reading.get(key);
  if (pending) {
    pending.again = true; // the read in flight may predate this change: read once more after it
    return;
  }
  const entry = { again: true };
  reading.set(key, entry);
  try {
    while (entry.again) {
      entry.again = false;
      await readOne(collection, id);
      emit({ collection, id, change });
    }
  } finally {
    reading.delete(key);
  }
}

async function readOne(collection, id) {
  try {
    state[collection].set(id, await request(path`${collection}/${id}`));
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
    state[collection].delete(id);
  }
}

export function agentName(agentId) {
  return state.agents.get(agentId)?.name ?? agentId;
}

export function repositoryUrl(repositoryId) {
  return state.repositories.get(repositoryId)?.url ?? repositoryId;
}
