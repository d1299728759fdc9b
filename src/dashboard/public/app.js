// pgtq dashboard: one page that reads the dashboard's JSON API (relative URLs, so that it works
// under any base path) and renders it with DOM calls. Every value that comes from the server is
// inserted as text (text nodes, textContent, attributes), never parsed as HTML.

const STATES = ['waiting', 'scheduled', 'ready', 'running', 'succeeded', 'failed', 'cancelled'];
const PENDING_STATES = ['waiting', 'scheduled', 'ready', 'running'];
const OVERVIEW_POLL_MS = 2000;
const SCHEDULES_POLL_MS = 5000;
const PAGE_SIZE = 50;
const STATUS_MS = 10_000;
/** A process whose last heartbeat is older than this is shown as late. */
const LATE_HEARTBEAT_MS = 30_000;
/** Ready tasks due longer ago than this are shown as late: the queue is not keeping up. */
const LATE_READY_MS = 60_000;

const $ = (id) => document.getElementById(id);
const ui = {
  main: $('main'),
  banner: $('banner'),
  status: $('status'),
  queue: $('queue-filter'),
  schema: $('schema'),
  jump: $('jump'),
  confirm: $('confirm'),
  confirmTitle: $('confirm-title'),
  confirmMessage: $('confirm-message'),
  confirmYes: $('confirm-yes'),
  confirmNo: $('confirm-no'),
};

const app = {
  // Read-only until the server says otherwise, so that no action button shows by mistake.
  config: { readOnly: true, schema: '', version: '' },
  queues: [],
  queuesLoaded: false,
  view: null,
  timer: 0,
  statusTimer: 0,
  navigations: 0,
  // Server clock minus browser clock: relative times ("in 12 s") follow the server's.
  clockSkew: 0,
};

// ---------------------------------------------------------------------------------------------
// DOM helpers

/** Builds an element. Strings among the children become text nodes; null, undefined and false are skipped. */
function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** The same for SVG elements (the throughput chart). */
function svg(tag, attrs, ...children) {
  return fill(document.createElementNS('http://www.w3.org/2000/svg', tag), attrs, children);
}

function fill(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    // on… takes listeners only: an inline handler attribute would be code (and the CSP refuses it).
    if (name.startsWith('on')) {
      if (typeof value === 'function') node.addEventListener(name.slice(2), value);
    } else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const muted = (text) => h('span', { class: 'muted' }, text);
const dash = () => muted('—');
const mono = (text) => h('code', {}, text);
const blank = (value) => value === null || value === undefined || value === false || value === '';
const td = (content, cls) => h('td', { class: cls }, blank(content) ? dash() : content);
const num = (n) => h('td', { class: 'num' }, String(n ?? 0));
const isSet = (value) => value !== null && value !== undefined;

function section(title, ...content) {
  const id = `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), content);
}

function pageHead(title, ...extra) {
  return h('div', { class: 'page-head' }, h('h1', {}, title), extra);
}

/**
 * A table in a wrapper that scrolls sideways on narrow screens, or a sentence when there are no rows.
 * A column name starting with '#' is numeric: right-aligned.
 */
function table(label, columns, rows, empty) {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  const head = columns
    .filter(isSet)
    .map((c) => h('th', { scope: 'col', class: c.startsWith('#') ? 'num' : null }, c.replace(/^#/, '')));
  return h(
    'div',
    { class: 'table-wrap' },
    h('table', { 'aria-label': label }, h('thead', {}, h('tr', {}, head)), h('tbody', {}, rows)),
  );
}

function stateBadge(state, attrs = {}) {
  const known = STATES.includes(state);
  return h('span', { class: known ? `badge state-${state}` : 'badge', ...attrs }, String(state));
}

const taskLink = (id) => h('a', { href: `#/tasks/${encodeURIComponent(id)}`, class: 'id' }, `#${id}`);

// ---------------------------------------------------------------------------------------------
// Formatting

const clock = { hour: '2-digit', minute: '2-digit', second: '2-digit' };
const formats = {
  time: new Intl.DateTimeFormat(undefined, clock),
  day: new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', ...clock }),
  full: new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' }),
  minute: new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' }),
};

/** Local time, as short as is unambiguous: the time alone today, the year only when it is not this one. */
function localTime(date) {
  const now = new Date();
  if (date.toDateString() === now.toDateString()) return formats.time.format(date);
  return (date.getFullYear() === now.getFullYear() ? formats.day : formats.full).format(date);
}

const serverNow = () => Date.now() + app.clockSkew;

/** "12 s", "4 min 5 s", "2 h 5 min", "3 d 4 h": two units at most. */
function duration(ms) {
  const sec = Math.round(Math.abs(ms) / 1000);
  const [min, hours, days] = [Math.floor(sec / 60), Math.floor(sec / 3600), Math.floor(sec / 86400)];
  if (sec < 60) return `${sec} s`;
  if (min < 10 && sec % 60) return `${min} min ${sec % 60} s`;
  if (min < 60) return `${min} min`;
  if (hours < 24) return min % 60 ? `${hours} h ${min % 60} min` : `${hours} h`;
  return hours % 24 ? `${days} d ${hours % 24} h` : `${days} d`;
}

function relative(iso) {
  const diff = Date.parse(iso) - serverNow();
  if (Math.abs(diff) < 1000) return 'now';
  return diff > 0 ? `in ${duration(diff)}` : `${duration(diff)} ago`;
}

/** A timestamp as local text (or, relative, "3 s ago"), with the server's ISO string in the title. */
function timeEl(iso, { relative: rel = false } = {}) {
  const date = iso ? new Date(iso) : null;
  if (!date || Number.isNaN(date.getTime())) return iso ? String(iso) : dash();
  const title = rel ? `${localTime(date)} (${iso})` : iso;
  const attrs = { datetime: date.toISOString(), title, 'data-relative': rel };
  return h('time', attrs, rel ? relative(iso) : localTime(date));
}

const relativeEl = (iso) => timeEl(iso, { relative: true });

// Relative times stay current between two loads.
setInterval(() => {
  for (const node of document.querySelectorAll('time[data-relative]')) {
    node.textContent = relative(node.getAttribute('datetime'));
  }
}, 1000);

function json(value, pretty = true) {
  return JSON.stringify(value, null, pretty ? 2 : undefined) ?? String(value);
}

// ---------------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

function withQuery(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const v of [value].flat()) if (isSet(v) && v !== '') query.append(name, v);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

async function request(path, init = {}) {
  let response;
  try {
    const headers = { Accept: 'application/json', ...init.headers };
    response = await fetch(path, { ...init, headers, cache: 'no-store', credentials: 'same-origin' });
  } catch {
    throw new ApiError('the dashboard server does not answer', 0);
  }
  // A proxy in front of the server may answer with a page rather than JSON.
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const reason = typeof body?.error === 'string' ? body.error : response.statusText || 'request failed';
    throw new ApiError(reason, response.status);
  }
  if (body === null) throw new ApiError('the server did not answer with JSON', response.status);
  return body;
}

const get = (path, params) => request(withQuery(path, params));
const post = (path, body = {}) =>
  request(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });

