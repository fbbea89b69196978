// Hover: a guide at the same date on every timeline, and that date's summary (the table row's title).
(function () {
  var box = document.getElementById("hover"), section = document.getElementById("timeline");
  var charts = Array.prototype.slice.call(document.querySelectorAll("svg.timeline"));
  var tips = {};
  document.querySelectorAll("table.dates tr[data-date]").forEach(function (tr) { tips[tr.dataset.date] = tr.title; });
  var dates = Array.prototype.map.call(document.querySelectorAll("svg rect.status"), function (r) { return r.dataset.date; });
  function show(i, event) {
    charts.forEach(function (svg) {
      var g = svg.querySelector(".guide"), x = +svg.dataset.left + (i + 0.5) * +svg.dataset.step;
      g.setAttribute("x1", x); g.setAttribute("x2", x); g.setAttribute("visibility", "visible");
    });
    box.textContent = tips[dates[i]] || dates[i];
    box.hidden = false;
    var area = section.getBoundingClientRect(), left = event.clientX - area.left + 14;
    box.style.left = Math.min(left, area.width - box.offsetWidth - 8) + "px";
    box.style.top = (event.clientY - area.top + 14) + "px";
  }
  function hide() { box.hidden = true; charts.forEach(function (svg) { svg.querySelector(".guide").setAttribute("visibility", "hidden"); }); }
  charts.forEach(function (svg) {
    svg.addEventListener("mousemove", function (event) {
      var p = svg.createSVGPoint(); p.x = event.clientX; p.y = event.clientY;
      var x = p.matrixTransform(svg.getScreenCTM().inverse()).x;
      var i = Math.floor((x - +svg.dataset.left) / +svg.dataset.step);
      if (i >= 0 && i < dates.length) { show(i, event); } else { hide(); }
    });
    svg.addEventListener("mouseleave", hide);
  });
})();
