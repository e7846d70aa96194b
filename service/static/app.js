// The carousel web page: calls /languages, /ready and /translate; draws the attention alignment;
// translates files through /frontend/settings (formats), /translate_file and /download_file; where
// /frontend/settings says a pair is calibrated, asks for confidence and marks doubtful sentences.
"use strict";

const $ = (id) => document.getElementById(id);
let languages = []; // [{code, name, targets}]
let lastAlignment = []; // per sentence: {source, translation, source_tokens, target_tokens, weights}
let confidence = null; // from /frontend/settings: {threshold, pairs: [{source, target}]}, or null
let lastTranslation = ""; // the translated text itself (the output box also holds the low-confidence marks)

function showStatus(message, isError) {
  const box = $("status");
  box.textContent = message;
  box.className = isError ? "status error" : "status";
  box.hidden = !message;
}

async function checkReady() {
  try {
    const response = await fetch("ready");
    if (response.ok) { showStatus(""); return true; }
    const body = await response.json();
    showStatus(body.error || "The server is not ready.", false);
  } catch (error) {
    showStatus("Cannot reach the server: " + error, true);
  }
  return false;
}

function fillSelect(select, options, keep) {
  select.replaceChildren();
  for (const [value, label] of options) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = label;
    select.append(option);
  }
  if (options.some(([value]) => value === keep)) select.value = keep;
}

function nameOf(code) {
  const language = languages.find((l) => l.code === code);
  return language ? language.name : code;
}

function updateTargets() {
  const source = $("source").value;
  let targets;
  if (source === "auto") {
    targets = [...new Set(languages.flatMap((l) => l.targets))];
  } else {
    targets = (languages.find((l) => l.code === source) || { targets: [] }).targets;
  }
  fillSelect($("target"), targets.map((code) => [code, nameOf(code)]), $("target").value);
}

async function loadLanguages() {
  const response = await fetch("languages");
  languages = response.ok ? await response.json() : [];
  const sources = languages.filter((l) => l.targets.length);
  const previous = $("source").value || (sources.length ? sources[0].code : "auto");
  fillSelect($("source"), [["auto", "Detect language"], ...sources.map((l) => [l.code, l.name])], previous);
  updateTargets();
}

async function waitUntilReady() {
  while (!(await checkReady())) {
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
  await loadLanguages();
  await loadSettings();
}

async function loadSettings() {
  const response = await fetch("frontend/settings");
  if (!response.ok) return;
  const settings = await response.json();
  confidence = settings.confidence || null;
  showFileFormats(settings);
}

// Whether the server answers a confidence for this pair (with "auto", for any source into the target).
function confidenceOffered(source, target) {
  if (!confidence) return false;
  return confidence.pairs.some((pair) => pair.target === target && (source === "auto" || pair.source === source));
}

// -- file translation: POST /translate_file, then a link to GET /download_file/NAME --

function showFileFormats(settings) {
  const formats = settings.supportedFilesFormat || [];
  $("file-box").hidden = !settings.filesTranslation || formats.length === 0;
  $("file").accept = formats.join(",");
  $("file-formats").textContent = formats.join(" ");
}

function showFileResult(message, { link = null, error = false } = {}) {
  const box = $("file-result");
  box.replaceChildren(message);
  if (link) box.append(" ", link);
  box.classList.toggle("error", error);
}

async function translateFile(event) {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) { showFileResult("Choose a file first.", { error: true }); return; }
  const form = new FormData();
  form.append("file", file);
  form.append("source", $("source").value);
  form.append("target", $("target").value);
  if ($("api-key").value) form.append("api_key", $("api-key").value);
  $("file-go").disabled = true;
  showFileResult(`Translating ${file.name}…`);
  try {
    const response = await fetch("translate_file", { method: "POST", body: form });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    const link = document.createElement("a");
    link.id = "download";
    link.href = new URL(answer.translatedFileUrl, location.href).pathname; // this page's origin
    link.download = "translated-" + file.name.replace(/\.pot$/i, ".po");
    link.textContent = "Download " + link.download;
    showFileResult(`${file.name} translated.`, { link });
  } catch (error) {
    showFileResult(String(error.message || error), { error: true });
  } finally {
    $("file-go").disabled = false;
  }
}

function swapLanguages() {
  const source = $("source").value;
  const target = $("target").value;
  if (source === "auto" || !target) return;
  const reverse = languages.find((l) => l.code === target && l.targets.includes(source));
  if (!reverse) { showStatus(`No model translates ${nameOf(target)} → ${nameOf(source)}.`, false); return; }
  $("source").value = target;
  updateTargets();
  $("target").value = source;
  if (lastTranslation) $("text").value = lastTranslation;
}

function showError(message) {
  $("output").textContent = message;
  $("output").classList.add("error");
  $("output-meta").textContent = "";
  $("confidence-note").hidden = true;
  $("alternatives-box").hidden = true;
  $("alignment-box").hidden = true;
  lastTranslation = "";
}

