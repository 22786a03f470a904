// Owns: one WebSocket to the hub, from opening to its single close report. Parses frames, sends
// JSON, and proves the connection alive once told to (after the welcome): a socket whose peer
// vanished without a FIN (a cut cable, a NAT that forgot it) looks open for minutes, so when
// nothing has arrived for `pingInterval` it sends the hub an application ping, and closes itself
// when no frame at all follows within `pongTimeout` (heartbeat.js). Knows nothing of rooms, tokens
// or reconnects.

import { Heartbeat } from './heartbeat.js';

/** Close codes a Transport reports for closes it decided itself (the socket gave no code). */
export const LOCAL_CLOSE = 1006;

export class Transport {
  #ws;
  #handlers;
  #closed = false;
  #heartbeat;

  /**
   * @param {Function} WebSocketCtor the browser's WebSocket or the `ws` package's
   * @param {string} url
   * @param {{onOpen: () => void, onFrame: (frame: object) => void,
   *          onClose: (info: {code: number, reason: string}) => void}} handlers
   * @param {{pingInterval: number, pongTimeout: number}} timing ms
   * @param {{compression?: boolean}} [socket] whether `ws` offers permessage-deflate
   */
  constructor(WebSocketCtor, url, handlers, { pingInterval, pongTimeout }, { compression = false } = {}) {
    this.#handlers = handlers;
    this.#heartbeat = new Heartbeat(
      pingInterval,
      pongTimeout,
      () => this.send({ type: 'ping' }),
      (reason) => this.close(LOCAL_CLOSE, reason),
    );
    let ws;
    try {
      // The third argument is the `ws` package's options (a browser's WebSocket takes two and
      // ignores it). `ws` offers permessage-deflate by default and inflates every frame through
      // zlib's thread pool: a Node receiver of the hub's compressed frames then took 6,569
      // messages/s of 60,000 offered, against all 60,000 with it off (clients/js/bench/recv.mjs).
      // Browsers inflate natively and always offer it; this reaches only `ws`. No subprotocol is
      // an empty list, never `undefined`: Chromium sends that as a protocol named "undefined", and
      // the hub, which names none back, is then refused by the browser.
      ws = new WebSocketCtor(url, [], { perMessageDeflate: compression });
    } catch (err) {
      // A malformed URL throws synchronously; report it like any failed attempt, but later, so
      // the caller has finished setting up.
      queueMicrotask(() => this.#finish({ code: LOCAL_CLOSE, reason: `cannot open ${url}: ${err.message}` }));
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      if (this.#closed) return;
      this.#handlers.onOpen();
    };
    ws.onmessage = (event) => this.#onMessage(event);
    ws.onclose = (event) => this.#finish({ code: event.code || LOCAL_CLOSE, reason: event.reason || '' });
    // An error is always followed by a close event; nothing to do here but not to throw.
    ws.onerror = () => {};
  }

  get open() {
    return !this.#closed && this.#ws?.readyState === 1;
  }

  /** Bytes queued in the socket but not yet sent (0 when unknown). */
  get buffered() {
    return this.#ws?.bufferedAmount ?? 0;
  }

  /** Sends one frame as JSON text; false when the socket is not open (nothing was sent). */
  send(frame) {
    if (!this.open) return false;
    try {
      this.#ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** Closes the socket and reports the close at once (the close handshake may never finish). */
  close(code = 1000, reason = '') {
    if (this.#closed) return;
    const ws = this.#ws;
    this.#finish({ code, reason });
    try {
      // `ws` (Node) can drop a socket whose peer is gone without waiting for the handshake.
      if (code !== 1000 && typeof ws?.terminate === 'function') ws.terminate();
      else ws?.close(code === LOCAL_CLOSE ? 1000 : code, reason);
    } catch {
      // Closing a socket still connecting throws in some runtimes; it is going away regardless.
    }
  }

  #onMessage(event) {
    if (this.#closed) return;
    this.#heartbeat.heard();
    const data = event.data;
    // The hub sends text only; anything else (or text that is not JSON) is not a frame we know.
    if (typeof data !== 'string') return;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame && typeof frame === 'object' && typeof frame.type === 'string') this.#handlers.onFrame(frame);
  }

  /**
   * Starts proving the connection alive; the client calls it once the hub welcomed it (until then
   * its connect timeout covers the handshake, however long a busy hub takes).
   */
  startHeartbeat() {
    if (!this.#closed) this.#heartbeat.start();
  }

  #finish(info) {
    if (this.#closed) return;
    this.#closed = true;
    this.#heartbeat.stop();
    if (this.#ws) {
      this.#ws.onopen = null;
      this.#ws.onmessage = null;
      this.#ws.onclose = null;
    }
    this.#handlers.onClose(info);
  }
}
