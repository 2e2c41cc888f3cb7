// The dashboard: one page whose sections are shown by the URL's hash. It
// talks to the REST API with the user's bearer token, kept in
// sessionStorage so that it goes away with the tab. Every failure ends in
// the error banner with the API's code and message.
'use strict';

const $ = (sel) => document.querySelector(sel);
const PAGES = ['signin', 'functions', 'run', 'jobs', 'usage', 'ops'];

// session holds the signed-in user, their token and the operator's token.
const session = {
  get user() { return sessionStorage.getItem('faas.user'); },
  get token() { return sessionStorage.getItem('faas.token'); },
  get admin() { return sessionStorage.getItem('faas.admin'); },
  signIn(user, token) { sessionStorage.setItem('faas.user', user); sessionStorage.setItem('faas.token', token); },
  setAdmin(token) { token ? sessionStorage.setItem('faas.admin', token) : sessionStorage.removeItem('faas.admin'); },
  signOut() { sessionStorage.clear(); },
};

// ApiError is a failed request: the API's error code and message.
class ApiError extends Error {
  constructor(code, message, status) { super(message); this.code = code; this.status = status; }
}

// api calls the REST API and unwraps its {"error","code","res"} envelope.
async function api(method, path, { body, token = session.token, type } = {}) {
  const headers = {};
  if (token) headers.Authorization = 'Bearer ' + token;
  if (type) headers['Content-Type'] = type;
  let res;
  try {
    res = await fetch(path, { method, headers, body, cache: 'no-store' });
  } catch (e) {
    throw new ApiError('unreachable', 'cannot reach the platform: ' + e.message, 0);
  }
  let env;
  try {
    env = await res.json();
  } catch {
    throw new ApiError('internal', `unexpected answer from the platform (HTTP ${res.status})`, res.status);
  }
  if (env.error) {
    const err = new ApiError(env.code || 'error', String(env.res), res.status);
    // The user's own token refused: it was revoked, or the user deleted.
    err.signedOut = err.code === 'unauthorized' && !!token && token === session.token;
    throw err;
  }
  return { res: env.res, next: env.next_cursor, status: res.status, location: res.headers.get('Location') };
}

const userPath = (rest = '') => '/u/' + encodeURIComponent(session.user) + rest;
const fnPath = (name, rest = '') => userPath('/fn/' + encodeURIComponent(name) + rest);
const jobPath = (id, rest = '') => '/j/' + encodeURIComponent(id) + rest;

// showError puts err in the banner; a 401 means the token no longer works.
function showError(err) {
  const msg = err instanceof ApiError ? `${err.code}: ${err.message}` : String(err && err.message || err);
  $('#error-text').textContent = msg;
  $('#error').hidden = false;
  if (err instanceof ApiError && err.signedOut) {
    session.signOut();
    route();
  }
}
function clearError() { $('#error').hidden = true; }

// busy disables a button while its request runs, so a double press
// cannot send the request twice.
async function busy(button, fn) {
  button.disabled = true;
  try { await fn(); } catch (e) { showError(e); } finally { button.disabled = false; }
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v; else if (k.startsWith('on')) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function fmtMs(ms) {
  if (ms == null) return '–';
  if (ms < 1) return ms.toFixed(3) + ' ms';
  if (ms < 1000) return ms.toFixed(1) + ' ms';
  if (ms < 60000) return +(ms / 1000).toFixed(2) + ' s';
  return (ms / 60000).toFixed(1) + ' min';
}
function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}
function badge(node, state) { node.textContent = state; node.className = 'badge ' + state; }
const pretty = (v) => JSON.stringify(v, null, 2);

// ---- routing ----

let leave = null; // stops the timers of the page being left

function route() {
  let page = location.hash.slice(1) || 'functions';
  if (!PAGES.includes(page)) page = 'functions';
  if (!session.token && page !== 'ops') page = 'signin';
  if (session.token && page === 'signin') page = 'functions';
  if (leave) { leave(); leave = null; }
  for (const p of PAGES) $('#page-' + p).hidden = p !== page;
  const signedIn = !!session.token;
  $('#nav').hidden = !signedIn;
  $('#who').hidden = !signedIn;
  $('#who-name').textContent = session.user || '';
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === '#' + page) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  document.title = page + ' · faas';
  const enter = { functions: loadFunctions, run: enterRun, jobs: enterJobs, usage: loadUsage, ops: enterOps }[page];
  if (enter) enter().catch(showError);
}

// ---- sign in and register ----

$('#signin-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const user = $('#signin-user').value.trim(), token = $('#signin-token').value.trim();
  if (!user || !token) { showError(new ApiError('invalid', 'enter your user name and token')); return; }
  busy(ev.submitter || $('#signin-form button'), async () => {
    // Reading the billed time proves the pair works without changing anything.
    await api('GET', '/u/' + encodeURIComponent(user) + '/time', { token });
    session.signIn(user, token);
    clearError();
    location.hash = '#functions';
    route();
  });
});

