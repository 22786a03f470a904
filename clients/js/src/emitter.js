// Owns: event listeners of the client and of its rooms. A listener that throws does not stop the
// other listeners, nor the SDK's own bookkeeping (which is always done before listeners run).
// Only the SDK emits: the method is keyed by a symbol the application does not see.

export const emit = Symbol('emit');

export class Emitter {
  #listeners = new Map();

  /** Adds `fn` for `event`; returns this (chainable). */
  on(event, fn) {
    if (typeof fn !== 'function') throw new TypeError(`listener for "${event}" must be a function`);
    // Lists are replaced, never changed in place: an emit going through one is not disturbed by
    // listeners added or removed meanwhile, and needs no copy per event.
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), fn]);
    return this;
  }

  /** Removes `fn` (every time it was added) for `event`. */
  off(event, fn) {
    const list = this.#listeners.get(event);
    if (!list) return this;
    const kept = list.filter((f) => f !== fn && f.wrapped !== fn);
    if (kept.length) this.#listeners.set(event, kept);
    else this.#listeners.delete(event);
    return this;
  }

  /** Like `on`, for the next event only. */
  once(event, fn) {
    const once = (...args) => {
      this.off(event, once);
      fn(...args);
    };
    once.wrapped = fn;
    return this.on(event, once);
  }

  listenerCount(event) {
    return this.#listeners.get(event)?.length ?? 0;
  }

  [emit](event, ...args) {
    const list = this.#listeners.get(event);
    if (!list) return;
    for (const fn of list) {
      try {
        fn(...args);
      } catch (err) {
        reportListenerError(event, err);
      }
    }
  }

  removeAllListeners() {
    this.#listeners.clear();
  }
}

function reportListenerError(event, err) {
  // The application's bug, not the SDK's: shown where the platform shows uncaught errors,
  // without unwinding through (and breaking) the SDK's state machine.
  if (typeof globalThis.reportError === 'function') globalThis.reportError(err);
  else console.error(`realtime-hub-client: a "${event}" listener threw`, err);
}
