"""The preview page: every rendition a rule makes of a master, as a frontend developer wants to see it.

Pure: `preview_html(markup)` renders the page. At the top the live `<img>` and `<picture>`
markup with what the browser chose (`currentSrc`, pixel size, DPR, viewport); below, every
srcset with each candidate's picture, URL, format, pixel size, bytes (asked of the server by a
HEAD request from the page, with the browser's own Accept for negotiated URLs) and, per DPR, the
slot widths for which a browser picks that candidate.
"""

from __future__ import annotations

import html

from rules.markup import Markup, SourceSet

PREVIEW_DPRS = (1, 2, 3)
BROWSER_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222 }
img { max-width: 100%; height: auto }
.live img, .live picture img { display: block; border: 1px solid #ccc }
table { border-collapse: collapse; width: 100%; margin-bottom: 2rem }
th, td { border-bottom: 1px solid #ddd; padding: .4rem; text-align: left; vertical-align: top }
td.thumb img { max-width: 160px; max-height: 120px }
code { font-size: 12px; word-break: break-all }
output { display: block; font-family: monospace; margin: .5rem 0 1.5rem }
"""

# Fills in what only the browser knows: its choice, and each rendition's bytes and format.
SCRIPT = """
function describe(img, out) {
  const show = () => out.textContent = `currentSrc=${img.currentSrc}  natural=${img.naturalWidth}x${img.naturalHeight}`
    + `  dpr=${devicePixelRatio}  viewport=${innerWidth}`;
  img.complete ? show() : img.addEventListener('load', show);
}
describe(document.querySelector('#live-img img'), document.getElementById('img-choice'));
describe(document.querySelector('#live-picture img'), document.getElementById('picture-choice'));
for (const row of document.querySelectorAll('tr[data-url]')) {
  const headers = row.dataset.negotiated ? {Accept: ACCEPT} : {};
  fetch(row.dataset.url, {method: 'HEAD', headers}).then(r => {
    row.querySelector('.bytes').textContent = r.headers.get('content-length') || '?';
    row.querySelector('.type').textContent = r.headers.get('content-type') || r.status;
  });
}
"""


def selection_ranges(widths: list[int], dprs: tuple[int, ...] = PREVIEW_DPRS) -> list[dict[int, tuple[int, int]]]:
    """For each candidate width (ascending): per DPR, the slot widths (CSS px) for which a browser
    that takes the smallest candidate covering slot x DPR picks it."""
    out = []
    for i, width in enumerate(widths):
        lower = widths[i - 1] if i else 0
        out.append({d: (lower // d + 1, width // d) for d in dprs})
    return out


def _ranges_text(ranges: dict[int, tuple[int, int]], last: bool) -> str:
    parts = []
    for dpr, (lo, hi) in ranges.items():
        parts.append(f"{dpr}x: slot {lo}+ px" if last else f"{dpr}x: slot {lo}–{hi} px")
    return " · ".join(parts)


def _source_table(title: str, source: SourceSet) -> str:
    e = html.escape
    negotiated = source.format == "auto"
    widths = [c.width for c in source.candidates]
    rows = []
    for i, (candidate, ranges) in enumerate(zip(source.candidates, selection_ranges(widths), strict=True)):
        flag = ' data-negotiated="1"' if negotiated else ""
        rows.append(
            f'<tr data-url="{e(candidate.url)}"{flag}>'
            f'<td class="thumb"><img src="{e(candidate.url)}" loading="lazy" alt=""></td>'
            f"<td>{candidate.width}×{candidate.height}</td>"
            f'<td>{"negotiated" if negotiated else e(source.format)}<br><span class="type"></span></td>'
            f'<td class="bytes"></td>'
            f"<td>{e(_ranges_text(ranges, last=i == len(widths) - 1))}</td>"
            f'<td><code><a href="{e(candidate.url)}">{e(candidate.url)}</a></code></td></tr>'
        )
    media = f" · media <code>{e(source.media)}</code>" if source.media else ""
    return (
        f"<h3>{e(title)}</h3><p>sizes <code>{e(source.sizes)}</code>{media}</p>"
        "<table><tr><th></th><th>pixels</th><th>format</th><th>bytes</th><th>picked when</th><th>URL</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def preview_html(markup: Markup) -> str:
    e = html.escape
    tables = [_source_table("<img> srcset (format negotiated from Accept)", markup.img)]
    for source in markup.sources:
        tables.append(_source_table(f"<picture> <source type={source.type}>", source))
    tables.append(_source_table("<picture> fallback <img>", markup.picture_img))
    preload = markup.preload_html("img") if markup.lcp else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(markup.rule)} · {e(markup.master)} · edge-image-cdn preview</title>
{preload}
<style>{STYLE}</style></head>
<body>
<h1>Rule <code>{e(markup.rule)}</code> for <code>{e(markup.master)}</code></h1>
<p>Version <code>{e(markup.version)}</code>{" · LCP: preloaded" if markup.lcp else ""}. Resize the window or change
the device pixel ratio and reload: the lines under each image say what the browser picked.</p>
<h2>Live markup</h2>
<div class="live" id="live-img">{markup.img_html()}</div><output id="img-choice"></output>
<div class="live" id="live-picture">{markup.picture_html()}</div><output id="picture-choice"></output>
<h2>Every rendition</h2>
{"".join(tables)}
<script>const ACCEPT = {BROWSER_ACCEPT!r};{SCRIPT}</script>
</body></html>
"""
