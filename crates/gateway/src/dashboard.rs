//! The live dashboard at the admin root `/`: one self-contained HTML page (no CDN, no third-party script)
//! that draws the `/v1/history` document as plain inline SVG. The history at the time of the request is
//! embedded in the page, so the first paint needs no round trip and a browser that only loads the page
//! (a headless screenshot) already shows the charts; after that the page polls `/v1/history` every 2 s.

/// The page with `history` (the `/v1/history` document) embedded.
pub(crate) fn page(history: &serde_json::Value) -> String {
    // `</` inside a JSON string would end the <script> element early; `<\/` is the same JSON string.
    let data = serde_json::to_string(history).unwrap_or_else(|_| "null".to_owned()).replace("</", "<\\/");
    PAGE.replace("__SWELL_HISTORY__", &data)
}

const PAGE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Swell dashboard</title>
<style>
body { font: 13px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #1d2433; background: #f6f7f9; }
h1 { font-size: 20px; margin: 0 0 2px; }
h2 { font-size: 15px; margin: 18px 0 6px; }
.sub { color: #5b6578; margin-bottom: 8px; }
.card { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; padding: 8px 12px; margin-bottom: 10px; }
.charts { display: flex; flex-wrap: wrap; gap: 10px; }
.chart { flex: 0 0 auto; }
.chart .t { font-weight: 600; font-size: 12px; }
.legend span { margin-right: 10px; font-size: 11px; white-space: nowrap; }
.legend i { display: inline-block; width: 10px; height: 3px; vertical-align: middle; margin-right: 3px; }
.now { font-size: 12px; color: #5b6578; }
.now b { color: #1d2433; }
svg text { font: 10px system-ui, sans-serif; fill: #5b6578; }
.err { color: #b3261e; }
</style>
</head>
<body>
<h1>Swell</h1>
<div class="sub">Per revision over the last 15 minutes at 1 s resolution; refreshed every 2 s.
<span id="state"></span></div>
<h2>Routes</h2>
<div id="routes"></div>
<h2>Revisions</h2>
<div id="revisions"></div>
<script>
"use strict";
const INITIAL = __SWELL_HISTORY__;
const W = 270, H = 110, PAD_L = 34, PAD_B = 16, PAD_T = 6;
const COLORS = ["#2f6fde", "#e07b16", "#2a9d5b", "#8a4fd1", "#c2185b", "#00838f", "#6d6d00"];

function esc(s) {
  return String(s).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"}[c]));
}

// Seconds ago (0 at the right edge) to an x coordinate.
function xOf(t, now, span) { return PAD_L + (W - PAD_L) * (1 - (now - t) / span); }

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// One chart: line series over the revision's sample times, panic periods shaded behind them, optional
// bars (cold starts, height = wait).
function chart(title, t, now, span, series, panic, bars, unit) {
  let max = 0;
  for (const s of series) for (const v of s.values) max = Math.max(max, v);
  if (bars) for (const v of bars.values) max = Math.max(max, v);
  max = niceMax(max);
  const y = v => PAD_T + (H - PAD_T - PAD_B) * (1 - v / max);
  let svg = `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">`;
  svg += `<rect x="${PAD_L}" y="${PAD_T}" width="${W - PAD_L}" height="${H - PAD_T - PAD_B}" fill="#fbfcfd" stroke="#e3e6ec"/>`;
  if (panic) {
    for (let i = 0; i < t.length; i++) {
      if (!panic[i]) continue;
      const x0 = xOf(t[i] - 1, now, span), x1 = xOf(t[i], now, span);
      svg += `<rect class="panic" x="${Math.max(PAD_L, x0).toFixed(1)}" y="${PAD_T}" width="${Math.max(1, x1 - Math.max(PAD_L, x0)).toFixed(1)}" height="${H - PAD_T - PAD_B}" fill="#f4c7c3" opacity="0.7"/>`;
    }
  }
  for (const frac of [0.5, 1]) {
    svg += `<line x1="${PAD_L}" x2="${W}" y1="${y(max * frac)}" y2="${y(max * frac)}" stroke="#eceff3"/>`;
    svg += `<text x="${PAD_L - 3}" y="${y(max * frac) + 3}" text-anchor="end">${+(max * frac).toFixed(2)}</text>`;
  }
  svg += `<text x="${PAD_L - 3}" y="${y(0) + 3}" text-anchor="end">0</text>`;
  svg += `<text x="${PAD_L}" y="${H - 3}">-${Math.round(span / 60)} min</text><text x="${W}" y="${H - 3}" text-anchor="end">now</text>`;
  if (bars) {
    for (let i = 0; i < t.length; i++) {
      if (!(bars.counts[i] > 0)) continue;
      const x = xOf(t[i], now, span), top = y(bars.values[i]);
      svg += `<rect class="cold" x="${(x - 1.5).toFixed(1)}" y="${top.toFixed(1)}" width="3" height="${(y(0) - top).toFixed(1)}" fill="${bars.color}"><title>${bars.counts[i]} cold start(s), mean wait ${bars.values[i]} ms</title></rect>`;
    }
  }
  for (const s of series) {
    let d = "";
    for (let i = 0; i < t.length; i++) {
      d += (i ? " L" : "M") + xOf(t[i], now, span).toFixed(1) + "," + y(s.values[i]).toFixed(1);
    }
    if (d) svg += `<path class="series" d="${d}" fill="none" stroke="${s.color}" stroke-width="1.6"${s.dash ? ' stroke-dasharray="4 3"' : ""}/>`;
  }
  svg += "</svg>";
  let legend = series.map(s => `<span><i style="background:${s.color}"></i>${esc(s.name)}</span>`).join("");
  if (bars) legend += `<span><i style="background:${bars.color}"></i>${esc(bars.name)}</span>`;
  if (panic) legend += `<span><i style="background:#f4c7c3"></i>panic</span>`;
  return `<div class="chart"><div class="t">${esc(title)}${unit ? " <span class=now>(" + esc(unit) + ")</span>" : ""}</div>${svg}<div class="legend">${legend}</div></div>`;
}

function last(a) { return a.length ? a[a.length - 1] : 0; }

function renderRevision(rev, now, span) {
  const s = rev.samples;
  const t = s.t;
  const panic = s.panic;
  const inPanic = last(panic) ? " <b style=\"color:#b3261e\">PANIC</b>" : "";
  let html = `<div class="card revision" data-revision="${esc(rev.name)}"><div><b class="name">${esc(rev.name)}</b>${inPanic}
    <span class="now">desired <b>${last(s.desired)}</b> · ready <b>${last(s.ready)}</b> · starting <b>${last(s.starting)}</b>
    · in flight <b>${last(s.inFlight)}</b> · queued <b>${last(s.queued)}</b> · rps <b>${last(s.rps)}</b></span></div><div class="charts">`;
  html += chart("Replicas", t, now, span, [
    {name: "desired", color: "#8a94a6", values: s.desired, dash: true},
    {name: "ready", color: "#2a9d5b", values: s.ready},
    {name: "starting", color: "#e07b16", values: s.starting},
  ], panic);
  html += chart("Requests", t, now, span, [
    {name: "in flight", color: "#2f6fde", values: s.inFlight},
    {name: "queued", color: "#c2185b", values: s.queued},
  ], panic);
  html += chart("Throughput", t, now, span, [{name: "rps", color: "#8a4fd1", values: s.rps}], panic, null, "requests/s");
  html += chart("Cold starts", t, now, span, [], panic,
    {name: "cold start (height: mean wait)", color: "#00838f", values: s.coldStartWaitMs, counts: s.coldStarts}, "wait, ms");
  return html + "</div></div>";
}

function renderRoute(route, now, span) {
  const changes = route.splits;
  const current = changes.length ? changes[changes.length - 1].traffic : [];
  const names = [];
  for (const c of changes) for (const target of c.traffic) if (!names.includes(target.revisionName)) names.push(target.revisionName);
  const color = n => COLORS[names.indexOf(n) % COLORS.length];
  const label = target => target.revisionName + (target.tag ? " (tag " + target.tag + ")" : "") + " " + target.percent + "%";
  let html = `<div class="card route" data-route="${esc(route.name)}"><b>${esc(route.name)}</b>
    <span class="now">${current.map(label).map(esc).join(" · ")}</span><br>`;
  // The split over time: one stacked column per stretch between changes.
  const w = 640, h = 26;
  let svg = `<svg width="${w + PAD_L}" height="${h + 14}" viewBox="0 0 ${w + PAD_L} ${h + 14}" role="img" aria-label="traffic split">`;
  for (let i = 0; i < changes.length; i++) {
    const from = Math.max(changes[i].t, now - span), to = i + 1 < changes.length ? changes[i + 1].t : route.lastSeen;
    if (to < now - span) continue;
    const x0 = PAD_L + w * (1 - (now - from) / span), x1 = PAD_L + w * (1 - (now - to) / span);
    let y0 = 0;
    for (const target of changes[i].traffic) {
      const hh = h * target.percent / 100;
      svg += `<rect x="${x0.toFixed(1)}" y="${y0.toFixed(1)}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${hh.toFixed(1)}" fill="${color(target.revisionName)}" opacity="0.8"><title>${esc(label(target))}</title></rect>`;
      y0 += hh;
    }
  }
  svg += `<text x="${PAD_L}" y="${h + 12}">-${Math.round(span / 60)} min</text><text x="${w + PAD_L}" y="${h + 12}" text-anchor="end">now</text></svg>`;
  const legend = names.map(n => `<span><i style="background:${color(n)}"></i>${esc(n)}</span>`).join("");
  return html + svg + `<div class="legend">${legend}</div></div>`;
}

function render(history) {
  if (!history) return;
  const span = history.capacity * history.intervalSeconds;
  const now = history.now;
  document.getElementById("routes").innerHTML =
    history.routes.map(r => renderRoute(r, now, span)).join("") || "<div class=card>No routes.</div>";
  document.getElementById("revisions").innerHTML =
    history.revisions.map(r => renderRevision(r, now, span)).join("") || "<div class=card>No samples yet.</div>";
}

render(INITIAL);
setInterval(() => {
  fetch("/v1/history", {cache: "no-store"})
    .then(r => { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
    .then(h => { render(h); document.getElementById("state").textContent = ""; })
    .catch(e => { const s = document.getElementById("state"); s.className = "err"; s.textContent = "refresh failed: " + e.message; });
}, 2000);
</script>
</body>
</html>
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_is_embedded_and_cannot_close_the_script() {
        let page = page(&serde_json::json!({"revisions": [{"name": "</script><b>x"}]}));
        assert!(!page.contains("__SWELL_HISTORY__"));
        assert!(page.contains(r#"{"revisions":[{"name":"<\/script><b>x"}]}"#), "{page}");
        assert_eq!(page.matches("</script>").count(), 1, "only the page's own script end");
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for outside in ["http://", "https://", "src=", "@import"] {
            assert!(!PAGE.contains(outside), "the page refers to {outside}");
        }
    }
}
