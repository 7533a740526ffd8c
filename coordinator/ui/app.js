// The txc operator page: lists transactions (GET /v1/transactions), shows one (GET
// /v1/transactions/{gid}) and runs the operator verbs (retry, abort, resolve) on it.
//
// Every piece of text from the API reaches the page through textContent or setAttribute, never
// through innerHTML: a participant's error body ends up in last_error and may hold markup.
// The page is served with Content-Security-Policy default-src 'self', so it has no inline
// script or style at all.
'use strict';

(function () {
  const TOKEN_KEY = 'txc.api_token';
  const REFRESH_MS = 3000;
  // The state in which each protocol is still before its decision: the only time abort is allowed.
  const BEFORE_DECISION = {'2pc': 'preparing', '3pc': 'querying', tcc: 'trying', saga: 'running'};

  const state = {
    cursor: '',        // of the page shown; '' for the first
    previous: [],      // the cursors of the pages before it, for "Previous"
    next: null,        // next_cursor of the page shown
    listSeq: 0,        // only the answer to the latest list request is shown
    listText: null,    // the body last rendered, to leave an unchanged table alone
    gid: null,         // the transaction shown in the detail view
    detailSeq: 0,
    detailText: null,
    renderedGid: null,
    timer: null,
  };

  const $ = (id) => document.getElementById(id);

  // el('td', {'data-field': 'state'}, 'text', node, ...): strings become text nodes.
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null || value === false) continue;
      node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function text(value) {
    return value === undefined || value === null || value === '' ? '\u2014' : String(value);
  }

  // ---------------------------------------------------------------------------------------------
  // The API

  function storedToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch (e) {
      return '';  // storage disabled: the page still works without a token
    }
  }

  function storeToken(token) {
    try {
      if (token) {
        sessionStorage.setItem(TOKEN_KEY, token);
      } else {
        sessionStorage.removeItem(TOKEN_KEY);
      }
      return true;
    } catch (e) {
      return false;
    }
  }

  function describeFailure(status, data, body) {
    const error = data && typeof data === 'object' && data.error && typeof data.error === 'object'
        ? data.error : null;
    const server = error && typeof error.message === 'string'
        ? error.message : (body || '').trim().slice(0, 300);
    const code = error && typeof error.code === 'string' ? ' ' + error.code : '';
    if (status === 401) {
      const what = storedToken()
          ? 'the API token of this tab was not accepted; enter a valid one under "API token"'
          : 'txcoord requires an API token; enter one under "API token"';
      return '401 unauthorized: ' + what + '. (txcoord: ' + server + ')';
    }
    if (status === 403) {
      return '403 forbidden: this API token may only read; retry, abort and resolve need a ' +
          'token with the operate role. (txcoord: ' + server + ')';
    }
    return String(status) + code + ': ' + (server || 'no message');
  }

  // {ok, status, data, body} on 2xx; {ok: false, status, message} otherwise (status 0: no answer).
  async function api(method, path, payload) {
    const headers = {Accept: 'application/json'};
    const token = storedToken();
    if (token) headers.Authorization = 'Bearer ' + token;
    const init = {method, headers, cache: 'no-store', credentials: 'same-origin'};
    if (payload !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(payload);
    }
    let response;
    let body;
    try {
      response = await fetch(path, init);
      body = await response.text();
    } catch (e) {
      return {ok: false, status: 0, message: 'txcoord did not answer: ' + e.message};
    }
    let data = null;
    try {
      data = body ? JSON.parse(body) : null;
    } catch (e) {
      data = null;
    }
    if (response.ok) return {ok: true, status: response.status, data, body};
    return {ok: false, status: response.status, message: describeFailure(response.status, data, body)};
  }

  function showMessage(node, kind, message) {
    node.textContent = message;
    node.dataset.kind = kind;
    node.hidden = false;
  }

  function hideMessage(node) {
    node.textContent = '';
    delete node.dataset.kind;
    node.hidden = true;
  }

  // ---------------------------------------------------------------------------------------------
  // The list

  function age(iso) {
    const created = Date.parse(iso);
    if (Number.isNaN(created)) return '\u2014';
    let seconds = Math.max(0, Math.floor((Date.now() - created) / 1000));
    if (seconds < 60) return seconds + 's';
    let minutes = Math.floor(seconds / 60);
    seconds %= 60;
    if (minutes < 60) return minutes + 'm ' + seconds + 's';
    let hours = Math.floor(minutes / 60);
    minutes %= 60;
    if (hours < 24) return hours + 'h ' + minutes + 'm';
    const days = Math.floor(hours / 24);
    hours %= 24;
    return days + 'd ' + hours + 'h';
  }

  // "2: committed 1, prepared 1; payment needs an operator"
  function branchSummary(branches) {
    if (!Array.isArray(branches) || branches.length === 0) return 'none';
    const counts = new Map();
    const waiting = [];
    for (const branch of branches) {
      const name = String(branch.state);
      counts.set(name, (counts.get(name) || 0) + 1);
      if (branch.needs_operator === true) waiting.push(String(branch.name));
    }
    let summary = branches.length + ': ' +
        Array.from(counts, ([name, count]) => name + ' ' + count).join(', ');
    if (waiting.length === 1) summary += '; ' + waiting[0] + ' needs an operator';
    if (waiting.length > 1) summary += '; ' + waiting.join(', ') + ' need an operator';
    return summary;
  }

  function listPath() {
    const query = new URLSearchParams();
    if ($('filter-stuck').checked) query.set('stuck', 'true');
    if ($('filter-state').value) query.set('state', $('filter-state').value);
    if ($('filter-protocol').value) query.set('protocol', $('filter-protocol').value);
    query.set('limit', $('page-size').value);
    if (state.cursor) query.set('cursor', state.cursor);
    return '/v1/transactions?' + query.toString();
  }

  function transactionRow(tx) {
    const gid = String(tx.gid);
    const stuck = tx.stuck === true;
    const row = el('tr', {
      'data-gid': gid,
      'data-stuck': String(stuck),
      'data-state': String(tx.state),
      class: (stuck ? 'stuck' : '') + (gid === state.gid ? ' selected' : ''),
    });
    row.append(
        el('td', {'data-field': 'gid'},
           el('a', {href: '#tx=' + encodeURIComponent(gid), 'data-gid': gid, 'data-action': 'open'},
              gid)),
        el('td', {'data-field': 'protocol'}, text(tx.protocol)),
        el('td', {'data-field': 'state'}, text(tx.state)),
        el('td', {'data-field': 'outcome'}, text(tx.outcome)),
        el('td', {'data-field': 'stuck'}, stuck ? el('span', {class: 'badge'}, 'yes') : 'no'),
        el('td', {'data-field': 'age', 'data-created': String(tx.created_at)}, age(tx.created_at)),
        el('td', {'data-field': 'branches'}, branchSummary(tx.branches)));
    return row;
  }

  function renderList(items) {
    $('transactions-body').replaceChildren(...items.map(transactionRow));
    $('transactions-empty').hidden = items.length > 0;
  }

  function refreshAges() {
    for (const cell of document.querySelectorAll('#transactions-body td[data-field="age"]')) {
      cell.textContent = age(cell.dataset.created);
    }
  }

  function renderPager(count) {
    const first = state.previous.length === 0;
    $('page-first').disabled = first;
    $('page-prev').disabled = first;
    $('page-next').disabled = state.next === null;
    $('page-info').textContent = 'page ' + (state.previous.length + 1) + ', ' + count + ' shown' +
        (state.next === null ? ' (last page)' : '');
  }

  async function loadList() {
    const seq = ++state.listSeq;
    const result = await api('GET', listPath());
    if (seq !== state.listSeq) return;  // filters or the page changed meanwhile
    if (!result.ok) {
      showMessage($('list-message'), 'error', 'Cannot list transactions: ' + result.message);
      return;
    }
    hideMessage($('list-message'));
    const data = result.data && typeof result.data === 'object' ? result.data : {};
    const items = Array.isArray(data.transactions) ? data.transactions : [];
    state.next = typeof data.next_cursor === 'string' ? data.next_cursor : null;
    if (result.body !== state.listText) {
      state.listText = result.body;
      renderList(items);
    } else {
      refreshAges();  // an unchanged table is left alone, so a click never lands on a stale row
    }
    renderPager(items.length);
    $('last-refresh').textContent = 'updated ' + new Date().toLocaleTimeString();
  }

  function restartPaging() {
    state.cursor = '';
    state.previous = [];
    state.next = null;
    state.listText = null;
    loadList();
  }

  // ---------------------------------------------------------------------------------------------
  // The detail view

  function isFinal(doc) {
    return doc.outcome !== null && doc.outcome !== undefined;
  }

  // What resolving a branch most likely means, from the transaction's state (the server refuses
  // the other outcome with a message saying why).
  function suggestedOutcome(doc) {
    return /abort|cancel|compensat/.test(String(doc.state)) ? 'aborted' : 'committed';
  }

  // What was typed into the resolve forms, so that a re-render keeps it.
  function resolveDrafts() {
    const drafts = new Map();
    for (const form of document.querySelectorAll('#detail-branches-body form[data-resolve-branch]')) {
      drafts.set(form.dataset.resolveBranch, {
        outcome: form.querySelector('[data-field="outcome"]').value,
        reason: form.querySelector('[data-field="reason"]').value,
      });
    }
    return drafts;
  }

  function resolveForm(doc, name, draft) {
    const outcome = el('select', {'data-field': 'outcome', 'aria-label': 'outcome of ' + name},
                       el('option', {value: 'committed'}, 'committed'),
                       el('option', {value: 'aborted'}, 'aborted'));
    outcome.value = draft ? draft.outcome : suggestedOutcome(doc);
    const reason = el('input', {
      type: 'text',
      'data-field': 'reason',
      maxlength: 1000,
      placeholder: 'why (required)',
      'aria-label': 'reason for resolving ' + name,
    });
    reason.value = draft ? draft.reason : '';
    const button = el('button', {
      type: 'submit',
      'data-action': 'resolve',
      'data-gid': String(doc.gid),
      'data-branch': name,
    }, 'Resolve');
    // novalidate: the page says itself what is missing, in its message area.
    const form = el('form', {class: 'resolve', 'data-resolve-branch': name, novalidate: true},
                    outcome, reason, button);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      resolveBranch(String(doc.gid), name, outcome.value, reason.value, button);
    });
    return form;
  }

  function branchRow(doc, branch, final, drafts) {
    const name = String(branch.name);
    const needs = branch.needs_operator === true;
    return el('tr', {'data-branch': name, 'data-needs-operator': String(needs),
                     class: needs ? 'stuck' : null},
              el('td', {'data-field': 'name'}, name),
              el('td', {'data-field': 'state'}, text(branch.state)),
              el('td', {'data-field': 'attempts'}, text(branch.attempts)),
              el('td', {'data-field': 'needs_operator'},
                 needs ? el('span', {class: 'badge'}, 'yes') : 'no'),
              el('td', {'data-field': 'last_error', class: 'error-text'}, text(branch.last_error)),
              el('td', {'data-field': 'resolve'},
                 needs && !final ? resolveForm(doc, name, drafts.get(name)) : ''));
  }

  function historyRow(entry) {
    return el('tr', {'data-action-kind': String(entry.action)},
              el('td', {'data-field': 'at'}, text(entry.at)),
              el('td', {'data-field': 'action'}, text(entry.action)),
              el('td', {'data-field': 'by'}, text(entry.by)),
              el('td', {'data-field': 'branch'}, text(entry.branch)),
              el('td', {'data-field': 'outcome'}, text(entry.outcome)),
              el('td', {'data-field': 'reason'}, text(entry.reason)));
  }

  function renderDetail(doc) {
    const gid = String(doc.gid);
    const drafts = state.renderedGid === gid ? resolveDrafts() : new Map();
    state.renderedGid = gid;
    const final = isFinal(doc);
    const stuck = doc.stuck === true;
    $('detail').dataset.gid = gid;
    $('detail-gid').textContent = gid;
    $('detail-protocol').textContent = text(doc.protocol);
    $('detail-state').textContent = text(doc.state);
    $('detail-outcome').textContent = final ? String(doc.outcome) : 'none yet';
    $('detail-stuck').textContent = stuck ? 'yes' : 'no';
    $('detail-stuck').className = stuck ? 'badge' : '';
    $('detail-created').textContent = text(doc.created_at) + ' (' + age(doc.created_at) + ' ago)';
    $('detail-updated').textContent = text(doc.updated_at);
    $('detail-reason').textContent = text(doc.reason);

    const retry = $('action-retry');
    retry.dataset.gid = gid;
    retry.hidden = final;
    retry.disabled = final;
    const abortable = !final && BEFORE_DECISION[doc.protocol] === doc.state;
    $('abort-form').hidden = !abortable;
    $('action-abort').disabled = !abortable;
    $('action-abort').dataset.gid = gid;
    $('detail-final-note').hidden = !final;

    const branches = Array.isArray(doc.branches) ? doc.branches : [];
    $('detail-branches-body').replaceChildren(
        ...branches.map((branch) => branchRow(doc, branch, final, drafts)));
    const history = Array.isArray(doc.history) ? doc.history : [];
    $('detail-history-body').replaceChildren(...history.map(historyRow));
    $('detail-history-empty').hidden = history.length > 0;
  }

  function clearDetail() {
    for (const id of ['detail-gid', 'detail-protocol', 'detail-state', 'detail-outcome',
                      'detail-stuck', 'detail-created', 'detail-updated', 'detail-reason']) {
      $(id).textContent = '';
    }
    $('detail-branches-body').replaceChildren();
    $('detail-history-body').replaceChildren();
    $('action-retry').hidden = true;
    $('abort-form').hidden = true;
    $('detail-final-note').hidden = true;
    $('abort-reason').value = '';
    hideMessage($('detail-message'));
    hideMessage($('detail-load-error'));
    state.renderedGid = null;
    state.detailText = null;
  }

  async function loadDetail() {
    const gid = state.gid;
    if (gid === null) return;
    const seq = ++state.detailSeq;
    const result = await api('GET', '/v1/transactions/' + encodeURIComponent(gid));
    if (seq !== state.detailSeq || gid !== state.gid) return;
    if (!result.ok) {
      const hint = result.status === 404
          ? ' (unknown here, or finished longer ago than retention.finished_ms)' : '';
      showMessage($('detail-load-error'), 'error',
                  'Cannot show transaction ' + gid + ': ' + result.message + hint);
      return;
    }
    hideMessage($('detail-load-error'));
    if (result.body !== state.detailText) {
      state.detailText = result.body;
      renderDetail(result.data);
    }
  }

  function markSelectedRow() {
    for (const row of document.querySelectorAll('#transactions-body tr')) {
      row.classList.toggle('selected', row.dataset.gid === state.gid);
    }
  }

  function openDetail(gid) {
    if (state.gid === gid) return;
    state.gid = gid;
    clearDetail();
    $('detail-gid').textContent = gid;
    $('detail').dataset.gid = gid;
    $('detail').hidden = false;
    $('detail').scrollIntoView({block: 'nearest'});  // it sits below the table
    markSelectedRow();
    loadDetail();
  }

  function closeDetail() {
    state.gid = null;
    clearDetail();
    delete $('detail').dataset.gid;
    $('detail').hidden = true;
    markSelectedRow();
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  }

  function gidFromHash() {
    if (!location.hash.startsWith('#tx=')) return null;
    try {
      const gid = decodeURIComponent(location.hash.slice(4));
      return gid === '' ? null : gid;
    } catch (e) {
      return null;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Operator actions

  // A verb's answer is the document as it is right after it; the engine goes on in the
  // background, so the view is fetched again shortly after.
  async function runAction(button, label, path, payload, done) {
    const gid = state.gid;
    button.disabled = true;
    showMessage($('detail-message'), 'pending', label + '\u2026');
    const result = await api('POST', path, payload);
    button.disabled = false;
    if (gid !== state.gid) return false;
    if (!result.ok) {
      showMessage($('detail-message'), 'error', label + ' failed: ' + result.message);
      return false;
    }
    showMessage($('detail-message'), 'ok', done);
    if (result.data && String(result.data.gid) === gid) {
      ++state.detailSeq;  // a read sent before the action must not overwrite its answer
      state.detailText = result.body;
      renderDetail(result.data);
    }
    loadList();
    for (const delay of [300, 1200]) {
      setTimeout(() => {
        loadDetail();
        loadList();
      }, delay);
    }
    return true;
  }

  function retry() {
    const gid = state.gid;
    if (gid === null) return;
    runAction($('action-retry'), 'Retry of ' + gid,
              '/v1/transactions/' + encodeURIComponent(gid) + '/retry', undefined,
              'Retry requested: txcoord runs the waiting step of ' + gid + ' now.');
  }

  async function abort() {
    const gid = state.gid;
    if (gid === null) return;
    const reason = $('abort-reason').value.trim();
    const ok = await runAction($('action-abort'), 'Abort of ' + gid,
                               '/v1/transactions/' + encodeURIComponent(gid) + '/abort',
                               reason ? {reason} : undefined, 'Abort of ' + gid + ' decided.');
    if (ok) $('abort-reason').value = '';
  }

  function resolveBranch(gid, branch, outcome, reason, button) {
    if (gid !== state.gid) return;
    const why = reason.trim();
    if (!why) {
      showMessage($('detail-message'), 'error',
                  'Resolve of ' + branch + ': a reason is required; it is recorded with your ' +
                  'name in the transaction\u2019s history.');
      return;
    }
    runAction(button, 'Resolve of ' + branch,
              '/v1/transactions/' + encodeURIComponent(gid) + '/resolve',
              {branch, outcome, reason: why},
              'Branch ' + branch + ' resolved as ' + outcome + '.');
  }

  // ---------------------------------------------------------------------------------------------
  // Token, refresh, wiring

  function renderTokenState() {
    $('token-state').textContent = storedToken()
        ? 'a token is set for this tab' : 'no token (enough when txcoord runs without tokens)';
  }

  // Overlapping refreshes are harmless: each view shows only the answer to its latest request.
  function refreshAll() {
    return Promise.all([loadList(), loadDetail()]);
  }

  function scheduleRefresh() {
    clearTimeout(state.timer);
    state.timer = null;
    if (!$('auto-refresh').checked) return;
    state.timer = setTimeout(async () => {
      await refreshAll();
      scheduleRefresh();
    }, REFRESH_MS);
  }

  function start() {
    $('token-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const token = $('token').value.trim();
      $('token').value = '';  // kept only in sessionStorage, never shown again
      if (!storeToken(token)) {
        showMessage($('list-message'), 'error', 'This browser does not let the page keep a token.');
      }
      renderTokenState();
      state.listText = null;
      state.detailText = null;
      refreshAll();
    });
    $('token-clear').addEventListener('click', () => {
      $('token').value = '';
      storeToken('');
      renderTokenState();
      state.listText = null;
      refreshAll();
    });

    for (const id of ['filter-stuck', 'filter-state', 'filter-protocol', 'page-size']) {
      $(id).addEventListener('change', restartPaging);
    }
    $('filters').addEventListener('submit', (event) => event.preventDefault());
    $('refresh').addEventListener('click', () => {
      refreshAll();
      scheduleRefresh();
    });
    $('auto-refresh').addEventListener('change', scheduleRefresh);
    $('page-first').addEventListener('click', () => restartPaging());
    $('page-prev').addEventListener('click', () => {
      if (state.previous.length === 0) return;
      state.cursor = state.previous.pop();
      state.listText = null;
      loadList();
    });
    $('page-next').addEventListener('click', () => {
      if (state.next === null) return;
      state.previous.push(state.cursor);
      state.cursor = state.next;
      state.listText = null;
      loadList();
    });

    $('detail-close').addEventListener('click', closeDetail);
    $('action-retry').addEventListener('click', retry);
    $('abort-form').addEventListener('submit', (event) => {
      event.preventDefault();
      abort();
    });
    window.addEventListener('hashchange', () => {
      const gid = gidFromHash();
      if (gid !== null) openDetail(gid);
    });

    renderTokenState();
    const linked = gidFromHash();
    if (linked !== null) openDetail(linked);
    loadList();
    scheduleRefresh();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
