"""Colours and fonts shared by the figure builders (kept in step with assets/style.css)."""

from __future__ import annotations

FONT = "Inter, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
TEXT = "#1f2933"
MUTED = "#7b8794"
GRID = "#e4e7eb"
IMPUTED = "#e8590c"
#: The imputed line of the locus tracks: near-black, so that it stands out from the filled
#: observed signal of every assay colour; its band is a neutral grey.
IMPUTED_LINE = "#1b2430"
BAND = "#8a96a3"
SELECTED = "#d6336c"
GENE = "#1c3d5a"

# One colour per assay, in the spirit of the Roadmap / IGV palettes for histone marks.
ASSAY_COLORS = {
    "H3K4me3": "#d62728",
    "H3K4me1": "#e6a700",
    "H3K27ac": "#ff7f0e",
    "H3K36me3": "#2ca02c",
    "H3K27me3": "#7f7fbf",
    "H3K9me3": "#8c564b",
    "DNase": "#17becf",
}

# Categorical palette: Tableau 20-like, readable on white, cycled past 20 categories.
CATEGORICAL = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a",
    "#d62728", "#ff9896", "#9467bd", "#c5b0d5",
]

CONTINUOUS = "Viridis"


#: Least contrast of an assay colour against white: WCAG's 4.5:1 for text (the track labels
#: are written in it).
MIN_CONTRAST = 4.5


def contrast_ratio(color: str, background: str = "#ffffff") -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    def luminance(hex_color: str) -> float:
        h = hex_color.lstrip("#")
        channels = [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(color), luminance(background)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def legible(color: str, min_ratio: float = MIN_CONTRAST) -> str:
    """``color`` darkened (mixed with black in 5 % steps) until it reaches ``min_ratio``
    against white; unchanged when it already does."""
    h = color.lstrip("#")
    rgb = [int(h[i:i + 2], 16) for i in (0, 2, 4)]
    for step in range(21):
        out = "#" + "".join(f"{round(c * (1 - step / 20)):02x}" for c in rgb)
        if contrast_ratio(out) >= min_ratio:
            return out
    return "#000000"


def assay_color(assay: str, index: int = 0) -> str:
    """The colour of an assay's tracks: a fixed one for well-known marks, else from the
    palette; darkened where needed so that it reads on white (:data:`MIN_CONTRAST`)."""
    return legible(ASSAY_COLORS.get(assay, CATEGORICAL[index % len(CATEGORICAL)]))


def base_layout(**kw) -> dict:
    """Layout defaults shared by every figure: white background, the app font, tight margins."""
    layout = dict(
        template="plotly_white",
        font=dict(family=FONT, size=12, color=TEXT),
        paper_bgcolor="white",
        plot_bgcolor="white",
        margin=dict(l=10, r=10, t=10, b=10),
        hoverlabel=dict(font=dict(family=FONT, size=12), bgcolor="white"),
    )
    layout.update(kw)
    return layout
