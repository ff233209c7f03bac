// stsward dashboard: sortable tables, and the charts of a domain page drawn with uPlot from
// the JSON in <script type="application/json" id="chart-data">. No other site is contacted.
"use strict";

(function () {
  function cellValue(row, index, type) {
    var cell = row.cells[index];
    if (!cell) return "";
    var raw = cell.getAttribute("data-sort");
    if (raw === null) raw = cell.textContent.trim();
    if (type === "number") {
      var n = parseFloat(raw);
      return isNaN(n) ? -Infinity : n;
    }
    return raw.toLowerCase();
  }

  function makeSortable(table) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, index) {
      var type = th.getAttribute("data-type");
      if (!type) return;
      th.setAttribute("tabindex", "0");
      function sort() {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a, index, type), y = cellValue(b, index, type);
          if (x < y) return ascending ? -1 : 1;
          if (x > y) return ascending ? 1 : -1;
          return 0;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), makeSortable);

  // Filter boxes: a row stays when its text holds every word typed.
  Array.prototype.forEach.call(document.querySelectorAll("input.table-filter"), function (box) {
    var table = document.getElementById(box.getAttribute("data-table"));
    if (!table || !table.tBodies[0]) return;
    box.addEventListener("input", function () {
      var words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        var text = row.textContent.toLowerCase();
        row.hidden = !words.every(function (w) { return text.indexOf(w) >= 0; });
      });
    });
  });

  // The policy editor checks the text as it is typed: the same preview the Check button
  // asks for, fetched from this site, its findings swapped into the page.
  var editor = document.getElementById("editor");
  var text = document.getElementById("policy-text");
  if (editor && text && window.fetch && window.DOMParser) {
    var timer = null;
    var sequence = 0;
    text.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var mine = ++sequence;
        var body = new URLSearchParams(new FormData(editor));
        body.set("action", "preview");
        // getAttribute: the buttons named "action" shadow the form's own .action.
        fetch(editor.getAttribute("action"), {
          method: "POST",
          body: body,
          credentials: "same-origin",
          headers: { "Content-Type": "application/x-www-form-urlencoded" }
        }).then(function (r) { return r.text(); }).then(function (html) {
          if (mine !== sequence) return;
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("lint-result");
          var shown = document.getElementById("lint-result");
          if (fresh && shown) shown.innerHTML = fresh.innerHTML;
        }).catch(function () {});
      }, 300);
    });
  }

  var dataElement = document.getElementById("chart-data");
  if (!dataElement || typeof uPlot === "undefined") return;
  var data;
  try {
    data = JSON.parse(dataElement.textContent);
  } catch (e) {
    return;
  }
  var style = getComputedStyle(document.documentElement);
  var fg = style.getPropertyValue("--fg").trim() || "#1b1f24";
  var line = style.getPropertyValue("--line").trim() || "#d8dde3";
  var ok = style.getPropertyValue("--ok").trim() || "#1a7f37";
  var bad = style.getPropertyValue("--bad").trim() || "#c0262d";
  var charts = {};
  window.stswardCharts = charts;

  function width(el) {
    return Math.max(260, Math.min(el.clientWidth || 320, 900));
  }

  function axes(labels) {
    var x = { stroke: fg, grid: { stroke: line } };
    if (labels) {
      x.values = function (u, splits) {
        return splits.map(function (i) { return labels[i] === undefined ? "" : labels[i]; });
      };
      x.splits = function () { return labels.map(function (_, i) { return i; }); };
    }
    return [x, { stroke: fg, grid: { stroke: line } }];
  }

  function empty(el) {
    var p = document.createElement("p");
    p.className = "empty";
    p.textContent = "No data in these 30 days.";
    el.appendChild(p);
  }

  function draw(name, opts, series) {
    var el = document.getElementById("chart-" + name);
    if (!el) return;
    if (!series[0] || series[0].length === 0) { empty(el); return; }
    opts.width = width(el);
    opts.height = 220;
    charts[name] = new uPlot(opts, series, el);
  }

  var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 64] }) : undefined;

  function categorical(name, block, keys, colours) {
    var labels = block.labels || [];
    var x = labels.map(function (_, i) { return i; });
    var series = [{}];
    var values = [x];
    keys.forEach(function (k, i) {
      series.push({ label: k, stroke: colours[i], fill: colours[i] + "99", paths: bars, points: { show: false } });
      values.push(block[k] || []);
    });
    draw(name, {
      scales: {
        x: { time: false, range: [-0.5, Math.max(labels.length - 0.5, 0.5)] },
        // Bars start at zero, so their heights compare.
        y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } }
      },
      axes: axes(labels),
      series: series,
      legend: { show: true }
    }, values);
  }

  if (data.sessions) {
    draw("sessions", {
      axes: axes(null),
      series: [
        {},
        { label: "successful", stroke: ok, width: 2 },
        { label: "failed", stroke: bad, width: 2 }
      ]
    }, [data.sessions.x || [], data.sessions.successful || [], data.sessions.failed || []]);
  }
  if (data.by_result_type) categorical("by_result_type", data.by_result_type, ["failed"], [bad]);
  if (data.by_organization) categorical("by_organization", data.by_organization, ["successful", "failed"], [ok, bad]);
  if (data.by_receiving_mx) categorical("by_receiving_mx", data.by_receiving_mx, ["failed"], [bad]);
})();
