// Hearth: live training-job page and run comparison. Vanilla JS; charts use the vendored uPlot
// (static/vendor/uplot/, loaded only on the pages that need it). Acts only on #job-live and
// #job-compare; data-processing jobs keep the small poller in hearth.js (#job).
(function () {
  "use strict";

  var FINAL = ["succeeded", "failed", "cancelled"];
  var CANCELLABLE = ["queued", "running", "retrying"];
  var RETRYABLE = ["failed", "cancelled"];
  var MAX_LOG_LINES = 2000;
  var MAX_PAGES = 50; // pages drained per endpoint per tick when catching up
  var POLL_MS = 1000;
  var COLORS = ["#b4441f", "#2563eb", "#1f7a4d", "#a15c00", "#7c3aed"];

  // ---- small helpers ---------------------------------------------------------------------

  function isFinal(status) { return FINAL.indexOf(status) !== -1; }

  function csrf() {
    try { return typeof hearthCsrf === "function" ? hearthCsrf() : ""; } catch (e) { return ""; }
  }

  // GET JSON; resolves to the body, rejects on network errors, non-2xx and non-JSON bodies.
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      });
  }

  // POST; resolves to [status, body-or-null], rejects only on network errors.
  function postJSON(url) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrf() },
    }).then(function (r) {
      return r.json().then(function (b) { return [r.status, b]; }, function () { return [r.status, null]; });
    });
  }

  function withAfter(url, seq) {
    return url + (url.indexOf("?") === -1 ? "?" : "&") + "after=" + encodeURIComponent(seq);
  }

  function num(v) { return typeof v === "number" && isFinite(v) ? v : null; }

  function pad2(n) { return (n < 10 ? "0" : "") + n; }

  function fmtEta(seconds) {
    var s = num(seconds);
    if (s === null || s < 0) return "—";
    s = Math.round(s);
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    return h + ":" + pad2(m) + ":" + pad2(s % 60);
  }

  // Same shape as the server's "Y-m-d H:i:s", in the browser's time zone (the server uses it too).
  function fmtTime(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + " " +
      pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
  }

  function fmtNum(v) {
    if (v === null || v === undefined || !isFinite(v)) return "—";
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e7)) return v.toExponential(2);
    if (a >= 1000) return Math.round(v).toLocaleString();
    return String(+v.toPrecision(4));
  }

  function fmtAxis(v) {
    if (v === null || v === undefined) return "";
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e7)) return v.toExponential(1);
    if (a >= 1e4) return (v / 1000).toFixed(a >= 1e5 ? 0 : 1) + "k";
    return String(+v.toPrecision(4));
  }

  function setText(id, text) {
    var el = document.getElementById(id);
    if (el && el.textContent !== text) el.textContent = text;
    return el;
  }

  // Drain an ?after=<seq> endpoint. `state.seq` advances; `onResults` gets each page's results.
  // Keeps going while the API says there is more (has_more / next), or while `drain` is set and
  // pages keep coming (first load, and the last tick after the job ended).
  function fetchSince(url, state, onResults, drain) {
    var pages = 0;
    function step() {
      return getJSON(withAfter(url, state.seq)).then(function (body) {
        var results = (body && Array.isArray(body.results)) ? body.results : [];
        var before = state.seq;
        var top = before;
        results.forEach(function (r) { if (num(r.seq) !== null && r.seq > top) top = r.seq; });
        if (body && num(body.last_seq) !== null && body.last_seq > top) top = body.last_seq;
        if (results.length) onResults(results);
        state.seq = top;
        pages += 1;
        var more = body && (body.has_more === true || !!body.next);
        if (top > before && pages < MAX_PAGES && (more || (drain && results.length))) return step();
        return null;
      });
    }
    return step();
  }

  // ---- metric series: upsert by kind + step, the newest seq wins ----------------------------

  function MetricStore() { this.step = {}; this.eval = {}; }

  MetricStore.prototype.add = function (records) {
    var self = this;
    records.forEach(function (rec) {
      if (!rec) return;
      var bucket = rec.kind === "eval" ? self.eval : (rec.kind === "step" ? self.step : null);
      var step = Number(rec.step);
      if (!bucket || rec.step === null || rec.step === undefined || !isFinite(step)) return;
      var old = bucket[step];
      var seq = num(rec.seq) === null ? 0 : rec.seq;
      if (!old || seq >= old.seq) bucket[step] = { seq: seq, data: rec.data || {} };
    });
  };

  // Sorted steps of one bucket where `field` is a number, and the values.
  MetricStore.prototype.column = function (kind, field) {
    var bucket = kind === "eval" ? this.eval : this.step;
    var xs = [];
    var ys = [];
    Object.keys(bucket).map(Number).sort(function (a, b) { return a - b; }).forEach(function (s) {
      var v = num(bucket[s].data[field]);
      if (v !== null) { xs.push(s); ys.push(v); }
    });
    return { xs: xs, ys: ys };
  };

  // Align several {xs, ys} columns on the union of their steps (null where a column has none).
  function align(columns) {
    var seen = {};
    columns.forEach(function (c) { c.xs.forEach(function (x) { seen[x] = true; }); });
    var xs = Object.keys(seen).map(Number).sort(function (a, b) { return a - b; });
    var index = {};
    xs.forEach(function (x, i) { index[x] = i; });
    var data = [xs];
    columns.forEach(function (c) {
      var ys = new Array(xs.length);
      for (var i = 0; i < xs.length; i++) ys[i] = null;
      c.xs.forEach(function (x, i) { ys[index[x]] = c.ys[i]; });
      data.push(ys);
    });
    return data;
  }

  function countPoints(data) {
    var n = 0;
    for (var s = 1; s < data.length; s++) {
      for (var i = 0; i < data[s].length; i++) if (data[s][i] !== null) n++;
    }
    return n;
  }

  // ---- uPlot wrapper ---------------------------------------------------------------------

  var CHART_HEIGHT = 220;

  function chartWidth(el) {
    var w = el.clientWidth;
    return w > 50 ? w : 400;
  }

  // One chart in `el`, created on the first data (uPlot may be missing: then only counts move).
  function LiveChart(el, stepLabel, series) {
    this.el = el;
    this.stepLabel = stepLabel;
    this.series = series;
    this.plot = null;
  }

  LiveChart.prototype.update = function (data) {
    if (!this.el || typeof uPlot === "undefined" || !data[0].length) return;
    try {
      if (this.plot) { this.plot.setData(data); return; }
      var empty = this.el.querySelector(".chart-empty");
      if (empty) empty.remove();
      var opts = {
        width: chartWidth(this.el),
        height: CHART_HEIGHT,
        scales: { x: { time: false } },
        cursor: { drag: { x: true, y: false } },
        axes: [
          { values: function (u, splits) { return splits.map(fmtAxis); } },
          { values: function (u, splits) { return splits.map(fmtAxis); }, size: 60 },
        ],
        series: [{ label: this.stepLabel, value: function (u, v) { return v === null ? "—" : String(v); } }]
          .concat(this.series.map(function (s) {
            return {
              label: s.label,
              stroke: s.color,
              width: 1.5,
              spanGaps: true,
              points: { show: s.points === true ? true : undefined },
              value: function (u, v) { return fmtNum(v); },
            };
          })),
      };
      this.plot = new uPlot(opts, data, this.el);
    } catch (e) { /* a chart that cannot draw must not stop the page */ }
  };

  LiveChart.prototype.resize = function () {
    if (!this.plot) return;
    try { this.plot.setSize({ width: chartWidth(this.el), height: CHART_HEIGHT }); } catch (e) { /* ignore */ }
  };

  function watchResize(charts) {
    var timer = null;
    window.addEventListener("resize", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { charts.forEach(function (c) { c.resize(); }); }, 150);
    });
  }

  function label(el, name, fallback) {
    return (el && el.getAttribute("data-label-" + name)) || fallback;
  }

  // ---- live job page ---------------------------------------------------------------------

  function initLive(root) {
    var jobUrl = root.getAttribute("data-job-url");
    var metricsUrl = root.getAttribute("data-metrics-url");
    var logsUrl = root.getAttribute("data-logs-url");
    var modelBase = root.getAttribute("data-model-url") || "/models/versions/";
    var stepLabel = label(root, "step", "step");
    var wasFinalAtLoad = root.getAttribute("data-final") === "1";

    var statusLabels = {};
    var labelsEl = document.getElementById("job-status-labels");
    if (labelsEl) {
      Array.prototype.forEach.call(labelsEl.querySelectorAll("[data-status]"), function (li) {
        statusLabels[li.getAttribute("data-status")] = li.textContent;
      });
    }
    function statusText(s) { return statusLabels[s] || s || ""; }

    var store = new MetricStore();
    var metricState = { seq: 0 };
    var logState = { seq: 0 };
    var counts = { loss: 0, eval: 0, lr: 0, grad: 0, tps: 0 };
    window.hearthJobCharts = counts;

    var lossEl = document.getElementById("chart-loss");
    var lrEl = document.getElementById("chart-lr");
    var gradEl = document.getElementById("chart-grad");
    var tpsEl = document.getElementById("chart-tps");
    var charts = {
      loss: new LiveChart(lossEl, stepLabel, [
        { label: label(lossEl, "loss", "loss"), color: COLORS[0] },
        { label: label(lossEl, "eval", "eval loss"), color: COLORS[1], points: true },
      ]),
      lr: new LiveChart(lrEl, stepLabel, [{ label: label(lrEl, "series", "learning rate"), color: COLORS[2] }]),
      grad: new LiveChart(gradEl, stepLabel, [{ label: label(gradEl, "series", "grad norm"), color: COLORS[3] }]),
      tps: new LiveChart(tpsEl, stepLabel, [{ label: label(tpsEl, "series", "tokens/s"), color: COLORS[4] }]),
    };
    watchResize([charts.loss, charts.lr, charts.grad, charts.tps]);

    function redraw() {
      var loss = store.column("step", "loss");
      var evalLoss = store.column("eval", "eval_loss");
      var lossData = align([loss, evalLoss]);
      var lrData = align([store.column("step", "learning_rate")]);
      var gradData = align([store.column("step", "grad_norm")]);
      var tpsData = align([store.column("step", "tokens_per_second")]);
      charts.loss.update(lossData);
      charts.lr.update(lrData);
      charts.grad.update(gradData);
      charts.tps.update(tpsData);
      counts.loss = countPoints(lossData);
      counts.eval = evalLoss.xs.length;
      counts.lr = countPoints(lrData);
      counts.grad = countPoints(gradData);
      counts.tps = countPoints(tpsData);
      var last = loss.ys.length ? loss.ys[loss.ys.length - 1] : null;
      setText("job-last-loss", fmtNum(last));
      var lastStep = Object.keys(store.step).map(Number).sort(function (a, b) { return a - b; }).pop();
      setText("job-step", lastStep === undefined ? "—" : String(lastStep));
    }

    // Log tail: one span per line, the last MAX_LOG_LINES kept.
    var logEl = document.getElementById("job-log");
    var follow = document.getElementById("log-follow");
    function appendLogs(records) {
      if (!logEl) return;
      var frag = document.createDocumentFragment();
      var added = 0;
      records.forEach(function (rec) {
        if (!rec || (num(rec.seq) !== null && rec.seq <= logState.shown)) return;
        if (num(rec.seq) !== null) logState.shown = rec.seq;
        var text = rec.text === null || rec.text === undefined ? "" : String(rec.text);
        if (text.slice(-1) === "\n") text = text.slice(0, -1);
        text.split("\n").forEach(function (line) {
          var span = document.createElement("span");
          if (rec.stream === "stderr") span.className = "stderr";
          span.textContent = line + "\n";
          frag.appendChild(span);
          added++;
        });
      });
      if (!added) return;
      var empty = logEl.querySelector(".log-empty");
      if (empty) empty.remove();
      logEl.appendChild(frag);
      var extra = logEl.childNodes.length - MAX_LOG_LINES;
      while (extra-- > 0 && logEl.firstChild) logEl.removeChild(logEl.firstChild);
      if (!follow || follow.checked) logEl.scrollTop = logEl.scrollHeight;
    }
    logState.shown = 0;
    if (follow && logEl) {
      follow.addEventListener("change", function () { if (follow.checked) logEl.scrollTop = logEl.scrollHeight; });
    }

    // Job state.
    var job = null;
    var lastTimeline = null;
    function renderTimeline(transitions) {
      var list = document.getElementById("job-timeline");
      if (!list || !Array.isArray(transitions)) return;
      var key = JSON.stringify(transitions);
      if (key === lastTimeline) return;
      lastTimeline = key;
      while (list.firstChild) list.removeChild(list.firstChild);
      transitions.forEach(function (t) {
        var li = document.createElement("li");
        li.className = "to-" + t.to_status;
        var time = document.createElement("time");
        time.setAttribute("datetime", t.at || "");
        time.textContent = fmtTime(t.at);
        var badge = document.createElement("span");
        badge.className = "badge " + badgeClass(t.to_status);
        badge.textContent = statusText(t.to_status);
        li.appendChild(time);
        li.appendChild(document.createTextNode(" "));
        li.appendChild(badge);
        if (t.message) {
          var msg = document.createElement("span");
          msg.className = "muted";
          msg.textContent = " " + t.message;
          li.appendChild(msg);
        }
        list.appendChild(li);
      });
    }

    function badgeClass(status) {
      if (status === "succeeded") return "ok";
      if (status === "failed") return "danger";
      if (status === "running") return "info";
      if (status === "cancelled") return "";
      return "warn";
    }

    function toggle(id, show) {
      var el = document.getElementById(id);
      if (el) el.hidden = !show;
      return el;
    }

    function applyJob(body) {
      if (!body || typeof body !== "object" || !body.status) return;
      job = body;
      var badge = setText("job-status", statusText(body.status));
      if (badge) {
        badge.className = "badge " + badgeClass(body.status);
        badge.setAttribute("data-status", body.status);
      }
      var p = num(body.progress);
      var bar = document.getElementById("job-progress");
      if (bar && p !== null) bar.value = Math.max(0, Math.min(1, p));
      if (p !== null) setText("job-percent", Math.round(Math.max(0, Math.min(1, p)) * 100) + "%");
      setText("job-eta", isFinal(body.status) ? "—" : fmtEta(body.eta_seconds));
      setText("job-message", body.message || "");
      var err = setText("job-error", body.error || "");
      if (err) err.hidden = !body.error;
      toggle("job-error-label", !!body.error);
      if (Array.isArray(body.gpus)) setText("job-gpus", body.gpus.length ? body.gpus.join(", ") : "—");
      if (body.base_model && body.base_model.name) setText("job-base-model", body.base_model.name);
      var queued = body.status === "queued" && num(body.queue_position) !== null;
      if (queued) setText("job-queue-position", String(body.queue_position));
      toggle("job-queue-label", queued);
      toggle("job-queue", queued);
      if (body.started_at) setText("job-started", fmtTime(body.started_at));
      if (body.finished_at) setText("job-finished", fmtTime(body.finished_at));
      toggle("job-finished-label", !!body.finished_at);
      toggle("job-finished", !!body.finished_at);
      renderTimeline(body.transitions);
      var params = document.getElementById("job-params");
      if (params && body.params && typeof body.params === "object" && !params.getAttribute("data-json")) {
        params.textContent = JSON.stringify(body.params, null, 2);
        params.setAttribute("data-json", "1");
      }

      toggle("job-cancel", CANCELLABLE.indexOf(body.status) !== -1);
      toggle("job-retry", RETRYABLE.indexOf(body.status) !== -1);
      var model = document.getElementById("job-model");
      if (model) {
        var mv = body.model_version;
        if (mv && typeof mv === "object") mv = mv.id;
        var show = isFinal(body.status) && mv !== null && mv !== undefined && mv !== "";
        if (show) model.href = modelBase + encodeURIComponent(mv) + "/";
        model.hidden = !show;
      }
    }

    // Polling: every POLL_MS while the job runs, one more tick after it ends, then stop.
    var timer = null;
    var running = false;
    var finalTicks = 0;
    var firstTick = true;

    function tick() {
      timer = null;
      if (running) return;
      running = true;
      var drain = firstTick || (job !== null && isFinal(job.status));
      firstTick = false;
      var jobDone = getJSON(jobUrl).then(applyJob).catch(function () { /* retry next tick */ });
      var metricsDone = metricsUrl
        ? fetchSince(metricsUrl, metricState, function (r) { store.add(r); }, drain)
          .catch(function () { /* retry next tick */ })
          .then(function () { try { redraw(); } catch (e) { /* ignore */ } })
        : Promise.resolve();
      var logsDone = logsUrl
        ? fetchSince(logsUrl, logState, appendLogs, drain).catch(function () { /* retry next tick */ })
        : Promise.resolve();
      Promise.all([jobDone, metricsDone, logsDone]).then(after, after);
    }

    function after() {
      running = false;
      if (job && isFinal(job.status)) {
        finalTicks++;
        if (finalTicks >= (wasFinalAtLoad ? 1 : 2)) return; // stopped
      } else {
        finalTicks = 0;
      }
      schedule(POLL_MS);
    }

    function schedule(ms) {
      if (timer === null) timer = setTimeout(tick, ms);
    }

    // Cancel / retry: POST, then refresh at once and poll again (a retried job runs again).
    var actionError = document.getElementById("job-action-error");
    function bindAction(id, failText) {
      var button = document.getElementById(id);
      if (!button) return;
      button.addEventListener("click", function () {
        var url = button.getAttribute("data-url");
        if (!url || button.disabled) return;
        button.disabled = true;
        if (actionError) { actionError.textContent = ""; actionError.hidden = true; }
        postJSON(url).then(function (res) {
          if (res[0] >= 200 && res[0] < 300) {
            applyJob(res[1]);
          } else if (actionError) {
            actionError.textContent = (typeof hearthError === "function")
              ? hearthError(res[1], failText) : ((res[1] && res[1].detail) || failText);
            actionError.hidden = false;
          }
        }, function () {
          if (actionError) { actionError.textContent = failText; actionError.hidden = false; }
        }).then(function () {
          button.disabled = false;
          wasFinalAtLoad = false;
          finalTicks = 0;
          if (!running) { clearTimeout(timer); timer = null; tick(); }
        });
      });
    }
    bindAction("job-cancel", root.getAttribute("data-msg-cancel-failed") || "Cancel failed.");
    bindAction("job-retry", root.getAttribute("data-msg-retry-failed") || "Retry failed.");

    tick(); // from seq 0, so a reload picks up where the job is
  }

  // ---- compare view ----------------------------------------------------------------------

  // {"a": {"b": 1}, "c": [1, 2]} -> {"a.b": "1", "c": "[1,2]"} (arrays stay whole values).
  function flatten(value, prefix, out) {
    if (value !== null && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length) {
      Object.keys(value).forEach(function (k) { flatten(value[k], prefix ? prefix + "." + k : k, out); });
    } else if (prefix) {
      out[prefix] = JSON.stringify(value);
    }
    return out;
  }

  // A flattened value for the table: strings without their JSON quotes.
  function display(json) {
    try {
      var v = JSON.parse(json);
      return typeof v === "string" ? v : json;
    } catch (e) { return String(json); }
  }

  function specDiff(paramsList) {
    var flat = paramsList.map(function (p) { return flatten(p || {}, "", {}); });
    var keys = {};
    flat.forEach(function (f) { Object.keys(f).forEach(function (k) { keys[k] = true; }); });
    return Object.keys(keys).sort().filter(function (k) {
      var first = flat[0][k];
      return flat.some(function (f) { return f[k] !== first; });
    }).map(function (k) {
      return { key: k, values: flat.map(function (f) { return f[k]; }) };
    });
  }

  function initCompare(root) {
    var ids = (root.getAttribute("data-jobs") || "").split(",")
      .map(function (s) { return s.trim(); })
      .filter(function (s) { return /^\d+$/.test(s); });
    ids = ids.filter(function (id, i) { return ids.indexOf(id) === i; }).slice(0, 5);
    var base = root.getAttribute("data-api") || "/api/v1/jobs/";
    var stepLabel = label(root, "step", "step");
    var counts = { loss: 0, jobs: ids.length };
    window.hearthJobCharts = counts;
    if (ids.length < 2) return;

    var chartEl = document.getElementById("compare-loss");
    var chart = new LiveChart(chartEl, stepLabel, ids.map(function (id, i) {
      return { label: "#" + id, color: COLORS[i % COLORS.length] };
    }));
    watchResize([chart]);

    var jobs = {};
    var stores = {};
    var loads = ids.map(function (id) {
      var store = new MetricStore();
      stores[id] = store;
      var jobLoad = getJSON(base + id + "/").then(function (b) { jobs[id] = b; }).catch(function () { /* shown as missing */ });
      var metricLoad = fetchSince(base + id + "/metrics/", { seq: 0 }, function (r) { store.add(r); }, true)
        .catch(function () { /* partial curve */ });
      return Promise.all([jobLoad, metricLoad]);
    });

    Promise.all(loads).then(function () {
      try {
        var data = align(ids.map(function (id) { return stores[id].column("step", "loss"); }));
        chart.update(data);
        counts.loss = countPoints(data);
        ids.forEach(function (id) {
          var loss = stores[id].column("step", "loss");
          var ev = stores[id].column("eval", "eval_loss");
          setText("compare-last-loss-" + id, fmtNum(loss.ys.length ? loss.ys[loss.ys.length - 1] : null));
          setText("compare-best-eval-" + id, fmtNum(ev.ys.length ? Math.min.apply(null, ev.ys) : null));
          if (jobs[id] && jobs[id].status) {
            var cell = document.getElementById("compare-status-" + id);
            if (cell && !cell.textContent.trim()) cell.textContent = jobs[id].status;
          }
        });
        renderSpec(root, ids, jobs);
      } catch (e) { /* never throw */ }
    });
  }

  function renderSpec(root, ids, jobs) {
    var table = document.getElementById("compare-spec");
    if (!table) return;
    var loaded = ids.filter(function (id) { return jobs[id]; });
    var rows = specDiff(loaded.map(function (id) { return jobs[id].params; }));
    while (table.firstChild) table.removeChild(table.firstChild);
    var head = table.createTHead().insertRow();
    var th = document.createElement("th");
    th.textContent = label(root, "parameter", "Parameter");
    head.appendChild(th);
    loaded.forEach(function (id) {
      var c = document.createElement("th");
      c.textContent = "#" + id;
      head.appendChild(c);
    });
    var body = table.createTBody();
    if (!rows.length) {
      var cell = body.insertRow().insertCell();
      cell.colSpan = loaded.length + 1;
      cell.className = "muted";
      cell.textContent = label(root, "same", "The jobs have the same parameters.");
      return;
    }
    rows.forEach(function (row) {
      var tr = body.insertRow();
      tr.setAttribute("data-key", row.key);
      var k = document.createElement("th");
      k.setAttribute("scope", "row");
      var code = document.createElement("code");
      code.textContent = row.key;
      k.appendChild(code);
      tr.appendChild(k);
      row.values.forEach(function (v) {
        var td = tr.insertCell();
        td.textContent = v === undefined ? "—" : display(v);
        if (v === undefined) td.className = "muted";
      });
    });
  }

  function start() {
    try {
      var live = document.getElementById("job-live");
      if (live) initLive(live);
      var compare = document.getElementById("job-compare");
      if (compare) initCompare(compare);
    } catch (e) { /* never throw */ }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
