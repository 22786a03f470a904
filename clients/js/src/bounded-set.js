// Owns: a Set that remembers at most `max` values, forgetting the oldest first. Every map of ids
// the SDK keeps (message ids seen, its own client ids) is one of these, so none grows without bound.

export class BoundedSet {
  /** @param {number} max how many values to remember (at least 1) */
  constructor(max) {
    this.max = Math.max(1, max | 0);
    this.values = new Set();
  }

  has(value) {
    return this.values.has(value);
  }

  add(value) {
    if (this.values.has(value)) return;
    this.values.add(value);
    if (this.values.size > this.max) {
      // Sets iterate in insertion order: the first value is the oldest.
      this.values.delete(this.values.values().next().value);
    }
  }

  get size() {
    return this.values.size;
  }
}
