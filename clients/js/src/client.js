// Owns: the client's connection to the hub across its whole life — connect, authenticate,
// welcome, lose it, wait (backoff), come back, refresh the token on the open socket — and the
// routing of each frame to the room, publish or question it answers. The 'state' events come from
// here. Rooms (room-session.js) and publishes (outbox.js) are told when the connection comes and
// goes; they decide what to send.

import { Backoff } from './backoff.js';
import { BoundedSet } from './bounded-set.js';
import { Emitter, emit } from './emitter.js';
import { Codes, HubError } from './errors.js';
import { Outbox } from './outbox.js';
import { Pacer } from './pacer.js';
import { RoomSession } from './room-session.js';
import { TokenSource } from './token.js';
import { SseTransport, sseAvailable } from './sse-transport.js';
import { LOCAL_CLOSE, Transport } from './transport.js';

const ROOM_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
const DEFAULT_ROOM = 'general';

/** Every option, with its default (README, "Options"). */
export const DEFAULTS = Object.freeze({
  reconnectDelayMin: 500,
  reconnectDelayMax: 20000,
  connectTimeout: 10000,
  pingInterval: 20000,
  pongTimeout: 10000,
  publishTimeout: 15000,
  maxQueued: 1000,
  publishWindow: 32,
  resendAfter: 5000,
  maxMessageBytes: 65536,
  sendRate: 80,
  sendBurst: 100,
  maxHeld: 5000,
  dedupeWindow: 2000,
  gapWait: 1000,
  sse: true,
  compression: false,
});

export class HubClient extends Emitter {
  #url;
  #opts;
  #WebSocket;
  #sseCtors;
  #tokens;
  #backoff;
  #refreshBackoff = new Backoff({ min: 1000, max: 10000 });
  #state = 'disconnected';
  #started = false;
  #closed = false;
  #gen = 0;
  #transport = null;
  #connected = false;
  #connectedAt = 0;
  #welcome = null;
  #needFreshToken = false;
  #refusal = null; // {code, reason} of the 4001/4002 close the next token request answers
  #timers = { attempt: null, retry: null, refresh: null };
  #connectWaiters = [];
  #ownIds = new BoundedSet(64);
  #broadcastIds = new BoundedSet(2000);
  // Rooms the hub joined this connection to by itself (the personal room, the token's `subs`),
  // whose messages reach the application without a subscription; ids seen, against a re-send.
  #hubRooms = new Set();
  #hubRoomIds = new BoundedSet(2000);
  #sessions = new Map();
  #pending = new Map(); // room → questions (joins, presence) awaiting answers on this connection
  #leaving = new Map(); // room → leaves sent on this connection whose `left` has not come back
  #pacer = null;
  #outbox;
  /** What the rooms see of the client (room-session.js). */
  #link;
  #onOnline = null;
  #onOffline = null;
  #via = 'ws'; // the transport of the current attempt: 'ws' or 'sse'

