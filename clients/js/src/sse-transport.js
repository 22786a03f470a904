// Owns: one SSE session with the hub (DESIGN 18), the fallback for networks that break
// WebSocket, from `POST /sse/session` to its single close report, behind the same interface as
// transport.js (open, buffered, send, close, startHeartbeat; onOpen/onFrame/onClose). Frames
// come as the events of `GET /sse?session=…` — through an EventSource in browsers, through a
// streamed `fetch` where there is none (Node 20) — and go out as `POST /sse/send`, batched, one
// request at a time so their order holds. The hub's close is an `event: close` with its code.

import { Heartbeat } from './heartbeat.js';
import { LOCAL_CLOSE } from './transport.js';

/** The SSE base URL of a hub's WebSocket URL: ws://host:8080/ws → http://host:8080. */
export function sseBase(wsUrl) {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  url.pathname = url.pathname.replace(/\/ws\/?$/, '') || '/';
  url.search = '';
  url.hash = '';
  return url.href.replace(/\/$/, '');
}

/** Can this runtime (or these options) speak SSE at all? */
export function sseAvailable({ EventSource, fetch }) {
  return typeof fetch === 'function' && (typeof EventSource === 'function' || typeof ReadableStream === 'function');
}

export class SseTransport {
  #base;
  #handlers;
  #EventSource;
  #fetch;
  #session = null;
  #source = null; // an EventSource, or the AbortController of a fetch reader
  #opened = false;
  #closed = false;
  #queue = []; // frames (text) waiting for the next POST
  #queuedBytes = 0;
  #posting = false;
  #heartbeat;

  /**
   * @param {{EventSource?: Function, fetch: Function}} ctors
   * @param {string} wsUrl the hub's WebSocket URL (the SSE routes are beside /ws)
   * @param {string|null} token sent with POST /sse/session (no `auth` frame is needed after)
   * @param {object} handlers as transport.js's
   * @param {{pingInterval: number, pongTimeout: number}} timing ms
   */
  constructor({ EventSource, fetch }, wsUrl, token, handlers, { pingInterval, pongTimeout }) {
    this.#handlers = handlers;
    this.#EventSource = EventSource;
    this.#fetch = fetch;
    this.#heartbeat = new Heartbeat(
      pingInterval,
      pongTimeout,
      () => this.send({ type: 'ping' }),
      (reason) => this.close(LOCAL_CLOSE, reason),
    );
    try {
      this.#base = sseBase(wsUrl);
    } catch (err) {
      queueMicrotask(() => this.#finish({ code: LOCAL_CLOSE, reason: `cannot open ${wsUrl}: ${err.message}` }));
      return;
    }
    this.#start(token);
  }

  /** Always 'sse': the client tells the transports apart by it. */
  get kind() {
    return 'sse';
  }

  get open() {
    return this.#opened && !this.#closed;
  }

  get buffered() {
    return this.#queuedBytes;
  }