$('#register-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const user = $('#register-user').value.trim();
  if (!user) { showError(new ApiError('invalid', 'choose a user name')); return; }
  busy(ev.submitter || $('#register-form button'), async () => {
    const { res } = await api('POST', '/u/' + encodeURIComponent(user), { token: null });
    clearError();
    session.signIn(res.name, res.token);
    $('#new-token').textContent = res.token;
    $('#copy-state').textContent = '';
    $('#register-done').hidden = false;
    $('#copy-token').focus();
  });
});

// copyText copies the text of the element code, a secret shown once,
// and says so in state.
async function copyText(code, state) {
  try {
    await navigator.clipboard.writeText(code.textContent);
    state.textContent = 'Copied to the clipboard.';
  } catch {
    // Without clipboard access, select it for the user to copy.
    getSelection().selectAllChildren(code);
    state.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
  }
}
$('#copy-token').addEventListener('click', () => copyText($('#new-token'), $('#copy-state')));

$('#register-continue').addEventListener('click', () => {
  $('#register-done').hidden = true;
  $('#new-token').textContent = '';
  $('#register-user').value = '';
  location.hash = '#functions';
  route();
});

$('#signout').addEventListener('click', () => { session.signOut(); location.hash = '#signin'; route(); });
$('#error-close').addEventListener('click', clearError);

// ---- functions ----

// functions caches the last listing: name -> settings.
let functions = {};

async function listFunctions() {
  const all = {};
  let cursor = '';
  do {
    const q = '?fields=settings&limit=1000' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '');
    const { res, next } = await api('GET', userPath('/fn' + q));
    Object.assign(all, res);
    cursor = next;
  } while (cursor);
  functions = all;
  return all;
}

async function loadFunctions() {
  const fns = await listFunctions();
  const body = $('#fn-table tbody');
  body.replaceChildren();
  const names = Object.keys(fns).sort();
  for (const name of names) {
    const s = fns[name];
    const del = el('button', { type: 'button', class: 'small danger', 'aria-label': 'Delete ' + name }, 'Delete');
    del.addEventListener('click', () => confirmThen(del, () => deleteFunction(name)));
    body.append(el('tr', { 'data-fn': name },
      el('td', {}, el('code', {}, name)),
      el('td', {}, fmtMs(s.timeout_ms)),
      el('td', {}, s.memory_mb ? s.memory_mb + ' MB' : 'default'),
      el('td', {}, fmtTime(s.updated)),
      el('td', { class: 'actions' },
        el('button', { type: 'button', class: 'small', 'aria-label': 'Edit ' + name, onclick: () => editFunction(name).catch(showError) }, 'Edit'),
        el('button', { type: 'button', class: 'small', 'aria-label': 'Run ' + name, onclick: () => { runTarget = name; location.hash = '#run'; } }, 'Run'),
        del)));
  }
  $('#fn-empty').hidden = names.length > 0;
}

// confirmThen asks for a second press before doing something that cannot
// be undone; a dialog box would block the page (and its keyboard focus).
function confirmThen(button, action) {
  const disarm = () => {
    clearTimeout(button.disarm);
    button.classList.remove('armed');
    button.textContent = button.dataset.label;
  };
  if (!button.classList.contains('armed')) {
    button.classList.add('armed');
    button.dataset.label = button.textContent;
    button.textContent = 'Confirm';
    button.disarm = setTimeout(disarm, 4000);
    return;
  }
  disarm();
  busy(button, action);
}

async function deleteFunction(name) {
  await api('DELETE', fnPath(name));
  clearError();
  if ($('#fn-name').value === name) newFunction();
  await loadFunctions();
}

async function editFunction(name) {
  const { res } = await api('GET', fnPath(name));
  const s = functions[name] || {};
  $('#fn-form-title').textContent = 'Edit ' + name;
  $('#fn-name').value = name;
  $('#fn-timeout').value = s.timeout_ms ? s.timeout_ms / 1000 : 30;
  $('#fn-memory').value = s.memory_mb || '';
  $('#fn-concurrency').value = res.concurrency || '';
  $('#fn-src').value = res.src;
  $('#fn-saved').textContent = '';
  highlight();
  $('#fn-src').focus();
  await showPanels(name);
}

function newFunction() {
  $('#fn-form-title').textContent = 'New function';
  $('#fn-name').value = '';
  $('#fn-timeout').value = 30;
  $('#fn-memory').value = '';
  $('#fn-concurrency').value = '';
  $('#fn-src').value = 'function main() {\n  return "hello"\n}\n';
  $('#fn-saved').textContent = '';
  hidePanels();
  highlight();
  $('#fn-name').focus();
}
$('#fn-new').addEventListener('click', newFunction);