// ---------------------------------------------------------------------------------------------
// Feedback: the error banner (reads), the status line (actions), the confirm dialog

function showBanner(err) {
  const status = err instanceof ApiError ? err.status : 0;
  const reason = /[.…"]$/.test(err.message) ? err.message : `${err.message}.`;
  let text = `Server error ${status}: ${reason}`;
  if (status === 0) text = `Cannot load: ${reason}`;
  else if (status === 401 || status === 403) text = `Not authorised (${status}): ${reason}`;
  if (app.view?.poll || !app.view) text += ' Retrying…';
  // Writing the same text again would make screen readers repeat the alert on every poll.
  if (ui.banner.textContent !== text) ui.banner.textContent = text;
  ui.banner.hidden = false;
  document.body.dataset.offline = 'true'; // the overview's Live mark turns off
}

function clearBanner() {
  delete document.body.dataset.offline;
  ui.banner.hidden = true;
  ui.banner.textContent = '';
}

function announce(message, kind = 'ok') {
  clearTimeout(app.statusTimer);
  ui.status.dataset.kind = kind;
  ui.status.textContent = message;
  app.statusTimer = setTimeout(() => {
    ui.status.textContent = '';
  }, STATUS_MS);
}

/** Asks in the modal dialog; resolves true on Confirm, false on Cancel or Escape. */
function confirmDialog({ title, message, confirmLabel = 'Confirm', danger = false }) {
  const dialog = ui.confirm;
  if (dialog.open) return Promise.resolve(false);
  ui.confirmTitle.textContent = title;
  ui.confirmMessage.textContent = message;
  ui.confirmYes.textContent = confirmLabel;
  ui.confirmYes.classList.toggle('danger', danger);
  dialog.returnValue = '';
  dialog.showModal();
  ui.confirmNo.focus(); // the harmless choice is the default
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'yes'), { once: true });
  });
}

ui.confirmYes.addEventListener('click', () => ui.confirm.close('yes'));
ui.confirmNo.addEventListener('click', () => ui.confirm.close('no'));

/**
 * A button that confirms, POSTs, reports and refreshes; none at all in read-only mode.
 * `spec` is { key, title, message, confirmLabel, danger, path, body, onDone }, or a function
 * that returns it when clicked (to read an input then), or null to do nothing.
 */
function actionButton(action, label, spec) {
  if (app.config.readOnly) return null;
  const key = typeof spec === 'function' ? '' : (spec.key ?? '');
  const onclick = () => runAction(typeof spec === 'function' ? spec() : spec);
  const attrs = {
    type: 'button',
    class: `action-${action}`,
    'data-action': action,
    'data-key': key,
    onclick,
  };
  return h('button', attrs, label);
}

