"""The HTML report's inline style sheet and script: the file must render with nothing fetched."""

from __future__ import annotations

CSS = """
:root { --fg: #1d2330; --muted: #5b6474; --line: #d9dde5; --bg: #f6f7f9; --alert: #c0392b; --event: #5b6474; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       background: var(--bg); }
header { background: #1d2330; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header .meta { color: #c5cad4; font-size: 13px; }
main { padding: 8px 28px 40px; max-width: 1600px; }
h2 { margin: 28px 0 10px; font-size: 18px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { margin: 0 0 6px; font-size: 15px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 16px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 16px; min-width: 140px; }
.card b { display: block; font-size: 22px; }
.card span { color: var(--muted); font-size: 12px; }
.empty { background: #fff; border: 1px dashed var(--line); padding: 20px; border-radius: 6px; color: var(--muted); }
.box { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; margin: 10px 0; }
.plot { width: 100%; max-width: 1100px; height: auto; display: block; background: #fff; }
.plot .grid { stroke: #eceef2; } .plot .tick { font-size: 11px; fill: var(--muted); }
.plot .lbl { font-size: 12px; fill: var(--fg); }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 7px; text-align: left; vertical-align: top; }
th { background: #eef0f4; position: sticky; top: 0; }
td.num { text-align: right; white-space: nowrap; }
.mono, code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12px;
              word-break: break-all; }
.kind-alert { color: var(--alert); font-weight: 600; } .kind-event { color: var(--event); }
.chip { display: inline-block; background: #eef0f4; border-radius: 10px; padding: 0 7px; margin: 1px 2px;
        font-size: 12px; }
.score { display: inline-block; min-width: 34px; text-align: center; border-radius: 4px; color: #fff;
         font-weight: 700; padding: 0 5px; }
.s-hi { background: #c0392b; } .s-mid { background: #e67e22; } .s-lo { background: #b7950b; }
.chain { display: grid; grid-template-columns: 1fr 28px 1fr 28px 1fr; gap: 6px; margin: 8px 0 12px; }
.stage h4 { margin: 0 0 4px; font-size: 12px; text-transform: uppercase; color: var(--muted); letter-spacing: .04em; }
.arrow { align-self: center; text-align: center; font-size: 22px; color: var(--muted); }
.ev { border: 1px solid var(--line); border-left: 4px solid #999; border-radius: 4px; padding: 4px 7px;
      margin-bottom: 5px; background: #fbfbfc; font-size: 12px; word-break: break-word; }
.ev .t { color: var(--muted); }
.k-host_rule, .k-host_event, .k-process { border-left-color: #b07aa1; } .k-staged_file { border-left-color: #4e79a7; }
.k-network, .k-flow { border-left-color: #e15759; }
.proc { font-weight: 600; margin-bottom: 4px; word-break: break-all; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 6px 0; }
dt { color: var(--muted); } dd { margin: 0; word-break: break-all; }
details summary { cursor: pointer; color: #2c5aa0; }
#findings-tools { margin: 6px 0; display: flex; gap: 12px; align-items: center; }
#findings-tools input[type=search] { width: 360px; padding: 4px 8px; }
ul.reasons { margin: 4px 0; padding-left: 18px; }
.muted { color: var(--muted); }
"""

# Built into the page by the script (the rendered DOM shows it ran): a filter over the findings
# table, an alerts-only switch, a row count and a button that opens every evidence block.
SCRIPT = """
(function () {
  var table = document.getElementById("findings-table");
  var tools = document.getElementById("findings-tools");
  if (!table || !tools) { return; }
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var input = document.createElement("input");
  input.type = "search"; input.id = "findings-filter";
  input.placeholder = "filter: host, file, format, reason, address...";
  var only = document.createElement("input");
  only.type = "checkbox"; only.id = "findings-alerts";
  var label = document.createElement("label");
  label.appendChild(only); label.appendChild(document.createTextNode(" alerts only"));
  var open = document.createElement("button");
  open.type = "button"; open.textContent = "open all evidence";
  var shown = document.createElement("span");
  shown.id = "findings-shown"; shown.className = "muted";
  function apply() {
    var q = input.value.toLowerCase(), n = 0;
    rows.forEach(function (r) {
      var ok = (!q || r.textContent.toLowerCase().indexOf(q) >= 0) && (!only.checked || r.dataset.kind === "alert");
      r.hidden = !ok; if (ok) { n += 1; }
    });
    shown.textContent = n + " of " + rows.length + " findings shown";
  }
  open.addEventListener("click", function () {
    var all = table.querySelectorAll("details"), want = open.textContent.indexOf("open") === 0;
    Array.prototype.forEach.call(all, function (d) { d.open = want; });
    open.textContent = want ? "close all evidence" : "open all evidence";
  });
  input.addEventListener("input", apply); only.addEventListener("change", apply);
  [input, label, open, shown].forEach(function (el) { tools.appendChild(el); });
  apply();
})();
"""
