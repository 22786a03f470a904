// Types of realtime-hub-client (the package's JavaScript is plain ES modules in src/; this file is
// its contract, and test/api.test.mjs checks that the two name the same things).

/** A message frame of a room, as the hub sent it. */
export interface MessageFrame {
  type: 'message';
  id: string;
  room: string;
  /** The client id of the connection that sent it ('api' for the server API). */
  from: string;
  user: { id: string; name?: string };
  content: string;
  /** RFC 3339. */
  timestamp: string;
  /** The hub that accepted it. */
  hub: string;
  /** The room's history position; absent on messages delivered while Redis was down. */
  epoch?: string;
  offset?: number;
  /** Sent again by a join (history or recovery), not live. */
  replayed?: true;
}

export interface BroadcastFrame {
  type: 'broadcast';
  id: string;
  from: string;
  user: { id: string; name?: string };
  content: string;
  timestamp: string;
  hub: string;
}

export interface PresenceFrame {
  type: 'presence';
  room: string;
  count: number;
  /** At most 1,000 of them; `truncated` when the room has more (`count` says how many). */
  members: Array<{ user: string; name?: string; connections: number }>;
  truncated?: boolean;
}

export interface PresenceDiffFrame {
  type: 'presence_diff';
  room: string;
  joins: Array<{ user: string; name?: string }>;
  leaves: Array<{ user: string; name?: string }>;
}

/**
 * How a re-join went (README: "Recovery"). One with `recovered: false` comes before the first
 * `message` event that follows the loss.
 */
export interface RecoveryEvent {
  /** Every message since the room's position was delivered (false: some may be lost). */
  recovered: boolean;
  /** Why not: epoch_changed, too_old, too_many, unavailable (Redis down: retrying), no_history, overflow, gap. */
  reason?: string;
  /** Messages the re-join delivered to 'message' listeners. */
  replayed: number;
  /** What made the SDK re-join: reconnect, resume, gap, epoch, retry. */
  cause: string;
  /** reason 'unavailable': the SDK asks again until the hub can answer. */
  retrying?: true;
  /** reason 'overflow' or 'gap': how many offsets were given up. */
  skipped?: number;
}

export interface JoinedEvent {
  epoch: string | null;
  offset: number | null;
  /** subscribe, reconnect, resume */
  cause: string;
}

export interface Position {
  epoch: string;
  offset: number;
}

export interface Ack {
  id: string;
  /** null when the hub keeps no history, or stored it while Redis was down. */
  offset: number | null;
}

export type State = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface StateInfo {
  /** connecting */
  attempt?: number;
  /** connected: what the welcome said */
  clientId?: string;
  hub?: string;
  instanceId?: string;
  user?: { id: string; name?: string } | null;
  /** disconnected, closed: the close code and reason (1006 when the socket gave none) */
  code?: number;
  reason?: string;
  /** disconnected: ms until the next attempt */
  delay?: number;
  /** closed by the hub for good (unauthorized, disconnected_by_server) */
  error?: HubError;
}

/** Why the token function is asked (its one argument). */
export interface TokenRequest {
  /** connect: a connection is opening; refresh: the token is due on the open one; refused: the hub closed with `code` (4001/4002). */
  cause: 'connect' | 'refresh' | 'refused';
  /** refused: the close code. */
  code?: number;
  /** refused: the hub's close reason, e.g. "auth failed: bad signature". */
  reason?: string;
}

/**
 * A JWT, or a function returning one. A function may return null: no token to give. On `connect`
 * or `refused` the client then closes for good (`unauthorized`) instead of reconnecting; on
 * `refresh` the connection simply goes on with the token it has.
 */
export type Token = string | ((request: TokenRequest) => string | null | Promise<string | null>);

export interface HubClientOptions {
  /** A JWT, or a function returning one (asked again before expiry and after a 4001/4002 close; null stops). */
  token?: Token;
  /** A WebSocket constructor: the `ws` package's in Node; the global one by default. */
  WebSocket?: unknown;
  /** The SSE fallback's EventSource constructor; the global one by default. Without one (Node 20) the stream is read with `fetch`. */
  EventSource?: unknown;
  /** The `fetch` the SSE fallback uses (POST /sse/session, /sse/send; the stream without EventSource); the global one by default. */
  fetch?: unknown;
  /** When a WebSocket fails before it opens, try the hub's SSE fallback at once (WebSocket again on the next reconnect). Default true. */
  sse?: boolean;
  /** Node's `ws` only: offer permessage-deflate (the hub then compresses frames of 256 bytes and more). Default false: `ws` inflates through zlib's thread pool, which held a receiver to ~6,500 messages/s; browsers always offer it and inflate natively. */
  compression?: boolean;
  /** Backoff: attempt n waits a random time in [0, min(reconnectDelayMax, reconnectDelayMin·2^n)). Default 500. */
  reconnectDelayMin?: number;
  /** Default 20000. */
  reconnectDelayMax?: number;
  /** An attempt with no welcome by then is dropped. Default 10000. */
  connectTimeout?: number;
  /** Nothing heard for this long: the SDK pings the hub. Default 20000. */
  pingInterval?: number;
  /** No frame within this after a ping: the connection is dead. Default 10000. */
  pongTimeout?: number;
  /** A publish (or presence question) not answered by then rejects with code 'timeout'. Default 15000. */
  publishTimeout?: number;
  /** Publishes waiting at most (more reject at once with 'timeout'). Default 1000. */
  maxQueued?: number;
  /** Publishes awaiting their ack at once. Default 32. */
  publishWindow?: number;
  /** A publish in doubt is sent again only after a history read this long after it was sent. Default 5000. */
  resendAfter?: number;
  /** The hub's max_message_bytes: larger publishes reject with 'too_large'. Default 65536. */
  maxMessageBytes?: number;
  /** Frames per second sent at most (the hub's rate limit is 100/s). Default 80. */
  sendRate?: number;
  /** Default 100. */
  sendBurst?: number;
  /** Messages held behind a hole per room before giving up on it. Default 5000. */
  maxHeld?: number;
  /** Message ids remembered per room to drop copies. Default 2000. */
  dedupeWindow?: number;
  /** How long a hole right behind a publish awaiting its ack may wait for it. Default 1000. */
  gapWait?: number;
}

