// The paper account page, live: the server pushes the owner's events over /ws (signed in by the page's
// cookie); on an event of this account the page fetches its live part again, rendered by the server.
(function () {
  "use strict";
  var STREAMS = ["trade_updates", "account_updates", "signal_updates"];
  var live, state, refreshing = false, again = false, retry = 1000, connectedBefore = false, leaving = false;

  function setState(name, label) {
    state.dataset.state = name;
    state.textContent = label;
  }

  function refresh() {
    if (leaving) { return; }  // a form was sent: the next page shows its outcome
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(live.dataset.src, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (response.status === 401 || response.redirected) { window.location.reload(); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null) {
          live.innerHTML = html;  // the server's own escaped template
          live.dataset.updated = String(Date.now());
        }
      })
      .catch(function () { /* the next event or reconnect refreshes again */ })
      .then(function () {
        refreshing = false;
        if (again) { again = false; refresh(); }
      });
  }

  function concerns(message) {
    if (STREAMS.indexOf(message.stream) < 0) { return false; }
    var data = message.data || {};
    var id = data.account_id || (data.order && data.order.account_id) || (data.signal && data.signal.account_id);
    return String(id) === live.dataset.account;
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/ws");
    socket.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (message.stream === "authorization") {
        if (message.data.status === "authorized") {
          setState("live", "live");
          retry = 1000;
          if (connectedBefore) { refresh(); }  // anything that happened while the socket was down
          connectedBefore = true;
        } else {
          setState("offline", "signed out");
        }
      } else if (concerns(message)) {
        refresh();
      }
    };
    socket.onclose = function (event) {
      if (event.code === 1008) { setState("offline", "signed out"); return; }
      setState("offline", "reconnecting…");
      window.setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    live = document.getElementById("live");
    state = document.getElementById("live-state");
    document.addEventListener("submit", function () { leaving = true; });
    if (live && state && "WebSocket" in window) { connect(); }
  });
})();
