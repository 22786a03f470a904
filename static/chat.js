// The chat page's browser code: one WebSocket to the paired hub, rooms, the feed (newest on top) and
// reconnect with jittered backoff. Plain JS, no build step, no network fetch besides the hub socket.
// Chat text only ever reaches the DOM through textContent: it is never parsed as HTML.
'use strict';

(() => {
  const ROOM_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
  const DEFAULT_ROOM = 'general';
  const FEED_MAX = 500; // oldest items are dropped beyond this, so a long session stays light
  const CONNECT_TIMEOUT_MS = 10_000;
  const PING_EVERY_MS = 25_000; // application ping keeps idle proxies from closing the socket
  const SILENCE_LIMIT_MS = 70_000; // nothing heard for this long: the link is dead even if TCP says not

  const body = document.body;
  const cfg = {
    hubUrl: body.dataset.hubUrl,
    hubLabel: body.dataset.hubLabel || '',
    minMs: Number(body.dataset.reconnectMinMs) || 500,
    maxMs: Number(body.dataset.reconnectMaxMs) || 10_000,
  };

  const $ = (id) => document.getElementById(id);
  const el = {
    status: $('status'),
    connect: $('connect'),
    hubName: $('hub-name'),
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

  const me = { clientId: '', hub: '' };
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

  function notice(text) {
    el.notice.textContent = text;
    el.notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => {
      el.notice.hidden = true;
    }, 6000);
  }

  // ---- connection -----------------------------------------------------------------------------

  function connect() {
    clearTimers();
    if (ws) return;
    setStatus('connecting', `Connecting to ${hubDisplay()}…`);
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
      clearTimers();
      rooms = new Set();
      renderRooms();
      if (!wanted) {
        setStatus('disconnected', 'Disconnected');
        return;
      }
      if (ev.code === 1008 || ev.code === 1009 || ev.code === 4000) {
        notice(`The hub closed the connection (${ev.code}${ev.reason ? `: ${ev.reason}` : ''}).`);
      }
      scheduleReconnect();
    });
  }

  function heartbeat() {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
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
    if (!ws || ws.readyState !== WebSocket.OPEN) {
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
      case 'message':
      case 'broadcast':
        return addItem({
          id: str(f.id),
          room: f.type === 'broadcast' ? '' : str(f.room),
          from: str(f.from),
          hub: str(f.hub),
          content: str(f.content),
          timestamp: str(f.timestamp),
          own: false,
        });
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

  function onWelcome(f) {
    attempt = 0;
    me.clientId = str(f.client_id);
    me.hub = str(f.hub);
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
    li.dataset.own = String(m.own);
    if (m.own) li.classList.add('own');
    if (!m.room) li.classList.add('broadcast');
    li.style.setProperty('--hue', String(hue(m.from)));

    const meta = document.createElement('div');
    meta.className = 'meta';
    const from = span('from', m.own ? 'you' : shortId(m.from));
    from.title = m.from;
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

  renderRooms();
  connect();
})();
