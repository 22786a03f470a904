// Owns: the pace of frames sent to the hub. The hub refuses frames past its per-connection rate
// limit (100/s, bursts of 200 by default) with an error that names no frame, and closes a client
// that keeps going (1008); a reconnect that sends a full publish queue at once would trip it. A
// token bucket a little under the hub's default keeps the SDK inside it.

export class Pacer {
  /**
   * @param {{rate: number, burst: number, now?: () => number}} options frames per second, bucket
   *   size; `rate: Infinity` turns pacing off
   */
  constructor({ rate, burst, now = () => Date.now() }) {
    this.rate = rate;
    this.burst = Math.max(1, burst);
    this.now = now;
    this.tokens = this.burst;
    this.at = now();
  }

  #refill() {
    const now = this.now();
    if (this.rate === Infinity) {
      this.tokens = this.burst;
    } else {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
    }
    this.at = now;
  }

  /** Takes a token for a frame that may wait (a publish): false when there is none now. */
  tryTake() {
    this.#refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Counts a frame that cannot wait (auth, join, ping): it may leave the bucket in debt. */
  force() {
    this.#refill();
    this.tokens -= 1;
  }

  /** How long until `tryTake` can succeed, in ms. */
  wait() {
    this.#refill();
    if (this.tokens >= 1) return 0;
    return Math.ceil(((1 - this.tokens) / this.rate) * 1000);
  }
}
