// publish.js — the /publish page: the original publisher's form, sent to
// POST /simulate/ with the owner's API key (Authorization, as the gallery
// sends it; the key comes from the gallery's localStorage or this page's
// key form).  The request ends when the run has: the answer is the run's
// report as JSON (Accept), shown as text only — the page never parses HTML.

const KEY_STORAGE = 'assetd.key';   // the gallery's (app.js)
const $ = (id) => document.getElementById(id);

function loadKey() {
  try { return localStorage.getItem(KEY_STORAGE); } catch { return null; }
}

function say(text) {
  $('message').textContent = text;
  $('message').hidden = !text;
}

/** The report's lines: the original's (Rows sent, Received, Saved,
 *  Database count, the session) and what assetd adds. */
function showReport(rep) {
  const c = rep.counts || {};
  const rows = [
    ['Session', rep.queue], ['State', rep.state], ['Mode', rep.mode],
    ['Rows read', c.read], ['Rows skipped', c.skipped], ['Rows sent', c.sent],
    ['Rows refused by the broker', c.nacked], ['Received', c.received], ['Saved', c.saved],
    ['Duplicates', c.duplicates], ['Database count', rep.table_count],
    ['Skipped lines', (rep.skipped_lines || []).join(', ')],
    ['Sent per second', rep.rates?.sent_per_second?.toFixed(0)],
    ['Received per second', rep.rates?.received_per_second?.toFixed(0)],
  ];
  const table = $('report');
  table.replaceChildren();
  for (const [label, value] of rows) {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    const td = document.createElement('td');
    th.textContent = label;
    td.textContent = value === null || value === undefined || value === '' ? '—' : String(value);
    tr.append(th, td);
    table.append(tr);
  }
  $('result').hidden = false;
}

async function publish(e) {
  e.preventDefault();
  const key = loadKey();
  if (!key) {
    $('key-form').hidden = false;
    say('This form needs your API key.');
    return;
  }
  const form = new FormData($('publish'));
  if (!$('clear').checked) form.set('clear', 'false');
  const file = $('input_file').files[0];
  if (!file) form.delete('input_file');   // the server says what is missing
  $('send').disabled = true;
  $('result').hidden = true;
  say('Publishing… the answer comes when the run has ended.');
  try {
    const r = await fetch('/simulate/', {
      method: 'POST', body: form,
      headers: { Authorization: `Bearer ${key}`, Accept: 'application/json' },
    });
    const body = await r.json().catch(() => ({}));
    if (r.status === 401) {
      $('key-form').hidden = false;
      say('The API key was refused.');
    } else if (body.error && !body.counts) {
      say(body.error.message || `Error ${r.status}`);
    } else {
      say(body.error ? `${body.error.message} (${body.error.code})` : '');
      showReport(body);
    }
  } catch (err) {
    say(`The server could not be reached: ${err.message}`);
  } finally {
    $('send').disabled = false;
  }
}

$('publish').addEventListener('submit', publish);
$('key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const key = $('key').value.trim();
  if (!key) return;
  try { localStorage.setItem(KEY_STORAGE, key); } catch { /* this page only */ }
  $('key').value = '';
  $('key-form').hidden = true;
  say('');
});
if (!loadKey()) $('key-form').hidden = false;
