// gan_lab explorer: plain JavaScript over the JSON/PNG API of gan_lab/serve.py. The address bar holds
// the whole view (runs, seed, samples, class, sliders, picked samples), so a view can be shared.
"use strict";

const CELL = 30, PAD = 2, SIDE = 28;  // plotting.image_grid: 28-px images with a 2-px border
const WALK_STEPS = 16;
const view = { a: null, b: null, seed: 0, n: 64, cls: "", shift: [], pick: null, pick2: null };
let runs = {}, limits = { sliders: 8, max_shift: 4 };
const walkers = {};  // pane -> animation timer
const watchers = {}; // pane -> polling timer of a run that is training
const seenStep = {};  // run -> the newest step seen while it trains

const $ = (id) => document.getElementById(id);
// Names come from directory names and files on disk: put them into HTML as text, never as markup.
const text = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const runPath = (id) => "/api/runs/" + id.split("/").map(encodeURIComponent).join("/");
const query = (params) => Object.entries(params).filter(([, v]) => v !== null && v !== "" && v !== undefined)
  .map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&");
const shiftText = () => view.shift.some((v) => v !== 0) ? view.shift.map((v) => +v.toFixed(2)).join(",") : null;

function readAddress() {
  const p = new URLSearchParams(location.search);
  view.a = p.get("a"); view.b = p.get("b");
  view.seed = Math.max(0, parseInt(p.get("seed") || "0", 10) || 0);
  view.n = [16, 36, 64].includes(+p.get("n")) ? +p.get("n") : 64;
  view.cls = p.get("class") || "";
  view.shift = new Array(limits.sliders).fill(0);
  (p.get("shift") || "").split(",").forEach((v, i) => { if (i < limits.sliders && isFinite(+v)) view.shift[i] = +v; });
  view.pick = p.has("pick") ? +p.get("pick") : null;
  view.pick2 = p.has("pick2") ? +p.get("pick2") : null;
}

function writeAddress() {
  const q = query({ a: view.a, b: view.b, seed: view.seed, n: view.n, class: view.cls, shift: shiftText(),
                    pick: view.pick, pick2: view.pick2 });
  history.replaceState(null, "", "?" + q);
}

async function getJSON(url) {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// ---- the run list --------------------------------------------------------------------------------

async function loadRuns() {
  const listing = await getJSON("/api/runs");
  limits = listing;
  $("root").textContent = `${listing.runs.length} runs under ${listing.root}`;
  runs = Object.fromEntries(listing.runs.map((r) => [r.id, r]));
  const body = $("runs").querySelector("tbody");
  body.innerHTML = "";
  for (const run of listing.runs) {
    const row = document.createElement("tr");
    row.dataset.id = run.id;
    if (run.error) {
      row.className = "error";
      row.innerHTML = `<td colspan="7" title="${text(run.error)}">${text(run.id)}: ${text(run.error)}</td>`;
    } else {
      const fd = run.fd === null || run.fd === undefined ? "–" : run.fd.toFixed(1);
      row.innerHTML = `<td title="${text(run.id)}">${text(run.model)}</td><td>${text(run.dataset)}</td>` +
        `<td title="epochs trained / asked for">${text(run.epochs)}/${text(run.target_epochs)}</td>` +
        `<td>${text(run.seed)}</td><td>${fd}</td><td>${text(run.status)}</td>` +
        `<td><button data-pane="a">A</button> <button data-pane="b">B</button></td>`;
    }
    body.appendChild(row);
  }
  body.querySelectorAll("button").forEach((button) => button.addEventListener("click", () => {
    view[button.dataset.pane] = button.closest("tr").dataset.id;
    view.pick = view.pick2 = null;
    render();
  }));
}

// ---- controls ------------------------------------------------------------------------------------

function buildSliders() {
  const box = $("sliders");
  box.innerHTML = "";
  for (let i = 0; i < limits.sliders; i++) {
    const label = document.createElement("label");
    label.innerHTML = `z[${i}] <input type="range" id="slider-${i}" min="${-limits.max_shift}" max="${limits.max_shift}" ` +
      `step="0.1" value="${view.shift[i] || 0}"><span id="slider-value-${i}">${(view.shift[i] || 0).toFixed(1)}</span>`;
    box.appendChild(label);
    label.querySelector("input").addEventListener("input", (event) => {
      view.shift[i] = +event.target.value;
      $(`slider-value-${i}`).textContent = view.shift[i].toFixed(1);
      render();
    });
  }
}

function fillClasses() {
  const conditional = [view.a, view.b].map((id) => runs[id]).find((r) => r && r.conditional);
  const select = $("class");
  const names = conditional ? conditional.class_names : [];
  select.innerHTML = `<option value="">every class, in turn</option>` +
    names.map((name, i) => `<option value="${i}">${i}: ${text(name)}</option>`).join("");
  select.disabled = !conditional;
  select.value = conditional ? view.cls : "";
}

function wireControls() {
  $("seed").addEventListener("change", () => { view.seed = Math.max(0, parseInt($("seed").value, 10) || 0); view.pick = view.pick2 = null; render(); });
  $("reroll").addEventListener("click", () => { view.seed = Math.floor(Math.random() * 1e6); view.pick = view.pick2 = null; render(); });
  $("count").addEventListener("change", () => { view.n = +$("count").value; view.pick = view.pick2 = null; render(); });
  $("class").addEventListener("change", () => { view.cls = $("class").value; render(); });
  $("reset").addEventListener("click", () => { view.shift.fill(0); buildSliders(); render(); });
  $("copy").addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText(location.href));
}

