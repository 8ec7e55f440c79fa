// The live change feed (GET api/v1/events, Server-Sent Events) read with fetch().
//
// EventSource cannot send an Authorization header, and the token must never go into a query
// string, so the stream is read from fetch()'s body and parsed here (the WHATWG event-stream
// rules). Reconnects resume with Last-Event-ID; behind API Gateway the API answers as a bounded
// long-poll, so a stream that ends cleanly is simply opened again.

import { API, ApiError, token } from "./api.js";

// Longer than the server's 15 s keep-alive: a silent connection is dead and is replaced.
const SILENCE_MS = 45000;
const MAX_DELAY_MS = 30000;

/** Feeds text chunks in, calls `dispatch({event, data, id})` for each complete event. */
export class EventStreamParser {
  constructor(dispatch) {
    this.dispatch = dispatch;
    this.buffer = "";
    this.event = "";
    this.data = [];
    this.lastId = null; // the id of the block being read
    this.lastEventId = null; // the stream's last event id: set when a block ends, data or not
    this.retry = null;
  }

  push(chunk) {
    this.buffer += chunk;
    const lines = this.buffer.split(/\r\n|\r|\n/);
    // A lone \r at the end may be the first half of \r\n: keep it with the unfinished line.
    this.buffer = lines.pop();
    for (const line of lines) this.line(line);
  }

  line(line) {
    if (line === "") {
      this.lastEventId = this.lastId;
      if (this.data.length > 0) {
        this.dispatch({
          event: this.event || "message",
          data: this.data.join("\n"),
          id: this.lastId,
        });
      }
      this.event = "";
      this.data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\0")) this.lastId = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.retry = Number(value);
  }
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });

/**
 * Follows the feed until stopped.
 *  onOpen(resumed)   connected; `resumed` is false when changes may have been missed, so the
 *                    caller reloads what it shows
 *  onChange(change)  one `update`: {path, kind, ok, detail}
 *  onState(state, detail)  "live", "reconnecting" (with the reason) or "stopped" (with the reason)
 *  onUnauthorized()  the token was refused
 */
export class Feed {
  constructor({ onOpen, onChange, onState, onUnauthorized }) {
    Object.assign(this, { onOpen, onChange, onState, onUnauthorized });
    this.lastId = null;
    this.retryMs = 2000;
    this.stopper = new AbortController();
  }

  start() {
    this.run();
    return this;
  }

  stop() {
    this.stopper.abort();
  }

  get stopped() {
    return this.stopper.signal.aborted;
  }

  async run() {
    let failures = 0;
    while (!this.stopped) {
      try {
        await this.follow();
        failures = 0; // ended cleanly (a long-poll behind API Gateway): open it again at once
      } catch (error) {
        if (this.stopped) return;
        if (error instanceof ApiError && error.status === 401) {
          this.onUnauthorized();
          return;
        }
        if (error instanceof ApiError && error.status < 500 && error.status !== 429) {
          this.onState("stopped", error.message);
          return;
        }
        failures += 1;
        this.onState("reconnecting", error.message || String(error));
        await sleep(
          Math.min(this.retryMs * 2 ** (failures - 1), MAX_DELAY_MS),
          this.stopper.signal,
        );
      }
    }
  }

  async follow() {
    const connection = new AbortController();
    const abort = () => connection.abort();
    this.stopper.signal.addEventListener("abort", abort);
    let silence = null;
    const quiet = () => {
      clearTimeout(silence);
      silence = setTimeout(() => connection.abort(new Error("no data for 45 s")), SILENCE_MS);
    };
    try {
      const headers = { Authorization: `Bearer ${token.get() ?? ""}`, Accept: "text/event-stream" };
      if (this.lastId !== null) headers["Last-Event-ID"] = this.lastId;
      quiet();
      const response = await fetch(new URL("events", API), {
        headers,
        cache: "no-store",
        signal: connection.signal,
      });
      if (!response.ok) throw await ApiError.from(response);
      const resumed = this.lastId !== null;
      this.onState("live");
      this.onOpen(resumed);
      const parser = new EventStreamParser((event) => {
        if (event.event !== "update") return;
        try {
          this.onChange(JSON.parse(event.data));
        } catch {
          // a frame we cannot read is skipped; the next change re-reads the resource anyway
        }
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        quiet();
        parser.push(value);
        // The last event id, also from a block without data: the stream's first one says where
        // it starts, so a reconnect before any change resumes there instead of reloading. Only
        // a whole block's: an id whose event was cut off by a drop would skip that event.
        if (parser.lastEventId !== null) this.lastId = parser.lastEventId;
        if (parser.retry !== null) this.retryMs = parser.retry;
      }
    } catch (error) {
      if (connection.signal.aborted && connection.signal.reason instanceof Error) {
        throw connection.signal.reason;
      }
      throw error;
    } finally {
      clearTimeout(silence);
      this.stopper.signal.removeEventListener("abort", abort);
    }
  }
}
