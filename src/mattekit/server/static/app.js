// mattekit page: upload a file with its options, follow the job, preview and download the result.
// Plain browser JavaScript, no build step. Talks only to the JSON API under /api/.
"use strict";

const $ = (sel) => document.querySelector(sel);
const ACTIVE = new Set(["queued", "running"]);
let currentId = null;
let pollTimer = null;
let health = null;
let shownPreview = null; // "<id>:<state>" of the preview on screen, so it is not rebuilt on every poll

function fmtSeconds(s) {
  if (s == null || !isFinite(s)) return "";
  s = Math.max(0, Math.round(s));
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

function fmtTime(t) {
  return t ? new Date(t * 1000).toLocaleString() : "";
}

function statusText(job) {
  const p = job.progress;
  switch (job.state) {
    case "queued":
      return "Queued" + (job.note ? ` (${job.note})` : "");
    case "running": {
      if (job.cancel_requested) return "Stopping…";
      if (job.kind === "image") return "Matting the image…";
      let t = "Running";
      if (p.frames_total) t += `: ${p.frames_done} of ${p.frames_total} frames`;
      else if (p.frames_done) t += `: ${p.frames_done} frames`;
      if (p.fps) t += ` · ${p.fps.toFixed(1)} fps`;
      if (p.eta_seconds != null) t += ` · about ${fmtSeconds(p.eta_seconds)} left`;
      return t;
    }
    case "done": {
      if (!job.warning) return "Done";
      const frames = job.kind === "video" && p.frames_total ? ` (${p.frames_done} of ${p.frames_total} frames)` : "";
      return `Done${frames}, with a warning: ${job.warning}`;
    }
    case "failed": return `Failed: ${job.error || "unknown error"}`;
    case "cancelled": return "Cancelled";
    default: return job.state;
  }
}

async function api(path, options = {}) {
  const res = await fetch(path, options);
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    try { const body = await res.json(); if (body.detail) msg = body.detail; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return res.status === 204 ? null : res.json();
}

// ---- the form ---------------------------------------------------------------------------------

function selected(name) {
  const el = document.querySelector(`input[name="${name}"]:checked`);
  return el ? el.value : "";
}

function chosenFile() {
  return $("#file").files[0] || null;
}

function updateForm() {
  const output = selected("output");
  const bgSet = $("#bg-set");
  bgSet.disabled = output !== "composition";
  const f = chosenFile();
  $("#file-name").textContent = f ? `${f.name} (${(f.size / 1e6).toFixed(1)} MB)` : "No file chosen";
}

function setFile(file) {
  const dt = new DataTransfer();
  dt.items.add(file);
  $("#file").files = dt.files;
  updateForm();
}

function buildForm() {
  const fd = new FormData();
  fd.append("file", chosenFile());
  const output = selected("output");
  const bg = selected("background");
  if (output === "composition") {
    if (bg === "color") fd.append("background", $("#bg-color").value);
    else if (bg === "image") {
      const pic = $("#bg-file").files[0];
      if (!pic) throw new Error("Choose a background picture, or pick another background.");
      fd.append("background", "image");
      fd.append("background_file", pic);
    } else fd.append("background", bg); // "transparent" or "blur"
  }
  fd.append("output", output);
  const f = chosenFile();
  const isVideo = f && f.type.startsWith("video/");
  const type = $("#output-type").value;
  if (type && isVideo) fd.append("output_type", type);
  fd.append("downsample_ratio", $("#ratio").value.trim() || "auto");
  if ($("#model").value) fd.append("model", $("#model").value);
  if ($("#refine").checked && !isVideo) fd.append("refine", "true");
  return fd;
}

function upload(fd) {
  // XMLHttpRequest rather than fetch: it reports upload progress for large videos.
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/jobs");
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) $("#upload-status").textContent = `Uploading ${Math.round(100 * e.loaded / e.total)}%`;
    };
    xhr.onload = () => {
      const body = xhr.response || {};
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new Error(body.detail || `${xhr.status} ${xhr.statusText}`));
    };
    xhr.onerror = () => reject(new Error("the server cannot be reached"));
    xhr.send(fd);
  });
}