async function runAction(spec) {
  if (!spec || !(await confirmDialog(spec))) return;
  try {
    const answer = await post(spec.path, spec.body);
    announce(typeof answer.message === 'string' ? answer.message : 'Done.', 'ok');
    if (spec.onDone) return spec.onDone();
  } catch (err) {
    announce(err.message, 'error');
  }
  await refresh();
}

// ---------------------------------------------------------------------------------------------
// The header: queue filter and task id search

function setQueues(queues) {
  app.queues = [...new Set(queues)].sort();
  app.queuesLoaded = true;
  syncQueueSelect(parseHash().params.get('queue') ?? '');
}

/** The queue list comes with the overview; the other views fetch it once. */
async function ensureQueues() {
  if (app.queuesLoaded) return;
  try {
    setQueues((await get('api/overview')).queues ?? []);
  } catch {
    // The view's own request reports the problem.
  }
}

function queueOptions(selected) {
  const names = !selected || app.queues.includes(selected) ? app.queues : [...app.queues, selected];
  const option = (value, label) => h('option', { value, selected: value === selected }, label);
  return [option('', 'All queues'), ...names.map((q) => option(q, q))];
}

function syncQueueSelect(selected) {
  ui.queue.replaceChildren(...queueOptions(selected));
  ui.queue.value = selected;
}

ui.queue.addEventListener('change', () => {
  const { path, params } = parseHash();
  // A task's page has no queue to filter: show that queue's tasks instead.
  let base = ROUTES.some((r) => r.pattern.test(path)) ? path : '/';
  if (/^\/tasks\/\d+$/.test(path)) base = '/tasks';
  const next = base === path ? params : new URLSearchParams();
  if (ui.queue.value) next.set('queue', ui.queue.value);
  else next.delete('queue');
  next.delete('before'); // another filter: back to the first page
  go(base, next);
});

ui.jump.addEventListener('submit', (event) => {
  event.preventDefault();
  const input = ui.jump.elements.id;
  const id = input.value.trim();
  if (!/^\d+$/.test(id)) return announce('A task id is a number.', 'error');
  input.value = '';
  go(`/tasks/${id}`);
});

// ---------------------------------------------------------------------------------------------
// Routing and polling

const ROUTES = [
  { pattern: /^\/$/, nav: 'overview', view: overviewView },
  { pattern: /^\/tasks\/?$/, nav: 'tasks', view: tasksView },
  { pattern: /^\/tasks\/(\d+)$/, nav: 'tasks', view: taskView },
  { pattern: /^\/failures\/?$/, nav: 'failures', view: failuresView },
  { pattern: /^\/schedules\/?$/, nav: 'schedules', view: schedulesView },
];

function parseHash() {
  const raw = location.hash.replace(/^#/, '');
  const at = raw.indexOf('?');
  const path = (at < 0 ? raw : raw.slice(0, at)) || '/';
  return { path, params: new URLSearchParams(at < 0 ? '' : raw.slice(at + 1)) };
}

function hashFor(path, params = {}) {
  const query = new URLSearchParams(params).toString();
  return `#${path}${query ? `?${query}` : ''}`;
}

/** Goes to a page; going to the page already shown reloads it (the hash would not change). */
function go(path, params) {
  const hash = hashFor(path, params);
  if (location.hash === hash) navigate();
  else location.hash = hash;
}

async function navigate() {
  clearTimeout(app.timer);
  document.body.dataset.ready = 'false';
  const first = app.navigations++ === 0;
  const { path, params } = parseHash();
  const route = ROUTES.find((r) => r.pattern.test(path));
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === route?.nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  syncQueueSelect(params.get('queue') ?? '');
  const view = route ? route.view(params, path.match(route.pattern)) : notFoundView(path);
  app.view = view;
  document.title = `${view.title} · pgtq`;
  ui.main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  if (!first) {
    window.scrollTo(0, 0);
    ui.main.focus({ preventScroll: true }); // screen readers start at the new content
  }
  await refresh();
  if (app.view !== view) return;
  document.body.dataset.ready = 'true';
  schedulePoll();
}

/** Loads the current view's data and renders it. On error: the banner, and what was shown stays. */
async function refresh() {
  const view = app.view;
  try {
    const data = await view.load();
    if (app.view !== view) return; // navigated away meanwhile
    clearBanner();
    // An unchanged answer is not redrawn: the page stays still for whoever reads or selects in it.
    const signature = view.signature?.(data);
    if (isSet(signature) && signature === view.signatureShown) return;
    view.signatureShown = signature;
    view.data = data;
    render(view);
  } catch (err) {
    if (app.view !== view) return;
    if (err instanceof ApiError && err.status === 404) {
      ui.main.replaceChildren(pageHead(view.title), h('p', { class: 'empty' }, `${err.message}.`));
      return;
    }
    showBanner(err);
    if (!view.data) ui.main.replaceChildren(pageHead(view.title), h('p', { class: 'empty' }, 'Not loaded.'));
  }
}

/** Draws the view, then gives focus back to the control that had it: polling must not take it away. */
function render(view) {
  const active = document.activeElement;
  const key = active !== ui.main && ui.main.contains(active) ? focusKey(active) : null;
  ui.main.replaceChildren(...[view.render(view.data)].flat(Infinity).filter(isSet));
  view.afterRender?.(view.data);
  if (!key) return;
  const same = [...ui.main.querySelectorAll('a, button, input, select')].find((n) => focusKey(n) === key);
  // The control may be gone (a retried task has no Retry button): focus stays in the page then.
  (same ?? ui.main).focus({ preventScroll: true });
}

function focusKey(node) {
  return [node.tagName, node.getAttribute('href'), node.dataset.key, node.name, node.textContent].join('|');
}

function schedulePoll() {
  clearTimeout(app.timer);
  const view = app.view;
  if (!view.poll || document.hidden) return; // visibilitychange starts it again
  app.timer = setTimeout(async () => {
    await refresh();
    if (app.view === view) schedulePoll();
  }, view.poll);
}

document.addEventListener('visibilitychange', () => {
  if (document.hidden) clearTimeout(app.timer);
  else if (app.view?.poll) refresh().then(schedulePoll);
});

// The chart is drawn to the width of the page: draw it again when that changes.
let resizeTimer = 0;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => app.view?.data && app.view.afterRender?.(app.view.data), 150);
});

