/* unrolled walkthrough: the page at "/walkthrough". Plain ES2020, no dependencies.
 *
 * GET /api/walkthrough/weights?cell=… gives the default weights and word vectors (the editors);
 * GET /api/walkthrough?cell=… the worked example; POST /api/walkthrough {cell, weights, embeddings, lr} the example
 * recomputed after an edit. Every shown number carries its exact value in data-value and its place in the JSON in
 * data-path (e.g. "forward.0.h.2"); #wt-loss holds loss.value. After each render document.body.dataset.rendered
 * counts renders and .renderMs is the time from the edit to the end of drawing.
 */
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const state = { cell: "rnn", defaults: null, data: null, rendered: 0 };
  let controller = null;

  const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ESC[c]);
  const attr = (v) => (v === null || v === undefined ? "" : String(v));
  const fmt = (v) => (v === null || v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(4));

  // Diverging background for a number (blue negative, red positive), light enough to read text on.
  function tint(v) {
    if (!Number.isFinite(v) || v === 0) return "transparent";
    const a = Math.min(1, Math.abs(v)) * 0.45;
    return v > 0 ? `rgba(214,96,77,${a.toFixed(3)})` : `rgba(67,147,195,${a.toFixed(3)})`;
  }

  // --- errors and requests ------------------------------------------------------------------------------

  function showError(err) {
    if (err && err.name === "AbortError") return;
    const box = $("error-box");
    const message = (err && err.message) || String(err);
    const named = err && err.field && !message.startsWith(`${err.field}:`);  // the message may name it already
    box.innerHTML = (named ? `<span class="field-name">${esc(err.field)}:</span>` : "") + esc(message);
    box.hidden = false;
    document.body.dataset.errors = String(Number(document.body.dataset.errors || 0) + 1);
  }

  const clearError = () => { $("error-box").hidden = true; };

  async function api(path, body, signal) {
    const init = { signal };
    if (body !== undefined) {
      init.method = "POST";
      init.headers = { "Content-Type": "application/json" };
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw Object.assign(new Error(`cannot reach the server (${e.message})`), { field: null });
    }
    if (!resp.ok) {
      let body_ = null;
      try { body_ = await resp.json(); } catch (_) { /* not JSON */ }
      const e = body_ && body_.error;
      const message = e ? (typeof e === "string" ? e : e.message) : `the server answered HTTP ${resp.status}`;
      throw Object.assign(new Error(message), { field: e && e.field, status: resp.status });
    }
    return resp.json();
  }

  function nextSignal() {
    if (controller) controller.abort();
    controller = new AbortController();
    return controller.signal;
  }

  // --- numbers --------------------------------------------------------------------------------------------

  /** One number: 4 decimals shown, the exact value in data-value and title, its JSON path in data-path. */
  function num(v, path, plain = false) {
    return `<span class="num-cell" data-path="${esc(path)}" data-value="${attr(v)}" title="${attr(v)}" ` +
      `style="background:${plain ? "transparent" : tint(v)}">${fmt(v)}</span>`;
  }

  function vec(values, path) {
    return `<span class="vec">${values.map((v, i) => num(v, `${path}.${i}`)).join("")}</span>`;
  }

  function vrow(name, values, path) {
    return `<div class="vrow"><span class="name" title="${esc(name)}">${name}</span>${vec(values, path)}</div>`;
  }

  /** A (G·H) vector as one row per gate block (a single row for the plain RNN). */
  function gateRows(name, values, path, gates, H) {
    if (gates.length <= 1) return vrow(name, values, path);
    return gates.map((g, k) => {
      const part = values.slice(k * H, (k + 1) * H);
      const cells = part.map((v, i) => num(v, `${path}.${k * H + i}`)).join("");
      return `<div class="vrow"><span class="name">${name} · ${esc(g)}</span><span class="vec">${cells}</span></div>`;
    }).join("");
  }

  function rowLabels(name, rows) {
    const d = state.data;
    const gates = d ? d.gate_names : ["h"];
    const H = d ? d.sizes.hidden : 4;
    if (name.startsWith("head")) return (d ? d.classes : ["positive", "negative"]).slice(0, rows);
    if (name === "embeddings") return state.defaults.words;
    return Array.from({ length: rows }, (_, k) => `${gates[Math.floor(k / H)] ?? "?"}${k % H}`);
  }

  /** A read-only matrix (or vector, shown as a column) of numbers. */
  function matrix(name, values, path) {
    const rows = Array.isArray(values[0]) ? values : values.map((v) => [v]);
    const column = !Array.isArray(values[0]);
    const labels = rowLabels(name, rows.length);
    const H = state.data ? state.data.sizes.hidden : 4;
    let s = `<table class="wmatrix">`;
    rows.forEach((row, i) => {
      const start = !name.startsWith("head") && name !== "embeddings" && i > 0 && i % H === 0;
      s += `<tr${start ? ' class="block-start"' : ""}><th>${esc(labels[i])}</th>` +
        row.map((v, j) => `<td>${num(v, column ? `${path}.${i}` : `${path}.${i}.${j}`)}</td>`).join("") + "</tr>";
    });
    return s + "</table>";
  }

  function block(title, body, caption = "") {
    return `<div class="wt-block"><h3>${title}</h3>${caption ? `<p class="caption">${caption}</p>` : ""}${body}</div>`;
  }

  // --- the editors ----------------------------------------------------------------------------------------

  const WEIGHT_TITLES = {
    weight_ih: "W_ih (G·H × D): input → gates",
    weight_hh: "W_hh (G·H × H): previous state → gates",
    bias_ih: "b_ih (G·H)",
    bias_hh: "b_hh (G·H)",
    head_weight: "W_out (C × H): state → class logits",
    head_bias: "b_out (C)",
  };

  function editor(name, values, defaults) {
    const rows = Array.isArray(values[0]) ? values : values.map((v) => [v]);
    const column = !Array.isArray(values[0]);
    const drows = Array.isArray(defaults[0]) ? defaults : defaults.map((v) => [v]);
    const labels = rowLabels(name, rows.length);
    const H = state.data ? state.data.sizes.hidden : 4;
    let s = `<table class="wmatrix" data-weight-table="${esc(name)}">`;
    rows.forEach((row, i) => {
      const start = !name.startsWith("head") && name !== "embeddings" && i > 0 && i % H === 0;
      s += `<tr${start ? ' class="block-start"' : ""}><th>${esc(labels[i])}</th>`;
      row.forEach((v, j) => {
        const index = column ? `${i}` : `${i},${j}`;
        const label = `${name}[${column ? i : `${i}][${j}`}]`;
        const changed = v !== drows[i][j] ? " changed" : "";
        s += `<td><input class="w${changed}" type="text" inputmode="decimal" spellcheck="false" value="${attr(v)}" ` +
          `data-weight="${esc(name)}" data-index="${index}" data-default="${attr(drows[i][j])}" ` +
          `aria-label="${esc(label)}" title="${esc(label)}"></td>`;
      });
      s += "</tr>";
    });
    return s + "</table>";
  }

  function buildEditors(weights, embeddings) {
    const d = state.defaults;
    let s = block("Word vectors x<sub>t</sub> (D = 4)", editor("embeddings", embeddings, d.embeddings),
      "“I”, “love”, “this”: what the cell reads at t = 1, 2, 3.");
    for (const name of Object.keys(d.weights)) {
      s += block(esc(WEIGHT_TITLES[name] || name), editor(name, weights[name], d.weights[name]));
    }
    $("wt-editors").innerHTML = s;
  }

  /** The editors' numbers as nested lists (an entry that is not a number is sent as null: the API names it). */
  function collect() {
    const out = { weights: {}, embeddings: null };
    const shapes = {};
    for (const input of document.querySelectorAll("#wt-editors input.w")) {
      const name = input.dataset.weight;
      const idx = input.dataset.index.split(",").map(Number);
      const raw = input.value.trim();
      const v = raw === "" ? null : Number(raw);
      const value = Number.isFinite(v) ? v : null;
      input.classList.toggle("invalid", value === null);
      input.classList.toggle("changed", value !== null && value !== Number(input.dataset.default));
      if (!shapes[name]) shapes[name] = idx.length === 1 ? [] : [];
      const arr = shapes[name];
      if (idx.length === 1) arr[idx[0]] = value;
      else {
        if (!arr[idx[0]]) arr[idx[0]] = [];
        arr[idx[0]][idx[1]] = value;
      }
    }
    for (const [name, arr] of Object.entries(shapes)) {
      if (name === "embeddings") out.embeddings = arr;
      else out.weights[name] = arr;
    }
    return out;
  }

  function setEditors(weights) {
    for (const input of document.querySelectorAll("#wt-editors input.w")) {
      const w = weights[input.dataset.weight];
      if (!w) continue;
      const idx = input.dataset.index.split(",").map(Number);
      input.value = String(idx.length === 1 ? w[idx[0]] : w[idx[0]][idx[1]]);
    }
  }

  // --- rendering ------------------------------------------------------------------------------------------

  const EQUATIONS = {
    rnn: "a_t = x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh      h_t = tanh(a_t)",
    gru: "r = σ(a_r)   z = σ(a_z)   n = tanh(x W_inᵀ + b_in + r ⊙ (h_{t−1} W_hnᵀ + b_hn))\nh_t = (1 − z) ⊙ n + z ⊙ h_{t−1}",
    lstm: "i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)\nc_t = f ⊙ c_{t−1} + i ⊙ g      h_t = o ⊙ tanh(c_t)",
  };

  function render(d) {
    state.data = d;
    const G = d.gate_names, H = d.sizes.hidden;
    const lstm = d.cell === "lstm";
    $("wt-equations").textContent = EQUATIONS[d.cell] || "";

    // Forward.
    $("wt-forward").innerHTML = d.forward.map((s, k) => {
      const p = `forward.${k}`;
      let body = vrow("x<sub>t</sub>", s.x, `${p}.x`) + vrow("h<sub>t−1</sub>", s.h_prev, `${p}.h_prev`);
      if (lstm) body += vrow("c<sub>t−1</sub>", s.c_prev, `${p}.c_prev`);
      body += gateRows("x W_ihᵀ+b_ih", s.input_projection, `${p}.input_projection`, G, H);
      body += gateRows("h W_hhᵀ+b_hh", s.hidden_projection, `${p}.hidden_projection`, G, H);
      body += gateRows("a<sub>t</sub>", s.preactivation, `${p}.preactivation`, G, H);
      for (const [name, values] of Object.entries(s.activations || {})) {
        body += vrow(esc(name), values, `${p}.activations.${name}`);
      }
      if (lstm) body += vrow("c<sub>t</sub>", s.c, `${p}.c`);
      body += vrow("<b>h<sub>t</sub></b>", s.h, `${p}.h`);
      body += vrow("head logits", s.head_logits, `${p}.head_logits`);
      body += vrow("P(class) here", s.head_probs, `${p}.head_probs`);
      return `<div class="wt-block" data-step="${s.t}"><h3>t = ${s.t} · “${esc(s.word)}”</h3>${body}</div>`;
    }).join("");

    // Loss.
    const L = d.loss;
    $("wt-lossblock").innerHTML = block("Head on h₃",
      vrow("logits", L.logits, "loss.logits") + vrow("ŷ = softmax", L.probs, "loss.probs") +
      vrow("target y", L.target, "loss.target") +
      `<div class="vrow"><span class="name">classes</span><span class="mono">${d.classes.map(esc).join(", ")}</span></div>`) +
      block("Loss", `<div class="vrow"><span class="name">L</span>${num(L.value, "loss.value", true)}</div>`,
        `−log ŷ<sub>${esc(d.classes[L.target_index])}</sub>: small when the model is confident and right.`);
    const loss = $("wt-loss");
    loss.textContent = L.value.toFixed(6);
    loss.dataset.value = attr(L.value);
    loss.title = attr(L.value);

    // Backward.
    const B = d.backward;
    $("wt-backward-head").innerHTML =
      block("∂L/∂logits = ŷ − y", vrow("∂L/∂logits", B.dlogits, "backward.dlogits")) +
      block("∂L/∂h₃ = ∂L/∂logits · W_out", vrow("∂L/∂h₃", B.dh_last, "backward.dh_last")) +
      Object.entries(B.head_grads).map(([name, v]) =>
        block(`∂L/∂${esc(name)}`, matrix(name, v, `backward.head_grads.${name}`))).join("");
    $("wt-backward").innerHTML = B.steps.map((s, k) => {
      const p = `backward.steps.${k}`;
      let body = vrow("∂L/∂h<sub>t</sub>", s.dh, `${p}.dh`);
      if (lstm) body += vrow("∂L/∂c<sub>t</sub>", s.dc, `${p}.dc`);
      body += gateRows("∂L/∂a<sub>t</sub>", s.dpreactivation, `${p}.dpreactivation`, G, H);
      body += vrow("∂L/∂x<sub>t</sub>", s.dx, `${p}.dx`);
      body += vrow("∂L/∂h<sub>t−1</sub>", s.dh_prev, `${p}.dh_prev`);
      if (lstm) body += vrow("∂L/∂c<sub>t−1</sub>", s.dc_prev, `${p}.dc_prev`);
      const grads = Object.entries(s.grads).map(([name, v]) =>
        `<div class="hint">${esc(name)}</div>${matrix(name, v, `${p}.grads.${name}`)}`).join("");
      body += `<details><summary class="hint">this step’s share of the gradients</summary>${grads}</details>`;
      return `<div class="wt-block" data-bstep="${s.t}"><h3>t = ${s.t} · “${esc(s.word)}”</h3>${body}</div>`;
    }).join("");
    $("wt-totals").innerHTML = Object.entries(B.totals).map(([name, v]) =>
      block(`∂L/∂${esc(name)}`, matrix(name, v, `backward.totals.${name}`))).join("");

    // Update.
    const U = d.update;
    $("wt-update").innerHTML =
      block("The step", `<div class="vrow"><span class="name">lr</span>${num(U.lr, "update.lr", true)}</div>` +
        `<div class="vrow"><span class="name">loss before</span>${num(U.loss_before, "update.loss_before", true)}</div>` +
        `<div class="vrow"><span class="name">loss after</span>${num(U.loss_after, "update.loss_after", true)}</div>` +
        vrow("logits after", U.logits_after, "update.logits_after") +
        vrow("ŷ after", U.probs_after, "update.probs_after"),
        U.loss_after < U.loss_before ? "The step lowered the loss." : "The step did not lower the loss (try a smaller lr).") +
      Object.entries(U.weights).map(([name, v]) =>
        block(`new ${esc(name)}`, matrix(name, v, `update.weights.${name}`))).join("");
    const after = $("wt-loss-after");
    after.textContent = U.loss_after.toFixed(6);
    after.dataset.value = attr(U.loss_after);
  }

  function markRendered(t0) {
    void document.body.offsetHeight;
    state.rendered += 1;
    document.body.dataset.renderMs = (performance.now() - t0).toFixed(1);
    document.body.dataset.cell = state.cell;
    document.body.dataset.rendered = String(state.rendered);
  }

  // --- flow -----------------------------------------------------------------------------------------------

  async function load(cell) {
    const t0 = performance.now();
    state.cell = cell;
    $("wt-cell").value = cell;
    const url = new URL(location.href);
    url.searchParams.set("cell", cell);
    history.replaceState(null, "", url);
    let defaults, data;
    try {
      const signal = nextSignal();
      [defaults, data] = await Promise.all([
        api(`/api/walkthrough/weights?cell=${encodeURIComponent(cell)}`, undefined, signal),
        api(`/api/walkthrough?cell=${encodeURIComponent(cell)}`, undefined, signal),
      ]);
    } catch (e) {
      showError(e);
      return;
    }
    clearError();
    state.defaults = {
      weights: defaults.weights,
      embeddings: defaults.embeddings || data.forward.map((s) => s.x),
      words: defaults.words || data.words,
    };
    state.data = data;
    buildEditors(defaults.weights, state.defaults.embeddings);
    $("wt-lr").value = String(data.update.lr);
    render(data);
    markRendered(t0);
  }

  async function recompute() {
    const t0 = performance.now();
    const { weights, embeddings } = collect();
    const body = { cell: state.cell, weights, embeddings };
    const lr = $("wt-lr").value.trim();
    if (lr !== "") body.lr = Number.isFinite(Number(lr)) ? Number(lr) : null;
    document.querySelector("main").classList.add("busy");
    let data;
    try {
      data = await api("/api/walkthrough", body, nextSignal());
    } catch (e) {
      if (e.name !== "AbortError") {
        document.querySelector("main").classList.remove("busy");
        showError(e);
        markRendered(t0);
      }
      return;
    }
    document.querySelector("main").classList.remove("busy");
    clearError();
    render(data);
    markRendered(t0);
  }

  $("wt-editors").addEventListener("change", (ev) => {
    if (ev.target.matches("input.w")) recompute();
  });
  $("wt-lr").addEventListener("change", recompute);
  $("wt-cell").addEventListener("change", () => load($("wt-cell").value));
  $("wt-reset").addEventListener("click", () => load(state.cell));
  $("wt-step").addEventListener("click", () => {
    if (!state.data) return;
    setEditors(state.data.update.weights);
    recompute();
  });

  const cell = params.get("cell");
  load(["rnn", "gru", "lstm"].includes(cell) ? cell : "rnn");
})();
