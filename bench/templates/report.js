(function () {
  "use strict";
  // Leaderboard: a metric's header button sorts the systems under test (controls stay below).
  document.querySelectorAll("table.leaderboard").forEach(function (table) {
    table.querySelectorAll("button.sort").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var th = btn.closest("th");
        var metric = th.getAttribute("data-metric"), proto = th.getAttribute("data-protocol");
        var hib = th.getAttribute("data-higher-is-better") === "true";
        var best = btn.getAttribute("aria-sort") !== (hib ? "descending" : "ascending");
        table.querySelectorAll("button.sort").forEach(function (b) { b.removeAttribute("aria-sort"); });
        var desc = hib ? best : !best;
        btn.setAttribute("aria-sort", desc ? "descending" : "ascending");
        var body = table.querySelector("tbody.tested");
        if (!body) { return; }
        var sel = 'td[data-metric="' + CSS.escape(metric) + '"][data-protocol="' + CSS.escape(proto) + '"]';
        var rows = Array.prototype.slice.call(body.rows);
        function val(r) {
          var c = r.querySelector(sel), v = c ? parseFloat(c.getAttribute("data-value")) : NaN;
          return isNaN(v) ? null : v;
        }
        rows.sort(function (a, b) {
          var x = val(a), y = val(b);
          if (x === null || y === null) { return (x === null) - (y === null); }
          return desc ? y - x : x - y;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });

  // Listening grid: data from the sidecar script (window.BENCH_GRID), one page at a time.
  var root = document.getElementById("grid-root");
  if (!root) { return; }
  var data = window.BENCH_GRID;
  var statuses = root.querySelectorAll(".grid-status");
  if (!data) {
    statuses[0].textContent = "The grid's data file (" + root.getAttribute("data-src") +
      ") did not load: keep it beside the report.";
    return;
  }
  var table = root.querySelector("table.grid"), head = table.tHead, body = table.tBodies[0];
  var filter = root.querySelector("input.grid-filter"), sortSel = root.querySelector("select.grid-sort");
  var sizeSel = root.querySelector("select.grid-size");
  var prevs = root.querySelectorAll("button.grid-prev"), nexts = root.querySelectorAll("button.grid-next");
  var state = { page: 0, rows: data.rows.slice() };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function fmt(v) { return v === null || v === undefined ? "–" : Number(v.toPrecision(4)).toString(); }
  function thumb(code) {
    var c = el("canvas", "thumb");
    var w = data.thumb[0], h = data.thumb[1];
    c.width = w; c.height = h;
    c.setAttribute("role", "img"); c.setAttribute("aria-label", "mel spectrogram");
    var bytes = atob(code), img = c.getContext("2d").createImageData(w, h);
    for (var i = 0; i < w * h; i++) {
      var b = bytes.charCodeAt(i >> 1), lv = (i & 1) ? (b & 15) : (b >> 4), t = lv / 15;
      img.data[4 * i] = Math.round(255 * Math.min(1, 0.1 + 1.5 * t));
      img.data[4 * i + 1] = Math.round(255 * Math.max(0, 1.6 * t - 0.6));
      img.data[4 * i + 2] = Math.round(255 * (0.25 + 0.5 * Math.sin(Math.PI * t) * (1 - t)));
      img.data[4 * i + 3] = 255;
    }
    c.getContext("2d").putImageData(img, 0, 0);
    return c;
  }
  function player(src, label) {
    var a = el("audio");
    a.controls = true; a.preload = "none"; a.src = src;
    a.setAttribute("aria-label", label);
    return a;
  }
  function cellOf(row, sys) { var c = row[4][sys]; return c && c.length ? c[0] : null; }

  // sort options: prompt order, id, caption, then every system x per-clip column
  var options = [["order", "prompt order"], ["id", "prompt id"], ["caption", "caption"]];
  data.systems.forEach(function (s, i) {
    data.scores.forEach(function (sc, j) { options.push(["s:" + i + ":" + j, s + ": " + sc]); });
  });
  options.forEach(function (o) {
    ["asc", "desc"].forEach(function (d) {
      if (o[0] === "order" && d === "desc") { return; }
      var opt = el("option", null, o[1] + (o[0] === "order" ? "" : (d === "asc" ? " ↑" : " ↓")));
      opt.value = o[0] + "|" + d; sortSel.appendChild(opt);
    });
  });

  var hr = head.rows[0];
  hr.appendChild(el("th", null, "prompt"));
  hr.appendChild(el("th", null, "dataset reference"));
  data.systems.forEach(function (s) { var th = el("th", null, s); th.scope = "col"; hr.appendChild(th); });

  function apply() {
    var q = filter.value.trim().toLowerCase();
    var rows = data.rows.filter(function (r) {
      return !q || r[0].toLowerCase().indexOf(q) >= 0 || r[1].toLowerCase().indexOf(q) >= 0;
    });
    var parts = sortSel.value.split("|"), key = parts[0], sign = parts[1] === "desc" ? -1 : 1;
    if (key === "id" || key === "caption") {
      var k = key === "id" ? 0 : 1;
      rows.sort(function (a, b) { return sign * (a[k] < b[k] ? -1 : a[k] > b[k] ? 1 : 0); });
    } else if (key.indexOf("s:") === 0) {
      var sj = key.split(":"), si = +sj[1], sc = +sj[2];
      var v = function (r) { var c = cellOf(r, si); return c ? c[4][sc] : null; };
      rows.sort(function (a, b) {
        var x = v(a), y = v(b);
        if (x === null || y === null) { return (x === null) - (y === null); }
        return sign * (x - y);
      });
    }
    state.rows = rows; state.page = 0; draw();
  }
  function draw() {
    var size = +sizeSel.value, pages = Math.max(1, Math.ceil(state.rows.length / size));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * size, shown = state.rows.slice(start, start + size);
    body.textContent = "";
    shown.forEach(function (r) {
      var tr = el("tr");
      var p = el("td", "prompt");
      p.appendChild(el("span", "pid", r[0]));
      p.appendChild(el("span", "caption", r[1]));
      tr.appendChild(p);
      var ref = el("td", "reference");
      if (r[2]) { ref.appendChild(player(r[2], "reference of " + r[0])); }
      else { ref.appendChild(el("span", "muted", "none")); }
      if (r[3]) { ref.appendChild(thumb(r[3])); }
      tr.appendChild(ref);
      data.systems.forEach(function (s, i) {
        var td = el("td", "cell");
        td.setAttribute("data-system", s);
        r[4][i].forEach(function (c) {
          var box = el("div", "clip");
          if (c[2]) { box.appendChild(player(c[1], s + ", " + r[0] + (c[0] ? ", seed " + c[0] : ""))); }
          else if (c[1]) { box.appendChild(el("span", "missing", "missing: " + c[1])); }
          if (c[3]) { box.appendChild(thumb(c[3])); }
          var parts = [];
          if (r[4][i].length > 1 && c[0]) { parts.push("seed " + c[0]); }
          data.scores.forEach(function (sc, j) { parts.push(sc + " " + fmt(c[4][j])); });
          if (parts.length) { box.appendChild(el("div", "scores", parts.join(" · "))); }
          td.appendChild(box);
        });
        if (!r[4][i].length) { td.appendChild(el("span", "muted", "–")); }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    var text = state.rows.length ? "prompts " + (start + 1) + "–" + (start + shown.length) + " of " +
      state.rows.length + (state.rows.length < data.rows.length ? " (filtered from " + data.rows.length + ")" : "") +
      ", page " + (state.page + 1) + " of " + pages : "no prompt matches the filter";
    statuses.forEach(function (s) { s.textContent = text; });
    prevs.forEach(function (b) { b.disabled = state.page === 0; });
    nexts.forEach(function (b) { b.disabled = state.page >= pages - 1; });
  }
  filter.addEventListener("input", apply);
  sortSel.addEventListener("change", apply);
  sizeSel.addEventListener("change", draw);
  function go(step, button) {
    state.page += step; draw();
    if (button.closest(".grid-pager")) { root.scrollIntoView(); }
  }
  prevs.forEach(function (b) { b.addEventListener("click", function () { go(-1, b); }); });
  nexts.forEach(function (b) { b.addEventListener("click", function () { go(1, b); }); });
  apply();
})();
