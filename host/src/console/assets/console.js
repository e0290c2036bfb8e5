// The console's only script. Every page works without it; it adds what a form cannot do alone:
// the instance name checked while it is typed, a search box over long lists of remote values, and
// live progress of a running job or run.
"use strict";

function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

function checkNames() {
  for (const input of document.querySelectorAll("input[data-check-name]")) {
    const error = document.getElementById(input.id + "-error");
    const check = debounce(async () => {
      const name = input.value.trim();
      if (!name) { error.textContent = ""; input.removeAttribute("aria-invalid"); return; }
      try {
        const answer = await fetch(input.dataset.checkName + "?name=" + encodeURIComponent(name),
          { credentials: "same-origin", headers: { "Accept": "application/json" } });
        if (!answer.ok) return;
        const result = await answer.json();
        if (input.value.trim() !== name) return;
        error.textContent = result.ok ? "" : result.message;
        if (result.ok) input.removeAttribute("aria-invalid"); else input.setAttribute("aria-invalid", "true");
      } catch (_) { /* the server checks again on submit */ }
    }, 250);
    input.addEventListener("input", check);
  }
}

function filterOptions(selects, text) {
  const wanted = text.trim().toLowerCase();
  for (const select of selects) {
    for (const option of select.options) {
      const keep = !wanted || option.value === "" || option.selected ||
        option.textContent.toLowerCase().includes(wanted);
      option.hidden = !keep;
      option.disabled = !keep && !option.selected;
    }
  }
}

function searchableLists() {
  for (const box of document.querySelectorAll("[data-filter-for]")) {
    const section = document.getElementById(box.dataset.filterFor);
    const input = box.querySelector("input[data-filter]");
    box.hidden = false;
    input.addEventListener("input", () => filterOptions(section.querySelectorAll("select"), input.value));
  }
  for (const select of document.querySelectorAll("select[data-searchable]")) {
    const input = document.createElement("input");
    input.type = "search";
    input.className = "select-filter";
    input.setAttribute("aria-label", "Search the choices of " + (select.labels[0]?.textContent.trim() || select.name));
    input.placeholder = "Search…";
    select.before(input);
    input.addEventListener("input", () => filterOptions([select], input.value));
  }
}

function followJob() {
  const job = document.querySelector("#job[data-running='true']");
  if (!job) return;
  const progress = document.getElementById("job-progress");
  const bar = document.getElementById("job-bar");
  const poll = async () => {
    try {
      const answer = await fetch("/jobs/" + job.dataset.job + "/status", { credentials: "same-origin" });
      // Signed out, or the job is gone: the page itself says so.
      if (answer.redirected || !answer.ok) { window.location.reload(); return; }
      {
        const state = await answer.json();
        if (!state.running) { window.location.reload(); return; }
        if (state.total) {
          progress.textContent = state.done + " of " + state.total + " records";
          bar.max = state.total;
          bar.value = state.done;
        }
      }
    } catch (_) { /* try again */ }
    setTimeout(poll, 700);
  };
  setTimeout(poll, 300);
}

// A running run's status and counts are updated in place; the page is reloaded once, when it
// ends, to list its records.
function followRun() {
  const status = document.querySelector("[data-run-status]");
  if (!status) return;
  const counts = document.getElementById("run-counts");
  const poll = async () => {
    try {
      const answer = await fetch(status.dataset.runStatus, { credentials: "same-origin" });
      if (answer.redirected || !answer.ok) { window.location.reload(); return; }
      const run = await answer.json();
      if (run.status !== "running") { window.location.reload(); return; }
      counts.textContent = ["created", "updated", "unchanged", "reconciled", "pulled", "queued", "skipped", "held", "failed"]
        .map(k => run[k] + " " + k).join("  ");
    } catch (_) { /* try again */ }
    setTimeout(poll, 1000);
  };
  setTimeout(poll, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  checkNames();
  searchableLists();
  followJob();
  followRun();
});
