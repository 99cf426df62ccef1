// The cluster page: polls api/cluster every two seconds and draws it. Plain DOM, text only (no innerHTML with
// data), charts as small inline SVG. Relative URLs, so it works at the resolver's /ui/ and through a registry's.
'use strict';

const REFRESH_MS = 2000;
const HISTORY = 90;
const SVG = 'http://www.w3.org/2000/svg';
const colors = { local: '#1f9d55', peer: '#2b6cb0', miss: '#c05621', track: '#e3e6eb', line: '#2b6cb0' };

let paused = false;
let lastOk = 0;
let lastSearch = '';
const history = [];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'title') node.title = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

function fmtBytes(n) {
  if (!n) return '0 B';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(n < 10 ? 2 : 1)) + ' ' + units[i];
}

function fmtAgo(ms) {
  if (ms === undefined || ms === null) return 'never';
  if (ms < 1000) return 'just now';
  const s = Math.round(ms / 1000);
  if (s < 90) return s + ' s ago';
  const m = Math.round(s / 60);
  if (m < 90) return m + ' min ago';
  return Math.round(m / 60) + ' h ago';
}

function fmtTime(iso) {
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

function fmtPct(ratio) {
  return ratio === undefined || ratio === null ? '–' : (ratio * 100).toFixed(1) + ' %';
}

function shortKey(key) {
  if (!key) return '';
  const at = key.indexOf('sha256:');
  return at >= 0 ? key.slice(0, at + 7 + 12) + '…' : key;
}

function stackedBar(parts, width, height) {
  const total = parts.reduce((sum, p) => sum + p.value, 0);
  const rects = [svg('rect', { x: 0, y: 0, width, height, rx: 3, fill: colors.track })];
  let x = 0;
  for (const part of parts) {
    if (!total || !part.value) continue;
    const w = Math.max(1, (part.value / total) * width);
    rects.push(svg('rect', { x, y: 0, width: w, height, fill: part.color }, svg('title', {}, document.createTextNode(part.label + ': ' + part.value))));
    x += w;
  }
  return svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img' }, rects);
}

function sparkline(points, width, height) {
  const children = [svg('rect', { x: 0, y: 0, width, height, fill: '#fafbfc' })];
  for (const y of [0.25, 0.5, 0.75]) {
    children.push(svg('line', { x1: 0, x2: width, y1: height * y, y2: height * y, stroke: colors.track, 'stroke-width': 1 }));
  }
  const known = points.map((p, i) => ({ i, p })).filter(x => x.p !== null);
  if (known.length > 0) {
    const pad = 5;
    const step = (width - 2 * pad) / Math.max(1, HISTORY - 1);
    const offset = pad + (HISTORY - points.length) * step;
    const coords = known.map(({ i, p }) => [offset + i * step, height - 2 - p * (height - 4)]);
    const line = coords.map(([x, y]) => x.toFixed(1) + ',' + y.toFixed(1)).join(' ');
    const area = `${coords[0][0].toFixed(1)},${height} ${line} ${coords[coords.length - 1][0].toFixed(1)},${height}`;
    children.push(svg('polygon', { points: area, fill: colors.line, 'fill-opacity': 0.12 }));
    children.push(svg('polyline', { points: line, fill: 'none', stroke: colors.line, 'stroke-width': 2 }));
    const [lastX, lastY] = coords[coords.length - 1];
    children.push(svg('circle', { cx: lastX.toFixed(1), cy: lastY.toFixed(1), r: 3.5, fill: colors.line }));
  }
  return svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img' }, children);
}

function setText(id, text) {
  document.getElementById(id).textContent = text;
}

function fillTable(id, rows, columns) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { class: 'empty', colspan: columns }, 'nothing yet'))]));
}

function sourceBadge(source) {
  const kind = source === 'local' || source === 'miss' || source === 'filtered' ? source : 'peer';
  return el('span', { class: 'badge ' + kind, title: kind === 'peer' ? 'served by node ' + source : source }, source);
}

