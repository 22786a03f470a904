// Owns: the client's publishes, from `room.publish()` to the promise's end, and the rule that none
// is stored twice by the SDK (README, "Publishing: the rules").
//
// A publish is queued (bounded), sent once its room is joined on the current connection (in call
// order per room, paced, a bounded number awaiting acks), and settled by its ack, by an error with
// its `ref`, or by its timeout. When the connection carrying it drops before the ack, it is in
// doubt: the hub may have stored it (and the ack was lost) or not. The hub chooses message ids, so
// the SDK recognises it in the room's history by what it does know: sent by that connection's
// client id, to that room, with that content, k-th of that connection's in-doubt publishes to
// the room (one connection's messages are stored in the order they were sent). Found: it resolves
// with that id and offset, and is never sent again. Not found in a complete history read made at
// least `resendAfter` after it was sent: it was not stored and is sent again. The history reset or
// trimmed meanwhile: nobody can tell, and it rejects with `unknown` rather than risk a second copy.
// A publish made with `resend: false` (at most once: e.g. a page that lets its user retry by hand)
// is never sent again: where the rule above would resend it, it rejects with `not_sent`, and it
// does not hold back the room's later publishes while in doubt (no resend can come after them).

import { Codes, HubError } from './errors.js';

/** Timed-out publishes remembered so a late stored copy is matched to them, not to a newer publish. */
const GHOSTS = 256;

export class Outbox {
  #link;
  #opts;
  #entries = []; // unsettled, in call order
  #byRef = new Map();
  #ghosts = [];
  #seq = 0; // call order
  #sendSeq = 0; // send order (a resend comes later than everything sent before it)
  #pumpTimer = null;
  #pausedUntil = 0;
  #encoder = new TextEncoder();

  /**
   * @param {object} link the client's side: `connected`, `gen`, `clientId`, `send(frame)`,
   *   `pace()` (a token, or false), `paceWait()` ms, `joined(room)`, `ownStored(room, offset)`
   * @param {{maxQueued: number, publishTimeout: number, resendAfter: number, window: number,
   *   maxMessageBytes: number}} opts
   */
  constructor(link, opts) {
    this.#link = link;
    this.#opts = opts;
  }

  get size() {
    return this.#entries.length;
  }

  /** Publishes awaiting an ack on the current connection in `room` (a hole there may be one of them). */
  awaitingAck(room) {
    const gen = this.#link.gen;
    return this.#entries.some((e) => e.room === room && e.state === 'sent' && e.gen === gen);
  }

  /** Publishes of `room` whose storage is in doubt. */
  inDoubt(room) {
    return this.#entries.some((e) => e.room === room && e.state === 'doubt');
  }

