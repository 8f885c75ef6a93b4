// simbulk console: drag and drop for the upload form, and the run page's
// live view from server-sent events. Everything from the server is set
// as text (textContent), never as HTML, so a manifest cell stays text.
"use strict";

function uploadForm() {
  const drop = document.getElementById("drop");
  const input = document.getElementById("manifest");
  const name = document.getElementById("file-name");
  if (!drop || !input) return;
  const show = () => { name.textContent = input.files.length ? input.files[0].name : ""; };
  input.addEventListener("change", show);
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => {
    e.preventDefault();
    drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer.files.length) {
      input.files = e.dataTransfer.files;
      show();
    }
  });
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement("tr");
  cells.forEach(([text, cls]) => tr.appendChild(el("td", text, cls)));
  return tr;
}

function fill(id, rows) {
  const body = document.querySelector("#" + id + " tbody");
  if (!body) return;
  body.replaceChildren(...rows);
}

function setText(id, text) {
  const e = document.getElementById(id);
  if (e) e.textContent = String(text);
}

const states = ["pending", "in_flight", "accepted", "succeeded", "failed", "invalid", "skipped"];

function when(t) {
  const d = new Date(t);
  return isNaN(d) ? "" : d.toLocaleString();
}

function showRun(v) {
  const state = document.getElementById("state");
  state.textContent = v.state;
  state.className = "state " + v.state;
  setText("worker", v.worker ? "driven by " + v.worker : "nobody is driving it");
  const outcome = document.getElementById("outcome");
  outcome.textContent = v.last_outcome || "";
  outcome.hidden = !v.last_outcome;
  const bar = document.getElementById("bar");
  bar.max = Math.max(v.total, 1);
  bar.value = v.done;
  setText("done", v.done);
  setText("total", v.total);
  setText("succeeded", v.counts.succeeded);
  setText("failed", v.counts.failed);
  setText("invalid", v.counts.invalid);
  setText("skipped", v.counts.skipped);
  setText("rate", v.rows_per_second);
  setText("eta", v.eta_seconds ? v.eta_seconds + " s" : "–");
  document.querySelectorAll("#run-actions form[data-action]").forEach((f) => {
    f.hidden = !v.can[f.dataset.action];
  });
  fill("by-provider", Object.keys(v.by_provider).sort().map((p) =>
    row([[p]].concat(states.map((s) => [v.by_provider[p][s] || 0, "n"])))));
  const reports = document.getElementById("reports");
  if (v.reports.length) {
    reports.replaceChildren(...v.reports.map((name) => {
      const li = el("li");
      const a = el("a", name);
      a.href = "/runs/" + encodeURIComponent(v.run_id) + "/reports/" + encodeURIComponent(name);
      li.appendChild(a);
      return li;
    }));
  }
  fill("top-errors", v.top_errors.map((e) => row([[e.code, "code"], [e.count, "n"], [e.message]])));
  fill("failures", v.failures.map((f) => row([[f.row, "n"], [f.provider], [f.code, "code"], [f.message]])));
  fill("actions", v.actions.map((a) => row([[when(a.time)], [a.user], [a.action], [a.detail]])));
}

function runPage() {
  const run = document.getElementById("run");
  if (!run || !window.EventSource) return;
  const events = new EventSource("/api/runs/" + encodeURIComponent(run.dataset.run) + "/events");
  events.addEventListener("run", (e) => showRun(JSON.parse(e.data)));
}

document.addEventListener("DOMContentLoaded", () => {
  uploadForm();
  runPage();
});