async function translate(event) {
  if (event) event.preventDefault();
  const text = $("text").value;
  if (!text.trim()) {
    // Say so, rather than leave the previous translation standing as if it were this box's.
    showError("Nothing to translate: type or paste some text first.");
    return;
  }
  const body = {
    q: text,
    source: $("source").value,
    target: $("target").value,
    format: "text",
    alternatives: Number($("alternatives").value) || 0,
    beam_size: Number($("beam").value) || undefined,
    return_scores: true,
    return_alignment: $("show-alignment").checked,
  };
  if (confidenceOffered(body.source, body.target)) body.return_confidence = true;
  if ($("api-key").value) body.api_key = $("api-key").value;
  $("go").disabled = true;
  $("output").classList.remove("error");
  try {
    const response = await fetch("translate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    showAnswer(answer);
  } catch (error) {
    showError(String(error.message || error));
  } finally {
    $("go").disabled = false;
  }
}

function showAnswer(answer) {
  lastTranslation = answer.translatedText;
  const low = showTranslation(answer.translatedText, answer.sentenceConfidence || []);
  const meta = [];
  if (answer.detectedLanguage) {
    meta.push(`detected ${nameOf(answer.detectedLanguage.language)} (${answer.detectedLanguage.confidence}%)`);
  }
  if (typeof answer.scores === "number") meta.push(`score ${answer.scores.toFixed(3)} (length-normalised log-probability)`);
  if (typeof answer.confidence === "number") meta.push(`confidence ${answer.confidence.toFixed(2)} (predicted quality, 0–1)`);
  $("output-meta").textContent = meta.join(" · ");
  const note = $("confidence-note");
  note.textContent = low.length
    ? `⚠ Marked sentences may be wrong: low confidence (${low.map((c) => c.toFixed(2)).join(", ")}).`
    : "";
  note.hidden = low.length === 0;

  const alternatives = answer.alternatives || [];
  $("alternatives-list").replaceChildren(...alternatives.map((text) => {
    const item = document.createElement("li");
    item.textContent = text;
    return item;
  }));
  $("alternatives-box").hidden = alternatives.length === 0;

  lastAlignment = (answer.alignment || []).filter((entry) => entry.target_tokens.length);
  fillSelect($("sentence"), lastAlignment.map((entry, i) => [String(i), `${i + 1}. ${entry.source}`]), "0");
  $("alignment-box").hidden = lastAlignment.length === 0;
  drawAlignment();
}

// The translation in the output box, each sentence whose confidence is below the server's threshold
// inside a <mark> with a visible ⚠, a tooltip and words for screen readers (not colour alone).
// Sentences are found in order in the text (it is their translations joined with the source's
// whitespace); returns the low confidences.
function showTranslation(text, sentences) {
  const box = $("output");
  box.replaceChildren();
  const low = [];
  let at = 0;
  for (const sentence of sentences) {
    const start = sentence.translation ? text.indexOf(sentence.translation, at) : -1;
    if (start < 0) continue;
    const end = start + sentence.translation.length;
    const value = sentence.confidence;
    if (typeof value !== "number" || !confidence || value >= confidence.threshold) {
      box.append(text.slice(at, end));
      at = end;
      continue;
    }
    box.append(text.slice(at, start));
    const mark = document.createElement("mark");
    mark.className = "low-confidence";
    mark.title = `Low confidence (${value.toFixed(2)}): this sentence may be wrong or miss part of the source.`;
    const flag = document.createElement("span");
    flag.className = "flag";
    flag.setAttribute("aria-hidden", "true");
    flag.textContent = "⚠";
    const said = document.createElement("span");
    said.className = "visually-hidden";
    said.textContent = ` (low confidence ${value.toFixed(2)})`;
    mark.append(flag, sentence.translation, said);
    box.append(mark);
    low.push(value);
    at = end;
  }
  box.append(text.slice(at));
  return low;
}

function showToken(token) {
  return token.replace(/\u2581/g, "·"); // SentencePiece's word-start mark
}

function drawAlignment() {
  const entry = lastAlignment[Number($("sentence").value)];
  const box = $("heatmap");
  box.replaceChildren();
  if (!entry) return;
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  head.append(document.createElement("th"));
  for (const token of entry.source_tokens) {
    const th = document.createElement("th");
    th.textContent = showToken(token);
    th.scope = "col";
    head.append(th);
  }
  const body = table.createTBody();
  entry.weights.forEach((row, i) => {
    const tr = body.insertRow();
    const th = document.createElement("th");
    th.textContent = showToken(entry.target_tokens[i] || "");
    th.scope = "row";
    tr.append(th);
    row.forEach((weight, j) => {
      const td = tr.insertCell();
      td.style.background = `rgba(31, 95, 168, ${Math.min(1, Math.max(0, weight)).toFixed(3)})`;
      td.title = `${showToken(entry.target_tokens[i] || "")} ← ${showToken(entry.source_tokens[j] || "")}: ${weight.toFixed(3)}`;
    });
  });
  box.append(table);
}

$("translate-form").addEventListener("submit", translate);
$("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) translate(event);
});
$("text").addEventListener("input", () => { $("chars").textContent = $("text").value.length; });
$("source").addEventListener("change", updateTargets);
$("swap").addEventListener("click", swapLanguages);
$("sentence").addEventListener("change", drawAlignment);
$("file-form").addEventListener("submit", translateFile);
waitUntilReady();
