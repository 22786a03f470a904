// Owns: the order of one room's messages, and the position (epoch, offset) a re-join recovers from.
// Pure bookkeeping, no I/O: every message frame goes in (live or replayed, in whatever order the
// network brought it), and comes out to `deliver` once, in offset order.
//
// The position is the highest offset up to which every message is accounted for: delivered,
// dropped as a copy, ours (an ack said so), or declared lost by a recovery that failed. A frame
// past the next offset waits here (bounded) until the hole before it is filled, by a late ack or
// by a `since` re-join's replay; a frame of another epoch waits for the re-join that explains it.
// Messages without offset (the hub delivered them while Redis was down) go out at once and are
// remembered by id, so their later copies with an offset are dropped.

import { BoundedSet } from './bounded-set.js';

/** A placeholder at an offset that holds our own message: nothing to deliver there. */
const OWN = Symbol('own');

const byOffset = (a, b) => a.offset - b.offset;

export function hasOffset(frame) {
  return typeof frame.epoch === 'string' && frame.epoch !== '' && Number.isSafeInteger(frame.offset) && frame.offset >= 0;
}

export class RoomStream {
  /**
   * @param {{maxHeld: number, dedupe: number, deliver: (frame: object) => void}} options
   *   `maxHeld`: frames waiting for a hole before the room gives up on it; `dedupe`: message ids
   *   remembered; `deliver`: called once per message, in order
   */
  constructor({ maxHeld, dedupe, deliver }) {
    this.maxHeld = maxHeld;
    this.deliverTo = deliver;
    this.epoch = null;
    this.offset = null;
    /** offset → frame (or OWN), all of `epoch` and past `offset + 1`; before the first position, anything. */
    this.held = new Map();
    /** Frames of an epoch other than `epoch`, waiting for the re-join that says what happened. */
    this.foreign = [];
    this.seen = new BoundedSet(dedupe);
    /** Set when the room is unsubscribed: nothing more goes out, even mid-batch. */
    this.stopped = false;
    /** The first join was answered (with or without a position). */
    this.started = false;
  }

  get position() {
    return this.epoch === null ? null : { epoch: this.epoch, offset: this.offset };
  }

  /** Starts from a position the application kept (e.g. across a page reload). */
  setPosition(epoch, offset) {
    this.epoch = epoch;
    this.offset = offset;
    this.started = true;
  }

  /** Whether messages are held behind a hole. */
  get hasGap() {
    return this.held.size > 0 && this.epoch !== null;
  }

  get heldCount() {
    return this.held.size + this.foreign.length;
  }

  /**
   * One message frame. Returns what the room has to do about it: null (nothing), 'gap' (a hole
   * opened or remains before held frames), 'epoch' (the room's history was reset: re-join), or
   * 'overflow' (too many frames wait: give up on the hole).
   */
  receive(frame) {
    if (this.stopped) return null;
    if (!hasOffset(frame)) {
      this.#deliver(frame);
      return null;
    }
    if (this.epoch === null) {
      if (!this.started) {
        // The first join is not answered yet: its `joined` says where the room starts.
        this.held.set(frame.offset, frame);
        return this.#full() ? 'overflow' : null;
      }
      // Joined without a position (Redis was down then): the first stored message gives one.
      this.epoch = frame.epoch;
      this.offset = frame.offset - 1;
    }
    if (frame.epoch !== this.epoch) {
      this.foreign.push(frame);
      return this.#full() ? 'overflow' : 'epoch';
    }
    if (frame.offset <= this.offset) return null; // accounted for: a copy
    if (frame.offset === this.offset + 1) {
      this.offset = frame.offset; // before the listener runs: a re-join from inside it starts after
      this.#deliver(frame);
      this.#drain();
      return this.hasGap ? 'gap' : null;
    }
    // A frame wins over a placeholder: which messages are ours is decided when they go out.
    this.held.set(frame.offset, frame);
    return this.#full() ? 'overflow' : 'gap';
  }

  /**
   * Our own message was stored at `offset` (its ack; acks carry no epoch: the room's current one).
   * The hub never sends it back to us, so without this every own message would look like a hole.
   */
  ownStored(offset) {
    if (this.stopped || this.epoch === null || !Number.isSafeInteger(offset) || offset <= this.offset) return;
    if (offset === this.offset + 1) {
      this.offset = offset;
      this.#drain();
    } else if (!this.held.has(offset)) {
      this.held.set(offset, OWN);
    }
  }