window.addEventListener('hashchange', navigate);

// ---------------------------------------------------------------------------------------------
// Overview

function overviewView(params) {
  const queue = params.get('queue') ?? '';
  return {
    title: 'Overview',
    poll: OVERVIEW_POLL_MS,
    load: () => get('api/overview', { queue }),
    // The chart's window moves every minute, even when nothing else changes.
    signature: ({ now, ...rest }) => `${Math.floor(Date.parse(now) / 60_000)} ${JSON.stringify(rest)}`,
    render(data) {
      app.clockSkew = Date.parse(data.now) - Date.now() || 0;
      setQueues(data.queues ?? []);
      const throughput = data.throughput ?? [];
      return [
        pageHead('Overview', h('span', { class: 'live' }, 'Live')),
        section('Queues', queueTable(data, queue)),
        section(
          'Throughput, last hour',
          h('div', { class: 'chart-wrap' }),
          chartLegend(throughput, data.now),
        ),
        section('Workers and schedulers', processTable(data.processes ?? [])),
        section('Running tasks', runningTable(data.running ?? [])),
        h(
          'div',
          { class: 'grid-split' },
          section('Paused', pausedTable(data.paused ?? [])),
          section('Held back by flow control', heldTable(data.held ?? [])),
        ),
      ];
    },
    // Drawn once in the page, at the width it gets there, so that its labels keep their size on a phone.
    afterRender(data) {
      const wrap = ui.main.querySelector('.chart-wrap');
      wrap?.replaceChildren(throughputChart(data.throughput ?? [], data.now, wrap.clientWidth));
    },
  };
}

function queueTable(data, only) {
  const summary = data.summary ?? [];
  const queues = only
    ? [only]
    : [...new Set([...(data.queues ?? []), ...summary.map((r) => r.queue)])].sort();
  // The pending states always; finished ones too if the server counts them.
  const states = STATES.filter((st) => PENDING_STATES.includes(st) || summary.some((r) => r.state === st));
  const paused = new Set((data.paused ?? []).filter((p) => p.name === null).map((p) => p.queue));
  const { readOnly } = app.config;
  const rows = queues.map((queue) => {
    const of = (state) => summary.find((r) => r.queue === queue && r.state === state);
    const counts = states.map((state) => {
      const { count = 0, oldest_age: age } = of(state) ?? {};
      const attrs = {
        class: count ? 'num' : 'num zero',
        'data-testid': `count-${queue}-${state}`,
        title: age && count ? `oldest: due ${age} ago` : null,
      };
      return h('td', attrs, h('a', { href: hashFor('/tasks', { queue, state }) }, String(count)));
    });
    const ready = of('ready');
    const pause = actionButton('pause', 'Pause', {
      key: queue,
      title: 'Pause queue',
      message: `Pause queue "${queue}"? Workers start none of its tasks until it is resumed.`,
      confirmLabel: 'Pause',
      path: `api/queues/${encodeURIComponent(queue)}/pause`,
    });
    return h(
      'tr',
      {},
      h('th', { scope: 'row' }, queue, paused.has(queue) && h('span', { class: 'badge paused' }, 'paused')),
      counts,
      h(
        'td',
        { class: ready?.oldest_age_ms > LATE_READY_MS ? 'num late' : 'num' },
        ready?.oldest_age ?? dash(),
      ),
      !readOnly && h('td', {}, paused.has(queue) ? null : pause),
    );
  });
  const columns = ['Queue', ...states.map((st) => `#${st}`), '#Oldest ready', readOnly ? null : 'Actions'];
  return table('Tasks per queue and state', columns, rows, 'No queues yet.');
}