$('#fn-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = $('#fn-name').value.trim();
  const timeout = Number($('#fn-timeout').value), memory = $('#fn-memory').value.trim();
  if (!name) { showError(new ApiError('invalid', 'give the function a name')); $('#fn-name').focus(); return; }
  if (!(timeout > 0)) { showError(new ApiError('invalid', `timeout ${$('#fn-timeout').value || '(empty)'}: want a number of seconds above 0`)); $('#fn-timeout').focus(); return; }
  let q = '?timeout=' + encodeURIComponent(timeout + 's');
  if (memory) q += '&memory=' + encodeURIComponent(memory);
  // Always named, so that emptying the field lifts the limit; the API
  // checks the value and its refusal names it in the banner.
  q += '&concurrency=' + encodeURIComponent($('#fn-concurrency').value.trim() || '0');
  busy($('#fn-save'), async () => {
    const { status } = await api('POST', fnPath(name, q), { body: $('#fn-src').value, type: 'text/plain' });
    clearError();
    $('#fn-form-title').textContent = 'Edit ' + name;
    $('#fn-saved').textContent = (status === 201 ? 'Created ' : 'Saved ') + name + ' at ' + new Date().toLocaleTimeString();
    await loadFunctions();
    if (panelsOf !== name) await showPanels(name);
  });
});

// ---- the panels under the editor: the function's webhooks and schedule ----

// PANELS are the cards under the editor, by id, each naming the function
// in #<id>-fn, with what reads their contents.
const PANELS = { hooks: loadHooks, schedule: loadSchedule, topics: loadTopics };
let panelsOf = null; // the function the panels show

async function showPanels(name) {
  panelsOf = name;
  hideHookURL();
  $('#topic-published').hidden = true;
  await Promise.all(Object.entries(PANELS).map(async ([id, load]) => {
    const panel = $('#' + id);
    $(`#${id}-fn`).textContent = name;
    panel.hidden = false;
    // Busy until read: what it shows until then is the last function's.
    panel.setAttribute('aria-busy', 'true');
    try { await load(); } finally { panel.removeAttribute('aria-busy'); }
  }));
}

function hidePanels() {
  panelsOf = null;
  hideHookURL();
  for (const id of Object.keys(PANELS)) $('#' + id).hidden = true;
}

let hooksRead = 0; // counts the webhook list's readings, so only the last is drawn

// hideHookURL forgets a new hook's URL: the page shows it once only.
function hideHookURL() {
  $('#hook-done').hidden = true;
  $('#hook-url').textContent = '';
  delete $('#hook-done').dataset.hook;
}

async function loadHooks() {
  const name = panelsOf, n = ++hooksRead;
  const { res } = await api('GET', fnPath(name, '/hooks'));
  // A later reading (another function opened, a hook revoked) may have
  // answered first; this one is stale.
  if (n !== hooksRead) return;
  $('#hooks-table tbody').replaceChildren(...res.map((h) => {
    const rm = el('button', { type: 'button', class: 'small danger', 'aria-label': 'Revoke webhook ' + h.id }, 'Revoke');
    rm.addEventListener('click', () => confirmThen(rm, () => revokeHook(name, h.id)));
    return el('tr', { 'data-hook': h.id }, el('td', {}, el('code', {}, h.id)), el('td', {}, fmtTime(h.created)), el('td', { class: 'actions' }, rm));
  }));
  $('#hooks-empty').hidden = res.length > 0;
}

$('#hook-new').addEventListener('click', (ev) => busy(ev.currentTarget, async () => {
  const { res } = await api('POST', fnPath(panelsOf, '/hooks'));
  clearError();
  $('#hook-url').textContent = new URL(res.url, location.origin).href;
  $('#hook-copy-state').textContent = '';
  $('#hook-done').dataset.hook = res.id;
  $('#hook-done').hidden = false;
  await loadHooks();
}));
$('#copy-hook').addEventListener('click', () => copyText($('#hook-url'), $('#hook-copy-state')));

async function revokeHook(name, id) {
  await api('DELETE', fnPath(name, '/hooks/' + encodeURIComponent(id)));
  clearError();
  if ($('#hook-done').dataset.hook === id) hideHookURL();
  await loadHooks();
}

let scheduleRead = 0; // as hooksRead, for the schedule

async function loadSchedule() {
  const n = ++scheduleRead;
  let sc = null;
  try {
    ({ res: sc } = await api('GET', fnPath(panelsOf, '/schedule')));
  } catch (e) {
    if (!(e instanceof ApiError && e.code === 'not_found')) throw e; // none
  }
  if (n === scheduleRead) showSchedule(sc);
}

