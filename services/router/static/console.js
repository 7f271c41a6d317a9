/* deskstream agent console.
 *
 * Plain browser JavaScript, no build step. Everything shown comes from the agent API
 * as JSON and goes on the page through textContent and element properties, never as
 * HTML: customer text (names, messages, subjects, file names) can contain markup, and
 * here it is only ever text.
 *
 * The session is an HttpOnly cookie; every request that changes something carries
 * the CSRF token that GET /console/session (or the sign-in) answered, and an
 * Idempotency-Key so that a retried click is the same action.
 * The queue arrives over server-sent events (GET /api/events): `queue` with the whole
 * queue whenever it changes, `tickets` with the ids whose conversation changed.
 */
(function () {
  'use strict';

  var state = { csrf: null, agent: null, queue: { assigned: [], queued: [] }, current: null, ticket: null, events: null, agents: [] };
  var HINTS = { novice: 'novice', expert: 'expert', upset: 'upset', impatient: 'impatient', sceptical: 'sceptical' };

  function $(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function key() {
    return (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Date.now()) + Math.random();
  }

  function api(method, path, body) {
    var headers = { 'Accept': 'application/json' };
    if (method !== 'GET') {
      headers['Content-Type'] = 'application/json';
      headers['X-CSRF-Token'] = state.csrf || '';
      headers['Idempotency-Key'] = key();
    }
    return fetch(path, { method: method, headers: headers, credentials: 'same-origin', body: body ? JSON.stringify(body) : undefined })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (response.status === 401 && path.indexOf('/console/') !== 0) showSignIn();
          return { status: response.status, data: data, headers: response.headers };
        });
      });
  }

  /* ---- sign-in ---- */

  function showSignIn(message) {
    if (state.events) { state.events.close(); state.events = null; }
    $('workspace').hidden = true; $('help').hidden = true; $('me').hidden = true; $('signin').hidden = false;
    api('GET', '/console/session').then(function (r) { state.csrf = r.data.csrf; });
    if (message) showSignInError(message);
  }

  function showSignInError(message) {
    $('signin-error').textContent = message;
    $('signin-error').hidden = !message;
  }

  function signedIn(data) {
    state.csrf = data.csrf;
    state.agent = data.agent;
    $('signin').hidden = true; $('me').hidden = false; $('workspace').hidden = false;
    $('me-name').textContent = data.agent.name + (data.agent.role === 'supervisor' ? ' (supervisor)' : '');
    $('presence').value = data.agent.presence;
    $('capacity').value = data.agent.max_concurrent;
    api('GET', '/api/agents').then(function (r) { state.agents = r.data.agents || []; });
    follow();
  }

  $('signin-form').addEventListener('submit', function (event) {
    event.preventDefault();
    showSignInError('');
    $('signin-button').disabled = true;
    api('POST', '/console/sign-in', { agent_id: $('agent-id').value.trim(), password: $('password').value }).then(function (r) {
      $('signin-button').disabled = false;
      if (r.status === 200) { $('password').value = ''; signedIn(r.data); return; }
      if (r.status === 429) { showSignInError('Too many failed sign-ins. Try again in ' + (r.headers.get('Retry-After') || 'a few') + ' s.'); return; }
      if (r.status === 403) { api('GET', '/console/session').then(function (s) { state.csrf = s.data.csrf; }); }
      showSignInError(r.data.error || 'Sign-in failed.');
    });
  });

  $('sign-out').addEventListener('click', function () {
    api('POST', '/console/sign-out').then(function () { state.current = null; showSignIn(); });
  });

  /* ---- presence ---- */

  function sendPresence() {
    var body = { presence: $('presence').value };
    var capacity = parseInt($('capacity').value, 10);
    if (!isNaN(capacity)) body.max_concurrent = capacity;
    api('POST', '/api/agents/me/presence', body).then(function (r) {
      $('live').textContent = r.status === 202 ? 'presence: ' + body.presence : (r.data.error || 'not changed');
    });
  }
  $('presence').addEventListener('change', sendPresence);
  $('capacity').addEventListener('change', sendPresence);

  /* ---- the live queue ---- */

  function follow() {
    if (state.events) state.events.close();
    var source = new EventSource('/api/events');
    state.events = source;
    source.addEventListener('open', function () { $('live').textContent = 'live'; });
    source.addEventListener('error', function () {
      $('live').textContent = 'reconnecting…';
      api('GET', '/console/session').then(function (r) { if (!r.data.signed_in) showSignIn('Your session has ended; sign in again.'); });
    });
    source.addEventListener('queue', function (event) {
      state.queue = JSON.parse(event.data);
      renderQueue();
    });
    source.addEventListener('tickets', function (event) {
      if (state.current && JSON.parse(event.data).indexOf(state.current) !== -1) openTicket(state.current, true);
    });
  }

  function minutes(ms) {
    var m = Math.round(Math.abs(ms) / 60000);
    return m < 60 ? m + ' min' : Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }

  function dueText(node) {
    var left = Date.parse(node.dataset.due) - Date.now();
    node.textContent = (node.dataset.target === 'resolution' ? 'resolve ' : 'answer ') + (left >= 0 ? 'in ' + minutes(left) : 'overdue ' + minutes(left));
    node.classList.toggle('late', left < 0);
  }

  function ticketRow(ticket) {
    var item = el('li');
    var button = el('button');
    button.type = 'button';
    button.dataset.ticket = ticket.ticket_id;
    button.setAttribute('aria-current', String(ticket.ticket_id === state.current));
    var top = el('span', 'row-top');
    top.appendChild(el('span', 'badge ' + ticket.priority, ticket.priority));
    top.appendChild(el('strong', null, ticket.ticket_id));
    top.appendChild(el('span', 'badge', ticket.channel));
    top.appendChild(el('span', 'badge', ticket.language));
    if (HINTS[ticket.hint]) top.appendChild(el('span', 'badge hint', ticket.hint));
    button.appendChild(top);
    button.appendChild(el('span', 'row-subject', (ticket.customer_name ? ticket.customer_name + ': ' : '') + (ticket.subject || '')));
    var times = el('span', 'row-top');
    var since = ticket.reopened_at || ticket.received_at;
    times.appendChild(el('span', 'muted waited', 'waiting ' + minutes(Date.now() - Date.parse(since))));
    var due = el('span', 'due');
    due.dataset.due = ticket.due_at;
    due.dataset.target = ticket.due_target;
    dueText(due);
    times.appendChild(due);
    button.appendChild(times);
    button.addEventListener('click', function () { openTicket(ticket.ticket_id); });
    item.appendChild(button);
    return item;
  }

  function renderQueue() {
    [['assigned', state.queue.assigned], ['queued', state.queue.queued]].forEach(function (pair) {
      var list = $(pair[0]);
      clear(list);
      pair[1].forEach(function (ticket) { list.appendChild(ticketRow(ticket)); });
      $(pair[0] + '-count').textContent = '(' + pair[1].length + ')';
    });
  }

  setInterval(function () {
    Array.prototype.forEach.call(document.querySelectorAll('.due[data-due]'), dueText);
  }, 1000);

  /* ---- one ticket ---- */

  function describe(entry) {
    switch (entry.what) {
      case 'assigned': return 'Assigned to ' + (entry.agent_name || entry.agent_id) + (entry.assigned_by ? ' by ' + entry.assigned_by : '') + (entry.reason ? ': ' + entry.reason : '');
      case 'requeued': return 'Back to the queue (' + entry.reason + ')';
      case 'escalated': return 'Escalated to ' + entry.to_tier + (entry.escalated_by ? ' by ' + entry.escalated_by : '') + ': ' + entry.reason;
      case 'sla_breached': return 'Missed the ' + entry.target.replace('_', ' ') + ' target';
      case 'resolved': return 'Resolved by ' + entry.resolved_by + (entry.note ? ': ' + entry.note : '');
      case 'reopened': return 'Reopened by ' + entry.reopened_by + ': ' + entry.reason;
      default: return entry.what;
    }
  }

  function timelineEntry(entry, ticketId) {
    var item = el('li', 'entry ' + entry.kind + (entry.ticket_id !== ticketId ? ' other-ticket' : ''));
    var when = new Date(entry.at).toLocaleString();
    var who = entry.kind === 'customer' ? (entry.name || 'Customer') + ' · ' + entry.channel
      : entry.kind === 'reply' ? entry.agent_name + ' · reply'
      : entry.kind === 'note' ? entry.agent_name + ' · internal note (not sent)' : '';
    item.appendChild(el('div', 'entry-head', [who, when, entry.ticket_id !== ticketId ? entry.ticket_id : ''].filter(Boolean).join(' · ')));
    if (entry.kind === 'event') {
      item.appendChild(el('div', null, describe(entry)));
      return item;
    }
    item.appendChild(el('p', 'text', entry.text));
    (entry.attachments || []).forEach(function (a) {
      item.appendChild(el('div', 'muted', '📎 ' + (a.filename || 'unnamed') + ' (' + a.content_type + ', ' + Math.ceil(a.size / 1024) + ' KB)'));
    });
    (entry.media || []).forEach(function (m) {
      if (!/^https:\/\//.test(m.url)) return;
      var link = el('a', null, '📎 ' + m.content_type);
      link.href = m.url;
      link.rel = 'noopener noreferrer';
      link.target = '_blank';
      item.appendChild(link);
    });
    return item;
  }

  function renderTicket(view) {
    var t = view.ticket, c = view.conversation;
    $('no-ticket').hidden = true; $('ticket-view').hidden = false; $('help').hidden = false;
    $('ticket-subject').textContent = c.subject || t.ticket_id;
    $('ticket-meta').textContent = [t.ticket_id, t.status + (t.agent_id ? ' (' + t.agent_id + ')' : ''), t.priority, t.tier, t.skill,
      c.channel, t.language, 'customer: ' + (c.hint || 'unknown')].join(' · ');
    var customer = c.customer || {};
    $('ticket-customer').textContent = [customer.name, customer.email, customer.phone].filter(Boolean).join(' · ');
    var list = $('timeline');
    clear(list);
    view.timeline.forEach(function (entry) { list.appendChild(timelineEntry(entry, t.ticket_id)); });
    var history = $('history');
    clear(history);
    view.history.forEach(function (h) {
      history.appendChild(el('li', null, [h.ticket_id, h.channel, h.status, new Date(h.opened_at).toLocaleDateString(), h.subject].join(' · ')
        + (h.shown ? '' : ' (not in your queues)')));
    });
    $('history-count').textContent = String(view.history.length);
    var open = t.status === 'assigned' || t.status === 'queued';
    var mine = t.agent_id === state.agent.id || state.agent.role === 'supervisor';
    $('accept').hidden = t.status !== 'queued';
    ['send-reply', 'resolve', 'escalate', 'reassign'].forEach(function (id) { $(id).disabled = !(open && mine); });
    $('escalate').disabled = $('escalate').disabled || t.tier === 'L2';
    $('reopen').disabled = open;
    var select = $('reassign-to');
    clear(select);
    state.agents.filter(function (a) { return a.id !== t.agent_id && a.role !== 'supervisor'; }).forEach(function (a) {
      var option = el('option', null, a.name + ' (' + a.presence + ', ' + a.open_tickets + ' open)');
      option.value = a.id;
      select.appendChild(option);
    });
  }

  function openTicket(ticketId, refresh) {
    state.current = ticketId;
    renderQueue();
    api('GET', '/api/tickets/' + encodeURIComponent(ticketId) + '/conversation').then(function (r) {
      if (state.current !== ticketId) return;
      if (r.status !== 200) { status(r.data.error || 'cannot open the ticket'); return; }
      state.ticket = r.data;
      renderTicket(r.data);
      if (!refresh) { $('reply').value = ''; loadHelp(''); }
    });
  }

  /* ---- answering help ---- */

  function loadHelp(query) {
    var ticketId = state.current;
    api('GET', '/api/tickets/' + encodeURIComponent(ticketId) + '/help?q=' + encodeURIComponent(query)).then(function (r) {
      if (state.current !== ticketId || r.status !== 200) return;
      renderGuide(r.data.guide);
      renderMacros(r.data.macros);
      renderArticles(r.data.articles);
    });
  }

  function renderGuide(guide) {
    var box = $('guide');
    clear(box);
    if (!guide) { box.appendChild(el('p', 'muted', 'No particular advice for this customer: be clear and kind.')); return; }
    box.className = 'guide';
    box.appendChild(el('strong', null, guide.title));
    [['Lead with', guide.lead_with], ['Avoid', guide.avoid]].forEach(function (pair) {
      box.appendChild(el('div', 'muted', pair[0]));
      var list = el('ul');
      pair[1].forEach(function (line) { list.appendChild(el('li', null, line)); });
      box.appendChild(list);
    });
  }

  function insert(text) {
    var box = $('reply');
    box.value = box.value.trim() ? box.value.replace(/\s+$/, '') + '\n\n' + text : text;
    box.focus();
  }

  function renderMacros(macros) {
    var list = $('macros');
    clear(list);
    if (!macros.length) list.appendChild(el('li', 'muted', 'No canned answer matches.'));
    macros.forEach(function (macro) {
      var item = el('li');
      var use = el('button', 'macro', macro.title);
      use.type = 'button';
      use.dataset.macro = macro.id;
      use.addEventListener('click', function () { insert(macro.text); });
      item.appendChild(use);
      item.appendChild(el('p', 'text', macro.text));
      list.appendChild(item);
    });
  }

  function renderArticles(articles) {
    var list = $('articles');
    clear(list);
    if (!articles.length) list.appendChild(el('li', 'muted', 'No article matches this ticket.'));
    articles.forEach(function (article) {
      var item = el('li');
      item.appendChild(el('strong', null, article.title));
      item.appendChild(el('span', 'muted', ' score ' + article.score));
      var use = el('button', 'article', 'Insert');
      use.type = 'button';
      use.dataset.article = article.id;
      use.addEventListener('click', function () { insert(article.title + '\n\n' + article.body); });
      item.appendChild(use);
      item.appendChild(el('p', 'text', article.body));
      list.appendChild(item);
    });
  }

  var searchTimer = null;
  $('macro-search').addEventListener('input', function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () { if (state.current) loadHelp($('macro-search').value); }, 200);
  });

  /* ---- actions ---- */

  function status(text) { $('action-status').textContent = text; }

  function act(path, body, done) {
    var ticketId = state.current;
    status('sending…');
    api('POST', '/api/tickets/' + encodeURIComponent(ticketId) + '/' + path, body).then(function (r) {
      if (r.status === 202) { status('done'); if (done) done(); } else { status(r.data.error || ('refused (' + r.status + ')')); }
    });
  }

  function required(id, what) {
    var value = $(id).value.trim();
    if (!value) { status(what + ' first'); $(id).focus(); }
    return value;
  }

  $('send-reply').addEventListener('click', function () {
    var text = required('reply', 'Write the reply');
    if (text) act('reply', { text: text }, function () { $('reply').value = ''; status('reply sent'); });
  });
  $('add-note').addEventListener('click', function () {
    var text = required('reply', 'Write the note');
    if (text) act('note', { text: text }, function () { $('reply').value = ''; status('note added (not sent to the customer)'); });
  });
  $('accept').addEventListener('click', function () { act('accept', {}); });
  $('resolve').addEventListener('click', function () { act('resolve', {}, function () { status('resolved'); }); });
  $('escalate').addEventListener('click', function () {
    var reason = required('escalate-reason', 'Give a reason');
    if (reason) act('escalate', { reason: reason }, function () { $('escalate-reason').value = ''; });
  });
  $('reassign').addEventListener('click', function () {
    var reason = required('reassign-reason', 'Give a reason');
    if (reason) act('reassign', { agent_id: $('reassign-to').value, reason: reason }, function () { $('reassign-reason').value = ''; });
  });
  $('reopen').addEventListener('click', function () {
    var reason = required('reopen-reason', 'Give a reason');
    if (reason) act('reopen', { reason: reason }, function () { $('reopen-reason').value = ''; });
  });

  /* ---- start ---- */

  api('GET', '/console/session').then(function (r) {
    if (r.data.signed_in) signedIn(r.data); else { state.csrf = r.data.csrf; $('signin').hidden = false; }
  });
}());
