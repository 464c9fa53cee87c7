"""run_origen_lorenz63, variant=\"lecture\": the notebook's method through the tool."""

import pytest

from tools.registry import run_tool


def test_origen_lecture_variant_says_which_ran(tmp_path):
    res = run_tool("run_origen_lorenz63", {"variant": "lecture", "seed": 0}, workspace=tmp_path)
    assert res.metrics["variant"] == "lecture" and "lecture variant" in res.summary
    assert res.metrics["rmse_final"] == pytest.approx(0.789, abs=2e-3)
    assert res.metrics["forecast_rmse_lead1"] < res.metrics["forecast_rmse_lead20"]
    assert {p.name for p in res.figures} == {"rmse_per_cycle.png", "timeseries.png"}