async function submitJob(ev) {
  ev.preventDefault();
  $("#form-error").textContent = "";
  if (!chosenFile()) {
    $("#form-error").textContent = "Choose an image or video first.";
    $("#file").focus();
    return;
  }
  const start = $("#start");
  start.disabled = true;
  try {
    const job = await upload(buildForm());
    $("#upload-status").textContent = "";
    currentId = job.id;
    showCurrent(job);
    $("#current").scrollIntoView({ block: "start" });
    await refresh();
  } catch (e) {
    $("#upload-status").textContent = "";
    $("#form-error").textContent = e.message;
  } finally {
    start.disabled = false;
  }
}

// ---- the current job ---------------------------------------------------------------------------

function checkerClass(job) {
  // a cut-out (a composition over transparency, or the foreground) is shown over a checkerboard
  const o = job.options;
  return (o.background === "transparent" && o.output.includes("composition")) || o.output.includes("foreground")
    ? "checker" : "";
}

function buildPreview(job) {
  const box = $("#preview");
  box.replaceChildren();
  if (job.state !== "done" || !job.outputs.length) return;
  const out = job.outputs[0];
  if (job.kind === "image") {
    // before/after: the result lies over the original and a slider uncovers it
    const wrap = document.createElement("div");
    wrap.className = "compare " + checkerClass(job);
    const before = document.createElement("img");
    before.src = job.input_url;
    before.alt = "Original image";
    before.className = "before";
    const after = document.createElement("img");
    after.src = out.url;
    after.alt = "Result";
    after.className = "after";
    wrap.append(before, after);
    const label = document.createElement("label");
    label.className = "compare-label";
    label.textContent = "Before / after ";
    const slider = document.createElement("input");
    slider.type = "range"; slider.min = "0"; slider.max = "100"; slider.value = "50";
    slider.id = "compare-slider";
    const apply = () => { after.style.clipPath = `inset(0 0 0 ${slider.value}%)`; };
    slider.addEventListener("input", apply);
    apply();
    label.append(slider);
    box.append(wrap, label);
  } else if (out.media_type.startsWith("image/")) { // a GIF
    const img = document.createElement("img");
    img.src = out.url;
    img.alt = "Result";
    img.className = checkerClass(job);
    box.append(img);
  } else if (out.media_type === "video/mp4" || out.media_type === "video/webm") {
    const video = document.createElement("video");
    video.src = out.url;
    video.controls = true;
    video.loop = true;
    video.muted = true;
    video.className = checkerClass(job);
    video.setAttribute("aria-label", "Result video");
    box.append(video);
  } else {
    const p = document.createElement("p");
    const what = out.media_type === "application/zip" ? "a folder of PNG frames" : "a ProRes video";
    p.textContent = `${out.name}: ${(out.bytes / 1e6).toFixed(1)} MB (${what}; no preview in the browser).`;
    box.append(p);
  }
}

function showCurrent(job) {
  const sec = $("#current");
  sec.hidden = false;
  sec.dataset.state = job.state;
  sec.dataset.jobId = job.id;
  $("#cur-name").textContent = job.filename;
  const prog = $("#cur-progress");
  if (job.state === "running" && job.progress.fraction == null) prog.removeAttribute("value");
  else prog.value = job.state === "done" ? 1 : (job.progress.fraction || 0);
  $("#cur-status").textContent = statusText(job);
  const dl = $("#download");
  document.querySelectorAll("#current .download-more").forEach((a) => a.remove());
  if (job.state === "done" && job.outputs.length) {
    dl.href = job.outputs[0].url;
    dl.setAttribute("download", "");
    dl.textContent = `Download ${job.outputs[0].name}`;
    dl.hidden = false;
    for (const out of job.outputs.slice(1).reverse()) { // a job of several outputs (from the API)
      const a = document.createElement("a");
      a.className = "button download-more";
      a.href = out.url; a.setAttribute("download", ""); a.textContent = `Download ${out.name}`;
      dl.after(a);
    }
  } else {
    dl.hidden = true;
  }
  $("#cur-cancel").hidden = !ACTIVE.has(job.state);
  const key = `${job.id}:${job.state}`;
  if (shownPreview !== key) {
    shownPreview = key;
    buildPreview(job);
  }
}

async function cancelJob(id) {
  try {
    const job = await api(`/api/jobs/${id}/cancel`, { method: "POST" });
    if (id === currentId) showCurrent(job);
  } catch (e) {
    $("#form-error").textContent = e.message;
  }
  refresh();
}

