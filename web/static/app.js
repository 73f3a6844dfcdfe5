// Bounty dashboard: the only script. It keeps the task list's statuses
// live by polling /tasks/status every 5 s, and only while a task on the
// page is queued or running; it selects a shown secret on focus, copies
// it with its Copy button, and asks before a form marked data-confirm
// (deleting an integration) is sent, makes the live/test switch return
// to the page it was used on, on the new-integration form shows only
// the chosen helpdesk's setup steps and reply fields, on the agent form
// shows each verifier row only the settings of its chosen kind, and
// labels the cells of tables that become cards on a phone. Every page
// works without it: a secret can be selected and copied by hand, forms
// post as they are, and every vendor's steps and fields, and every kind's
// settings, are shown.
"use strict";

// A table marked cards-on-phone becomes one card per row below 600 px
// (app.css), each cell labelled by its data-label. Cells the page did not
// label are labelled here from the table's column headings (colspans
// counted); without this script those cards simply show no labels.
(function () {
  document.querySelectorAll("table.cards-on-phone").forEach(function (table) {
    var head = table.querySelector("thead tr:last-child");
    if (!head) return;
    var names = [];
    head.querySelectorAll("th, td").forEach(function (cell) {
      for (var i = 0; i < (cell.colSpan || 1); i++) names.push(cell.textContent.trim());
    });
    table.querySelectorAll("tbody tr, tfoot tr").forEach(function (row) {
      var col = 0;
      Array.prototype.forEach.call(row.cells, function (cell) {
        if (!cell.hasAttribute("data-label") && names[col] !== undefined) cell.setAttribute("data-label", names[col]);
        col += cell.colSpan || 1;
      });
    });
  });
})();

(function () {
  var ACTIVE = { queued: true, running: true };
  var INTERVAL_MS = 5000;

  function activeIds(table) {
    var ids = [];
    table.querySelectorAll("tr[data-task-id]").forEach(function (row) {
      var cell = row.querySelector("[data-status]");
      if (cell && ACTIVE[cell.textContent.trim()]) ids.push(row.getAttribute("data-task-id"));
    });
    return ids;
  }

  function poll(table) {
    var ids = activeIds(table);
    if (ids.length === 0) return;
    var url = table.getAttribute("data-poll") + "?ids=" + encodeURIComponent(ids.join(","));
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok && !r.redirected ? r.json() : null; })
      .then(function (body) {
        if (!body || !body.statuses) return;
        var changed = 0;
        Object.keys(body.statuses).forEach(function (id) {
          var row = table.querySelector('tr[data-task-id="' + id + '"]');
          var cell = row && row.querySelector("[data-status]");
          var status = body.statuses[id];
          if (cell && cell.textContent.trim() !== status) {
            cell.textContent = status;
            cell.className = "badge status-" + status;
            changed += 1;
          }
        });
        var live = document.querySelector("[data-live-status]");
        if (live && changed > 0) live.textContent = changed + " task status(es) updated.";
        if (activeIds(table).length > 0) setTimeout(function () { poll(table); }, INTERVAL_MS);
      })
      .catch(function () { setTimeout(function () { poll(table); }, INTERVAL_MS * 2); });
  }

  function showVendor(kind) {
    document.querySelectorAll("[data-vendor]").forEach(function (el) {
      el.hidden = el.getAttribute("data-vendor") !== kind;
      if (!el.hidden && el.tagName === "DETAILS") el.open = true;
    });
  }

  // A verifier row of the agent form: only the chosen kind's settings.
  function showKind(row, select) {
    row.querySelectorAll("[data-kind-fields]").forEach(function (el) {
      el.hidden = el.getAttribute("data-kind-fields") !== select.value;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-verifier-row]").forEach(function (row) {
      var select = row.querySelector("select[data-verifier-kind]");
      if (!select) return;
      showKind(row, select);
      select.addEventListener("change", function () { showKind(row, select); });
    });
    var kind = document.querySelector("select#kind");
    if (kind && document.querySelector("[data-vendor]")) {
      showVendor(kind.value);
      kind.addEventListener("change", function () { showVendor(kind.value); });
    }
    var table = document.querySelector("table[data-poll]");
    if (table && activeIds(table).length > 0) setTimeout(function () { poll(table); }, INTERVAL_MS);
    document.querySelectorAll("[data-select-on-focus]").forEach(function (el) {
      el.addEventListener("focus", function () { el.select(); });
    });
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var input = document.getElementById(button.getAttribute("data-copy"));
        var status = document.querySelector("[data-copy-status]");
        if (!input) return;
        input.focus();
        input.select();
        var say = function (text) { if (status) status.textContent = text; };
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(input.value).then(
            function () { say("Copied."); },
            function () { say("Selected: press Ctrl+C (or Cmd+C) to copy."); });
        } else {
          say("Selected: press Ctrl+C (or Cmd+C) to copy.");
        }
      });
    });
    // The live/test switch returns to the page it was used on.
    document.querySelectorAll("input[data-back]").forEach(function (input) {
      input.value = window.location.pathname + window.location.search;
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.getAttribute("data-confirm"))) e.preventDefault();
      });
    });
  });
})();