  publish(room, content, { resend = true } = {}) {
    if (typeof resend !== 'boolean') {
      return Promise.reject(new HubError(Codes.BAD_ARGUMENT, 'resend must be a boolean'));
    }
    if (typeof content !== 'string' || content === '') {
      return Promise.reject(new HubError(Codes.BAD_ARGUMENT, 'content must be a non-empty string'));
    }
    if (this.#entries.length >= this.#opts.maxQueued) {
      return Promise.reject(
        new HubError(Codes.TIMEOUT, `the publish queue is full (${this.#opts.maxQueued} waiting)`, { maybeStored: false }),
      );
    }
    // The frame with the longest ref it will carry: what the hub measures against max_message_bytes.
    const bytes = this.#encoder.encode(JSON.stringify({ type: 'message', room, content, ref: 'p0000000000.00' })).length;
    if (bytes > this.#opts.maxMessageBytes) {
      return Promise.reject(
        new HubError(Codes.TOO_LARGE, `the message frame is ${bytes} bytes, over maxMessageBytes (${this.#opts.maxMessageBytes})`, {
          maybeStored: false,
        }),
      );
    }
    return new Promise((resolve, reject) => {
      const entry = {
        seq: ++this.#seq,
        room,
        content,
        state: 'queued',
        ref: null,
        gen: -1,
        clientId: null,
        sentAt: 0,
        sendSeq: 0,
        sends: 0,
        resend,
        unknowable: false,
        resolve,
        reject,
        timer: null,
      };
      entry.timer = setTimeout(() => this.#expire(entry), this.#opts.publishTimeout);
      this.#entries.push(entry);
      this.pump();
    });
  }

  /** Sends what may go now: see the header. Called whenever something that blocks it changes. */
  pump() {
    const link = this.#link;
    if (!link.connected) return;
    const now = Date.now();
    if (now < this.#pausedUntil) return this.#pumpLater(this.#pausedUntil - now);
    const gen = link.gen;
    let awaiting = 0;
    for (const e of this.#entries) if (e.state === 'sent' && e.gen === gen) awaiting++;
    const blocked = new Set();
    for (const e of this.#entries) {
      // Later publishes of its room keep their order behind one that may be sent again.
      if (e.state === 'doubt' && e.resend) blocked.add(e.room);
      if (e.state !== 'queued' || blocked.has(e.room)) continue;
      if (!link.joined(e.room)) {
        blocked.add(e.room);
        continue;
      }
      if (awaiting >= this.#opts.window) return; // an ack will pump again
      if (!link.pace()) return this.#pumpLater(link.paceWait());
      e.sends += 1;
      e.ref = `p${e.seq}.${e.sends}`;
      if (!link.send({ type: 'message', room: e.room, content: e.content, ref: e.ref })) return;
      e.state = 'sent';
      e.gen = gen;
      e.clientId = link.clientId;
      e.sentAt = Date.now();
      e.sendSeq = ++this.#sendSeq;
      this.#byRef.set(e.ref, e);
      awaiting++;
    }
  }

  onAck(frame) {
    const e = this.#byRef.get(frame.ref);
    if (!e || e.state !== 'sent' || e.gen !== this.#link.gen) return;
    const offset = Number.isSafeInteger(frame.offset) ? frame.offset : null;
    this.#settle(e);
    if (offset !== null) this.#link.ownStored(e.room, offset);
    e.resolve({ id: String(frame.id ?? ''), offset });
    this.pump();
  }

  onError(frame) {
    const e = this.#byRef.get(frame.ref);
    if (!e || e.state !== 'sent' || e.gen !== this.#link.gen) return;
    this.#settle(e);
    // `unavailable`: the hub could not queue it for storing; its own local members got it anyway
    // (README): not stored, and not to be sent again under a new id.
    e.reject(new HubError(String(frame.code || 'error'), String(frame.message || 'refused by the hub'), { maybeStored: false }));
    this.pump();
  }

  /** The connection carrying the sent publishes is gone: each is now in doubt. */
  connectionLost() {
    clearTimeout(this.#pumpTimer);
    this.#pumpTimer = null;
    for (const e of this.#entries) if (e.state === 'sent') e.state = 'doubt';
  }

  /**
   * The hub refused frames for the rate limit (its error names none): any publish awaiting its ack
   * may have been dropped. Treated as in doubt; sending pauses a second.
   */
  rateLimited() {
    const gen = this.#link.gen;
    for (const e of this.#entries) if (e.state === 'sent' && e.gen === gen) e.state = 'doubt';
    this.#pausedUntil = Date.now() + 1000;
  }

  /**
   * One of our own messages (its `from` is one of this client's connections) went out of `room`'s
   * stream in offset order: the publish it was is settled with its id and offset.
   */
  matchStored(room, frame) {
    const from = frame.from;
    const content = frame.content;
    const fits = (e) =>
      (e.state === 'sent' || e.state === 'doubt') && e.clientId === from && e.room === room && e.content === content;
    let best = null;
    for (const e of this.#entries) if (fits(e) && (!best || e.sendSeq < best.sendSeq)) best = e;
    let ghost = -1;
    for (let i = 0; i < this.#ghosts.length; i++) {
      const g = this.#ghosts[i];
      if (fits(g) && (!best || g.sendSeq < best.sendSeq)) {
        best = g;
        ghost = i;
      }
    }
    if (!best) return;
    if (ghost >= 0) {
      this.#ghosts.splice(ghost, 1); // its promise already failed with timeout; it was stored
      return;
    }
    this.#settle(best);
    best.resolve({ id: String(frame.id ?? ''), offset: Number.isSafeInteger(frame.offset) ? frame.offset : null });
  }

  /**
   * A `since` re-join of `room` was answered and its replay matched what it could. `complete`: the
   * hub replayed everything after our position, from a read started no earlier than `readAt`;
   * `lost`: the history was reset or trimmed, so what it lacks may have been stored all the same.
   * Returns when a later read would settle what is still in doubt (ms since the epoch), or null.
   */
  afterRead(room, { complete, readAt, lost }) {
    let probeAt = null;
    for (const e of this.#entries) {
      if (e.room !== room || e.state !== 'doubt') continue;
      if (lost || e.unknowable) {
        this.#settle(e);
        e.reject(
          new HubError(Codes.UNKNOWN, 'the connection dropped before the ack and the room history no longer says whether it was stored', {
            maybeStored: true,
          }),
        );
      } else if (complete) {
        const due = e.sentAt + this.#opts.resendAfter;
        if (readAt >= due && !e.resend) {
          this.#settle(e);
          e.reject(
            new HubError(Codes.NOT_SENT, 'the connection dropped before the ack and the room history shows it was not stored', {
              maybeStored: false,
            }),
          );
        } else if (readAt >= due) {
          this.#byRef.delete(e.ref);
          e.state = 'queued'; // not stored: sent again, first of its room
        } else {
          probeAt = Math.max(probeAt ?? 0, due);
        }
      }
    }
    this.pump();
    return probeAt;
  }

  /**
   * The room's history changed epoch: a publish in doubt may have been stored in the old one after
   * our position. The new epoch's replay may still show it; if not, nobody can tell.
   */
  markUnknowable(room) {
    for (const e of this.#entries) if (e.room === room && e.state === 'doubt') e.unknowable = true;
  }

  /** Rejects every publish of `room` (unsubscribed) or of the client (closed). */
  failAll(room, code, message) {
    for (const e of [...this.#entries]) {
      if (room !== null && e.room !== room) continue;
      const maybeStored = e.state !== 'queued';
      this.#settle(e);
      e.reject(new HubError(code, message, { maybeStored }));
    }
    if (room === null) {
      clearTimeout(this.#pumpTimer);
      this.#ghosts = [];
    } else {
      this.#ghosts = this.#ghosts.filter((g) => g.room !== room);
    }
  }

  #expire(e) {
    if (!this.#entries.includes(e)) return;
    // A reply may already be waiting behind this timer (a laptop waking up runs overdue timers
    // before the socket's data): give the data one turn of the event loop first.
    setTimeout(() => {
      if (!this.#entries.includes(e)) return;
      const maybeStored = e.state !== 'queued';
      this.#settle(e);
      if (maybeStored) {
        this.#ghosts.push(e);
        if (this.#ghosts.length > GHOSTS) this.#ghosts.shift();
      }
      e.reject(
        new HubError(Codes.TIMEOUT, `no ack within publishTimeout (${this.#opts.publishTimeout} ms)`, { maybeStored }),
      );
      this.pump();
    }, 0);
  }

  #settle(e) {
    clearTimeout(e.timer);
    const i = this.#entries.indexOf(e);
    if (i >= 0) this.#entries.splice(i, 1);
    if (e.ref && this.#byRef.get(e.ref) === e) this.#byRef.delete(e.ref);
  }

  #pumpLater(ms) {
    if (this.#pumpTimer) return;
    this.#pumpTimer = setTimeout(() => {
      this.#pumpTimer = null;
      this.pump();
    }, Math.max(1, ms));
  }
}
