// The status page the hub serves at GET /health/status: one self-contained HTML document (inline CSS and JS, no
// build step, nothing fetched from elsewhere) that draws GET /health/stream as it arrives. Every string from a
// worker or a topic member goes into the DOM as textContent, never as markup; the CSP below (scripts and styles
// only by hash, no inline handlers) is a second fence, not the first.
import { SECTIONS_SCRIPT, SECTIONS_STYLE, sha256 } from "../../status/internal.ts"

const STYLE = `
:root {
  color-scheme: light dark; /* native controls (the slot meters) follow the theme */
  --bg: #f4f6f9; --card: #fff; --ink: #1b2330; --muted: #5d6b7e; --line: #dfe4ec; --head: #18212f;
  --ok: #137a3f; --ok-bg: #e3f5ea; --warn: #8a5a00; --warn-bg: #fff3d6; --bad: #b3261e; --bad-bg: #fde7e5;
  --flash: #fff2a8;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #11161e; --card: #19202b; --ink: #e4e9f0; --muted: #93a1b5; --line: #2c3644; --head: #0b0f15;
    --ok: #6fd39a; --ok-bg: #173524; --warn: #f2c46b; --warn-bg: #3a2e12; --bad: #ff8f86; --bad-bg: #3f1a18;
    --flash: #4a4310;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { background: var(--head); color: #fff; padding: 12px 20px; display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 18px; }
header h1 { font-size: 18px; margin: 0; font-weight: 650; letter-spacing: .2px; }
header .where { color: #b8c4d6; font-size: 13px; }
header .pill { margin-left: auto; }
.pill { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12px; font-weight: 600; }
.pill.live { background: var(--ok-bg); color: var(--ok); }
.pill.down { background: var(--warn-bg); color: var(--warn); }
main, .col { display: grid; gap: 16px; align-content: start; min-width: 0; }
main { padding: 16px 20px 8px; max-width: 1500px; }
.cols { display: grid; gap: 16px; grid-template-columns: minmax(0, 1fr); align-items: start; }
@media (min-width: 1100px) { .cols { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); } }
#publishers { margin-top: 12px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px 14px; min-width: 0; }
h2 { font-size: 15px; margin: 0 0 8px; font-weight: 650; }
h2 small { font-weight: 400; color: var(--muted); font-size: 13px; margin-left: 6px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 10px; }
.tile { border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px; }
.tile .k { color: var(--muted); font-size: 12px; }
.tile .v { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 5px 10px 5px 0; border-bottom: 1px solid var(--line); vertical-align: top; white-space: nowrap; }
th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .3px; }
td.n, th.n { text-align: right; padding-right: 14px; }
td.wrap { white-space: normal; }
tr:last-child td { border-bottom: 0; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.empty { color: var(--muted); font-style: italic; padding: 4px 0; margin: 0; }
.note { color: var(--muted); margin: 6px 0 0; }
.warn { color: var(--warn); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
.okc { color: var(--ok); font-weight: 600; }
meter { width: 54px; height: 10px; vertical-align: middle; margin-left: 6px; }
.changed { animation: flash 1s ease-out; }
@keyframes flash { from { background: var(--flash); } to { background: transparent; } }
details summary { cursor: pointer; color: var(--muted); margin-top: 10px; }
dl { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 2px 18px; margin: 8px 0 0; }
dl div { display: flex; justify-content: space-between; border-bottom: 1px dotted var(--line); }
dt { color: var(--muted); } dd { margin: 0; font-variant-numeric: tabular-nums; }
footer { color: var(--muted); font-size: 12px; padding: 4px 20px 18px; }
:root { --accent: #2f6fde; }
@media (prefers-color-scheme: dark) { :root { --accent: #7aa7ff; } }
#nats { display: grid; gap: 12px; }
${SECTIONS_STYLE}`

