// The Switchyard dashboard: polls the admin port's JSON API once a second and draws it. No build
// step, no framework; the chart is uPlot, served from the package like this file.
'use strict';

const POLL_MS = 1000;
const HISTORY = 300; // points of the chart: five minutes at one a second
const RATES = ['queued', 'done', 'retried', 'dead', 'refused', 'dropped'];

const $ = (selector) => document.querySelector(selector);
const tokenInput = $('#token');
tokenInput.value = sessionStorage.getItem('switchyard-admin-token') || '';
tokenInput.addEventListener('change', () => {
  sessionStorage.setItem('switchyard-admin-token', tokenInput.value);
  // Whether the new token allows the actions is known once the API has seen it: ask at once.
  void refresh().catch((err) => say(`cannot read the deployment: ${err.message}`, true));
});

// What the actions need, as the API last said: null until its first answer (every action is
// disabled until then), 'read-only' (no --admin-token), or 'token-required'.
let actions = null;
// The token typed is the admin token (the API's last answer).
let tokenAccepted = false;
let previous = null;
const series = [[], [], [], []]; // time (s), backlog L1, backlog L2, done per second

function say(text, isError = false) {
  $('#message').textContent = text || '';
  $('#message').className = isError ? 'error' : '';
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) tr.append(c instanceof Node ? c : cell(String(c)));
  return tr;
}

// A table whose rows hold buttons is rebuilt only when what it shows changed: a rebuild between
// the press and the release of a click would swallow the click.
const drawn = new Map();
function changed(table, what) {
  const text = JSON.stringify(what);
  if (drawn.get(table) === text) return false;
  drawn.set(table, text);
  return true;
}

/** Why the state-changing buttons are disabled, or null when they are enabled. */
function actionsBlocked() {
  if (actions === null) return 'loading…';
  if (actions === 'read-only') return 'read-only: the dashboard was started without --admin-token';
  if (!tokenAccepted) return tokenInput.value ? 'the admin token is wrong' : 'type the admin token';
  return null;
}

function enableActions(b) {
  const blocked = actionsBlocked();
  b.disabled = blocked !== null;
  b.title = blocked ?? '';
}