/** The last 60 minutes, oldest first. The server leaves out minutes when nothing finished: zeros. */
function minutePoints(rows, nowIso) {
  const floor = (ms) => Math.floor(ms / 60_000) * 60_000;
  const end = floor(Date.parse(nowIso) || serverNow());
  const byMinute = new Map(rows.map((r) => [floor(Date.parse(r.minute)), r]));
  return Array.from({ length: 60 }, (_, i) => {
    const t = end - (59 - i) * 60_000;
    const r = byMinute.get(t);
    return { t, ok: Number(r?.succeeded ?? 0), ko: Number(r?.failed ?? 0) };
  });
}

const totalsOf = (points) =>
  points.reduce((a, p) => ({ ok: a.ok + p.ok, ko: a.ko + p.ko }), { ok: 0, ko: 0 });

function chartLegend(rows, nowIso) {
  const { ok, ko } = totalsOf(minutePoints(rows, nowIso));
  return h(
    'p',
    { class: 'legend' },
    [h('span', { class: 'swatch ok' }), `Succeeded ${ok}`, h('span', { class: 'swatch ko' }), `Failed ${ko}`],
    muted('tasks finished per minute'),
  );
}

/** Succeeded and failed tasks per minute over the last hour: stacked bars, in SVG drawn here. */
function throughputChart(rows, nowIso, available) {
  const points = minutePoints(rows, nowIso);
  const totals = totalsOf(points);
  const peak = Math.max(0, ...points.map((p) => p.ok + p.ko));
  const step = niceStep(peak / 4);
  const [width, height] = [Math.max(280, Math.floor(available) || 600), 180];
  const pad = { left: 40, right: 8, top: 10, bottom: 24 };
  const plotH = height - pad.top - pad.bottom;
  const slot = (width - pad.left - pad.right) / 60;
  const gap = Math.min(1, slot * 0.15);
  const y = (v) => pad.top + plotH - (v / (step * 4)) * plotH;
  const minute = (t) => formats.minute.format(new Date(t));

  const grid = [0, 1, 2, 3, 4].map((i) =>
    svg(
      'g',
      { class: 'tick' },
      svg('line', { x1: pad.left, x2: width - pad.right, y1: y(i * step), y2: y(i * step) }),
      svg('text', { x: pad.left - 6, y: y(i * step) + 4, 'text-anchor': 'end' }, String(i * step)),
    ),
  );
  // A time label every quarter of an hour (half an hour when narrow), and "now" at the right end.
  const every = width < 420 ? 30 : 15;
  const labels = points.flatMap((p, i) => {
    if (i % every !== 0 && i !== 59) return [];
    const attrs = {
      x: pad.left + (i + 0.5) * slot,
      y: height - 6,
      'text-anchor': i === 59 ? 'end' : 'middle',
    };
    return [svg('text', attrs, i === 59 ? 'now' : minute(p.t))];
  });
  const bars = points.map((p, i) => {
    const [x, w] = [pad.left + i * slot + gap, Math.max(1, slot - 2 * gap)];
    return svg(
      'g',
      { class: 'bar' },
      svg('title', {}, `${minute(p.t)}: ${p.ok} succeeded, ${p.ko} failed`),
      // A transparent full-height target, so that the tooltip shows on empty minutes too.
      svg('rect', { class: 'hit', x, y: pad.top, width: w, height: plotH }),
      p.ok > 0 && svg('rect', { class: 'ok', x, y: y(p.ok), width: w, height: y(0) - y(p.ok) }),
      p.ko > 0 &&
        svg('rect', { class: 'ko', x, y: y(p.ok + p.ko), width: w, height: y(p.ok) - y(p.ok + p.ko) }),
    );
  });
  const summary = `${totals.ok} succeeded and ${totals.ko} failed in the last 60 minutes, at most ${peak} in a minute.`;
  return svg(
    'svg',
    {
      'data-testid': 'throughput-chart',
      class: 'chart',
      role: 'img',
      'aria-labelledby': 'chart-title chart-desc',
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
    },
    svg('title', { id: 'chart-title' }, 'Tasks succeeded and failed per minute, last hour'),
    svg('desc', { id: 'chart-desc' }, summary),
    grid,
    bars,
    labels,
  );
}

