/* deskstream customer chat.
 *
 * Plain browser JavaScript, no build step. Everything the customer or the server
 * sends is put on the page with textContent, never as HTML.
 *
 * State kept in sessionStorage (so a reload continues the conversation):
 *   sessionId, sessionToken  what POST /api/chat/sessions answered (before the first message)
 *   lastSeq                  the highest support-message seq seen; the socket asks for `after` it
 *   transcript               what this page has shown (own messages, support messages)
 *   customer                 name, e-mail, language
 * Own messages are sent one at a time, in order; a network error or a 5xx/429 is
 * retried with backoff using the SAME client_message_id in the SAME session, so the
 * server drops repeats (the first message's too).
 */
(function () {
  'use strict';

  var MAX_TEXT_BYTES = 16 * 1024;
  var STORE_KEY = 'deskstream.chat.v1';
  var MAX_TRANSCRIPT = 300;
  var REQUEST_TIMEOUT_MS = 15000;
  var EMAIL = /^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,63}$/;

  var STRINGS = {
    en: {
      title: 'Customer support',
      subtitle: 'Write to us and we will answer here.',
      details: 'Your details',
      name: 'Name',
      email: 'E-mail (optional)',
      language: 'Language',
      conversation: 'Conversation',
      empty: 'Tell us how we can help. We answer in this window.',
      message: 'Your message',
      placeholder: 'Type your message…',
      hint: 'Enter to send, Shift+Enter for a new line',
      send: 'Send',
      newConversation: 'New conversation',
      confirmNew: 'Start a new conversation? This one will no longer be shown here.',
      you: 'You',
      support: 'Support',
      ticket: 'Ticket {id}',
      sending: 'Sending…',
      sent: 'Sent',
      retrying: 'Connection problem; trying again in {s} s…',
      failed: 'Not sent: {reason}',
      counter: '{n} / {max} bytes',
      tooLong: 'Your message is too long ({n} bytes; the limit is {max}). Please shorten it or send it in several parts.',
      choices: 'Your answer',
      needName: 'Please tell us your name before sending your first message.',
      badEmail: 'Please check your e-mail address, or leave it empty.',
      expired: 'this conversation has expired; send your message again to start a new one',
      rejected: 'the server did not accept it ({reason})',
      serverTooLong: 'it is too long for the server ({reason})',
      connecting: 'Connecting…',
      online: 'Connected',
      offline: 'Reconnecting…'
    },
    es: {
      title: 'Atención al cliente',
      subtitle: 'Escríbenos y te responderemos aquí.',
      details: 'Tus datos',
      name: 'Nombre',
      email: 'Correo electrónico (opcional)',
      language: 'Idioma',
      conversation: 'Conversación',
      empty: 'Cuéntanos en qué podemos ayudarte. Te respondemos en esta ventana.',
      message: 'Tu mensaje',
      placeholder: 'Escribe tu mensaje…',
      hint: 'Intro para enviar, Mayús+Intro para una línea nueva',
      send: 'Enviar',
      newConversation: 'Nueva conversación',
      confirmNew: '¿Empezar una conversación nueva? Esta ya no se mostrará aquí.',
      you: 'Tú',
      support: 'Soporte',
      ticket: 'Ticket {id}',
      sending: 'Enviando…',
      sent: 'Enviado',
      retrying: 'Problema de conexión; lo intentamos de nuevo en {s} s…',
      failed: 'No enviado: {reason}',
      counter: '{n} / {max} bytes',
      tooLong: 'Tu mensaje es demasiado largo ({n} bytes; el máximo es {max}). Acórtalo o envíalo en varias partes.',
      choices: 'Tu respuesta',
      needName: 'Dinos tu nombre antes de enviar el primer mensaje.',
      badEmail: 'Revisa tu correo electrónico o déjalo vacío.',
      expired: 'esta conversación ha caducado; vuelve a enviar el mensaje para empezar una nueva',
      rejected: 'el servidor no lo aceptó ({reason})',
      serverTooLong: 'es demasiado largo para el servidor ({reason})',
      connecting: 'Conectando…',
      online: 'Conectado',
      offline: 'Reconectando…'
    }
  };

  var encoder = new TextEncoder();
  var decoder = new TextDecoder();

  function byId(id) { return document.getElementById(id); }

  var ui = {
    name: byId('name'),
    email: byId('email'),
    language: byId('language'),
    details: byId('details'),
    list: byId('messages'),
    empty: byId('empty'),
    scroller: document.querySelector('.conversation'),
    form: byId('composer'),
    text: byId('text'),
    counter: byId('counter'),
    notice: byId('notice'),
    connection: byId('connection'),
    newConversation: byId('new-conversation')
  };

  /* ---------- state ---------- */

  function browserLanguage() {
    var languages = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
    for (var i = 0; i < languages.length; i++) {
      var primary = String(languages[i]).toLowerCase().split(/[-_]/)[0];
      if (primary === 'es' || primary === 'en') return primary;
    }
    return 'en';
  }

  function freshState(customer) {
    return {
      sessionId: null,
      sessionToken: null,
      lastSeq: 0,
      transcript: [],
      customer: customer || { name: '', email: '', language: browserLanguage() }
    };
  }

  function load() {
    var state = freshState();
    try {
      var saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || 'null');
      if (saved && typeof saved === 'object') {
        if (typeof saved.sessionId === 'string' && typeof saved.sessionToken === 'string') {
          state.sessionId = saved.sessionId;
          state.sessionToken = saved.sessionToken;
        }
        if (typeof saved.lastSeq === 'number' && saved.lastSeq >= 0) state.lastSeq = saved.lastSeq;
        if (Array.isArray(saved.transcript)) state.transcript = saved.transcript.filter(validEntry);
        if (saved.customer && typeof saved.customer === 'object') {
          state.customer.name = typeof saved.customer.name === 'string' ? saved.customer.name : '';
          state.customer.email = typeof saved.customer.email === 'string' ? saved.customer.email : '';
          if (STRINGS[saved.customer.language]) state.customer.language = saved.customer.language;
        }
      }
    } catch (error) {
      /* storage unavailable or corrupt: start afresh */
    }
    return state;
  }

  function validEntry(entry) {
    return entry && typeof entry === 'object' && typeof entry.id === 'string' && typeof entry.text === 'string' &&
      (entry.from === 'customer' || entry.from === 'support');
  }

  function save() {
    if (state.transcript.length > MAX_TRANSCRIPT) state.transcript = state.transcript.slice(-MAX_TRANSCRIPT);
    for (var attempt = 0; attempt < 5; attempt++) {
      try {
        sessionStorage.setItem(STORE_KEY, JSON.stringify(state));
        return;
      } catch (error) {
        /* over quota: forget the oldest messages and try again */
        if (state.transcript.length < 2) return;
        state.transcript = state.transcript.slice(Math.ceil(state.transcript.length / 2));
      }
    }
  }

  var state = load();

  /* ---------- language ---------- */

  function t(key, values) {
    var table = STRINGS[state.customer.language] || STRINGS.en;
    var text = table[key] !== undefined ? table[key] : STRINGS.en[key];
    return String(text).replace(/\{(\w+)\}/g, function (match, name) {
      return values && values[name] !== undefined ? String(values[name]) : match;
    });
  }

  function number(value) {
    try { return new Intl.NumberFormat(state.customer.language).format(value); } catch (error) { return String(value); }
  }

  function clock(iso) {
    var date = iso ? new Date(iso) : null;
    if (!date || isNaN(date.getTime())) return '';
    try {
      return new Intl.DateTimeFormat(state.customer.language, { hour: '2-digit', minute: '2-digit' }).format(date);
    } catch (error) {
      return '';
    }
  }

  function applyLanguage() {
    var language = state.customer.language;
    document.documentElement.lang = language;
    document.title = t('title');
    var labelled = document.querySelectorAll('[data-i18n]');
    for (var i = 0; i < labelled.length; i++) labelled[i].textContent = t(labelled[i].getAttribute('data-i18n'));
    var placeheld = document.querySelectorAll('[data-i18n-placeholder]');
    for (var j = 0; j < placeheld.length; j++) placeheld[j].setAttribute('placeholder', t(placeheld[j].getAttribute('data-i18n-placeholder')));
    ui.language.value = language;
    updateCounter();
    showConnection(connection);
    for (var k = 0; k < state.transcript.length; k++) renderEntry(state.transcript[k]);
  }

  /* ---------- rendering (textContent only) ---------- */

  var rendered = new Map();

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function renderEntry(entry) {
    var item = rendered.get(entry.id);
    var created = !item;
    if (created) {
      item = element('li');
      item.dataset.id = entry.id;
      item.appendChild(element('span', 'author'));
      item.appendChild(element('p', 'body'));
      if (entry.from === 'support' && entry.ticketId) item.appendChild(element('span', 'ticket'));
      item.appendChild(element('span', 'meta'));
      rendered.set(entry.id, item);
    }
    var mine = entry.from === 'customer';
    item.className = 'message ' + (mine ? 'mine' : 'support') + (entry.status === 'failed' ? ' failed' : '');
    if (entry.kind) item.dataset.kind = entry.kind;
    if (entry.seq) item.dataset.seq = String(entry.seq);
    item.querySelector('.author').textContent = mine ? t('you') : t('support');
    var body = item.querySelector('.body');
    if (body.textContent !== entry.text) body.textContent = entry.text;
    var ticket = item.querySelector('.ticket');
    if (ticket) ticket.textContent = t('ticket', { id: entry.ticketId });
    item.querySelector('.meta').textContent = metaText(entry);
    var choices = created && validChoices(entry.choices);
    if (choices) item.appendChild(choiceButtons(choices));
    if (created) {
      ui.list.appendChild(item);
      ui.empty.hidden = true;
      ui.scroller.scrollTop = ui.scroller.scrollHeight;
    }
  }

  /* A survey's scores as buttons: each sends its reply as if the customer typed it. */
  function choiceButtons(choices) {
    var group = element('div', 'choices');
    group.setAttribute('role', 'group');
    group.setAttribute('aria-label', t('choices'));
    choices.forEach(function (choice) {
      var button = element('button', 'choice', choice.label);
      button.type = 'button';
      button.addEventListener('click', function () {
        group.querySelectorAll('button').forEach(function (b) { b.setAttribute('aria-pressed', String(b === button)); });
        submit(choice.reply);
      });
      group.appendChild(button);
    });
    return group;
  }

  function validChoices(value) {
    if (!Array.isArray(value)) return null;
    var kept = value.filter(function (c) {
      return c && typeof c.label === 'string' && typeof c.reply === 'string' && c.label.length <= 40 && c.reply.length <= 20;
    }).slice(0, 5);
    return kept.length ? kept.map(function (c) { return { label: c.label, reply: c.reply }; }) : null;
  }

  function metaText(entry) {
    var time = clock(entry.at);
    if (entry.from === 'support') return time;
    var status;
    if (entry.status === 'pending') {
      status = entry.retryIn ? t('retrying', { s: entry.retryIn }) : t('sending');
    } else if (entry.status === 'failed') {
      status = t('failed', { reason: entry.error || '' });
    } else {
      status = t('sent');
    }
    return time ? time + ' · ' + status : status;
  }

  function clearConversation() {
    rendered.clear();
    while (ui.list.firstChild) ui.list.removeChild(ui.list.firstChild);
    ui.empty.hidden = false;
  }

  function notify(text) {
    ui.notice.textContent = text || '';
    ui.notice.hidden = !text;
  }

  var connection = null;

  function showConnection(status) {
    connection = status;
    ui.connection.hidden = !status;
    ui.connection.className = 'connection' + (status ? ' ' + status : '');
    ui.connection.textContent = status ? t(status) : '';
  }

  function updateSessionUi() {
    ui.newConversation.hidden = !state.sessionId && state.transcript.length === 0;
  }

  function updateCounter() {
    var bytes = encoder.encode(ui.text.value).length;
    var over = bytes > MAX_TEXT_BYTES;
    ui.counter.textContent = t('counter', { n: number(bytes), max: number(MAX_TEXT_BYTES) });
    ui.counter.classList.toggle('over', over);
    if (over) ui.text.setAttribute('aria-invalid', 'true'); else ui.text.removeAttribute('aria-invalid');
    return bytes;
  }

  /* ---------- sending ---------- */

  function sleep(ms) {
    return new Promise(function (resolve) {
      var timer = setTimeout(done, ms);
      function done() { clearTimeout(timer); window.removeEventListener('online', done); resolve(); }
      window.addEventListener('online', done);
    });
  }

  function backoff(attempt) {
    var base = Math.min(30000, 1000 * Math.pow(2, Math.min(attempt - 1, 5)));
    return Math.round(base / 2 + Math.random() * base / 2);
  }

  function newId() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join('');
  }

  function customerPayload() {
    var customer = { language: state.customer.language };
    if (state.customer.name.trim()) customer.name = state.customer.name.trim();
    if (state.customer.email.trim()) customer.email = state.customer.email.trim();
    return customer;
  }

  /* One request: {ok, answer} | {retry: true, after?: seconds} | {status, reason}. */
  async function request(path, body, headers) {
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS);
    var response;
    try {
      response = await fetch(path, {
        method: 'POST', headers: headers, body: JSON.stringify(body),
        credentials: 'same-origin', cache: 'no-store', signal: controller.signal
      });
    } catch (error) {
      return { retry: true };
    } finally {
      clearTimeout(timer);
    }
    var answer = null;
    try { answer = await response.json(); } catch (error) { answer = null; }
    if (response.ok) {
      if (answer && typeof answer.session_id === 'string' && typeof answer.session_token === 'string') return { ok: true, answer: answer };
      return { retry: true };
    }
    if (response.status === 429) {  /* over a limit: not before the server's Retry-After (whole seconds) */
      return { retry: true, after: parseInt(response.headers.get('Retry-After') || '0', 10) || 0 };
    }
    if (response.status >= 500 || response.status === 408) return { retry: true };
    var reason = answer && typeof answer.error === 'string' ? answer.error : 'HTTP ' + response.status;
    return { status: response.status, reason: reason };
  }

  /* A session before the first message, so that retrying the first message (its answer
     lost) repeats it in the same session instead of opening a second conversation. */
  async function openSession() {
    var opened = await request('/api/chat/sessions', {}, { 'Content-Type': 'application/json', Accept: 'application/json' });
    if (opened.ok) {
      state.sessionId = opened.answer.session_id;
      state.sessionToken = opened.answer.session_token;
      save();
    }
    return opened;
  }

  /* One attempt: {ok, answer} | {retry: true} | {status, reason}. */
  async function post(entry) {
    if (!state.sessionId) {
      var opened = await openSession();
      if (!opened.ok) return opened;
    }
    var body = { client_message_id: entry.id, text: entry.text, customer: entry.customer };
    var headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    if (state.sessionId) {
      body.session_id = state.sessionId;
      headers.Authorization = 'Bearer ' + state.sessionToken;
    }
    return request('/api/chat/messages', body, headers);
  }

  async function deliver(entry) {
    for (var attempt = 1; ; attempt++) {
      var outcome = await post(entry);
      if (entry.status !== 'pending' || state.transcript.indexOf(entry) < 0) return; /* conversation was reset */
      if (outcome.ok) {
        entry.status = 'sent';
        entry.retryIn = 0;
        state.sessionId = outcome.answer.session_id;
        state.sessionToken = outcome.answer.session_token;
        save();
        renderEntry(entry);
        updateSessionUi();
        ui.details.open = false;
        openSocket();
        return;
      }
      if (!outcome.retry) {
        entry.status = 'failed';
        entry.retryIn = 0;
        if (outcome.status === 401) {
          entry.error = t('expired');
          forgetSession();
        } else if (outcome.status === 413) {
          entry.error = t('serverTooLong', { reason: outcome.reason });
        } else {
          entry.error = t('rejected', { reason: outcome.reason });
        }
        save();
        renderEntry(entry);
        notify(t('failed', { reason: entry.error }));
        if (!ui.text.value) { ui.text.value = entry.text; updateCounter(); }
        return;
      }
      var delay = Math.max(backoff(attempt), (outcome.after || 0) * 1000);
      entry.retryIn = Math.max(1, Math.round(delay / 1000));
      renderEntry(entry);
      await sleep(delay);
      if (entry.status !== 'pending' || state.transcript.indexOf(entry) < 0) return;
      entry.retryIn = 0;
      renderEntry(entry);
    }
  }

  var pumping = false;

  async function pump() {
    if (pumping) return;
    pumping = true;
    try {
      for (;;) {
        var next = null;
        for (var i = 0; i < state.transcript.length; i++) {
          var entry = state.transcript[i];
          if (entry.from === 'customer' && entry.status === 'pending') { next = entry; break; }
        }
        if (!next) break;
        await deliver(next);
      }
    } finally {
      pumping = false;
    }
  }

  function submit(chosen) {
    var text = typeof chosen === 'string' ? chosen : ui.text.value;
    notify('');
    if (!text.trim()) return;
    var bytes = typeof chosen === 'string' ? encoder.encode(text).length : updateCounter();
    if (bytes > MAX_TEXT_BYTES) {
      notify(t('tooLong', { n: number(bytes), max: number(MAX_TEXT_BYTES) }));
      ui.text.focus();
      return;
    }
    readDetails();
    if (!state.sessionId && !state.customer.name.trim()) {
      ui.details.open = true;
      ui.name.setAttribute('aria-invalid', 'true');
      notify(t('needName'));
      ui.name.focus();
      return;
    }
    ui.name.removeAttribute('aria-invalid');
    if (state.customer.email.trim() && !EMAIL.test(state.customer.email.trim())) {
      ui.details.open = true;
      ui.email.setAttribute('aria-invalid', 'true');
      notify(t('badEmail'));
      ui.email.focus();
      return;
    }
    ui.email.removeAttribute('aria-invalid');
    var entry = {
      from: 'customer', id: newId(), text: text, at: new Date().toISOString(),
      status: 'pending', customer: customerPayload()
    };
    state.transcript.push(entry);
    save();
    renderEntry(entry);
    updateSessionUi();
    if (typeof chosen !== 'string') {
      ui.text.value = '';
      updateCounter();
      ui.text.focus();
    }
    pump();
  }

  /* ---------- receiving ---------- */

  var socket = null;
  var socketAttempt = 0;
  var reconnectTimer = null;

  function socketUrl() {
    var scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return scheme + '//' + location.host + '/api/chat/sessions/' + encodeURIComponent(state.sessionId) +
      '/ws?token=' + encodeURIComponent(state.sessionToken) + '&after=' + encodeURIComponent(String(state.lastSeq));
  }

  function openSocket() {
    if (!state.sessionId || socket || reconnectTimer) return;
    var ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch (error) {
      scheduleReconnect();
      return;
    }
    ws.binaryType = 'arraybuffer';
    socket = ws;
    showConnection(connection === 'online' ? 'offline' : connection || 'connecting');
    ws.onopen = function () {
      if (socket !== ws) return;
      socketAttempt = 0;
      showConnection('online');
    };
    ws.onmessage = function (event) {
      if (socket !== ws) return;
      var data = typeof event.data === 'string' ? event.data : decoder.decode(event.data);
      var message;
      try { message = JSON.parse(data); } catch (error) { return; }
      receive(message);
    };
    ws.onclose = function () {
      if (socket !== ws) return;
      socket = null;
      showConnection('offline');
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (reconnectTimer || !state.sessionId) return;
    socketAttempt++;
    reconnectTimer = setTimeout(function () {
      reconnectTimer = null;
      openSocket();
    }, backoff(socketAttempt));
  }

  function reconnectNow() {
    if (!state.sessionId || socket) return;
    if (reconnectTimer) { clearTimeout(reconnectTimer); reconnectTimer = null; }
    openSocket();
  }

  function closeSocket() {
    if (reconnectTimer) { clearTimeout(reconnectTimer); reconnectTimer = null; }
    var ws = socket;
    socket = null;
    socketAttempt = 0;
    if (ws) ws.close();
    showConnection(null);
  }

  function receive(message) {
    if (!message || message.type !== 'message' || typeof message.text !== 'string') return;
    var seq = Number(message.seq);
    if (!Number.isInteger(seq) || seq <= state.lastSeq) return;
    state.lastSeq = seq;
    var id = typeof message.message_id === 'string' ? message.message_id : 'seq-' + seq;
    if (!rendered.has(id)) {
      var entry = {
        from: 'support', id: id, seq: seq, text: message.text,
        ticketId: typeof message.ticket_id === 'string' ? message.ticket_id : null,
        kind: typeof message.kind === 'string' ? message.kind : null,
        choices: validChoices(message.choices),
        at: typeof message.sent_at === 'string' ? message.sent_at : null
      };
      state.transcript.push(entry);
      renderEntry(entry);
    }
    save();
  }

  function forgetSession() {
    closeSocket();
    state.sessionId = null;
    state.sessionToken = null;
    state.lastSeq = 0;
  }

  function newConversation() {
    if (!window.confirm(t('confirmNew'))) return;
    readDetails();
    forgetSession();
    state = freshState(state.customer);
    save();
    clearConversation();
    notify('');
    ui.details.open = true;
    updateSessionUi();
    ui.text.focus();
  }

  /* ---------- wiring ---------- */

  function readDetails() {
    state.customer.name = ui.name.value;
    state.customer.email = ui.email.value;
    state.customer.language = STRINGS[ui.language.value] ? ui.language.value : state.customer.language;
  }

  ui.name.value = state.customer.name;
  ui.email.value = state.customer.email;
  applyLanguage(); /* also renders the kept transcript */
  updateSessionUi();
  if (state.sessionId) ui.details.open = false;

  ui.language.addEventListener('change', function () {
    readDetails();
    save();
    applyLanguage();
  });
  ui.name.addEventListener('change', function () { readDetails(); ui.name.removeAttribute('aria-invalid'); save(); });
  ui.email.addEventListener('change', function () { readDetails(); ui.email.removeAttribute('aria-invalid'); save(); });

  ui.form.addEventListener('submit', function (event) {
    event.preventDefault();
    submit();
  });
  ui.text.addEventListener('keydown', function (event) {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      submit();
    }
  });
  ui.text.addEventListener('input', updateCounter);
  ui.newConversation.addEventListener('click', newConversation);

  window.addEventListener('online', reconnectNow);
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible') reconnectNow();
  });

  openSocket();
  pump(); /* messages left pending by a reload are retried with their own client_message_id */
})();