// String.raw: the script's backslashes (its regular expression, "\\x") reach the browser as written.
const SCRIPT = `${SECTIONS_SCRIPT}${String.raw`
(function () {
  "use strict";
  var previous = {};
  var seen = {};

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  // Control characters (a terminal escape in a route, say) shown as \xNN instead of as boxes or nothing.
  function visible(s) {
    return String(s).replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g, function (c) {
      var h = c.charCodeAt(0).toString(16);
      return h.length <= 2 ? "\\x" + ("0" + h).slice(-2) : "\\u" + ("000" + h).slice(-4);
    });
  }
  function num(n) { return typeof n === "number" ? n.toLocaleString("en-US") : "–"; }
  function us(v, count) {
    if (!count) return "–";
    if (v < 10) return v.toFixed(1) + " µs";
    if (v < 1000) return Math.round(v) + " µs";
    if (v < 1e6) return (v / 1000).toFixed(v < 1e4 ? 2 : 1) + " ms";
    return (v / 1e6).toFixed(2) + " s";
  }
  function bytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1048576) return (n / 1024).toFixed(n < 10240 ? 1 : 0) + " KiB";
    if (n < 1073741824) return (n / 1048576).toFixed(1) + " MiB";
    return (n / 1073741824).toFixed(2) + " GiB";
  }
  function duration(ms) {
    var s = Math.floor(ms / 1000);
    if (s < 60) return s + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " m " + (s % 60) + " s";
    var h = Math.floor(m / 60);
    if (h < 48) return h + " h " + (m % 60) + " m";
    return Math.floor(h / 24) + " d " + (h % 24) + " h";
  }
  // A cell; "key" names the value across updates, so a cell whose value changed flashes once.
  function cell(text, cls, key) {
    var td = el("td", cls, text);
    if (key !== undefined) {
      if (key in previous && previous[key] !== text) td.classList.add("changed");
      seen[key] = text;
    }
    return td;
  }
  function table(target, columns, rows, emptyText) {
    var box = document.getElementById(target);
    box.replaceChildren();
    if (rows.length === 0) { box.append(el("div", "empty", emptyText)); return; }
    var t = el("table"), head = el("tr");
    columns.forEach(function (c) { head.append(el("th", c.n ? "n" : "", c.t)); });
    var thead = el("thead");
    thead.append(head);
    t.append(thead);
    var body = el("tbody");
    rows.forEach(function (r) { body.append(r); });
    t.append(body);
    var wrap = el("div", "scroll");
    wrap.append(t);
    box.append(wrap);
  }
  function text(id, value) { document.getElementById(id).textContent = value; }

  function tiles(h) {
    var c = h.counters;
    var list = [
      ["requests", c.requests], ["responses", c.responses],
      ["4xx", c.notFound + c.methodNotAllowed + c.tooLarge],
      ["5xx", c.unavailable + c.badGateway + c.timeouts + c.workerErrors],
      ["timeouts", c.timeouts], ["client aborts", c.clientAborts],
      ["evictions", c.evictions], ["events emitted", c.emitted],
      ["SSE clients", h.sse.connections + h.sse.eventsClients + h.sse.statusClients],
    ];
    var box = document.getElementById("tiles");
    box.replaceChildren();
    list.forEach(function (kv) {
      var t = el("div", "tile"), v = el("div", "v", num(kv[1]));
      v.dataset.counter = kv[0];
      var key = "tile/" + kv[0];
      if (key in previous && previous[key] !== kv[1]) t.classList.add("changed");
      seen[key] = kv[1];
      t.append(el("div", "k", kv[0]), v);
      box.append(t);
    });
    var dl = document.getElementById("counters");
    dl.replaceChildren();
    Object.keys(c).forEach(function (k) {
      var d = el("div");
      d.append(el("dt", "", k), el("dd", "", num(c[k])));
      dl.append(d);
    });
  }

  function workers(h) {
    var now = Date.parse(h.startedAt) + h.uptimeMs;
    var rows = h.workers.map(function (w) {
      var k = "w/" + w.name + "/" + w.instance + "/" + w.pid + "/";
      var tr = el("tr");
      tr.dataset.pid = String(w.pid);
      var slots = cell(w.slotsInUse + " / " + w.slots, "n", k + "slots");
      var meter = el("meter");
      meter.min = 0; meter.max = w.slots; meter.value = w.slotsInUse; meter.high = w.slots * 0.75;
      slots.append(meter);
      var seenAgo = Math.max(0, now - Date.parse(w.lastSeen));
      tr.append(
        el("td", "name", visible(w.name)),
        el("td", "", visible(w.instance)),
        el("td", "host", visible(w.host || h.host)),
        el("td", "n pid", w.pid),
        el("td", w.connected ? "okc" : "warn", w.connected ? "connected" : "joining"),
        slots,
        cell(num(w.inFlight), "n inflight", k + "inflight"),
        cell(num(w.stuck), "n stuck" + (w.stuck > 0 ? " bad" : ""), k + "stuck"),
        cell(num(w.served), "n served", k + "served"),
        cell(num(w.restarts), "n restarts" + (w.restarts > 0 ? " warn" : ""), k + "restarts"),
        cell(us(w.latency.p50Us, w.latency.count), "n", k + "p50"),
        cell(us(w.latency.p90Us, w.latency.count), "n", k + "p90"),
        cell(us(w.latency.p99Us, w.latency.count), "n", k + "p99"),
        cell(us(w.latency.maxUs, w.latency.count), "n", k + "max"),
        el("td", "n", duration(seenAgo) + " ago"),
        el("td", "n", num(w.routes.length))
      );
      return tr;
    });
    table("workers", [
      { t: "name" }, { t: "instance" }, { t: "host" }, { t: "pid", n: 1 }, { t: "state" }, { t: "slots in use", n: 1 },
      { t: "in flight", n: 1 }, { t: "stuck", n: 1 }, { t: "served", n: 1 }, { t: "restarts", n: 1 },
      { t: "p50", n: 1 }, { t: "p90", n: 1 }, { t: "p99", n: 1 }, { t: "max", n: 1 }, { t: "seen", n: 1 },
      { t: "routes", n: 1 },
    ], rows, "No worker is registered. Workers join with hubWorker(url, name).");
  }

  function routes(h) {
    // By owner, then by path, then by method: "GET /items/:id" sorts as "/items/:id GET".
    var key = function (r) { var sp = r.route.indexOf(" "); return r.owner + " " + r.route.slice(sp + 1) + " " + r.route.slice(0, sp); };
    var sorted = h.routes.slice().sort(function (a, b) { return key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0; });
    table("routes", [{ t: "owner" }, { t: "route" }, { t: "workers", n: 1 }], sorted.map(function (r) {
      var tr = el("tr"), route = el("td", "route");
      route.append(el("code", "", visible(r.route)));
      tr.append(el("td", "", visible(r.owner)), route, el("td", "n" + (r.workers === 0 ? " bad" : ""), num(r.workers)));
      return tr;
    }), "No routes: no worker has registered any.");
  }

  function topics(h) {
    var names = {};
    h.workers.forEach(function (w) { names[w.pid] = w.name; });
    names[h.pid] = "the hub";
    var who = function (pid) { return names[pid] ? pid + " (" + visible(names[pid]) + ")" : String(pid); };
    var t = h.topics[0];
    if (!t) {
      text("topic", "");
      table("subscribers", [], [], "The hub has no events topic open.");
      table("publishers", [], [], "");
      return;
    }
    text("topic", t.name + " · ring " + bytes(t.capacity) + " · " + bytes(t.tail) + " published" +
      (t.abandoned ? " · " + num(t.abandoned) + " abandoned" : "") + (t.fenced ? " · " + num(t.fenced) + " fenced" : ""));
    table("subscribers", [
      { t: "subscriber" }, { t: "filter" }, { t: "queue", n: 1 }, { t: "received", n: 1 }, { t: "lagged", n: 1 },
      { t: "behind", n: 1 }, { t: "" },
    ], t.subscribers.map(function (s, i) {
      var tr = el("tr"), filter = el("td");
      var k = "s/" + s.pid + "/" + i + "/";
      filter.append(el("code", "", visible(s.filter)));
      tr.append(
        el("td", "", who(s.pid)), filter, el("td", "n", num(s.queue)),
        cell(num(s.received), "n", k + "received"),
        cell(num(s.lagged), "n" + (s.lagged > 0 ? " warn" : ""), k + "lagged"),
        cell(bytes(s.behind), "n", k + "behind"),
        el("td", "", s.parked ? "parked" : "")
      );
      return tr;
    }), "No subscribers.");
    table("publishers", [{ t: "publisher" }, { t: "published", n: 1 }], t.publishers.map(function (p) {
      var tr = el("tr");
      tr.append(el("td", "", who(p.pid)), cell(num(p.published), "n", "p/" + p.pid));
      return tr;
    }), "No publishers yet: a worker becomes one at its first app.emit.");
  }

  function evicted(h) {
    table("evicted", [{ t: "at" }, { t: "name" }, { t: "instance" }, { t: "pid", n: 1 }, { t: "reason" }],
      h.evicted.map(function (e) {
        var tr = el("tr");
        tr.append(el("td", "", new Date(e.at).toLocaleTimeString()), el("td", "", visible(e.name)),
          el("td", "", visible(e.instance)), el("td", "n", e.pid), el("td", "", visible(e.reason)));
        return tr;
      }), "None since the hub started.");
  }

  function render(h) {
    seen = {};
    text("where", h.host + " · hub pid " + h.pid + " · up " + duration(h.uptimeMs));
    var remote = h.workers.filter(function (w) { return w.transport === "nats"; }).length;
    text("host", remote === 0 ? "all on " + h.host + ": workers share memory with the hub"
      : (h.workers.length - remote) + " on " + h.host + " over shared memory, " + remote + " on other hosts over NATS");
    tiles(h); workers(h); routes(h); topics(h); evicted(h);
    previous = seen;
  }

  function state(live, why) {
    var p = document.getElementById("live");
    p.className = "pill " + (live ? "live" : "down");
    p.textContent = live ? "live" : why;
  }

  var source = new EventSource("stream");
  source.addEventListener("health", function (m) {
    state(true);
    var h = JSON.parse(m.data);
    render(h);
    // with the nats option: what its buses and events topic know across hosts (serveStatus's sections)
    document.getElementById("nats-card").hidden = !h.nats;
    if (h.nats) renderSections(document.getElementById("nats"), h.nats);
  });
  source.onerror = function () { state(false, "reconnecting…"); };
})();
`}`