  /**
   * The first join's answer: the room starts at (epoch, offset). Of what arrived meanwhile, what the
   * join replayed is delivered in order; live frames at or before `offset` were said before the
   * subscription (a room the connection was already in); later ones continue from there.
   * A hub without history answers no epoch: the room then has no position.
   */
  start(epoch, offset) {
    const frames = [...this.held.values()].filter((f) => f !== OWN);
    this.held.clear();
    this.foreign = [];
    this.started = true;
    if (typeof epoch !== 'string' || !Number.isSafeInteger(offset)) {
      for (const f of frames.sort(byOffset)) this.#deliver(f);
      return null;
    }
    this.epoch = epoch;
    this.offset = offset;
    let result = null;
    for (const f of frames.filter((f) => f.epoch === epoch).sort(byOffset)) {
      if (f.offset <= offset) {
        if (f.replayed === true) this.#deliver(f);
      } else {
        result = this.receive(f) ?? result;
      }
    }
    return result;
  }

  /**
   * A `since` re-join recovered (its replay came through `receive`). Returns true when a hole still
   * lies at or before `offset` (the replay did not cover what it said it did).
   */
  recovered(epoch, offset) {
    if (epoch !== this.epoch || !Number.isSafeInteger(offset)) return false;
    return this.offset < offset;
  }

  /**
   * Recovery failed: what lies between the position and (epoch, offset) is lost. Frames in hand are
   * delivered first, in offset order (nothing else of an epoch that ended can come), then the room
   * continues from (epoch, offset) — or from `offset` of the new epoch, whose frames in hand follow.
   */
  jump(epoch, offset) {
    const mine = [...this.held.entries()].sort((a, b) => a[0] - b[0]);
    this.held.clear();
    const sameEpoch = epoch === this.epoch;
    for (const [at, f] of mine) {
      if (this.stopped) return null;
      if (sameEpoch && at > offset) {
        this.held.set(at, f); // past the jump: ordinary held frames
        continue;
      }
      this.offset = at;
      if (f !== OWN) this.#deliver(f);
    }
    if (sameEpoch) {
      this.offset = Math.max(this.offset, offset);
      this.#drain();
      return this.hasGap ? 'gap' : null;
    }
    const next = this.foreign.filter((f) => f.epoch === epoch).sort(byOffset);
    this.foreign = [];
    this.epoch = epoch;
    this.offset = offset;
    let result = null;
    for (const f of next) result = this.receive(f) ?? result;
    return result;
  }

  /**
   * Gives up on every hole (too much waits behind it): what is held goes out in offset order, and
   * frames of a newer epoch after it. Returns the offsets skipped.
   */
  skipHoles() {
    const skipped = this.skippable;
    if (this.epoch === null) {
      // Before the first position: no order to keep beyond the offsets themselves.
      const held = [...this.held.values()].filter((f) => f !== OWN).sort(byOffset);
      this.held.clear();
      for (const f of held) this.#deliver(f);
      return 0;
    }
    const held = [...this.held.values()].filter((f) => f !== OWN);
    const last = held.reduce((max, f) => Math.max(max, f.offset), this.offset ?? 0);
    if (this.foreign.length) {
      const epochs = this.foreign.map((f) => f.epoch);
      const newest = epochs[epochs.length - 1];
      const first = Math.min(...this.foreign.filter((f) => f.epoch === newest).map((f) => f.offset));
      this.jump(this.epoch, last);
      this.jump(newest, first - 1);
    } else {
      this.jump(this.epoch, last);
    }
    return skipped;
  }

  /** How many offsets `skipHoles` would give up now (told before the frames after them go out). */
  get skippable() {
    if (this.epoch === null) return 0;
    const held = [...this.held.values()].filter((f) => f !== OWN);
    if (!held.length) return 0;
    const last = held.reduce((max, f) => Math.max(max, f.offset), this.offset ?? 0);
    return Math.max(0, last - (this.offset ?? 0) - held.length);
  }

  #drain() {
    while (!this.stopped) {
      const next = this.held.get(this.offset + 1);
      if (next === undefined) return;
      this.held.delete(this.offset + 1);
      this.offset += 1;
      if (next !== OWN) this.#deliver(next);
    }
  }

  #deliver(frame) {
    if (this.stopped) return;
    const id = frame.id;
    if (typeof id === 'string' && id !== '') {
      if (this.seen.has(id)) return;
      this.seen.add(id);
    }
    this.deliverTo(frame);
  }

  #full() {
    return this.held.size + this.foreign.length > this.maxHeld;
  }
}
