// Owns: the application's handle on one subscribed room: its events and its three calls. All the
// work is done by the room's session (room-session.js); this object only exposes it.

import { Emitter } from './emitter.js';

export class Room extends Emitter {
  #session;

  /** @internal created by HubClient.subscribe */
  constructor(session) {
    super();
    this.#session = session;
  }

  /** The room's name. */
  get name() {
    return this.#session.name;
  }

  /**
   * Where the room's stream stands: every message up to `offset` of `epoch` was delivered (or was
   * ours, or was declared lost by a `recovery` event). Null before the first join, or when the hub
   * keeps no history. Keep it to resume later with `subscribe(room, { since })`.
   */
  get position() {
    return this.#session.stream.position;
  }

  /** Whether the room is joined on the current connection. */
  get joined() {
    return this.#session.joinedNow();
  }

  /**
   * Sends `content` to the room. Resolves with `{id, offset}` once the hub stored it; rejects with a
   * HubError carrying `.code` (and `.maybeStored`). Waits (bounded) while disconnected.
   * `{resend: false}`: at most once — a publish whose connection dropped before its ack is not sent
   * again; it rejects with `not_sent` once the room's history shows it was not stored.
   */
  publish(content, options = undefined) {
    return this.#session.publish(content, options);
  }

  /**
   * The room's latest `limit` messages as the hub's history holds them, oldest first: those at or
   * before the room's position (older ones than the `message` events bring). Asked on the
   * connection the room is joined on (again on the next one if it drops).
   */
  history(limit) {
    return this.#session.fetchHistory(limit);
  }

  /** Who is in the room, across every hub: the hub's `presence` frame. */
  presence() {
    return this.#session.presence();
  }

  /** Leaves the room: no more events; its pending publishes and questions reject with `unsubscribed`. */
  unsubscribe() {
    this.#session.unsubscribe();
  }
}
