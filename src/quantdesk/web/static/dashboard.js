// quantdesk dashboard: draws the charts a page embeds as JSON, and the small helpers of its forms.
(function () {
  "use strict";

  function drawCharts() {
    document.querySelectorAll("[data-figure]").forEach(function (target) {
      var source = document.getElementById(target.dataset.figure);
      if (!source || !window.Plotly) { return; }
      var figure = JSON.parse(source.textContent);
      var config = { responsive: true, displaylogo: false };
      window.Plotly.newPlot(target, figure.data, figure.layout, config).then(function () {
        target.dataset.drawn = "true";
        if (target.dataset.openForm) { openCellOnClick(target); }
      });
    });
  }

  // A click on a heat-map cell runs that combination's backtest (the form posts its parameters).
  function openCellOnClick(target) {
    var form = document.getElementById(target.dataset.openForm);
    if (!form || !form.querySelector("[name=csrf_token]").value) { return; }
    target.on("plotly_click", function (event) {
      var point = event.points && event.points[0];
      if (!point || point.z === null || point.z === undefined) { return; }
      form.querySelector("[name=params]").value =
        target.dataset.x + "=" + point.x + " " + target.dataset.y + "=" + point.y;
      form.submit();
    });
  }

  function copyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var text = document.getElementById(button.dataset.copy).textContent;
        var done = function () { button.textContent = "Copied"; };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, function () { selectText(button.dataset.copy); });
        } else {
          selectText(button.dataset.copy);
        }
      });
    });
  }

  function selectText(id) {
    var range = document.createRange();
    range.selectNodeContents(document.getElementById(id));
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  // The strategy select fills the parameters field with that strategy's defaults.
  function strategyDefaults() {
    var source = document.getElementById("strategy-defaults");
    if (!source) { return; }
    var defaults = JSON.parse(source.textContent);
    document.querySelectorAll("select[data-defaults-for]").forEach(function (select) {
      var field = document.getElementById(select.dataset.defaultsFor);
      if (!field) { return; }
      select.addEventListener("change", function () { field.value = defaults[select.value] || ""; });
    });
  }

  function exampleButtons() {
    document.querySelectorAll("[data-fill]").forEach(function (button) {
      button.addEventListener("click", function () {
        var field = document.getElementById(button.dataset.fill);
        field.value = button.dataset.value;
        field.focus();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    copyButtons();
    strategyDefaults();
    exampleButtons();
  });
})();
