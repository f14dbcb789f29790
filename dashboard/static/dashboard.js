// The dashboard page: polls /api/state, redraws the charts when the data changed, lists each run's steps,
// and shows a clicked step's GRPO groups with filters (a step is opened from its button or from a point of a
// curve, through the chart's image map); lists each run's evaluations and shows one's samples, worst errors
// first. Every text from the runs is set as textContent.
"use strict";

const pollMs = Number(document.body.dataset.pollMs) || 2000;
let version = null;
let selected = null; // {run, step}
let stepView = null;
let evalView = null;
let recorded = new Map(); // run -> Set of steps with episodes

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function fmt(value) {
  if (value === null || value === undefined) return "-";
  if (typeof value === "number") return Number.isFinite(value) ? value.toFixed(3) : String(value);
  return String(value);
}

function fileUrl(run, path) {
  return `/files?run=${encodeURIComponent(run)}&path=${encodeURIComponent(path)}`;
}

function renderAlerts(alerts) {
  const box = document.getElementById("alerts");
  box.replaceChildren(...alerts.map((a) =>
    el("div", { class: "alert", "data-kind": a.kind, "data-run": a.run, "data-began": String(a.began),
      text: `${a.run}: ${a.message} (began at step ${a.began})` })));
}

function renderSteps(runs) {
  const list = document.getElementById("step-list");
  list.replaceChildren(...runs.map((run) => {
    const row = el("div", { class: "run-steps", "data-run": run.id }, el("b", { text: run.id }));
    for (const step of run.steps) {
      const reward = run.mean_reward[String(step)];
      const button = el("button", { class: "step", type: "button", "data-run": run.id, "data-step": String(step),
        title: `mean reward ${fmt(reward)}`, text: String(step) });
      if (selected && selected.run === run.id && selected.step === step) button.classList.add("selected");
      button.addEventListener("click", () => openStep(run.id, step));
      row.append(button);
    }
    return row;
  }));
}

function renderCharts(charts) {
  const box = document.getElementById("charts");
  const groups = new Map();
  for (const chart of charts) {
    if (!groups.has(chart.group)) groups.set(chart.group, []);
    groups.get(chart.group).push(chart);
  }
  const sections = [];
  let n = 0;
  for (const [group, members] of groups) {
    const row = el("div", { class: "chart-group" });
    for (const chart of members) {
      const name = `chart-map-${n++}`;
      const map = el("map", { name, "data-chart": chart.id });
      const image = el("img", { class: "chart", "data-chart": chart.id, alt: chart.title, usemap: `#${name}`,
        src: `/api/chart.svg?id=${encodeURIComponent(chart.id)}&v=${version}` });
      image.addEventListener("load", () => drawPointLinks(image, map, chart.id, version));
      row.append(el("div", { class: "chart-box" }, image, map));
    }
    const section = group === "All logged scalars"
      ? el("details", {}, el("summary", { text: group }), row)
      : el("div", {}, el("h2", { text: group }), row);
    sections.push(section);
  }
  box.replaceChildren(...sections);
}

// One clickable circle per point of the chart whose step has recorded episodes; the server says where each
// point lies as fractions of the chart, scaled here to the size the image is shown at.
async function drawPointLinks(image, map, chartId, drawnVersion) {
  const response = await fetch(`/api/chart_points?id=${encodeURIComponent(chartId)}&v=${drawnVersion}`);
  if (!response.ok || drawnVersion !== version) return;
  const { points } = await response.json();
  const width = image.clientWidth, height = image.clientHeight;
  const areas = points.filter((p) => recorded.get(p.run)?.has(p.step)).map((p) => {
    const area = el("area", { shape: "circle", href: "#episodes", "data-run": p.run, "data-step": String(p.step),
      "data-x": String(Math.round(p.x * width)), "data-y": String(Math.round(p.y * height)),
      coords: `${Math.round(p.x * width)},${Math.round(p.y * height)},6`,
      alt: `${p.run} step ${p.step}`, title: `${p.run} step ${p.step}: open its episodes` });
    area.addEventListener("click", (event) => { event.preventDefault(); openStep(p.run, p.step); });
    return area;
  });
  map.replaceChildren(...areas);
  image.dataset.points = String(areas.length);
}