/** 1, 2 or 5 times a power of ten: round numbers on the axis. */
function niceStep(raw) {
  if (raw <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((v) => v >= raw);
}

function processTable(processes) {
  const rows = processes.map((p) =>
    h(
      'tr',
      {},
      [td(p.kind), td(p.queue), td(p.hostname), num(p.pid), num(p.running), td(relativeEl(p.started_at))],
      td(relativeEl(p.heartbeat_at), p.silent_ms > LATE_HEARTBEAT_MS ? 'late' : null),
      td(mono(p.id)),
    ),
  );
  const columns = ['Kind', 'Queue', 'Host', '#PID', '#Running', 'Started', 'Last heartbeat', 'Id'];
  return table('Live workers and schedulers', columns, rows, 'No live workers or schedulers.');
}

function runningTable(running) {
  const rows = running.map((t) => {
    const progress = isSet(t.progress) ? json(t.progress, false) : null;
    return h(
      'tr',
      {},
      [td(taskLink(t.id)), td(t.queue), td(t.name), td(t.worker_id && mono(t.worker_id))],
      [td(relativeEl(t.started_at)), td(`${t.attempts}/${t.max_attempts}`, 'num')],
      progress === null ? td(null) : h('td', { class: 'json-cell', title: progress }, mono(progress)),
    );
  });
  const columns = ['Id', 'Queue', 'Name', 'Worker', 'Started', '#Attempt', 'Progress'];
  return table('Running tasks', columns, rows, 'Nothing is running.');
}

function pausedTable(paused) {
  const { readOnly } = app.config;
  const rows = paused.map((p) => {
    const what = p.name === null ? `queue "${p.queue}"` : `tasks named "${p.name}" in queue "${p.queue}"`;
    const resume = actionButton('resume', 'Resume', {
      key: `${p.queue}/${p.name}`,
      title: 'Resume',
      message: `Resume ${what}?`,
      confirmLabel: 'Resume',
      path: `api/queues/${encodeURIComponent(p.queue)}/resume`,
      body: p.name === null ? {} : { name: p.name },
    });
    return h(
      'tr',
      {},
      td(p.queue),
      td(p.name ?? muted('whole queue')),
      td(timeEl(p.paused_at)),
      !readOnly && td(resume),
    );
  });
  const columns = ['Queue', 'Task name', 'Paused since', readOnly ? null : 'Actions'];
  return table('Paused queues and task names', columns, rows, 'No queue or task name is paused.');
}

function heldTable(held) {
  const rows = held.map((g) => {
    const limits = [];
    if (isSet(g.group_concurrency)) limits.push(`${g.group_concurrency} at a time`);
    if (isSet(g.rate_limit))
      limits.push(`${g.recent_starts ?? 0}/${g.rate_limit} per ${duration(g.rate_period_ms)}`);
    const by = g.held_by && h('span', { class: 'badge held' }, g.held_by.replace('_', ' '));
    return h(
      'tr',
      {},
      [td(g.queue), td(g.name), td(isSet(g.group_key) && mono(g.group_key)), td(by)],
      [num(g.ready), num(g.running), td(limits.join(', ') || null)],
    );
  });
  const columns = ['Queue', 'Name', 'Group', 'Held by', '#Ready', '#Running', 'Limit'];
  return table('Groups held back by flow control', columns, rows, 'No group is held back.');
}

// ---------------------------------------------------------------------------------------------
// Tasks

const FILTERS = ['queue', 'state', 'name', 'key', 'group'];

function tasksView(params) {
  const filters = Object.fromEntries(FILTERS.map((f) => [f, params.get(f) ?? '']));
  const before = params.get('before') ?? '';
  return {
    title: 'Tasks',
    async load() {
      await ensureQueues();
      return get('api/tasks', { ...filters, state: params.getAll('state'), before, limit: PAGE_SIZE });
    },
    render: (data) => [
      pageHead('Tasks'),
      filterForm(filters),
      section(before ? 'Older tasks' : 'Newest tasks', taskTable(data.tasks ?? []), pager(params, data.next)),
    ],
  };
}

function filterForm(filters) {
  const field = (label, control) => h('label', { class: 'field' }, h('span', {}, label), control);
  const text = (name) => h('input', { name, type: 'text', value: filters[name], autocomplete: 'off' });
  const stateOptions = STATES.map((st) => h('option', { value: st, selected: st === filters.state }, st));
  const form = h(
    'form',
    { class: 'filters card', 'aria-label': 'Filter tasks' },
    field('Queue', h('select', { name: 'queue' }, queueOptions(filters.queue))),
    field('State', h('select', { name: 'state' }, h('option', { value: '' }, 'Any state'), stateOptions)),
    [field('Name', text('name')), field('Key', text('key')), field('Group', text('group'))],
    h(
      'div',
      { class: 'field buttons' },
      h('button', { type: 'submit', class: 'primary' }, 'Apply'),
      h('a', { href: '#/tasks', class: 'button' }, 'Clear'),
    ),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const values = new FormData(form);
    const chosen = FILTERS.map((f) => [f, String(values.get(f) ?? '').trim()]).filter(([, v]) => v);
    go('/tasks', chosen);
  });
  return form;
}

function taskTable(tasks) {
  const rows = tasks.map((t) =>
    h(
      'tr',
      { 'data-testid': `task-row-${t.id}` },
      [td(taskLink(t.id)), td(t.queue), td(t.name), td(stateBadge(t.state))],
      [td(`${t.attempts}/${t.max_attempts}`, 'num'), td(timeEl(t.run_at)), td(timeEl(t.finished_at))],
    ),
  );
  const columns = ['Id', 'Queue', 'Name', 'State', '#Attempts', 'Run at', 'Finished'];
  return table('Tasks', columns, rows, 'No task matches these filters.');
}

