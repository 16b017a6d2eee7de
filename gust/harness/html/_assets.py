"""The page's only style sheet and script, inline (hashed into its Content-Security-Policy)."""

from __future__ import annotations

from typing import Final

STYLE: Final = """
:root{--ink:#1b1f24;--dim:#5f6b76;--line:#d5dae0;--bg:#f5f6f8;--sel:#1565c0}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,"DejaVu Sans","Liberation Sans",sans-serif;
color:var(--ink);background:var(--bg)}
header{background:#fff;border-bottom:1px solid var(--line);padding:12px 20px}
h1{font-size:20px;margin:0 0 6px}h2{font-size:16px;margin:0 0 8px}
h3{font-size:13px;margin:14px 0 4px;text-transform:uppercase;letter-spacing:.04em;
color:var(--dim)}
main{padding:14px 20px;display:flex;flex-direction:column;gap:14px}
main>section,.split>section,aside{background:#fff;border:1px solid var(--line);
border-radius:8px;padding:12px 14px}
.split{display:grid;grid-template-columns:minmax(0,1fr) minmax(360px,40%);gap:14px;
align-items:start}
aside{position:sticky;top:8px;max-height:calc(100vh - 16px);overflow:auto}
.scroll{overflow:auto;max-height:70vh}
#timeline-box .scroll{max-height:60vh}
dl.facts{display:flex;flex-wrap:wrap;gap:4px 22px;margin:0}
dl.facts div{display:flex;gap:6px}dt{color:var(--dim)}dd{margin:0}
dl.more div{display:flex;gap:8px}
code,pre{font:12.5px/1.4 "DejaVu Sans Mono","Liberation Mono",monospace}
pre{background:#f3f4f6;border:1px solid var(--line);border-radius:6px;padding:8px;margin:0;
white-space:pre-wrap;overflow-wrap:anywhere;max-height:420px;overflow:auto}
a{color:var(--sel)}
.dim{color:var(--dim)}
.cut{display:block;color:var(--dim);font-style:italic}
.badge{display:inline-block;border:1px solid;border-radius:10px;padding:0 8px;
font-size:12.5px;font-weight:600;white-space:nowrap}
.legend .badge{margin-right:6px}
#story ul{list-style:none;margin:0;padding:0}
#story li{padding:2px 0}#story li.sub{padding-left:26px}
#story .sym{display:inline-block;width:18px;text-align:center;font-weight:700}
.reason{font-family:"DejaVu Sans Mono","Liberation Mono",monospace;font-size:13px}
table{border-collapse:collapse;width:100%}
th{text-align:left;color:var(--dim);font-weight:600;font-size:12.5px}
td,th{padding:3px 8px 3px 0;border-bottom:1px solid #eceef1;vertical-align:top}
table.logs td.msg{white-space:pre-wrap;overflow-wrap:anywhere;
font:12.5px/1.4 "DejaVu Sans Mono","Liberation Mono",monospace}
table.logs td.t,table.logs td.a,table.logs td.lv{white-space:nowrap;font-size:12.5px}
tr.lv-warning td.lv{color:#8a5300;font-weight:700}
tr.lv-error td.lv,tr.lv-critical td.lv{color:#b71c1c;font-weight:700}
tr.lv-debug td{color:var(--dim)}
tr.gap td{color:var(--dim);font-style:italic}
.error{border-left:4px solid #c62828;padding:2px 0 2px 10px;margin:8px 0}
.error .message{font-weight:700;margin:0 0 4px;white-space:pre-wrap}
.error .exception{margin:0 0 6px;white-space:pre-wrap;overflow-wrap:anywhere}
.error .where{margin:0 0 6px}
ul.warnings{margin:0;padding-left:20px;color:#8a5300}
.detail{padding-bottom:10px;border-bottom:1px dashed var(--line);margin-bottom:10px}
.js .detail{display:none}.js .detail.shown{display:block;border:0}
.detail h2{font-size:17px}
svg text{font-family:system-ui,"DejaVu Sans","Liberation Sans",sans-serif}
.node rect{stroke-width:1.5}
.node text.name{font-size:13px;font-weight:600;fill:var(--ink)}
.node text.meta{font-size:11px;fill:#3d4750}
.node{cursor:pointer}.node:focus{outline:none}
.node:hover rect,.node:focus rect{stroke-width:3}
.node.selected rect{stroke:var(--sel);stroke-width:3.5}
.edge{fill:none;stroke:#9aa4ae;stroke-width:1.3}
.edge.lit{stroke:var(--sel);stroke-width:2.4}
marker path{fill:#7d8791}
.st-ok{--fill:#e6f4ea;--stroke:#1e7e34}
.st-error{--fill:#fde8e8;--stroke:#c62828}
.st-timeout{--fill:#f3e5f5;--stroke:#7b1fa2}
.st-upstream_failed{--fill:#fff3dc;--stroke:#a35f00}
.st-not_run{--fill:#f1f3f5;--stroke:#7d8791}
.st-interrupted{--fill:#e8eef7;--stroke:#3f5f8a}
.st-callback_failed{--fill:#fde8e8;--stroke:#c62828}
.st-unknown{--fill:#eeeeee;--stroke:#444}
.badge{background:var(--fill);border-color:var(--stroke);color:var(--stroke)}
#story li[class^=st-] .sym{color:var(--stroke)}
.node rect{fill:var(--fill);stroke:var(--stroke)}
.node.st-upstream_failed rect{stroke-dasharray:6 3}
.node.st-not_run rect{stroke-dasharray:2 3}
.node.st-interrupted rect{stroke-dasharray:8 2 2 2}
.node .sym{fill:var(--stroke)}
.bar rect{fill:var(--stroke)}.bar text.n{fill:#fff;font-size:10px;font-weight:700}
.bar{cursor:pointer}.bar.selected rect{stroke:var(--sel);stroke-width:2}
.row text.label{text-anchor:end;font-size:12px;fill:var(--ink)}
.row.selected text.label{font-weight:700;fill:var(--sel)}
text.none{font-size:11.5px;fill:var(--stroke)}
line.tick{stroke:#e3e6ea}text.tick{font-size:10.5px;fill:var(--dim);text-anchor:middle}
.hint{margin:6px 0 0;font-size:12.5px}
text.stage{font-size:11px;fill:var(--dim);text-transform:uppercase;letter-spacing:.05em}
"""

SCRIPT: Final = """
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  function select(ref) {
    var target = ref ? document.getElementById(ref) : null;
    if (!target || !target.classList.contains("detail")) return false;
    document.querySelectorAll(".detail.shown, .selected").forEach(function (el) {
      el.classList.remove("shown", "selected");
    });
    target.classList.add("shown");
    document.querySelectorAll("[data-ref]").forEach(function (el) {
      if (el.getAttribute("data-ref") === ref && !el.closest("#details")) {
        el.classList.add("selected");
      }
    });
    document.querySelectorAll(".edge").forEach(function (el) {
      var lit = el.getAttribute("data-from") === ref || el.getAttribute("data-to") === ref;
      el.classList.toggle("lit", lit);
    });
    document.getElementById("details").scrollTop = 0;
    return true;
  }
  document.addEventListener("click", function (event) {
    var el = event.target.closest ? event.target.closest("[data-ref]") : null;
    if (el && select(el.getAttribute("data-ref"))) event.preventDefault();
  });
  if (!select(location.hash.slice(1))) select(document.body.getAttribute("data-initial"));
})();
"""