function refLink(reference) {
  return el('a', { class: 'ref', href: '#', onclick: e => { e.preventDefault(); runSearch(reference); } }, reference);
}

function render(view) {
  const t = view.totals;
  setText('nodes-alive', `${t.alive} / ${t.nodes}`);
  setText('nodes-sub', `${t.reporting} registr${t.reporting === 1 ? 'y' : 'ies'} reporting`);
  setText('hit-ratio', fmtPct(t.hitRatio));
  setText('hit-sub', `${t.hits} served by the mirror, ${t.misses} went upstream`);
  document.getElementById('hit-bar').replaceChildren(stackedBar([
    { value: t.hits, color: colors.peer, label: 'hits' },
    { value: t.misses, color: colors.miss, label: 'misses' },
  ], 240, 10));
  setText('kept', fmtBytes(t.bytesKeptOffUpstream));
  setText('kept-sub', `${fmtBytes(t.bytesFromPeers)} streamed between nodes`);

  history.push(t.hitRatio === undefined || t.hitRatio === null ? null : t.hitRatio);
  while (history.length > HISTORY) history.shift();
  document.getElementById('history').replaceChildren(sparkline(history, 600, 64));

  fillTable('nodes', view.nodes.map(n => {
    const r = n.registry;
    return el('tr', { class: n.alive ? '' : 'dead', 'data-node': n.name },
      el('td', {}, el('span', { class: 'dot ' + (n.alive ? 'ok' : 'bad'), title: n.alive ? 'alive' : 'not heard from within the node timeout' })),
      el('td', {}, el('strong', {}, n.name)),
      el('td', {}, el('code', {}, n.address)),
      el('td', { title: n.lastSeen || '' }, fmtAgo(n.lastSeenAgoMs)),
      el('td', { class: 'num' }, n.images),
      el('td', { class: 'num' }, n.digests),
      el('td', {}, r ? [stackedBar([
        { value: r.local, color: colors.local, label: 'local' },
        { value: r.peer, color: colors.peer, label: 'from peers' },
        { value: r.miss, color: colors.miss, label: 'misses' },
      ], 120, 10), el('span', { class: 'muted' }, ` ${r.local + r.peer} · ${r.miss}`)] : ''),
      el('td', { class: 'num' }, r ? fmtBytes(r.bytesFromPeers) : ''),
      el('td', { class: 'num' }, r ? fmtBytes(r.bytesToPeers) : ''),
      el('td', { class: 'muted' }, n.registryError || 'ok'));
  }), 10);

  setText('images-count', view.images.length ? `(${view.images.length}${view.imagesTruncated ? '+' : ''})` : '');
  fillTable('images', view.images.map(i => el('tr', { 'data-image': i.reference },
    el('td', {}, refLink(i.reference)),
    el('td', {}, el('code', { title: i.digest }, shortKey(i.digest))),
    el('td', {}, i.nodes.map(name => {
      const node = view.nodes.find(n => n.name === name);
      return el('span', { class: 'chip' + (node && node.alive ? '' : ' dead') }, name);
    })))), 3);

  fillTable('recent', view.recent.map(r => el('tr', {},
    el('td', { class: 'mono' }, fmtTime(r.time)),
    el('td', {}, r.node),
    el('td', {}, `${r.method} ${r.handler}`),
    el('td', {}, el('code', { title: `${r.registry} ${r.key}` }, shortKey(r.key))),
    el('td', {}, sourceBadge(r.source)),
    el('td', { class: 'num' }, r.status),
    el('td', { class: 'num' }, r.latencyMs.toFixed(1) + ' ms'),
    el('td', { class: 'num' }, fmtBytes(r.bytes)))), 8);
}