// showSchedule fills the schedule's form from sc, or empties it for none.
function showSchedule(sc) {
  $('#schedule-cron').value = sc ? sc.cron : '';
  $('#schedule-tz').value = sc ? sc.timezone : '';
  $('#schedule-args').value = sc ? JSON.stringify(sc.args) : '[]';
  $('#schedule-none').hidden = !!sc;
  $('#schedule-on').hidden = !sc;
  $('#schedule-rm').hidden = !sc;
  $('#schedule-next').replaceChildren(...(sc ? sc.next : []).map((t) => el('li', {}, new Date(t).toLocaleString())));
}

$('#schedule').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const args = argsOf($('#schedule-args'));
  if (args === null) return;
  // The API checks the expression and the zone and names what is wrong.
  const body = { cron: $('#schedule-cron').value.trim(), args: JSON.parse(args) };
  const tz = $('#schedule-tz').value.trim();
  if (tz) body.timezone = tz;
  busy($('#schedule-save'), async () => {
    const name = panelsOf;
    const { res } = await api('PUT', fnPath(name, '/schedule'), { body: JSON.stringify(body), type: 'application/json' });
    clearError();
    scheduleRead++; // an older reading must not undo this
    if (name === panelsOf) showSchedule(res);
  });
});
$('#schedule-rm').addEventListener('click', (ev) => confirmThen(ev.currentTarget, async () => {
  await api('DELETE', fnPath(panelsOf, '/schedule'));
  clearError();
  await loadSchedule();
}));

let topicsRead = 0; // as hooksRead, for the subscriptions

async function loadTopics() {
  const name = panelsOf, n = ++topicsRead;
  const [{ res: subs }, { res: all }] = await Promise.all([api('GET', fnPath(name, '/subscriptions')), api('GET', userPath('/topics'))]);
  if (n !== topicsRead) return;
  $('#topics-table tbody').replaceChildren(...subs.map((sub) => {
    const rm = el('button', { type: 'button', class: 'small', 'aria-label': 'Unsubscribe from ' + sub.topic }, 'Unsubscribe');
    // Undone by subscribing again: one press is enough.
    rm.addEventListener('click', () => busy(rm, () => subscription('DELETE', name, sub.topic)));
    return el('tr', { 'data-topic': sub.topic }, el('td', {}, el('code', {}, sub.topic)), el('td', {}, fmtTime(sub.created)), el('td', { class: 'actions' }, rm));
  }));
  $('#topics-empty').hidden = subs.length > 0;
  // The user's topics, offered as the topic field's choices.
  $('#topic-names').replaceChildren(...all.map((t) => el('option', { value: t.topic }, t.functions.join(', '))));
}

// subscription subscribes (PUT) or unsubscribes (DELETE) the function.
async function subscription(method, name, topic) {
  await api(method, fnPath(name, '/subscriptions/' + encodeURIComponent(topic)));
  clearError();
  await loadTopics();
}

// topicField reads the topic field; the API checks the name's rules.
function topicField() {
  const topic = $('#topic-name').value.trim();
  if (!topic) { showError(new ApiError('invalid', 'give a topic name such as orders')); $('#topic-name').focus(); }
  return topic;
}

$('#topic-sub').addEventListener('click', (ev) => {
  const topic = topicField();
  if (topic) busy(ev.currentTarget, () => subscription('PUT', panelsOf, topic));
});

$('#topics').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const topic = topicField();
  if (!topic) return;
  const event = $('#topic-event').value.trim();
  try {
    JSON.parse(event);
  } catch (e) {
    showError(new ApiError('invalid', `event ${event.slice(0, 40) || '(empty)'}: want one JSON value such as {"id": 1} (${e.message})`));
    $('#topic-event').focus();
    return;
  }
  busy($('#topic-publish'), async () => {
    const { res: ids } = await api('POST', userPath('/topics/' + encodeURIComponent(topic)), { body: event, type: 'application/json' });
    clearError();
    $('#topic-nobody').hidden = ids.length > 0;
    // Each job opens on the Jobs page.
    $('#topic-jobs').replaceChildren(...ids.map((id) => el('li', {}, el('a', { href: '#jobs', 'data-job': id, onclick: () => { selectedJob = id; } }, id))));
    $('#topic-published').hidden = false;
  });
});

