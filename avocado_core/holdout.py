"""Which experiments a workspace keeps out of training (to show and score real imputations).

A Latin square over the biosample x assay grid leaves out exactly one experiment per biosample
and per assay (where the grid is square), so every biosample and every assay keeps training
tracks and every one of them has a held-out experiment to judge the imputation by.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import AvocadoValueError

__all__ = ["latin_square"]


def latin_square(biosamples: Sequence[str], assays: Sequence[str], shift: int = 0
                 ) -> list[tuple[str, str]]:
    """One experiment per biosample: biosample i with assay (i + shift) mod n_assays.

    Parameters
    ----------
    biosamples, assays: sequences of str
        The grid, in a fixed order (e.g. sorted).
    shift: int
        Which diagonal: two different shifts give disjoint sets. Default is 0.

    Returns
    -------
    list of (biosample, assay)
        ``len(biosamples)`` experiments; with as many biosamples as assays, each assay once.

    Examples
    --------
    >>> latin_square(["E003", "E017"], ["H3K4me3", "H3K27me3"], shift=1)
    [('E003', 'H3K27me3'), ('E017', 'H3K4me3')]
    """
    if not biosamples or not assays:
        raise AvocadoValueError("a Latin square needs at least one biosample and one assay")
    n = len(assays)
    return [(str(b), str(assays[(i + int(shift)) % n])) for i, b in enumerate(biosamples)]