async function refresh() {
  if (!paused && !document.hidden) {
    try {
      const response = await fetch('api/cluster', { cache: 'no-store' });
      if (!response.ok) throw new Error(`api/cluster answered ${response.status}`);
      render(await response.json());
      lastOk = Date.now();
      document.getElementById('error').hidden = true;
    } catch (e) {
      const error = document.getElementById('error');
      error.textContent = 'Cannot reach the resolver: ' + e.message;
      error.hidden = false;
    }
  }

  const fresh = lastOk && Date.now() - lastOk < REFRESH_MS * 3;
  document.getElementById('live-dot').className = 'dot ' + (paused ? '' : fresh ? 'ok' : 'bad');
  setText('live-text', paused ? 'paused' : lastOk ? `live · updated ${fmtAgo(Date.now() - lastOk)}` : 'connecting…');
  setTimeout(refresh, REFRESH_MS);
}

async function runSearch(reference) {
  reference = (reference || '').trim();
  document.getElementById('search-ref').value = reference;
  lastSearch = reference;
  const target = document.getElementById('search-result');
  if (!reference) {
    target.replaceChildren();
    return;
  }

  const response = await fetch('api/image?ref=' + encodeURIComponent(reference), { cache: 'no-store' });
  const body = await response.json();
  if (reference !== lastSearch) return;
  if (!response.ok) {
    target.replaceChildren(el('div', { class: 'error' }, body.error || `answered ${response.status}`));
    return;
  }

  const parts = [el('div', { class: 'summary' },
    el('code', {}, body.key),
    body.isTag ? [' → newest digest ', el('code', {}, body.newestDigest || 'none held')] : '')];
  if (body.isTag) {
    parts.push(el('table', { id: 'search-bindings' },
      el('thead', {}, el('tr', {}, ['Node', 'Tag points to', 'Held', 'Newest', 'Node alive', 'First seen'].map(h => el('th', {}, h)))),
      el('tbody', {}, body.bindings.length ? body.bindings.map(b => el('tr', { class: b.alive ? '' : 'dead' },
        el('td', {}, b.node),
        el('td', {}, el('code', { title: b.digest }, shortKey(b.digest))),
        el('td', {}, b.held ? (b.current ? 'yes' : 'superseded') : 'withdrawn'),
        el('td', {}, b.newest ? '✓' : ''),
        el('td', {}, el('span', { class: 'dot ' + (b.alive ? 'ok' : 'bad') })),
        el('td', { class: 'mono' }, new Date(b.since).toLocaleString()))) : el('tr', {}, el('td', { class: 'empty', colspan: 6 }, 'no node holds this tag')))));
  }

  parts.push(el('table', { id: 'search-holders' },
    el('thead', {}, el('tr', {}, ['Node holding ' + shortKey(body.isTag ? body.newestDigest : body.key), 'Held', 'Node alive', 'Address', 'Confirmed'].map(h => el('th', {}, h)))),
    el('tbody', {}, body.holders.length ? body.holders.map(h => el('tr', { class: h.alive ? '' : 'dead' },
      el('td', {}, h.node),
      el('td', {}, h.held ? (h.current ? 'yes' : 'superseded') : 'withdrawn'),
      el('td', {}, el('span', { class: 'dot ' + (h.alive ? 'ok' : 'bad') })),
      el('td', {}, el('code', {}, h.address || '')),
      el('td', { class: 'mono' }, new Date(h.at).toLocaleString()))) : el('tr', {}, el('td', { class: 'empty', colspan: 5 }, 'no node holds this digest')))));
  target.replaceChildren(...parts);
}

document.getElementById('pause').addEventListener('click', e => {
  paused = !paused;
  e.target.textContent = paused ? 'Resume' : 'Pause';
});
document.getElementById('search').addEventListener('submit', e => {
  e.preventDefault();
  runSearch(document.getElementById('search-ref').value).catch(err => {
    document.getElementById('search-result').replaceChildren(el('div', { class: 'error' }, err.message));
  });
});
refresh();