// The editor's highlighter: enough of JavaScript's lexical grammar to
// colour comments, strings, numbers and keywords as the user types.
const TOKENS = /(\/\/[^\n]*|\/\*[\s\S]*?(?:\*\/|$))|("(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?|`(?:\\[\s\S]|[^`\\])*`?)|(\b\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?\b)|\b(async|await|break|case|catch|class|const|continue|default|delete|do|else|export|extends|finally|for|function|if|import|in|instanceof|let|new|of|return|switch|this|throw|try|typeof|var|void|while|yield|null|undefined|true|false)\b/g;

function highlight() {
  const src = $('#fn-src').value;
  const out = $('#fn-highlight');
  out.replaceChildren();
  let at = 0;
  for (const m of src.matchAll(TOKENS)) {
    if (m.index > at) out.append(src.slice(at, m.index));
    const cls = m[1] ? 'tok-com' : m[2] ? 'tok-str' : m[3] ? 'tok-num' : 'tok-kw';
    out.append(el('span', { class: cls }, m[0]));
    at = m.index + m[0].length;
  }
  // A trailing newline needs a character after it to take up a line.
  out.append(src.slice(at) + '\n');
  syncScroll();
}
function syncScroll() {
  const pre = $('.editor pre'), ta = $('#fn-src');
  pre.scrollTop = ta.scrollTop;
  pre.scrollLeft = ta.scrollLeft;
}
$('#fn-src').addEventListener('input', highlight);
$('#fn-src').addEventListener('scroll', syncScroll);

// ---- run ----

let runTarget = null; // the function the Run button of the list chose

async function enterRun() {
  const names = Object.keys(await listFunctions()).sort();
  const sel = $('#run-fn');
  const keep = runTarget || sel.value;
  runTarget = null;
  sel.replaceChildren(...names.map((n) => el('option', { value: n }, n)));
  if (names.includes(keep)) sel.value = keep;
  $('#run-go').disabled = names.length === 0;
  if (!names.length) showError(new ApiError('not_found', 'no functions to run yet: create one on the Functions page'));
}

// argsOf reads a field of arguments, a JSON array (empty is []); if it
// is not one, it says so in the banner, focuses the field and gives null.
function argsOf(field) {
  const args = field.value.trim() || '[]';
  try {
    if (!Array.isArray(JSON.parse(args))) throw new Error('not an array');
    return args;
  } catch (e) {
    showError(new ApiError('invalid', `arguments ${args.slice(0, 40)}: want a JSON array such as [4, 5] (${e.message})`));
    field.focus();
    return null;
  }
}

$('#run-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = $('#run-fn').value;
  const args = argsOf($('#run-args'));
  if (args === null) return;
  busy($('#run-go'), async () => {
    const { res: id } = await api('POST', fnPath(name, '/run'), { body: args, type: 'application/json' });
    clearError();
    $('#run-idle').hidden = true;
    $('#run-done').hidden = false;
    badge($('#run-state'), 'running');
    $('#run-meta').textContent = 'job ' + id;
    $('#run-result').classList.remove('error');
    $('#run-result').textContent = 'running…';
    // The log stream prints the lines as they come and ends with the job.
    await streamLogs(id, $('#run-logs'), new AbortController());
    const { res: info } = await api('GET', jobPath(id, '/info'));
    badge($('#run-state'), info.state);
    $('#run-meta').textContent = `took ${fmtMs(info.duration_ms)} · billed ${fmtMs(info.billed_ms)} · job ${id}`;
    await showOutcome(info, $('#run-result'));
    if (!$('#run-logs').textContent) $('#run-logs').textContent = '(nothing printed)';
  });
});

// showOutcome writes a finished job's result, or its error's code and
// message, into out.
async function showOutcome(info, out) {
  out.classList.toggle('error', info.state === 'failed');
  if (info.state === 'succeeded') {
    const { res } = await api('GET', jobPath(info.id, '/res'));
    out.textContent = pretty(res);
  } else if (info.state === 'failed') {
    out.textContent = info.error ? `${info.error.code}: ${info.error.message}` : 'failed';
  } else {
    out.textContent = 'not finished yet';
  }
}

// ---- jobs ----

// JOBS_SHOWN is how many of the newest matching jobs the list shows.
const JOBS_SHOWN = 100;

// jobPage reads one page of the user's jobs, newest first.
async function jobPage({ fn = '', state = '', limit = JOBS_SHOWN, cursor = '' } = {}) {
  const q = new URLSearchParams({ limit });
  if (fn) q.set('fn', fn);
  if (state) q.set('state', state);
  if (cursor) q.set('cursor', cursor);
  const { res } = await api('GET', userPath('/jobs?' + q));
  return res;
}

let selectedJob = null;
let follow = null; // the AbortController of a live log stream

async function enterJobs() {
  await refreshJobs();
  const timer = setInterval(() => {
    if ($('#jobs-auto').checked && !document.hidden) refreshJobs().catch(showError);
  }, 3000);
  leave = () => { clearInterval(timer); stopFollow(); };
}

// jobLoads numbers the list's loads. A filter's change and the automatic
// refresh may overlap, and an older load answered last would put back the
// rows, and the filter choice, that the user has just changed: only the
// latest load fills the table.
let jobLoads = 0;