const BODY = `<header>
  <h1>slotbus hub</h1><span class="where" id="where">waiting for the hub…</span>
  <span class="pill down" id="live">connecting…</span>
</header>
<main>
  <section><div class="tiles" id="tiles"></div>
    <details><summary>all counters</summary><dl id="counters"></dl></details></section>
  <section><h2>Workers <small id="host"></small></h2><div id="workers"></div>
    <p class="note">Latency: round trips through the worker's slots since it registered (the hub's pings included).
    Restarts: the same name and instance registering again from a new pid.</p></section>
  <div class="cols">
  <div class="col"><section><h2>Routes</h2><div id="routes"></div></section></div>
  <div class="col">
  <section><h2>Events topic <small id="topic"></small></h2><div id="subscribers"></div><div id="publishers"></div>
    <p class="note">Lagged: events a subscriber lost (its queue or the ring overflowed). Behind: ring bytes it has
    not read yet.</p></section>
  <section><h2>Leases</h2>
    <p class="empty">The hub holds no lease contests, so there are none to show here. Leases live in slotbus/leases
    contests of their own (contest.holders(), contest.stats()).</p></section>
  <section><h2>Recent evictions</h2><div id="evicted"></div></section>
  </div>
  </div>
  <section id="nats-card" hidden><h2>Across hosts (NATS)</h2><div id="nats"></div></section>
</main>
<footer>Live from <code>GET /health/stream</code>, once a second. The same data: <code>/health</code> (JSON),
<code>/metrics</code> (Prometheus), <code>slotbus status</code> (a terminal).</footer>`

/** The page's Content-Security-Policy: nothing from elsewhere, only this page's own script and style. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "img-src data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ")

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>slotbus hub</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
${BODY}
<script>${SCRIPT}</script>
</body>
</html>
`