function button(label, onClick) {
  const b = document.createElement('button');
  b.textContent = label;
  b.dataset.action = 'true';
  enableActions(b);
  b.addEventListener('click', onClick);
  return b;
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function sum(counters, what) {
  return (counters[`L1:${what}`] || 0) + (counters[`L2:${what}`] || 0);
}

async function api(path, method = 'GET') {
  // Reads carry the token too: without it, a browser that is not on this machine sees job details redacted.
  const headers = {};
  if (tokenInput.value) headers.authorization = `Bearer ${tokenInput.value}`;
  const response = await fetch(`api/${path}`, { method, headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

async function act(path, done) {
  try {
    const result = await api(path, 'POST');
    say(done(result));
    await refresh();
  } catch (err) {
    say(err.message, true);
  }
}

// The rows of the queue table are made once and updated in place, so the pause/resume buttons
// stay the same elements while depths change under them.
const levelRows = new Map();
function levelRow(level) {
  if (levelRows.has(level)) return levelRows.get(level);
  const cells = { numbers: [0, 1, 2, 3, 4].map(() => cell('', 'n')), state: document.createElement('span'), paused: false };
  const toggle = button('Pause', () =>
    act(`levels/${level}/${cells.paused ? 'resume' : 'pause'}`, () => `level ${level} ${cells.paused ? 'resumed' : 'paused'}`),
  );
  toggle.id = `toggle-level-${level}`;
  cells.toggle = toggle;
  const stateCell = cell('');
  stateCell.append(cells.state);
  const toggleCell = cell('');
  toggleCell.append(toggle);
  $('#queues tbody').append(row([`L${level}`, ...cells.numbers, stateCell, toggleCell]));
  levelRows.set(level, cells);
  return cells;
}

function drawQueues(o) {
  for (const level of [1, 2]) {
    const cells = levelRow(level);
    const paused = o.paused[level];
    const refusing = level === 2 && !o.level2.active;
    const values = [
      o.queues[`L${level}:execute`],
      o.queues[`L${level}:last`],
      o.queues[`L${level}:discard`],
      o.backlog[`L${level}`],
      ago(o.oldestAgeSeconds[level]),
    ];
    values.forEach((value, i) => (cells.numbers[i].textContent = String(value)));
    cells.state.className = `badge ${paused ? 'warn' : refusing ? 'bad' : 'ok'}`;
    cells.state.textContent = paused ? 'paused' : refusing ? 'refusing' : 'running';
    cells.paused = paused;
    cells.toggle.textContent = paused ? 'Resume' : 'Pause';
  }
}

function drawSwitch(o) {
  const { backlog, capacity, active } = o.level2;
  const badge = $('#switch-state');
  badge.textContent = active ? 'active' : 'refusing';
  badge.className = `badge ${active ? 'ok' : 'bad'}`;
  $('#switch-fill').style.width = `${Math.min(100, (100 * backlog) / capacity)}%`;
  $('#switch-text').textContent =
    `${backlog} of ${capacity} waiting: refuses level-2 calls above ${Math.floor(capacity * 0.8)}, accepts them again under ${Math.floor(capacity * 0.6)}`;
}

function drawRates(o) {
  const body = $('#rates tbody');
  body.replaceChildren();
  const seconds = previous ? (o.time - previous.time) / 1000 : 0;
  for (const what of RATES) {
    const rate = previous && seconds > 0 ? (sum(o.counters, what) - sum(previous.counters, what)) / seconds : 0;
    const tr = row([what, cell(rate.toFixed(1), 'n')]);
    tr.dataset.rate = what;
    body.append(tr);
  }
  $('#in-flight').textContent = `${o.inFlight} running on ${o.workers.length} worker(s), ${o.retriesWaiting} retries waiting`;
  const doneRate = previous && seconds > 0 ? (sum(o.counters, 'done') - sum(previous.counters, 'done')) / seconds : 0;
  series[0].push(o.time / 1000);
  series[1].push(o.backlog.L1);
  series[2].push(o.backlog.L2);
  series[3].push(doneRate);
  if (series[0].length > HISTORY) for (const line of series) line.shift();
}

let chart = null;
function drawChart() {
  if (typeof uPlot === 'undefined') return;
  if (!chart) {
    const element = $('#chart');
    chart = new uPlot(
      {
        width: element.clientWidth || 800,
        height: 220,
        series: [
          {},
          { label: 'backlog L1', stroke: '#4c6ef5' },
          { label: 'backlog L2', stroke: '#f08c00' },
          { label: 'done/s', stroke: '#2f9e44', scale: 'rate' },
        ],
        axes: [{}, { label: 'waiting' }, { side: 1, scale: 'rate', label: 'jobs/s', grid: { show: false } }],
      },
      series,
      element,
    );
  } else chart.setData(series);
}

function drawWorkers(o) {
  const body = $('#workers tbody');
  body.replaceChildren();
  for (const w of o.workers) {
    const running = w.running.map((r) => `${r.id} L${r.level} ${r.method} ${r.url} (attempt ${r.attempt}, ${ago(r.runningSeconds)})`).join('\n') || '—';
    body.append(row([w.id, cell(`${(w.leaseLeftMs / 1000).toFixed(1)} s`, 'n'), cell(running)]));
  }
}

// The top groups by backlog, the rest summed on one line (the server bounds what it reads).
function drawGroups(o) {
  const g = o.groups;
  $('#groups-card').hidden = !g || (g.active === 0 && g.top.length === 0);
  if (!g) return;
  const body = $('#groups tbody');
  body.replaceChildren();
  $('#groups-count').textContent = `(${g.active} active${g.unread > 0 ? `; ${g.unread} not read: too many to read at once` : ''})`;
  const limited = (x) => (x.limited ? `${x.limited}${x.dueInMs ? ` (${x.dueInMs} ms)` : ''}` : '—');
  for (const x of g.top) body.append(row([x.name, cell(x.backlog[1], 'n'), cell(x.backlog[2], 'n'), cell(x.running, 'n'), limited(x)]));
  if (g.other) {
    const o2 = g.other;
    body.append(
      row([`${o2.groups} other groups`, cell(o2.backlog[1], 'n'), cell(o2.backlog[2], 'n'), cell(o2.running, 'n'), o2.limited ? `${o2.limited} limited` : '—']),
    );
  }
}

async function drawDead() {
  const entries = await api('dead?limit=20');
  if (!changed('dead', [entries, actionsBlocked()])) return;
  const body = $('#dead tbody');
  body.replaceChildren();
  $('#dead-count').textContent = `(${entries.total} in all; newest ${entries.items.length})`;
  for (const e of entries.items) {
    const requeue = button('Requeue', () => act(`dead/${encodeURIComponent(e.id)}/requeue`, (r) => `job ${e.id}: ${r.outcome}`));
    requeue.dataset.job = e.id;
    const remove = button('Delete', () => act(`dead/${encodeURIComponent(e.id)}/delete`, (r) => `job ${e.id}: ${r.outcome}`));
    remove.dataset.delete = e.id;
    const actionCell = cell('');
    actionCell.append(requeue, ' ', remove);
    body.append(
      row([
        e.id,
        `L${e.level} ${e.method} ${e.url}`,
        cell(e.attempts, 'n'),
        e.status ?? '—',
        new Date(e.failedAt).toLocaleTimeString(),
        cell(e.error, 'error'),
        actionCell,
      ]),
    );
  }
}

async function refresh() {
  const o = await api('overview');
  actions = o.actions;
  tokenAccepted = o.tokenAccepted === true;
  $('#deployment').textContent = `{${o.deployment.prefix}}${o.deployment.partitions > 1 ? ` · ${o.deployment.partitions} partitions` : ''}`;
  const mode = $('#mode');
  mode.textContent = actions === 'read-only' ? 'read-only' : tokenAccepted ? 'admin token accepted' : 'actions need the admin token';
  mode.className = `badge ${actions === 'read-only' ? '' : tokenAccepted ? 'ok' : 'warn'}`;
  // The buttons follow the badge at once (the page is read by people and tests as one state);
  // rows drawn below get theirs as they are made, and all are set again at the end.
  for (const b of document.querySelectorAll('button[data-action]')) enableActions(b);
  tokenInput.hidden = actions === 'read-only';
  const details = $('#details');
  details.hidden = o.details !== 'redacted';
  details.textContent = actions === 'read-only' ? 'job details redacted (not on this machine)' : 'job details redacted: type the admin token';
  drawQueues(o);
  drawSwitch(o);
  drawRates(o);
  drawChart();
  drawGroups(o);
  drawWorkers(o);
  await drawDead();
  for (const b of document.querySelectorAll('button[data-action]')) enableActions(b);
  $('#updated').textContent = `updated ${new Date(o.time).toLocaleTimeString()}`;
  previous = o;
  document.body.classList.remove('loading');
  $('main').removeAttribute('aria-busy');
}

$('#lookup').addEventListener('submit', async (event) => {
  event.preventDefault();
  const id = $('#job-id').value.trim();
  if (!id) return;
  try {
    $('#job').textContent = JSON.stringify(await api(`jobs/${encodeURIComponent(id)}`), null, 2);
  } catch (err) {
    $('#job').textContent = err.message;
  }
});
$('#requeue-all').addEventListener('click', () => act('dead/requeue-all', (r) => `${r.requeued} dead job(s) requeued`));
$('#purge').addEventListener('click', () => act('dead/purge', (r) => `${r.purged} dead job(s) purged`));

async function loop() {
  try {
    await refresh();
  } catch (err) {
    say(`cannot read the deployment: ${err.message}`, true);
  }
  setTimeout(loop, POLL_MS);
}
void loop();
