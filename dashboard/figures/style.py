"""Colours and fonts shared by the figure builders (kept in step with assets/style.css)."""

from __future__ import annotations

FONT = "Inter, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
TEXT = "#1f2933"
MUTED = "#7b8794"
GRID = "#e4e7eb"
IMPUTED = "#e8590c"
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


def assay_color(assay: str, index: int = 0) -> str:
    """The colour of an assay's tracks: a fixed one for well-known marks, else from the palette."""
    return ASSAY_COLORS.get(assay, CATEGORICAL[index % len(CATEGORICAL)])


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