async function deleteJob(id) {
  try {
    await api(`/api/jobs/${id}`, { method: "DELETE" });
    if (id === currentId) {
      currentId = null;
      shownPreview = null;
      $("#current").hidden = true;
    }
  } catch (e) {
    $("#form-error").textContent = e.message;
  }
  refresh();
}

// ---- the job list ------------------------------------------------------------------------------

function button(text, label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

function renderJobs(jobs) {
  const body = $("#jobs tbody");
  const focusedKey = document.activeElement && document.activeElement.dataset.key;
  body.replaceChildren();
  for (const job of jobs) {
    const tr = document.createElement("tr");
    tr.dataset.jobId = job.id;
    tr.dataset.state = job.state;
    const name = document.createElement("td");
    name.textContent = `${job.filename} (${job.kind}, ${job.options.output})`;
    const state = document.createElement("td");
    state.textContent = job.state === "running" && job.progress.fraction != null
      ? `running ${Math.round(100 * job.progress.fraction)}%` : job.state;
    if (job.state === "failed") state.title = job.error || "";
    if (job.state === "done" && job.warning) {
      state.textContent = "done (warning)";
      state.title = job.warning;
    }
    const when = document.createElement("td");
    when.className = "wide";
    when.textContent = fmtTime(job.created);
    const cell = document.createElement("td");
    const actions = document.createElement("div");
    actions.className = "job-actions";
    cell.append(actions);
    const items = [button("View", `View ${job.filename}`, () => { currentId = job.id; showCurrent(job); $("#cur-h").scrollIntoView(); })];
    if (ACTIVE.has(job.state)) items.push(button("Cancel", `Cancel ${job.filename}`, () => cancelJob(job.id)));
    if (job.state === "done" && job.outputs.length) {
      const a = document.createElement("a");
      a.href = job.outputs[0].url; a.textContent = "Download"; a.setAttribute("download", "");
      a.setAttribute("aria-label", `Download the result of ${job.filename}`);
      items.push(a);
    }
    if (!ACTIVE.has(job.state)) items.push(button("Delete", `Delete ${job.filename}`, () => deleteJob(job.id)));
    for (const el of items) {
      el.dataset.key = `${job.id}:${el.textContent}`;
      actions.append(el);
    }
    tr.append(name, state, when, cell);
    body.append(tr);
  }
  $("#jobs-empty").hidden = jobs.length > 0;
  if (focusedKey) { // keep keyboard focus across a re-render
    const again = body.querySelector(`[data-key="${CSS.escape(focusedKey)}"]`);
    if (again) again.focus();
  }
}

async function refresh() {
  clearTimeout(pollTimer);
  let active = false;
  try {
    const { jobs } = await api("/api/jobs?limit=50");
    renderJobs(jobs);
    active = jobs.some((j) => ACTIVE.has(j.state));
    if (currentId) {
      const cur = jobs.find((j) => j.id === currentId) || await api(`/api/jobs/${currentId}`);
      showCurrent(cur);
    }
  } catch (e) {
    $("#form-error").textContent = `Cannot reach the server: ${e.message}`;
  }
  pollTimer = setTimeout(refresh, active ? 700 : 4000);
}

// ---- start -------------------------------------------------------------------------------------

function setupDrop() {
  const drop = $("#drop");
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => {
    e.preventDefault(); drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer.files.length) setFile(e.dataTransfer.files[0]);
  });
}

async function init() {
  setupDrop();
  $("#file").addEventListener("change", updateForm);
  document.querySelectorAll('input[name="output"]').forEach((r) => r.addEventListener("change", updateForm));
  $("#bg-color").addEventListener("input", () => { document.querySelector('input[name="background"][value="color"]').checked = true; });
  $("#bg-file").addEventListener("change", () => { document.querySelector('input[name="background"][value="image"]').checked = true; });
  $("#job-form").addEventListener("submit", submitJob);
  $("#cur-cancel").addEventListener("click", () => currentId && cancelJob(currentId));
  updateForm();
  try {
    health = await api("/api/health");
    $("#version").textContent = health.version;
    $("#model").options[0].textContent = `server default (${health.default_model})`;
    for (const m of health.models) {
      const opt = document.createElement("option");
      opt.value = m.name;
      opt.textContent = `${m.name}: ${m.kind === "video" ? "video, recurrent" : "per frame"}, ${m.precision}`;
      $("#model").append(opt);
    }
  } catch (e) { /* refresh() reports it */ }
  refresh();
}

document.addEventListener("DOMContentLoaded", init);
