// Toolbus console: live calls over server-sent events, client-side
// filtering, periodic refresh of live tables, confirmations. No framework,
// no external requests; pages work without it.
"use strict";

(function () {
  // Forms that change something important ask first.
  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) ev.preventDefault();
  });

  // Regions with data-refresh="N" are re-fetched every N seconds while the
  // tab is visible, keeping focus and scroll where they are.
  document.querySelectorAll("[data-refresh]").forEach(function (el) {
    var every = Math.max(2, parseInt(el.getAttribute("data-refresh"), 10) || 5) * 1000;
    setInterval(function () {
      if (document.hidden || !el.id) return;
      fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(el.id);
          if (fresh && !el.contains(document.activeElement)) el.replaceChildren.apply(el, Array.from(fresh.childNodes));
        })
        .catch(function () {});
    }, every);
  });

  var table = document.getElementById("calls-table");
  if (!table) return;
  var tbody = table.tBodies[0];
  var status = document.getElementById("live-status");
  var form = document.getElementById("call-filters");
  var jaeger = table.getAttribute("data-jaeger") || "";
  var maxRows = 500;

  function filter() {
    var f = new FormData(form);
    return { tool: f.get("tool") || "", upstream: f.get("upstream") || "", outcome: f.get("outcome") || "", caller: f.get("caller") || "" };
  }
  function matches(f, c) {
    if (f.tool && c.tool !== f.tool) return false;
    if (f.upstream && c.upstream !== f.upstream) return false;
    if (f.caller && (c.caller || "").indexOf(f.caller) < 0) return false;
    if (f.outcome === "errors") return c.outcome !== "ok";
    if (f.outcome) return c.outcome === f.outcome;
    return true;
  }
  function rowData(tr) {
    return { tool: tr.dataset.tool, upstream: tr.dataset.upstream, outcome: tr.dataset.outcome, caller: tr.dataset.caller };
  }
  function applyFilter() {
    var f = filter();
    Array.prototype.forEach.call(tbody.rows, function (tr) { tr.hidden = !matches(f, rowData(tr)); });
    var q = new URLSearchParams();
    Object.keys(f).forEach(function (k) { if (f[k]) q.set(k, f[k]); });
    history.replaceState(null, "", location.pathname + (q.toString() ? "?" + q : ""));
  }
  form.addEventListener("change", applyFilter);
  form.addEventListener("input", applyFilter);
  form.addEventListener("submit", function (ev) { ev.preventDefault(); applyFilter(); });

  function cell(tr, text, cls) {
    var td = tr.insertCell(-1);
    if (cls) td.className = cls;
    if (text instanceof Node) td.appendChild(text); else td.textContent = text;
    return td;
  }
  function span(text, cls) { var s = document.createElement("span"); s.className = cls; s.textContent = text; return s; }
  function ms(v) {
    if (!(v > 0)) return "–";
    if (v < 1) return Math.round(v * 1000) + " µs";
    if (v < 1000) return v.toFixed(1) + " ms";
    return (v / 1000).toFixed(2) + " s";
  }
  function ts(iso) {
    var d = new Date(iso);
    return isNaN(d) ? iso : d.toISOString().replace("T", " ").replace(/(\.\d{3})\d*Z$/, "$1Z");
  }
  function addCall(c) {
    var tr = document.createElement("tr");
    tr.dataset.tool = c.tool; tr.dataset.upstream = c.upstream; tr.dataset.outcome = c.outcome; tr.dataset.caller = c.caller || "";
    tr.className = "fresh";
    cell(tr, ts(c.time));
    var a = document.createElement("a");
    a.href = "/console/calls/" + encodeURIComponent(c.call_id);
    a.textContent = c.tool;
    cell(tr, a);
    cell(tr, c.upstream);
    cell(tr, c.caller ? c.caller : span("anonymous", "muted"));
    cell(tr, span(c.outcome, "outcome " + (c.outcome === "ok" ? "ok" : "bad")));
    cell(tr, String(c.attempts || 0), "num");
    cell(tr, ms(c.duration_ms), "num");
    if (jaeger && c.trace_id) {
      var t = document.createElement("a");
      t.href = jaeger + "/trace/" + encodeURIComponent(c.trace_id);
      t.rel = "noreferrer noopener"; t.target = "_blank"; t.textContent = "trace";
      cell(tr, t);
    } else {
      cell(tr, span("–", "muted"));
    }
    tr.hidden = !matches(filter(), c);
    tbody.insertBefore(tr, tbody.firstChild);
    while (tbody.rows.length > maxRows) tbody.deleteRow(-1);
    var empty = document.getElementById("calls-empty");
    if (empty) empty.remove();
  }

  if (!window.EventSource) return;
  var es = new EventSource("/console/api/calls/stream");
  es.addEventListener("open", function () {
    status.textContent = "Live: new calls appear at the top as they finish.";
    status.classList.add("on");
  });
  es.addEventListener("error", function () {
    status.textContent = "Live updates interrupted; reconnecting…";
    status.classList.remove("on");
  });
  es.addEventListener("lagged", function () {
    status.textContent = "Live: some calls were skipped because the page fell behind.";
  });
  es.addEventListener("call", function (ev) {
    try { addCall(JSON.parse(ev.data)); } catch (e) { /* ignore malformed */ }
  });
})();
