"""The fast free-running decoder (one lstm_cell per step) equals stepping the nn.LSTM decoder itself."""

from __future__ import annotations

import pytest
import torch

from serving.core.lstm_ed import LSTMED, LSTMEDConfig


def _stepwise_reference(m: LSTMED, x: torch.Tensor) -> torch.Tensor:
    _, state = m.encoder(x)
    step_in, outs = torch.zeros_like(x[:, :1]), []
    for _ in range(x.shape[1]):
        dec, state = m.decoder(step_in, state)
        step_in = m.out(dec)
        outs.append(step_in)
    return torch.flip(torch.cat(outs, dim=1), dims=[1])


@pytest.mark.parametrize("layers", [1, 2])  # 1: the folded single LSTM call; 2: per-layer steps
def test_free_running_matches_stepwise_decoder(layers):
    torch.manual_seed(layers)
    m = LSTMED(LSTMEDConfig(n_channels=4, hidden=12, layers=layers)).eval()
    x = torch.randn(3, 25, 4)
    with torch.no_grad():
        got, ref = m(x, mode="free"), _stepwise_reference(m, x)
    assert got.shape == x.shape
    assert torch.allclose(got, ref, atol=1e-6, rtol=0)
    with torch.no_grad():  # weights changed in place, as an optimizer step or load_state_dict does:
        m.out.weight.mul_(0.5)  # the folded copy must not be reused
        assert torch.allclose(m(x, mode="free"), _stepwise_reference(m, x), atol=1e-6, rtol=0)
    assert not torch.allclose(got, m(x, mode="teacher"), atol=1e-3)  # the modes do differ
