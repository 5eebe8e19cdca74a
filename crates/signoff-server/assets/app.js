// Signoff's web inbox: keyboard shortcuts, live updates and edit checks.
// Served by the binary; no libraries, nothing fetched from elsewhere.
(function () {
  "use strict";
  var page = document.body.getAttribute("data-page");

  function typing(event) {
    var t = event.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable);
  }

  // ------------------------------------------------------------ inbox
  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#rows tr.row"));
  }
  var selected = 0;
  function select(index) {
    var all = rows();
    if (all.length === 0) { return; }
    selected = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (row, i) { row.classList.toggle("selected", i === selected); });
    all[selected].scrollIntoView({ block: "nearest" });
  }
  function selectedRow() { return rows()[selected]; }

  function refreshRows() {
    var table = document.getElementById("inbox");
    if (!table) { return; }
    var keep = selectedRow() && selectedRow().getAttribute("data-id");
    var before = {};
    rows().forEach(function (row) { before[row.getAttribute("data-id")] = true; });
    var query = "status=" + encodeURIComponent(table.getAttribute("data-status")) +
      "&label=" + encodeURIComponent(table.getAttribute("data-label"));
    fetch("/ui/inbox/rows?" + query, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        document.getElementById("rows").innerHTML = html;
        var index = 0;
        rows().forEach(function (row, i) {
          var id = row.getAttribute("data-id");
          if (!before[id]) { row.classList.add("fresh"); }
          if (id === keep) { index = i; }
        });
        select(index);
      });
  }

  var pending = null;
  function listen(onChange) {
    if (!window.EventSource) { return; }
    var source = new EventSource("/ui/events");
    function soon() {
      // Several changes in a burst make one refresh.
      if (pending) { return; }
      pending = setTimeout(function () { pending = null; onChange(); }, 150);
    }
    source.addEventListener("change", soon);
    // A change made after this page was rendered but before the stream
    // (re)connected sent no event here: look once whenever it opens.
    source.addEventListener("open", soon);
  }

  if (page === "inbox") {
    select(0);
    listen(refreshRows);
    document.getElementById("rows").addEventListener("click", function (event) {
      var row = event.target.closest("tr.row");
      if (row && event.target.tagName !== "A") { window.location = row.getAttribute("data-href"); }
    });
  }

  // ------------------------------------------------------------ request
  var editForm = document.getElementById("edit-form");
  function showEdit() {
    if (!editForm) { return; }
    editForm.hidden = false;
    document.getElementById("edited-action").focus();
  }
  var toggle = document.getElementById("edit-toggle");
  if (toggle) { toggle.addEventListener("click", showEdit); }
  if (editForm) {
    // Checked before it is sent: a JSON object, or nothing goes.
    editForm.addEventListener("submit", function (event) {
      var text = document.getElementById("edited-action").value;
      var problem = null;
      try {
        var value = JSON.parse(text);
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
          problem = "The edited action must be a JSON object ({...}).";
        }
      } catch (error) {
        problem = "Not valid JSON: " + error.message;
      }
      var box = document.getElementById("edit-error");
      if (problem) {
        event.preventDefault();
        box.textContent = problem;
        box.hidden = false;
      } else {
        box.hidden = true;
      }
    });
  }
  if (page === "request") {
    // The page follows decisions taken elsewhere: reload when this
    // request's state may have changed, unless the reviewer is typing.
    var status = document.getElementById("status");
    if (status && status.textContent === "pending") {
      listen(function () {
        if (document.activeElement && typing({ target: document.activeElement })) { return; }
        fetch(window.location.pathname, { credentials: "same-origin" })
          .then(function (response) { return response.ok ? response.text() : null; })
          .then(function (html) {
            if (html && html.indexOf('id="status">pending<') === -1) { window.location.reload(); }
          });
      });
    }
  }

  // ------------------------------------------------------------ keys
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (typing(event)) {
      if (event.key === "Escape") { event.target.blur(); }
      return;
    }
    var link;
    switch (event.key) {
      case "j":
        if (page === "inbox") { select(selected + 1); }
        else if ((link = document.getElementById("next"))) { window.location = link.href; }
        break;
      case "k":
        if (page === "inbox") { select(selected - 1); }
        else if ((link = document.getElementById("prev"))) { window.location = link.href; }
        break;
      case "Enter":
        if (page === "inbox" && selectedRow()) { window.location = selectedRow().getAttribute("data-href"); }
        break;
      case "a":
        if (page === "inbox" && selectedRow()) { window.location = selectedRow().getAttribute("data-href") + "#approve"; }
        else if (document.getElementById("approve-comment")) { document.getElementById("approve-comment").focus(); }
        break;
      case "r":
        if (page === "inbox" && selectedRow()) { window.location = selectedRow().getAttribute("data-href") + "#reject"; }
        else if (document.getElementById("reject-reason")) { document.getElementById("reject-reason").focus(); }
        break;
      case "e":
        showEdit();
        break;
      case "g":
        window.location = "/ui/inbox";
        break;
      default:
        return;
    }
    event.preventDefault();
  });

  // Arriving with #approve or #reject (from the inbox's a/r): focus it.
  if (page === "request") {
    if (window.location.hash === "#approve" && document.getElementById("approve-comment")) {
      document.getElementById("approve-comment").focus();
    } else if (window.location.hash === "#reject" && document.getElementById("reject-reason")) {
      document.getElementById("reject-reason").focus();
    }
  }
})();
