// One EventSource; checkboxes add and remove topics on it while it stays
// connected, through POST /topics with the ID from ssekit.connected.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const TOPICS = ['news', 'sports', 'weather'];
  const user = crypto.randomUUID();
  let connectionId = null;

  const es = new EventSource(`events?user=${user}&topic=news`);
  es.addEventListener('ssekit.connected', (e) => {
    // A new connection (also after a reconnect) starts with only the
    // topics in its URL: tick the boxes to match.
    connectionId = JSON.parse(e.data).connectionId;
    $('conn').textContent = connectionId;
    for (const t of TOPICS) $(`t-${t}`).checked = t === 'news';
  });
  es.addEventListener('post', (e) => {
    const li = document.createElement('li');
    const p = JSON.parse(e.data);
    li.textContent = `${p.topic}: ${p.text}`;
    $('log').prepend(li);
  });

  for (const t of TOPICS) {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.id = `t-${t}`;
    box.addEventListener('change', async () => {
      const body = { connectionId, [box.checked ? 'add' : 'remove']: [t] };
      const res = await fetch(`topics?user=${user}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      if (!res.ok) alert(await res.text());
    });
    label.append(box, ` ${t} `);
    $('topics').append(label);
  }

  $('send').addEventListener('click', () => {
    for (const topic of TOPICS) {
      fetch('publish', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ topic, text: $('text').value }) });
    }
  });
})();
