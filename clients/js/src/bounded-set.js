// Owns: a Set that remembers at most `max` values, forgetting the oldest first. Every map of ids
// the SDK keeps (message ids seen, its own client ids) is one of these, so none grows without bound.

export class BoundedSet {
  /** @param {number} max how many values to remember (at least 1) */
  constructor(max) {
    this.max = Math.max(1, max | 0);
    this.values = new Set();
    // Insertion order in a ring: the oldest is found without walking the Set (this runs per message).
    this.ring = [];
    this.next = 0;
  }

  has(value) {
    return this.values.has(value);
  }

  add(value) {
    if (this.values.has(value)) return;
    if (this.ring.length < this.max) {
      this.ring.push(value);
    } else {
      this.values.delete(this.ring[this.next]);
      this.ring[this.next] = value;
      this.next = (this.next + 1) % this.max;
    }
    this.values.add(value);
  }

  get size() {
    return this.values.size;
  }
}
