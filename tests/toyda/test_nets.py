"""The shared torch toolkit (toyda.nets): MLP builder, seeded init, early stopping, checkpoints."""

import io

import numpy as np
import pytest
import torch
from torch import nn

from toyda import nets


def test_mlp_layout_and_activation():
    net = nets.mlp([3, 8, 8, 2], activation=nn.Tanh)
    kinds = [type(m) for m in net]
    assert kinds == [nn.Linear, nn.Tanh, nn.Linear, nn.Tanh, nn.Linear]
    assert net(torch.zeros(5, 3)).shape == (5, 2)
    with pytest.raises(ValueError, match="sizes"):
        nets.mlp([3])


def test_seeded_is_reproducible_and_leaves_the_global_rng_alone():
    cpu = torch.device("cpu")
    state = torch.random.get_rng_state()
    with nets.seeded(4, cpu):
        a = nets.mlp([3, 4, 1])[0].weight.detach().clone()
    with nets.seeded(4, cpu):
        b = nets.mlp([3, 4, 1])[0].weight.detach().clone()
    assert torch.equal(a, b) and torch.equal(torch.random.get_rng_state(), state)


def test_fit_learns_a_linear_map_and_keeps_the_best_epoch():
    rng = np.random.default_rng(0)
    X = torch.as_tensor(rng.standard_normal((200, 2)), dtype=torch.float32)
    Y = X @ torch.tensor([[2.0], [-1.0]])
    with nets.seeded(0, torch.device("cpu")):
        net = nets.mlp([2, 1])
    history: dict[str, list[float]] = {}
    loss = lambda i: torch.mean((net(X[i]) - Y[i]) ** 2)  # noqa: E731
    res = nets.fit(net, np.arange(150), loss, lambda: (float(loss(np.arange(150, 200))), {"extra": 1.0}),
                   epochs=200, lr=0.05, batch_size=32, patience=5, rng=rng, history=history)
    assert history["val"][res.best_epoch - 1] == res.best_val == min(history["val"])
    assert len(history["train"]) == len(history["extra"]) == res.epochs_run
    with torch.no_grad():
        again = float(loss(np.arange(150, 200)))
    assert again == pytest.approx(res.best_val, rel=1e-6)   # best weights loaded
    assert res.best_val < 1e-2 * history["val"][0]


def test_checkpoint_round_trip_and_wrong_format():
    net = nets.mlp([3, 4, 3])
    buf = io.BytesIO()
    nets.save_checkpoint(buf, "dalab.test/1", net, dt=0.01)
    buf.seek(0)
    ck = nets.load_checkpoint(buf, "dalab.test/1", "a test")
    again = nets.load_weights(nets.mlp([3, 4, 3]), ck, "cpu")
    x = torch.randn(2, 3)
    assert ck["dt"] == 0.01 and torch.equal(again(x), net(x)) and not again.training
    buf.seek(0)
    with pytest.raises(ValueError, match=r"not an emulator checkpoint .*found 'dalab.test/1'"):
        nets.load_checkpoint(buf, "dalab.emulator/1", "an emulator")
