// Owns: the client's token. A fixed string, or a function (sync or async) asked again before the
// token expires and after the hub refused it (4001/4002); it is told why it is asked, and may answer
// null for "no token: stop" (the client decides what that means). Calls are shared: many callers
// during one fetch get its one result (a reconnect and a refresh never call the function twice at once).
// Also decodes a JWT's `iat`/`exp` (without verifying: that is the hub's job) to time the refresh.

export class TokenSource {
  #value; // a string or a function
  #cached = null; // {token, refreshAt} from the last call
  #pending = null;

  /** @param {string | (() => string | Promise<string>) | undefined} token */
  constructor(token) {
    if (token !== undefined && token !== null && typeof token !== 'string' && typeof token !== 'function') {
      throw new TypeError('token must be a string or a function returning one');
    }
    this.#value = token ?? null;
  }

  /** Whether the client authenticates at all. */
  get present() {
    return this.#value !== null;
  }

  /** Whether a refused token can be replaced (a function) or not (a fixed string). */
  get renewable() {
    return typeof this.#value === 'function';
  }

  /**
   * A token to send, or null when the function answered null (it has none to give: the caller
   * stops). A function is called when there is no cached token, when the cached one is due for
   * refresh, or when `fresh` is asked (after the hub refused it); `request` is passed to it as is
   * (`{cause: 'connect' | 'refresh' | 'refused', code?, reason?}`).
   */
  async get({ fresh = false, request = { cause: 'connect' } } = {}) {
    if (typeof this.#value === 'string') return this.#value;
    if (!this.#value) return null;
    if (!fresh && this.#cached && Date.now() < this.#cached.refreshAt) return this.#cached.token;
    if (!this.#pending) {
      this.#pending = (async () => {
        try {
          const token = await this.#value(request);
          if (token === null) {
            this.#cached = null;
            return null;
          }
          if (typeof token !== 'string' || token === '') {
            throw new TypeError('the token function returned no token');
          }
          this.#cached = { token, refreshAt: refreshTime(token, Date.now()) };
          return token;
        } finally {
          this.#pending = null;
        }
      })();
    }
    return this.#pending;
  }

  /** The hub refused the cached token: the next `get` asks the function again. */
  invalidate() {
    this.#cached = null;
  }

  /**
   * When the token last returned by the function is due for renewal (ms since the epoch), or null
   * (a fixed string, or a token that does not expire). `hubExp` is the `exp` the hub answered, used
   * only for tokens whose own `exp` cannot be read.
   */
  dueAt(hubExp = undefined) {
    if (!this.#cached) return null;
    if (!Number.isFinite(this.#cached.refreshAt) && Number.isFinite(hubExp)) {
      this.#cached.refreshAt = refreshTime(this.#cached.token, Date.now(), hubExp);
    }
    return Number.isFinite(this.#cached.refreshAt) ? this.#cached.refreshAt : null;
  }
}

/** Share of a token's lifetime after which it is renewed. */
const REFRESH_SHARE = 0.8;
/** Never refresh sooner than this after getting a token (a function returning stale tokens would spin). */
const MIN_REFRESH_MS = 1000;

/**
 * A token lasting L seconds (exp − iat − 1, read from the token itself so that a skewed local clock
 * does not matter; the second for `iat`'s rounding) is renewed 0.8·L after `now`, when we got it; without `iat`, after 0.8 of the time left
 * until `exp` by the local clock. `hubExp` stands in for a token whose `exp` cannot be read.
 * Infinity when nothing says the token expires.
 */
export function refreshTime(token, now, hubExp = undefined) {
  const claims = decodeClaims(token);
  const ownExp = Number(claims?.exp);
  const exp = Number.isFinite(ownExp) ? ownExp : Number(hubExp);
  if (!Number.isFinite(exp)) return Infinity;
  const iat = Number(claims?.iat);
  // `iat` is whole seconds, rounded down: the token may be up to a second older than it says.
  const lifetimeMs = Number.isFinite(ownExp) && Number.isFinite(iat) && exp > iat ? (exp - iat - 1) * 1000 : exp * 1000 - now;
  return now + Math.max(MIN_REFRESH_MS, lifetimeMs * REFRESH_SHARE);
}

/** The payload of a JWT as an object, or null when `token` is not one. */
export function decodeClaims(token) {
  if (typeof token !== 'string') return null;
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}
