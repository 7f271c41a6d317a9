/* deskstream ops dashboard.
 *
 * Plain browser JavaScript, no build step, no libraries. Everything shown comes from
 * the feedback service as JSON and goes on the page through textContent and element
 * attributes, never as HTML: an ops message, a service name or a suspicion's value can
 * contain markup, and here it is only ever text. The two charts are SVG elements built
 * one by one (createElementNS), styled by classes from dashboard.css: the page's
 * Content-Security-Policy allows no inline style or script.
 *
 * Data: GET /api/dashboard once at start, then the live feed GET /api/dashboard/events
 * (server-sent `dashboard` events with the same JSON, on each change). While the feed
 * is down the indicator says "reconnecting", the browser reconnects by itself (and if
 * it gives up, this script opens a new feed, backing off), and the page fetches
 * /api/dashboard meanwhile so the figures stay current. An answer older than the one
 * shown (by generated_at) is ignored.
 *
 * The language is the page's <html lang> (the server sets it from ?lang=es).
 */
(function () {
  'use strict';

  var LANG = document.documentElement.lang === 'es' ? 'es' : 'en';
  var LOCALE = LANG === 'es' ? 'es-ES' : 'en-GB';
  var PRIORITIES = ['P1', 'P2', 'P3', 'P4'];
  var SVG = 'http://www.w3.org/2000/svg';
  var POLL_MS = 10000;       // how often the page fetches /api/dashboard while the feed is down
  var MAX_BACKOFF_MS = 30000;

  var TEXT = {
    en: {
      title: 'ops dashboard', last_updated: 'Last updated', connecting: 'connecting…', live: 'live',
      reconnecting: 'reconnecting…', queues_title: 'Live queues', queues_caption: 'Open tickets by skill and priority',
      queues_note: 'Each cell: open (waiting for an agent). Highlighted cells have tickets waiting.',
      skill: 'Skill', total: 'Total', all_skills: 'All skills', no_queues: 'No open tickets.',
      cell_label: '{skill}, {priority}: {open} open, {waiting} waiting',
      breaches_title: 'SLA breaches', open_breached: 'Open tickets past a target', breaches_today: 'Breaches today',
      incidents_title: 'Active incidents', no_incidents: 'No active incidents.', suspected_title: 'Suspected incidents',
      no_suspected: 'Nothing suspected.', dimension: 'Dimension', value: 'Value', count: 'Tickets', detected_at: 'Detected at',
      region: 'region', declared: 'Declared {at}', expected_fix: 'expected fix {at}', no_estimate: 'no fix time yet',
      no_message: '(no message)', charts_title: 'Satisfaction and response times',
      csat_title: 'CSAT per day', times_title: 'Median response times per day', day: 'Day', minutes: 'minutes',
      csat: 'CSAT', answers: 'Answers', tickets: 'Tickets', first_response: 'First response', resolution: 'Resolution',
      first_response_min: 'First response, median (min)', resolution_min: 'Resolution, median (min)',
      no_data: 'no data', no_days: 'No data yet.', answers_n: '{n} answers', answer_1: '1 answer',
      csat_desc: 'Share of satisfied survey answers per day, from {from} to {to}, on a scale of 0 to 100%.',
      csat_latest: 'Latest: {value} on {day} ({answers}).', csat_gaps: 'Days without answers: {n} (gaps in the line).',
      times_desc: 'Median first-response time and median resolution time per day in minutes, from {from} to {to}.',
      times_latest: 'Latest: first response {first}, resolution {resolution} ({day}).',
      dim_skill: 'skill', dim_region: 'region', noscript: 'The dashboard needs JavaScript.',
      network: 'network', billing: 'billing', account: 'account', hardware: 'hardware', software: 'software', general: 'general',
      unclassified: 'unclassified'
    },
    es: {
      title: 'panel de operaciones', last_updated: 'Última actualización', connecting: 'conectando…', live: 'en directo',
      reconnecting: 'reconectando…', queues_title: 'Colas en directo', queues_caption: 'Tickets abiertos por habilidad y prioridad',
      queues_note: 'Cada celda: abiertos (esperando a un agente). Las celdas resaltadas tienen tickets en espera.',
      skill: 'Habilidad', total: 'Total', all_skills: 'Todas', no_queues: 'No hay tickets abiertos.',
      cell_label: '{skill}, {priority}: {open} abiertos, {waiting} en espera',
      breaches_title: 'Incumplimientos de SLA', open_breached: 'Tickets abiertos fuera de plazo', breaches_today: 'Incumplimientos hoy',
      incidents_title: 'Incidencias activas', no_incidents: 'No hay incidencias activas.', suspected_title: 'Posibles incidencias',
      no_suspected: 'Nada sospechoso.', dimension: 'Dimensión', value: 'Valor', count: 'Tickets', detected_at: 'Detectada',
      region: 'región', declared: 'Declarada {at}', expected_fix: 'solución prevista {at}', no_estimate: 'sin hora de solución',
      no_message: '(sin mensaje)', charts_title: 'Satisfacción y tiempos de respuesta',
      csat_title: 'CSAT por día', times_title: 'Tiempos de respuesta medianos por día', day: 'Día', minutes: 'minutos',
      csat: 'CSAT', answers: 'Respuestas', tickets: 'Tickets', first_response: 'Primera respuesta', resolution: 'Resolución',
      first_response_min: 'Primera respuesta, mediana (min)', resolution_min: 'Resolución, mediana (min)',
      no_data: 'sin datos', no_days: 'Aún no hay datos.', answers_n: '{n} respuestas', answer_1: '1 respuesta',
      csat_desc: 'Porcentaje de respuestas satisfechas a la encuesta por día, del {from} al {to}, en una escala de 0 a 100 %.',
      csat_latest: 'Último dato: {value} el {day} ({answers}).', csat_gaps: 'Días sin respuestas: {n} (huecos en la línea).',
      times_desc: 'Tiempo mediano de primera respuesta y de resolución por día, en minutos, del {from} al {to}.',
      times_latest: 'Último dato: primera respuesta {first}, resolución {resolution} ({day}).',
      dim_skill: 'habilidad', dim_region: 'región', noscript: 'El panel necesita JavaScript.',
      network: 'red', billing: 'facturación', account: 'cuenta', hardware: 'hardware', software: 'software', general: 'general',
      unclassified: 'sin clasificar'
    }
  };

  var state = { source: null, shownAt: -Infinity, connection: 'connecting', backoff: 1000, retry: null, fetching: false, cells: null };

  /* ---- small helpers ---- */

  function $(id) { return document.getElementById(id); }

  function t(key, values) {
    var text = TEXT[LANG][key] !== undefined ? TEXT[LANG][key] : (TEXT.en[key] !== undefined ? TEXT.en[key] : key);
    if (values) {
      text = text.replace(/\{(\w+)\}/g, function (whole, name) { return values[name] !== undefined ? String(values[name]) : whole; });
    }
    return text;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attributes, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attributes || {}).forEach(function (name) { node.setAttribute(name, String(attributes[name])); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function count(value) { return typeof value === 'number' && isFinite(value) && value > 0 ? Math.floor(value) : 0; }

  function number(value) { return typeof value === 'number' && isFinite(value) ? value : null; }

  var integer = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 0 });
  var decimal = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 1 });
  var clock = new Intl.DateTimeFormat(LOCALE, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  var shortTime = new Intl.DateTimeFormat(LOCALE, { hour: '2-digit', minute: '2-digit' });
  var dayTime = new Intl.DateTimeFormat(LOCALE, { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
  var dayOnly = new Intl.DateTimeFormat(LOCALE, { day: 'numeric', month: 'short', timeZone: 'UTC' });

  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  }

  /** A moment as people here read it: the time alone if it is today, else the day and time. */
  function when(iso) {
    var at = typeof iso === 'string' ? new Date(iso) : null;
    if (!at || isNaN(at.getTime())) return '–';
    return sameDay(at, new Date()) ? shortTime.format(at) : dayTime.format(at);
  }

  /** "2026-12-01" as "1 Dec" (a calendar day, so read and written in UTC). */
  function dayLabel(day) {
    var match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(day));
    if (!match) return String(day);
    return dayOnly.format(new Date(Date.UTC(+match[1], +match[2] - 1, +match[3])));
  }

  var percentage = new Intl.NumberFormat(LOCALE, { style: 'percent', maximumFractionDigits: 0 });

  function percent(ratio) { return ratio === null ? t('no_data') : percentage.format(ratio); }

  function minutesOf(seconds) { return seconds === null ? null : seconds / 60; }

  function minutesText(minutes) { return minutes === null ? t('no_data') : decimal.format(minutes < 10 ? minutes : Math.round(minutes)) + ' min'; }

  var SKILLS = ['network', 'billing', 'account', 'hardware', 'software', 'general', 'unclassified'];  // the rows' order

  /** A skill in the page's language (anything else as it came). */
  function label(word) { return SKILLS.indexOf(word) !== -1 ? t(word) : String(word); }

  /* ---- the page's own words ---- */

  function translate() {
    Array.prototype.forEach.call(document.querySelectorAll('[data-i18n]'), function (node) {
      node.textContent = t(node.getAttribute('data-i18n'));
    });
    document.title = 'deskstream · ' + t('title');
  }

  /* ---- connection ---- */

  function setConnection(connection) {
    state.connection = connection;
    var live = $('live');
    live.dataset.state = connection;
    live.textContent = t(connection);
  }

  function follow() {
    if (state.source) state.source.close();
    var source = new EventSource('/api/dashboard/events');
    state.source = source;
    source.addEventListener('open', function () { state.backoff = 1000; setConnection('live'); });
    source.addEventListener('dashboard', function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (error) { return; }
      setConnection('live');
      render(data);
    });
    source.addEventListener('error', function () {
      if (state.source !== source) return;
      setConnection('reconnecting');
      refresh();
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (an answer that was not an event stream): open a new feed, later.
        state.source = null;
        clearTimeout(state.retry);
        state.retry = setTimeout(follow, state.backoff);
        state.backoff = Math.min(state.backoff * 2, MAX_BACKOFF_MS);
      }
    });
  }

  function refresh() {
    if (state.fetching) return;
    state.fetching = true;
    fetch('/api/dashboard', { headers: { 'Accept': 'application/json' }, credentials: 'same-origin', cache: 'no-store' })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { state.fetching = false; if (data) render(data); })
      .catch(function () { state.fetching = false; });
  }

  /* ---- rendering ---- */

  function render(data) {
    if (!data || typeof data !== 'object') return;
    var at = Date.parse(data.generated_at);
    if (!isNaN(at)) {
      if (at < state.shownAt) return;  // an older answer than the one on the page
      state.shownAt = at;
      var updated = $('updated');
      updated.dateTime = data.generated_at;
      updated.textContent = clock.format(new Date(at));
    }
    renderQueues(Array.isArray(data.queues) ? data.queues : []);
    renderBreaches(data.breaches || {});
    var incidents = data.incidents || {};
    renderIncidents(Array.isArray(incidents.active) ? incidents.active : []);
    renderSuspected(Array.isArray(incidents.suspected) ? incidents.suspected : []);
    var days = (Array.isArray(data.days) ? data.days : []).filter(function (d) { return d && typeof d.day === 'string'; });
    renderCsat(days);
    renderTimes(days);
    document.body.dataset.rendered = 'true';
  }

  function queueCell(skill, priority, figures, tag) {
    var cell = el(tag || 'td', 'cell', integer.format(figures.open) + ' (' + integer.format(figures.waiting) + ')');
    cell.dataset.skill = skill;
    cell.dataset.priority = priority;
    cell.dataset.open = String(figures.open);
    cell.dataset.waiting = String(figures.waiting);
    if (figures.waiting > 0) cell.classList.add('has-waiting');
    if (figures.open === 0) cell.classList.add('none');
    var key = skill + '\u001f' + priority;
    var before = state.cells && state.cells[key];
    if (before !== undefined && before !== cell.textContent) cell.classList.add('changed');
    state.nextCells[key] = cell.textContent;
    cell.title = t('cell_label', { skill: skill === '*' ? t('all_skills') : label(skill), priority: priority === '*' ? t('total') : priority,
                                   open: figures.open, waiting: figures.waiting });
    return cell;
  }

  function renderQueues(queues) {
    var skills = [], table = {}, totals = { '*': { open: 0, waiting: 0 } };
    PRIORITIES.forEach(function (p) { totals[p] = { open: 0, waiting: 0 }; });
    queues.forEach(function (q) {
      if (!q || typeof q.skill !== 'string') return;
      if (!table[q.skill]) {
        skills.push(q.skill);
        table[q.skill] = { '*': { open: 0, waiting: 0 } };
        PRIORITIES.forEach(function (p) { table[q.skill][p] = { open: 0, waiting: 0 }; });
      }
      var open = count(q.open), waiting = count(q.waiting);
      [table[q.skill]['*'], totals['*']].concat(PRIORITIES.indexOf(q.priority) === -1 ? [] : [table[q.skill][q.priority], totals[q.priority]])
        .forEach(function (figures) { figures.open += open; figures.waiting += waiting; });
    });

    skills.sort(function (a, b) {
      var i = SKILLS.indexOf(a), j = SKILLS.indexOf(b);
      if (i === -1) i = SKILLS.length - 1.5;  // an unknown skill: before "unclassified", by name
      if (j === -1) j = SKILLS.length - 1.5;
      return i - j || (a < b ? -1 : a > b ? 1 : 0);
    });
    state.nextCells = {};
    var body = $('queue-rows');
    clear(body);
    if (!skills.length) {
      var row = el('tr', 'empty');
      var cell = el('td', 'muted', t('no_queues'));
      cell.colSpan = PRIORITIES.length + 2;
      row.appendChild(cell);
      body.appendChild(row);
    }
    skills.forEach(function (skill) {
      var row = el('tr');
      row.dataset.skill = skill;
      var head = el('th', null, label(skill));
      head.scope = 'row';
      row.appendChild(head);
      PRIORITIES.forEach(function (p) { row.appendChild(queueCell(skill, p, table[skill][p])); });
      row.appendChild(queueCell(skill, '*', table[skill]['*'])).classList.add('row-total');
      body.appendChild(row);
    });
    var foot = $('queue-totals');
    clear(foot);
    var total = el('tr');
    var head = el('th', null, t('all_skills'));
    head.scope = 'row';
    total.appendChild(head);
    PRIORITIES.forEach(function (p) { total.appendChild(queueCell('*', p, totals[p])); });
    var grand = queueCell('*', '*', totals['*']);
    grand.id = 'queue-total';
    total.appendChild(grand);
    foot.appendChild(total);
    state.cells = state.nextCells;
  }

  function renderBreaches(breaches) {
    [['open-breached', breaches.open_breached], ['breaches-today', breaches.today]].forEach(function (pair) {
      var value = count(pair[1]);
      var node = $(pair[0]);
      node.textContent = integer.format(value);
      node.dataset.value = String(value);
      $(pair[0] + '-box').classList.toggle('alert', value > 0);
    });
  }

  /** The message in the page's language, else the first one given: [language, text]. */
  function messageFor(message) {
    if (!message || typeof message !== 'object') return null;
    if (typeof message[LANG] === 'string' && message[LANG].trim()) return [LANG, message[LANG]];
    var other = Object.keys(message).filter(function (k) { return typeof message[k] === 'string' && message[k].trim(); })[0];
    return other === undefined ? null : [other, message[other]];
  }

  function renderIncidents(active) {
    var list = $('active-incidents');
    clear(list);
    if (!active.length) { list.appendChild(el('li', 'muted', t('no_incidents'))); return; }
    active.forEach(function (incident) {
      var item = el('li', 'incident');
      item.dataset.incident = String(incident.incident_id || '');
      var head = el('div', 'incident-head');
      head.appendChild(el('strong', 'service', incident.service || '?'));
      if (incident.region) head.appendChild(el('span', 'badge region', incident.region));
      if (incident.skill) head.appendChild(el('span', 'badge skill', label(incident.skill)));
      head.appendChild(el('span', 'incident-id muted', incident.incident_id || ''));
      item.appendChild(head);
      var said = messageFor(incident.message);
      var message = el('p', 'message', said ? said[1] : t('no_message'));
      if (said && said[0] !== LANG && /^[a-z]{2,3}(-[A-Za-z0-9]+)*$/.test(said[0])) message.lang = said[0];
      item.appendChild(message);
      var meta = el('p', 'meta');
      meta.appendChild(el('span', null, t('declared', { at: when(incident.declared_at) })));
      meta.appendChild(document.createTextNode(' · '));
      meta.appendChild(el('span', incident.expected_fix_at ? 'fix' : 'fix none',
        incident.expected_fix_at ? t('expected_fix', { at: when(incident.expected_fix_at) }) : t('no_estimate')));
      item.appendChild(meta);
      list.appendChild(item);
    });
  }

  function renderSuspected(suspected) {
    var body = $('suspected-rows');
    clear(body);
    if (!suspected.length) {
      var row = el('tr', 'empty');
      var cell = el('td', 'muted', t('no_suspected'));
      cell.colSpan = 4;
      row.appendChild(cell);
      body.appendChild(row);
      return;
    }
    suspected.forEach(function (s) {
      var row = el('tr');
      row.dataset.suspicion = String(s.suspicion_id || '');
      row.appendChild(el('td', null, s.dimension === 'skill' || s.dimension === 'region' ? t('dim_' + s.dimension) : String(s.dimension)));
      row.appendChild(el('td', null, s.dimension === 'skill' ? label(s.value) : String(s.value)));
      row.appendChild(el('td', 'num', integer.format(count(s.count))));
      row.appendChild(el('td', null, when(s.detected_at)));
      body.appendChild(row);
    });
  }

  /* ---- charts ---- */

  var W = 560, H = 250, M = { left: 58, right: 18, top: 34, bottom: 46 };

  /** A step for about four or five y-axis ticks up to at least `max`. */
  function niceStep(max) {
    var steps = [1, 2, 5, 10, 15, 30, 60, 120, 240, 480, 720, 1440, 2880, 5760, 10080];
    for (var i = 0; i < steps.length; i++) if (max / steps[i] <= 5) return steps[i];
    return Math.ceil(max / 5);
  }

  /**
   * A line chart in `box`: one x position per day, `series` = [{key, name, values}] (null is
   * a gap: the line stops and starts again), y from 0 to `yMax` with `ticks`.
   */
  function lineChart(box, options) {
    var days = options.days, n = days.length;
    var plotW = W - M.left - M.right, plotH = H - M.top - M.bottom;
    var x = function (i) { return M.left + (n === 1 ? plotW / 2 : i * plotW / (n - 1)); };
    var y = function (v) { return M.top + plotH - Math.min(v, options.yMax) / options.yMax * plotH; };
    var chart = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'class': 'chart-svg', id: options.id,
                             'aria-labelledby': options.id + '-title ' + options.id + '-desc', preserveAspectRatio: 'xMidYMid meet' });
    chart.appendChild(svg('title', { id: options.id + '-title' }, options.title));
    chart.appendChild(svg('desc', { id: options.id + '-desc' }, options.desc));

    var grid = svg('g', { 'class': 'grid', 'aria-hidden': 'true' });
    options.ticks.forEach(function (tick) {
      grid.appendChild(svg('line', { x1: M.left, x2: W - M.right, y1: y(tick), y2: y(tick), 'class': tick === 0 ? 'axis' : 'gridline' }));
      grid.appendChild(svg('text', { x: M.left - 6, y: y(tick) + 4, 'class': 'tick', 'text-anchor': 'end' }, options.tickText(tick)));
    });
    grid.appendChild(svg('line', { x1: M.left, x2: M.left, y1: M.top, y2: M.top + plotH, 'class': 'axis' }));
    var every = n > 8 ? 2 : 1;
    days.forEach(function (d, i) {
      if ((n - 1 - i) % every !== 0) return;  // keep the latest day labelled
      grid.appendChild(svg('line', { x1: x(i), x2: x(i), y1: M.top + plotH, y2: M.top + plotH + 4, 'class': 'axis' }));
      grid.appendChild(svg('text', { x: x(i), y: M.top + plotH + 17, 'class': 'tick', 'text-anchor': 'middle' }, dayLabel(d.day)));
    });
    grid.appendChild(svg('text', { x: M.left + plotW / 2, y: H - 6, 'class': 'axis-label', 'text-anchor': 'middle' }, t('day')));
    grid.appendChild(svg('text', { x: -(M.top + plotH / 2), y: 13, transform: 'rotate(-90)', 'class': 'axis-label', 'text-anchor': 'middle' },
                         options.yLabel));
    chart.appendChild(grid);

    if (!n) chart.appendChild(svg('text', { x: M.left + plotW / 2, y: M.top + plotH / 2, 'class': 'empty', 'text-anchor': 'middle' }, t('no_days')));

    options.series.forEach(function (series, s) {
      var group = svg('g', { 'class': 'series series-' + s, 'data-series': series.key });
      var run = [];
      var flush = function () {
        if (run.length > 1) group.appendChild(svg('path', { d: run.join(' '), 'class': 'line' }));
        run = [];
      };
      series.values.forEach(function (value, i) {
        if (value === null) { flush(); return; }
        run.push((run.length ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(value).toFixed(1));
      });
      flush();
      series.values.forEach(function (value, i) {
        if (value === null) return;
        var dot = svg('circle', { cx: x(i).toFixed(1), cy: y(value).toFixed(1), r: 3.5, 'class': 'dot' });
        dot.appendChild(svg('title', null, dayLabel(days[i].day) + ': ' + series.name + ' ' + series.text(value, i)));
        group.appendChild(dot);
      });
      chart.appendChild(group);
    });

    if (options.legend) {
      var legend = svg('g', { 'class': 'legend', 'aria-hidden': 'true' });
      var left = M.left;
      options.series.forEach(function (series, s) {
        var item = svg('g', { 'class': 'series series-' + s });
        item.appendChild(svg('line', { x1: left, x2: left + 22, y1: 14, y2: 14, 'class': 'line' }));
        item.appendChild(svg('circle', { cx: left + 11, cy: 14, r: 3.5, 'class': 'dot' }));
        item.appendChild(svg('text', { x: left + 28, y: 18, 'class': 'legend-text' }, series.name));
        legend.appendChild(item);
        left += 40 + series.name.length * 7;
      });
      chart.appendChild(legend);
    }
    clear(box);
    box.appendChild(chart);
  }

  /** The chart's figures as a table for screen readers (hidden from sight). */
  function dataTable(table, caption, headers, rows) {
    clear(table);
    table.appendChild(el('caption', null, caption));
    var head = el('thead');
    var line = el('tr');
    headers.forEach(function (h) { var th = el('th', null, h); th.scope = 'col'; line.appendChild(th); });
    head.appendChild(line);
    table.appendChild(head);
    var body = el('tbody');
    rows.forEach(function (cells) {
      var row = el('tr');
      cells.forEach(function (c, i) {
        var cell = el(i ? 'td' : 'th', null, c);
        if (!i) cell.scope = 'row';
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
    table.appendChild(body);
  }

  function answersText(n) { return n === 1 ? t('answer_1') : t('answers_n', { n: integer.format(n) }); }

  function range(days) { return days.length ? { from: dayLabel(days[0].day), to: dayLabel(days[days.length - 1].day) } : { from: '–', to: '–' }; }

  function renderCsat(days) {
    var values = days.map(function (d) {
      var v = number(d.csat);
      return v === null ? null : Math.max(0, Math.min(1, v)) * 100;
    });
    var desc = t('csat_desc', range(days));
    for (var i = days.length - 1; i >= 0; i--) {
      if (values[i] !== null) {
        desc += ' ' + t('csat_latest', { value: percent(values[i] / 100), day: dayLabel(days[i].day), answers: answersText(count(days[i].surveys_answered)) });
        break;
      }
    }
    var gaps = values.filter(function (v) { return v === null; }).length;
    if (gaps) desc += ' ' + t('csat_gaps', { n: gaps });
    lineChart($('csat-chart'), {
      id: 'csat-svg', title: t('csat_title'), desc: desc, days: days, yMax: 100, ticks: [0, 25, 50, 75, 100],
      tickText: function (v) { return percent(v / 100); }, yLabel: 'CSAT (%)', legend: false,
      series: [{ key: 'csat', name: t('csat'), values: values,
                 text: function (v, i) { return percent(v / 100) + ' (' + answersText(count(days[i].surveys_answered)) + ')'; } }]
    });
    dataTable($('csat-table'), t('csat_title'), [t('day'), t('csat'), t('answers'), t('tickets')], days.map(function (d, i) {
      return [dayLabel(d.day), values[i] === null ? t('no_data') : percent(values[i] / 100), integer.format(count(d.surveys_answered)),
              integer.format(count(d.tickets))];
    }));
  }

  function renderTimes(days) {
    var first = days.map(function (d) { return minutesOf(number(d.first_response_seconds_median)); });
    var resolution = days.map(function (d) { return minutesOf(number(d.resolution_seconds_median)); });
    var max = Math.max.apply(null, first.concat(resolution).filter(function (v) { return v !== null; }).concat([10]));
    var step = niceStep(max);
    var yMax = Math.ceil(max / step) * step;
    var ticks = [];
    for (var tick = 0; tick <= yMax; tick += step) ticks.push(tick);
    var desc = t('times_desc', range(days));
    for (var i = days.length - 1; i >= 0; i--) {
      if (first[i] !== null || resolution[i] !== null) {
        desc += ' ' + t('times_latest', { first: minutesText(first[i]), resolution: minutesText(resolution[i]), day: dayLabel(days[i].day) });
        break;
      }
    }
    var text = function (v) { return minutesText(v); };
    lineChart($('times-chart'), {
      id: 'times-svg', title: t('times_title'), desc: desc, days: days, yMax: yMax, ticks: ticks,
      tickText: function (v) { return integer.format(v); }, yLabel: t('minutes'), legend: true,
      series: [{ key: 'first_response', name: t('first_response'), values: first, text: text },
               { key: 'resolution', name: t('resolution'), values: resolution, text: text }]
    });
    dataTable($('times-table'), t('times_title'), [t('day'), t('first_response_min'), t('resolution_min')], days.map(function (d, i) {
      return [dayLabel(d.day), minutesText(first[i]), minutesText(resolution[i])];
    }));
  }

  /* ---- start ---- */

  translate();
  setConnection('connecting');
  refresh();
  follow();
  setInterval(function () { if (state.connection !== 'live') refresh(); }, POLL_MS);
}());