async function refreshJobs() {
  const load = ++jobLoads;
  const fnSel = $('#jobs-fn'), keep = fnSel.value, state = $('#jobs-state').value;
  const [{ jobs }, fns] = await Promise.all([jobPage({ fn: keep, state }), listFunctions()]);
  if (load !== jobLoads) return;
  // Deleted functions' jobs, and the chosen function, stay choices too.
  const names = [...new Set([...Object.keys(fns), ...jobs.map((j) => j.function), ...(keep ? [keep] : [])])].sort();
  fnSel.replaceChildren(el('option', { value: '' }, 'all'), ...names.map((f) => el('option', { value: f }, f)));
  fnSel.value = keep;
  const body = $('#jobs-table tbody');
  body.replaceChildren(...jobs.map((j) => {
    const st = el('span'); badge(st, j.state);
    const row = el('tr', { class: 'pick' + (j.id === selectedJob ? ' selected' : ''), tabindex: '0', 'data-job': j.id, 'aria-label': `job ${j.id} of ${j.function}, ${j.state}` },
      el('td', {}, el('code', {}, j.id.slice(0, 8))), el('td', {}, j.function, ...triggerBadge(j)), el('td', {}, st),
      el('td', {}, fmtTime(j.created)), el('td', {}, j.state === 'succeeded' || j.state === 'failed' ? fmtMs(j.duration_ms) : '–'));
    const open = () => openJob(j.id).catch(showError);
    row.addEventListener('click', open);
    row.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); open(); } });
    return row;
  }));
  $('#jobs-empty').hidden = jobs.length > 0;
  // The open job's record follows the list, unless its logs are followed.
  if (selectedJob && !follow) {
    const { res } = await api('GET', jobPath(selectedJob, '/info')).catch(() => ({}));
    if (res) await showJobRecord(res);
  }
}
$('#jobs-state').addEventListener('change', () => refreshJobs().catch(showError));
$('#jobs-fn').addEventListener('change', () => refreshJobs().catch(showError));

// triggerBadge names what submitted a job other than a run request: a
// webhook, a schedule, a topic.
const triggerBadge = (j) => j.trigger ? [' ', el('span', { class: 'badge trigger' }, j.trigger)] : [];

async function openJob(id) {
  stopFollow();
  selectedJob = id;
  for (const r of document.querySelectorAll('#jobs-table tr[data-job]')) r.classList.toggle('selected', r.dataset.job === id);
  const { res: info } = await api('GET', jobPath(id, '/info'));
  await showJobRecord(info);
  $('#job-logs').textContent = '';
  if (info.state === 'queued' || info.state === 'running') {
    followLogs(id).catch(showError);
  } else {
    const { res } = await api('GET', jobPath(id, '/logs'));
    $('#job-logs').textContent = res || '(nothing printed)';
  }
}

async function showJobRecord(info) {
  $('#job-idle').hidden = true;
  $('#job-body').hidden = false;
  badge($('#job-state'), info.state);
  $('#job-id').textContent = info.id;
  $('#job-trigger').textContent = info.trigger ? 'run by a ' + info.trigger : '';
  $('#job-record').textContent = pretty(info);
  showFamily(info);
  $('#job-follow').hidden = info.state !== 'queued' && info.state !== 'running';
  await showOutcome(info, $('#job-result'));
}

// showFamily shows the jobs a job is related to, each a link that opens
// it, and the fused calls it made.
function showFamily(info) {
  $('#job-parent-row').hidden = !info.parent;
  $('#job-parent').replaceChildren(...(info.parent ? [jobLink(info.parent)] : []));
  const children = info.children || [], calls = info.calls || [];
  $('#job-children-box').hidden = children.length === 0;
  $('#job-children').replaceChildren(...children.map((id) => el('li', {}, jobLink(id))));
  $('#job-calls-box').hidden = calls.length === 0;
  $('#job-calls tbody').replaceChildren(...calls.map((c) => el('tr', {},
    el('td', {}, el('code', {}, c.function)), el('td', {}, c.version ? String(c.version) : '–'), el('td', {}, fmtMs(c.duration_ms)),
    el('td', { class: 'error-cell' }, c.error ? `${c.error.code}: ${c.error.message}` : ''))));
  $('#job-calls-more').hidden = !info.calls_truncated;
}

// jobLink is a link that opens the job id on the Jobs page, from there
// or from another page.
function jobLink(id) {
  return el('a', { href: '#jobs', 'data-job': id, onclick: (ev) => {
    selectedJob = id;
    if (location.hash !== '#jobs') return; // entering the page opens it
    ev.preventDefault();
    openJob(id).catch(showError);
  } }, el('code', {}, id));
}

$('#job-follow').addEventListener('click', () => { if (selectedJob) { followLogs(selectedJob).catch(showError); } });
$('#job-delete').addEventListener('click', (ev) => confirmThen(ev.currentTarget, async () => {
  const id = selectedJob;
  stopFollow();
  await api('DELETE', jobPath(id));
  selectedJob = null;
  $('#job-body').hidden = true;
  $('#job-idle').hidden = false;
  await refreshJobs();
}));

function stopFollow() {
  if (follow) { follow.abort(); follow = null; }
  $('#job-live').hidden = true;
}

