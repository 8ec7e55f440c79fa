// Talking to the API: the token, JSON requests and the live change feed.
//
// The token comes from the sign-in form or from the link `ferry up` prints (`/#token=…`: a URL
// fragment is never sent to the server, so it is in no access log). It is kept in
// sessionStorage (gone when the tab closes) and only ever sent as an Authorization header.

const TOKEN_KEY = "ferry.token";

// Relative to the page, so the API works under a path prefix (an API Gateway stage) too.
export const API = new URL("api/v1/", document.baseURI);

/** An API token is printable ASCII (`<id>.<secret>`); anything else could not even be sent. */
export function looksLikeToken(value) {
  return /^[\x21-\x7e]{1,512}$/.test(value);
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** Take a token handed over in the fragment (`#token=…`) and drop it from the address bar and
 * the history. Returns true when there was one. */
export function takeTokenFromFragment() {
  const match = /^#token=([^&]*)/.exec(window.location.hash);
  if (!match) return false;
  let value = "";
  try {
    value = decodeURIComponent(match[1]).trim();
  } catch {
    value = "";
  }
  const { pathname, search } = window.location;
  window.history.replaceState(null, "", `${pathname}${search}#/`);
  if (!looksLikeToken(value)) return false;
  token.set(value);
  return true;
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }

  static async from(response) {
    let detail = response.statusText || `HTTP ${response.status}`;
    try {
      const body = await response.json();
      if (body && typeof body.detail === "string") detail = body.detail;
    } catch {
      // not JSON: keep the status text
    }
    return new ApiError(response.status, detail);
  }
}

/** `path\`applications/${id}/events\``: a path under api/v1/ with every value URL-encoded. */
export function path(strings, ...values) {
  return strings.reduce(
    (joined, part, index) =>
      joined + part + (index < values.length ? encodeURIComponent(values[index]) : ""),
    "",
  );
}

function headers(extra = {}) {
  return { Authorization: `Bearer ${token.get() ?? ""}`, ...extra };
}

let unauthorized = () => {};

/** What to do when the API refuses the token (401): sign out and ask again. */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

// A read that failed on the network (not with an answer) is tried again after these delays:
// reads are safe to repeat, and a network change (a VPN, Wi-Fi, Docker adding an interface)
// makes the browser drop requests in flight.
const READ_RETRIES_MS = [500, 1500, 4000];

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function fetchWithRetries(url, init) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await fetch(url, init);
    } catch (error) {
      if (init.method !== "GET" || attempt >= READ_RETRIES_MS.length) throw error;
      await pause(READ_RETRIES_MS[attempt]);
    }
  }
}

/** A JSON request to the API; throws ApiError with the API's `detail` on an error answer. */
export async function request(relativePath, { method = "GET", body } = {}) {
  const init = { method, headers: headers({ Accept: "application/json" }), cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetchWithRetries(new URL(relativePath, API), init);
  if (response.status === 401) unauthorized();
  if (!response.ok) throw await ApiError.from(response);
  return response.status === 204 ? null : response.json();
}

/** The paths the API offers (from its public OpenAPI schema), to show only the actions it has. */
export async function offeredPaths() {
  try {
    const response = await fetch(new URL("openapi.json", document.baseURI), { cache: "no-store" });
    if (!response.ok) return new Set();
    const schema = await response.json();
    return new Set(Object.keys(schema.paths ?? {}));
  } catch {
    return new Set();
  }
}
