// The carousel web page. In order:
//   1. the interface's language (English or Spanish, from the browser's; words in words.js);
//   2. start: /ready, then /languages and /frontend/settings (the languages to start with, the character
//      limit, how long to wait after typing, whether suggestions and files are on, calibrated pairs);
//   3. translating: on Translate, Ctrl+Enter, or as the user types (debounced; an answer to an older
//      text is dropped), the character count against the limit, and errors in plain words;
//   4. the answer: the translation (low-confidence sentences marked), alternatives, attention alignment;
//   5. copy, suggest a better translation (/suggest), swap (with "Detect language": the detected one);
//   6. files: /translate_file, then a link to /download_file/NAME.
// Every URL is relative, so the page works under the server's url_prefix.
"use strict";

const $ = (id) => document.getElementById(id);

const page = {
  words: WORDS.en, // the interface's words (words.js)
  locale: "en",
  languages: [], // /languages: [{code, name, targets}]
  settings: null, // /frontend/settings
  confidence: null, // settings.confidence: {threshold, pairs: [{source, target}]}, or null
  alignment: [], // per sentence: {source, translation, source_tokens, target_tokens, weights}
  translated: null, // the last answer shown: {text, translation, source (the language it was in), target}
  sent: 0, // translation requests sent; an answer to any but the latest is dropped
  inFlight: null, // the AbortController of the latest request
  typingTimer: null,
};

// -- 1. the interface's language ---------------------------------------------------------------------

function interfaceLocale() {
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const base = tag.toLowerCase().split("-")[0];
    if (base in WORDS) return base;
  }
  return "en";
}

// The interface's words for `key`, each {name} replaced by `values[name]`.
function t(key, values = {}) {
  const text = page.words[key] ?? WORDS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

function applyInterface() {
  page.locale = interfaceLocale();
  page.words = WORDS[page.locale];
  document.documentElement.lang = page.locale;
  document.title = t("title");
  for (const element of document.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
  for (const element of document.querySelectorAll("[data-i18n-placeholder]")) element.placeholder = t(element.dataset.i18nPlaceholder);
  for (const element of document.querySelectorAll("[data-i18n-title]")) element.title = t(element.dataset.i18nTitle);
  for (const element of document.querySelectorAll("[data-i18n-label]")) element.setAttribute("aria-label", t(element.dataset.i18nLabel));
}

// A language's name in the interface's language ("French", "francés"); the server's name otherwise.
function nameOf(code) {
  try {
    const name = new Intl.DisplayNames([page.locale], { type: "language" }).of(code);
    if (name && name !== code) return name;
  } catch (error) { /* an unusual code: the server's name below */ }
  const language = page.languages.find((l) => l.code === code);
  return language ? language.name : code;
}

function byName(codes) { // in the interface's alphabetical order of names
  return [...codes].sort((a, b) => nameOf(a).localeCompare(nameOf(b), page.locale));
}

function listOf(codes) { // "English and Spanish", "español e inglés"
  return new Intl.ListFormat(page.locale, { style: "long", type: "conjunction" }).format(byName(codes).map(nameOf));
}

function formatNumber(value) {
  return Number(value).toLocaleString(page.locale);
}

// -- 2. start ------------------------------------------------------------------------------------------

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
    showStatus(body.error || t("notReady"), false);
  } catch (error) {
    showStatus(t("offline"), true);
  }
  return false;
}