/** Keyset paging: "Next page" asks for the tasks older than the last one shown, never an offset. */
function pager(params, next) {
  const before = params.get('before');
  if (!before && !next) return null;
  const page = (value) => () => {
    const p = new URLSearchParams(params);
    if (value) p.set('before', value);
    else p.delete('before');
    go('/tasks', p);
  };
  return h(
    'div',
    { class: 'pager' },
    h('button', { type: 'button', disabled: !before, onclick: page('') }, 'First page'),
    h('button', { type: 'button', disabled: !next, onclick: page(next) }, 'Next page'),
  );
}

// ---------------------------------------------------------------------------------------------
// One task

function taskView(_params, match) {
  const id = match[1];
  return {
    title: `Task ${id}`,
    load: () => get(`api/tasks/${id}`),
    render: ({ task, parents = [], children = [] }) => {
      const jsonOr = (value, none) =>
        isSet(value) ? h('pre', {}, json(value)) : h('p', { class: 'empty' }, none);
      const error = typeof task.error === 'string' ? task.error : json(task.error);
      // A pending task shows the error of its previous attempt.
      const errorTitle = PENDING_STATES.includes(task.state) ? 'Last error' : 'Error';
      return h(
        'div',
        { 'data-testid': 'task-detail' },
        pageHead(
          `Task ${task.id}`,
          stateBadge(task.state, { 'data-testid': 'task-state' }),
          h('span', { class: 'subtitle' }, task.name),
        ),
        taskActions(task),
        section('Details', taskFields(task)),
        section('Arguments', h('pre', { 'data-testid': 'task-args' }, json(task.args))),
        isSet(task.error) &&
          section(errorTitle, h('pre', { 'data-testid': 'task-error', class: 'error' }, error)),
        h(
          'div',
          { class: 'grid-2' },
          section('Result', jsonOr(task.result, 'None.')),
          section('Progress', jsonOr(task.progress, 'None reported.')),
          section('Parents', relatives(parents, 'It runs after no other task.')),
          section('Children', relatives(children, 'No task runs after it.')),
        ),
      );
    },
  };
}

function taskFields(task) {
  const between = (a, b) => (a && b ? duration(Date.parse(b) - Date.parse(a)) : null);
  const fields = [
    ['Queue', task.queue],
    ['Name', task.name],
    ['Key', isSet(task.key) && mono(task.key)],
    ['Group', isSet(task.group_key) && mono(task.group_key)],
    ['Priority', String(task.priority)],
    ['Attempts', `${task.attempts} of ${task.max_attempts}`],
    ['Created', timeEl(task.created_at)],
    ['Run at', timeEl(task.run_at)],
    ['Started', timeEl(task.started_at)],
    ['Finished', timeEl(task.finished_at)],
    ['Waited', between(task.run_at, task.started_at)],
    ['Ran for', between(task.started_at, task.finished_at)],
    ['Worker', isSet(task.worker_id) && mono(task.worker_id)],
  ];
  const pairs = fields.map(([label, value]) =>
    h('div', {}, h('dt', {}, label), h('dd', {}, value || dash())),
  );
  return h('dl', { class: 'fields' }, pairs);
}

function relatives(tasks, none) {
  if (tasks.length === 0) return h('p', { class: 'empty' }, none);
  const items = tasks.map((t) => h('li', {}, taskLink(t.id), h('span', {}, t.name), stateBadge(t.state)));
  return h('ul', { class: 'relatives' }, items);
}

function taskActions(task) {
  if (app.config.readOnly) return null;
  const { id, state, name } = task;
  const path = (verb) => `api/tasks/${encodeURIComponent(id)}/${verb}`;
  const buttons = [];
  if (state === 'failed' || state === 'cancelled') {
    const message = `Retry task ${id} (${name})? It becomes ready to run again.`;
    buttons.push(
      actionButton('retry', 'Retry', {
        title: 'Retry task',
        message,
        confirmLabel: 'Retry',
        path: path('retry'),
      }),
    );
  }
  if (PENDING_STATES.includes(state)) {
    const message =
      state === 'running'
        ? `Ask the worker running task ${id} (${name}) to stop it?`
        : `Cancel task ${id} (${name})? It will not run.`;
    const spec = {
      title: 'Cancel task',
      message,
      confirmLabel: 'Cancel task',
      danger: true,
      path: path('cancel'),
    };
    buttons.push(actionButton('cancel', 'Cancel task', spec));
  }
  if (state === 'scheduled' || state === 'ready' || state === 'waiting') {
    buttons.push(
      actionButton('delete', 'Delete', {
        title: 'Delete task',
        message: `Delete task ${id} (${name}) for good? This cannot be undone.`,
        confirmLabel: 'Delete',
        danger: true,
        path: path('delete'),
        onDone: () => go('/tasks', { queue: task.queue }),
      }),
    );
  }
  // The database moves only the tasks that wait for their time to come: scheduled or ready ones.
  if (state === 'scheduled' || state === 'ready') buttons.push(rescheduleControl(task, path('reschedule')));
  return (
    buttons.length > 0 && h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' }, buttons)
  );
}