export interface SubscribeOptions {
  /** The last N messages first (replayed), on the first join. */
  history?: number;
  /** Resume from a position kept earlier (room.position). */
  since?: Position;
}

export interface PublishOptions {
  /**
   * Default true. false: at most once — a publish whose connection dropped before its ack is never
   * sent again; it resolves if the room's history shows it stored, else rejects with `not_sent`.
   * It does not hold back the room's later publishes meanwhile.
   */
  resend?: boolean;
}

export interface ConnectionInfo {
  clientId: string;
  hub: string;
  instanceId: string;
  user: { id: string; name?: string } | null;
  /** What carries this connection: a WebSocket, or the SSE fallback. */
  transport: 'ws' | 'sse';
  /** Rooms the hub joined this connection to by itself: the personal room `user:<id>`, the token's `subs`. */
  rooms: string[];
}

export declare const DEFAULTS: Readonly<Required<Omit<HubClientOptions, 'token' | 'WebSocket' | 'EventSource' | 'fetch'>>>;

export declare const Codes: Readonly<{
  TIMEOUT: 'timeout';
  CLOSED: 'closed';
  UNSUBSCRIBED: 'unsubscribed';
  TOO_LARGE: 'too_large';
  UNKNOWN: 'unknown';
  NOT_SENT: 'not_sent';
  UNAUTHORIZED: 'unauthorized';
  DISCONNECTED_BY_SERVER: 'disconnected_by_server';
  ALREADY_SUBSCRIBED: 'already_subscribed';
  BAD_ARGUMENT: 'bad_argument';
}>;

export declare class HubError extends Error {
  constructor(code: string, message: string, extra?: object);
  /** One of Codes, or the hub's error code (forbidden, unavailable, rate_limited, …). */
  code: string;
  /** Publishes: whether the hub may have stored it (false: it certainly did not). */
  maybeStored?: boolean;
}

declare class Emitter<Events extends Record<string, (...args: any[]) => void>> {
  on<E extends keyof Events>(event: E, listener: Events[E]): this;
  off<E extends keyof Events>(event: E, listener: Events[E]): this;
  once<E extends keyof Events>(event: E, listener: Events[E]): this;
  listenerCount(event: keyof Events): number;
  removeAllListeners(): void;
}

export interface RoomEvents {
  message: (message: MessageFrame) => void;
  presence: (diff: PresenceDiffFrame) => void;
  recovery: (event: RecoveryEvent) => void;
  joined: (event: JoinedEvent) => void;
  error: (error: HubError) => void;
  [event: string]: (...args: any[]) => void;
}

export declare class Room extends Emitter<RoomEvents> {
  readonly name: string;
  /** null before the first join, or when the hub keeps no history. */
  readonly position: Position | null;
  readonly joined: boolean;
  publish(content: string, options?: PublishOptions): Promise<Ack>;
  /**
   * The room's latest `limit` messages in the hub's history that are at or before `position` (what
   * `message` events already covered, or came before the subscription), oldest first; own messages
   * included. Newer ones it meets go to `message` events as usual. Rejects with `timeout`
   * (`publishTimeout`), the hub's error code, `unsubscribed` or `closed`.
   */
  history(limit: number): Promise<MessageFrame[]>;
  presence(): Promise<PresenceFrame>;
  unsubscribe(): void;
}

export interface HubClientEvents {
  state: (state: State, info: StateInfo) => void;
  broadcast: (message: BroadcastFrame) => void;
  /**
   * A message of a room the hub joined this connection to by itself (`connection.rooms`: the
   * personal room, the token's `subs`) that the application has not subscribed to: it arrives
   * without a join, once. Subscribe to the room for offset order and recovery
   * across reconnects.
   */
  message: (message: MessageFrame) => void;
  /** The hub accepted a renewed token (its `authenticated` answer). */
  token: (event: { user: { id: string; name?: string } | null; exp: number }) => void;
  error: (error: HubError) => void;
  [event: string]: (...args: any[]) => void;
}

export declare class HubClient extends Emitter<HubClientEvents> {
  constructor(url: string, options?: HubClientOptions);
  readonly state: State;
  /** What the welcome said on the current connection; null when not connected. */
  readonly connection: ConnectionInfo | null;
  /** Starts connecting; resolves on the first welcome. */
  connect(): Promise<void>;
  subscribe(room: string, options?: SubscribeOptions): Room;
  room(name: string): Room | undefined;
  close(): void;
}
