/**
 * The page's only script and style, served by the middleware itself (no build step), each allowed by
 * the response's CSP nonce. The script only adds comfort: the page works without it.
 */

/** Confirms a purge before it is sent, and shows each UTC time in the reader's zone on hover. */
export const ADMIN_SCRIPT = `'use strict';
document.querySelectorAll('form[data-confirm]').forEach(function (form) {
  form.addEventListener('submit', function (event) {
    if (!window.confirm(form.getAttribute('data-confirm'))) event.preventDefault();
  });
});
document.querySelectorAll('time[datetime]').forEach(function (time) {
  var when = new Date(time.getAttribute('datetime'));
  if (!isNaN(when.getTime())) time.title = when.toLocaleString();
});
document.querySelectorAll('[data-toggle-details]').forEach(function (button) {
  button.hidden = false;
  button.addEventListener('click', function () {
    var all = document.querySelectorAll('details.event');
    var open = Array.prototype.some.call(all, function (d) { return !d.open; });
    all.forEach(function (d) { d.open = open; });
  });
});
`

/** Plain CSS, light and dark; no class comes from data. */
export const ADMIN_STYLE = `
:root{color-scheme:light dark;--muted:#667;--line:#ccd;--bad:#b3261e;--good:#1b6e3a;--accent:#2451a6}
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:92rem;padding:0 1rem 3rem}
header{display:flex;gap:1.5rem;align-items:baseline;border-bottom:1px solid var(--line);padding:.75rem 0;flex-wrap:wrap}
header h1{font-size:1.15rem;margin:0}nav a{margin-right:1rem}nav a[aria-current]{font-weight:600;text-decoration:none;color:inherit}
a{color:var(--accent)}.muted{color:var(--muted)}.error{color:var(--bad);font-weight:600}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:end;margin:1rem 0;padding:.75rem;border:1px solid var(--line);border-radius:6px}
form.filters label{display:flex;flex-direction:column;font-size:.8rem;color:var(--muted)}
form.filters input,form.filters select{font:inherit;padding:.2rem .35rem}
fieldset.types{border:0;padding:0;margin:0;display:flex;flex-wrap:wrap;gap:.2rem .7rem;font-size:.8rem}
fieldset.types legend{color:var(--muted);font-size:.8rem;padding:0}
fieldset.types label{flex-direction:row;gap:.2rem;color:inherit}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border-bottom:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top}
th{font-size:.8rem;color:var(--muted);font-weight:600}td{white-space:nowrap}td.wrap{white-space:normal;overflow-wrap:anywhere;min-width:6rem;max-width:24rem}
td:last-child{white-space:normal;width:100%}details.event[open]{max-width:52rem}
.type-LOGINERROR,.type-LOGOUTERROR,.type-LOCKOUT{color:var(--bad);font-weight:600}.type-LOGIN{color:var(--good)}
details.event summary{cursor:pointer;color:var(--accent)}details.event dl{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .8rem;margin:.4rem 0}
details.event dt{color:var(--muted)}details.event dd{margin:0;overflow-wrap:anywhere;white-space:pre-wrap}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:rgba(127,127,127,.1);padding:.5rem;border-radius:4px;max-width:60rem}
.pager{display:flex;gap:1rem;margin:.75rem 0}.toolbar{display:flex;gap:1rem;align-items:center;flex-wrap:wrap}
section.retention{margin-top:2rem;border-top:1px solid var(--line);padding-top:.5rem}
`
