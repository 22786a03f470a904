// The chat page's browser code: sign-in (when the server signs tokens), one WebSocket to the paired hub,
// rooms, one view per room (newest on top; unread counts and mentions for the others; day separators
// and relative times), each room's earlier messages (on join, and more on scroll) and recovery of what
// was missed after a reconnect, own messages' delivery state (with retry), who is in each room
// (presence), and reconnect with jittered backoff. Plain JS, no build step;
// the only requests are the hub socket and POST /token to this page's own server.
// Chat text and names only ever reach the DOM through textContent: they are never parsed as HTML.
'use strict';

(() => {
  const ROOM_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
  const DEFAULT_ROOM = 'general';
  // The hub puts every connection in its user's personal room (`user:<user id>`, listed in the
  // welcome): the page keeps it as a room of its own, where what the backend sends that user (the
  // server API's POST /api/publish) shows on every page the user has open, on every hub.
  const PERSONAL_PREFIX = 'user:';
  // A room's view keeps at most FEED_MAX items while its reader is at the top (the newest): the oldest
  // go, and scrolling down loads them again from the hub's history. A reader scrolled down to older
  // messages keeps up to FEED_HARD_MAX, so what is being read does not vanish under a busy room.
  const FEED_MAX = 200;
  const FEED_HARD_MAX = 1000;
  const OLDER_PAGE = 100; // messages more asked for each time the reader reaches the oldest shown
  const TIME_TICK_MS = 10_000; // relative times ("3 min ago") and day labels are redrawn this often
  const AT_TOP_PX = 48; // a feed scrolled less than this is "at the newest"
  const CONNECT_TIMEOUT_MS = 10_000;
  const PING_EVERY_MS = 25_000; // application ping keeps idle proxies from closing the socket
  const SILENCE_LIMIT_MS = 70_000; // nothing heard for this long: the link is dead even if TCP says not
  const REFRESH_AT = 0.8; // a token is renewed after this share of its lifetime
  const REFRESH_RETRY_MS = 5_000; // a failed renewal is tried again this soon while the token lasts
  const NAME_MAX = 32;
  const IDENTITY_KEY = 'realtime-hub.identity'; // localStorage: {name, sub}, so a reload signs in again
  const HISTORY_LIMIT = 50; // earlier messages a room shows when joined (the hub keeps HUB_HISTORY_SIZE)
  const ACK_TIMEOUT_MS = 10_000; // an own message the hub has not confirmed by then is shown as failed
  const UNCONFIRMED_KEEP = 50; // failed own messages remembered, to be found again in a recovery
  const CLIENT_IDS_KEEP = 20; // earlier connections of this tab whose messages are "you"
  const RECOVERY_WAIT_MS = 15_000; // rooms whose rejoin got no answer by then count as not recovered
  const SAVE_EVERY_MS = 250; // cursors reach sessionStorage at most this often (and on pagehide)
  // Presence. The hub sends no presence_diff in rooms over its presence_events_max (1000 by default):
  // such a room's list is asked again every PRESENCE_POLL_MS instead.
  const PRESENCE_EVENTS_MAX = 1000;
  const PRESENCE_POLL_MS = 30_000;
  const PRESENCE_WAIT_MS = 10_000; // a question unanswered this long counts as unavailable
  const PRESENCE_RETRY_MS = 5_000; // an unavailable room's presence is asked again this soon
  const PRESENCE_TICK_MS = 1_000;
  // Questions sent at once, then per tick: a page in many rooms, reconnecting, already sends a join
  // per room (and after a reload a second one); its presence questions must not push it over the
  // hub's rate limit (rate_limit_burst 200, then 100 a second), which closes a client that insists.
  const PRESENCE_ASKS_BURST = 10;
  const PRESENCE_ASKS_PER_TICK = 5;
  const MEMBERS_SHOWN = 200; // names listed at most; the count covers everyone

  const body = document.body;
  const cfg = {
    hubUrl: body.dataset.hubUrl,
    hubLabel: body.dataset.hubLabel || '',
    minMs: Number(body.dataset.reconnectMinMs) || 500,
    maxMs: Number(body.dataset.reconnectMaxMs) || 10_000,
    // `jwt`: this server signs tokens, the page signs in first; otherwise it runs anonymous.
    auth: body.dataset.auth === 'jwt',
  };
  // sessionStorage (this tab only, survives a reload): {rooms, active, cursors, clientIds}
  const SESSION_KEY = `realtime-hub.session:${cfg.hubUrl}`;

  const $ = (id) => document.getElementById(id);
  const el = {
    status: $('status'),
    connect: $('connect'),
    signout: $('signout'),
    me: $('me'),
    hubName: $('hub-name'),
    signin: $('signin'),
    signinName: $('signin-name'),
    signinButton: $('signin-button'),
    signinError: $('signin-error'),
    chat: $('chat'),
    roomForm: $('room-form'),
    roomInput: $('room-input'),
    leave: $('leave'),
    rooms: $('rooms'),
    notice: $('notice'),
    compose: $('compose'),
    message: $('message-input'),
    send: $('send'),
    roomTitle: $('room-title'),
    feedScroll: $('feed-scroll'),
    loadOlder: $('load-older'),
    feedEnd: $('feed-end'),
    members: $('members'),
    membersTitle: $('members-title'),
    membersNote: $('members-note'),
  };

  let ws = null;
  let wanted = true; // the user wants a connection (false after Disconnect)
  let attempt = 0; // failed attempts since the last welcome, drives the backoff
  let retryAt = 0;
  let retryTimer = null;
  let countdownTimer = null;
  let connectTimer = null;
  let pingTimer = null;
  let lastHeard = 0;
  let noticeTimer = null;
  let welcomed = false; // the hub admitted this socket (its welcome arrived)
  let everWelcomed = false; // a welcome came before: the next one is a reconnect
  let opening = false; // a token request for the next socket is in flight

  const me = { clientId: '', hub: '', userId: '', name: '' };
  // Sign-in (auth mode only): who this browser is, and its current token.
  let identity = null; // {name, sub}
  let token = null; // {value, refreshAt, expiresAt} in local clock ms
  let refreshTimer = null;
  let expiredRetry = false; // one quiet retry with a fresh token after "auth failed: token expired"
  let rooms = new Set(); // rooms the hub confirmed for this connection
  const wantedRooms = new Set([DEFAULT_ROOM]); // rooms the user chose; restored after a reconnect
  const userJoins = new Set(); // joins the user asked for (their room becomes the active one)
  const leftPersonal = new Set(); // personal rooms the user left: not kept on the next welcome
  let active = DEFAULT_ROOM;
  // History and recovery. A room's cursor is the (epoch, offset) of the newest message the page has
  // from it: after any reconnect it rejoins with `since` and the hub replays exactly what was missed.
  const cursors = new Map(); // room → {epoch, offset}
  const gapJoins = new Set(); // rooms with a recovery under way for a gap seen in live offsets
  const shown = new Map(); // message id → its feed item: a message seen twice (live, then replayed) shows once
  const joins = new Map(); // room → [{kind: 'history' | 'since', fresh}], joins sent, answered in order
  const loaded = new Set(); // rooms whose earlier messages this page has asked for (not after a reload)
  let recovery = null; // the rejoin after a (re)connect: {waiting: Set(room), recovered, missing: Map(room → reason)}
  let recoveryTimer = null;
  const ownClientIds = new Set(); // every client id this tab had: messages from them are "you"
  // Own messages until the hub confirms them: ref → {ref, li, room, content, clientId, state, timer}.
  const outbox = new Map();
  let refSeq = 0;
  let saveTimer = null;
  // Who is in each room this page is in, across every hub: the hub's answer to `presence`, then its
  // presence_diff events. room → {members: Map(user → name), state, waiting, askedAt, large}:
  // state 'asking' (no answer yet) | 'live' | 'stale' (the socket dropped: the last list, not kept
  // up to date) | 'unavailable' | 'forbidden'; waiting: while a question is on its way, the diffs
  // that arrive meanwhile (applied in order on top of the answer, which may predate them), else null.
  const presence = new Map();
  let presenceBudget = PRESENCE_ASKS_BURST;
  // One view per room: room → {room, feed (its role=log element, in the page only while the room is
  // active), unread, mention, scrollTop, atTop, older: a load of earlier messages is on its way,
  // exhausted: the hub has nothing older than what is shown, daysDirty}. Broadcasts go to the active room's.
  const views = new Map();
  let daysTimer = 0;

  // ---- status ---------------------------------------------------------------------------------

  function hubDisplay() {
    return me.hub || cfg.hubLabel || cfg.hubUrl;
  }

  function setStatus(state, text) {
    el.status.dataset.state = state;
    el.status.dataset.hub = state === 'connected' ? me.hub : '';
    el.status.textContent = text;
    el.status.title = cfg.hubUrl;
    el.connect.textContent = state === 'disconnected' ? 'Connect' : 'Disconnect';
    const usable = state === 'connected';
    el.message.disabled = !usable || !active;
    el.send.disabled = !usable || !active;
    body.dataset.state = state;
  }

  // A sticky notice (a refusal) stays until the next welcome; others fade after `ms`. `kind` tells
  // notices apart for styling and tests: error (default), recovered, gap.
  function notice(text, { sticky = false, kind = 'error', ms = 6000 } = {}) {
    el.notice.textContent = text;
    el.notice.hidden = false;
    el.notice.dataset.sticky = String(sticky);
    el.notice.dataset.kind = kind;
    clearTimeout(noticeTimer);
    if (!sticky) {
      noticeTimer = setTimeout(() => {
        el.notice.hidden = true;
      }, ms);
    }
  }

  function clearStickyNotice() {
    if (el.notice.dataset.sticky === 'true') el.notice.hidden = true;
  }

  // ---- sign-in (only when this server signs tokens) --------------------------------------------

  function loadIdentity() {
    try {
      const v = JSON.parse(localStorage.getItem(IDENTITY_KEY) || 'null');
      if (v && typeof v.name === 'string' && v.name.trim()) {
        return { name: v.name, sub: typeof v.sub === 'string' ? v.sub : '' };
      }
    } catch {
      // Storage off or a broken entry: sign in by hand.
    }
    return null;
  }

  function saveIdentity(value) {
    try {
      if (value) localStorage.setItem(IDENTITY_KEY, JSON.stringify(value));
      else localStorage.removeItem(IDENTITY_KEY);
    } catch {
      // Private mode may refuse storage: the page still works, a reload asks again.
    }
  }

  function showSignIn(message) {
    body.dataset.view = 'signin';
    el.signin.hidden = false;
    el.chat.hidden = true;
    el.connect.hidden = true;
    el.signout.hidden = true;
    el.me.hidden = true;
    el.signinButton.disabled = false;
    el.signinName.disabled = false;
    if (!el.signinName.value && identity) el.signinName.value = identity.name;
    el.signinError.textContent = message || '';
    el.signinError.hidden = !message;
    setStatus('disconnected', message ? 'Not signed in (refused)' : 'Not signed in');
    el.signinName.focus();
  }

  function showChat() {
    body.dataset.view = 'chat';
    el.signin.hidden = true;
    el.chat.hidden = false;
    el.connect.hidden = false;
    el.signout.hidden = !cfg.auth;
    el.signinError.hidden = true;
  }

  function showMe() {
    const name = me.name || (identity && identity.name) || '';
    el.me.textContent = name ? `· signed in as ${name}` : '';
    el.me.hidden = !cfg.auth || !name;
  }

  // Reads a token's own lifetime (exp − iat) so the renewal time does not depend on this machine's
  // clock agreeing with the server's; falls back to the answer's exp.
  function tokenTimes(issued) {
    let lifetimeMs = 0;
    try {
      const part = issued.token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
      const claims = JSON.parse(new TextDecoder().decode(bytes));
      lifetimeMs = (Number(claims.exp) - Number(claims.iat)) * 1000;
    } catch {
      lifetimeMs = 0;
    }
    if (!(lifetimeMs > 0)) lifetimeMs = Math.max(0, Number(issued.exp) * 1000 - Date.now());
    const now = Date.now();
    return { value: issued.token, refreshAt: now + lifetimeMs * REFRESH_AT, expiresAt: now + lifetimeMs };
  }

  /** POST /token; resolves to the new token or throws an Error with `status` and `code`. */
  // The user id a name signs in with: the same on every web server (each is its own origin, with its
  // own storage, so a kept id would differ), so one name is one user — in the same personal room —
  // on every page and every hub. Like the name itself, this proves nothing: it is the demo's choice.
  // FNV-1a, twice (64 bits as 16 hex digits): no SubtleCrypto, which plain-http LAN pages lack.
  function subFor(name) {
    const fnv = (seed) => {
      let h = seed >>> 0;
      for (const ch of name.normalize('NFC')) {
        const c = ch.codePointAt(0);
        h = Math.imul(h ^ (c & 0xffff), 16777619) >>> 0;
        h = Math.imul(h ^ (c >>> 16), 16777619) >>> 0;
      }
      return h.toString(16).padStart(8, '0');
    };
    return `name-${fnv(2166136261)}${fnv(0x9e3779b9)}`;
  }

  async function requestToken(name) {
    const payload = { name, sub: subFor(name) };
    let res;
    try {
      res = await fetch('/token', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(payload),
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch (e) {
      throw Object.assign(new Error(`cannot reach this page's server (${e.message})`), { status: 0, code: 'network' });
    }
    let answer = null;
    try {
      answer = await res.json();
    } catch {
      answer = null;
    }
    if (!res.ok || !answer || typeof answer.token !== 'string') {
      const err = (answer && answer.error) || {};
      throw Object.assign(new Error(str(err.message) || `the server answered ${res.status}`), {
        status: res.status,
        code: str(err.code),
      });
    }
    identity = { name: str(answer.name) || name, sub: str(answer.sub) };
    saveIdentity(identity);
    token = tokenTimes(answer);
    scheduleRefresh();
    return token;
  }

  // A refused request (4xx) will be refused again: only the user can fix it (another name).
  const isRefusal = (e) => e.status >= 400 && e.status < 500;

  async function signIn(name) {
    el.signinButton.disabled = true;
    el.signinName.disabled = true;
    setStatus('connecting', `Signing in as ${name}…`);
    try {
      await requestToken(name);
    } catch (e) {
      showSignIn(`Sign-in failed: ${e.message}`);
      return;
    }
    showChat();
    showMe();
    wanted = true;
    attempt = 0;
    expiredRetry = false;
    connect();
  }

  function signOut() {
    disconnect();
    clearTimeout(refreshTimer);
    refreshTimer = null;
    token = null;
    identity = null;
    saveIdentity(null);
    me.name = '';
    el.signinName.value = '';
    // The next person in this tab starts afresh: no feed, no cursors, no "you" from the last one.
    clearFeed();
    cursors.clear();
    loaded.clear();
    presence.clear();
    ownClientIds.clear();
    everWelcomed = false;
    saveSession();
    showSignIn('');
  }

  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    if (!token) return;
    refreshTimer = setTimeout(refreshToken, Math.max(1000, token.refreshAt - Date.now()));
  }

  // Renews the token before it runs out and hands it to the hub on the open socket: the connection
  // stays. A socket opened later uses the new token from the start.
  async function refreshToken() {
    refreshTimer = null;
    // Not while disconnected or refused: the next Connect or sign-in takes a fresh token anyway.
    if (!identity || !wanted) return;
    try {
      await requestToken(identity.name);
    } catch (e) {
      const left = token ? token.expiresAt - Date.now() : 0;
      notice(`Could not renew the sign-in: ${e.message}`);
      if (left > 0 && !isRefusal(e)) {
        refreshTimer = setTimeout(refreshToken, Math.min(REFRESH_RETRY_MS, Math.max(1000, left / 2)));
      }
      // Otherwise the hub closes with 4002 when the token runs out, and the reconnect signs in again.
      return;
    }
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'auth', token: token.value }));
  }

  function tokenIsFresh() {
    return !!token && Date.now() < token.refreshAt;
  }

  // ---- connection -----------------------------------------------------------------------------

  async function connect() {
    clearTimers();
    if (ws || opening) return;
    if (navigator.onLine === false) {
      // No network at all: an attempt would only fail. The `online` event (or the next retry) comes back.
      scheduleReconnect();
      return;
    }
    if (cfg.auth) {
      if (!identity) {
        showSignIn('');
        return;
      }
      if (!tokenIsFresh()) {
        // A reconnect after a long drop: the old token may be near its end, take a fresh one first.
        opening = true;
        setStatus('connecting', `Signing in as ${identity.name}…`);
        try {
          await requestToken(identity.name);
        } catch (e) {
          opening = false;
          if (!wanted) return;
          if (isRefusal(e)) {
            showSignIn(`Sign-in failed: ${e.message}`);
          } else {
            notice(`Sign-in failed: ${e.message}`);
            scheduleReconnect();
          }
          return;
        }
        opening = false;
        if (!wanted || ws) return; // Disconnect was pressed meanwhile
      }
    }
    setStatus('connecting', `Connecting to ${hubDisplay()}…`);
    welcomed = false;
    let socket;
    try {
      socket = new WebSocket(cfg.hubUrl);
    } catch (e) {
      notice(`Cannot open ${cfg.hubUrl}: ${e.message}`);
      scheduleReconnect();
      return;
    }
    ws = socket;
    connectTimer = setTimeout(() => socket.close(), CONNECT_TIMEOUT_MS);
    socket.addEventListener('open', () => {
      lastHeard = Date.now();
      clearTimeout(connectTimer);
      pingTimer = setInterval(heartbeat, PING_EVERY_MS);
      // Browsers cannot set headers on a WebSocket: the token is the first frame, and the hub's
      // welcome only comes after it.
      if (cfg.auth && token) socket.send(JSON.stringify({ type: 'auth', token: token.value }));
    });
    socket.addEventListener('message', (ev) => {
      if (socket !== ws) return;
      lastHeard = Date.now();
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return; // the hub only sends JSON; anything else is not ours to show
      }
      if (frame && typeof frame === 'object') handleFrame(frame);
    });
    socket.addEventListener('close', (ev) => {
      if (socket !== ws) return;
      connectionLost();
      if (!wanted) {
        setStatus('disconnected', 'Disconnected');
        return;
      }
      onClose(ev.code, ev.reason);
    });
  }

  // The one path for a socket that is gone (closed by either side, or dropped by the page): what was
  // not confirmed on it is failed, what was being rejoined is forgotten.
  function connectionLost() {
    ws = null;
    welcomed = false;
    clearTimers();
    rooms = new Set();
    joins.clear();
    endRecovery();
    failPending('connection lost');
    // Nothing keeps the lists up to date now: shown as they were, marked not live, until re-asked.
    for (const p of presence.values()) {
      p.waiting = null;
      p.due = false;
      if (p.state === 'live') p.state = 'stale';
    }
    renderRooms();
  }

  // The network went away (the browser's `offline` event). A socket may look open for minutes before
  // TCP notices, and a browser in offline mode may keep it open: drop it now and come back with
  // recovery once the network is back.
  function dropForOffline() {
    if (!ws) return;
    const socket = ws;
    connectionLost();
    try {
      socket.close(1000, 'offline');
    } catch {
      // Already closing.
    }
    if (wanted) scheduleReconnect();
  }

  // What each close code means for the user; the hub's reason text is shown as it is.
  function onClose(code, reason) {
    const why = (fallback) => `${reason || fallback} (${code})`;
    switch (code) {
      case 4001: {
        token = null;
        if (cfg.auth && /expired/i.test(reason) && !expiredRetry) {
          // The token ran out while the socket was down: one retry with a fresh one.
          expiredRetry = true;
          scheduleReconnect();
          return;
        }
        wanted = false;
        const text = cfg.auth
          ? `${hubDisplay()} refused the sign-in: ${why('auth failed')}.`
          : `${hubDisplay()} requires sign-in, and this page's server has no identity provider: ${why('auth failed')}.`;
        notice(text, { sticky: true });
        if (cfg.auth) showSignIn(text);
        else setStatus('disconnected', 'Refused: sign-in required');
        return;
      }
      case 4002:
        // The token expired on an open socket (a renewal did not get through): sign in again quietly.
        token = null;
        notice(`Sign-in expired: ${why('token expired')}. Signing in again…`);
        scheduleReconnect();
        return;
      case 4008:
        wanted = false;
        notice(`${hubDisplay()} refused this tab: ${why('too many connections for this user')}. Close another tab, then Connect.`, {
          sticky: true,
        });
        setStatus('disconnected', 'Refused: too many connections');
        return;
      case 4003:
        wanted = false;
        notice(`Disconnected by the server: ${why('disconnected')}.`, { sticky: true });
        setStatus('disconnected', 'Disconnected by the server');
        return;
      case 1008:
      case 1009:
      case 4000:
        notice(`The hub closed the connection: ${why('no reason given')}.`);
        break;
      default:
        break;
    }
    scheduleReconnect();
  }

  function heartbeat() {
    if (!ws || ws.readyState !== WebSocket.OPEN || !welcomed) return;
    if (Date.now() - lastHeard > SILENCE_LIMIT_MS) {
      ws.close(); // the close handler schedules the reconnect
      return;
    }
    ws.send(JSON.stringify({ type: 'ping' }));
  }

  // Equal jitter: half the capped exponential delay is fixed, half random, so many pages dropped by one
  // hub restart do not come back in one burst, yet none hammers the hub with near-zero delays.
  function scheduleReconnect() {
    const cap = Math.min(cfg.maxMs, cfg.minMs * 2 ** Math.min(attempt, 20));
    const delay = cap / 2 + Math.random() * (cap / 2);
    attempt += 1;
    retryAt = Date.now() + delay;
    retryTimer = setTimeout(connect, delay);
    const tick = () => {
      const s = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      if (navigator.onLine === false) {
        setStatus('reconnecting', 'Offline — reconnecting when the network is back…');
      } else {
        setStatus('reconnecting', `Reconnecting to ${hubDisplay()} in ${s} s…`);
      }
    };
    tick();
    countdownTimer = setInterval(tick, 250);
  }

  function clearTimers() {
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    clearTimeout(connectTimer);
    clearInterval(pingTimer);
    retryTimer = countdownTimer = connectTimer = pingTimer = null;
  }

  function disconnect() {
    wanted = false;
    const socket = ws;
    connectionLost();
    if (socket) socket.close(1000, 'user disconnected');
    setStatus('disconnected', 'Disconnected');
  }

  function sendFrame(frame) {
    if (!ws || ws.readyState !== WebSocket.OPEN || !welcomed) {
      notice('Not connected to the hub.');
      return false;
    }
    ws.send(JSON.stringify(frame));
    return true;
  }

  // ---- frames from the hub --------------------------------------------------------------------

  function handleFrame(f) {
    switch (f.type) {
      case 'welcome':
        return onWelcome(f);
      case 'authenticated':
        // A renewed token was accepted; the hub may know the user by a new name now.
        return onUser(f.user);
      case 'message':
      case 'broadcast':
        return onChat(f);
      case 'ack':
        return onAck(f);
      case 'joined':
        return onJoined(f);
      case 'left':
        return onLeft(str(f.room));
      case 'presence':
        return onPresence(f);
      case 'presence_diff':
        return onPresenceDiff(f);
      case 'pong':
        return undefined;
      case 'error':
        return onError(f);
      default:
        return undefined; // newer hubs may send more; ignoring keeps old pages working
    }
  }

  function onUser(user) {
    if (!user || typeof user !== 'object') return;
    me.userId = str(user.id);
    me.name = str(user.name);
    showMe();
  }

  function onWelcome(f) {
    welcomed = true;
    attempt = 0;
    expiredRetry = false;
    clearStickyNotice();
    me.clientId = str(f.client_id);
    me.hub = str(f.hub);
    me.userId = me.clientId;
    me.name = '';
    onUser(f.user);
    if (me.clientId) {
      ownClientIds.delete(me.clientId);
      ownClientIds.add(me.clientId);
      for (const id of ownClientIds) {
        if (ownClientIds.size <= CLIENT_IDS_KEEP) break;
        ownClientIds.delete(id);
      }
    }
    el.hubName.textContent = me.hub || hubDisplay();
    rooms = new Set(Array.isArray(f.rooms) ? f.rooms.map(str) : [DEFAULT_ROOM]);
    // A signed-in user's personal room is kept (rejoined below with its earlier notifications) unless
    // left by hand; an earlier user's (signed out in this tab) goes. Anonymous pages leave theirs:
    // its name is the connection's client id, a new room on every reconnect, which no backend knows.
    for (const room of [...wantedRooms]) {
      if (room.startsWith(PERSONAL_PREFIX) && !rooms.has(room)) {
        wantedRooms.delete(room);
        dropView(room);
      }
    }
    for (const room of rooms) {
      if (cfg.auth && room.startsWith(PERSONAL_PREFIX) && !leftPersonal.has(room)) wantedRooms.add(room);
    }
    // Leave the default room if the user had left it; every room the user wants is (re)joined, the
    // default room too, so that each one shows its earlier messages or recovers what was missed.
    for (const room of rooms) if (!wantedRooms.has(room)) sendFrame({ type: 'leave', room });
    rooms = new Set([...rooms].filter((r) => wantedRooms.has(r)));
    rejoinAll();
    if (!active || !wantedRooms.has(active)) active = firstRoom();
    renderRooms();
    saveSession();
    setStatus('connected', `Connected to ${me.hub || hubDisplay()}`);
  }

  function onJoined(f) {
    const room = str(f.room);
    const join = nextJoin(room);
    gapJoins.delete(room);
    const epoch = typeof f.epoch === 'string' ? f.epoch : '';
    const hasHistory = epoch !== '' && Number.isSafeInteger(f.offset);
    // The replay (if any) came before this frame and live messages follow it: from here on the page
    // has everything up to `offset`.
    if (hasHistory) advanceCursor(room, epoch, f.offset);
    rooms.add(room);
    wantedRooms.add(room);
    if (userJoins.delete(room) || !active) active = room;
    // Asked after every (re)join but a repeat on the same socket (its diffs kept the list live): after
    // a reconnect the list may have changed in any way meanwhile.
    const listed = presence.get(room);
    if (!listed || listed.state !== 'live') askPresence(room);
    renderRooms();
    saveSession();
    if (join) settleJoin(room, join, f, hasHistory);
  }

  function onLeft(room) {
    rooms.delete(room);
    wantedRooms.delete(room);
    // A room joined again later starts with its earlier messages, not a recovery.
    cursors.delete(room);
    loaded.delete(room);
    presence.delete(room);
    // Its view goes with it, and its own messages still waiting for an ack.
    dropView(room);
    for (const [ref, entry] of outbox) {
      if (entry.room === room) {
        clearTimeout(entry.timer);
        outbox.delete(ref);
      }
    }
    if (active === room) {
      active = firstRoom();
      el.roomInput.value = active;
    }
    renderRooms();
    saveSession();
  }

  function onError(f) {
    const entry = outbox.get(str(f.ref));
    const why = `${str(f.code)}: ${str(f.message)}`;
    if (entry && str(f.code) === 'refused') {
      // The backend's publish check (a moderated room) said no: nobody got it, and a retry would
      // be refused again, so it says so and offers none.
      failOwn(entry, `refused by moderation: ${str(f.message)}`, why, 'refused');
      notice(`Message refused by moderation: ${str(f.message)}`);
      return;
    }
    if (entry) {
      failOwn(entry, str(f.code) || 'refused', why);
      notice(`Message not sent: ${why}`);
      return;
    }
    if (presenceRefused(f)) return;
    notice(`Hub error ${why}`);
  }

  function firstRoom() {
    if (wantedRooms.has(DEFAULT_ROOM)) return DEFAULT_ROOM;
    return wantedRooms.values().next().value || '';
  }

  // ---- messages: every one shown once, in order ---------------------------------------------

  function onChat(f) {
    const broadcast = f.type === 'broadcast';
    const room = broadcast ? '' : str(f.room);
    const id = str(f.id);
    const from = str(f.from);
    const content = str(f.content);
    const epoch = typeof f.epoch === 'string' ? f.epoch : '';
    const offset = epoch && Number.isSafeInteger(f.offset) ? f.offset : null;
    const replayed = f.replayed === true && !!room;
    if (offset !== null && !replayed && opensGap(room, epoch, offset)) {
      // Live, but past the next offset: messages in between never reached this page (a hub that
      // could not keep up shed them). The cursor stays before the gap; recovery fills it in.
      if (!gapJoins.has(room) && sendJoin(room, 'since')) gapJoins.add(room);
    } else if (offset !== null) {
      advanceCursor(room, epoch, offset);
    }
    const join = replayed ? (joins.get(room) || [])[0] : undefined;
    if (join) join.replayed += 1;
    const seen = id ? shown.get(id) : undefined;
    if (seen) {
      // Delivered before (live, or by an earlier replay): keep that one. A message delivered while
      // Redis was down had no offset then; it has one now, which places later replays right.
      if (offset !== null && !seen.dataset.offset) setOrder(seen, epoch, offset);
      return;
    }
    // A message of this tab whose ack never came (the socket dropped first): a replay, or a late
    // delivery to this tab's next connection (sent while Redis was down), proves it was delivered.
    const mine = room && ownClientIds.has(from) ? unconfirmedOwn(room, from, content) : undefined;
    if (mine) {
      confirmOwn(mine, id, epoch, offset);
      return;
    }
    if (join) join.fresh += 1;
    const user = f.user && typeof f.user === 'object' ? f.user : {};
    const own = ownClientIds.has(from);
    const li = messageItem({
      id,
      room,
      from,
      userId: str(user.id) || from,
      name: str(user.name),
      hub: str(f.hub),
      content,
      timestamp: str(f.timestamp),
      own,
      replayed: replayed ? (join ? join.kind : 'history') : '',
      epoch,
      offset,
    });
    // Sent by an earlier connection of this tab (before a reload): the hub has it.
    if (own) setOwnState(li, 'sent');
    if (replayed) placeInOrder(li);
    else placeNewest(li);
    noteUnread(li, replayed ? (join ? join.kind : 'history') : 'live');
  }

  /** Whether a live message at `offset` skips past the next one this page expects in `room`. */
  function opensGap(room, epoch, offset) {
    const c = room ? cursors.get(room) : undefined;
    return !!c && c.epoch === epoch && offset > c.offset + 1;
  }

  /** Moves a room's cursor forward (or onto a new epoch: the room's history was reset). */
  function advanceCursor(room, epoch, offset) {
    if (!room || !epoch || !Number.isSafeInteger(offset) || offset < 0) return;
    const c = cursors.get(room);
    if (c && c.epoch === epoch && c.offset >= offset) return;
    cursors.set(room, { epoch, offset });
    saveSoon();
  }

  // ---- joins, history and recovery ----------------------------------------------------------

  /**
   * Joins `room` asking for what it needs: with a cursor, `since` (exactly what was missed, or
   * nothing); without, the last HISTORY_LIMIT messages (or `n`: more, to load older ones, `older`).
   * The hub answers joins in the order sent.
   */
  function sendJoin(room, kind, { n = HISTORY_LIMIT, older = false } = {}) {
    const c = cursors.get(room);
    const frame = { type: 'join', room };
    if (kind === 'since' && c) {
      frame.since = { epoch: c.epoch, offset: c.offset };
    } else {
      kind = 'history';
      frame.history = n;
    }
    if (!sendFrame(frame)) return false;
    if (!joins.has(room)) joins.set(room, []);
    // fresh: messages this join showed for the first time; replayed: every one it replayed.
    joins.get(room).push({ kind, fresh: 0, replayed: 0, asked: kind === 'history' ? n : 0, older });
    if (kind === 'history') loaded.add(room);
    return true;
  }

  function nextJoin(room) {
    const queue = joins.get(room);
    const join = queue ? queue.shift() : undefined;
    if (queue && !queue.length) joins.delete(room);
    return join;
  }

  // After a welcome: every wanted room is joined again. A room with a cursor (a reconnect, or a reload
  // of this tab) recovers; its outcome, for all rooms together, is one notice.
  function rejoinAll() {
    endRecovery();
    const reconnect = everWelcomed;
    everWelcomed = true;
    const waiting = new Set();
    for (const room of wantedRooms) {
      const kind = cursors.has(room) ? 'since' : 'history';
      if (!sendJoin(room, kind)) continue;
      // On a reconnect a room without a cursor had no history to recover from: say so if it still has none.
      if (kind === 'since' || reconnect) waiting.add(room);
    }
    if (!waiting.size) return;
    recovery = { waiting, recovered: 0, missing: new Map() };
    recoveryTimer = setTimeout(() => {
      if (!recovery) return;
      for (const room of recovery.waiting) recovery.missing.set(room, 'no_answer');
      finishRecovery();
    }, RECOVERY_WAIT_MS);
  }

  function settleJoin(room, join, f, hasHistory) {
    const part = recovery && recovery.waiting.has(room) ? recovery : null;
    if (join.kind === 'since') {
      if (f.recovered === true) {
        if (part) part.recovered += join.fresh;
        // After a reload the feed is empty: show the room's earlier messages too.
        if (!loaded.has(room)) sendJoin(room, 'history');
      } else {
        // All or nothing: nothing was replayed. Mark where the hole is, then show the latest.
        const reason = f.recovered === false ? str(f.reason) || 'unknown' : 'no_history';
        if (part) part.missing.set(room, reason);
        else notice(`Some messages in #${room} may be missing: ${reasonText(reason)}.`, { kind: 'gap', ms: 20_000 });
        markGap(room, reason);
        if (hasHistory) sendJoin(room, 'history');
      }
    } else if (part && !hasHistory) {
      part.missing.set(room, 'no_history');
      markGap(room, 'no_history');
    }
    if (join.kind === 'history') olderLoaded(room, join);
    if (part) {
      part.waiting.delete(room);
      if (!part.waiting.size) finishRecovery();
    }
  }

  /**
   * A history join answered: fewer replayed than asked means the hub keeps nothing older than what
   * the view shows. A load of older ones that showed nothing new says the same.
   */
  function olderLoaded(room, join) {
    const v = views.get(room);
    if (!v) return;
    if (join.replayed < join.asked || (join.older && join.fresh === 0)) v.exhausted = true;
    if (join.older) v.older = false;
    if (room !== active) return;
    renderFeedEnd();
    if (join.older && olderWatch && !v.exhausted) {
      olderWatch.unobserve(el.loadOlder);
      olderWatch.observe(el.loadOlder);
    }
  }

  function finishRecovery() {
    const { recovered, missing } = recovery;
    endRecovery();
    const count = (n) => `${n} missed message${n === 1 ? '' : 's'}`;
    if (missing.size) {
      const where = [...missing].map(([room, reason]) => `#${room} (${reasonText(reason)})`).join(', ');
      const got = recovered ? ` Recovered ${count(recovered)} elsewhere.` : '';
      notice(`Some messages may be missing in ${where}; the latest ones are shown.${got}`, { kind: 'gap', ms: 20_000 });
    } else if (recovered) {
      notice(`Reconnected: recovered ${count(recovered)}.`, { kind: 'recovered' });
    } else {
      notice('Reconnected: no messages were missed.', { kind: 'recovered', ms: 3000 });
    }
  }

  function endRecovery() {
    clearTimeout(recoveryTimer);
    recoveryTimer = null;
    recovery = null;
  }

  function reasonText(reason) {
    switch (reason) {
      case 'epoch_changed':
        return "the room's history was reset";
      case 'too_old':
        return 'older than the history the hub keeps';
      case 'too_many':
        return 'too many to replay';
      case 'unavailable':
        return 'the history is unavailable right now';
      case 'no_history':
        return 'this hub keeps no history';
      case 'no_answer':
        return 'the hub did not answer';
      default:
        return reason;
    }
  }

  /** A line in the feed where messages of `room` may be missing: just above the newest one the page had. */
  function markGap(room, reason) {
    const li = document.createElement('div');
    li.className = 'gap';
    li.dataset.testid = 'feed-gap';
    li.dataset.room = room;
    const newest = viewFor(room).feed.querySelector('.msg');
    li.dataset.ts = String(newest ? Number(newest.dataset.ts) + 0.5 : 0);
    li.textContent = `Some messages in #${room} may be missing here (${reasonText(reason)}).`;
    placeInOrder(li);
  }

  // ---- presence: who is in each room, across every hub ----------------------------------------

  /**
   * Asks the hub who is in `room` (a room this connection is in); one question at a time per room.
   * Beyond the budget the question waits for the next tick (`due`), except the active room's.
   */
  function askPresence(room) {
    if (!rooms.has(room) || !ws || ws.readyState !== WebSocket.OPEN || !welcomed) return;
    // One member, the user, and the hub keeps no presence there (no_presence): nothing to ask.
    if (room.startsWith(PERSONAL_PREFIX)) return;
    let p = presence.get(room);
    if (!p) {
      p = { members: new Map(), state: 'asking', waiting: null, askedAt: 0, large: false, due: false };
      presence.set(room, p);
    }
    if (p.waiting) return;
    if (presenceBudget <= 0 && room !== active) {
      p.due = true;
      return;
    }
    presenceBudget = Math.max(0, presenceBudget - 1);
    p.due = false;
    ws.send(JSON.stringify({ type: 'presence', room }));
    p.waiting = [];
    p.askedAt = Date.now();
  }

  function onPresence(f) {
    const room = str(f.room);
    const p = presence.get(room);
    if (!p || !p.waiting || !rooms.has(room)) return;
    const members = new Map();
    for (const m of Array.isArray(f.members) ? f.members : []) {
      const user = m && typeof m === 'object' ? str(m.user) : '';
      if (user) members.set(user, str(m.name));
    }
    p.members = members;
    p.large = Math.max(members.size, Number(f.count) || 0) > PRESENCE_EVENTS_MAX;
    // The answer was read at some point after the question: diffs that came since are applied on
    // top, in order (each one follows the write it announces, so the last word is always right).
    const diffs = p.waiting;
    p.waiting = null;
    p.state = 'live';
    for (const d of diffs) applyDiff(p, d);
    presenceChanged(room);
  }

  function onPresenceDiff(f) {
    const room = str(f.room);
    const p = presence.get(room);
    if (!p) return; // not asked yet: the answer to come includes this change
    if (p.waiting) p.waiting.push(f);
    else if (p.state === 'live') {
      applyDiff(p, f);
      presenceChanged(room);
    }
  }

  function applyDiff(p, f) {
    for (const j of Array.isArray(f.joins) ? f.joins : []) {
      const user = j && typeof j === 'object' ? str(j.user) : '';
      if (user) p.members.set(user, str(j.name));
    }
    for (const l of Array.isArray(f.leaves) ? f.leaves : []) {
      const user = l && typeof l === 'object' ? str(l.user) : '';
      if (user) p.members.delete(user);
    }
  }

  /**
   * An error that answers a presence question (it names the room, and no join of that room is
   * waiting for its answer): shown in the member list, not as a notice.
   */
  function presenceRefused(f) {
    const room = str(f.room);
    const p = room ? presence.get(room) : undefined;
    if (!p || !p.waiting || joins.has(room)) return false;
    p.waiting = null;
    p.state = str(f.code) === 'forbidden' ? 'forbidden' : 'unavailable';
    presenceChanged(room);
    return true;
  }

  // Once a second: questions left unanswered, questions put off, rooms to ask again (unavailable, or
  // too large for events).
  function presenceTick() {
    presenceBudget = Math.min(PRESENCE_ASKS_BURST, presenceBudget + PRESENCE_ASKS_PER_TICK);
    if (!welcomed) return;
    const now = Date.now();
    for (const [room, p] of presence) {
      if (!rooms.has(room)) continue;
      if (p.due) {
        askPresence(room);
      } else if (p.waiting) {
        if (now - p.askedAt < PRESENCE_WAIT_MS) continue;
        p.waiting = null;
        p.state = 'unavailable';
        presenceChanged(room);
      } else if (p.state === 'unavailable' && now - p.askedAt >= PRESENCE_RETRY_MS) {
        askPresence(room);
      } else if (p.state === 'live' && p.large && now - p.askedAt >= PRESENCE_POLL_MS) {
        askPresence(room);
      }
    }
  }

  function presenceChanged(room) {
    renderCount(room);
    if (room === active) renderMembers();
  }

  /** The member list of the active room: one item per user, this user first and marked "(you)". */
  function renderMembers() {
    const room = active;
    const p = room ? presence.get(room) : undefined;
    const members = p ? [...p.members] : [];
    const you = (user) => user === me.userId;
    const label = (user, name) => name || shortId(user);
    members.sort(([a, an], [b, bn]) =>
      Number(you(b)) - Number(you(a)) ||
      Number(!an) - Number(!bn) ||
      label(a, an).localeCompare(label(b, bn), undefined, { sensitivity: 'base' }) ||
      (a < b ? -1 : a > b ? 1 : 0));
    el.membersTitle.textContent = room ? `In #${room}` : 'No room';
    el.members.dataset.room = room;
    el.members.dataset.state = p ? p.state : 'none';
    el.members.replaceChildren(
      ...members.slice(0, MEMBERS_SHOWN).map(([user, name]) => {
        const li = document.createElement('li');
        li.dataset.user = user;
        li.dataset.you = String(you(user));
        li.title = name ? `${name} (${user})` : user;
        // The same colour as the person's messages in the feed.
        li.style.setProperty('--hue', String(hue(user)));
        li.append(span('name', label(user, name)));
        if (you(user)) li.append(span('you', ' (you)'));
        return li;
      }),
    );
    const notes = [];
    if (!p || p.state === 'asking') notes.push('Finding out who is here…');
    else if (p.state === 'stale') notes.push('Not live: as it was when the connection dropped.');
    else if (p.state === 'unavailable') notes.push('Who is here is unknown right now (the hub cannot tell); asking again…');
    else if (p.state === 'forbidden') notes.push('You may not see who is here.');
    if (members.length > MEMBERS_SHOWN) notes.push(`and ${members.length - MEMBERS_SHOWN} more.`);
    if (p && p.large && p.state === 'live') notes.push(`A large room: the list is refreshed every ${PRESENCE_POLL_MS / 1000} s.`);
    el.membersNote.textContent = notes.join(' ');
    el.membersNote.hidden = !room || !notes.length;
  }

  /**
   * A room's member count and unread count in the room list, and its button's label (in place: a
   * focused room button keeps its focus).
   */
  function renderCount(room) {
    const li = [...el.rooms.children].find((c) => c.dataset.room === room);
    if (!li) return;
    const badge = li.querySelector('.count');
    const b = li.querySelector('button');
    const p = presence.get(room);
    const known = !!p && (p.state === 'live' || p.state === 'stale');
    const n = known ? p.members.size : 0;
    const people = `${n} ${n === 1 ? 'person' : 'people'}`;
    badge.textContent = known ? String(n) : p && p.state !== 'asking' ? '?' : '';
    badge.hidden = badge.textContent === '';
    li.dataset.count = known ? String(n) : '';
    li.classList.toggle('stale', !!p && p.state === 'stale');
    const v = views.get(room);
    const unread = v && room !== active ? v.unread : 0;
    const mention = unread > 0 && v.mention;
    const u = li.querySelector('.unread');
    u.querySelector('.n').textContent = unread > 99 ? '99+' : String(unread);
    u.querySelector('.said').textContent = ` unread${mention ? ', you are mentioned' : ''}`;
    u.hidden = !unread;
    u.dataset.mention = String(mention);
    li.dataset.unread = String(unread);
    li.dataset.mention = String(mention);
    li.querySelector('.people').textContent = known ? ` ${n === 1 ? 'person' : 'people'} here` : '';
    b.title = `${room === active ? 'Messages go to this room' : 'Write in this room'}${known ? ` · ${people} here` : ''}`;
  }

  // ---- own messages: pending → sent (ack) or failed ------------------------------------------

  function sendOwn(room, content) {
    refSeq += 1;
    const ref = `m${refSeq}`;
    if (!sendFrame({ type: 'message', room, content, ref })) return false;
    // The hub never echoes a sender's own message, so the page shows it itself, marked "you".
    const li = messageItem({
      id: '',
      room,
      from: me.clientId,
      userId: me.userId || me.clientId,
      name: me.name,
      hub: me.hub,
      content,
      timestamp: new Date().toISOString(),
      own: true,
      replayed: '',
      epoch: '',
      offset: null,
    });
    const entry = { ref, li, room, content, clientId: me.clientId, state: 'pending', timer: null };
    entry.timer = setTimeout(() => failOwn(entry, 'no confirmation', `no answer from the hub within ${ACK_TIMEOUT_MS / 1000} s`), ACK_TIMEOUT_MS);
    outbox.set(ref, entry);
    setOwnState(li, 'pending');
    placeNewest(li);
    return true;
  }

  function onAck(f) {
    const entry = outbox.get(str(f.ref));
    if (!entry) return;
    const c = cursors.get(entry.room);
    const offset = Number.isSafeInteger(f.offset) ? f.offset : null;
    // The ack has no epoch: it is the room's current one (it only orders the item, never the cursor:
    // messages before this offset may still be on their way to this page).
    confirmOwn(entry, str(f.id), c && offset !== null ? c.epoch : '', offset);
  }

  function confirmOwn(entry, id, epoch, offset) {
    clearTimeout(entry.timer);
    outbox.delete(entry.ref);
    entry.state = 'sent';
    const { li } = entry;
    if (id) {
      const other = shown.get(id);
      if (other && other !== li) forget(other);
      li.dataset.id = id;
      if (li.parentNode) shown.set(id, li); // in its room's view (open or not), not trimmed away
    }
    if (epoch && offset !== null) setOrder(li, epoch, offset);
    setOwnState(li, 'sent');
  }

  function failOwn(entry, short, why, state = 'failed') {
    if (entry.state !== 'pending') return;
    clearTimeout(entry.timer);
    entry.state = 'failed';
    setOwnState(entry.li, state, short, why);
    // Kept (a late ack, or a recovery that replays it, still confirms it), but not forever.
    const failed = [...outbox.values()].filter((e) => e.state === 'failed');
    for (const old of failed.slice(0, Math.max(0, failed.length - UNCONFIRMED_KEEP))) outbox.delete(old.ref);
  }

  function failPending(short) {
    for (const entry of [...outbox.values()]) {
      if (entry.state === 'pending') failOwn(entry, short, 'the connection dropped before the hub confirmed it');
    }
  }

  /** The oldest own message not yet confirmed that this replayed one is: same connection, room, text. */
  function unconfirmedOwn(room, from, content) {
    for (const entry of outbox.values()) {
      if (entry.room === room && entry.clientId === from && entry.content === content) return entry;
    }
    return undefined;
  }

  // ---- rendering ------------------------------------------------------------------------------

  function renderRooms() {
    // Rebuilt whole: a room button that had the focus gets it back (keyboard users stay where they were).
    const focused = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest('#rooms li')
      : null;
    const focusRoom = focused ? focused.dataset.room : '';
    el.rooms.replaceChildren(
      ...[...wantedRooms].sort().map((room) => {
        const li = document.createElement('li');
        li.dataset.room = room;
        if (room === active) li.setAttribute('data-active', '');
        if (!rooms.has(room)) li.classList.add('pending');
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'room-button';
        if (room === active) b.setAttribute('aria-current', 'true');
        // Messages not read yet (live while another room was open), "@" when one mentions this user.
        // The button's name is what it shows, with words for the signs (hidden from sight only).
        const unread = span('unread', '');
        unread.dataset.testid = 'unread';
        const at = span('at', '@');
        at.setAttribute('aria-hidden', 'true');
        unread.append(at, span('n', ''), span('visually-hidden said', ''));
        // How many are in the room, across every hub (blank until the hub has answered).
        const count = span('count', '');
        count.dataset.testid = 'room-count';
        b.append(span('name', `#${room}`), unread, count, span('visually-hidden people', ''));
        b.addEventListener('click', () => {
          activate(room);
          el.message.focus();
        });
        li.append(b);
        return li;
      }),
    );
    for (const room of wantedRooms) renderCount(room);
    if (focusRoom) {
      const b = el.rooms.querySelector(`li[data-room="${CSS.escape(focusRoom)}"] button`);
      if (b) b.focus();
    }
    showView();
    renderMembers();
    el.message.placeholder = active ? `Message #${active}` : 'Join a room to chat';
    const usable = el.status.dataset.state === 'connected' && !!active;
    el.message.disabled = !usable;
    el.send.disabled = !usable;
  }

  // ---- one view per room ----------------------------------------------------------------------

  /** The view of `room` ('' when the page is in no room: an empty feed), made on first use. */
  function viewFor(room) {
    let v = views.get(room);
    if (v) return v;
    const feed = document.createElement('div');
    feed.className = 'feed';
    feed.dataset.testid = 'feed';
    feed.dataset.room = room;
    // A log: screen readers announce what is added (politely), not every time label redrawn.
    feed.setAttribute('role', 'log');
    feed.setAttribute('aria-live', 'polite');
    feed.setAttribute('aria-relevant', 'additions');
    feed.setAttribute('aria-label', room ? `Messages in #${room}, newest first` : 'Messages');
    feed.tabIndex = 0; // keyboard users can focus it and scroll with the arrow keys
    // msgs: its messages (a live collection: no count kept by hand).
    v = { room, feed, msgs: feed.getElementsByClassName('msg'), unread: 0, mention: false, scrollTop: 0, atTop: true, older: false, exhausted: false, daysDirty: false };
    views.set(room, v);
    return v;
  }

  /** Puts the active room's view in the page (the others stay detached: they cost no layout). */
  function showView() {
    const v = viewFor(active);
    const current = el.feedScroll.querySelector('.feed');
    if (current !== v.feed) {
      const old = current ? views.get(current.dataset.room) : undefined;
      if (old && old.feed === current) old.scrollTop = el.feedScroll.scrollTop;
      if (current) current.remove();
      el.feedScroll.prepend(v.feed);
      el.feedScroll.scrollTop = v.scrollTop;
      v.atTop = v.scrollTop < AT_TOP_PX;
      v.daysDirty = true;
    }
    // Opened: nothing in it is unread any more.
    if (v.unread || v.mention) {
      v.unread = 0;
      v.mention = false;
      renderCount(active);
    }
    if (v.daysDirty) fixDays(v);
    refreshTimes(v.feed);
    renderFeedEnd();
    el.roomTitle.textContent = active ? `#${active}` : 'No room';
  }

  function dropView(room) {
    const v = views.get(room);
    if (!v) return;
    for (const item of [...v.feed.children]) forget(item);
    v.feed.remove();
    views.delete(room);
  }

  /** The end of the active feed: a button to load earlier messages, or a line saying there are none. */
  function renderFeedEnd() {
    const v = views.get(active);
    const can = !!v && !!active && rooms.has(active) && !v.exhausted;
    const text = v && v.older ? 'Loading earlier messages…' : 'Load earlier messages';
    if (el.loadOlder.hidden !== !can) el.loadOlder.hidden = !can;
    if (el.loadOlder.textContent !== text) el.loadOlder.textContent = text;
    el.loadOlder.setAttribute('aria-busy', String(!!(v && v.older)));
    const end = !!v && !!active && rooms.has(active) && v.exhausted && v.msgs.length > 0;
    if (el.feedEnd.hidden !== !end) el.feedEnd.hidden = !end;
  }

  /**
   * Asks the hub for more of the active room's history than is shown (a join with a larger
   * `history`: the ones already shown are dropped as copies, the older ones placed in order).
   */
  function loadOlder() {
    const v = views.get(active);
    if (!v || !active || v.older || v.exhausted || !rooms.has(active)) return;
    const shownNow = v.msgs.length;
    if (!sendJoin(active, 'history', { n: shownNow + OLDER_PAGE, older: true })) return;
    v.older = true;
    renderFeedEnd();
  }

  // Scrolled near the oldest shown: load more. Observed again after each load, so that a button still
  // in sight once the new messages are laid out (a short page of them) asks for the next page.
  const olderWatch = 'IntersectionObserver' in window
    ? new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) loadOlder();
    }, { root: el.feedScroll, rootMargin: '0px 0px 200px 0px' })
    : null;
  if (olderWatch) olderWatch.observe(el.loadOlder);

  /** The user picked `room` (in the list or the room field): it becomes the active room. */
  function activate(room) {
    active = room;
    el.roomInput.value = room;
    renderRooms();
    askPresence(room);
    saveSoon();
  }

  /** A feed item for one message; placed by placeNewest / placeInOrder. */
  function messageItem(m) {
    const li = document.createElement('article');
    li.className = 'msg';
    li.dataset.testid = 'feed-item';
    li.dataset.id = m.id;
    li.dataset.room = m.room;
    li.dataset.hub = m.hub;
    li.dataset.from = m.from;
    li.dataset.user = m.userId;
    li.dataset.name = m.name;
    li.dataset.own = String(m.own);
    const date = new Date(m.timestamp);
    const valid = !Number.isNaN(date.getTime());
    const ts = valid ? date.getTime() : Date.now();
    li.dataset.ts = String(ts);
    if (m.offset !== null) setOrder(li, m.epoch, m.offset);
    if (m.own) li.classList.add('own');
    if (!m.room) li.classList.add('broadcast');
    // Colour by user, not by connection: one person keeps one colour across reconnects and tabs.
    li.style.setProperty('--hue', String(hue(m.userId)));

    const meta = document.createElement('div');
    meta.className = 'meta';
    // A name when the hub has one (signed in); anonymous clients show a short id.
    const label = m.name || shortId(m.userId);
    const from = span('from', m.own ? (m.name ? `${m.name} (you)` : 'you') : label);
    from.title = m.userId;
    const room = span('room', m.room ? `#${m.room}` : 'all rooms');
    const hub = span('hub', `via ${m.hub || '?'}`);
    meta.append(from, room, hub);
    if (m.replayed) {
      // Not live: said before this page joined (history), or while it was away (recovery).
      li.dataset.replayed = m.replayed;
      li.classList.add('replayed');
      const mark = span('replayed-mark', m.replayed === 'since' ? 'missed while away' : 'earlier');
      mark.title = m.replayed === 'since' ? 'Sent while this page was disconnected' : 'Sent before this page joined the room';
      meta.append(mark);
    }
    if (!m.own && mentionsMe(m.content)) {
      // Said in words and a sign, the colour only helps.
      li.classList.add('mentions-me');
      li.dataset.mention = 'true';
      meta.append(span('mention-mark', '@ mentions you'));
    }
    // "just now", "5 min ago", then the clock time (the day is on the separator above); redrawn
    // every TIME_TICK_MS while the page is open. The full date and time are in the title.
    const time = document.createElement('time');
    time.className = 'time';
    time.dateTime = valid ? date.toISOString() : '';
    time.dataset.ts = String(ts);
    time.textContent = valid ? timeText(ts, Date.now()) : '—';
    time.title = valid ? date.toLocaleString() : m.timestamp;
    meta.append(time);
    if (m.own) meta.append(span('state', ''));

    const content = document.createElement('p');
    content.className = 'content';
    content.textContent = m.content;

    li.append(meta, content);
    return li;
  }

  // An own message's delivery state, in words and a symbol (not by colour alone); a failed one
  // has a Retry button.
  function setOwnState(li, state, short = '', why = '') {
    li.dataset.state = state;
    const s = li.querySelector('.state');
    if (!s) return;
    if (state === 'pending') {
      s.textContent = '… sending';
      s.title = 'Waiting for the hub to confirm it';
    } else if (state === 'sent') {
      s.textContent = '✓ sent';
      s.title = 'The hub has it';
    } else if (state === 'refused') {
      s.textContent = `✕ ${short}`;
      s.title = why || short;
    } else {
      s.textContent = `✕ not sent (${short})`;
      s.title = why || short;
    }
    let retry = li.querySelector('.retry');
    if (state === 'failed' && !retry) {
      retry = document.createElement('button');
      retry.type = 'button';
      retry.className = 'retry';
      retry.dataset.testid = 'retry';
      retry.textContent = 'Retry';
      const text = li.querySelector('.content')?.textContent ?? '';
      retry.setAttribute('aria-label', `Retry sending "${text.length > 40 ? `${text.slice(0, 40)}…` : text}"`);
      retry.addEventListener('click', () => retryOwn(li));
      s.after(retry);
    } else if (state !== 'failed' && retry) {
      retry.remove();
    }
  }

  /** Sends a failed own message again, as a new message on top; the failed one goes. */
  function retryOwn(li) {
    if (li.dataset.state !== 'failed') return;
    const room = li.dataset.room;
    const content = li.querySelector('.content')?.textContent ?? '';
    if (!room || !rooms.has(room)) {
      notice(`You are not in #${room} any more.`);
      return;
    }
    if (!sendOwn(room, content)) return;
    for (const [ref, entry] of outbox) {
      if (entry.li === li) {
        clearTimeout(entry.timer);
        outbox.delete(ref);
      }
    }
    forget(li);
    el.message.focus();
  }

  function setOrder(li, epoch, offset) {
    li.dataset.epoch = epoch;
    li.dataset.offset = String(offset);
  }

  // `a` belongs above `b`: by offset within one room's epoch (exact), else by time.
  function isNewer(a, b) {
    const x = a.dataset;
    const y = b.dataset;
    if (x.room && x.room === y.room && x.epoch && x.epoch === y.epoch && x.offset && y.offset) {
      return Number(x.offset) > Number(y.offset);
    }
    return Number(x.ts) > Number(y.ts);
  }

  /** The view an item belongs in: its room's (a broadcast: the active room's). */
  function viewOfItem(li) {
    return viewFor(li.dataset.room || active);
  }

  /** A live message: it is the newest, on top (under its day's separator when there is one). */
  function placeNewest(li) {
    const v = viewOfItem(li);
    remember(li);
    const first = v.feed.firstElementChild;
    if (first && first.classList.contains('day') && first.dataset.day === String(dayStart(Number(li.dataset.ts)))) {
      first.after(li);
    } else {
      v.feed.prepend(li);
      markDays(v);
    }
    trimFeed(v);
  }

  /** A replayed message (or a gap line): under everything newer, so the feed stays newest first. */
  function placeInOrder(li) {
    const v = viewOfItem(li);
    let at = v.feed.firstElementChild;
    while (at && (at.classList.contains('day') || !isNewer(li, at))) at = at.nextElementSibling;
    remember(li);
    v.feed.insertBefore(li, at);
    markDays(v);
    trimFeed(v);
  }

  function remember(li) {
    if (li.dataset.id) shown.set(li.dataset.id, li);
  }

  function forget(li) {
    if (li.dataset.id && shown.get(li.dataset.id) === li) shown.delete(li.dataset.id);
    li.remove();
  }

  // Bounded per room: FEED_MAX while the reader is at the newest (or the room is not open),
  // FEED_HARD_MAX while reading further down. What goes can be loaded again from the history.
  function trimFeed(v) {
    const limit = v.room === active && !v.atTop ? FEED_HARD_MAX : FEED_MAX;
    if (v.msgs.length <= limit) return;
    while (v.msgs.length > limit) forget(v.feed.lastElementChild);
    v.exhausted = false;
    markDays(v);
    if (v.room === active) renderFeedEnd();
  }

  function clearFeed() {
    for (const entry of outbox.values()) clearTimeout(entry.timer);
    outbox.clear();
    shown.clear();
    for (const v of views.values()) v.feed.remove();
    views.clear();
    showView();
  }

  // ---- days and times ---------------------------------------------------------------------------

  function dayStart(ts) {
    const d = new Date(ts);
    d.setHours(0, 0, 0, 0);
    return d.getTime();
  }

  /** "Today", "Yesterday", else the date (with the year when it is not this one). */
  function dayLabel(start, now) {
    const today = dayStart(now);
    if (start === today) return 'Today';
    const yesterday = new Date(today);
    yesterday.setDate(yesterday.getDate() - 1);
    if (start === yesterday.getTime()) return 'Yesterday';
    const d = new Date(start);
    const opts = { weekday: 'long', day: 'numeric', month: 'long' };
    if (d.getFullYear() !== new Date(now).getFullYear()) opts.year = 'numeric';
    return d.toLocaleDateString(undefined, opts);
  }

  function timeText(ts, now) {
    const s = (now - ts) / 1000;
    if (s < 45) return 'just now'; // a little in the future too (clocks differ)
    if (s < 3600) return `${Math.max(1, Math.round(s / 60))} min ago`;
    return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  // Separators are put right once per frame for the open view (a burst of messages costs one pass),
  // and when a view is opened.
  function markDays(v) {
    v.daysDirty = true;
    if (v.room !== active || daysTimer) return;
    daysTimer = requestAnimationFrame(() => {
      daysTimer = 0;
      const open = views.get(active);
      if (open && open.daysDirty) fixDays(open);
    });
  }

  /**
   * One separator above each day's messages (newest first, so above the day's newest). Separators
   * already right stay: a screen reader hears a day's name once, when its first message comes.
   */
  function fixDays(v) {
    v.daysDirty = false;
    const now = Date.now();
    let prevDay = null;
    let sep = null; // a separator seen, waiting for the message under it
    for (let node = v.feed.firstElementChild; node;) {
      const next = node.nextElementSibling;
      if (node.classList.contains('day')) {
        if (sep) sep.remove();
        sep = node;
      } else if (node.classList.contains('msg')) {
        const day = dayStart(Number(node.dataset.ts));
        if (day !== prevDay) {
          if (!sep || Number(sep.dataset.day) !== day) {
            if (sep) sep.remove();
            node.before(daySeparator(day, now));
          }
        } else if (sep) {
          sep.remove();
        }
        sep = null;
        prevDay = day;
      }
      node = next;
    }
    if (sep) sep.remove();
  }

  function daySeparator(day, now) {
    const d = document.createElement('div');
    d.className = 'day';
    d.dataset.testid = 'day-separator';
    d.dataset.day = String(day);
    d.append(span('day-label', dayLabel(day, now)));
    return d;
  }

  /** Relative times and day labels of a view, as of now. */
  function refreshTimes(feed) {
    const now = Date.now();
    for (const t of feed.getElementsByClassName('time')) {
      const ts = Number(t.dataset.ts);
      if (!t.dateTime || !ts) continue;
      const text = timeText(ts, now);
      if (t.textContent !== text) t.textContent = text;
    }
    for (const d of feed.getElementsByClassName('day-label')) {
      const text = dayLabel(Number(d.parentElement.dataset.day), now);
      if (d.textContent !== text) d.textContent = text;
    }
  }

  // ---- unread and mentions ----------------------------------------------------------------------

  let mentionKey = null;
  let mentionRes = [];

  /** Whether chat text mentions this user: "@" and their name (or its first word), any case. */
  function mentionsMe(content) {
    const names = [me.name, identity ? identity.name : ''].filter(Boolean);
    if (!names.length && me.userId) names.push(shortId(me.userId));
    const key = names.join('\n');
    if (key !== mentionKey) {
      mentionKey = key;
      const words = new Set();
      for (const n of names) {
        words.add(n);
        const first = n.split(/\s+/)[0];
        if ([...first].length >= 2) words.add(first);
      }
      mentionRes = [...words].map((w) =>
        new RegExp(`(?:^|[^\\p{L}\\p{N}_])@${w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\p{L}\\p{N}_])`, 'iu'));
    }
    return mentionRes.some((re) => re.test(content));
  }

  /** A message for another room than the open one: counted unread there (a mention marks the count). */
  function noteUnread(li, kind) {
    const room = li.dataset.room;
    if (!room || room === active || kind === 'history' || li.dataset.own === 'true') return;
    const v = viewFor(room);
    v.unread += 1;
    if (li.dataset.mention === 'true') v.mention = true;
    renderCount(room);
  }

  function span(cls, text) {
    const s = document.createElement('span');
    s.className = cls;
    s.textContent = text;
    return s;
  }

  function shortId(id) {
    return id ? id.slice(0, 8) : 'unknown';
  }

  function hue(id) {
    let h = 0;
    for (let i = 0; i < id.length; i += 1) h = (h * 31 + id.charCodeAt(i)) % 360;
    return h;
  }

  function str(v) {
    return typeof v === 'string' ? v : v == null ? '' : String(v);
  }

  // ---- this tab's session (sessionStorage): rooms, cursors, client ids -----------------------

  // Cursors move with every message: written at most every SAVE_EVERY_MS, and when the page goes.
  function saveSoon() {
    if (!saveTimer) saveTimer = setTimeout(saveSession, SAVE_EVERY_MS);
  }

  function saveSession() {
    clearTimeout(saveTimer);
    saveTimer = null;
    try {
      sessionStorage.setItem(
        SESSION_KEY,
        JSON.stringify({
          rooms: [...wantedRooms],
          active,
          cursors: Object.fromEntries(cursors),
          clientIds: [...ownClientIds],
        }),
      );
    } catch {
      // Storage off or full: a reload then starts with the rooms' earlier messages instead.
    }
  }

  // A reload of this tab comes back to the same rooms and recovers what it missed meanwhile.
  function loadSession() {
    let v;
    try {
      v = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    } catch {
      return;
    }
    if (!v || typeof v !== 'object') return;
    if (Array.isArray(v.rooms)) {
      const kept = v.rooms.filter((r) => typeof r === 'string' && ROOM_RE.test(r));
      wantedRooms.clear();
      for (const r of kept) wantedRooms.add(r);
      if (typeof v.active === 'string' && wantedRooms.has(v.active)) active = v.active;
      else active = firstRoom();
    }
    for (const [room, c] of Object.entries(v.cursors && typeof v.cursors === 'object' ? v.cursors : {})) {
      if (ROOM_RE.test(room) && wantedRooms.has(room) && c && typeof c.epoch === 'string' && c.epoch &&
        Number.isSafeInteger(c.offset) && c.offset >= 0) {
        cursors.set(room, { epoch: c.epoch, offset: c.offset });
      }
    }
    for (const id of Array.isArray(v.clientIds) ? v.clientIds.slice(-CLIENT_IDS_KEEP) : []) {
      if (typeof id === 'string' && id) ownClientIds.add(id);
    }
  }

  // ---- user actions ---------------------------------------------------------------------------

  el.connect.addEventListener('click', () => {
    if (el.status.dataset.state === 'disconnected') {
      wanted = true;
      attempt = 0;
      connect();
    } else {
      disconnect();
    }
  });

  el.signin.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = el.signinName.value.trim();
    if (!name || [...name].length > NAME_MAX) {
      showSignIn(`A name is 1–${NAME_MAX} characters.`);
      return;
    }
    signIn(name);
  });

  el.signout.addEventListener('click', signOut);

  function roomFromInput() {
    const room = el.roomInput.value.trim() || active;
    if (!ROOM_RE.test(room)) {
      notice('A room name is 1–64 letters, digits or _ . : -');
      return '';
    }
    return room;
  }

  el.roomForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const room = roomFromInput();
    if (!room) return;
    if (rooms.has(room)) {
      activate(room);
      return;
    }
    userJoins.add(room);
    leftPersonal.delete(room);
    // A room joined now shows what was said there lately.
    sendJoin(room, 'history');
  });

  el.leave.addEventListener('click', () => {
    const room = roomFromInput();
    if (!room) return;
    if (!rooms.has(room)) {
      notice(`You are not in #${room}.`);
      return;
    }
    if (room.startsWith(PERSONAL_PREFIX)) leftPersonal.add(room);
    sendFrame({ type: 'leave', room });
  });

  el.compose.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const content = el.message.value;
    if (!content.trim() || !active) return;
    if (!sendOwn(active, content)) return;
    el.message.value = '';
  });

  // Enter sends, Shift+Enter is a new line (and Enter while an input method composes is its own).
  el.message.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter' || ev.shiftKey || ev.isComposing || ev.keyCode === 229) return;
    ev.preventDefault();
    el.compose.requestSubmit();
  });

  // Alt+↑ / Alt+↓: the previous / next room, from anywhere on the page.
  document.addEventListener('keydown', (ev) => {
    if (!ev.altKey || ev.ctrlKey || ev.metaKey || (ev.key !== 'ArrowUp' && ev.key !== 'ArrowDown')) return;
    if (body.dataset.view !== 'chat') return;
    const list = [...wantedRooms].sort();
    if (list.length < 2) return;
    ev.preventDefault();
    const i = Math.max(0, list.indexOf(active));
    activate(list[(i + (ev.key === 'ArrowDown' ? 1 : list.length - 1)) % list.length]);
  });

  el.loadOlder.addEventListener('click', loadOlder);

  // Where the reader is: at the newest (the top), or further down reading older messages.
  el.feedScroll.addEventListener('scroll', () => {
    const v = views.get(active);
    if (v) v.atTop = el.feedScroll.scrollTop < AT_TOP_PX;
  }, { passive: true });

  // Relative times and day labels stay right while the page is open (also across midnight).
  setInterval(() => {
    const v = views.get(active);
    if (v && v.feed.isConnected) refreshTimes(v.feed);
  }, TIME_TICK_MS);

  // Back online: no point waiting out the backoff.
  window.addEventListener('online', () => {
    if (wanted && !ws) connect();
  });
  window.addEventListener('offline', dropForOffline);
  // A reload or a closed tab: the latest cursors must be in sessionStorage for the next load.
  window.addEventListener('pagehide', saveSession);

  // Background tabs get their timers throttled: when the tab comes back, renew an overdue token now.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible' || !identity || !token || tokenIsFresh()) return;
    clearTimeout(refreshTimer);
    refreshToken();
  });

  setInterval(presenceTick, PRESENCE_TICK_MS);
  loadSession();
  renderRooms();
  if (cfg.auth) {
    identity = loadIdentity();
    if (identity) {
      // A reload: the same name and id as before, no typing.
      el.signinName.value = identity.name;
      signIn(identity.name);
    } else {
      showSignIn('');
    }
  } else {
    showChat();
    connect();
  }
})();