  /**
   * @param {string} url the hub's WebSocket URL, e.g. ws://localhost:8080/ws
   * @param {object} [options] see README "Options"
   */
  constructor(url, options = {}) {
    super();
    if (typeof url !== 'string' || !/^wss?:\/\//.test(url)) {
      throw new HubError(Codes.BAD_ARGUMENT, `the hub URL must start with ws:// or wss:// (got ${String(url)})`);
    }
    this.#url = url;
    const { token, WebSocket: ctor, EventSource, fetch, ...rest } = options;
    for (const key of Object.keys(rest)) {
      if (!(key in DEFAULTS)) throw new HubError(Codes.BAD_ARGUMENT, `unknown option "${key}"`);
    }
    this.#opts = { ...DEFAULTS, ...rest };
    this.#WebSocket = ctor ?? globalThis.WebSocket;
    if (typeof this.#WebSocket !== 'function') {
      throw new HubError(Codes.BAD_ARGUMENT, 'no WebSocket here: pass one, e.g. { WebSocket } from the "ws" package');
    }
    // The SSE fallback's means: an EventSource where there is one, else a streamed fetch.
    this.#sseCtors = {
      EventSource: EventSource ?? globalThis.EventSource,
      fetch: fetch ?? globalThis.fetch?.bind(globalThis),
    };
    this.#tokens = new TokenSource(token);
    this.#backoff = new Backoff({ min: this.#opts.reconnectDelayMin, max: this.#opts.reconnectDelayMax });
    const client = this;
    this.#outbox = new Outbox(
      {
        get connected() {
          return client.#connected;
        },
        get gen() {
          return client.#gen;
        },
        get clientId() {
          return client.#welcome?.clientId ?? null;
        },
        send: (frame) => this.#transport?.send(frame) ?? false,
        pace: () => this.#pacer?.tryTake() ?? false,
        paceWait: () => this.#pacer?.wait() ?? 0,
        joined: (room) => this.#sessions.get(room)?.joinedNow() ?? false,
        ownStored: (room, offset) => this.#sessions.get(room)?.ownStored(offset),
      },
      {
        maxQueued: this.#opts.maxQueued,
        publishTimeout: this.#opts.publishTimeout,
        resendAfter: this.#opts.resendAfter,
        window: this.#opts.publishWindow,
        maxMessageBytes: this.#opts.maxMessageBytes,
      },
    );
    this.#link = {
      get connected() {
        return client.#connected;
      },
      get gen() {
        return client.#gen;
      },
      outbox: this.#outbox,
      send: (frame) => this.#sendControl(frame),
      leave: (room) => this.#leave(room),
      expect: (room, session, kind) => this.#expect(room, session, kind),
      isOwn: (from) => typeof from === 'string' && this.#ownIds.has(from),
      forget: (session) => {
        if (this.#sessions.get(session.name) === session) this.#sessions.delete(session.name);
      },
    };
  }

  /** 'disconnected' | 'connecting' | 'connected' | 'closed' */
  get state() {
    return this.#state;
  }

  /** What the hub's welcome said on the current connection: {clientId, hub, instanceId, user}; null when not connected. */
  get connection() {
    return this.#connected ? { ...this.#welcome } : null;
  }

  /** Starts connecting (if not yet); resolves on the first welcome, rejects if the client closes first. */
  connect() {
    if (this.#closed) return Promise.reject(new HubError(Codes.CLOSED, 'the client is closed'));
    if (this.#connected) return Promise.resolve();
    const p = new Promise((resolve, reject) => this.#connectWaiters.push({ resolve, reject }));
    if (!this.#started) {
      this.#started = true;
      this.#watchNetwork();
      this.#attempt();
    }
    return p;
  }

  /**
   * Subscribes to `room`: joined now if connected, else once connected, and again after every
   * reconnect with what was missed. `history`: the last N messages first; `since`: a position kept
   * from an earlier `room.position`.
   */
  subscribe(room, options = {}) {
    if (this.#closed) throw new HubError(Codes.CLOSED, 'the client is closed');
    if (typeof room !== 'string' || !ROOM_RE.test(room)) {
      throw new HubError(Codes.BAD_ARGUMENT, `bad room name ${JSON.stringify(room)}: use 1-64 of A-Z a-z 0-9 _ . : -`);
    }
    if (this.#sessions.has(room)) throw new HubError(Codes.ALREADY_SUBSCRIBED, `already subscribed to ${room}`);
    const since = options.since;
    if (since !== undefined && since !== null) {
      if (typeof since !== 'object' || typeof since.epoch !== 'string' || !Number.isSafeInteger(since.offset) || since.offset < 0) {
        throw new HubError(Codes.BAD_ARGUMENT, 'since must be {epoch: string, offset: integer >= 0} (a room.position)');
      }
    }
    const history = options.history ?? 0;
    if (!Number.isSafeInteger(history) || history < 0) throw new HubError(Codes.BAD_ARGUMENT, 'history must be an integer >= 0');
    const session = new RoomSession(room, { history, since: since ?? undefined }, this.#link, this.#opts);
    this.#sessions.set(room, session);
    if (this.#connected) session.onConnected();
    return session.room;
  }

  /** The subscribed room of that name, or undefined. */
  room(name) {
    return this.#sessions.get(name)?.room;
  }

  /** Closes for good: the socket, every timer; pending publishes and questions reject with `closed`. */
  close() {
    this.#shutdown(new HubError(Codes.CLOSED, 'the client was closed'), { code: 1000, reason: 'closed by the application' });
  }

  // ---- connecting --------------------------------------------------------------------------------

  async #attempt() {
    this.#clearTimer('retry');
    if (globalThis.navigator?.onLine === false) {
      // The browser knows there is no network: an attempt would only fail. The `online` event (or
      // the next delay) tries again.
      this.#retry({ code: LOCAL_CLOSE, reason: 'offline' });
      return;
    }
    const gen = ++this.#gen;
    this.#setState('connecting', { attempt: this.#backoff.attempt + 1 });
    let token = null;
    if (this.#tokens.present) {
      const refusal = this.#refusal;
      const request = refusal ? { cause: 'refused', code: refusal.code, reason: refusal.reason } : { cause: 'connect' };
      try {
        token = await this.#tokens.get({ fresh: this.#needFreshToken, request });
      } catch (err) {
        if (gen !== this.#gen || this.#closed) return;
        this[emit]('error', new HubError('token', `the token function failed: ${err?.message ?? err}`));
        this.#retry({ code: LOCAL_CLOSE, reason: 'no token' });
        return;
      }
      if (gen !== this.#gen || this.#closed) return;
      if (token === null) {
        // The application has no token to give (e.g. the refusal is one a new token would not fix):
        // reconnecting without one would only be refused again.
        const why = refusal ? `the hub refused the token (${refusal.reason || refusal.code})` : 'no token';
        this.#shutdown(new HubError(Codes.UNAUTHORIZED, `the token function gave no token: ${why}`), {
          code: refusal?.code ?? LOCAL_CLOSE,
          reason: refusal?.reason ?? 'no token',
        });
        return;
      }
      this.#needFreshToken = false;
      this.#refusal = null;
    }
    this.#pacer = new Pacer({ rate: this.#opts.sendRate, burst: this.#opts.sendBurst });
    this.#open(gen, token, 'ws');
  }

  /**
   * One attempt over `via`: a WebSocket first; when it fails before it opens (a proxy that breaks
   * WebSocket) and SSE is possible, at once the SSE fallback. The next reconnect tries WebSocket
   * again. Over SSE the token goes with `POST /sse/session`, not in an `auth` frame.
   */
  #open(gen, token, via) {
    let opened = false;
    const handlers = {
      onOpen: () => {
        opened = true;
        if (gen !== this.#gen) return;
        if (token !== null && via === 'ws') this.#sendControl({ type: 'auth', token });
      },
      onFrame: (frame) => {
        if (gen === this.#gen) this.#onFrame(frame);
      },
      onClose: (info) => {
        if (gen !== this.#gen) return;
        if (via === 'ws' && !opened && !this.#closed && this.#opts.sse && sseAvailable(this.#sseCtors)) {
          this.#open(gen, token, 'sse');
          return;
        }
        this.#onClose(info);
      },
    };
    const timing = { pingInterval: this.#opts.pingInterval, pongTimeout: this.#opts.pongTimeout };
    const compression = this.#opts.compression;
    this.#via = via;
    this.#transport =
      via === 'sse'
        ? new SseTransport(this.#sseCtors, this.#url, token, handlers, timing)
        : new Transport(this.#WebSocket, this.#url, handlers, timing, { compression });
    // Each transport of an attempt gets the whole connect timeout.
    this.#clearTimer('attempt');
    this.#timers.attempt = setTimeout(() => {
      this.#transport?.close(LOCAL_CLOSE, `no welcome within ${this.#opts.connectTimeout} ms`);
    }, this.#opts.connectTimeout);
  }

  #onWelcome(frame) {
    this.#clearTimer('attempt');
    this.#transport?.startHeartbeat();
    const rooms = Array.isArray(frame.rooms) ? frame.rooms.map(String) : [];
    this.#hubRooms = new Set(rooms.filter((r) => r !== DEFAULT_ROOM));
    this.#welcome = {
      clientId: String(frame.client_id ?? ''),
      hub: String(frame.hub ?? ''),
      instanceId: String(frame.instance_id ?? ''),
      user: frame.user ?? null,
      transport: this.#via,
      rooms: [...this.#hubRooms],
    };
    this.#ownIds.add(this.#welcome.clientId);
    this.#connected = true;
    this.#connectedAt = Date.now();
    this.#pending = new Map();
    this.#leaving = new Map();
    // The rooms to join are those subscribed before the welcome: one subscribed by a listener below
    // is joined by `subscribe` itself (the client is connected by then), and must not be joined twice.
    const sessions = [...this.#sessions.values()];
    this.#setState('connected', { ...this.#welcome });
    for (const w of this.#connectWaiters.splice(0)) w.resolve();
    if (this.#state !== 'connected' || !this.#connected) return; // a listener closed us
    // Every connection starts in `general`; a client that did not ask for it leaves (no traffic,
    // not counted in its presence).
    if (rooms.includes(DEFAULT_ROOM) && !this.#sessions.has(DEFAULT_ROOM)) this.#leave(DEFAULT_ROOM);
    for (const session of sessions) if (this.#sessions.get(session.name) === session) session.onConnected();
    this.#outbox.pump();
    this.#scheduleRefresh();
  }

  #onClose(info) {
    this.#clearTimer('attempt');
    this.#clearTimer('refresh');
    this.#transport = null;
    const wasConnected = this.#connected;
    this.#connected = false;
    for (const session of this.#sessions.values()) session.onDisconnected();
    this.#outbox.connectionLost();
    if (this.#closed) return;
    // A connection that lasted is a fresh start; one that keeps dropping right after its welcome
    // (a crashing hub) keeps growing the delay instead of hammering it.
    if (wasConnected && Date.now() - this.#connectedAt >= this.#opts.reconnectDelayMax) this.#backoff.reset();
    const { code } = info;
    if (code === 4001 || code === 4002) {
      if (!this.#tokens.renewable) {
        const why = this.#tokens.present ? 'the hub refused the token and it cannot be renewed (a fixed string)' : 'the hub requires a token';
        this.#shutdown(new HubError(Codes.UNAUTHORIZED, `${why}: ${info.reason || code}`), info);
        return;
      }
      this.#tokens.invalidate();
      this.#needFreshToken = true;
      this.#refusal = { code, reason: info.reason || '' };
    } else if (code === 4003) {
      this.#shutdown(new HubError(Codes.DISCONNECTED_BY_SERVER, `disconnected by the server: ${info.reason || code}`), info);
      return;
    }
    this.#retry(info);
  }

  #retry(info) {
    const delay = this.#backoff.next();
    this.#setState('disconnected', { code: info.code, reason: info.reason, delay });
    this.#clearTimer('retry');
    this.#timers.retry = setTimeout(() => {
      this.#timers.retry = null;
      this.#attempt();
    }, delay);
  }

  #shutdown(err, info) {
    if (this.#closed) return;
    this.#closed = true;
    for (const k of Object.keys(this.#timers)) this.#clearTimer(k);
    const transport = this.#transport;
    this.#transport = null;
    this.#connected = false;
    this.#gen++; // whatever the old socket still says is not for us
    transport?.close(1000, 'client closed');
    if (this.#onOnline) globalThis.removeEventListener?.('online', this.#onOnline);
    if (this.#onOffline) globalThis.removeEventListener?.('offline', this.#onOffline);
    this.#outbox.failAll(null, err.code, err.message);
    for (const session of this.#sessions.values()) session.shutdown(err);
    for (const w of this.#connectWaiters.splice(0)) w.reject(err);
    if (err.code !== Codes.CLOSED) this[emit]('error', err);
    this.#setState('closed', { code: info.code, reason: info.reason, error: err.code === Codes.CLOSED ? undefined : err });
  }

  // A browser back online should not sit out a long backoff. A browser gone offline drops the
  // connection at once: a socket may look open for minutes before TCP notices (Chromium's offline
  // mode even keeps it working), and the sooner it is dropped, the sooner `online` recovers it.
  #watchNetwork() {
    if (typeof globalThis.addEventListener !== 'function' || typeof globalThis.navigator?.onLine !== 'boolean') return;
    this.#onOnline = () => {
      if (this.#state === 'disconnected' && this.#timers.retry) this.#attempt();
    };
    this.#onOffline = () => {
      this.#transport?.close(LOCAL_CLOSE, 'offline');
    };
    globalThis.addEventListener('online', this.#onOnline);
    globalThis.addEventListener('offline', this.#onOffline);
  }

  // ---- the token on an open socket ---------------------------------------------------------------

  #scheduleRefresh(hubExp = undefined) {
    this.#clearTimer('refresh');
    if (!this.#tokens.renewable || !this.#connected) return;
    const due = this.#tokens.dueAt(hubExp);
    if (due === null) return;
    const gen = this.#gen;
    this.#timers.refresh = setTimeout(() => this.#refresh(gen), clampDelay(due - Date.now()));
  }

  async #refresh(gen) {
    this.#timers.refresh = null;
    if (gen !== this.#gen || !this.#connected) return;
    let token;
    try {
      token = await this.#tokens.get({ fresh: true, request: { cause: 'refresh' } });
    } catch (err) {
      if (gen !== this.#gen || !this.#connected) return;
      this[emit]('error', new HubError('token', `the token function failed: ${err?.message ?? err}`));
      // Keep trying until the hub gives up on the old token (4002); the reconnect then asks again.
      this.#timers.refresh = setTimeout(() => this.#refresh(gen), this.#refreshBackoff.next() + 100);
      return;
    }
    // The connection that asked may be gone: its successor has its own refresh.
    if (gen !== this.#gen || !this.#connected) return;
    this.#refreshBackoff.reset();
    // null: no renewal. The connection lasts until the hub closes it (4002); the function is then
    // asked again, as `refused`.
    if (token === null) return;
    this.#sendControl({ type: 'auth', token });
    // Re-armed now rather than on the answer, so a lost `authenticated` does not stop renewals.
    this.#scheduleRefresh();
  }

  // ---- frames ------------------------------------------------------------------------------------

  #sendControl(frame) {
    if (!this.#transport) return false;
    this.#pacer?.force();
    return this.#transport.send(frame);
  }

  // The `left` that answers a leave of ours is not news; one nobody asked for is (room-session.js).
  #leave(room) {
    if (!this.#sendControl({ type: 'leave', room })) return;
    this.#leaving.set(room, (this.#leaving.get(room) ?? 0) + 1);
  }

  #expect(room, session, kind) {
    let list = this.#pending.get(room);
    if (!list) this.#pending.set(room, (list = []));
    list.push({ session, kind });
  }

  // The hub answers one connection's joins and presence questions in the order asked.
  #answer(room, kind, frame) {
    const list = this.#pending.get(room);
    const q = list?.shift();
    if (list && list.length === 0) this.#pending.delete(room);
    if (q) q.session.onAnswer(q.kind, kind, frame);
  }

  #onFrame(frame) {
    switch (frame.type) {
      case 'message': {
        const session = this.#sessions.get(frame.room);
        if (session) {
          session.onMessage(frame);
        } else if (this.#hubRooms.has(frame.room) && !this.#hubRoomIds.has(frame.id)) {
          // A notification to the personal room (or a `subs` room) the application did not
          // subscribe to: it still gets it, once, with no join sent.
          this.#hubRoomIds.add(frame.id);
          this[emit]('message', frame);
        }
        return;
      }
      case 'welcome':
        if (!this.#connected) this.#onWelcome(frame);
        return;
      case 'joined':
      case 'presence':
        this.#answer(frame.room, frame.type, frame);
        return;
      case 'ack':
        this.#outbox.onAck(frame);
        return;
      case 'presence_diff': {
        const session = this.#sessions.get(frame.room);
        if (session && !session.closed) session.room[emit]('presence', frame);
        return;
      }
      case 'broadcast':
        if (typeof frame.id === 'string') {
          if (this.#broadcastIds.has(frame.id)) return;
          this.#broadcastIds.add(frame.id);
        }
        this[emit]('broadcast', frame);
        return;
      case 'authenticated':
        this[emit]('token', { user: frame.user ?? null, exp: frame.exp });
        this.#scheduleRefresh(Number(frame.exp));
        return;
      case 'left': {
        const asked = this.#leaving.get(frame.room) ?? 0;
        if (asked > 0) {
          if (asked === 1) this.#leaving.delete(frame.room);
          else this.#leaving.set(frame.room, asked - 1);
          return;
        }
        this.#sessions.get(frame.room)?.onLeft();
        return;
      }
      case 'error':
        this.#onError(frame);
        return;
      default:
        // pong (any frame already counted as a sign of life), and frame types added later.
        return;
    }
  }

  #onError(frame) {
    if (typeof frame.ref === 'string') {
      this.#outbox.onError(frame);
      return;
    }
    if (typeof frame.room === 'string') {
      this.#answer(frame.room, 'error', frame);
      return;
    }
    if (frame.code === 'rate_limited') this.#outbox.rateLimited();
    this[emit]('error', new HubError(String(frame.code || 'error'), String(frame.message || 'error from the hub')));
  }

  #setState(state, info) {
    if (this.#state === state && state !== 'disconnected') return;
    this.#state = state;
    this[emit]('state', state, info);
  }

  #clearTimer(name) {
    clearTimeout(this.#timers[name]);
    this.#timers[name] = null;
  }
}

// setTimeout takes at most 2^31-1 ms (about 24.8 days); longer delays fire at once.
function clampDelay(ms) {
  return Math.min(Math.max(0, ms), 2147483647);
}