// followLogs shows a job's lines live, then its final record.
async function followLogs(id) {
  stopFollow();
  const ctl = new AbortController();
  follow = ctl;
  $('#job-live').hidden = false;
  let stopped;
  try {
    await streamLogs(id, $('#job-logs'), ctl);
  } finally {
    stopped = follow !== ctl; // by stopFollow, or another job chosen
    if (!stopped) { follow = null; $('#job-live').hidden = true; }
  }
  if (!stopped && selectedJob === id) {
    const { res } = await api('GET', jobPath(id, '/info'));
    await showJobRecord(res);
  }
}

// streamLogs appends the job's lines to out as it prints them, until the
// job ends or ctl aborts. It reads the Server-Sent Events with fetch:
// EventSource cannot send the bearer token.
async function streamLogs(id, out, ctl) {
  out.textContent = '';
  try {
    const res = await fetch(jobPath(id, '/logs?follow=1'), { headers: { Authorization: 'Bearer ' + session.token }, signal: ctl.signal });
    if (!res.ok) {
      const env = await res.json().catch(() => ({ code: 'internal', res: 'HTTP ' + res.status }));
      throw new ApiError(env.code, String(env.res), res.status);
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value.replaceAll('\r\n', '\n');
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const ev = parseEvent(buf.slice(0, cut));
        buf = buf.slice(cut + 2);
        if (ev.event === 'end') { ctl.abort(); return; }
        if (ev.data === undefined) continue; // a ping
        out.append(el('span', { class: 'log-' + ev.event }, ev.data + '\n'));
        out.scrollTop = out.scrollHeight;
      }
    }
  } catch (e) {
    if (e.name !== 'AbortError') throw e;
  }
}

function parseEvent(text) {
  const ev = { event: 'log' };
  for (const line of text.split('\n')) {
    if (line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') ev.data = ev.data === undefined ? value : ev.data + '\n' + value;
    else if (field === 'event' || field === 'id') ev[field] = value;
  }
  return ev;
}

// ---- usage ----

// USAGE_PAGES bounds the pages read for a day's chart: 20 pages of 500.
const USAGE_PAGES = 20;

async function loadUsage() {
  const now = Date.now(), hour = 3600e3;
  const counts = new Array(24).fill(0);
  let failed = 0, cursor = '', pages = 0;
  const billed = api('GET', userPath('/time'));
  // Newest first: stop at the first page that reaches past a day.
  for (let old = false; !old && pages < USAGE_PAGES; pages++) {
    const page = await jobPage({ limit: 500, cursor });
    for (const j of page.jobs) {
      const age = now - new Date(j.created).getTime();
      if (age >= 24 * hour) { old = true; continue; }
      counts[Math.max(0, 23 - Math.floor(age / hour))]++;
      if (j.state === 'failed') failed++;
    }
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  $('#usage-billed').textContent = fmtMs((await billed).res);
  const total = counts.reduce((a, b) => a + b, 0);
  $('#usage-jobs').textContent = cursor && pages >= USAGE_PAGES ? `${total}+` : total;
  $('#usage-failed').textContent = failed;
  const labels = counts.map((_, i) => new Date(now - (23 - i) * hour).getHours() + 'h');
  barChart($('#usage-chart'), counts, labels);
}

// ---- operator ----

const SAMPLES = 150; // five minutes of samples, one every two seconds
let samples = [];

async function enterOps() {
  const open = !!session.admin;
  $('#ops-form').hidden = open;
  $('#ops-view').hidden = !open;
  if (!open) { $('#ops-token').focus(); return; }
  await pollStats();
  const timer = setInterval(() => { if (!document.hidden) pollStats().catch(showError); }, 2000);
  leave = () => clearInterval(timer);
}

async function pollStats() {
  let st;
  try {
    ({ res: st } = await api('GET', '/stats', { token: session.admin }));
  } catch (e) {
    if (e instanceof ApiError && (e.code === 'unauthorized' || e.code === 'forbidden')) {
      session.setAdmin(null);
      if (leave) { leave(); leave = null; }
      $('#ops-form').hidden = false;
      $('#ops-view').hidden = true;
      throw new ApiError(e.code, 'the operator token was refused: ' + e.message);
    }
    throw e;
  }
  for (const k of ['queued', 'running', 'held', 'workers', 'completed']) $('#ops-' + k).textContent = st[k];
  samples.push({ t: Date.now(), rate: st.jobs_per_sec, latency: st.avg_duration_ms });
  samples = samples.slice(-SAMPLES);
  lineChart($('#ops-rate'), samples.map((s) => [s.t, s.rate]));
  lineChart($('#ops-latency'), samples.map((s) => [s.t, s.latency]));
  await pollFailures();
}

// pollFailures lists the newest failed jobs of every user, which only the
// operator may see; pollStats has checked the token just before.
async function pollFailures() {
  const { res } = await api('GET', '/admin/failures?limit=20', { token: session.admin });
  $('#ops-failures-empty').hidden = res.failures.length > 0;
  $('#ops-failures tbody').replaceChildren(...res.failures.map((f) => el('tr', { 'data-job': f.id },
    el('td', {}, el('code', { title: f.id }, f.id.slice(0, 8))), el('td', {}, f.owner), el('td', {}, f.function),
    el('td', {}, fmtTime(f.finished)), el('td', { class: 'error-cell' }, el('code', {}, f.error_code), ' ', f.error_message))));
}

$('#ops-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = $('#ops-token').value.trim();
  if (!token) { showError(new ApiError('invalid', 'enter the operator token')); return; }
  session.setAdmin(token);
  $('#ops-token').value = '';
  samples = [];
  clearError();
  if (leave) { leave(); leave = null; }
  enterOps().catch(showError);
});
$('#ops-forget').addEventListener('click', () => {
  session.setAdmin(null);
  if (leave) { leave(); leave = null; }
  enterOps().catch(showError);
});

// ---- charts: small SVGs drawn by hand, no library ----

const SVG = 'http://www.w3.org/2000/svg';
function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
const CH = 200, PAD = { l: 40, r: 10, t: 10, b: 22 };

// frame draws the axes of a chart as wide as the element, so that its
// text is never stretched, and returns the width and the baseline.
function frame(svg, max) {
  const w = Math.max(280, Math.round(svg.getBoundingClientRect().width) || 600);
  svg.setAttribute('viewBox', `0 0 ${w} ${CH}`);
  svg.replaceChildren();
  const y0 = CH - PAD.b;
  svg.append(svgEl('line', { class: 'axis', x1: PAD.l, x2: w - PAD.r, y1: y0, y2: y0 }));
  for (const f of [0, 0.5, 1]) {
    const y = y0 - f * (y0 - PAD.t);
    const v = max * f;
    svg.append(svgEl('text', { x: PAD.l - 6, y: y + 4, 'text-anchor': 'end' }, v >= 10 || Number.isInteger(v) ? Math.round(v) : v.toFixed(1)));
    if (f) svg.append(svgEl('line', { class: 'axis', x1: PAD.l, x2: w - PAD.r, y1: y, y2: y, 'stroke-dasharray': '3 4' }));
  }
  return { w, y0 };
}

// niceMax rounds the top of an axis up to 1, 2 or 5 times a power of ten,
// at least 1, so that its labels read as round numbers.
function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(Math.max(1, v)));
  return [1, 2, 5, 10].map((m) => m * p).find((m) => v <= m);
}

