// Owns: one subscribed room on the wire — which join to send on each connection (the first one,
// or `since` the room's position), what the answers mean, when to re-join on the same connection
// (a hole in the offsets, a new epoch, Redis back after `unavailable`, a publish in doubt to check),
// the `recovery` events that say how each re-join went, the room's presence questions, and its
// history questions (`room.history(n)`: a join with `history` on a room already joined, whose replay
// goes to the question, not to the stream). One join at a time per room: the hub answers a room's
// joins in order, so the replays before a `joined` belong to the one join in flight. The order of
// messages is room-stream.js's; publishes are outbox.js's.

import { Backoff } from './backoff.js';
import { emit } from './emitter.js';
import { Codes, HubError } from './errors.js';
import { Room } from './room.js';
import { RoomStream, hasOffset } from './room-stream.js';

/** Causes of a `since` re-join that the application hears about even when it recovered. */
const REPORTED = new Set(['reconnect', 'resume', 'gap', 'epoch', 'retry']);

export class RoomSession {
  /**
   * @param {string} name
   * @param {{history?: number, since?: {epoch: string, offset: number}}} subscribeOpts
   * @param {object} link the client's side: `connected`, `gen`, `send(frame)`, `leave(room)`,
   *   `expect(room, session, kind)`, `isOwn(clientId)`, `outbox`, `forget(session)`
   * @param {object} opts the client's options
   */
  constructor(name, subscribeOpts, link, opts) {
    this.name = name;
    this.link = link;
    this.opts = opts;
    this.history = Math.max(0, subscribeOpts.history ?? 0) | 0;
    this.room = new Room(this);
    this.stream = new RoomStream({
      maxHeld: opts.maxHeld,
      dedupe: opts.dedupeWindow,
      deliver: (frame) => this.#deliver(frame),
    });
    const since = subscribeOpts.since;
    if (since) this.stream.setPosition(since.epoch, since.offset);
    this.resumed = !!since;
    this.everJoined = false;
    this.failed = false;
    this.closed = false;
    /** Why the room ended: unsubscribed, or the client closed (then its code). */
    this.ended = null;
    this.joinedGen = -1;
    this.joining = null; // the join in flight: {kind, cause, sentAt}
    this.want = null; // a re-join asked for while another was in flight
    this.holeRetries = 0;
    this.retry = new Backoff({ min: 1000, max: 10000 });
    this.timers = { gap: null, probe: null, retry: null };
    this.presenceWaiters = [];
    this.historyWaiters = []; // {limit, resolve, reject, sentGen, frames, timer}, asked in order
    this.fetching = null; // the history question in flight on this connection
  }

  joinedNow() {
    return !this.closed && this.link.connected && this.joinedGen === this.link.gen;
  }

  // ---- the connection --------------------------------------------------------------------------

  onConnected() {
    this.joinedGen = -1;
    this.joining = null;
    this.fetching = null;
    this.want = null;
    if (this.closed || this.failed) return;
    if (this.stream.position) this.#sendJoin('since', this.everJoined ? 'reconnect' : 'resume');
    else if (this.everJoined) this.#sendJoin('plain', 'reconnect');
    else this.#sendJoin('first', 'subscribe');
  }

  onDisconnected() {
    this.joinedGen = -1;
    this.joining = null;
    this.fetching = null;
    this.want = null;
    this.#clearTimers();
  }

  // ---- joins -------------------------------------------------------------------------------------