// ---- the panes -----------------------------------------------------------------------------------

function pictureParams(run, extra = {}) {
  return { ...extra, class: run.conditional ? view.cls : null, shift: shiftText() };
}

function gridURL(run, scale = 1) {
  // `at` (the newest step seen) only changes the address, so the browser fetches a run in training anew.
  return `${runPath(run.id)}/grid.png?` + query(pictureParams(run, {
    seed: view.seed, n: view.n, columns: Math.ceil(Math.sqrt(view.n)), scale, at: seenStep[run.id] }));
}

function showProblem(element, message) {
  const note = document.createElement("div");
  note.className = "problem";
  note.textContent = message;
  element.appendChild(note);
}

// Point an <img> at a picture; an error (JSON from the server) is shown in `problems`, not as a broken image.
function show(img, src, problems) {
  if (img.dataset.src === src) return;
  img.dataset.src = src;
  img.hidden = false;
  img.onload = () => { img.dataset.loaded = src; };
  img.onerror = async () => { try { await getJSON(src); } catch (err) { showProblem(problems, err.message); } };
  img.src = src;
}

function animateWalk(paneKey, strip, canvas) {
  clearInterval(walkers[paneKey]);
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = false;
  let frame = 0, direction = 1;
  walkers[paneKey] = setInterval(() => {
    if (!strip.complete || !strip.naturalWidth) return;
    context.drawImage(strip, PAD + frame * CELL, PAD, SIDE, SIDE, 0, 0, canvas.width, canvas.height);
    if (frame + direction < 0 || frame + direction >= WALK_STEPS) direction = -direction;
    frame += direction;
  }, 90);
}

// A pane's elements, built when a run is opened in it; later changes only point them at new pictures.
function buildPane(paneKey, run, element) {
  element.className = "pane";
  element.dataset.run = run.id;
  element.innerHTML = `<h3>${paneKey.toUpperCase()}: ${text(run.error ? run.id : `${run.model} on ${run.dataset}`)}</h3>` +
    `<div class="meta"></div><div class="problems"></div>` +
    `<img class="pixels" id="grid-${paneKey}" title="click a sample to hold it as a style" alt="samples">` +
    `<div class="hint" id="wardrobe-caption-${paneKey}" hidden></div>` +
    `<img class="strip" id="wardrobe-${paneKey}" alt="the held style as every class" hidden>` +
    `<div class="row" id="walk-row-${paneKey}" hidden><canvas class="walk" id="walk-${paneKey}" width="168" height="168"></canvas>` +
    `<div class="hint" id="walk-caption-${paneKey}"></div></div>` +
    `<img class="strip" id="walk-strip-${paneKey}" alt="the walk's frames" hidden>`;
  const grid = $(`grid-${paneKey}`);
  grid.addEventListener("click", (event) => {
    const columns = Math.ceil(Math.sqrt(view.n));
    const x = event.offsetX * grid.naturalWidth / grid.clientWidth, y = event.offsetY * grid.naturalHeight / grid.clientHeight;
    const index = Math.floor((y - PAD / 2) / CELL) * columns + Math.floor((x - PAD / 2) / CELL);
    if (index < 0 || index >= view.n) return;
    view.pick2 = view.pick; view.pick = index;
    render();
  });
  renderTraining(paneKey, run, element);
}

