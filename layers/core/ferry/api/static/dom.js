// Building the page. Every element is made with createElement and every piece of data goes in as
// a text node or an attribute value: nothing from the API ever passes through an HTML parser, so
// an application named `<img src=x onerror=alert(1)>` is shown as those characters.

const FORBIDDEN = new Set(["innerHTML", "outerHTML", "srcdoc"]);

/** An element: `h("a", {href: "#/", class: "brand"}, "Ferry", child, [more, children])`. */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (FORBIDDEN.has(key)) throw new Error(`h(): ${key} is not allowed`);
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      element.className = String(value);
    } else if (key === "value" || key === "checked" || key === "selected") {
      element[key] = value;
    } else {
      element.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

/** Append children: strings (as text), nodes, arrays of them; null/false/undefined are skipped. */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replace everything inside `element` with `children`, keeping keyboard focus where it was:
 * the focused element's `data-key` is looked up again in the new content. */
export function replaceContent(element, ...children) {
  const focused = document.activeElement;
  const key = element.contains(focused) ? focused.getAttribute("data-key") : null;
  element.replaceChildren();
  append(element, children);
  if (key !== null) {
    const again = element.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}

/** A status badge: its text is the status itself, its class picks the colour. */
export function badge(field, status) {
  const value = status ?? "unknown";
  return h(
    "span",
    { class: `badge badge-${value.replace(/[^a-z_]/g, "")}`, "data-field": field },
    value.replaceAll("_", " "),
  );
}

export function shortCommit(commit) {
  return commit ? commit.slice(0, 12) : "";
}

const UNITS = [
  ["d", 86400],
  ["h", 3600],
  ["min", 60],
  ["s", 1],
];

/** "12 s ago", "5 min ago", "in 3 h" ... */
export function relative(iso, now = Date.now()) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "";
  const seconds = Math.round((now - then) / 1000);
  if (Math.abs(seconds) < 5) return "just now";
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) {
      const count = Math.floor(Math.abs(seconds) / size);
      return seconds > 0 ? `${count} ${unit} ago` : `in ${count} ${unit}`;
    }
  }
  return "just now";
}

/** A <time> that says how long ago, with the exact moment as its tooltip; kept current by
 * `refreshTimes`. */
export function timeAgo(iso) {
  if (!iso) return h("span", { class: "muted" }, "never");
  return h(
    "time",
    { datetime: iso, title: new Date(iso).toLocaleString(), "data-relative": "" },
    relative(iso),
  );
}

export function refreshTimes(root = document) {
  for (const element of root.querySelectorAll("time[data-relative]")) {
    element.textContent = relative(element.getAttribute("datetime"));
  }
}

/** A link inside the page: `#/applications/<id>` (ids are encoded, never trusted as markup). */
export function route(...parts) {
  return `#/${parts.map((part) => encodeURIComponent(part)).join("/")}`;
}

/** Say something in the page's status line (read out by screen readers). */
export function say(text, { error = false } = {}) {
  const notice = document.getElementById("notice");
  if (!notice) return;
  notice.className = error ? "notice notice-error" : "notice";
  notice.textContent = text;
  notice.hidden = !text;
}

/** A table cell labelled for the narrow layout (where each row becomes a card of labelled
 * lines); its content sits in one wrapper so the label and the value are two grid items. */
export function cell(label, props, ...children) {
  return h("td", { ...props, "data-label": label }, h("div", { class: "cell-value" }, ...children));
}
