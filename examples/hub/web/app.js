// The ssekit hub demo page: one EventSource, a publish form and a stats
// panel. Plain JavaScript, no build step, no dependency.
//
// State is mirrored into the DOM for people and for the browser test:
//   #state[data-state]        idle | connecting | open | reconnecting | closed
//   #log li[data-id][data-type]  one per received event, oldest first
//   #log li[data-dup]         set when an ID arrives a second time
//   #last-id                  event.lastEventId of the last event
//   #pub-result[data-id]      ID assigned to the last publish from the form
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);

  // Event types the hub itself sends; they get their own handlers.
  const GAP = 'ssekit.gap';
  const REJECTED = 'ssekit.rejected';
  const MAX_LOG = 500;

  let es = null;            // the EventSource, when connected
  let listening = new Set(); // types with a listener on es
  let seen = new Set();      // IDs received, to flag duplicates
  let count = 0;
  let lastState = 'idle';

  const stateLabels = {
    idle: 'not connected',
    connecting: 'connecting…',
    open: 'open',
    reconnecting: 'reconnecting…',
    closed: 'closed by the server',
  };

  function splitList(s) {
    return s.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);
  }

  // crypto.randomUUID exists only in secure contexts (https, localhost);
  // the fallback builds the same version-4 UUID by hand.
  function randomUUID() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function now() {
    return new Date().toLocaleTimeString([], { hour12: false });
  }

  // ---- connection state -------------------------------------------------

  function setState(state) {
    const el = $('state');
    el.dataset.state = state;
    el.textContent = stateLabels[state];
    document.body.dataset.state = state;
    $('connect').textContent = state === 'idle' || state === 'closed' ? 'Connect' : 'Reconnect';
    $('disconnect').disabled = state === 'idle';
    lastState = state;
  }

  function setLastId(id) {
    $('last-id').textContent = id || '—';
  }

  // ---- the log -----------------------------------------------------------

  function entry(cls, parts) {
    const li = document.createElement('li');
    li.className = cls;
    const time = document.createElement('time');
    time.textContent = now();
    li.append(time, ...parts);
    const log = $('log');
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(li);
    while (log.children.length > MAX_LOG) log.firstElementChild.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
    $('log-empty').hidden = true;
    return li;
  }

  function span(cls, text) {
    const s = document.createElement('span');
    s.className = cls;
    s.textContent = text;
    return s;
  }

  // An event from the stream: ID, type, data.
  function logEvent(e, cls, text) {
    const li = entry(`ev ${cls}`, [
      span('type', e.type),
      span('id', e.lastEventId || '—'),
      span('data', text),
    ]);
    li.dataset.id = e.lastEventId;
    li.dataset.type = e.type;
    if (seen.has(e.lastEventId)) {
      li.dataset.dup = 'true';
      li.title = 'duplicate: this ID was received before';
    }
    seen.add(e.lastEventId);
    count++;
    $('count').textContent = String(count);
    setLastId(e.lastEventId);
  }

  // A line about the connection itself, not an event.
  function logSystem(text, cls = '') {
    entry(`sys ${cls}`, [span('data', text)]);
  }

  function onEvent(e) {
    logEvent(e, '', e.data);
  }

  function onGap(e) {
    let info = {};
    try { info = JSON.parse(e.data); } catch { /* keep defaults */ }
    logEvent(e, 'gap', `missed events (${info.reason || 'unknown'}) — refetch your state`);
    $('gap-banner').hidden = false;
  }

  function onRejected(e) {
    let info = {};
    try { info = JSON.parse(e.data); } catch { /* keep defaults */ }
    const secs = info.retryMs ? ` — retrying in ${(info.retryMs / 1000).toFixed(1)} s` : '';
    logEvent(e, 'rejected', `connection refused: ${info.reason || 'unknown'}${secs}`);
  }

  // ---- listening ---------------------------------------------------------

  // EventSource dispatches a named event only to listeners registered for
  // that name (onmessage sees only unnamed "message" events), so the page
  // listens for every type in the "types" field and every type it sends.
  function listen(type) {
    if (!type || type === GAP || type === REJECTED) return;
    const field = $('types');
    if (!splitList(field.value).includes(type)) {
      field.value = field.value.trim() ? `${field.value.trim()}, ${type}` : type;
    }
    refreshTypeList();
    if (es && !listening.has(type)) {
      es.addEventListener(type, onEvent);
      listening.add(type);
    }
  }

  function refreshTypeList() {
    const list = $('known-types');
    list.replaceChildren(...splitList($('types').value).map((t) => {
      const o = document.createElement('option');
      o.value = t;
      return o;
    }));
  }

  function streamURL() {
    const q = new URLSearchParams();
    const user = $('user').value.trim();
    const tenant = $('tenant').value.trim();
    if (user) q.set('user', user);
    if (tenant) q.set('tenant', tenant);
    for (const t of splitList($('topics').value)) q.append('topic', t);
    const s = q.toString();
    return s ? `/events?${s}` : '/events';
  }

  function connect(ev) {
    if (ev) ev.preventDefault();
    disconnect(true);
    $('gap-banner').hidden = true;
    const url = streamURL();
    // EventSource cannot send an Authorization header: in auth mode the
    // token travels as a cookie, scoped to this hub and never sent cross-site.
    const token = $('token').value.trim();
    document.cookie = token
      ? `ssekit_token=${encodeURIComponent(token)}; path=/; SameSite=Strict`
      : 'ssekit_token=; path=/; max-age=0; SameSite=Strict';
    es = new EventSource(url);
    listening = new Set();
    setState('connecting');
    logSystem(`connecting to ${url}`);

    es.onopen = () => {
      if (lastState === 'reconnecting') {
        logSystem('reconnected: the hub replays what was missed', 'ok');
      } else {
        logSystem('stream open', 'ok');
      }
      setState('open');
    };
    es.onerror = () => {
      if (!es) return;
      if (es.readyState === EventSource.CLOSED) {
        // The browser gives up for good on a non-200 answer: ask the same
        // URL with fetch to show the hub's reason.
        setState('closed');
        explainFailure(url);
      } else if (lastState !== 'reconnecting') {
        // The browser reconnects by itself after the hub's retry hint,
        // sending Last-Event-ID so the hub replays what was missed.
        setState('reconnecting');
        logSystem('connection lost — the browser reconnects by itself', 'warn');
      }
    };
    es.addEventListener('message', onEvent);
    es.addEventListener(GAP, onGap);
    es.addEventListener(REJECTED, onRejected);
    for (const t of splitList($('types').value)) listen(t);

    // Make the publish form target this connection by default.
    const user = $('user').value.trim();
    const topics = splitList($('topics').value);
    if (user && !$('pub-user').value.trim()) $('pub-user').value = user;
    if (topics.length && !$('pub-topic').value.trim()) $('pub-topic').value = topics[0];
    if (!$('pub-tenant').value.trim()) $('pub-tenant').value = $('tenant').value.trim();
    updateCurl();
  }

  async function explainFailure(url) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
      const text = (await res.text()).trim();
      logSystem(`the hub refused the stream: ${res.status} ${text}`, 'err');
    } catch {
      logSystem('the hub refused the stream', 'err');
    }
  }

  function disconnect(quiet) {
    if (!es) return;
    es.close();
    es = null;
    listening = new Set();
    if (quiet !== true) logSystem('disconnected');
    setState('idle');
  }

  // ---- publishing --------------------------------------------------------

  function target() {
    return document.querySelector('input[name="target"]:checked').value;
  }

  function showTargetFields() {
    const t = target();
    $('pub-user-row').hidden = t !== 'user';
    $('pub-topic-row').hidden = t !== 'topic';
    updateCurl();
  }

  function publishBody() {
    const body = {};
    const tenant = $('pub-tenant').value.trim();
    if (tenant) body.tenant = tenant;
    switch (target()) {
      case 'user': body.user = $('pub-user').value.trim(); break;
      case 'topic': body.topic = $('pub-topic').value.trim(); break;
      default: body.broadcast = true;
    }
    body.event = $('pub-event').value.trim();
    const raw = $('pub-data').value;
    if (raw !== '') {
      try { body.data = JSON.parse(raw); } catch { body.data = raw; }
    }
    return body;
  }

  const fieldInputs = {
    user: 'pub-user', topic: 'pub-topic', tenant: 'pub-tenant',
    event: 'pub-event', data: 'pub-data', target: 'pub-target',
  };

  function clearInvalid() {
    for (const id of Object.values(fieldInputs)) $(id).removeAttribute('aria-invalid');
  }

  async function publish(ev) {
    ev.preventDefault();
    clearInvalid();
    const body = publishBody();
    listen(body.event); // before sending, so the event finds its listener
    const headers = { 'Content-Type': 'application/json' };
    const secret = $('pub-secret').value || $('token').value.trim();
    if (secret) headers.Authorization = `Bearer ${secret}`;
    const result = $('pub-result');
    result.className = 'result';
    delete result.dataset.id;
    try {
      const res = await fetch('/publish', { method: 'POST', headers, body: JSON.stringify(body) });
      const out = await res.json().catch(() => ({ error: res.statusText }));
      if (res.ok) {
        result.textContent = `sent · id ${out.id}`;
        result.dataset.id = out.id;
        result.classList.add('ok');
      } else {
        result.textContent = `${res.status}: ${out.error}`;
        result.classList.add('err');
        if (out.field && fieldInputs[out.field]) $(fieldInputs[out.field]).setAttribute('aria-invalid', 'true');
      }
    } catch (err) {
      result.textContent = `hub unreachable: ${err.message}`;
      result.classList.add('err');
    }
  }

  function updateCurl() {
    const json = JSON.stringify(publishBody());
    const auth = $('pub-secret').value ? ` \\\n  -H "Authorization: Bearer $SSEKIT_PUBLISH_SECRET"` : '';
    $('curl').textContent = `curl -sS ${location.origin}/publish \\\n  -H 'Content-Type: application/json'${auth} \\\n  -d '${json.replaceAll("'", "'\\''")}'`;
  }

  // ---- stats -------------------------------------------------------------

  async function pollStats() {
    const box = $('stats');
    // In auth mode /stats needs the admin grant and /online a token: send
    // the page's token (or the publish secret) as a header, never a cookie.
    const headers = {};
    const cred = $('pub-secret').value || $('token').value.trim();
    if (cred) headers.Authorization = `Bearer ${cred}`;
    try {
      const res = await fetch('/stats', { cache: 'no-store', headers });
      const s = res.ok ? await res.json() : {};
      s.dropped = Object.values(s.dropped || {}).reduce((a, b) => a + b, 0);
      for (const dd of box.querySelectorAll('dd[data-stat]')) {
        const v = s[dd.dataset.stat];
        dd.textContent = typeof v === 'number' ? v.toLocaleString() : '–';
      }
      const tenant = $('tenant').value.trim();
      const on = await fetch(`/online?tenant=${encodeURIComponent(tenant)}`, { cache: 'no-store', headers });
      const users = on.ok ? await on.json() : [];
      $('online-tenant').textContent = tenant || 'default';
      $('online').textContent = users.length === 1 ? '1 user' : `${users.length} users`;
      box.dataset.ok = 'true';
      $('stats-age').textContent = `updated ${now()}`;
    } catch {
      box.dataset.ok = 'false';
      $('stats-age').textContent = 'hub unreachable';
    }
    setTimeout(pollStats, 1000);
  }

  // ---- wiring ------------------------------------------------------------

  $('random-user').addEventListener('click', () => { $('user').value = randomUUID(); });
  $('connect-form').addEventListener('submit', connect);
  $('disconnect').addEventListener('click', () => disconnect());
  $('publish-form').addEventListener('submit', publish);
  $('publish-form').addEventListener('input', updateCurl);
  for (const r of document.querySelectorAll('input[name="target"]')) r.addEventListener('change', showTargetFields);
  $('types').addEventListener('change', () => { for (const t of splitList($('types').value)) listen(t); });
  $('clear').addEventListener('click', () => {
    $('log').replaceChildren();
    $('log-empty').hidden = false;
    $('gap-banner').hidden = true;
    count = 0;
    $('count').textContent = '0';
  });

  if (!$('user').value) $('user').value = randomUUID();
  // Also listen for the types the hub's README publishes with curl, so its
  // examples show up here as they are.
  for (const t of ['headline', 'alert']) {
    if (!splitList($('types').value).includes(t)) $('types').value += `, ${t}`;
  }
  refreshTypeList();
  showTargetFields();
  setState('idle');
  pollStats();
})();
