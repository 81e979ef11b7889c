/* Shepherd dashboard: live updates without reloads.
 *
 * One WebSocket to /api/events (authenticated by the session cookie), reconnected with backoff,
 * resumed from the last event seen. Two ways the page follows it:
 *  - every element with data-execution-status="<id>" shows that execution's status; updates are
 *    coalesced and applied once per animation frame, however many events arrive;
 *  - every element with data-live-fragment="<url>" is a region the server renders again: it is
 *    re-fetched when a matching event arrives (data-live-on="any" | "schedule" | "new-execution",
 *    data-live-subject="<id>", or data-live-types="<token> ..." where a token is an event type,
 *    "agent.changed", or a type and what happened, "agent.changed:created"; narrowed to one
 *    agent by data-live-agent), at most once per throttle window, and every data-live-every-ms
 *    while the tab is visible. The fragment replaces the region, attributes included, so a
 *    finished run stops its own polling. A fleet agent's row and the health page's canary and
 *    alerts sections are such regions of their own.
 * Nothing here is needed to act: every action is a plain form post.
 */
(function () {
  "use strict";

  var THROTTLE_MS = 1000;
  var SUBJECT_THROTTLE_MS = 250;
  var MAX_BACKOFF_MS = 10000;
  var LAG_SAMPLES = 20000;

  var statusEl = document.getElementById("live-status");
  var stats = {
    state: "connecting", messages: 0, events: 0, gaps: 0, reconnects: 0, applied: 0,
    refreshes: 0, cursor: {}, lags: [], maxLagMs: 0
  };
  window.shepherdLive = stats;
  if (!statusEl) { return; }  // sign-in and error pages have no live connection

  function setState(state, text) {
    stats.state = state;
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }

  /* -- execution statuses, applied once per frame -------------------------------------- */
  var pending = new Map();   // execution id -> {to, atMs}
  var known = new Map();     // execution id -> {to, receivedAt}
  var frame = 0;

  function noteStatus(ev) {
    var to = ev.data && ev.data.to;
    if (!to) { return; }
    pending.set(ev.subject, { to: to, atMs: ev.at_ms });
    known.set(ev.subject, { to: to, receivedAt: Date.now() });
    if (!frame) { frame = requestAnimationFrame(applyStatuses); }
  }

  function setBadge(el, to) {
    if (el.textContent === to) { return; }
    el.textContent = to;
    el.className = el.className.replace(/\bstatus-\S+/, "status-" + to);
  }

  function statusElements() {
    var index = new Map();
    document.querySelectorAll("[data-execution-status]").forEach(function (el) {
      var id = el.getAttribute("data-execution-status");
      if (!index.has(id)) { index.set(id, []); }
      index.get(id).push(el);
    });
    return index;
  }

  function applyStatuses() {
    frame = 0;
    var now = Date.now();
    var index = statusElements();
    pending.forEach(function (change, id) {
      (index.get(id) || []).forEach(function (el) { setBadge(el, change.to); });
      var lag = now - change.atMs;
      stats.applied += 1;
      stats.maxLagMs = Math.max(stats.maxLagMs, lag);
      stats.lags.push(lag);
      if (stats.lags.length > LAG_SAMPLES) { stats.lags.shift(); }
    });
    pending.clear();
  }

  /* Statuses learnt after a fragment was requested are newer than what it shows. */
  function reapply(since) {
    var index = statusElements();
    known.forEach(function (change, id) {
      if (change.receivedAt >= since) {
        (index.get(id) || []).forEach(function (el) { setBadge(el, change.to); });
      }
    });
  }

  /* -- regions re-rendered by the server ----------------------------------------------- */
  var regions = new Map();  // element id -> {inFlight, pending, lastAt, timer, dirty}

  function regionState(id) {
    if (!regions.has(id)) {
      regions.set(id, { inFlight: false, pending: false, lastAt: 0, timer: 0, dirty: false });
    }
    return regions.get(id);
  }

  function throttleOf(el) {
    return el.dataset.liveSubject ? SUBJECT_THROTTLE_MS : THROTTLE_MS;
  }

  function refresh(id) {
    var el = document.getElementById(id);
    if (!el || !el.dataset.liveFragment) { return; }
    var st = regionState(id);
    if (document.hidden) { st.dirty = true; return; }
    if (st.inFlight) { st.pending = true; return; }
    var wait = st.lastAt + throttleOf(el) - Date.now();
    if (wait > 0) {
      if (!st.timer) {
        st.timer = setTimeout(function () { st.timer = 0; refresh(id); }, wait);
      }
      return;
    }
    st.inFlight = true;
    st.lastAt = Date.now();
    var since = st.lastAt;
    fetch(el.dataset.liveFragment, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        if (r.status === 401) { toSignIn(); throw new Error("signed out"); }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) { replaceRegion(id, html); reapply(since); stats.refreshes += 1; })
      .catch(function () { /* the next event or tick tries again */ })
      .finally(function () {
        st.inFlight = false;
        if (st.pending) { st.pending = false; refresh(id); }
      });
  }

  function replaceRegion(id, html) {
    var old = document.getElementById(id);
    if (!old) { return; }
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    var fresh = template.content.getElementById(id);
    if (!fresh) { return; }
    var active = document.activeElement;
    var focusId = active && old.contains(active) ? active.id : "";
    old.replaceWith(fresh);
    if (focusId) {
      var again = document.getElementById(focusId);
      if (again) { again.focus(); }
    }
  }

  function liveRegions() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-live-fragment]"));
  }

  /* What happened, for a "type:what" token: agent and alert changes, circuit transitions,
     recovery actions, canary colours. */
  function whatHappened(ev) {
    var data = ev.data || {};
    return data.change || data.kind || data.action || data.state || "";
  }

  function typeMatches(el, ev) {
    if (el.dataset.liveAgent && el.dataset.liveAgent !== ev.agent) { return false; }
    var what = ev.type + ":" + whatHappened(ev);
    return el.dataset.liveTypes.split(/\s+/).some(function (token) {
      return token === ev.type || token === what;
    });
  }

  function matches(el, ev) {
    var data = ev.data || {};
    if (el.dataset.liveSubject) { return ev.subject === el.dataset.liveSubject; }
    if (el.dataset.liveTypes) { return typeMatches(el, ev); }
    switch (el.dataset.liveOn) {
      case "any": return true;
      case "schedule": return Boolean(data.schedule_id);
      case "new-execution":
        return ev.type === "execution.transition" && data.from === null &&
          (!el.dataset.liveAgent || el.dataset.liveAgent === ev.agent) &&
          (!el.dataset.liveSchedule || el.dataset.liveSchedule === data.schedule_id) &&
          (!el.dataset.liveStatus || el.dataset.liveStatus === data.to);
      default: return false;
    }
  }

  function refreshAll() { liveRegions().forEach(function (el) { refresh(el.id); }); }

  setInterval(function () {
    if (document.hidden) { return; }
    var now = Date.now();
    liveRegions().forEach(function (el) {
      var every = Number(el.dataset.liveEveryMs || 0);
      if (every && now - regionState(el.id).lastAt >= every) { refresh(el.id); }
    });
  }, 500);

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { return; }
    regions.forEach(function (st, id) {
      if (st.dirty) { st.dirty = false; refresh(id); }
    });
  });

  /* -- the connection ------------------------------------------------------------------ */
  var backoff = 500;

  function toSignIn() {
    location.href = "/signin?next=" + encodeURIComponent(location.pathname + location.search);
  }

  function resumeQuery() {
    var parts = Object.keys(stats.cursor).map(function (k) { return k + ":" + stats.cursor[k]; });
    return parts.length ? "?after=" + encodeURIComponent(parts.join(",")) : "";
  }

  function onEvents(events) {
    var regionsNow = liveRegions();
    events.forEach(function (ev) {
      stats.events += 1;
      if (ev.type === "execution.transition") { noteStatus(ev); }
      regionsNow.forEach(function (el) { if (matches(el, ev)) { refresh(el.id); } });
    });
  }

  function onMessage(message) {
    var msg;
    try { msg = JSON.parse(message.data); } catch (e) { return; }
    stats.messages += 1;
    if (msg.cursor && (msg.kind !== "hello" || !Object.keys(stats.cursor).length)) {
      stats.cursor = msg.cursor;
    }
    if (msg.kind === "events") { onEvents(msg.events || []); }
    if (msg.kind === "gap") { stats.gaps += 1; refreshAll(); }
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + location.host + "/api/events" + resumeQuery());
    var opened = false;
    ws.onopen = function () {
      opened = true;
      backoff = 500;
      setState("live", "live");
      // Anything that changed between rendering the page (or losing the connection) and this
      // subscription is not in the stream: read it once.
      refreshAll();
    };
    ws.onmessage = onMessage;
    ws.onclose = function (event) {
      if (event.code === 4401) { toSignIn(); return; }
      if (!opened) {
        fetch("/signin/check", { credentials: "same-origin" })
          .then(function (r) { if (r.status === 401) { toSignIn(); } })
          .catch(function () { /* offline: keep trying */ });
      }
      stats.reconnects += 1;
      setState("reconnecting", "reconnecting…");
      setTimeout(connect, backoff + Math.random() * backoff / 2);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    };
  }

  connect();
}());