function rescheduleControl(task, path) {
  const start = new Date(Math.max(Date.parse(task.run_at) || 0, Date.now() + 60_000));
  const input = h('input', { type: 'datetime-local', step: 1, name: 'run-at', value: toLocalInput(start) });
  const button = actionButton('reschedule', 'Reschedule', () => {
    const when = new Date(input.value); // a datetime-local value reads as local time
    if (!input.value || Number.isNaN(when.getTime())) {
      announce('Pick a date and time to reschedule to.', 'error');
      input.focus();
      return null;
    }
    return {
      title: 'Reschedule task',
      message: `Run task ${task.id} (${task.name}) at ${formats.full.format(when)}?`,
      confirmLabel: 'Reschedule',
      path,
      body: { runAt: when.toISOString() },
    };
  });
  return h('span', { class: 'reschedule' }, h('label', {}, 'Run at', input), button);
}

/** The value of a datetime-local input: local time, to the second. */
function toLocalInput(date) {
  const p = (n) => String(n).padStart(2, '0');
  const day = `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}`;
  return `${day}T${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}`;
}

// ---------------------------------------------------------------------------------------------
// Failures and schedules

function failuresView(params) {
  const queue = params.get('queue') ?? '';
  return {
    title: 'Failures',
    load: () => get('api/failures', { queue }),
    render: ({ failures = [] }) => {
      const rows = failures.map((f) => {
        const what =
          f.count === 1 ? `the failed "${f.name}" task` : `the ${f.count} failed "${f.name}" tasks`;
        const retry = actionButton('retry-group', 'Retry all', {
          key: `${f.queue}/${f.name}/${f.error}`,
          title: 'Retry failed tasks',
          message: `Retry ${what} of queue "${f.queue}" with this error?`,
          confirmLabel: 'Retry all',
          path: 'api/failures/retry',
          body: { queue: f.queue, name: f.name, error: f.error },
        });
        const list = h(
          'a',
          { href: hashFor('/tasks', { queue: f.queue, name: f.name, state: 'failed' }) },
          'Tasks',
        );
        return h(
          'tr',
          {},
          [td(f.queue), td(f.name), h('td', { class: 'error-cell' }, mono(f.error ?? '')), num(f.count)],
          [
            td(timeEl(f.first_failed_at)),
            td(timeEl(f.last_failed_at)),
            td(f.last_task_id && taskLink(f.last_task_id)),
          ],
          h('td', {}, h('div', { class: 'row-actions' }, retry, list)),
        );
      });
      const columns = ['Queue', 'Name', 'Error', '#Count', 'First failed', 'Last failed', 'Last task', ''];
      return [
        pageHead('Failures'),
        section(
          'Failed tasks by error',
          table('Failed tasks by queue, name and error', columns, rows, 'No failed tasks.'),
        ),
      ];
    },
  };
}

function schedulesView(params) {
  const queue = params.get('queue') ?? '';
  return {
    title: 'Schedules',
    poll: SCHEDULES_POLL_MS,
    async load() {
      await ensureQueues();
      return get('api/schedules');
    },
    signature: (data) => JSON.stringify(data),
    render: ({ schedules = [] }) => {
      const rows = schedules
        .filter((sc) => !queue || sc.queue === queue)
        .map((sc) => {
          const next = sc.next_fire_at && [
            timeEl(sc.next_fire_at),
            ' ',
            h('small', { class: 'muted' }, relativeEl(sc.next_fire_at)),
          ];
          return h(
            'tr',
            {},
            [td(sc.name), td(sc.queue), td(mono(sc.cron)), td(sc.tz), td(sc.task_name), td(next)],
            [
              td(timeEl(sc.last_fired_at)),
              sc.error ? h('td', { class: 'error-cell' }, mono(sc.error)) : td(null),
            ],
          );
        });
      const columns = ['Name', 'Queue', 'Cron', 'Time zone', 'Task', 'Next fire', 'Last fired', 'Error'];
      return [
        pageHead('Schedules'),
        section('Schedules', table('Schedules', columns, rows, 'No schedules.')),
      ];
    },
  };
}

function notFoundView(path) {
  return {
    title: 'Not found',
    load: async () => ({}),
    render: () => [
      pageHead('Not found'),
      h('p', { class: 'empty' }, `No page at ${path}. `, h('a', { href: '#/' }, 'Go to the overview.')),
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// Start: the configuration first (read-only or not), then the page that the address names.

async function start() {
  for (;;) {
    try {
      app.config = await get('api/config');
      break;
    } catch (err) {
      showBanner(err);
      await new Promise((resolve) => setTimeout(resolve, OVERVIEW_POLL_MS));
    }
  }
  clearBanner();
  const { schema, version, readOnly } = app.config;
  fill(ui.schema, { title: version ? `PostgreSQL schema; pgtq ${version}` : null }, [
    muted('schema'),
    mono(String(schema ?? '')),
    readOnly && h('span', { class: 'badge readonly' }, 'read-only'),
  ]);
  await navigate();
}

start();