async function poll() {
  try {
    const response = await fetch("/api/state", { cache: "no-store" });
    const state = await response.json();
    if (state.version !== version) {
      version = state.version;
      recorded = new Map(state.runs.map((r) => [r.id, new Set(r.steps)]));
      renderCharts(state.charts);
      renderEvalList(state.runs);
      renderSteps(state.runs);
      renderAlerts(state.alerts);
      document.body.dataset.version = version;
    }
    const steps = state.runs.reduce((n, r) => n + r.steps.length, 0);
    document.getElementById("status").textContent =
      `${state.runs.length} run(s), ${steps} recorded step(s), ${state.alerts.length} alert(s); updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    document.getElementById("status").textContent = `cannot reach the dashboard server: ${error}`;
  }
  setTimeout(poll, pollMs);
}

async function openStep(run, step) {
  selected = { run, step };
  for (const button of document.querySelectorAll(".step")) {
    button.classList.toggle("selected", button.dataset.run === run && Number(button.dataset.step) === step);
  }
  const response = await fetch(`/api/step?run=${encodeURIComponent(run)}&step=${step}`);
  stepView = await response.json();
  const form = document.getElementById("filters");
  for (const name of ["tool", "attack_type", "domain", "stop_reason"]) {
    const select = form.elements[name];
    const options = name === "tool" ? ["", "(none)", ...stepView.choices.tool] : ["", ...stepView.choices[name]];
    select.replaceChildren(...options.map((o) => el("option", { value: o, text: o || "any" })));
    select.disabled = options.length === 1;
  }
  document.getElementById("episodes-title").textContent = `${run}, step ${step}: GRPO groups`;
  document.getElementById("episodes").hidden = false;
  renderGroups();
  document.getElementById("episodes").scrollIntoView();
}

function episodeText(episode) {
  return [...(episode.turns || []), ...(episode.tool_calls || []).map((c) => JSON.stringify(c))].join("\n").toLowerCase();
}

function keeps(episode, filters) {
  const correct = filters.get("correct");
  if (correct === "yes" && episode.correct !== true) return false;
  if (correct === "no" && episode.correct !== false) return false;
  if (correct === "none" && episode.correct !== null) return false;
  const tools = (episode.tool_calls || []).map((c) => String(c.name));
  const tool = filters.get("tool");
  if (tool === "(none)" && tools.length) return false;
  if (tool && tool !== "(none)" && !tools.includes(tool)) return false;
  for (const key of ["attack_type", "domain", "stop_reason"]) {
    const wanted = filters.get(key);
    if (wanted && String(episode[key]) !== wanted) return false;
  }
  const search = (filters.get("search") || "").trim().toLowerCase();
  return !search || episodeText(episode).includes(search);
}

function toolCallView(call, image) {
  const box = el("div", { class: call.ok ? "tool-call" : "tool-call failed" },
    el("div", { text: `tool call: ${call.name}` }),
    el("pre", { class: "arguments", text: JSON.stringify(call.arguments) }));
  if (!call.ok) box.append(el("div", { text: `error: ${call.error}` }));
  if (image) box.append(el("img", { class: "tool-image", src: fileUrl(stepView.run, image), alt: `${call.name} output` }));
  return box;
}

function episodeView(episode) {
  const state = episode.correct === true ? "correct" : episode.correct === false ? "wrong" : "";
  const card = el("div", { class: `episode ${state}`, "data-index": String(episode.index) });
  card.append(el("div", { text: `#${episode.index}  label ${episode.label}  answer ${episode.predicted ?? "none"}` }));
  card.append(el("div", { text: `reward ${fmt(episode.reward)}  advantage ${fmt(episode.advantage)}` }));
  card.append(el("div", { text: `stop ${episode.stop_reason}, ${episode.completion_tokens} tokens, weights v${episode.weights_version}` }));
  for (const key of ["attack_type", "domain"]) if (episode[key] != null) card.append(el("div", { text: `${key} ${episode[key]}` }));
  const table = el("table", { class: "rewards" });
  for (const [name, value] of Object.entries(episode.rewards || {})) {
    table.append(el("tr", {}, el("td", { text: name }), el("td", { text: fmt(value) })));
  }
  card.append(table);
  const images = episode.images || [];
  if (images.length) card.append(el("img", { class: "input-image", src: fileUrl(stepView.run, images[0]), alt: "input image" }));
  // Tool outputs follow the input image in the order of the calls that ran (rft.trainers.rollout_records).
  const calls = [...(episode.tool_calls || [])];
  let nextImage = 1;
  const nextCall = () => {
    const call = calls.shift();
    const image = call.ok ? images[nextImage++] : null;
    return toolCallView(call, image);
  };
  for (const turn of episode.turns || []) {
    card.append(el("pre", { class: "turn", text: turn }));
    if (turn.includes("<tool_call>") && calls.length) card.append(nextCall());
  }
  while (calls.length) card.append(nextCall());
  return card;
}

function renderGroups() {
  if (!stepView) return;
  const filters = new FormData(document.getElementById("filters"));
  let shown = 0, total = 0;
  const groups = [];
  for (const group of stepView.groups) {
    total += group.episodes.length;
    const kept = group.episodes.filter((e) => keeps(e, filters));
    if (!kept.length) continue;
    shown += kept.length;
    const rewards = group.episodes.map((e) => fmt(e.reward)).join(", ");
    groups.push(el("div", { class: "group", "data-group": String(group.group) },
      el("div", { text: `group ${group.group} (label ${group.episodes[0].label}); rewards ${rewards}` }),
      el("div", { class: "group-episodes" }, ...kept.map(episodeView))));
  }
  document.getElementById("groups").replaceChildren(...groups);
  document.getElementById("episode-count").textContent = `${shown} of ${total} episodes`;
}

function renderEvalList(runs) {
  const withEvals = runs.filter((run) => run.evals.length);
  document.getElementById("evaluations").hidden = withEvals.length === 0;
  document.getElementById("eval-list").replaceChildren(...withEvals.map((run) => {
    const row = el("div", { class: "run-steps", "data-run": run.id }, el("b", { text: run.id }));
    for (const step of run.evals) {
      const button = el("button", { class: "eval-step", type: "button", "data-run": run.id,
        "data-step": String(step), text: `eval @ ${step}` });
      button.addEventListener("click", () => openEval(run.id, step));
      row.append(button);
    }
    return row;
  }));
}

async function openEval(run, step) {
  const response = await fetch(`/api/eval?run=${encodeURIComponent(run)}&step=${step}`);
  evalView = await response.json();
  const form = document.getElementById("eval-filters");
  for (const name of ["answer", "domain", "attack_type"]) {
    const options = name === "answer" ? evalView.choices.answer : ["", ...evalView.choices[name]];
    form.elements[name].replaceChildren(...options.map((o) => el("option", { value: o, text: o || "any" })));
    form.elements[name].disabled = options.length <= 1;
  }
  document.getElementById("evaluation-title").textContent = `${run}, evaluation at step ${step}`;
  document.getElementById("evaluation").hidden = false;
  renderSamples();
}

function sampleView(sample, answer) {
  const wrong = sample.wrong[answer];
  const card = el("div", { class: `sample ${wrong === true ? "wrong" : wrong === false ? "correct" : ""}`,
    "data-id": sample.id, "data-error": fmt(sample.errors[answer]) });
  card.append(el("div", { text: `${sample.id}: label ${sample.label}` }));
  card.append(el("div", { text: `domain ${sample.domain ?? "-"}, attack ${sample.attack_type ?? "-"}` }));
  for (const [name, score] of Object.entries(sample.scores)) {
    card.append(el("div", { text: `P(spoof) ${name} ${fmt(score)}  error ${fmt(sample.errors[name])}` }));
  }
  if (sample.forced) card.append(el("div", { text: "final answer forced (the episode gave none)" }));
  if (sample.image) card.append(el("img", { class: "sample-image", src: fileUrl(evalView.run, sample.image), alt: sample.id }));
  if (sample.turns.length) {
    card.append(el("details", {}, el("summary", { text: `${sample.turns.length} turn(s)` }),
      ...sample.turns.map((turn) => el("pre", { class: "turn", text: turn }))));
  }
  return card;
}

function renderSamples() {
  if (!evalView) return;
  const filters = new FormData(document.getElementById("eval-filters"));
  const answer = filters.get("answer") || evalView.choices.answer[0];
  const kept = evalView.samples.filter((s) =>
    ["domain", "attack_type", "label"].every((key) => !filters.get(key) || String(s[key]) === filters.get(key))
    && (filters.get("wrong") !== "yes" || s.wrong[answer] === true));
  // Worst errors first: the most confident wrong answers; samples without a score last.
  const error = (s) => s.errors[answer] ?? -1;
  kept.sort((a, b) => error(b) - error(a));
  document.getElementById("eval-samples").replaceChildren(...kept.map((s) => sampleView(s, answer)));
  document.getElementById("sample-count").textContent = `${kept.length} of ${evalView.samples.length} samples`;
}

document.getElementById("eval-filters").addEventListener("input", renderSamples);
document.getElementById("eval-filters").addEventListener("submit", (event) => event.preventDefault());
document.getElementById("filters").addEventListener("input", renderGroups);
document.getElementById("filters").addEventListener("submit", (event) => event.preventDefault());
poll();
