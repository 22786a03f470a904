// The chat page's browser code: sign-in (when the server signs tokens), one WebSocket to the paired hub,
// rooms, the feed (newest on top) and reconnect with jittered backoff. Plain JS, no build step; the only
// requests are the hub socket and POST /token to this page's own server.
// Chat text and names only ever reach the DOM through textContent: they are never parsed as HTML.
'use strict';

(() => {
  const ROOM_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
  const DEFAULT_ROOM = 'general';
  const FEED_MAX = 500; // oldest items are dropped beyond this, so a long session stays light
  const CONNECT_TIMEOUT_MS = 10_000;
  const PING_EVERY_MS = 25_000; // application ping keeps idle proxies from closing the socket
  const SILENCE_LIMIT_MS = 70_000; // nothing heard for this long: the link is dead even if TCP says not
  const REFRESH_AT = 0.8; // a token is renewed after this share of its lifetime
  const REFRESH_RETRY_MS = 5_000; // a failed renewal is tried again this soon while the token lasts
  const NAME_MAX = 32;
  const IDENTITY_KEY = 'realtime-hub.identity'; // localStorage: {name, sub}, so a reload signs in again

  const body = document.body;
  const cfg = {
    hubUrl: body.dataset.hubUrl,
    hubLabel: body.dataset.hubLabel || '',
    minMs: Number(body.dataset.reconnectMinMs) || 500,
    maxMs: Number(body.dataset.reconnectMaxMs) || 10_000,
    // `jwt`: this server signs tokens, the page signs in first; otherwise it runs anonymous.
    auth: body.dataset.auth === 'jwt',
  };

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
    feed: $('feed'),
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
  let active = DEFAULT_ROOM;

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

  // A sticky notice (a refusal) stays until the next welcome; others fade after a few seconds.
  function notice(text, { sticky = false } = {}) {
    el.notice.textContent = text;
    el.notice.hidden = false;
    el.notice.dataset.sticky = String(sticky);
    clearTimeout(noticeTimer);
    if (!sticky) {
      noticeTimer = setTimeout(() => {
        el.notice.hidden = true;
      }, 6000);
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
  async function requestToken(name, sub) {
    const payload = sub ? { name, sub } : { name };
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
    const sub = identity && identity.sub;
    try {
      await requestToken(name, sub);
    } catch (e) {
      if (e.code === 'bad_sub' && sub) {
        // A kept id this server does not accept (another version, edited storage): start afresh.
        identity = { name, sub: '' };
        return signIn(name);
      }
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
    el.feed.replaceChildren();
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
      await requestToken(identity.name, identity.sub);
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
          await requestToken(identity.name, identity.sub);
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
      ws = null;
      welcomed = false;
      clearTimers();
      rooms = new Set();
      renderRooms();
      if (!wanted) {
        setStatus('disconnected', 'Disconnected');
        return;
      }
      onClose(ev.code, ev.reason);
    });
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
      setStatus('reconnecting', `Reconnecting to ${hubDisplay()} in ${s} s…`);
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
    clearTimers();
    if (ws) {
      const socket = ws;
      ws = null;
      socket.close(1000, 'user disconnected');
    }
    rooms = new Set();
    renderRooms();
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
      case 'broadcast': {
        const user = f.user && typeof f.user === 'object' ? f.user : {};
        return addItem({
          id: str(f.id),
          room: f.type === 'broadcast' ? '' : str(f.room),
          from: str(f.from),
          userId: str(user.id) || str(f.from),
          name: str(user.name),
          hub: str(f.hub),
          content: str(f.content),
          timestamp: str(f.timestamp),
          own: false,
        });
      }
      case 'joined':
        return onJoined(str(f.room));
      case 'left':
        return onLeft(str(f.room));
      case 'pong':
        return undefined;
      case 'error':
        return notice(`Hub error ${str(f.code)}: ${str(f.message)}`);
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
    el.hubName.textContent = me.hub || hubDisplay();
    rooms = new Set(Array.isArray(f.rooms) ? f.rooms.map(str) : [DEFAULT_ROOM]);
    // Restore the rooms the user had before a reconnect, and leave the default room if they had left it.
    for (const room of wantedRooms) if (!rooms.has(room)) sendFrame({ type: 'join', room });
    for (const room of rooms) if (!wantedRooms.has(room)) sendFrame({ type: 'leave', room });
    rooms = new Set([...rooms].filter((r) => wantedRooms.has(r)));
    if (!active || !wantedRooms.has(active)) active = firstRoom();
    renderRooms();
    setStatus('connected', `Connected to ${me.hub || hubDisplay()}`);
  }

  function onJoined(room) {
    rooms.add(room);
    wantedRooms.add(room);
    if (userJoins.delete(room) || !active) active = room;
    renderRooms();
  }

  function onLeft(room) {
    rooms.delete(room);
    wantedRooms.delete(room);
    if (active === room) active = firstRoom();
    renderRooms();
  }

  function firstRoom() {
    if (wantedRooms.has(DEFAULT_ROOM)) return DEFAULT_ROOM;
    return wantedRooms.values().next().value || '';
  }

  // ---- rendering ------------------------------------------------------------------------------

  function renderRooms() {
    const shown = new Set([...wantedRooms]);
    el.rooms.replaceChildren(
      ...[...shown].sort().map((room) => {
        const li = document.createElement('li');
        li.dataset.room = room;
        if (room === active) li.setAttribute('data-active', '');
        if (!rooms.has(room)) li.classList.add('pending');
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = `#${room}`;
        b.title = room === active ? 'Messages go to this room' : 'Write in this room';
        b.addEventListener('click', () => {
          active = room;
          el.roomInput.value = room;
          renderRooms();
          el.message.focus();
        });
        li.append(b);
        return li;
      }),
    );
    el.message.placeholder = active ? `Message #${active} — Enter sends` : 'Join a room to chat';
    const usable = el.status.dataset.state === 'connected' && !!active;
    el.message.disabled = !usable;
    el.send.disabled = !usable;
  }

  function addItem(m) {
    const li = document.createElement('li');
    li.className = 'msg';
    li.dataset.testid = 'feed-item';
    li.dataset.id = m.id;
    li.dataset.room = m.room;
    li.dataset.hub = m.hub;
    li.dataset.from = m.from;
    li.dataset.user = m.userId;
    li.dataset.name = m.name;
    li.dataset.own = String(m.own);
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
    const time = document.createElement('time');
    time.className = 'time';
    const date = new Date(m.timestamp);
    const valid = !Number.isNaN(date.getTime());
    time.dateTime = valid ? date.toISOString() : '';
    time.textContent = valid ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '—';
    time.title = valid ? date.toLocaleString() : m.timestamp;
    meta.append(from, room, hub, time);

    const content = document.createElement('p');
    content.className = 'content';
    content.textContent = m.content;

    li.append(meta, content);
    el.feed.prepend(li); // newest on top
    while (el.feed.childElementCount > FEED_MAX) el.feed.lastElementChild.remove();
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
      active = room;
      renderRooms();
      return;
    }
    userJoins.add(room);
    sendFrame({ type: 'join', room });
  });

  el.leave.addEventListener('click', () => {
    const room = roomFromInput();
    if (!room) return;
    if (!rooms.has(room)) {
      notice(`You are not in #${room}.`);
      return;
    }
    sendFrame({ type: 'leave', room });
  });

  el.compose.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const content = el.message.value;
    if (!content.trim() || !active) return;
    // The hub never echoes a sender's own message, so the page shows it itself, marked "you".
    if (!sendFrame({ type: 'message', room: active, content })) return;
    addItem({
      id: '',
      room: active,
      from: me.clientId,
      userId: me.userId || me.clientId,
      name: me.name,
      hub: me.hub,
      content,
      timestamp: new Date().toISOString(),
      own: true,
    });
    el.message.value = '';
  });

  // Back online: no point waiting out the backoff.
  window.addEventListener('online', () => {
    if (wanted && !ws) connect();
  });

  // Background tabs get their timers throttled: when the tab comes back, renew an overdue token now.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible' || !identity || !token || tokenIsFresh()) return;
    clearTimeout(refreshTimer);
    refreshToken();
  });

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
