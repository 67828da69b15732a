"""Checks of a saved optimizer state before a training continues it.

A model saved with its optimizer state (``Avocado.save(..., optimizer=True)``) and a training
checkpoint hold what :meth:`Trainer.state_meta <avocado_core.training.Trainer.state_meta>`
(JSON) and :meth:`~avocado_core.training.Trainer.state_tensors` (tensors) returned; a model's
state adds what its fit was (phase, trained groups, their shapes, the sampler's key, the epochs
done). Damage is refused here, naming the folder and the entry, before a trainer reads it
(a missing entry would otherwise surface as a bare ``KeyError: 'rowadam.25bp.m'``, a state of
another model as a shape error mid-training). The values themselves are checked when the file
is read (:func:`avocado_core.model_format.check_tensors`: moments finite, counters integers).

A state that is sound but does not fit a call (another kind of fit, another optimizer mode) is
not an error: the call starts a fresh Adam optimizer and says so with one
:class:`OptimizerStateWarning`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..errors import AvocadoValueError
from ..network import AvocadoNetwork
from .trainer import GROUPS

__all__ = ["PHASE_GROUPS", "OptimizerStateWarning", "check_train_state", "check_trainer_state",
           "trained_shapes"]

#: The parameter groups each kind of fit trains, in the order the fit passes them.
PHASE_GROUPS: dict[str, tuple[str, ...]] = {
    "fit": GROUPS,
    "fit_biosamples": ("biosample",),
    "fit_assays": ("assay",),
    "fit_positions": ("25bp", "250bp", "5kbp"),
}
#: Groups the catch-up optimizer steps row by row (``rowadam.*`` entries).
_ROW_GROUPS = ("25bp", "250bp", "5kbp")
_MODES = ("catchup", "dense")


class OptimizerStateWarning(UserWarning):
    """A fit drops an optimizer state that does not fit it and starts a fresh Adam optimizer.

    Parameters
    ----------
    phase: str
        The fit (``"fit"``, ``"fit_biosamples"``, ...).
    reason: str
        Why the state does not fit (e.g. ``"different mode"``); kept as ``reason``.
    """

    def __init__(self, phase: str, reason: str) -> None:
        super().__init__(f"{phase}: the model's optimizer state does not fit this call "
                         f"({reason}); starting a fresh Adam optimizer")
        self.reason = reason


def trained_shapes(network: AvocadoNetwork, groups: tuple[str, ...] | list[str]
                   ) -> dict[str, list[int]]:
    """Shape of each parameter a trainer of ``groups`` trains, by its name in the state.

    The names of :meth:`Trainer.trained_shapes <avocado_core.training.Trainer.trained_shapes>`:
    ``network.<i>`` for the MLP's parameters, the group's name for an embedding table.
    """
    tables = network.embedding_parameters()
    shapes: dict[str, list[int]] = {}
    for group in groups:
        if group == "network":
            shapes.update({f"network.{i}": list(p.shape)
                           for i, p in enumerate(network.dense_parameters())})
        else:
            shapes[group] = list(tables[group].shape)
    return shapes


class _Damage:
    """Raises the errors of one state, each naming its folder."""

    def __init__(self, where: str) -> None:
        self.where = where

    def __call__(self, what: str) -> AvocadoValueError:
        return AvocadoValueError(f"{self.where}: the saved optimizer state is damaged: {what}")


def _is_count(value: Any, least: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _object(value: Any, name: str, damage: _Damage) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise damage(f"{name} is a {type(value).__name__}, expected a JSON object")
    return value


def _require(meta: dict[str, Any], keys: tuple[str, ...], name: str, damage: _Damage) -> None:
    missing = [k for k in keys if k not in meta]
    if missing:
        raise damage(f"{name} lacks {', '.join(f'{name}.{k}' for k in missing)}")


def _check_sampler(sampler: Any, name: str, damage: _Damage) -> None:
    sampler = _object(sampler, name, damage)
    _require(sampler, ("sampling", "cursor", "pass_seed", "rng"), name, damage)
    if not _is_count(sampler["cursor"]):
        raise damage(f"{name}.cursor is {sampler['cursor']!r}, expected a count")
    seed = sampler["pass_seed"]
    if seed is not None and not _is_count(seed):
        raise damage(f"{name}.pass_seed is {seed!r}, expected null or a count")
    try:
        np.random.PCG64().state = sampler["rng"]
    except (TypeError, ValueError, KeyError):
        raise damage(f"{name}.rng is not a random generator's state") from None


def check_trainer_state(meta: Any, tensors: Mapping[str, torch.Tensor],
                        shapes: Mapping[str, list[int]], where: str, prefix: str = "") -> None:
    """Check a trainer's state (of a checkpoint or a saved model) against what it trains.

    Parameters
    ----------
    meta: object
        :meth:`Trainer.state_meta`'s dict as read back from JSON.
    tensors: mapping of str to torch.Tensor
        :meth:`Trainer.state_tensors`' entries (without the prefix).
    shapes: mapping of str to list of int
        The trained parameters' shapes (:func:`trained_shapes`).
    where: str
        The folder, named in the messages.
    prefix: str, optional
        How the file names the entries (``"optimizer."`` in a saved model). Default is "".

    Raises
    ------
    AvocadoValueError
        A key, an entry, a shape or a dtype is missing or wrong; the message names it.
    """
    damage = _Damage(where)
    name = f"{prefix}trainer"
    meta = _object(meta, name, damage)
    _require(meta, ("step_count", "adam_steps", "mode", "n_averaged"), name, damage)
    steps = meta["step_count"]
    if not _is_count(steps, 1):
        raise damage(f"{name}.step_count is {steps!r}, expected a positive count")
    mode = meta["mode"]
    if mode not in _MODES:
        raise damage(f"{name}.mode is {mode!r}, expected one of {', '.join(_MODES)}")
    if not _is_count(meta["n_averaged"]):
        raise damage(f"{name}.n_averaged is {meta['n_averaged']!r}, expected a count")
    if "sampler" in meta:
        _check_sampler(meta["sampler"], f"{name}.sampler", damage)
    adam_steps = _object(meta["adam_steps"], f"{name}.adam_steps", damage)
    rows = [g for g in shapes if mode == "catchup" and g in _ROW_GROUPS]
    stepped = [k for k in shapes if k not in rows and k not in adam_steps]
    if stepped:
        raise damage(f"{name}.adam_steps lacks {stepped[0]!r} (every parameter Adam steps has "
                     "a step count)")
    for key, value in adam_steps.items():
        if key not in shapes or key in rows:
            raise damage(f"{name}.adam_steps names {key!r}, which is not trained by Adam here")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                0 <= value <= steps):
            raise damage(f"{name}.adam_steps.{key} is {value!r}, expected 0 to {steps} steps")
    # entry -> (shape, integer?) of what the trainer reads; averages and trajectories may be there
    expected: dict[str, tuple[list[int], bool]] = {}
    for group in rows:
        for moment in ("m", "v"):
            expected[f"rowadam.{group}.{moment}"] = (list(shapes[group]), False)
        expected[f"rowadam.{group}.last"] = ([shapes[group][0]], True)
    for key in adam_steps:
        for moment in ("exp_avg", "exp_avg_sq"):
            expected[f"adam.{key}.{moment}"] = (list(shapes[key]), False)
    optional = {f"{kind}.{key}": (list(shape), False) for key, shape in shapes.items()
                for kind in ("average", "trajectory")}
    if meta["n_averaged"]:
        expected.update({k: v for k, v in optional.items() if k.startswith("average.")})
    missing = [k for k in expected if k not in tensors]
    if missing:
        raise damage(f"entry {prefix}{missing[0]} is missing"
                     + (f" ({len(missing)} entries in all)" if len(missing) > 1 else ""))
    for key, tensor in tensors.items():
        if key not in expected and key not in optional:
            raise damage(f"entry {prefix}{key} is not one of a trainer of "
                         f"{', '.join(shapes) or 'nothing'} ({mode} mode)")
        shape, integer = expected.get(key) or optional[key]
        if list(tensor.shape) != shape:
            raise damage(f"entry {prefix}{key} has shape {list(tensor.shape)}, the model's "
                         f"parameter {shape}: it is the state of another model")
        if integer == tensor.is_floating_point():
            raise damage(f"entry {prefix}{key} has dtype {tensor.dtype}, expected "
                         + ("integers" if integer else "floating point"))
    for key in expected:  # Adam's second moments and the rows' steps have a range
        tensor = tensors[key]
        if key.endswith((".v", ".exp_avg_sq")) and tensor.numel() and float(tensor.min()) < 0:
            raise damage(f"entry {prefix}{key} holds negative second moments")
        if key.endswith(".last") and tensor.numel() and not (
                0 <= int(tensor.min()) and int(tensor.max()) <= steps):
            raise damage(f"entry {prefix}{key} holds steps outside 0 to {steps}")


def check_train_state(state: Any, tensors: Mapping[str, torch.Tensor], network: AvocadoNetwork,
                      where: str) -> dict[str, Any]:
    """Check the optimizer state of a saved model; return it as the model keeps it.

    Parameters
    ----------
    state: object
        The ``"optimizer"`` object of the model's ``config.json``.
    tensors: mapping of str to torch.Tensor
        Its entries (``optimizer.*`` in the weights file), without the prefix.
    network: AvocadoNetwork
        The model's network: the state must be of its parameters.
    where: str
        The model folder, named in the messages.

    Returns
    -------
    dict
        ``state`` with its tensors under ``"tensors"``.

    Raises
    ------
    AvocadoValueError
        Naming the folder and the entry that is missing, of another model or of a wrong kind.
    """
    damage = _Damage(where)
    state = _object(state, "optimizer", damage)
    _require(state, ("phase", "groups", "shapes", "sampler_key", "epochs", "trainer"),
             "optimizer", damage)
    phase = state["phase"]
    if phase not in PHASE_GROUPS:
        raise damage(f"optimizer.phase is {phase!r}, expected one of {', '.join(PHASE_GROUPS)}")
    groups = list(PHASE_GROUPS[phase])
    if state["groups"] != groups:
        raise damage(f"optimizer.groups is {state['groups']!r}, expected {groups} for {phase}")
    if phase in ("fit_biosamples", "fit_assays"):
        names = state.get("names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise damage(f"optimizer.names is {names!r}, expected the list of names {phase} "
                         "added")
    if not _is_count(state["epochs"]):
        raise damage(f"optimizer.epochs is {state['epochs']!r}, expected a count")
    _object(state["sampler_key"], "optimizer.sampler_key", damage)
    shapes = _object(state["shapes"], "optimizer.shapes", damage)
    mine = trained_shapes(network, groups)
    for key in [*mine, *(k for k in shapes if k not in mine)]:
        if shapes.get(key) != mine.get(key):
            raise damage(f"optimizer.shapes.{key} is {shapes.get(key)}, the model's parameter "
                         f"{mine.get(key)}: it is the state of another model")
    check_trainer_state(state["trainer"], tensors, mine, where, prefix="optimizer.")
    return dict(state, tensors=dict(tensors))
