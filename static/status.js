// The cluster status page: asks /status/data (this server, which reads the hubs' API with its own key)
// once a second and draws each hub's figures and the last 5 minutes as SVG. No innerHTML anywhere:
// hub names come from the cluster and are set as text.
'use strict';

(() => {
  const SVG = 'http://www.w3.org/2000/svg';
  const W = 600;
  const H = 160;
  const PAD = { left: 44, right: 8, top: 10, bottom: 20 };
  const body = document.body;
  const el = {
    hubs: document.getElementById('hubs'),
    notice: document.getElementById('notice'),
    updated: document.getElementById('updated'),
    legend: document.getElementById('legend'),
    charts: {
      c: document.getElementById('chart-connections'),
      d: document.getElementById('chart-deliveries'),
      l: document.getElementById('chart-lag'),
    },
  };

  let since = null;
  let windowMs = 300_000;
  let tickMs = 1000;
  /** id -> [{ t, c, d, l, s }] oldest first */
  const series = new Map();
  /** id -> colour slot, in order of first sight, so a hub keeps its colour. */
  const slots = new Map();
  const names = new Map();
  let failures = 0;

  const fmt = {
    int: (n) => (n === null || n === undefined ? '—' : String(Math.round(n))),
    rate: (n) => (n === null || n === undefined ? '—' : n < 10 ? n.toFixed(1) : String(Math.round(n))),
    ms: (n) => (n === null || n === undefined ? '—' : n < 10 ? `${n.toFixed(2)} ms` : `${Math.round(n)} ms`),
  };

  function node(tag, attrs = {}, text) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  }

  function svg(tag, attrs = {}, text) {
    const n = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
    if (text !== undefined) n.textContent = text;
    return n;
  }

  function slot(id) {
    if (!slots.has(id)) slots.set(id, slots.size % 6);
    return slots.get(id);
  }

  function notice(text) {
    el.notice.textContent = text || '';
    el.notice.hidden = !text;
  }

  function figure(dl, label, testid, value, title) {
    const dt = node('dt', {}, label);
    const dd = node('dd', { 'data-testid': testid }, value);
    if (title) dd.title = title;
    dl.append(dt, dd);
  }

  function renderHubs(hubs) {
    const cards = hubs.map((h) => {
      names.set(h.id, h.name);
      const card = node('article', {
        class: `hub s${slot(h.id)}`,
        'data-testid': 'hub',
        'data-hub': h.name,
        'data-id': h.id,
        'data-state': h.state,
      });
      const head = node('header');
      head.append(
        node('h2', {}, h.name),
        node('span', { class: 'badge', 'data-testid': 'hub-state' }, h.state),
      );
      card.append(head);
      if (h.reason) card.append(node('p', { class: 'reason', 'data-testid': 'hub-reason' }, h.reason));
      const dl = node('dl');
      const unread = h.scraped ? '' : 'this server does not read the hub’s own API (WEB_API_URLS)';
      figure(dl, 'connections', 'connections', fmt.int(h.connections));
      figure(dl, 'rooms', 'rooms', fmt.int(h.rooms));
      figure(dl, 'users', 'users', fmt.int(h.users));
      figure(dl, 'deliveries/s', 'deliveries', fmt.rate(h.deliveries_per_sec));
      figure(dl, 'lag p99', 'lag', fmt.ms(h.lag_p99_ms),
        h.lag_p99_ms === null ? unread || 'no cross-hub message in the last 10 s (or no lag histogram)' : '');
      figure(dl, 'bridge', 'bridge', h.bridge || '—');
      figure(dl, 'Redis', 'redis', h.redis_up === null ? '—' : h.redis_up ? 'up' : 'down', unread);
      card.append(dl);
      card.append(node('p', { class: 'started' }, `instance ${h.id.slice(0, 8)} · up since ${h.started_at || '?'}`));
      return card;
    });
    el.hubs.replaceChildren(...cards);
    if (!hubs.length) el.hubs.append(node('p', { class: 'empty' }, 'No live hub listed yet.'));
  }

  function addPoints(points) {
    for (const p of points) {
      for (const h of p.hubs) {
        if (!series.has(h.id)) series.set(h.id, []);
        series.get(h.id).push({ t: p.t, c: h.c, d: h.d, l: h.l, s: h.s });
      }
    }
    const oldest = Date.now() - windowMs - 5000;
    for (const [id, pts] of series) {
      while (pts.length && pts[0].t < oldest) pts.shift();
      if (!pts.length) series.delete(id);
    }
  }

  /** A round upper bound for the y axis: 1, 2 or 5 times a power of ten. */
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= v);
  }

  function drawChart(target, key, fmtAxis) {
    const now = Date.now();
    const from = now - windowMs;
    let max = 0;
    for (const pts of series.values()) for (const p of pts) if (p[key] !== null && p[key] > max) max = p[key];
    max = niceMax(max);
    const x = (t) => PAD.left + ((t - from) / windowMs) * (W - PAD.left - PAD.right);
    const y = (v) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
    const parts = [
      svg('line', { class: 'axis', x1: PAD.left, y1: y(0), x2: W - PAD.right, y2: y(0) }),
      svg('line', { class: 'grid', x1: PAD.left, y1: y(max), x2: W - PAD.right, y2: y(max) }),
      svg('text', { class: 'label', x: PAD.left - 4, y: y(max) + 4, 'text-anchor': 'end' }, fmtAxis(max)),
      svg('text', { class: 'label', x: PAD.left - 4, y: y(0) + 4, 'text-anchor': 'end' }, '0'),
      svg('text', { class: 'label', x: PAD.left, y: H - 4 }, '−5 min'),
      svg('text', { class: 'label', x: W - PAD.right, y: H - 4, 'text-anchor': 'end' }, 'now'),
    ];
    for (const [id, pts] of series) {
      // A gap (no figure, or the hub down) breaks the line; down stretches get a red band.
      let run = [];
      const flush = () => {
        if (run.length > 1) parts.push(svg('polyline', { class: `line s${slot(id)}`, points: run.join(' ') }));
        else if (run.length === 1) {
          const [cx, cy] = run[0].split(',');
          parts.push(svg('circle', { class: `dot s${slot(id)}`, cx, cy, r: 1.5 }));
        }
        run = [];
      };
      for (const p of pts) {
        if (p.t < from) continue;
        if (p.s === 'down') {
          flush();
          parts.push(svg('rect', { class: 'down', x: x(p.t) - 1, y: PAD.top, width: W / (windowMs / tickMs) + 1, height: H - PAD.top - PAD.bottom }));
          continue;
        }
        if (p[key] === null || p[key] === undefined) {
          flush();
          continue;
        }
        run.push(`${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`);
      }
      flush();
    }
    target.replaceChildren(...parts);
    target.dataset.max = String(max);
  }

  function drawLegend() {
    const items = [...series.keys()].map((id) =>
      node('li', { class: `s${slot(id)}` }, `${names.get(id) || id.slice(0, 8)} (${id.slice(0, 8)})`));
    el.legend.replaceChildren(...items);
  }

  function render(snap) {
    windowMs = snap.window_ms || windowMs;
    tickMs = snap.tick_ms || tickMs;
    body.dataset.state = snap.configured ? 'ok' : 'unconfigured';
    body.dataset.registry = snap.registry;
    if (!snap.configured) {
      notice('This server reads no hub API: set WEB_API_URLS (the hubs’ API addresses) and WEB_API_KEY.');
    } else if (snap.registry === 'redis_unavailable') {
      notice('Redis does not answer: the cluster’s hub list cannot be read (figures below are the last known).');
    } else if (snap.registry === 'unauthorized') {
      notice('The hubs refuse this server’s API key (WEB_API_KEY).');
    } else if (snap.registry === 'unreachable') {
      notice('No hub API answers this server.');
    } else {
      notice('');
    }
    addPoints(snap.points);
    renderHubs(snap.hubs);
    drawChart(el.charts.c, 'c', (v) => String(v));
    drawChart(el.charts.d, 'd', (v) => `${v}/s`);
    drawChart(el.charts.l, 'l', (v) => `${v} ms`);
    drawLegend();
    el.updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  async function poll() {
    try {
      const url = since === null ? '/status/data' : `/status/data?since=${since}`;
      const res = await fetch(url, { cache: 'no-store' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const snap = await res.json();
      // A restarted server counts from 0 again: start the charts over.
      if (since !== null && snap.seq < since) {
        series.clear();
        since = null;
        return;
      }
      since = snap.seq;
      failures = 0;
      render(snap);
    } catch (e) {
      failures += 1;
      if (failures >= 2) {
        body.dataset.state = 'stale';
        notice(`This page’s server does not answer (${e.message}): figures are stale.`);
      }
    } finally {
      setTimeout(poll, tickMs);
    }
  }

  // ---- webhook events: what the hubs told this server (GET /status/webhooks) -------------------

  const hooks = {
    table: document.getElementById('webhooks'),
    note: document.getElementById('webhooks-note'),
  };

  function renderWebhooks(view) {
    if (!view.configured) {
      hooks.note.textContent = 'This server receives no webhooks: set WEB_HOOK_SECRET (the hubs’ HUB_HOOK_SECRET) and point the hubs’ HUB_WEBHOOK_URL at its /hooks/webhooks.';
    } else {
      hooks.note.textContent = view.events.length
        ? `${view.received} received since this server started (${view.duplicates} repeats dropped), newest first`
        : 'None received yet (the hubs send them to the web server named in HUB_WEBHOOK_URL).';
    }
    const rows = view.events.map((ev) => {
      const tr = node('tr', { 'data-testid': 'webhook', 'data-name': ev.name, 'data-room': ev.room || '' });
      const user = ev.user ? ev.user.name || ev.user.id : ev.client_id ? `client ${ev.client_id.slice(0, 8)}` : '';
      tr.append(
        node('td', {}, ev.time_ms ? new Date(ev.time_ms).toLocaleTimeString() : '—'),
        node('td', { 'data-testid': 'webhook-name' }, ev.name),
        node('td', { 'data-testid': 'webhook-room' }, ev.room || ''),
        node('td', { 'data-testid': 'webhook-user' }, user),
      );
      return tr;
    });
    hooks.table.tBodies[0].replaceChildren(...rows);
  }

  async function pollWebhooks() {
    try {
      const res = await fetch('/status/webhooks', { cache: 'no-store' });
      if (res.ok) renderWebhooks(await res.json());
    } catch {
      // The hubs' poll above already says when this server does not answer.
    } finally {
      setTimeout(pollWebhooks, tickMs);
    }
  }

  poll();
  pollWebhooks();
})();
