// One EventSource for the user; every job gets a progress bar that the
// progress, done and failed events update.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  let user = localStorage.getItem('progress-user');
  if (!user) {
    user = crypto.randomUUID();
    localStorage.setItem('progress-user', user);
  }

  const lines = [];
  for (let i = 1; i <= 500; i++) lines.push(`customer-${i},${i * 3}`);
  $('csv').value = lines.join('\n');

  const bars = new Map(); // job -> {bar, label}
  const row = (job) => {
    if (!bars.has(job)) {
      const div = document.createElement('div');
      const label = document.createElement('p');
      const bar = document.createElement('progress');
      bar.max = 100;
      bar.value = 0;
      label.textContent = `job ${job}: starting`;
      div.append(label, bar);
      $('jobs').prepend(div);
      bars.set(job, { bar, label });
    }
    return bars.get(job);
  };

  const es = new EventSource(`events?user=${encodeURIComponent(user)}`);
  es.addEventListener('progress', (e) => {
    const p = JSON.parse(e.data);
    const r = row(p.job);
    r.bar.value = p.percent;
    r.label.textContent = `job ${p.job}: ${p.percent}% (${p.rows} of ${p.total} rows)`;
  });
  es.addEventListener('done', (e) => {
    const d = JSON.parse(e.data);
    const r = row(d.job);
    r.bar.value = 100;
    r.label.textContent = `job ${d.job}: done, ${d.rows} rows, sum ${d.sum}`;
    r.label.className = 'done';
  });
  es.addEventListener('failed', (e) => {
    const f = JSON.parse(e.data);
    const r = row(f.job);
    r.label.textContent = `job ${f.job}: failed${f.row ? ' at row ' + f.row : ''}: ${f.error}`;
    r.label.className = 'failed';
  });

  $('start').addEventListener('click', async () => {
    let csv = $('csv').value;
    if ($('broken').checked) {
      const ls = csv.split('\n');
      ls.splice(Math.floor(ls.length * 0.7), 0, 'broken,not-a-number');
      csv = ls.join('\n');
    }
    const res = await fetch(`imports?user=${encodeURIComponent(user)}`, { method: 'POST', headers: { 'Content-Type': 'text/csv' }, body: csv });
    if (!res.ok) alert(await res.text());
  });
})();
