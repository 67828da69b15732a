"""The learned factors of a model: biosamples, assays and genome positions.

:class:`EmbeddingMixin` gives :class:`~avocado_core.model.Avocado` its ``*_embedding`` and
``genome_factors`` methods (copies on the host, whatever the model's device): what the
projections (:mod:`avocado_core.projection`), the selection and the downstream features read.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import AvocadoKeyError
from .network import GENOME_RESOLUTIONS

__all__ = ["GENOME_CHUNK", "EmbeddingMixin"]

#: Positions whose genome factors :meth:`EmbeddingMixin.genome_embedding` computes at once (110
#: factors each by default: about 115 MB).
GENOME_CHUNK = 1 << 18


class EmbeddingMixin:
    """The factor accessors of :class:`~avocado_core.model.Avocado`."""

    def biosample_embedding(self) -> np.ndarray:
        """Learned biosample factors.

        Returns
        -------
        numpy.ndarray, shape=(n_biosamples, n_biosample_factors), dtype=float32
        """
        return self.network.biosample_embedding.weight.detach().cpu().numpy().copy()

    def celltype_embedding(self) -> np.ndarray:
        """Alias of :meth:`biosample_embedding`."""
        return self.biosample_embedding()

    def assay_embedding(self) -> np.ndarray:
        """Learned assay factors.

        Returns
        -------
        numpy.ndarray, shape=(n_assays, n_assay_factors), dtype=float32
        """
        return self.network.assay_embedding.weight.detach().cpu().numpy().copy()

    def genome_factors(self, resolution: str) -> np.ndarray:
        """One raw genome table.

        Parameters
        ----------
        resolution: str
            ``"25bp"`` (one row per position), ``"250bp"`` (row ``i // 10``) or ``"5kbp"``
            (row ``i // 200``).

        Returns
        -------
        numpy.ndarray, shape=(n_rows, n_factors), dtype=float32
        """
        if resolution not in GENOME_RESOLUTIONS:
            raise AvocadoKeyError(
                f"unknown resolution {resolution!r}; expected one of "
                f"{', '.join(GENOME_RESOLUTIONS)}"
            )
        return self.network.genome_tables[resolution].weight.detach().cpu().numpy().copy()

    def genome_embedding(self, start: int = 0, end: int | None = None) -> np.ndarray:
        """Genome factors of positions ``[start, end)``, the coarse ones repeated per position.

        Returns
        -------
        numpy.ndarray, shape=(end - start, n_25bp + n_250bp + n_5kbp factors), dtype=float32
        """
        start, end = self._check_range(start, end)
        out = np.empty((end - start, self.network.n_genome_factors), dtype=np.float32)
        with torch.no_grad():  # chunk by chunk: the device holds one chunk, not the genome
            for lo in range(start, end, GENOME_CHUNK):
                hi = min(end, lo + GENOME_CHUNK)
                pos = torch.arange(lo, hi, device=self.device)
                out[lo - start : hi - start] = self.network.genome_factors(pos).cpu().numpy()
        return out
