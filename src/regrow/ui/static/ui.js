// regrow dashboard: the only script. It polls a running run's JSON and sends the rollout
// buttons' moves; every page is readable without it.
"use strict";

function pollRun(box) {
  const url = box.dataset.poll;
  const tick = async () => {
    const answer = await fetch(url, { headers: { accept: "application/json" } });
    if (!answer.ok) return;
    const run = await answer.json();
    document.getElementById("run-status").textContent = run.status;
    document.getElementById("run-count").textContent = String(run.fitted.length);
    const body = document.getElementById("run-fitted");
    body.replaceChildren(...run.fitted.map((c) => {
      const row = document.createElement("tr");
      for (const text of [c.component, c.kind, Number(c.seconds).toPrecision(4), c.at, ""]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    }));
    if (run.done) { window.location.reload(); } else { setTimeout(tick, 1000); }
  };
  setTimeout(tick, 1000);
}

function rolloutButtons(form) {
  const token = form.elements.namedItem("token");
  token.value = sessionStorage.getItem("regrow-token") || "";
  const message = document.getElementById("rollout-message");
  for (const button of form.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", async () => {
      sessionStorage.setItem("regrow-token", token.value);
      const reason = form.elements.namedItem("reason").value;
      const url = `/api/ui/rollouts/${form.dataset.rollout}/${button.dataset.action}` +
        `?reason=${encodeURIComponent(reason)}`;
      const headers = token.value ? { authorization: `Bearer ${token.value}` } : {};
      const answer = await fetch(url, { method: "POST", headers });
      const body = await answer.json();
      if (answer.ok) {
        message.className = "message ok";
        message.textContent = `${button.dataset.action}: the rollout is now ${body.state}`;
        setTimeout(() => window.location.reload(), 400);
      } else {
        message.className = "message bad";
        message.textContent = `refused (${answer.status}): ${body.error}`;
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const run = document.getElementById("run");
  if (run && run.dataset.done === "no") pollRun(run);
  const form = document.getElementById("rollout-actions");
  if (form) rolloutButtons(form);
});
