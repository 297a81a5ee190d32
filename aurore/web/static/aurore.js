// Aurore's pages work without JavaScript (plain form posts). With it: texts stream in as the model writes them
// (Écrire, Comparer), and the chart of "Pourquoi ce mot ?" follows the sliders. No library, nothing from a CDN.
"use strict";

function formJson(form, extra) {
  const values = Object.fromEntries(new FormData(form).entries());
  return JSON.stringify({ ...values, ...extra });
}

// POST a JSON body to /api/generate/stream and call onEvent(name, data) for each Server-Sent Event.
async function streamTexts(body, signal, onEvent) {
  const response = await fetch("/api/generate/stream", {
    method: "POST", headers: { "Content-Type": "application/json" }, body, signal,
  });
  if (!response.ok) {
    const data = await response.json().catch(() => ({ error: `Erreur ${response.status}` }));
    onEvent("error", data);
    return;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const name = (block.match(/^event: (.*)$/m) || [])[1] || "message";
      const data = (block.match(/^data: (.*)$/m) || [])[1];
      if (data) onEvent(name, JSON.parse(data));
    }
  }
}

// A probability as French writes it, as aurore/text/french.py's format_percent: "2,7 %", "< 0,1 %", "0 %".
function percent(share) {
  if (share === 0) return "0\u00a0%";
  if (share < 0.0005) return "<\u00a00,1\u00a0%";
  return (100 * share).toFixed(1).replace(".", ",") + "\u00a0%";
}

function showMessage(id, message) {
  const element = document.getElementById(id);
  element.textContent = message || "";
  element.hidden = !message;
}

const showError = (message) => showMessage("error", message);
const showStatus = (message) => showMessage("status", message);

// A form whose results stream in; `run(form, signal)` starts the requests and resolves when they are all done.
function streamingForm(form, run) {
  const stop = form.querySelector("[data-stop]");
  let controller = null;
  stop.addEventListener("click", () => controller && controller.abort());
  form.addEventListener("submit", async (event) => {
    if (!window.ReadableStream || !window.TextDecoderStream) return; // old browser: the plain post
    const live = form.querySelector("[data-live]");
    if (live && !live.checked) return; // Écrire: the participant's own route, unless "en direct" is ticked
    event.preventDefault();
    if (controller) controller.abort(); // a new submit replaces the texts being written
    const mine = new AbortController();
    controller = mine;
    showError("");
    showStatus("");
    stop.hidden = false;
    try {
      await run(form, mine.signal);
    } catch (error) {
      if (error.name !== "AbortError") showError("La connexion au serveur a été coupée : réessayez.");
      else if (controller === mine) showStatus("Arrêté à votre demande : les textes s'arrêtent où ils en étaient.");
    } finally {
      if (controller === mine) stop.hidden = true;
    }
  });
}

function writePage(form, signal) {
  const results = document.getElementById("results");
  results.replaceChildren();
  results.hidden = false;
  const title = document.createElement("h2");
  title.textContent = "Début : « " + form.prompt.value.trim() + " »";
  const seed = document.createElement("p");
  seed.className = "seed";
  results.append(title, seed);
  const articles = [];
  const seedUsed = form.seed.value || String(Math.floor(Math.random() * 2 ** 31)); // shown even if stopped
  seed.innerHTML = 'Graine : <span id="seed-used"></span> (le texte n° <var>n</var> utilise la graine + '
    + '<var>n</var> − 1 : recopiez-la dans le champ « graine » pour le retrouver)';
  seed.querySelector("span").textContent = seedUsed;
  return streamTexts(formJson(form, { seed: seedUsed }), signal, (name, data) => {
    if (name === "error") return showError(data.error);
    data.texts.forEach((text, i) => {
      if (!articles[i]) {
        articles[i] = document.createElement("article");
        articles[i].className = "text";
        results.append(articles[i]);
      }
      articles[i].textContent = text;
    });
    if (name === "done") results.dataset.done = "1";
  });
}

function comparePage(form, signal) {
  const columns = document.getElementById("columns");
  columns.hidden = false;
  const seed = form.seed.value || String(Math.floor(Math.random() * 2 ** 31)); // one seed for every column
  const shown = document.getElementById("compare-seed");
  shown.hidden = false;
  shown.querySelector("span").textContent = seed;
  const all = [...columns.querySelectorAll("[data-model]")];
  const errors = [];
  return Promise.all(all.map((column) => {
    const text = column.querySelector(".text");
    const error = column.querySelector(".error");
    text.textContent = "…";
    error.hidden = true;
    return streamTexts(formJson(form, { model: column.dataset.model, seed, num_texts: 1, compare: 1 }), signal, (name, data) => {
      if (name === "error") {
        error.textContent = data.error;
        error.hidden = false;
        errors.push(data.error);
      } else {
        text.textContent = data.texts[0];
      }
    });
  })).then(() => {
    // The same error in every column is the form's (a temperature out of range): said once, above, no empty columns.
    if (errors.length === all.length && errors.every((message) => message === errors[0])) {
      showError(errors[0]);
      columns.hidden = true;
      shown.hidden = true;
    }
  });
}

function explainPage(form) {
  const chart = document.getElementById("chart");
  let pending = null;
  async function redraw() {
    for (const name of ["temperature", "top_k", "top_p"]) {
      document.getElementById(name + "-value").textContent = form[name].value;
    }
    if (!form.prompt.value.trim()) return;
    const response = await fetch("/api/next-tokens", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: formJson(form),
    });
    const data = await response.json();
    if (!response.ok) return showError(data.error);
    showError("");
    chart.hidden = false;
    document.getElementById("chart-prompt").textContent = data.prompt;
    const top = Math.max(...data.tokens.map((t) => Math.max(t.before, t.after)));
    document.getElementById("tokens").replaceChildren(...data.tokens.map((token) => {
      const item = document.createElement("li");
      item.className = token.after === 0 ? "removed" : "kept";
      const button = document.createElement("button");
      button.type = "button";
      button.title = "Ajouter « " + token.text + " » au texte";
      const label = document.createElement("span");
      label.className = "token";
      label.textContent = token.text.replaceAll(" ", "␣");
      const bars = ["before", "after"].map((kind) => {
        const bar = document.createElement("span");
        bar.className = "bar " + kind;
        bar.style.width = (100 * token[kind] / top).toFixed(1) + "%";
        return bar;
      });
      const numbers = document.createElement("span");
      numbers.className = "numbers";
      numbers.textContent = `${percent(token.before)} → ${percent(token.after)}`
        + (token.after === 0 ? " (retiré)" : "");
      button.append(label, ...bars, numbers);
      button.addEventListener("click", () => {
        form.prompt.value += token.text;
        redraw();
      });
      item.append(button);
      return item;
    }));
  }
  form.addEventListener("input", () => {
    clearTimeout(pending);
    pending = setTimeout(redraw, 80); // a slider fires many events: ask once it rests
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    redraw();
  });
}

// The footer names the model the form will ask: it follows the select, not only the last answer.
function footerFollowsModel() {
  const model = document.getElementById("model");
  const label = document.getElementById("model-label");
  if (model && label) model.addEventListener("change", () => { label.textContent = model.selectedOptions[0].text; });
}

document.addEventListener("DOMContentLoaded", () => {
  footerFollowsModel();
  const generate = document.querySelector("form[data-stream=generate]");
  if (generate) streamingForm(generate, writePage);
  const compare = document.querySelector("form[data-stream=compare]");
  if (compare) streamingForm(compare, comparePage);
  const explain = document.querySelector("form[data-explain]");
  if (explain) explainPage(explain);
});
