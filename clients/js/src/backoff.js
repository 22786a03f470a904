// Owns: the reconnect delay. Exponential backoff with full jitter: attempt n (from 0) waits a
// uniformly random time in [0, min(max, min·2^n)). Full jitter (rather than a fixed floor plus a
// little noise) is what spreads thousands of clients of a hub that died at one instant over the
// whole window instead of bringing them back in waves.

export class Backoff {
  /**
   * @param {{min: number, max: number, random?: () => number}} options delays in ms; `random`
   *   is Math.random unless a test needs a fixed sequence
   */
  constructor({ min, max, random = Math.random }) {
    if (!(min > 0) || !(max >= min)) {
      throw new RangeError(`reconnect delays need 0 < min <= max (got min ${min}, max ${max})`);
    }
    this.min = min;
    this.max = max;
    this.random = random;
    this.attempt = 0;
  }

  /** The upper bound of attempt `n`'s delay. */
  cap(n) {
    // 2^n overflows nothing before the min() caps it; n is bounded anyway.
    return Math.min(this.max, this.min * 2 ** Math.min(n, 52));
  }

  /** The delay before the next attempt, in ms; each call counts one more failed attempt. */
  next() {
    const delay = this.random() * this.cap(this.attempt);
    if (this.attempt < 64) this.attempt += 1;
    return delay;
  }

  reset() {
    this.attempt = 0;
  }
}