async function start() {
  applyInterface();
  updateCount();
  while (!(await checkReady())) {
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
  await loadSettings();
  await loadLanguages();
}

async function loadSettings() {
  const response = await fetch("frontend/settings");
  if (!response.ok) return;
  page.settings = await response.json();
  page.confidence = page.settings.confidence || null;
  showFileFormats(page.settings);
  updateCount();
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

// The languages the server translates from (each with the targets it reaches), "Detect language" first.
async function loadLanguages() {
  const response = await fetch("languages");
  page.languages = response.ok ? await response.json() : [];
  const sources = byName(page.languages.filter((l) => l.targets.length).map((l) => l.code));
  const start = page.settings ? page.settings.language : { source: { code: "auto" }, target: { code: "en" } };
  fillSelect($("source"), [["auto", t("detect")], ...sources.map((code) => [code, nameOf(code)])], start.source.code);
  updateTargets(start.target.code);
}

function targetsOf(source) {
  if (source === "auto") return [...new Set(page.languages.flatMap((l) => l.targets))];
  return (page.languages.find((l) => l.code === source) || { targets: [] }).targets;
}

function updateTargets(keep = $("target").value) {
  fillSelect($("target"), byName(targetsOf($("source").value)).map((code) => [code, nameOf(code)]), keep);
  loadGlossaries();
}

// The stored glossaries of the chosen pair (with "Detect language": of any source into the target; a
// stored glossary applies to the text detected in its source language). Hidden when there are none.
async function loadGlossaries() {
  const source = $("source").value;
  const target = $("target").value;
  const query = new URLSearchParams({ target });
  if (source !== "auto") query.set("source", source);
  const headers = $("api-key").value ? { Authorization: "Bearer " + $("api-key").value } : {};
  let found = [];
  try {
    const response = await fetch("glossaries?" + query, { headers });
    if (response.ok) found = await response.json();
  } catch (error) {
    found = [];
  }
  if (source !== $("source").value || target !== $("target").value) return; // the pair changed meanwhile
  const choices = found.map((glossary) => [glossary.name, `${glossary.name} (${formatNumber(glossary.terms)})`]);
  fillSelect($("glossary"), [["", t("noGlossary")], ...choices], $("glossary").value);
  $("glossary-box").hidden = found.length === 0;
}

// -- 3. translating ----------------------------------------------------------------------------------------

function charLimit() {
  return page.settings ? page.settings.charLimit : Infinity;
}

function updateCount() {
  const count = $("text").value.length;
  const limit = charLimit();
  const box = $("chars");
  box.textContent = Number.isFinite(limit)
    ? t("chars", { count: formatNumber(count), limit: formatNumber(limit) })
    : formatNumber(count);
  box.classList.toggle("over", count > limit);
}

// Typing: translate once the user has paused for the server's frontendTimeout (LibreTranslate's 500 ms).
function typed() {
  updateCount();
  clearTimeout(page.typingTimer);
  if (!$("live").checked) return;
  const wait = page.settings ? page.settings.frontendTimeout : 500;
  page.typingTimer = setTimeout(() => translate(null, { quiet: true }), wait);
}

// `quiet` (as-you-type): an empty box clears the output instead of asking for text.
async function translate(event, { quiet = false } = {}) {
  if (event) event.preventDefault();
  clearTimeout(page.typingTimer);
  const number = ++page.sent; // from now on, an answer to an older request is stale
  if (page.inFlight) page.inFlight.abort(); // and the server drops its work
  page.inFlight = null;
  $("go").disabled = false;
  const text = $("text").value;
  if (!text.trim()) {
    if (quiet) { clearOutput(); return; }
    // Say so, rather than leave the previous translation standing as if it were this box's.
    showError(t("empty"));
    return;
  }
  if (text.length > charLimit()) {
    showError(t("overLimit", { count: formatNumber(text.length), limit: formatNumber(charLimit()) }));
    return;
  }
  const body = requestBody(text);
  const controller = new AbortController();
  page.inFlight = controller;
  $("go").disabled = true;
  try {
    const response = await fetch("translate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    const answer = await response.json();
    if (number !== page.sent) return; // a newer text was sent meanwhile: this answer is stale
    if (!response.ok) { showError(plainError(response.status, answer)); return; }
    const source = answer.detectedLanguage ? answer.detectedLanguage.language : body.source;
    page.translated = { text, translation: answer.translatedText, source, target: body.target };
    showAnswer(answer);
  } catch (error) {
    if (number === page.sent && error.name !== "AbortError") showError(t("offline"));
  } finally {
    if (number === page.sent) { $("go").disabled = false; page.inFlight = null; }
  }
}

function requestBody(text) {
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
  if ($("glossary").value) body.glossary = $("glossary").value;
  return body;
}

// Whether the server answers a confidence for this pair (with "auto", for any source into the target).
function confidenceOffered(source, target) {
  if (!page.confidence) return false;
  return page.confidence.pairs.some((pair) => pair.target === target && (source === "auto" || pair.source === source));
}

// An error answer in words for people: what happened and what to do. API clients read the same answer's
// `error` (one line for programmers) and `detail` (the facts).
function plainError(status, answer) {
  const detail = answer.detail || {};
  if (detail.reason === "unserved_language") {
    const served = listOf(detail.served && detail.served.length ? detail.served : detail.sources);
    return t(detail.sure ? "looksLike" : "mayBe", { language: nameOf(detail.language), served });
  }
  const message = answer.error || `HTTP ${status}`;
  if (status === 401 || status === 403) {
    if (/suggestion/i.test(message)) return t("failed", { message });
    return $("api-key").value ? t("keyWrong") : t("keyNeeded");
  }
  const byStatus = { 413: "tooLong", 429: "tooMany", 503: "busy", 504: "tooSlow" };
  return status in byStatus ? t(byStatus[status]) : t("failed", { message });
}

function clearOutput() {
  $("output").replaceChildren();
  $("output").classList.remove("error");
  hideAnswerParts();
  page.translated = null;
}

function hideAnswerParts() {
  $("output-meta").textContent = "";
  $("confidence-note").hidden = true;
  $("alternatives-box").hidden = true;
  $("alignment-box").hidden = true;
  $("copy").hidden = true;
  $("suggest").hidden = true;
  $("suggest-box").hidden = true;
  $("copy-done").textContent = "";
  $("suggest-result").textContent = "";
}

function showError(message) {
  $("output").textContent = message;
  $("output").classList.add("error");
  hideAnswerParts();
  page.translated = null;
}

// -- 4. the answer -----------------------------------------------------------------------------------------

function showAnswer(answer) {
  $("output").classList.remove("error");
  hideAnswerParts();
  const low = showTranslation(answer.translatedText, answer.sentenceConfidence || []);
  const meta = [];
  if (answer.detectedLanguage) {
    meta.push(t("detected", { language: nameOf(answer.detectedLanguage.language), confidence: answer.detectedLanguage.confidence }));
  }
  if (typeof answer.scores === "number") meta.push(t("score", { score: answer.scores.toFixed(3) }));
  if (typeof answer.confidence === "number") meta.push(t("confidence", { confidence: answer.confidence.toFixed(2) }));
  $("output-meta").textContent = meta.join(" · ");
  const note = $("confidence-note");
  note.textContent = low.length ? t("lowNote", { values: low.map((c) => c.toFixed(2)).join(", ") }) : "";
  note.hidden = low.length === 0;
  $("copy").hidden = false;
  $("suggest").hidden = !(page.settings && page.settings.suggestions);

  const alternatives = answer.alternatives || [];
  $("alternatives-list").replaceChildren(...alternatives.map((text) => {
    const item = document.createElement("li");
    item.textContent = text;
    return item;
  }));
  $("alternatives-box").hidden = alternatives.length === 0;

  page.alignment = (answer.alignment || []).filter((entry) => entry.target_tokens.length);
  fillSelect($("sentence"), page.alignment.map((entry, i) => [String(i), `${i + 1}. ${entry.source}`]), "0");
  $("alignment-box").hidden = page.alignment.length === 0;
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
    if (typeof value !== "number" || !page.confidence || value >= page.confidence.threshold) {
      box.append(text.slice(at, end));
      at = end;
      continue;
    }
    box.append(text.slice(at, start));
    box.append(lowConfidenceMark(sentence.translation, value.toFixed(2)));
    low.push(value);
    at = end;
  }
  box.append(text.slice(at));
  return low;
}

function lowConfidenceMark(translation, value) {
  const mark = document.createElement("mark");
  mark.className = "low-confidence";
  mark.title = t("lowTitle", { value });
  const flag = document.createElement("span");
  flag.className = "flag";
  flag.setAttribute("aria-hidden", "true");
  flag.textContent = "⚠";
  const said = document.createElement("span");
  said.className = "visually-hidden";
  said.textContent = t("lowSaid", { value });
  mark.append(flag, translation, said);
  return mark;
}

function showToken(token) {
  return token.replace(/\u2581/g, "·"); // SentencePiece's word-start mark
}

function drawAlignment() {
  const entry = page.alignment[Number($("sentence").value)];
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

// -- 5. copy, suggest, swap --------------------------------------------------------------------------------

async function copyTranslation() {
  if (!page.translated) return;
  try {
    await navigator.clipboard.writeText(page.translated.translation);
    $("copy-done").textContent = t("copied");
  } catch (error) {
    $("copy-done").textContent = t("copyFailed");
  }
}

function openSuggestion() {
  if (!page.translated) return;
  $("suggestion").value = page.translated.translation;
  $("suggest-box").hidden = false;
  $("suggest-result").textContent = "";
  $("suggestion").focus();
}

async function sendSuggestion() {
  const { text, source, target } = page.translated || {};
  const suggestion = $("suggestion").value.trim();
  if (!text || !suggestion) return;
  const body = { q: text, s: suggestion, source, target };
  if ($("api-key").value) body.api_key = $("api-key").value;
  const result = $("suggest-result");
  try {
    const response = await fetch("suggest", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const answer = await response.json();
    result.textContent = response.ok ? t("suggestThanks") : plainError(response.status, answer);
    result.classList.toggle("error", !response.ok);
    if (response.ok) $("suggest-box").hidden = true;
  } catch (error) {
    result.textContent = t("offline");
    result.classList.add("error");
  }
}

// Swap: the target becomes the source, and the language the text is in (with "Detect language", the one
// detected in the last translation) the target; the translation becomes the text to translate.
function swapLanguages() {
  const source = $("source").value;
  const target = $("target").value;
  const detected = page.translated && page.translated.text === $("text").value ? page.translated.source : null;
  const from = source === "auto" ? detected : source;
  if (!from || !target) { showStatus(t("swapNeedsSource"), false); return; }
  if (!targetsOf(target).includes(from)) {
    showStatus(t("noReverse", { from: nameOf(target), to: nameOf(from) }), false);
    return;
  }
  showStatus("");
  $("source").value = target;
  updateTargets(from);
  if (page.translated) {
    $("text").value = page.translated.translation;
    updateCount();
    if ($("live").checked) translate(null, { quiet: true });
  }
}

// -- 6. files ------------------------------------------------------------------------------------------------

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
  if (!file) { showFileResult(t("chooseFile"), { error: true }); return; }
  const form = new FormData();
  form.append("file", file);
  form.append("source", $("source").value);
  form.append("target", $("target").value);
  if ($("api-key").value) form.append("api_key", $("api-key").value);
  if ($("glossary").value) form.append("glossary", $("glossary").value);
  $("file-go").disabled = true;
  showFileResult(t("translatingFile", { name: file.name }));
  try {
    const response = await fetch("translate_file", { method: "POST", body: form });
    const answer = await response.json();
    if (!response.ok) { showFileResult(plainError(response.status, answer), { error: true }); return; }
    const link = document.createElement("a");
    link.id = "download";
    link.href = new URL(answer.translatedFileUrl, location.href).pathname; // this page's origin
    link.download = "translated-" + file.name.replace(/\.pot$/i, ".po");
    link.textContent = t("download", { name: link.download });
    showFileResult(t("fileDone", { name: file.name }), { link });
  } catch (error) {
    showFileResult(t("offline"), { error: true });
  } finally {
    $("file-go").disabled = false;
  }
}

// -- wiring ----------------------------------------------------------------------------------------------------

$("translate-form").addEventListener("submit", translate);
$("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) translate(event);
});
$("text").addEventListener("input", typed);
$("source").addEventListener("change", () => { updateTargets(); typed(); });
$("target").addEventListener("change", () => { loadGlossaries(); typed(); });
$("glossary").addEventListener("change", typed);
$("api-key").addEventListener("change", loadGlossaries);
$("swap").addEventListener("click", swapLanguages);
$("copy").addEventListener("click", copyTranslation);
$("suggest").addEventListener("click", openSuggestion);
$("suggest-send").addEventListener("click", sendSuggestion);
$("suggest-cancel").addEventListener("click", () => { $("suggest-box").hidden = true; });
$("sentence").addEventListener("change", drawAlignment);
$("file-form").addEventListener("submit", translateFile);
start();