async function renderPane(paneKey) {
  const element = $(`pane-${paneKey}`);
  const run = runs[view[paneKey]];
  if (!run) {
    clearInterval(walkers[paneKey]); clearInterval(watchers[paneKey]);
    delete element.dataset.run;
    element.className = "pane empty";
    element.textContent = paneKey === "a" ? "open a run in pane A" : "open a second run in pane B to compare";
    return;
  }
  if (element.dataset.run !== run.id) buildPane(paneKey, run, element);
  element.querySelector(".meta").textContent = run.error ? run.id : `${run.id} · ${run.epochs} of ${run.target_epochs} epoch${run.target_epochs === 1 ? "" : "s"} · ` +
    `seed ${run.seed} · step ${seenStep[run.id] ?? run.step ?? "–"} · ${run.status}` +
    (run.fd !== null && run.fd !== undefined ? ` · FD ${run.fd.toFixed(1)}` : "");
  const problems = element.querySelector(".problems");
  problems.innerHTML = "";
  if (run.error) { showProblem(problems, run.error); return; }
  show($(`grid-${paneKey}`), gridURL(run), problems);
  if (paneKey === "a") $("download").href = gridURL(run, 4);

  const wardrobe = $(`wardrobe-${paneKey}`), walkRow = $(`walk-row-${paneKey}`), strip = $(`walk-strip-${paneKey}`);
  let latents = [];
  if (view.pick !== null) {
    try {
      latents = (await getJSON(`${runPath(run.id)}/latents?` + query({ seed: view.seed, n: view.n }))).latents;
    } catch (err) { showProblem(problems, err.message); }
  }
  const held = latents[view.pick], start = latents[view.pick2];
  wardrobe.hidden = $(`wardrobe-caption-${paneKey}`).hidden = !(held && run.conditional);
  if (held && run.conditional) {
    $(`wardrobe-caption-${paneKey}`).textContent = `sample ${view.pick} as every class:`;
    show(wardrobe, `${runPath(run.id)}/wardrobe.png?` + query({ z: held.join(","), shift: shiftText() }), problems);
  }
  walkRow.hidden = strip.hidden = !(held && start);
  if (held && start) {
    $(`walk-caption-${paneKey}`).textContent = `walking from sample ${view.pick2} to sample ${view.pick}`;
    show(strip, `${runPath(run.id)}/walk.png?` + query(pictureParams(run, {
      z0: start.join(","), z1: held.join(","), steps: WALK_STEPS, class: run.conditional ? (view.cls || 0) : null })), problems);
    animateWalk(paneKey, strip, $(`walk-${paneKey}`));
  } else {
    clearInterval(walkers[paneKey]);
  }
}

// The run's newest epoch grid and loss curves; polled while the run is training.
function renderTraining(paneKey, run, element) {
  clearInterval(watchers[paneKey]);
  const box = document.createElement("details");
  box.className = "training";
  box.open = run.status === "training";
  box.innerHTML = `<summary>training: <span class="progress"></span></summary>`;
  const epochGrid = new Image(), curves = new Image();
  epochGrid.className = "pixels"; epochGrid.style.maxWidth = "260px";
  box.append(epochGrid, curves);
  element.appendChild(box);
  let lastStep = null;
  const refresh = async () => {
    let info;
    try { info = await getJSON(`${runPath(run.id)}/training`); } catch (err) { return; }
    box.querySelector(".progress").textContent = `${info.status}, step ${info.step}, epoch ${info.epoch}`;
    if (info.step === lastStep) return;
    if (lastStep !== null && view[paneKey] === run.id) { seenStep[run.id] = info.step; renderPane(paneKey); }  // redraw
    lastStep = info.step;
    const stamp = `?t=${info.step}`;
    if (info.newest_grid) epochGrid.src = `${runPath(run.id)}/epoch.png${stamp}`;
    if (info.records) curves.src = `${runPath(run.id)}/losses.png${stamp}`;
    if (info.status !== "training") clearInterval(watchers[paneKey]);
  };
  refresh();
  if (run.status === "training") watchers[paneKey] = setInterval(refresh, 4000);
}

function markOpenRuns() {
  document.querySelectorAll("#runs tr").forEach((row) => {
    row.classList.toggle("open-a", row.dataset.id === view.a);
    row.classList.toggle("open-b", row.dataset.id === view.b);
  });
}

function render() {
  $("seed").value = view.seed;
  $("count").value = String(view.n);
  fillClasses();
  markOpenRuns();
  writeAddress();
  renderPane("a");
  renderPane("b");
}

(async function start() {
  try { await loadRuns(); } catch (err) { showProblem(document.querySelector("section"), err.message); return; }
  readAddress();
  if (!view.a) view.a = Object.values(runs).find((r) => !r.error)?.id || null;
  buildSliders();
  wireControls();
  render();
  // New runs, and runs that start or stop training, appear without reloading the page.
  setInterval(async () => {
    try { await loadRuns(); } catch (err) { return; }
    markOpenRuns();
  }, 15000);
})();
