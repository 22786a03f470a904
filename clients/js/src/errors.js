// Owns: the one error type the SDK rejects promises with and emits, and the codes it adds to the
// hub's own (`forbidden`, `unavailable`, `bad_room`, … pass through unchanged).

/** Codes the SDK itself gives (the hub's error codes are passed through as they are). */
export const Codes = Object.freeze({
  /** A publish waited longer than `publishTimeout`, or found its queue full. */
  TIMEOUT: 'timeout',
  /** `hub.close()` was called, or the hub refused the client for good. */
  CLOSED: 'closed',
  /** The room was unsubscribed before the publish or question was answered. */
  UNSUBSCRIBED: 'unsubscribed',
  /** The frame is larger than `maxMessageBytes`: the hub would close the connection (1009). */
  TOO_LARGE: 'too_large',
  /**
   * A publish was sent, its connection was lost before the ack, and the room's history could no
   * longer tell whether it was stored (it was reset or trimmed meanwhile). It is not sent again.
   */
  UNKNOWN: 'unknown',
  /**
   * A publish made with `{ resend: false }` lost its connection before the ack, and the room's
   * history shows it was not stored: the SDK does not send it again (the application may).
   */
  NOT_SENT: 'not_sent',
  /**
   * The hub refused the token and it cannot be renewed (4001/4002 with a fixed string), or the token
   * function returned null: the client closes rather than reconnect with no usable token.
   */
  UNAUTHORIZED: 'unauthorized',
  DISCONNECTED_BY_SERVER: 'disconnected_by_server',
  /** A room was subscribed twice on one client. */
  ALREADY_SUBSCRIBED: 'already_subscribed',
  /** Bad arguments (a room name, empty content): nothing was sent. */
  BAD_ARGUMENT: 'bad_argument',
});

export class HubError extends Error {
  /**
   * @param {string} code one of {@link Codes} or a hub error code
   * @param {string} message
   * @param {object} [extra] e.g. `{ maybeStored: true }`
   */
  constructor(code, message, extra = undefined) {
    super(message);
    this.name = 'HubError';
    this.code = code;
    if (extra) Object.assign(this, extra);
  }
}
