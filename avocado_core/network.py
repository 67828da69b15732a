"""The Avocado network: a pure ``torch.nn.Module`` that only computes.

Five embeddings (biosample, assay, and the genome at 25 bp, 250 bp and 5 kbp resolution) are
concatenated and passed through a ReLU multi-layer perceptron with one linear output, as in
Schreiber et al., Genome Biology 2020. Position ``i`` uses rows ``i``, ``i // 10`` and
``i // 200`` of the three genome tables.

Besides the plain :meth:`AvocadoNetwork.forward`, the module exposes the first layer split into
its genome term (one per position) and its biosample + assay term (one per experiment); the
trainer and the predictor use that decomposition to avoid recomputing the same products.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .regions import GENOME_RESOLUTIONS

__all__ = ["AvocadoNetwork", "GENOME_RESOLUTIONS", "genome_rows"]



def genome_rows(n_positions: int, resolution: str) -> int:
    """Number of rows of one genome table.

    Parameters
    ----------
    n_positions: int
        Number of 25 bp positions.
    resolution: str
        One of ``"25bp"``, ``"250bp"``, ``"5kbp"``.

    Returns
    -------
    int
        ``n_positions`` for 25 bp, ``n_positions // 10 + 1`` for 250 bp and
        ``n_positions // 200 + 1`` for 5 kbp (as in the original package).
    """
    step = GENOME_RESOLUTIONS[resolution]
    return n_positions if step == 1 else n_positions // step + 1


def _keras_uniform_(weight: torch.Tensor, generator: torch.Generator | None) -> None:
    # Keras' Embedding default: uniform(-0.05, 0.05).
    with torch.no_grad():
        weight.uniform_(-0.05, 0.05, generator=generator)


def _glorot_uniform_(weight: torch.Tensor, generator: torch.Generator | None) -> None:
    # Keras' Dense default kernel initializer (biases start at zero).
    fan_out, fan_in = weight.shape
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        weight.uniform_(-limit, limit, generator=generator)


class AvocadoNetwork(nn.Module):
    """Multi-scale deep tensor factorization network.

    Parameters
    ----------
    n_biosamples: int
        Rows of the biosample embedding.
    n_assays: int
        Rows of the assay embedding.
    n_positions: int
        Number of 25 bp positions covered by the genome embeddings.
    n_layers: int, optional
        Number of hidden ReLU layers. Default is 2.
    n_nodes: int, optional
        Width of each hidden layer. Default is 2048.
    n_biosample_factors, n_assay_factors: int, optional
        Embedding widths. Defaults are 32 and 256.
    n_25bp_factors, n_250bp_factors, n_5kbp_factors: int, optional
        Widths of the three genome embeddings. Defaults are 25, 40 and 45.
    generator: torch.Generator or None, optional
        Source of randomness for the initialization (Keras' defaults: uniform(-0.05, 0.05)
        embeddings, Glorot-uniform kernels, zero biases). Default is None (global RNG).
    """

    def __init__(
        self,
        n_biosamples: int,
        n_assays: int,
        n_positions: int,
        n_layers: int = 2,
        n_nodes: int = 2048,
        n_biosample_factors: int = 32,
        n_assay_factors: int = 256,
        n_25bp_factors: int = 25,
        n_250bp_factors: int = 40,
        n_5kbp_factors: int = 45,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.n_positions = int(n_positions)
        self.biosample_embedding = nn.Embedding(n_biosamples, n_biosample_factors)
        self.assay_embedding = nn.Embedding(n_assays, n_assay_factors)
        self.genome_25bp = nn.Embedding(genome_rows(n_positions, "25bp"), n_25bp_factors)
        self.genome_250bp = nn.Embedding(genome_rows(n_positions, "250bp"), n_250bp_factors)
        self.genome_5kbp = nn.Embedding(genome_rows(n_positions, "5kbp"), n_5kbp_factors)
        n_in = n_biosample_factors + n_assay_factors + self.n_genome_factors
        widths = [n_in] + [n_nodes] * n_layers
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.output = nn.Linear(widths[-1], 1)
        self.reset_parameters(generator)

    # ------------------------------------------------------------------ structure
    @property
    def n_genome_factors(self) -> int:
        """Width of the concatenated genome factors (25 + 40 + 45 by default)."""
        return (
            self.genome_25bp.embedding_dim
            + self.genome_250bp.embedding_dim
            + self.genome_5kbp.embedding_dim
        )

    @property
    def genome_tables(self) -> dict[str, nn.Embedding]:
        """The three genome embeddings by resolution name."""
        return {"25bp": self.genome_25bp, "250bp": self.genome_250bp, "5kbp": self.genome_5kbp}

    def embedding_parameters(self) -> dict[str, nn.Parameter]:
        """Embedding weight tables by name (the parameters whose rows a batch touches)."""
        return {
            "biosample": self.biosample_embedding.weight,
            "assay": self.assay_embedding.weight,
            "25bp": self.genome_25bp.weight,
            "250bp": self.genome_250bp.weight,
            "5kbp": self.genome_5kbp.weight,
        }

    def dense_parameters(self) -> list[nn.Parameter]:
        """Parameters of the MLP (every step updates all of them)."""
        params: list[nn.Parameter] = []
        for layer in [*self.hidden, self.output]:
            params += [layer.weight, layer.bias]
        return params

    def set_genome_tables(self, tables: dict[str, torch.Tensor]) -> None:
        """Replace the three genome tables (and so the positions covered) with given tensors.

        The tensors are used as they are (no copy), frozen; this is how a chromosome's factors
        are attached to a shared network without allocating a second set.

        Parameters
        ----------
        tables: dict of str to torch.Tensor
            ``"25bp"``, ``"250bp"`` and ``"5kbp"`` tables of one position set, with the widths
            of this network's tables.
        """
        n_positions = int(tables["25bp"].shape[0])
        for resolution, table in self.genome_tables.items():
            new = tables[resolution]
            expected = (genome_rows(n_positions, resolution), table.embedding_dim)
            if tuple(new.shape) != expected:
                raise ValueError(
                    f"the {resolution} table has shape {tuple(new.shape)}; {n_positions} "
                    f"positions need {expected}"
                )
            table.weight = nn.Parameter(new, requires_grad=False)
            table.num_embeddings = expected[0]
        self.n_positions = n_positions

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-initialize every parameter with Keras' defaults.

        Parameters
        ----------
        generator: torch.Generator or None, optional
            Source of randomness. Default is None (global RNG).
        """
        for table in self.embedding_parameters().values():
            _keras_uniform_(table, generator)
        for layer in [*self.hidden, self.output]:
            _glorot_uniform_(layer.weight, generator)
            with torch.no_grad():
                layer.bias.zero_()

    # ------------------------------------------------------------------ computing
    def genome_factors(self, positions: torch.Tensor) -> torch.Tensor:
        """Concatenated 25 bp / 250 bp / 5 kbp factors of positions.

        Parameters
        ----------
        positions: torch.Tensor, shape=(n,), dtype=int64
            Position (25 bp bin) indices.

        Returns
        -------
        torch.Tensor, shape=(n, n_genome_factors)
        """
        rows = {res: positions if div == 1 else torch.div(positions, div, rounding_mode="floor")
                for res, div in GENOME_RESOLUTIONS.items()}
        return torch.cat([table(rows[res]) for res, table in self.genome_tables.items()], dim=1)

    def _first_weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        w = self.hidden[0].weight if self.hidden else self.output.weight
        nb = self.biosample_embedding.embedding_dim
        na = self.assay_embedding.embedding_dim
        return w[:, :nb], w[:, nb : nb + na], w[:, nb + na :]

    def genome_term(self, positions: torch.Tensor) -> torch.Tensor:
        """First-layer pre-activation contribution of the genome factors.

        Parameters
        ----------
        positions: torch.Tensor, shape=(n,), dtype=int64

        Returns
        -------
        torch.Tensor, shape=(n, width of the first layer)
        """
        _, _, wg = self._first_weights()
        return self.genome_factors(positions) @ wg.t()

    def experiment_term(self, biosamples: torch.Tensor, assays: torch.Tensor) -> torch.Tensor:
        """First-layer contribution of biosample and assay factors, plus the first bias.

        Parameters
        ----------
        biosamples, assays: torch.Tensor, shape=(n,), dtype=int64

        Returns
        -------
        torch.Tensor, shape=(n, width of the first layer)
        """
        wb, wa, _ = self._first_weights()
        first = self.hidden[0] if self.hidden else self.output
        return (
            self.biosample_embedding(biosamples) @ wb.t()
            + self.assay_embedding(assays) @ wa.t()
            + first.bias
        )

    def head(self, first_preactivation: torch.Tensor) -> torch.Tensor:
        """The rest of the network, given the first layer's pre-activation.

        Parameters
        ----------
        first_preactivation: torch.Tensor, shape=(..., width of the first layer)

        Returns
        -------
        torch.Tensor, shape=(...)
        """
        if not self.hidden:
            return first_preactivation.squeeze(-1)
        x = torch.relu(first_preactivation)
        for layer in self.hidden[1:]:
            x = torch.relu(layer(x))
        return self.output(x).squeeze(-1)

    def forward(
        self, biosamples: torch.Tensor, assays: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        """Predict the signal of experiments at positions.

        Parameters
        ----------
        biosamples, assays, positions: torch.Tensor, shape=(n,), dtype=int64
            Biosample, assay and position index of each sample.

        Returns
        -------
        torch.Tensor, shape=(n,)
        """
        x = torch.cat(
            [
                self.biosample_embedding(biosamples),
                self.assay_embedding(assays),
                self.genome_factors(positions),
            ],
            dim=1,
        )
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.output(x).squeeze(-1)
