"""An evaluation report for one model and several direction methods: Markdown tables and heatmaps.

:func:`write_report` writes ``report.md`` with up to three sections — reconstructor classification
accuracy (Voynov & Babenko), agreement with supervised boundaries (SeFa paper, Table 1) and the
re-scoring matrices (SeFa paper, Table 2) — and one ``rescoring_<method>.png`` heatmap per method. The
heatmaps are drawn with Pillow alone (no plotting library). Everything is written atomically.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageFont

from ..hub import atomic_folder
from .agreement import Agreement, agreement_table
from .rca import RCAResult
from .rescoring import FACTOR_LABELS, RECOVERED_RATIO, RescoringResult, disentanglement_table

__all__ = ["REPORT_NAME", "rescoring_heatmap", "write_report"]

REPORT_NAME = "report.md"
RESULT_KEYS = ("rca", "agreement", "rescoring")

# Viridis at five stops (perceptually uniform, readable in grey scale); interpolated linearly.
_VIRIDIS = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))


def _color(t: float) -> tuple[int, int, int]:
    t = min(max(t, 0.0), 1.0) * (len(_VIRIDIS) - 1)
    i = min(int(t), len(_VIRIDIS) - 2)
    f = t - i
    a, b = _VIRIDIS[i], _VIRIDIS[i + 1]
    return (round(a[0] + f * (b[0] - a[0])), round(a[1] + f * (b[1] - a[1])), round(a[2] + f * (b[2] - a[2])))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # scalable when Pillow has FreeType
    except (TypeError, ValueError, OSError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return math.ceil(right - left), math.ceil(bottom - top)


def rescoring_heatmap(result: RescoringResult, title: str | None = None, font_size: int = 13) -> Image.Image:
    """Render a re-scoring matrix as a labelled heatmap (rows: directions, columns: factors).

    Each cell shows its value; colours run from 0 to the matrix maximum (colour bar on the right).

    Example:

    >>> import torch
    >>> from sefa_plugin.evaluation.rescoring import RescoringResult
    >>> r = RescoringResult(torch.rand(3, 2), ("scale", "x"), ["d0", "d1", "d2"], 3.0)
    >>> img = rescoring_heatmap(r, title="demo")
    >>> img.mode, img.size[0] > img.size[1] // 2
    ('RGB', True)
    """
    matrix = torch.as_tensor(result.matrix, dtype=torch.float32).cpu()
    if matrix.ndim != 2 or matrix.shape != (len(result.labels), len(result.factor_names)):
        raise ValueError(
            f"`result.matrix` must have shape [{len(result.labels)}, {len(result.factor_names)}] "
            f"(labels × factors), got {list(matrix.shape)}."
        )
    font, small = _font(font_size), _font(max(font_size - 2, 8))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    cols = [FACTOR_LABELS.get(f, f) for f in result.factor_names]
    rows = [str(label) for label in result.labels]
    finite = matrix[torch.isfinite(matrix)]
    vmax = float(finite.max()) if finite.numel() and float(finite.max()) > 0 else 1.0
    pad = 8
    cell_w = max(48, _text_size(probe, "0.00", small)[0] + 14)
    cell_h = max(24, _text_size(probe, "0.00", small)[1] + 12)
    row_w = max((_text_size(probe, r, font)[0] for r in rows), default=0) + 2 * pad
    col_h = max((_text_size(probe, c, font)[0] for c in cols), default=0) + 2 * pad
    title_h = _text_size(probe, title, font)[1] + 2 * pad if title else pad
    bar_w = 16 + _text_size(probe, f"{vmax:.2f}", small)[0] + 3 * pad
    width = row_w + cell_w * len(cols) + bar_w + pad
    bar_h = max(cell_h * len(rows), 40)
    height = title_h + col_h + bar_h + pad
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((pad, pad), title, fill="black", font=font)
    x0, y0 = row_w, title_h + col_h
    # 1. Column labels, rotated to read bottom-up, centred over their column.
    for j, label in enumerate(cols):
        tw, th = _text_size(probe, label, font)
        strip = Image.new("RGB", (tw + 4, th + 6), "white")
        ImageDraw.Draw(strip).text((2, 0), label, fill="black", font=font)
        strip = strip.rotate(90, expand=True)
        img.paste(strip, (x0 + j * cell_w + (cell_w - strip.width) // 2, y0 - pad // 2 - strip.height))
    # 2. Row labels, right-aligned next to their row.
    for i, label in enumerate(rows):
        tw, th = _text_size(probe, label, font)
        draw.text((row_w - pad - tw, y0 + i * cell_h + (cell_h - th) // 2), label, fill="black", font=font)
    # 3. Cells with their values.
    for i in range(len(rows)):
        for j in range(len(cols)):
            v = float(matrix[i, j])
            box = (x0 + j * cell_w, y0 + i * cell_h, x0 + (j + 1) * cell_w - 1, y0 + (i + 1) * cell_h - 1)
            color = _color(v / vmax) if math.isfinite(v) else (200, 200, 200)
            draw.rectangle(box, fill=color)
            text = f"{v:.2f}" if math.isfinite(v) else "n/a"
            tw, th = _text_size(probe, text, small)
            luminance = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
            draw.text((box[0] + (cell_w - tw) // 2, box[1] + (cell_h - th) // 2 - 1), text,
                      fill="black" if luminance > 140 else "white", font=small)  # fmt: skip
    # 4. Colour bar from 0 (bottom) to the maximum (top).
    bx, bh = x0 + cell_w * len(cols) + pad, bar_h
    for y in range(bh):
        draw.line([(bx, y0 + y), (bx + 15, y0 + y)], fill=_color(1 - y / max(bh - 1, 1)))
    draw.text((bx + 20, y0), f"{vmax:.2f}", fill="black", font=small)
    draw.text((bx + 20, y0 + bh - _text_size(probe, "0", small)[1] - 2), "0", fill="black", font=small)
    return img


def _file_stem(method: str, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", method).strip("._") or "method"
    candidate, n = stem, 2
    while candidate in taken:
        candidate, n = f"{stem}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _rca_section(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    rows = []
    for method, res in results.items():
        rca = res.get("rca")
        if rca is None:
            continue
        if isinstance(rca, RCAResult):
            chance = "–" if not rca.num_directions else f"{rca.chance:.3f}"
            rows.append(
                f"| {method} | {rca.num_directions or '–'} | {rca.accuracy:.3f} | {chance} | {rca.protocol} "
                f"| {rca.steps} | {rca.eval_samples or '–'} | {rca.seconds:.1f} |"
            )
        else:
            rows.append(f"| {method} | – | {float(rca):.3f} | – | – | – | – | – |")
    if not rows:
        return []
    return [
        "## Reconstructor classification accuracy (RCA)",
        "",
        "A reconstructor is trained with each method's directions held fixed to tell which direction moved "
        "an image (Voynov & Babenko, ICML 2020); RCA is its argmax accuracy on fresh image pairs. Higher "
        "means the directions' effects are easier to tell apart. Protocol `full`: the paper's (new pairs at "
        "every step, full-resolution reconstructor); `fast`: a smaller reconstructor on downsampled images of "
        "a rendered pool of pairs, scored on as many fresh pairs.",
        "",
        "| method | directions | RCA | chance | protocol | training steps | eval samples | seconds |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def _agreement_section(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    table: dict[str, Sequence[Agreement]] = {m: r["agreement"] for m, r in results.items() if r.get("agreement")}
    if not table:
        return []
    return [
        "## Agreement with supervised boundaries",
        "",
        "For each factor, the largest abs(cos) between its supervised boundary (InterFaceGAN) and any of the "
        "method's directions, with that direction's 0-based rank (SeFa paper, Table 1).",
        "",
        agreement_table({m: [Agreement(*row) for row in rows] for m, rows in table.items()}),
        "",
    ]


def _rescoring_section(method: str, result: RescoringResult, png: str) -> list[str]:
    summary = ["| direction | top factor | share of the row |", "|---|---|---|"]
    for i, label in enumerate(result.labels):
        factor, share = result.top_factor(i)
        summary.append(f"| {label} | {FACTOR_LABELS.get(factor, factor)} | {share:.2f} |")
    return [
        f"### {method}",
        "",
        f"![re-scoring matrix of {method}]({png})",
        "",
        *summary,
        "",
        "Full matrix (mean normalised factor change):",
        "",
        result.to_markdown(),
        "",
    ]


def write_report(
    out_dir: str | os.PathLike,
    model_name: str,
    results: Mapping[str, Mapping[str, Any]],
) -> Path:
    """Write ``report.md`` and ``rescoring_<method>.png`` heatmaps for one model, atomically.

    Args:
        out_dir: Output folder (created; other files in it are kept).
        model_name: Shown in the title (a Hub id or a folder name).
        results: ``{method name: {"rca": RCAResult | float | None, "agreement": list of Agreement | None,
            "rescoring": RescoringResult | None}}``; missing keys are skipped.

    Returns:
        The path of ``report.md``.

    Example:

    >>> import torch
    >>> from sefa_plugin.evaluation.agreement import Agreement
    >>> from sefa_plugin.evaluation.rescoring import RescoringResult
    >>> res = {"sefa": {"rca": 0.82, "agreement": [Agreement("scale", 0.93, 1)],
    ...                 "rescoring": RescoringResult(torch.rand(2, 2), ("scale", "x"), ["d0", "d1"], 3.0)}}
    >>> path = write_report("/tmp/sefa-doctest-report", "stylegan2-shapes64", res)
    >>> path.name, (path.parent / "rescoring_sefa.png").is_file()
    ('report.md', True)
    """
    if not isinstance(results, Mapping) or not results:
        raise ValueError("`results` must be a non-empty mapping {method name: {'rca': ..., 'agreement': ..., ...}}.")
    for method, res in results.items():
        if not isinstance(res, Mapping):
            raise ValueError(f"`results[{method!r}]` must be a mapping with keys among {RESULT_KEYS}.")
        unknown = sorted(set(res) - set(RESULT_KEYS))
        if unknown:
            raise ValueError(f"`results[{method!r}]` has unknown keys {unknown}; allowed: {RESULT_KEYS}.")
    lines = [
        f"# Direction evaluation: {model_name}",
        "",
        "Methods: " + ", ".join(f"`{m}`" for m in results) + ".",
        "",
        *_rca_section(results),
        *_agreement_section(results),
    ]
    heatmaps: dict[str, Image.Image] = {}
    taken: set[str] = set()
    rescored = [(m, r["rescoring"]) for m, r in results.items() if r.get("rescoring") is not None]
    if rescored:
        lines += [
            "## Which method recovered which factor",
            "",
            "Per factor, the direction that changes it most (#row of the re-scoring matrix), that change, and "
            "×ratio: that change divided by the same direction's largest change of any other factor (the "
            f"reading of the SeFa paper's Table 2). ✓: ratio ≥ {RECOVERED_RATIO:g}, the factor is recovered.",
            "",
            disentanglement_table(dict(rescored)),
            "",
        ]
        lines += [
            "## Re-scoring matrices",
            "",
            "Each direction is applied at −s and +s and the factor predictor measures how much every factor "
            "changes (SeFa paper, Table 2); a row concentrated on one factor is a disentangled direction.",
            "",
        ]
        for method, result in rescored:
            png = f"rescoring_{_file_stem(method, taken)}.png"
            heatmaps[png] = rescoring_heatmap(result, title=f"{model_name}: {method} (strength ±{result.strength:g})")
            lines += _rescoring_section(method, result, png)
    with atomic_folder(out_dir, what="out_dir") as tmp:
        for name, image in heatmaps.items():
            image.save(tmp / name, format="PNG")
        (tmp / REPORT_NAME).write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return Path(out_dir) / REPORT_NAME
