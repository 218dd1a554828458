/* unrolled explorer: the page at "/". Plain ES2020, no dependencies.
 *
 * It asks /api/models for the models the server holds and shows the view of the chosen model's kind:
 *   classifier         /api/explain (the "unrolled-trace" JSON), drawn per step; /api/match on a unit click
 *   language_model     /api/explain (next-token guesses per step) and /api/generate (streamed NDJSON)
 *   forecaster         /api/forecast, drawn as an SVG plot
 *   translator         /api/translate and /api/explain (attention weights)
 *   speech_recognizer  /api/transcribe of an uploaded WAV
 *
 * For tests: every drawn number carries its exact JSON value in data-value; after each render of a trace,
 * document.body.dataset.rendered counts renders, .renderMs is the time from the debounce firing to the end of
 * drawing (layout included), and .renderedText / .renderedView say what was drawn.
 */
"use strict";

(() => {
  const DEBOUNCE_MS = 150;
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);

  const state = {
    models: [],
    match: false,
    model: null, // the chosen entry of /api/models
    rendered: 0,
    trace: null, // the classifier trace on screen
    hoverUnit: null,
    pinnedUnit: null,
  };

  const DEFAULT_TEXT = {
    classifier: "a gorgeous, witty, seductive movie",
    language_model: "the cat sat on the mat",
    translator: "",
  };

  // --- small helpers ------------------------------------------------------------------------------------

  const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ESC[c]);

  /** A number as the attribute text that parses back to the same double (JSON null -> ""). */
  const attr = (v) => (v === null || v === undefined ? "" : String(v));

  function fixed(v, digits = 3) {
    if (v === null || v === undefined || !Number.isFinite(v)) return "–";
    return v.toFixed(digits);
  }

  function sci(v, digits = 1) {
    if (v === null || v === undefined || !Number.isFinite(v)) return "–";
    return v === 0 ? "0" : v.toExponential(digits);
  }

  /** Tokens shown visibly: whitespace and control characters get a glyph. */
  function shownToken(tok) {
    if (tok === " ") return "␣";
    if (tok === "\n") return "↵";
    if (tok === "\t") return "⇥";
    if (tok === "") return "∅";
    return tok.replace(/\n/g, "↵");
  }

  // Diverging scale (blue −1, white 0, red +1): a palette of 201 steps, looked up.
  const DIVERGING = (() => {
    const neg = [33, 102, 172], mid = [247, 247, 247], pos = [178, 24, 43];
    const out = [];
    for (let i = 0; i <= 200; i++) {
      const t = i / 100 - 1;
      const [a, b, f] = t < 0 ? [mid, neg, -t] : [mid, pos, t];
      const c = a.map((x, k) => Math.round(x + (b[k] - x) * f));
      out.push(`rgb(${c[0]},${c[1]},${c[2]})`);
    }
    return out;
  })();

  function divColor(v, scale = 1) {
    if (v === null || !Number.isFinite(v)) return "#ddd";
    const t = Math.max(-1, Math.min(1, v / scale));
    return DIVERGING[Math.round((t + 1) * 100)];
  }

  /** Sequential 0..1: white to dark blue, as [r, g, b]. */
  function seqRGB(t) {
    t = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0));
    const lo = [255, 255, 255], mid = [107, 174, 214], hi = [8, 48, 107];
    const [a, b, f] = t < 0.5 ? [lo, mid, t * 2] : [mid, hi, (t - 0.5) * 2];
    return a.map((x, k) => Math.round(x + (b[k] - x) * f));
  }
  const seqColor = (t) => `rgb(${seqRGB(t).join(",")})`;

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

  function clearError() {
    $("error-box").hidden = true;
  }

  class ApiError extends Error {
    constructor(message, field, status) {
      super(message);
      this.name = "ApiError";
      this.field = field || null;
      this.status = status;
    }
  }

  /** The ApiError of a failed response: {"error": {"field", "message"}}, or FastAPI's {"detail": ...}. */
  async function responseError(resp) {
    let body = null;
    try {
      body = await resp.json();
    } catch (_) {
      /* not JSON */
    }
    if (body && body.error) {
      const e = body.error;
      return new ApiError(typeof e === "string" ? e : e.message || JSON.stringify(e), e.field, resp.status);
    }
    if (body && body.detail) {
      const d = Array.isArray(body.detail) ? body.detail[0] : body.detail;
      if (d && typeof d === "object") {
        const loc = Array.isArray(d.loc) ? d.loc.filter((x) => x !== "body").join(".") : null;
        return new ApiError(d.msg || JSON.stringify(d), loc, resp.status);
      }
      return new ApiError(String(d), null, resp.status);
    }
    return new ApiError(`the server answered HTTP ${resp.status} ${resp.statusText}`, null, resp.status);
  }

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
      throw new ApiError(`cannot reach the server (${e.message})`);
    }
    if (!resp.ok) throw await responseError(resp);
    return resp.json();
  }

  /** A request slot: starting a new request aborts the previous one, so only the latest is drawn. */
  function latest() {
    let controller = null;
    return () => {
      if (controller) controller.abort();
      controller = new AbortController();
      return controller.signal;
    };
  }

  /** Calls fn after the input stops changing for DEBOUNCE_MS; fn gets the performance.now() it fired at. */
  function debounced(fn) {
    let timer = null;
    return () => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(performance.now()), DEBOUNCE_MS);
    };
  }

  /** Marks a finished render for tests: forces layout, then records the time since `t0`. */
  function markRendered(view, text, t0) {
    void document.body.offsetHeight; // layout happens here, inside the measured time
    const ms = performance.now() - t0;
    state.rendered += 1;
    const ds = document.body.dataset;
    ds.renderMs = ms.toFixed(1);
    ds.renderedView = view;
    ds.renderedText = text;
    ds.rendered = String(state.rendered);
  }

  // --- bars -----------------------------------------------------------------------------------------------

  /** One labelled bar, 0..1 of the track; `data` becomes data-* attributes. */
  function barHTML(label, fraction, numText, cls, data, extra = "") {
    const w = Number.isFinite(fraction) ? Math.max(0, Math.min(1, fraction)) * 100 : 0;
    const attrs = Object.entries(data).map(([k, v]) => ` data-${k}="${esc(attr(v))}"`).join("");
    const na = Number.isFinite(fraction) ? "" : " na";
    const nolbl = label === "" ? " nolbl" : "";
    return `<div class="bar-line${na}${nolbl}${extra}"${attrs} title="${esc(label)}: ${esc(numText)}">` +
      (label === "" ? "" : `<span class="lbl">${esc(label)}</span>`) +
      `<span class="bar-track"><span class="bar-fill ${cls}" style="width:${w.toFixed(2)}%"></span></span>` +
      `<span class="num">${esc(numText)}</span></div>`;
  }

  /** A log-scale axis for positive values: [lo, hi] in powers of ten covering them. */
  function logDomain(values) {
    const pos = values.filter((v) => Number.isFinite(v) && v > 0);
    if (!pos.length) return null;
    let lo = Math.floor(Math.log10(Math.min(...pos)));
    let hi = Math.ceil(Math.log10(Math.max(...pos)));
    if (hi <= lo) hi = lo + 1;
    return [lo, hi];
  }

  // ========================================================================================================
  // classifier
  // ========================================================================================================

  const classifier = (() => {
    const input = $("text-input");
    const traceEl = $("trace");
    const tooltip = $("tooltip");
    const nextSignal = latest();
    const nextMatch = latest();

    async function run(t0) {
      const text = input.value;
      if (!text.trim()) {
        clear();
        return;
      }
      const model = state.model.name;
      let trace;
      try {
        trace = await api("/api/explain", { model, text }, nextSignal());
      } catch (e) {
        showError(e);
        markRendered("error", text, t0);
        return;
      }
      if (state.model.name !== model) return;
      clearError();
      render(trace);
      markRendered("classifier", text, t0);
    }

    function clear() {
      traceEl.innerHTML = "";
      $("cls-summary").innerHTML = "";
      $("cls-notes").innerHTML = "";
      $("grad-summary").textContent = "";
      state.trace = null;
    }

    function render(trace) {
      state.trace = trace;
      const T = trace.tokens.length;
      const dirs = trace.h[0].length;
      const H = trace.h[0][0].length;
      const U = dirs * H;
      const classes = trace.classes;
      const gateNames = Object.keys(trace.gates || {});
      const bidi = dirs > 1;
      const dirName = (d) => (bidi ? (d === 0 ? "fwd" : "bwd") : "");

      // Summary: prediction, probabilities, loss, model.
      const probs = classes.map((c, k) =>
        barHTML(c, trace.probabilities[k], fixed(trace.probabilities[k]), `c${k % 5}`,
          { class: c, value: trace.probabilities[k] })).join("");
      const m = trace.model;
      $("cls-summary").innerHTML =
        `<div><span class="k">prediction</span><span id="cls-predicted" class="big-label" ` +
        `data-value="${esc(trace.predicted_label)}">${esc(trace.predicted_label)}</span></div>` +
        `<div id="cls-probabilities" class="bars" style="min-width:240px">${probs}</div>` +
        `<div><span class="k">loss L = −log P(${esc(classes[trace.label])})</span>` +
        `<span class="mono" id="cls-loss" data-value="${attr(trace.loss)}">${fixed(trace.loss, 4)}</span></div>` +
        `<div class="hint">${esc(m.cell)}, ${m.num_layers} layer${m.num_layers > 1 ? "s" : ""}` +
        `${m.bidirectional ? ", bidirectional" : ""}, hidden ${m.hidden_size}, ${esc(m.pooling)} pooling</div>`;
      $("cls-notes").innerHTML = (trace.notes || []).map((n) => `<li>${esc(n)}</li>`).join("");

      // Columns: t | token | h_t heatmap | P(class) | gradient | one per gate.
      const cols = ["2.2em", "minmax(4em, 7em)", "minmax(180px, 1fr)", "11.5em", bidi ? "10.5em" : "9em"]
        .concat(gateNames.map(() => (bidi ? "8em" : "6.5em")));
      traceEl.style.setProperty("--trace-cols", cols.join(" "));

      const gradAll = [];
      trace.grad_h.forEach((row) => row.forEach((g) => gradAll.push(g)));
      const dom = logDomain(gradAll);
      const gradFrac = (g) => (dom && g > 0 ? (Math.log10(g) - dom[0]) / (dom[1] - dom[0]) : g === 0 ? 0 : NaN);

      const heatCols = `grid-template-columns:repeat(${U},1fr)`;
      const parts = [];
      const gateHeads = gateNames.map((g) => `<div title="mean activation of the ${esc(g)} gate over the units">${esc(g)} gate<br><span class="hint">mean</span></div>`);
      const dirAxis = bidi
        ? `<div class="heat-axis halves"><span>fwd 0…${H - 1}</span><span>bwd 0…${H - 1}</span></div>`
        : `<div class="heat-axis"><span>unit 0</span><span>${U - 1}</span></div>`;
      const gradAxis = dom
        ? `<div class="heat-axis"><span>1e${dom[0]}</span><span>1e${dom[1]}</span></div>` : "";
      parts.push(`<div class="trow thead"><div class="t">t</div><div>token</div>` +
        `<div>h<sub>t</sub> (${U} units)${dirAxis}</div><div>P(class) if it ended here</div>` +
        `<div>‖∂L/∂h<sub>t</sub>‖ (log)${gradAxis}</div>${gateHeads.join("")}</div>`);

      for (let t = 0; t < T; t++) {
        const tok = trace.tokens[t];
        const unk = trace.unknown && trace.unknown[t];
        let heat = "";
        for (let d = 0; d < dirs; d++) {
          const hrow = trace.h[t][d];
          for (let i = 0; i < H; i++) {
            const v = hrow[i];
            heat += `<div class="hcell" data-step="${t}" data-unit="${d * H + i}" data-value="${attr(v)}" ` +
              `style="background:${divColor(v)}"></div>`;
          }
        }
        const pp = trace.prefix_probabilities[t];
        const pbars = classes.map((c, k) =>
          barHTML(c, pp[k], fixed(pp[k]), `c${k % 5}`, { step: t, class: c, value: pp[k] },
            " pbar")).join("");
        let gbars = "";
        for (let d = 0; d < dirs; d++) {
          const g = trace.grad_h[t][d];
          gbars += barHTML(bidi ? dirName(d) : "", gradFrac(g), sci(g), "grad",
            { step: t, dir: d, value: g }, " gbar short");
        }
        const gates = gateNames.map((name) => {
          let s = "";
          for (let d = 0; d < dirs; d++) {
            const v = trace.gates[name][t][d];
            s += barHTML(bidi ? dirName(d) : "", v, fixed(v, 2), "gate", { gate: name, step: t, dir: d, value: v },
              " gatebar short");
          }
          return `<div class="bars">${s}</div>`;
        }).join("");
        parts.push(`<div class="trow" data-step="${t}"><div class="t">${t + 1}</div>` +
          `<div class="tok${unk ? " unk" : ""}" data-step="${t}" title="${esc(tok)}${unk ? " (not in the vocabulary: read as <unk>)" : ""}">${esc(tok)}</div>` +
          `<div class="heat" style="${heatCols}" data-step="${t}">${heat}</div>` +
          `<div class="bars">${pbars}</div><div class="bars">${gbars}</div>${gates}</div>`);
      }
      traceEl.innerHTML = parts.join("");
      const gs = trace.gradient || {};
      $("grad-summary").textContent = gs.summary
        ? `Gradient flow: ${gs.summary}. The loss is taken against “${classes[trace.label]}”.` : "";

      const unit = state.pinnedUnit !== null && state.pinnedUnit < U ? state.pinnedUnit : null;
      if (unit === null) state.pinnedUnit = null;
      state.hoverUnit = null;
      highlight(unit, null);
    }

    // --- following one unit ---

    function unitValues(u) {
      const tr = state.trace;
      const H = tr.h[0][0].length;
      const d = Math.floor(u / H), i = u % H;
      return tr.h.map((row) => row[d][i]);
    }

    function unitName(u) {
      const tr = state.trace;
      const H = tr.h[0][0].length;
      if (tr.h[0].length === 1) return `unit ${u}`;
      return `unit ${u} (${u < H ? "forward" : "backward"} ${u % H})`;
    }

    function highlight(u, step) {
      const prev = traceEl.querySelectorAll(".hcell.col-hl");
      prev.forEach((c) => c.classList.remove("col-hl"));
      traceEl.querySelectorAll(".hcell.col-pin").forEach((c) => c.classList.remove("col-pin"));
      if (state.pinnedUnit !== null) {
        traceEl.querySelectorAll(`.hcell[data-unit="${state.pinnedUnit}"]`).forEach((c) => c.classList.add("col-pin"));
      }
      if (u === null || !state.trace) {
        drawUnitChart(null, null);
        return;
      }
      traceEl.querySelectorAll(`.hcell[data-unit="${u}"]`).forEach((c) => c.classList.add("col-hl"));
      drawUnitChart(u, step);
    }

    function drawUnitChart(u, step) {
      const svg = $("unit-chart");
      const title = $("unit-title");
      if (u === null) {
        svg.innerHTML = "";
        svg.removeAttribute("data-unit");
        title.textContent = "Hidden unit";
        $("unit-hint").hidden = false;
        return;
      }
      $("unit-hint").hidden = true;
      const values = unitValues(u);
      const tokens = state.trace.tokens;
      const W = 280, Hh = 120, L = 26, R = 8, Tp = 8, B = 22;
      const n = values.length;
      const x = (t) => L + (n === 1 ? (W - L - R) / 2 : (t * (W - L - R)) / (n - 1));
      const y = (v) => Tp + ((1 - Math.max(-1, Math.min(1, v))) / 2) * (Hh - Tp - B);
      let s = `<line class="axis" x1="${L}" y1="${Tp}" x2="${L}" y2="${Hh - B}"/>` +
        `<line class="zero" x1="${L}" y1="${y(0)}" x2="${W - R}" y2="${y(0)}"/>` +
        `<text x="${L - 4}" y="${y(1) + 4}" text-anchor="end">+1</text>` +
        `<text x="${L - 4}" y="${y(0) + 4}" text-anchor="end">0</text>` +
        `<text x="${L - 4}" y="${y(-1) + 4}" text-anchor="end">−1</text>`;
      const pts = values.map((v, t) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
      s += `<polyline class="line" points="${pts}"/>`;
      values.forEach((v, t) => {
        s += `<circle cx="${x(t).toFixed(1)}" cy="${y(v).toFixed(1)}" r="${t === step ? 4.5 : 3}"` +
          `${t === step ? ' class="cur"' : ""} data-step="${t}" data-value="${attr(v)}"><title>${esc(tokens[t])}: ${fixed(v, 4)}</title></circle>`;
      });
      const every = Math.max(1, Math.ceil(n / 8));
      tokens.forEach((tok, t) => {
        if (t % every === 0 || t === n - 1) {
          const shown = tok.length > 8 ? tok.slice(0, 7) + "…" : tok;
          s += `<text x="${x(t).toFixed(1)}" y="${Hh - 6}" text-anchor="middle">${esc(shown)}</text>`;
        }
      });
      svg.innerHTML = s;
      svg.dataset.unit = String(u);
      title.textContent = `${unitName(u)}${state.pinnedUnit === u ? " (pinned)" : ""}`;
    }

    function showTooltip(cell, ev) {
      const t = Number(cell.dataset.step), u = Number(cell.dataset.unit);
      const v = Number(cell.dataset.value);
      tooltip.textContent = `${unitName(u)} · t=${t + 1} “${state.trace.tokens[t]}” · h = ${v.toFixed(6)}`;
      tooltip.dataset.unit = String(u);
      tooltip.dataset.step = String(t);
      tooltip.dataset.value = cell.dataset.value;
      tooltip.hidden = false;
      const r = cell.getBoundingClientRect();
      const px = ev && Number.isFinite(ev.clientX) ? ev.clientX : r.left + r.width / 2;
      const left = Math.min(window.innerWidth - tooltip.offsetWidth - 8, px + 12);
      tooltip.style.left = `${Math.max(4, left)}px`;
      tooltip.style.top = `${r.bottom + 6}px`;
    }

    traceEl.addEventListener("mouseover", (ev) => {
      const cell = ev.target.closest && ev.target.closest(".hcell");
      if (!cell || !state.trace) return;
      const u = Number(cell.dataset.unit);
      const t = Number(cell.dataset.step);
      if (u !== state.hoverUnit) {
        state.hoverUnit = u;
        highlight(u, t);
      } else {
        drawUnitChart(u, t);
      }
      showTooltip(cell, ev);
    });

    traceEl.addEventListener("mouseleave", () => {
      tooltip.hidden = true;
      state.hoverUnit = null;
      highlight(state.pinnedUnit, null);
    });

    traceEl.addEventListener("click", (ev) => {
      const cell = ev.target.closest && ev.target.closest(".hcell");
      if (!cell || !state.trace) return;
      const u = Number(cell.dataset.unit);
      state.pinnedUnit = u;
      highlight(u, Number(cell.dataset.step));
      showMatches(u);
    });

    async function showMatches(u) {
      const panel = $("match-panel");
      const list = $("match-list");
      const status = $("match-status");
      panel.hidden = false;
      list.innerHTML = "";
      delete list.dataset.unit;
      if (!state.match) {
        status.textContent = "The server has no training phrases to search (start it with a match dataset).";
        return;
      }
      status.textContent = `Searching for ${unitName(u)}…`;
      let res;
      try {
        res = await api("/api/match", { model: state.model.name, unit: u, top: 10 }, nextMatch());
      } catch (e) {
        if (e.name === "AbortError") return;
        status.textContent = "";
        showError(e);
        return;
      }
      const items = res.matches || [];
      status.textContent = items.length
        ? `${unitName(u)}: the ${items.length} steps where h is largest, the firing token highlighted.`
        : "No matches.";
      list.innerHTML = items.map((m, k) => {
        const words = (m.tokens || []).map((tok, j) =>
          j === m.position ? `<mark data-position="${j}">${esc(tok)}</mark>` : esc(tok)).join(" ");
        return `<li data-rank="${k}" data-position="${m.position}" data-activation="${attr(m.activation)}">` +
          `<span class="act">${fixed(m.activation, 3)}</span>${words || esc(m.text)}</li>`;
      }).join("");
      list.dataset.unit = String(res.unit !== undefined ? res.unit : u);
    }

    const onInput = debounced(run);
    input.addEventListener("input", onInput);

    return {
      show() {
        $("match-panel").hidden = true;
        state.pinnedUnit = null;
        if (!input.value) input.value = params.get("text") || DEFAULT_TEXT.classifier;
        run(performance.now());
      },
    };
  })();

  // ========================================================================================================
  // language model
  // ========================================================================================================

  const languageModel = (() => {
    const input = $("lm-input");
    const stepsEl = $("lm-steps");
    const out = $("gen-output");
    const nextSignal = latest();
    const MAX_STEPS = 400;
    let generating = null;

    async function run(t0) {
      const text = input.value;
      if (!text.trim()) {
        stepsEl.innerHTML = "";
        return;
      }
      const model = state.model.name;
      let res;
      try {
        res = await api("/api/explain", { model, text }, nextSignal());
      } catch (e) {
        showError(e);
        markRendered("error", text, t0);
        return;
      }
      if (state.model.name !== model) return;
      clearError();
      render(res);
      markRendered("language_model", text, t0);
    }

    function render(res) {
      const steps = res.steps || [];
      const shown = steps.slice(0, MAX_STEPS);
      let hmax = 1e-9;
      shown.forEach((s) => s.h.forEach((v) => { hmax = Math.max(hmax, Math.abs(v)); }));
      const scale = Math.min(1, hmax) || 1;
      stepsEl.innerHTML = shown.map((s, t) => {
        const next = t + 1 < steps.length ? steps[t + 1].token : null;
        const bars = (s.top_next || []).map((g, k) =>
          barHTML(shownToken(g.token), g.p, fixed(g.p), g.token === next ? "actual" : "",
            { step: t, rank: k, token: g.token, value: g.p }, (g.token === next ? " is-actual" : "") + " topk"))
          .join("");
        const heat = s.h.map((v, i) =>
          `<div class="hcell" data-step="${t}" data-unit="${i}" data-value="${attr(v)}" style="background:${divColor(v, scale)}"></div>`)
          .join("");
        const actual = s.p_actual_next === null || s.p_actual_next === undefined
          ? "last token" : `P(actual next) = <span class="mono" data-value="${attr(s.p_actual_next)}">${fixed(s.p_actual_next)}</span>`;
        return `<div class="lm-step" data-step="${t}"><div class="tok" data-step="${t}" title="${esc(JSON.stringify(s.token))}">` +
          `${esc(shownToken(s.token))}</div><div class="meta">t=${s.t ?? t + 1} · ‖h‖=${fixed(s.h_norm, 2)}</div>` +
          `<div class="heat" style="grid-template-columns:repeat(${s.h.length},1fr)" title="h_t">${heat}</div>` +
          `<div class="bars">${bars}</div><div class="meta">${actual}</div></div>`;
      }).join("") + (steps.length > MAX_STEPS ? `<p class="hint">… ${steps.length - MAX_STEPS} more steps not drawn</p>` : "");
      const loss = res.loss;
      $("lm-summary").textContent = `${steps.length} tokens` +
        (Number.isFinite(loss) ? ` · loss over the text ${loss.toFixed(3)} nats per token (${(loss / Math.LN2).toFixed(3)} bits)` : "");
    }

    function numberOrNull(id) {
      const v = $(id).value.trim();
      return v === "" ? null : Number(v);
    }

    async function generate() {
      if (generating) generating.abort();
      const controller = new AbortController();
      generating = controller;
      const body = { model: state.model.name, prompt: $("gen-prompt").value };
      const fields = { length: "gen-length", temperature: "gen-temperature", top_k: "gen-top-k",
        top_p: "gen-top-p", seed: "gen-seed" };
      for (const [k, id] of Object.entries(fields)) {
        const v = numberOrNull(id);
        if (v !== null) body[k] = v;
      }
      out.innerHTML = `<span class="prompt"></span><span class="gen"></span>`;
      out.firstChild.textContent = body.prompt;
      const gen = out.lastChild;
      out.dataset.done = "false";
      out.dataset.chunks = "0";
      $("gen-button").disabled = true;
      $("gen-stop").disabled = false;
      let chunks = 0;
      try {
        const resp = await fetch("/api/generate", {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
          signal: controller.signal,
        });
        if (!resp.ok) throw await responseError(resp);
        clearError();
        const reader = resp.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        const handle = (line) => {
          if (!line.trim()) return false;
          const obj = JSON.parse(line);
          if (obj.error) throw new ApiError(obj.error.message || String(obj.error), obj.error.field);
          if (typeof obj.text === "string") {
            gen.textContent += obj.text;
            chunks += 1;
            out.dataset.chunks = String(chunks);
          }
          return Boolean(obj.done);
        };
        let done = false;
        while (!done) {
          const { value, done: end } = await reader.read();
          if (end) break;
          buffer += decoder.decode(value, { stream: true });
          let nl;
          while ((nl = buffer.indexOf("\n")) >= 0) {
            const line = buffer.slice(0, nl);
            buffer = buffer.slice(nl + 1);
            if (handle(line)) done = true;
          }
        }
        if (!done) handle(buffer + decoder.decode());
      } catch (e) {
        if (e.name !== "AbortError") showError(e);
      } finally {
        if (generating === controller) {
          generating = null;
          $("gen-button").disabled = false;
          $("gen-stop").disabled = true;
        }
        out.dataset.done = "true";
        document.body.dataset.generated = String(Number(document.body.dataset.generated || 0) + 1);
      }
    }

    input.addEventListener("input", debounced(run));
    $("gen-button").addEventListener("click", generate);
    $("gen-stop").addEventListener("click", () => generating && generating.abort());

    return {
      show() {
        if (!input.value) input.value = params.get("text") || DEFAULT_TEXT.language_model;
        if (!$("gen-prompt").value) $("gen-prompt").value = input.value;
        run(performance.now());
      },
    };
  })();

  // ========================================================================================================
  // forecaster
  // ========================================================================================================

  const forecaster = (() => {
    const textarea = $("fc-values");
    const svg = $("fc-plot");
    const nextSignal = latest();
    const SERIES = {
      history: { label: "history", color: "#1d2433", dash: "" },
      forecast: { label: "RNN forecast", color: "#c6443a", dash: "" },
      naive: { label: "naive", color: "#8a94a6", dash: "6 4" },
      seasonal_naive: { label: "seasonal naive", color: "#3b9c5a", dash: "6 4" },
      drift: { label: "drift", color: "#9a5fc4", dash: "2 4" },
    };

    function sine(n, period) {
      const out = [];
      for (let i = 0; i < n; i++) out.push(Number((10 + 3 * Math.sin((2 * Math.PI * i) / period)).toFixed(3)));
      return out;
    }

    function parseValues(text) {
      const parts = text.split(/[\s,;]+/).filter((s) => s !== "");
      const values = [];
      for (const [i, p] of parts.entries()) {
        const v = Number(p);
        if (!Number.isFinite(v)) throw new ApiError(`value ${i + 1} (${JSON.stringify(p)}) is not a number`, "values");
        values.push(v);
      }
      return values;
    }

    async function run(t0) {
      const model = state.model.name;
      let res, values;
      try {
        values = parseValues(textarea.value);
        const body = { model, values };
        const steps = $("fc-steps").value.trim();
        if (steps !== "") body.steps = Number(steps);
        const season = $("fc-season").value.trim();
        if (season !== "") body.season = Number(season);
        res = await api("/api/forecast", body, nextSignal());
      } catch (e) {
        showError(e);
        markRendered("error", textarea.value, t0);
        return;
      }
      if (state.model.name !== model) return;
      clearError();
      render(res);
      markRendered("forecaster", textarea.value, t0);
    }

    function niceTicks(lo, hi, count = 6) {
      const span = hi - lo || 1;
      const step0 = span / count;
      const mag = 10 ** Math.floor(Math.log10(step0));
      const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0) || 10 * mag;
      const ticks = [];
      for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
      return ticks;
    }

    function render(res) {
      const history = res.history || [];
      const forecast = res.forecast || [];
      const baselines = res.baselines || {};
      const n = history.length;
      const series = [["history", history, 0]];
      for (const [name, vals] of Object.entries(baselines)) series.push([name, vals, n]);
      series.push(["forecast", forecast, n]);
      const all = series.flatMap(([, v]) => v).filter(Number.isFinite);
      let lo = Math.min(...all), hi = Math.max(...all);
      if (!(hi > lo)) { lo -= 1; hi += 1; }
      const pad = (hi - lo) * 0.06;
      lo -= pad; hi += pad;
      const total = Math.max(n + forecast.length, ...series.map(([, v, off]) => off + v.length));
      const W = 1000, Hh = 360, L = 56, R = 16, Tp = 14, B = 34;
      const x = (i) => L + (total <= 1 ? 0 : (i * (W - L - R)) / (total - 1));
      const y = (v) => Tp + ((hi - v) / (hi - lo)) * (Hh - Tp - B);
      let s = "";
      for (const tv of niceTicks(lo, hi)) {
        s += `<line class="grid" x1="${L}" x2="${W - R}" y1="${y(tv).toFixed(1)}" y2="${y(tv).toFixed(1)}"/>` +
          `<text x="${L - 6}" y="${(y(tv) + 4).toFixed(1)}" text-anchor="end">${tv}</text>`;
      }
      for (const tv of niceTicks(0, total - 1, 10)) {
        if (tv !== Math.round(tv)) continue;
        s += `<text x="${x(tv).toFixed(1)}" y="${Hh - B + 16}" text-anchor="middle">${tv}</text>`;
      }
      s += `<g class="axis"><line x1="${L}" x2="${W - R}" y1="${Hh - B}" y2="${Hh - B}"/>` +
        `<line x1="${L}" x2="${L}" y1="${Tp}" y2="${Hh - B}"/></g>`;
      s += `<text x="${(L + W - R) / 2}" y="${Hh - 4}" text-anchor="middle">step</text>`;
      if (n > 0) {
        s += `<line class="origin" x1="${x(n - 0.5).toFixed(1)}" x2="${x(n - 0.5).toFixed(1)}" y1="${Tp}" y2="${Hh - B}"/>` +
          `<text x="${(x(n - 0.5) + 4).toFixed(1)}" y="${Tp + 10}">forecast →</text>`;
      }
      for (const [name, vals, off] of series) {
        const st = SERIES[name] || { label: name, color: "#555", dash: "3 3" };
        const pts = vals.map((v, i) => [x(off + i), y(v)]);
        if (off > 0 && n > 0) pts.unshift([x(n - 1), y(history[n - 1])]); // join the line to the last observation
        const dash = st.dash ? ` stroke-dasharray="${st.dash}"` : "";
        const r = name === "forecast" ? 3.2 : name === "history" ? 2.2 : 2;
        s += `<g class="series-group" data-series="${esc(name)}" data-count="${vals.length}">` +
          `<polyline class="series" stroke="${st.color}"${dash} points="${pts.map((p) => `${p[0].toFixed(1)},${p[1].toFixed(1)}`).join(" ")}"/>`;
        vals.forEach((v, i) => {
          s += `<circle class="pt" cx="${x(off + i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="${r}" fill="${st.color}" ` +
            `data-series="${esc(name)}" data-index="${off + i}" data-value="${attr(v)}"><title>${esc(st.label)} [${off + i}]: ${fixed(v, 4)}</title></circle>`;
        });
        s += "</g>";
      }
      svg.innerHTML = s;
      $("fc-legend").innerHTML = series.map(([name]) => {
        const st = SERIES[name] || { label: name, color: "#555" };
        return `<span data-series="${esc(name)}"><span class="sw" style="background:${st.color}"></span>${esc(st.label)}</span>`;
      }).join("");
    }

    textarea.addEventListener("input", debounced(run));
    $("fc-steps").addEventListener("input", debounced(run));
    $("fc-season").addEventListener("input", debounced(run));
    $("fc-button").addEventListener("click", () => run(performance.now()));

    return {
      show() {
        const m = state.model;
        $("fc-window").textContent = String(m.window ?? "window");
        if (!$("fc-steps").placeholder && m.horizon) $("fc-steps").placeholder = String(m.horizon);
        const window_ = Number(m.window) || 12;
        const given = params.get("values");
        textarea.value = given ? given : sine(window_ * 4, window_).join(", ");
        if (!$("fc-season").value) $("fc-season").value = params.get("season") || (given ? "" : String(Math.max(2, window_)));
        run(performance.now());
      },
    };
  })();

  // ========================================================================================================
  // translator
  // ========================================================================================================

  const translator = (() => {
    const input = $("tr-input");
    const nextSignal = latest();

    async function run(t0) {
      const text = input.value;
      if (!text.trim()) {
        $("tr-output").textContent = "";
        $("tr-attention").innerHTML = "";
        return;
      }
      const model = state.model.name;
      let tr, ex;
      try {
        const signal = nextSignal();
        [tr, ex] = await Promise.all([
          api("/api/translate", { model, texts: [text], beam: 5 }, signal),
          api("/api/explain", { model, text }, signal),
        ]);
      } catch (e) {
        showError(e);
        markRendered("error", text, t0);
        return;
      }
      if (state.model.name !== model) return;
      clearError();
      const result = (tr.results || [])[0] || {};
      const out = $("tr-output");
      const translation = result.translation ?? ex.translation ?? "";
      out.textContent = translation === "" ? "∅ (the model produced </s> at once)" : translation;
      out.dataset.value = translation;
      render(ex);
      markRendered("translator", text, t0);
    }

    function render(ex) {
      // Translation.to_json: source_tokens and, per decoder step, {token, probability, top, attention}.
      const steps = ex.steps || [];
      const src = ex.source_tokens || [];
      const tgt = steps.map((s) => s.token);
      const att = steps.map((s) => s.attention);
      const probs = steps.map((s) => s.probability);
      const rows = att.length, cols = rows ? att[0].length : 0;
      let s = `<table class="matrix" id="tr-matrix" data-rows="${rows}" data-cols="${cols}"><thead><tr><th></th>`;
      for (let j = 0; j < cols; j++) s += `<th scope="col" data-col="${j}"><span>${esc(src[j] ?? "∅")}</span></th>`;
      s += `<th scope="col" class="hint" style="font-family:var(--sans)">p(token)</th></tr></thead><tbody>`;
      for (let i = 0; i < rows; i++) {
        const label = tgt[i];
        const alts = (steps[i].top || []).map((a) => `${a.token} ${fixed(a.probability, 3)}`).join(", ");
        s += `<tr data-row="${i}"><th scope="row" title="top alternatives: ${esc(alts)}">${esc(label)}</th>`;
        for (let j = 0; j < cols; j++) {
          const v = att[i][j];
          const dark = v > 0.55;
          s += `<td class="acell" data-row="${i}" data-col="${j}" data-value="${attr(v)}" ` +
            `style="background:${seqColor(v)};color:${dark ? "#fff" : "#333"}" title="α(${esc(label)} ← ${esc(src[j] ?? "")}) = ${fixed(v, 4)}">` +
            `${v >= 0.005 ? v.toFixed(2) : ""}</td>`;
        }
        s += `<td class="hint mono">${i < probs.length ? fixed(probs[i], 3) : ""}</td></tr>`;
      }
      s += "</tbody></table>";
      $("tr-attention").innerHTML = s;
    }

    input.addEventListener("input", debounced(run));

    return {
      show() {
        if (!input.value) input.value = params.get("text") || DEFAULT_TEXT.translator;
        run(performance.now());
      },
    };
  })();

  // ========================================================================================================
  // speech
  // ========================================================================================================

  const speech = (() => {
    const fileInput = $("sp-file");
    const nextSignal = latest();

    function readBase64(file) {
      return new Promise((resolve, reject) => {
        const reader = new FileReader();
        reader.onload = () => {
          const url = String(reader.result);
          resolve(url.slice(url.indexOf(",") + 1));
        };
        reader.onerror = () => reject(new ApiError(`cannot read ${file.name}`, "audio"));
        reader.readAsDataURL(file);
      });
    }

    async function run() {
      const file = fileInput.files && fileInput.files[0];
      if (!file) return;
      const t0 = performance.now();
      const model = state.model.name;
      let res;
      try {
        const audio = await readBase64(file);
        $("sp-summary").innerHTML = `<span class="hint">Transcribing ${esc(file.name)}…</span>`;
        res = await api("/api/transcribe", { model, audio }, nextSignal());
      } catch (e) {
        $("sp-summary").innerHTML = "";
        showError(e);
        markRendered("error", file.name, t0);
        return;
      }
      if (state.model.name !== model) return;
      clearError();
      render(res, file.name);
      markRendered("speech_recognizer", file.name, t0);
    }

    /** Draws rows × cols values into a canvas, row 0 at the top; `norm(v, r)` maps to 0..1. */
    function paint(canvas, rows, cols, get, norm) {
      canvas.width = Math.max(1, cols);
      canvas.height = Math.max(1, rows);
      const ctx = canvas.getContext("2d");
      const img = ctx.createImageData(canvas.width, canvas.height);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          const [R, G, B] = seqRGB(norm(get(r, c), r));
          const k = (r * cols + c) * 4;
          img.data[k] = R; img.data[k + 1] = G; img.data[k + 2] = B; img.data[k + 3] = 255;
        }
      }
      ctx.putImageData(img, 0, 0);
      canvas.style.height = `${Math.max(60, Math.min(260, rows * 12))}px`;
      canvas.dataset.rows = String(rows);
      canvas.dataset.cols = String(cols);
    }

    function render(res, name) {
      const ex = res.explanation || {};
      const transcript = res.transcript ?? ex.transcript ?? "";
      const prob = res.probability ?? ex.probability;
      $("sp-summary").innerHTML =
        `<div><span class="k">transcript</span><span id="sp-transcript" class="big-label" data-value="${esc(transcript)}">${esc(transcript) || "∅"}</span></div>` +
        `<div><span class="k">probability</span><span id="sp-probability" class="mono" data-value="${attr(prob)}">${fixed(prob, 4)}</span></div>` +
        `<div class="hint">${esc(name)} · ${ex.frames ?? (ex.features || []).length} frames of ${fixed((ex.frame_seconds || 0) * 1000, 0)} ms</div>`;

      const feats = ex.features || [];
      const T = feats.length, F = T ? feats[0].length : 0;
      const mins = [], maxs = [];
      for (let f = 0; f < F; f++) {
        let lo = Infinity, hi = -Infinity;
        for (let t = 0; t < T; t++) { const v = feats[t][f]; if (v < lo) lo = v; if (v > hi) hi = v; }
        mins.push(lo); maxs.push(hi);
      }
      // Row r of the canvas is feature F-1-r (the first feature at the bottom); each row on its own range.
      paint($("sp-features"), F, T, (r, c) => feats[c][F - 1 - r],
        (v, r) => { const f = F - 1 - r; return maxs[f] > mins[f] ? (v - mins[f]) / (maxs[f] - mins[f]) : 0; });
      $("sp-features-label").textContent = `${F} features × ${T} frames (each row scaled to its range)`;

      const post = ex.posteriors || [];
      const outputs = ex.outputs || [];
      const C = post.length ? post[0].length : 0;
      paint($("sp-posteriors"), C, post.length, (r, c) => post[c][r], (v) => v);
      const labels = $("sp-out-labels");
      labels.style.height = $("sp-posteriors").style.height;
      labels.innerHTML = outputs.slice(0, C).map((o, k) => `<span data-output="${k}">${esc(o === "" ? "blank" : o)}</span>`).join("");
      $("sp-posteriors-caption").textContent = ex.alignment
        ? "Per frame, the CTC output distribution over the blank and the symbols (darker = more probable); below, the best frame path of the transcript."
        : "Per frame, the class distribution of the states pooled up to that frame: what the model would answer if the audio ended there.";

      const al = ex.alignment;
      const alEl = $("sp-alignment");
      if (al && al.length) {
        const runs = [];
        for (const sym of al) {
          if (runs.length && runs[runs.length - 1][0] === sym) runs[runs.length - 1][1] += 1;
          else runs.push([sym, 1]);
        }
        alEl.innerHTML = runs.map(([sym, n]) =>
          `<span style="flex:${n} 1 0;text-align:center;${sym === outputs[0] ? "color:#bbb" : "font-weight:700"}">${esc(sym === outputs[0] ? "·" : sym)}</span>`).join("");
        alEl.parentElement.hidden = false;
      } else {
        alEl.innerHTML = "";
        alEl.parentElement.hidden = true;
      }
    }

    fileInput.addEventListener("change", run);
    return {
      show() {
        if (fileInput.files && fileInput.files[0]) run();
      },
    };
  })();

  // ========================================================================================================
  // models and views
  // ========================================================================================================

  const VIEWS = {
    classifier, language_model: languageModel, forecaster, translator, speech_recognizer: speech,
  };

  function describe(m) {
    const bits = [m.kind.replace(/_/g, " ")];
    if (m.cell) bits.push(m.cell);
    if (m.classes) bits.push(`classes: ${m.classes.join(", ")}`);
    if (m.window) bits.push(`window ${m.window}`);
    if (m.horizon) bits.push(`horizon ${m.horizon}`);
    return bits.join(" · ");
  }

  function choose(name) {
    const m = state.models.find((x) => x.name === name) || state.models[0];
    state.model = m;
    $("model-select").value = m.name;
    $("model-info").textContent = describe(m);
    document.body.dataset.model = m.name;
    document.body.dataset.kind = m.kind;
    for (const sec of document.querySelectorAll("section[data-kind]")) sec.hidden = sec.dataset.kind !== m.kind;
    const url = new URL(location.href);
    url.searchParams.set("model", m.name);
    history.replaceState(null, "", url);
    clearError();
    const view = VIEWS[m.kind];
    if (view) view.show();
    else showError(new ApiError(`this page has no view for models of kind ${JSON.stringify(m.kind)}`, "model"));
  }

  async function start() {
    let res;
    try {
      res = await api("/api/models");
    } catch (e) {
      $("loading").hidden = true;
      showError(e);
      return;
    }
    state.models = res.models || [];
    state.match = Boolean(res.match);
    document.body.dataset.match = String(state.match);
    $("loading").hidden = true;
    if (!state.models.length) {
      showError(new ApiError("the server holds no models"));
      return;
    }
    const select = $("model-select");
    select.innerHTML = state.models.map((m) =>
      `<option value="${esc(m.name)}">${esc(m.name)} (${esc(m.kind.replace(/_/g, " "))})</option>`).join("");
    select.addEventListener("change", () => choose(select.value));
    choose(params.get("model") || state.models[0].name);
  }

  start();
})();