  send(frame) {
    if (!this.open) return false;
    const text = typeof frame === 'string' ? frame : JSON.stringify(frame);
    this.#queue.push(text);
    this.#queuedBytes += text.length;
    if (!this.#posting) queueMicrotask(() => this.#post());
    return true;
  }

  close(code = 1000, reason = '') {
    if (this.#closed) return;
    this.#finish({ code, reason });
  }

  startHeartbeat() {
    // The same liveness check as over WebSocket: the hub's keep-alive comments are not events
    // an EventSource shows, so silence is broken by an application ping.
    if (!this.#closed) this.#heartbeat.start();
  }

  async #start(token) {
    let session;
    try {
      const res = await this.#fetch(`${this.#base}/sse/session`, {
        method: 'POST',
        // text/plain keeps it a "simple" cross-origin request: no preflight round trip.
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify({ token }),
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok || typeof body.session !== 'string') {
        throw new Error(`POST /sse/session: ${res.status} ${body.message ?? ''}`.trim());
      }
      session = body.session;
    } catch (err) {
      this.#finish({ code: LOCAL_CLOSE, reason: `cannot open an SSE session: ${err.message}` });
      return;
    }
    if (this.#closed) return;
    this.#session = session;
    const url = `${this.#base}/sse?session=${encodeURIComponent(session)}`;
    if (typeof this.#EventSource === 'function') this.#listen(url);
    else this.#read(url);
  }

  #onOpen() {
    if (this.#closed || this.#opened) return;
    this.#opened = true;
    this.#handlers.onOpen();
  }

  #onData(data) {
    if (this.#closed) return;
    this.#heartbeat.heard();
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame && typeof frame === 'object' && typeof frame.type === 'string') this.#handlers.onFrame(frame);
  }

  #onCloseEvent(data) {
    let info = {};
    try {
      info = JSON.parse(data);
    } catch {
      // a close without a readable reason is still a close
    }
    this.#finish({ code: Number(info.code) || LOCAL_CLOSE, reason: String(info.reason ?? '') });
  }

  /** Browsers: an EventSource, never left to reconnect on its own (its id is single-use). */
  #listen(url) {
    const source = new this.#EventSource(url);
    this.#source = source;
    source.onopen = () => this.#onOpen();
    source.onmessage = (event) => this.#onData(event.data);
    source.addEventListener('close', (event) => this.#onCloseEvent(event.data));
    source.onerror = () => this.#finish({ code: LOCAL_CLOSE, reason: 'the SSE stream failed or ended' });
  }

  /** No EventSource (Node 20): the stream read with fetch, parsed as the SSE format says. */
  async #read(url) {
    const abort = new AbortController();
    this.#source = abort;
    let reason = 'the SSE stream ended';
    try {
      const res = await this.#fetch(url, { signal: abort.signal, headers: { accept: 'text/event-stream' } });
      if (!res.ok || !res.body) throw new Error(`GET /sse: ${res.status}`);
      this.#onOpen();
      const decoder = new TextDecoder();
      let buffer = '';
      let event = { name: '', data: [] };
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk, { stream: true });
        let at;
        while ((at = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, at).replace(/\r$/, '');
          buffer = buffer.slice(at + 1);
          if (line === '') {
            if (event.data.length) {
              const data = event.data.join('\n');
              if (event.name === 'close') return this.#onCloseEvent(data);
              if (event.name === '') this.#onData(data);
            }
            event = { name: '', data: [] };
          } else if (line.startsWith('data:')) event.data.push(line.slice(5).replace(/^ /, ''));
          else if (line.startsWith('event:')) event.name = line.slice(6).trim();
          if (this.#closed) return;
        }
      }
    } catch (err) {
      reason = `the SSE stream failed: ${err.message}`;
    }
    this.#finish({ code: LOCAL_CLOSE, reason });
  }

  async #post() {
    if (this.#posting || this.#closed || !this.#queue.length) return;
    this.#posting = true;
    const frames = this.#queue.splice(0);
    const bytes = this.#queuedBytes;
    try {
      const res = await this.#fetch(`${this.#base}/sse/send`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: `{"session":${JSON.stringify(this.#session)},"frames":[${frames.join(',')}]}`,
      });
      // The session is gone (the hub closed it, its close event is on its way or lost).
      if (res.status === 404 || res.status === 403) {
        this.#finish({ code: LOCAL_CLOSE, reason: `POST /sse/send: ${res.status}` });
        return;
      }
    } catch (err) {
      this.#finish({ code: LOCAL_CLOSE, reason: `POST /sse/send failed: ${err.message}` });
      return;
    } finally {
      this.#posting = false;
      this.#queuedBytes = Math.max(0, this.#queuedBytes - bytes);
    }
    if (this.#queue.length) this.#post();
  }

  #finish(info) {
    if (this.#closed) return;
    this.#closed = true;
    this.#heartbeat.stop();
    this.#queue = [];
    this.#queuedBytes = 0;
    const source = this.#source;
    this.#source = null;
    try {
      if (source instanceof AbortController) source.abort();
      else source?.close();
    } catch {
      // going away regardless
    }
    this.#handlers.onClose(info);
  }
}
