// Owns: the SDK side of a conformance run — SDK clients driven by name, and a record of everything
// they told the application (messages, recoveries, states, acks, errors). The same file runs in
// Node and, unchanged, in Chromium (served to a page): it imports nothing, and is given the SDK's
// HubClient, the environment's WebSocket and a token signer.

export function createAgent({ HubClient, WebSocket, sign }) {
  const clients = new Map();

  const get = (name) => {
    const c = clients.get(name);
    if (!c) throw new Error(`no client named ${name}`);
    return c;
  };
  const roomOf = (name, room) => {
    const r = get(name).rooms.get(room);
    if (!r) throw new Error(`client ${name} has no room ${room}`);
    return r;
  };
  const withTimeout = (promise, ms, what) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
      promise.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e) => {
          clearTimeout(timer);
          reject(e);
        },
      );
    });
  const wake = (list) => {
    for (const w of [...list]) w();
  };

  return {
    create(name, url, tokenSpec, options = {}) {
      if (clients.has(name)) throw new Error(`client ${name} exists`);
      const c = { name, failing: false, states: [], errors: [], tokens: 0, rooms: new Map(), publishes: [], running: 0, waiters: new Set() };
      const token = tokenSpec
        ? async () => {
            if (c.failing) throw new Error('the token service is down (test)');
            return sign(tokenSpec);
          }
        : undefined;
      c.client = new HubClient(url, { WebSocket, token, ...options });
      c.client.on('state', (state, info) => {
        c.states.push({ state, at: Date.now(), code: info?.code, reason: info?.reason, delay: info?.delay });
        wake(c.waiters);
      });
      c.client.on('error', (e) => c.errors.push({ code: e.code, message: e.message }));
      c.client.on('token', () => c.tokens++);
      clients.set(name, c);
    },

    async connect(name, timeoutMs = 15000) {
      await withTimeout(get(name).client.connect(), timeoutMs, `${name} connect`);
      return get(name).client.connection;
    },

    async subscribe(name, roomName, opts = {}, timeoutMs = 15000) {
      const c = get(name);
      // `again`: leave the room and subscribe anew in the same turn (its `left` is still on its way).
      if (opts.again) c.rooms.get(roomName)?.room.unsubscribe();
      const { again, ...subscribeOpts } = opts;
      const room = c.client.subscribe(roomName, subscribeOpts);
      const r = { room, messages: [], contents: new Set(), recoveries: [], joined: [], presence: [], errors: [], waiters: new Set() };
      c.rooms.set(roomName, r);
      room.on('message', (m) => {
        r.messages.push({ id: m.id, offset: m.offset, epoch: m.epoch, content: m.content, from: m.from, replayed: m.replayed === true });
        r.contents.add(m.content);
        wake(r.waiters);
      });
      room.on('recovery', (e) => {
        r.recoveries.push({ ...e });
        wake(r.waiters);
      });
      room.on('presence', (d) => r.presence.push(d));
      room.on('error', (e) => r.errors.push({ code: e.code, message: e.message }));
      const joined = new Promise((resolve) => room.once('joined', resolve));
      room.on('joined', (j) => r.joined.push({ ...j }));
      await withTimeout(joined, timeoutMs, `${name} joins ${roomName}`);
    },

    /** Publishes `contents` one after another, `intervalMs` apart, in the background. */
    publish(name, roomName, contents, intervalMs = 0) {
      const c = get(name);
      const room = roomOf(name, roomName).room;
      c.running += 1;
      (async () => {
        const pending = [];
        for (const content of contents) {
          const rec = { room: roomName, content, settled: false };
          c.publishes.push(rec);
          pending.push(
            room.publish(content).then(
              (ack) => Object.assign(rec, { settled: true, ok: true, id: ack.id, offset: ack.offset }),
              (err) => Object.assign(rec, { settled: true, ok: false, code: err.code, maybeStored: err.maybeStored, message: err.message }),
            ),
          );
          if (intervalMs > 0) await new Promise((res) => setTimeout(res, intervalMs));
        }
        await Promise.all(pending);
        c.running -= 1;
        wake(c.waiters);
      })();
    },

    /** Waits until every publish of `name` is settled; returns them all. */
    async settled(name, timeoutMs = 30000) {
      const c = get(name);
      const done = () => c.running === 0 && c.publishes.every((p) => p.settled);
      await withTimeout(
        new Promise((resolve) => {
          const check = () => {
            if (done()) {
              c.waiters.delete(check);
              resolve();
            }
          };
          c.waiters.add(check);
          check();
        }),
        timeoutMs,
        `${name}'s publishes to settle (${c.publishes.filter((p) => !p.settled).length} left)`,
      );
      return c.publishes.map(({ room, content, ok, id, offset, code, maybeStored }) => ({ room, content, ok, id, offset, code, maybeStored }));
    },

    /** Waits until `room` of `name` got every one of `contents` (or at least `count` messages). */
    async waitMessages(name, roomName, { contents = [], count = 0 }, timeoutMs = 30000) {
      const r = roomOf(name, roomName);
      const done = () => r.messages.length >= count && contents.every((x) => r.contents.has(x));
      try {
        await withTimeout(
          new Promise((resolve) => {
            const check = () => {
              if (done()) {
                r.waiters.delete(check);
                resolve();
              }
            };
            r.waiters.add(check);
            check();
          }),
          timeoutMs,
          'messages',
        );
        return { ok: true };
      } catch {
        return { ok: false, have: r.messages.length, missing: contents.filter((x) => !r.contents.has(x)).slice(0, 20) };
      }
    },

    /** Waits until `name` reaches `state` (optionally with close `code`) after `since` (ms). */
    async waitState(name, state, { code, since = 0 } = {}, timeoutMs = 30000) {
      const c = get(name);
      const hit = () => c.states.some((s) => s.at >= since && s.state === state && (code === undefined || s.code === code));
      await withTimeout(
        new Promise((resolve) => {
          const check = () => {
            if (hit()) {
              c.waiters.delete(check);
              resolve();
            }
          };
          c.waiters.add(check);
          check();
        }),
        timeoutMs,
        `${name} to be ${state}${code !== undefined ? ` (${code})` : ''}`,
      );
    },

    async waitRecovery(name, roomName, match, timeoutMs = 30000) {
      const r = roomOf(name, roomName);
      const hit = () => r.recoveries.some((e) => Object.entries(match).every(([k, v]) => e[k] === v));
      await withTimeout(
        new Promise((resolve) => {
          const check = () => {
            if (hit()) {
              r.waiters.delete(check);
              resolve();
            }
          };
          r.waiters.add(check);
          check();
        }),
        timeoutMs,
        `${name} recovery ${JSON.stringify(match)} in ${roomName}`,
      );
    },

    async presence(name, roomName) {
      return roomOf(name, roomName).room.presence();
    },

    unsubscribe(name, roomName) {
      roomOf(name, roomName).room.unsubscribe();
    },

    async publishOnce(name, roomName, content) {
      try {
        const ack = await roomOf(name, roomName).room.publish(content);
        return { ok: true, ...ack };
      } catch (err) {
        return { ok: false, code: err.code, maybeStored: err.maybeStored, message: err.message };
      }
    },

    close(name) {
      get(name).client.close();
    },

    setTokenFailing(name, failing) {
      get(name).failing = failing;
    },

    report(name) {
      const c = get(name);
      const rooms = {};
      for (const [room, r] of c.rooms) {
        rooms[room] = { messages: r.messages, recoveries: r.recoveries, joined: r.joined, errors: r.errors, position: r.room.position, presence: r.presence.length };
      }
      return {
        state: c.client.state,
        states: c.states,
        errors: c.errors,
        tokens: c.tokens,
        rooms,
        publishes: c.publishes.map(({ room, content, settled, ok, id, offset, code, maybeStored }) => ({ room, content, settled, ok, id, offset, code, maybeStored })),
      };
    },

    closeAll() {
      for (const c of clients.values()) c.client.close();
      clients.clear();
    },
  };
}
