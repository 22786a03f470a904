// Owns: a TCP proxy between clients and a server (a hub, Redis) that a test can break the way
// networks break: cut every connection (a reset), refuse new ones, stall the open ones (bytes stop,
// nothing closes: a half-open connection), or point at a restarted server on another port.

import net from 'node:net';

export class TcpProxy {
  constructor(name) {
    this.name = name;
    this.target = 0;
    this.mode = 'up'; // 'up' | 'down' (new connections are dropped at once)
    this.pairs = new Set();
    this.accepted = 0;
    this.server = net.createServer((client) => this.#accept(client));
  }

  /** Listens on a loopback port the kernel picks; returns it. */
  listen(targetPort) {
    this.target = targetPort;
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.port = this.server.address().port;
        resolve(this.port);
      });
    });
  }

  /** Where new connections go from now on (a restarted server); open ones are left alone. */
  retarget(port) {
    this.target = port;
  }

  /** Resets every open connection, both sides (what a crashed middlebox does). */
  cut() {
    const n = this.pairs.size;
    for (const pair of [...this.pairs]) this.#drop(pair);
    return n;
  }

  /** Drops new connections at once (the server unreachable) until `up()`. */
  down() {
    this.mode = 'down';
  }

  up() {
    this.mode = 'up';
  }

  /**
   * Open connections stop carrying bytes — `direction` 'both', 'to_server' (what clients send is
   * lost) or 'to_client' (what the server answers is lost) — and nothing is closed: a side sees a
   * connection that is open and silent. New connections work.
   */
  stall(direction = 'both') {
    if (!['both', 'to_server', 'to_client'].includes(direction)) throw new Error(`bad stall direction ${direction}`);
    const n = this.pairs.size;
    for (const pair of this.pairs) {
      if (direction !== 'to_client') pair.stalledUp = true;
      if (direction !== 'to_server') pair.stalledDown = true;
    }
    return n;
  }

  get open() {
    return this.pairs.size;
  }

  async close() {
    this.cut();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }

  #accept(client) {
    this.accepted += 1;
    if (this.mode === 'down') {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(this.target, '127.0.0.1');
    const pair = { client, upstream, stalledUp: false, stalledDown: false };
    this.pairs.add(pair);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const forward = (from, to, stalled) => {
      from.on('data', (chunk) => {
        if (!stalled()) to.write(chunk);
      });
      from.on('end', () => {
        if (!stalled()) to.end();
      });
    };
    forward(client, upstream, () => pair.stalledUp);
    forward(upstream, client, () => pair.stalledDown);
    const gone = () => {
      // A stalled connection stays open, silently, until cut.
      if (pair.stalledUp || pair.stalledDown) return;
      this.#drop(pair);
    };
    for (const s of [client, upstream]) {
      s.on('error', gone);
      s.on('close', gone);
    }
  }

  #drop(pair) {
    if (!this.pairs.delete(pair)) return;
    for (const s of [pair.client, pair.upstream]) {
      if (s.destroyed) continue;
      // A reset, as a middlebox that dies sends; but not on a socket whose graceful shutdown has
      // started (end() forwarded a FIN) or that is still connecting: Node then keeps the native
      // handle referenced, and this process spun at exit, never ending (seen once in a run).
      if (s.connecting || s.writableEnded) s.destroy();
      else s.resetAndDestroy();
    }
  }
}