  #sendJoin(kind, cause) {
    const frame = { type: 'join', room: this.name };
    if (kind === 'since') frame.since = { ...this.stream.position };
    if (kind === 'first' && this.history > 0) frame.history = this.history;
    this.joining = { kind, cause, sentAt: Date.now(), replayed: 0 };
    this.link.expect(this.name, this, 'join');
    this.link.send(frame);
  }

  /** A `since` re-join on the current connection (once the join in flight, if any, is answered). */
  requestRejoin(cause) {
    if (this.closed || this.failed || !this.joinedNow() || !this.stream.position) return;
    if (this.joining || this.fetching) {
      this.want ??= cause;
      return;
    }
    this.#sendJoin('since', cause);
  }

  /** An answer the client matched to a question of ours (answers come in question order). */
  onAnswer(asked, kind, frame) {
    if (this.closed) return;
    if (asked === 'join') {
      if (kind === 'joined') this.#onJoined(frame);
      else if (kind === 'error') this.#onJoinError(frame);
    } else if (asked === 'presence') {
      this.#onPresenceAnswer(kind, frame);
    } else if (asked === 'history') {
      this.#onHistoryAnswer(kind, frame);
    }
  }

  #onJoined(frame) {
    const j = this.joining;
    if (!j) return;
    this.joining = null;
    const newlyJoined = this.joinedGen !== this.link.gen;
    this.joinedGen = this.link.gen;
    const epoch = typeof frame.epoch === 'string' ? frame.epoch : null;
    const offset = Number.isSafeInteger(frame.offset) ? frame.offset : null;

    if (j.kind === 'first' || j.kind === 'plain') {
      // A loss is told before the messages after it (the application marks where the hole is).
      if (j.kind === 'plain') {
        this.#recovery({ recovered: false, reason: 'no_history', replayed: 0, cause: j.cause });
        this.link.outbox.afterRead(this.name, { complete: false, lost: true });
      }
      this.#result(this.stream.start(epoch, offset));
    } else if (frame.recovered === true) {
      this.retry.reset();
      const hole = this.stream.recovered(epoch, offset);
      if (REPORTED.has(j.cause)) this.#recovery({ recovered: true, replayed: j.replayed, cause: j.cause });
      const probeAt = this.link.outbox.afterRead(this.name, { complete: true, readAt: j.sentAt, lost: false });
      if (probeAt !== null) this.#probeAt(probeAt);
      if (hole) {
        // The replay said it was whole but a hole remains: ask again, but not for ever.
        if (++this.holeRetries > 2) this.#giveUp('gap');
        else this.want ??= 'gap';
      } else {
        this.holeRetries = 0;
      }
    } else if (frame.recovered === false && (frame.reason === 'unavailable' || epoch === null)) {
      // Redis is down behind the hub: nothing is lost yet. Live messages flow; ask again later.
      this.#recovery({ recovered: false, reason: String(frame.reason || 'unavailable'), replayed: 0, cause: j.cause, retrying: true });
      clearTimeout(this.timers.retry);
      this.timers.retry = setTimeout(() => {
        this.timers.retry = null;
        this.requestRejoin('retry');
      }, this.retry.next() + 250);
    } else if (frame.recovered === false) {
      this.retry.reset();
      const reason = String(frame.reason || 'unknown');
      if (reason === 'epoch_changed' && j.cause !== 'epoch-start' && epoch !== this.stream.epoch) {
        // The room's history was reset (Redis restarted empty, expiry): what came after our
        // position in the old epoch is gone. The new epoch is read from its start, so whatever it
        // already holds (e.g. messages stored after the restart) is not lost as well.
        this.#recovery({ recovered: false, reason, replayed: j.replayed, cause: j.cause });
        this.link.outbox.markUnknowable(this.name);
        if (this.want === 'epoch') this.want = null; // this is the re-join it asked for
        this.#result(this.stream.jump(epoch, 0));
        this.#sendJoin('since', 'epoch-start');
      } else {
        this.#recovery({ recovered: false, reason, replayed: j.replayed, cause: j.cause === 'epoch-start' ? 'epoch' : j.cause });
        this.link.outbox.afterRead(this.name, { complete: false, lost: true });
        this.#result(this.stream.jump(epoch, offset));
      }
    } else {
      // A since join answered without `recovered`: a hub keeping no history.
      this.#recovery({ recovered: false, reason: 'no_history', replayed: 0, cause: j.cause });
      this.link.outbox.afterRead(this.name, { complete: false, lost: true });
      this.#result(this.stream.start(epoch, offset));
    }

    if (newlyJoined && !this.closed) {
      this.everJoined = true;
      this.room[emit]('joined', { epoch: this.stream.epoch, offset: this.stream.offset, cause: j.cause });
      this.#sendPresence();
    }
    this.link.outbox.pump();
    this.#next();
  }

  // After an answer: the re-join asked for meanwhile, else a hole to fill; then a history question.
  #next() {
    if (this.joining || this.fetching || this.closed) return;
    if (this.want) {
      const cause = this.want;
      this.want = null;
      this.requestRejoin(cause);
    } else if (this.stream.hasGap) {
      this.#scheduleGap();
    }
    this.#sendHistory();
  }

  #onJoinError(frame) {
    this.joining = null;
    const err = new HubError(String(frame.code || 'error'), String(frame.message || 'join refused'));
    // Refused (forbidden, bad room, too many rooms): asking again on every reconnect would not help.
    this.failed = true;
    this.link.outbox.failAll(this.name, err.code, err.message);
    this.#failPresence(err);
    this.#failHistory(err);
    this.room[emit]('error', err);
  }

  /** The hub took the connection out of the room unasked (a refreshed token no longer allows it). */
  onLeft() {
    if (this.closed) return;
    this.joinedGen = -1;
    this.failed = true;
    const err = new HubError('forbidden', `the hub took this client out of room ${this.name} (its token no longer allows it)`);
    this.link.outbox.failAll(this.name, err.code, err.message);
    this.#failPresence(err);
    this.#failHistory(err);
    this.room[emit]('error', err);
  }

  // ---- messages ----------------------------------------------------------------------------------

  onMessage(frame) {
    if (this.closed) return;
    if (this.fetching && frame.replayed === true && this.#older(frame)) {
      // The history question's replay, of what the stream already has: the question's answer.
      this.fetching.frames.push(frame);
      return;
    }
    // Anything newer (a replayed message the connection has not had live yet may be its only copy)
    // goes to the stream, as any message.
    this.#result(this.stream.receive(frame));
  }

  #older(frame) {
    return hasOffset(frame) && frame.epoch === this.stream.epoch && frame.offset <= this.stream.offset;
  }

  /** Our own message at `offset` was acked. */
  ownStored(offset) {
    this.stream.ownStored(offset);
    if (!this.stream.hasGap) {
      clearTimeout(this.timers.gap);
      this.timers.gap = null;
    }
  }

  // Called by the stream, in order, once per message.
  #deliver(frame) {
    if (this.link.isOwn(frame.from)) {
      // The hub never sends a client its own messages live; a replay does. They settle publishes
      // in doubt, and are not the application's `message` events (as on a connection that never broke).
      this.link.outbox.matchStored(this.name, frame);
      return;
    }
    if (this.joining && frame.replayed === true) this.joining.replayed += 1;
    this.room[emit]('message', frame);
  }

  #result(r) {
    if (r === 'gap') this.#scheduleGap();
    else if (r === 'epoch') this.requestRejoin('epoch');
    else if (r === 'overflow') this.#giveUp('overflow');
  }

  // A hole right behind an ack we wait for is most likely our own message: its ack fills it.
  #scheduleGap() {
    if (this.timers.gap || this.joining || !this.joinedNow()) return;
    const wait = this.link.outbox.awaitingAck(this.name) ? this.opts.gapWait : 0;
    this.timers.gap = setTimeout(() => {
      this.timers.gap = null;
      if (this.stream.hasGap) this.requestRejoin('gap');
    }, wait);
  }

  // Told first, then what waited behind the hole goes out: a `recovery` with `recovered: false`
  // always comes before the first message after the loss it reports.
  #giveUp(reason) {
    this.holeRetries = 0;
    this.#recovery({ recovered: false, reason, replayed: 0, cause: 'gap', skipped: this.stream.skippable });
    this.stream.skipHoles();
  }

  #probeAt(at) {
    clearTimeout(this.timers.probe);
    this.timers.probe = setTimeout(() => {
      this.timers.probe = null;
      if (this.link.outbox.inDoubt(this.name)) this.requestRejoin('probe');
    }, Math.max(0, at - Date.now()));
  }

  #recovery(event) {
    if (!this.closed) this.room[emit]('recovery', event);
  }

  // ---- publish and presence ----------------------------------------------------------------------

  publish(content, options = undefined) {
    if (this.closed) return Promise.reject(new HubError(this.ended.code, this.ended.message, { maybeStored: false }));
    if (this.failed) return Promise.reject(new HubError('forbidden', `room ${this.name} could not be joined`, { maybeStored: false }));
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      return Promise.reject(new HubError(Codes.BAD_ARGUMENT, 'publish options must be an object', { maybeStored: false }));
    }
    return this.link.outbox.publish(this.name, content, options);
  }

  fetchHistory(limit) {
    if (this.closed) return Promise.reject(new HubError(this.ended.code, this.ended.message));
    if (this.failed) return Promise.reject(new HubError('forbidden', `room ${this.name} could not be joined`));
    if (!Number.isSafeInteger(limit) || limit < 1) {
      return Promise.reject(new HubError(Codes.BAD_ARGUMENT, 'history needs a limit: an integer >= 1'));
    }
    return new Promise((resolve, reject) => {
      const w = { limit, resolve, reject, sentGen: -1, frames: [], timer: null };
      w.timer = setTimeout(() => {
        // Given up on; if already asked, its answer still ends the question in flight (#onHistoryAnswer).
        this.historyWaiters = this.historyWaiters.filter((x) => x !== w);
        reject(new HubError(Codes.TIMEOUT, `no history answer within ${this.opts.publishTimeout} ms`));
      }, this.opts.publishTimeout);
      this.historyWaiters.push(w);
      this.#sendHistory();
    });
  }

  // The first question not yet asked on this connection, once no join is in flight (their replays
  // could not be told apart).
  #sendHistory() {
    if (this.joining || this.fetching || !this.joinedNow()) return;
    const gen = this.link.gen;
    const w = this.historyWaiters.find((x) => x.sentGen !== gen);
    if (!w) return;
    w.sentGen = gen;
    w.frames = [];
    this.fetching = w;
    this.link.expect(this.name, this, 'history');
    this.link.send({ type: 'join', room: this.name, history: w.limit });
  }

  #onHistoryAnswer(kind, frame) {
    const w = this.fetching;
    this.fetching = null;
    if (w && this.historyWaiters.includes(w)) {
      this.historyWaiters = this.historyWaiters.filter((x) => x !== w);
      clearTimeout(w.timer);
      if (kind === 'joined') w.resolve(w.frames.sort((a, b) => a.offset - b.offset));
      else w.reject(new HubError(String(frame.code || 'error'), String(frame.message || 'history refused')));
    }
    this.#next();
  }

  #failHistory(err) {
    for (const w of this.historyWaiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.historyWaiters = [];
    this.fetching = null;
  }

  presence() {
    if (this.closed) return Promise.reject(new HubError(this.ended.code, this.ended.message));
    if (this.failed) return Promise.reject(new HubError('forbidden', `room ${this.name} could not be joined`));
    return new Promise((resolve, reject) => {
      const w = { resolve, reject, sentGen: -1, timer: null };
      w.timer = setTimeout(() => {
        this.presenceWaiters = this.presenceWaiters.filter((x) => x !== w);
        reject(new HubError(Codes.TIMEOUT, `no presence answer within ${this.opts.publishTimeout} ms`));
      }, this.opts.publishTimeout);
      this.presenceWaiters.push(w);
      this.#sendPresence();
    });
  }

  // Asked on the connection the room is joined on; asked again on the next one if it dropped.
  #sendPresence() {
    if (!this.joinedNow()) return;
    const gen = this.link.gen;
    for (const w of this.presenceWaiters) {
      if (w.sentGen === gen) continue;
      w.sentGen = gen;
      this.link.expect(this.name, this, 'presence');
      this.link.send({ type: 'presence', room: this.name });
    }
  }

  #onPresenceAnswer(kind, frame) {
    const gen = this.link.gen;
    const w = this.presenceWaiters.find((x) => x.sentGen === gen);
    if (!w) return;
    this.presenceWaiters = this.presenceWaiters.filter((x) => x !== w);
    clearTimeout(w.timer);
    if (kind === 'presence') w.resolve(frame);
    else w.reject(new HubError(String(frame.code || 'error'), String(frame.message || 'presence refused')));
  }

  #failPresence(err) {
    for (const w of this.presenceWaiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.presenceWaiters = [];
  }

  // ---- the end -----------------------------------------------------------------------------------

  unsubscribe() {
    if (this.closed) return;
    const wasIn = this.joinedNow() || (this.joining && this.link.connected);
    this.closed = true;
    this.ended = { code: Codes.UNSUBSCRIBED, message: `room ${this.name} is unsubscribed` };
    this.stream.stopped = true;
    this.#clearTimers();
    if (wasIn) this.link.leave(this.name);
    this.#failPresence(new HubError(Codes.UNSUBSCRIBED, `room ${this.name} is unsubscribed`));
    this.#failHistory(new HubError(Codes.UNSUBSCRIBED, `room ${this.name} is unsubscribed`));
    this.link.outbox.failAll(this.name, Codes.UNSUBSCRIBED, `room ${this.name} is unsubscribed`);
    this.link.forget(this);
  }

  /** The client closed: like unsubscribing, without a leave (the socket is going). */
  shutdown(err) {
    if (this.closed) return;
    this.closed = true;
    this.ended = { code: err.code, message: err.message };
    this.stream.stopped = true;
    this.#clearTimers();
    this.#failPresence(err);
    this.#failHistory(err);
  }

  #clearTimers() {
    for (const k of Object.keys(this.timers)) {
      clearTimeout(this.timers[k]);
      this.timers[k] = null;
    }
  }
}