function barChart(svg, values, labels) {
  const max = niceMax(Math.max(...values));
  const { w, y0 } = frame(svg, max);
  const bw = (w - PAD.l - PAD.r) / values.length;
  const every = bw < 20 ? 6 : 3; // hour labels that fit side by side
  values.forEach((v, i) => {
    const h = (v / max) * (y0 - PAD.t);
    const rect = svgEl('rect', { class: 'bar', x: PAD.l + i * bw + 1, y: y0 - h, width: Math.max(1, bw - 2), height: h, rx: 2 });
    rect.append(svgEl('title', {}, `${labels[i]}: ${v} jobs`));
    svg.append(rect);
    if ((values.length - 1 - i) % every === 0) svg.append(svgEl('text', { x: PAD.l + i * bw + bw / 2, y: CH - 6, 'text-anchor': 'middle' }, labels[i]));
  });
}

function lineChart(svg, points) {
  const max = niceMax(Math.max(...points.map((p) => p[1])));
  const { w, y0 } = frame(svg, max);
  const end = Date.now(), span = SAMPLES * 2000;
  const x = (t) => PAD.l + (1 - (end - t) / span) * (w - PAD.l - PAD.r);
  const y = (v) => y0 - (v / max) * (y0 - PAD.t);
  for (const m of [5, 4, 3, 2, 1]) svg.append(svgEl('text', { x: x(end - m * 60000), y: CH - 6, 'text-anchor': 'middle' }, `-${m} min`));
  svg.append(svgEl('text', { x: w - PAD.r, y: CH - 6, 'text-anchor': 'end' }, 'now'));
  if (points.length < 2) {
    svg.append(svgEl('text', { x: w / 2, y: CH / 2, 'text-anchor': 'middle' }, 'collecting samples…'));
    return;
  }
  const d = points.map((p, i) => `${i ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join('');
  svg.append(svgEl('path', { class: 'area', d: `${d}L${x(points.at(-1)[0]).toFixed(1)},${y0}L${x(points[0][0]).toFixed(1)},${y0}Z` }));
  svg.append(svgEl('path', { class: 'line', d }));
}

// ---- start ----

window.addEventListener('hashchange', () => { clearError(); route(); });
window.addEventListener('unhandledrejection', (ev) => showError(ev.reason));
highlight();
route();
