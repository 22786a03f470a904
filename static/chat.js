// The chat page's browser code: the page only — sign-in (when the server signs tokens), rooms, one
// view per room (newest on top; unread counts and mentions for the others; day separators and
// relative times), each room's earlier messages (on join, and more on scroll), own messages'
// delivery state (with retry), who is in each room (presence), what a reconnect recovered or not.
// Everything the hub's protocol asks of a client — the socket, reconnect with backoff, the token
// on the socket and its renewal, `since` recovery, offsets, copies, acks — is the JS SDK's
// (clients/js/src, served by this page's server under /sdk/). Plain JS, no build step; the only
// requests are the SDK's modules, the hub socket and POST /token to this page's own server.
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
  const NAME_MAX = 32;
  const IDENTITY_KEY = 'realtime-hub.identity'; // localStorage: {name, sub}, so a reload signs in again
  const HISTORY_LIMIT = 50; // earlier messages a room shows when joined (the hub keeps HUB_HISTORY_SIZE)
  // An own message (and a presence or history question) the hub has not answered by then is shown as
  // failed: the SDK's publishTimeout.
  const ACK_TIMEOUT_MS = 10_000;
  const UNCONFIRMED_KEEP = 50; // failed own messages remembered, to be found again in a recovery
  const CLIENT_IDS_KEEP = 20; // earlier connections of this tab whose messages are "you"
  const RECOVERY_WAIT_MS = 15_000; // rooms whose rejoin got no answer by then count as not recovered
  const SAVE_EVERY_MS = 250; // positions reach sessionStorage at most this often (and on pagehide)
  // Presence. The hub sends no presence_diff in rooms over its presence_events_max (1000 by default):
  // such a room's list is asked again every PRESENCE_POLL_MS instead.
  const PRESENCE_EVENTS_MAX = 1000;
  const PRESENCE_POLL_MS = 30_000;
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
  // The SDK, as ES modules from this page's server (a classic script may import them: no change to
  // the page's HTML, and the CSP's script-src 'self' allows it). Loaded once, at start.
  const sdk = import('/sdk/index.js');
  sdk.catch(() => {}); // a failure is shown when a connection needs it (connect)

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

  // The SDK's client while the user wants a connection (null after Disconnect, a refusal, or before
  // the first Connect); a new one after each Connect, resuming every room from its position.
  let hub = null;
  let connected = false; // the hub's welcome came on the client's current connection
  let everWelcomed = false; // a welcome came before: the next one is a reconnect
  let connectSeq = 0; // a Disconnect while the SDK loads cancels the Connect before it
  let retryAt = 0;
  let countdownTimer = null;
  let noticeTimer = null;

  const me = { clientId: '', hub: '', userId: '', name: '' };
  // Sign-in (auth mode only): who this browser is, the token signIn got (handed to the first
  // connection), and why the page stopped asking for tokens (shown at the sign-in step).
  let identity = null; // {name, sub}
  let signedInToken = null;
  let refusedSignIn = '';
  let expiredRetry = false; // one quiet retry with a fresh token after "auth failed: token expired"
  // room → {room (the SDK's Room), started (its first join was answered, or it resumed: replays are
  // then "missed while away"), everJoined, firstReplayed (what its first join replayed)}
  const subs = new Map();
  const wantedRooms = new Set([DEFAULT_ROOM]); // rooms the user chose; restored after a reconnect
  const userJoins = new Set(); // joins the user asked for (their room becomes the active one)
  const leftPersonal = new Set(); // personal rooms the user left: not kept on the next welcome
  let active = DEFAULT_ROOM;
  // A room's position (epoch, offset: everything up to there was shown) kept across a reload of this
  // tab and a Disconnect: the next client subscribes with `since` and the hub replays what was missed.
  const cursors = new Map();
  const shown = new Map(); // message id → its feed item: a message seen twice (live, then in a history) shows once
  const loaded = new Set(); // rooms whose earlier messages this page has asked for (not after a reload)
  let recovery = null; // after a (re)connect: {waiting: Set(room), recovered, missing: Map(room → reason)}
  let recoveryTimer = null;
  const ownClientIds = new Set(); // every client id this tab had: messages from them are "you"
  // Own messages until the hub confirms them: ref → {ref, li, room, content, clientId, state}.
  const outbox = new Map();
  let refSeq = 0;
  let saveTimer = null;
  // Who is in each room this page is in, across every hub: the hub's answer to a presence question,
  // then its presence_diff events. room → {members: Map(user → name), state, waiting, askedAt, large}:
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

  /** Whether the room is joined on the current connection. */
  function isIn(room) {
    const sub = subs.get(room);
    return !!sub && connected && sub.room.joined;
  }

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

  /** POST /token; resolves to the answer ({token, name, sub}) or throws an Error with `status` and `code`. */
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
    return answer;
  }

  /** Who the answer to POST /token says this browser is: kept, so a reload signs in again. */
  function adopt(answer, name) {
    identity = { name: str(answer.name) || name, sub: str(answer.sub) };
    saveIdentity(identity);
    return answer.token;
  }

  // A refused request (4xx) will be refused again: only the user can fix it (another name).
  const isRefusal = (e) => e.status >= 400 && e.status < 500;

  /**
   * The SDK's token function: asked for each connection, before the token runs out (the SDK renews
   * it on the open socket), and after the hub refused it. null stops the client: a refusal a new
   * token would not fix, or a sign-in this page's server refuses, sends the user back to sign in
   * rather than into a loop of refused sockets. `current`: whether the asking client is still the
   * page's (a Disconnect meanwhile: its status is not this one's to show).
   */
  async function tokenFor(request, current) {
    if (!identity) return null;
    if (request.cause === 'refused') {
      const expired = request.code === 4002 || /expired/i.test(request.reason || '');
      // The token ran out while the socket was down: one retry with a fresh one.
      if (!expired || (request.code === 4001 && expiredRetry)) return null;
      if (request.code === 4001) expiredRetry = true;
    }
    if (request.cause === 'connect' && signedInToken) {
      const token = signedInToken;
      signedInToken = null;
      return token;
    }
    if (request.cause !== 'refresh') setStatus('connecting', `Signing in as ${identity.name}…`);
    try {
      const answer = await requestToken(identity.name);
      // Signed out meanwhile: the answer is nobody's now.
      if (!current() || !identity) return null;
      if (request.cause !== 'refresh') setStatus('connecting', `Connecting to ${hubDisplay()}…`);
      return adopt(answer, identity.name);
    } catch (e) {
      if (!current()) return null;
      if (request.cause === 'refresh') {
        notice(`Could not renew the sign-in: ${e.message}`);
        // Refused: no renewal (the hub closes with 4002 when the token runs out, and the reconnect
        // signs in again); otherwise the SDK asks again soon.
        if (isRefusal(e)) return null;
        throw e;
      }
      if (isRefusal(e)) {
        refusedSignIn = `Sign-in failed: ${e.message}`;
        return null;
      }
      notice(`Sign-in failed: ${e.message}`);
      throw e;
    }
  }

  async function signIn(name) {
    el.signinButton.disabled = true;
    el.signinName.disabled = true;
    setStatus('connecting', `Signing in as ${name}…`);
    try {
      signedInToken = adopt(await requestToken(name), name);
    } catch (e) {
      showSignIn(`Sign-in failed: ${e.message}`);
      return;
    }
    showChat();
    showMe();
    expiredRetry = false;
    connect();
  }

  function signOut() {
    disconnect();
    signedInToken = null;
    identity = null;
    saveIdentity(null);
    me.name = '';
    el.signinName.value = '';
    // The next person in this tab starts afresh: no feed, no positions, no "you" from the last one.
    clearFeed();
    cursors.clear();
    loaded.clear();
    presence.clear();
    ownClientIds.clear();
    everWelcomed = false;
    saveSession();
    showSignIn('');
  }

  // ---- the connection: the SDK's client, and what its states mean for the user ------------------

  async function connect() {
    if (hub) return;
    if (cfg.auth && !identity) {
      showSignIn('');
      return;
    }
    const seq = ++connectSeq;
    setStatus('connecting', `Connecting to ${hubDisplay()}…`);
    let HubClient;
    try {
      ({ HubClient } = await sdk);
    } catch (e) {
      notice(`Cannot load the hub client (/sdk/index.js): ${e.message}`, { sticky: true });
      setStatus('disconnected', 'Disconnected');
      return;
    }
    if (hub || seq !== connectSeq) return;
    refusedSignIn = '';
    const client = new HubClient(cfg.hubUrl, {
      token: cfg.auth ? (request) => tokenFor(request, () => hub === client) : undefined,
      reconnectDelayMin: cfg.minMs,
      reconnectDelayMax: cfg.maxMs,
      publishTimeout: ACK_TIMEOUT_MS,
      // The page's CSP lets it reach the hub's WebSocket URL only.
      sse: false,
    });
    hub = client;
    // Events of a client the page has let go (Disconnect) are not the page's any more.
    client.on('state', (state, info) => {
      if (hub === client) onState(state, info);
    });
    client.on('broadcast', (f) => {
      if (hub === client) showMessage(f, 'live');
    });
    // A renewed token was accepted; the hub may know the user by a new name now.
    client.on('token', (t) => {
      if (hub === client) onUser(t.user);
    });
    client.on('error', (e) => {
      if (hub === client) onClientError(e);
    });
    for (const room of wantedRooms) subscribe(room);
    // How it goes is told by the state events; a client closed before its welcome rejects here.
    client.connect().catch(() => {});
  }

  /** Lets the client go (Disconnect, a refusal): rooms keep their positions for the next one. */
  function stopClient() {
    const client = hub;
    if (!client) return;
    keepPositions();
    hub = null;
    connected = false;
    subs.clear();
    clearInterval(countdownTimer);
    countdownTimer = null;
    client.close();
    connectionLost();
  }

  function disconnect() {
    connectSeq += 1;
    stopClient();
    setStatus('disconnected', 'Disconnected');
  }

  function onState(state, info) {
    clearInterval(countdownTimer);
    countdownTimer = null;
    if (state === 'connected') onWelcome(info);
    else if (state === 'disconnected') onDropped(info);
    else if (state === 'closed') onClosed(info);
    // The token function, when asked now, says "Signing in…" over this.
    else if (state === 'connecting') setStatus('connecting', `Connecting to ${hubDisplay()}…`);
  }

  // The one path for a connection that is gone: own messages it did not confirm show failed (a
  // recovery that finds them stored shows them sent), what was being recovered is forgotten.
  function connectionLost() {
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

  // A connection dropped, or an attempt failed: the SDK tries again after `info.delay`. What each
  // close code means for the user; the hub's reason text is shown as it is.
  function onDropped(info) {
    if (connected) {
      connected = false;
      connectionLost();
    }
    const { code, reason } = info;
    const why = (fallback) => `${reason || fallback} (${code})`;
    if (code === 4008) {
      // One more connection of this user would be refused again: the user closes a tab first.
      stopClient();
      notice(`${hubDisplay()} refused this tab: ${why('too many connections for this user')}. Close another tab, then Connect.`, {
        sticky: true,
      });
      setStatus('disconnected', 'Refused: too many connections');
      return;
    }
    if (code === 4002) notice(`Sign-in expired: ${why('token expired')}. Signing in again…`);
    else if (code === 1008 || code === 1009 || code === 4000) notice(`The hub closed the connection: ${why('no reason given')}.`);
    retryAt = Date.now() + (Number(info.delay) || 0);
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

  // The client gave up for good: refused (a token, or none while the hub needs one), or
  // disconnected by the server.
  function onClosed(info) {
    stopClient();
    const err = info.error;
    const code = err && err.code;
    const why = (fallback) => `${info.reason || fallback} (${info.code})`;
    if (code === 'unauthorized' && refusedSignIn) {
      showSignIn(refusedSignIn);
    } else if (code === 'unauthorized') {
      const text = cfg.auth
        ? `${hubDisplay()} refused the sign-in: ${why('auth failed')}.`
        : `${hubDisplay()} requires sign-in, and this page's server has no identity provider: ${why('auth failed')}.`;
      notice(text, { sticky: true });
      if (cfg.auth) showSignIn(text);
      else setStatus('disconnected', 'Refused: sign-in required');
    } else if (code === 'disconnected_by_server') {
      notice(`Disconnected by the server: ${why('disconnected')}.`, { sticky: true });
      setStatus('disconnected', 'Disconnected by the server');
    } else {
      setStatus('disconnected', 'Disconnected');
    }
  }

  // Errors about no particular request (a refused token function says so itself).
  function onClientError(e) {
    if (e.code === 'token' || e.code === 'unauthorized' || e.code === 'disconnected_by_server') return;
    notice(`Hub error ${e.code}: ${e.message}`);
  }

  function onUser(user) {
    if (!user || typeof user !== 'object') return;
    me.userId = str(user.id);
    me.name = str(user.name);
    showMe();
  }

  function onWelcome(info) {
    connected = true;
    expiredRetry = false;
    clearStickyNotice();
    me.clientId = str(info.clientId);
    me.hub = str(info.hub);
    me.userId = me.clientId;
    me.name = '';
    onUser(info.user);
    if (me.clientId) {
      ownClientIds.delete(me.clientId);
      ownClientIds.add(me.clientId);
      for (const id of ownClientIds) {
        if (ownClientIds.size <= CLIENT_IDS_KEEP) break;
        ownClientIds.delete(id);
      }
    }
    el.hubName.textContent = me.hub || hubDisplay();
    // A signed-in user's personal room is kept (with its earlier notifications) unless left by
    // hand; an earlier user's (signed out in this tab) goes. Anonymous pages do not show theirs:
    // its name is the connection's client id, a new room on every reconnect, which no backend knows.
    const hubRooms = new Set(Array.isArray(info.rooms) ? info.rooms.map(str) : []);
    for (const room of [...wantedRooms]) {
      if (room.startsWith(PERSONAL_PREFIX) && !hubRooms.has(room)) {
        unsubscribe(room);
        wantedRooms.delete(room);
        cursors.delete(room);
        dropView(room);
      }
    }
    for (const room of hubRooms) {
      if (cfg.auth && room.startsWith(PERSONAL_PREFIX) && !leftPersonal.has(room) && !wantedRooms.has(room)) {
        wantedRooms.add(room);
        subscribe(room);
      }
    }
    startRecovery();
    if (!active || !wantedRooms.has(active)) active = firstRoom();
    renderRooms();
    saveSession();
    setStatus('connected', `Connected to ${me.hub || hubDisplay()}`);
  }

  function firstRoom() {
    if (wantedRooms.has(DEFAULT_ROOM)) return DEFAULT_ROOM;
    return wantedRooms.values().next().value || '';
  }

  // ---- rooms: the SDK's subscriptions ----------------------------------------------------------

  /**
   * Subscribes to `room`: from its kept position (the hub replays exactly what was missed), else
   * with its last HISTORY_LIMIT messages. The SDK joins it now or once connected, and again after
   * every reconnect.
   */
  function subscribe(room) {
    if (subs.has(room)) return;
    const since = cursors.get(room);
    const r = hub.subscribe(room, since ? { since } : { history: HISTORY_LIMIT });
    const sub = { room: r, started: !!since, everJoined: false, firstReplayed: 0 };
    subs.set(room, sub);
    const mine = (fn) => (arg) => {
      if (subs.get(room) === sub) fn(arg);
    };
    r.on('message', mine((f) => onRoomMessage(sub, f)));
    r.on('joined', mine((j) => onJoined(room, sub, j)));
    r.on('recovery', mine((e) => onRecovery(room, e)));
    r.on('presence', mine((d) => onPresenceDiff(room, d)));
    r.on('error', mine((e) => onRoomError(room, e)));
  }

  function unsubscribe(room) {
    const sub = subs.get(room);
    if (!sub) return;
    subs.delete(room);
    sub.room.unsubscribe();
  }

  function onJoined(room, sub, j) {
    const first = !sub.started;
    sub.started = true;
    sub.everJoined = true;
    wantedRooms.add(room);
    if (userJoins.delete(room) || !active) active = room;
    // Asked after every (re)join: after a reconnect the list may have changed in any way meanwhile.
    const listed = presence.get(room);
    if (!listed || listed.state !== 'live') askPresence(room);
    if (first) {
      // Fewer than asked: the hub keeps nothing older than what the view shows.
      loaded.add(room);
      const v = viewFor(room);
      if (sub.firstReplayed < HISTORY_LIMIT) v.exhausted = true;
    } else if (j.cause === 'resume' && !loaded.has(room)) {
      // After a reload the feed is empty: show the room's earlier messages too.
      fetchHistory(room, HISTORY_LIMIT, false);
    }
    renderRooms();
    saveSession();
    if (recovery && recovery.waiting.delete(room) && !recovery.waiting.size) finishRecovery();
  }

  // The hub refused the room (forbidden, bad room, too many rooms), or took the connection out of it.
  function onRoomError(room, e) {
    unsubscribe(room);
    notice(`Hub error ${e.code}: ${e.message}`);
    userJoins.delete(room);
    if (wantedRooms.has(room)) onLeft(room);
  }

  function onLeft(room) {
    wantedRooms.delete(room);
    // A room joined again later starts with its earlier messages, not a recovery.
    cursors.delete(room);
    loaded.delete(room);
    presence.delete(room);
    // Its view goes with it, and its own messages still waiting for an ack.
    dropView(room);
    for (const [ref, entry] of outbox) {
      if (entry.room === room) outbox.delete(ref);
    }
    if (active === room) {
      active = firstRoom();
      el.roomInput.value = active;
    }
    renderRooms();
    saveSession();
  }

  // ---- messages: every one shown once, in order (the SDK's promise), placed in the room's view ----

  function onRoomMessage(sub, f) {
    let kind = 'live';
    if (f.replayed === true) {
      // Replayed by the first join: said before this page joined; by a later one: while it was away.
      kind = sub.started ? 'since' : 'history';
      if (!sub.started) sub.firstReplayed += 1;
    }
    showMessage(f, kind);
    saveSoon();
  }

  /** Shows a message frame (`kind`: live, history, since) unless the page has it; true when new. */
  function showMessage(f, kind) {
    const broadcast = f.type === 'broadcast';
    const room = broadcast ? '' : str(f.room);
    const id = str(f.id);
    const from = str(f.from);
    const content = str(f.content);
    const epoch = typeof f.epoch === 'string' ? f.epoch : '';
    const offset = epoch && Number.isSafeInteger(f.offset) ? f.offset : null;
    const seen = id ? shown.get(id) : undefined;
    if (seen) {
      // Shown before (live, or by an earlier history): keep that one. A message delivered while
      // Redis was down had no offset then; it has one now, which places later ones right.
      if (offset !== null && !seen.dataset.offset) setOrder(seen, epoch, offset);
      return false;
    }
    // A message of this tab whose ack never came (the connection dropped first): a replay, or a
    // late delivery to this tab's next connection, proves it was delivered.
    const mine = room && ownClientIds.has(from) ? unconfirmedOwn(room, from, content) : undefined;
    if (mine) {
      confirmOwn(mine, id, epoch, offset);
      return false;
    }
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
      replayed: kind === 'live' ? '' : kind,
      epoch,
      offset,
    });
    // Sent by an earlier connection of this tab (before a reload): the hub has it.
    if (own) setOwnState(li, 'sent');
    if (kind === 'live') placeNewest(li);
    else placeInOrder(li);
    noteUnread(li, kind);
    return true;
  }

  // ---- earlier messages and recovery --------------------------------------------------------------

  /**
   * Asks the SDK for the room's latest `n` messages from the hub's history (those the page has are
   * dropped as copies, the older ones placed in order); `older`: the reader asked for more.
   */
  function fetchHistory(room, n, older) {
    const sub = subs.get(room);
    if (!sub) return false;
    loaded.add(room);
    const v = viewFor(room);
    if (older) v.older = true;
    sub.room.history(n).then(
      (frames) => {
        if (subs.get(room) !== sub) return;
        let fresh = 0;
        for (const f of frames) if (showMessage(f, 'history')) fresh += 1;
        olderLoaded(room, { replayed: frames.length, asked: n, fresh, older });
      },
      (e) => {
        if (older) v.older = false;
        if (room === active) renderFeedEnd();
        if (subs.get(room) === sub && e.code !== 'unsubscribed' && e.code !== 'closed') {
          notice(`Could not load earlier messages of #${room}: ${e.message}`);
        }
      },
    );
    return true;
  }

  /**
   * A history answered: fewer than asked means the hub keeps nothing older than what the view
   * shows. A load of older ones that showed nothing new says the same.
   */
  function olderLoaded(room, got) {
    const v = views.get(room);
    if (!v) return;
    if (got.replayed < got.asked || (got.older && got.fresh === 0)) v.exhausted = true;
    if (got.older) v.older = false;
    if (room !== active) return;
    renderFeedEnd();
    if (got.older && olderWatch && !v.exhausted) {
      olderWatch.unobserve(el.loadOlder);
      olderWatch.observe(el.loadOlder);
    }
  }

  // After a welcome every room is joined again by the SDK. A room with a position (a reconnect, or
  // a reload of this tab) recovers; the outcome, for all rooms together, is one notice.
  function startRecovery() {
    endRecovery();
    const reconnect = everWelcomed;
    everWelcomed = true;
    const waiting = new Set();
    for (const [room, sub] of subs) {
      // On a reconnect a room without a position had no history to recover from: say so.
      if (sub.room.position || (reconnect && sub.everJoined)) waiting.add(room);
    }
    if (!waiting.size) return;
    recovery = { waiting, recovered: 0, missing: new Map() };
    recoveryTimer = setTimeout(() => {
      if (!recovery) return;
      for (const room of recovery.waiting) recovery.missing.set(room, 'no_answer');
      finishRecovery();
    }, RECOVERY_WAIT_MS);
  }

  /** How a re-join went (the SDK's `recovery` event, before the room's `joined`). */
  function onRecovery(room, r) {
    const part = recovery && recovery.waiting.has(room) && (r.cause === 'reconnect' || r.cause === 'resume') ? recovery : null;
    if (r.recovered) {
      if (part) part.recovered += r.replayed;
      return;
    }
    // All or nothing: nothing was replayed. Mark where the hole is, then show the latest.
    const reason = str(r.reason) || 'unknown';
    if (part) part.missing.set(room, reason);
    else notice(`Some messages in #${room} may be missing: ${reasonText(reason)}.`, { kind: 'gap', ms: 20_000 });
    markGap(room, reason);
    if (reason !== 'no_history' && reason !== 'unavailable') fetchHistory(room, HISTORY_LIMIT, false);
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
   * Asks who is in `room` (a room this connection is in); one question at a time per room.
   * Beyond the budget the question waits for the next tick (`due`), except the active room's.
   */
  function askPresence(room) {
    if (!isIn(room)) return;
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
    const waiting = [];
    p.waiting = waiting;
    p.askedAt = Date.now();
    // An answer to a question the page no longer waits for (the connection dropped, the room was
    // left, the list reset) is not applied.
    const current = () => presence.get(room) === p && p.waiting === waiting;
    subs.get(room).room.presence().then(
      (f) => {
        if (current()) onPresence(room, p, f);
      },
      (e) => {
        if (!current()) return;
        p.waiting = null;
        p.state = e.code === 'forbidden' ? 'forbidden' : 'unavailable';
        presenceChanged(room);
      },
    );
  }

  function onPresence(room, p, f) {
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

  function onPresenceDiff(room, f) {
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

  // Once a second: questions put off, rooms to ask again (unavailable, or too large for events). An
  // unanswered question fails by itself (the SDK's timeout: shown unavailable).
  function presenceTick() {
    presenceBudget = Math.min(PRESENCE_ASKS_BURST, presenceBudget + PRESENCE_ASKS_PER_TICK);
    if (!connected) return;
    const now = Date.now();
    for (const [room, p] of presence) {
      if (!isIn(room) || p.waiting) continue;
      if (p.due) {
        askPresence(room);
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
    const sub = subs.get(room);
    if (!sub || !connected) {
      notice('Not connected to the hub.');
      return false;
    }
    refSeq += 1;
    const ref = `m${refSeq}`;
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
    const entry = { ref, li, room, content, clientId: me.clientId, state: 'pending' };
    outbox.set(ref, entry);
    setOwnState(li, 'pending');
    placeNewest(li);
    // At most once: the user decides about a message lost with its connection (Retry), so the SDK
    // never sends it again by itself; it still confirms one a recovery finds stored.
    sub.room.publish(content, { resend: false }).then(
      (ack) => {
        if (outbox.get(ref) !== entry) return;
        // The ack has no epoch: it is the room's current one (it only orders the item).
        const pos = sub.room.position;
        confirmOwn(entry, str(ack.id), pos && ack.offset !== null ? pos.epoch : '', ack.offset);
      },
      (e) => onOwnError(entry, e),
    );
    return true;
  }

  function onOwnError(entry, e) {
    if (outbox.get(entry.ref) !== entry || entry.state !== 'pending') return;
    const why = `${str(e.code)}: ${str(e.message)}`;
    if (e.code === 'refused') {
      // The backend's publish check (a moderated room) said no: nobody got it, and a retry would
      // be refused again, so it says so and offers none.
      failOwn(entry, `refused by moderation: ${str(e.message)}`, why, 'refused');
      notice(`Message refused by moderation: ${str(e.message)}`);
    } else if (e.code === 'timeout' && e.maybeStored) {
      failOwn(entry, 'no confirmation', `no answer from the hub within ${ACK_TIMEOUT_MS / 1000} s`);
    } else if (e.code === 'not_sent' || e.code === 'unknown' || e.code === 'closed') {
      failOwn(entry, 'connection lost', 'the connection dropped before the hub confirmed it');
    } else {
      failOwn(entry, str(e.code) || 'refused', why);
      notice(`Message not sent: ${why}`);
    }
  }

  function confirmOwn(entry, id, epoch, offset) {
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
        if (!isIn(room)) li.classList.add('pending');
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
    const can = !!v && !!active && isIn(active) && !v.exhausted;
    const text = v && v.older ? 'Loading earlier messages…' : 'Load earlier messages';
    if (el.loadOlder.hidden !== !can) el.loadOlder.hidden = !can;
    if (el.loadOlder.textContent !== text) el.loadOlder.textContent = text;
    el.loadOlder.setAttribute('aria-busy', String(!!(v && v.older)));
    const end = !!v && !!active && isIn(active) && v.exhausted && v.msgs.length > 0;
    if (el.feedEnd.hidden !== !end) el.feedEnd.hidden = !end;
  }

  /**
   * Asks the hub for more of the active room's history than is shown (the ones already shown are
   * dropped as copies, the older ones placed in order).
   */
  function loadOlder() {
    const v = views.get(active);
    if (!v || !active || v.older || v.exhausted || !isIn(active)) return;
    const shownNow = v.msgs.length;
    if (!fetchHistory(active, shownNow + OLDER_PAGE, true)) return;
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
    if (!room || !isIn(room)) {
      notice(`You are not in #${room} any more.`);
      return;
    }
    if (!sendOwn(room, content)) return;
    for (const [ref, entry] of outbox) {
      if (entry.li === li) outbox.delete(ref);
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

  // ---- this tab's session (sessionStorage): rooms, positions, client ids ---------------------

  // Positions move with every message: written at most every SAVE_EVERY_MS, and when the page goes.
  function saveSoon() {
    if (!saveTimer) saveTimer = setTimeout(saveSession, SAVE_EVERY_MS);
  }

  /** The SDK's position of every subscribed room, as the next client's `since`. */
  function keepPositions() {
    for (const [room, sub] of subs) {
      const p = sub.room.position;
      if (p) cursors.set(room, p);
    }
  }

  function saveSession() {
    clearTimeout(saveTimer);
    saveTimer = null;
    keepPositions();
    try {
      sessionStorage.setItem(
        SESSION_KEY,
        JSON.stringify({
          rooms: [...wantedRooms],
          active,
          cursors: Object.fromEntries([...cursors].filter(([room]) => wantedRooms.has(room))),
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
    if (isIn(room) || (subs.has(room) && wantedRooms.has(room))) {
      activate(room);
      return;
    }
    if (subs.has(room)) return; // its join is on its way
    if (!hub || !connected) {
      notice('Not connected to the hub.');
      return;
    }
    userJoins.add(room);
    leftPersonal.delete(room);
    // A room joined now shows what was said there lately.
    subscribe(room);
  });

  el.leave.addEventListener('click', () => {
    const room = roomFromInput();
    if (!room) return;
    if (!isIn(room)) {
      notice(`You are not in #${room}.`);
      return;
    }
    if (room.startsWith(PERSONAL_PREFIX)) leftPersonal.add(room);
    unsubscribe(room);
    onLeft(room);
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

  // A reload or a closed tab: the latest cursors must be in sessionStorage for the next load.
  window.addEventListener('pagehide', saveSession);

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
