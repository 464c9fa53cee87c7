"""The torch toolkit shared by the lab's networks (:mod:`toyda.obs2obs`, :mod:`toyda.emulator`).

* :func:`default_device` — CUDA when present, else CPU.
* :func:`mlp` — a fully connected stack ``Linear → act → … → Linear``.
* :func:`seeded` — seed torch's weights inside a forked RNG state (the caller's global torch
  RNG is untouched).
* :func:`fit` — minibatch Adam with a cosine learning-rate schedule and early stopping on a
  validation loss, keeping the best weights.
* :func:`save_checkpoint` / :func:`load_checkpoint` — a versioned dict of the weights and the
  settings needed to rebuild the network.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import nn

ProgressFn = Callable[[int, int, float, float], None]
"""``progress(epoch, n_epochs, train_loss, val_loss)`` after each epoch"""


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when ``torch.cuda.is_available()``, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def mlp(sizes: list[int], activation: type[nn.Module] = nn.GELU) -> nn.Sequential:
    """``Linear(sizes[0], sizes[1]) → act → … → Linear(sizes[-2], sizes[-1])`` (no final act)."""
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list >= 2 positive layer widths, got {sizes!r}")
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """``torch.manual_seed(seed)`` inside a forked RNG state (CPU, and ``device`` if CUDA)."""
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit` did: epochs run and the epoch whose weights were kept."""

    epochs_run: int
    best_epoch: int
    """1-based epoch with the lowest validation loss (its weights are loaded into the net)"""
    best_val: float


def fit(net: nn.Module, items: np.ndarray, batch_loss: Callable[[np.ndarray], torch.Tensor],
        val_loss: Callable[[], tuple[float, dict[str, float]]], *, epochs: int, lr: float,
        batch_size: int, patience: int, rng: np.random.Generator,
        history: dict[str, list[float]], keys: tuple[str, str] = ("train", "val"),
        progress: ProgressFn | None = None, epoch0: int = 0, n_total: int | None = None) -> FitResult:
    """Train ``net`` with Adam and early stopping; load the best weights at the end.

    Each epoch visits ``items`` (e.g. transition indices) in a random order (``rng``) in
    minibatches of ``batch_size``, minimising ``batch_loss(batch)``; the learning rate follows a
    cosine schedule from ``lr`` to ``lr / 20``. After each epoch, in eval mode and without
    gradients, ``val_loss()`` returns ``(val, extras)``; training stops after ``patience``
    epochs without a lower ``val``, and the weights of the best epoch are kept.

    Parameters
    ----------
    items : ndarray, shape ``(M,)``
        What a minibatch is drawn from (the loss function maps a batch of items to a loss).
    history : dict
        Appended per epoch: ``history[keys[0]]`` the mean training loss (weighted by batch
        size), ``history[keys[1]]`` the validation loss, and each key of ``extras``.
    progress, epoch0, n_total : optional
        ``progress(epoch0 + epoch, n_total or epochs, train, val)`` after each epoch.

    Raises
    ------
    ValueError
        ``items`` is empty, or the validation loss was never finite (diverged).
    """
    items = np.asarray(items)
    if items.size == 0:
        raise ValueError("no training items (empty training split)")
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=lr / 20)
    best, best_state, best_epoch, waited, val, epoch = np.inf, None, 0, 0, float("nan"), 0
    for epoch in range(1, epochs + 1):
        net.train()
        order = rng.permutation(items)
        total = 0.0
        for i in range(0, order.size, batch_size):
            batch = order[i:i + batch_size]
            loss = batch_loss(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * batch.size
        sched.step()
        net.eval()
        with torch.no_grad():
            val, extras = val_loss()
        history.setdefault(keys[0], []).append(total / order.size)
        history.setdefault(keys[1], []).append(val)
        for k, v in extras.items():
            history.setdefault(k, []).append(v)
        if progress is not None:
            progress(epoch0 + epoch, n_total or epochs, total / order.size, val)
        if val < best:
            best, best_epoch, waited = val, epoch, 0
            best_state = {n: v.detach().clone() for n, v in net.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:
                break
    if best_state is None:
        raise ValueError(f"training diverged: the validation loss was never finite ({val!r}); "
                         f"try a smaller learning rate than {lr}")
    net.load_state_dict(best_state)
    net.eval()
    return FitResult(epochs_run=epoch, best_epoch=best_epoch, best_val=float(best))


def save_checkpoint(f: str | BinaryIO, fmt: str, net: nn.Module, **meta: Any) -> None:
    """Write ``{"format": fmt, "state_dict": <CPU weights>, **meta}`` with ``torch.save``.

    ``meta`` must hold only what ``torch.load(weights_only=True)`` reads back: numbers,
    strings, lists, dicts and tensors.
    """
    torch.save({"format": fmt,
                "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                **meta}, f)


def load_checkpoint(f: str | BinaryIO, fmt: str, what: str) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` on the CPU.

    Raises
    ------
    ValueError
        The file is not a checkpoint of format ``fmt`` (``what`` names the expected kind).
    """
    ck = torch.load(f, map_location="cpu", weights_only=True)
    if not isinstance(ck, dict) or ck.get("format") != fmt:
        found = ck.get("format") if isinstance(ck, dict) else type(ck).__name__
        raise ValueError(f"not {what} checkpoint (expected format {fmt!r}, found {found!r})")
    return ck


def load_weights(net: nn.Module, ck: dict[str, Any], device: str | torch.device | None = None) -> nn.Module:
    """Load ``ck["state_dict"]`` into ``net``, move it to ``device`` (default
    :func:`default_device`) and set eval mode."""
    net.load_state_dict(ck["state_dict"])
    return net.to(default_device(device)).eval()
