"""The chat part of issue 16: with the offline model (no LLM), a sensitivity question runs
``run_sweep`` on a local Dask cluster and answers with the heat map and the best setting."""

from __future__ import annotations

import dask
import xarray as xr

from assistant.agent import Session
from assistant.offline import OfflineChatModel

PNG = b"\x89PNG\r\n\x1a\n"


def test_how_the_enkf_error_depends_on_ensemble_size_and_inflation_is_answered_by_a_sweep(tmp_path):
    with dask.config.set({"scheduler-address": None}):       # a LocalCluster, whatever the machine's config
        a = Session(OfflineChatModel(), workspace=tmp_path).ask(
            "how does the EnKF error depend on ensemble size and inflation?")
    assert [c["name"] for c in a.tool_calls] == ["run_sweep"], a.answer
    call = a.tool_calls[0]["args"]
    assert call["tool"] == "run_da_experiment" and call["fixed"] == {"method": "enkf"}
    assert list(call["grid"]) == ["n_members", "inflation"]
    # the heat map is the answer's figure, and the answer names it
    assert [p.name for p in a.figures] == ["sweep_heatmap.png"] and a.figures[0].read_bytes().startswith(PNG)
    assert "sweep_heatmap.png" in a.answer and "Swept run_da_experiment (method='enkf') over 3 n_members" in a.answer
    # the best setting in the answer is the lowest analysis RMSE of the sweep's own dataset
    ds = xr.open_dataset(a.figures[0].parent / "sweep.nc")
    assert dict(ds["rmse_a"].sizes) == {"n_members": len(call["grid"]["n_members"]),
                                        "inflation": len(call["grid"]["inflation"]), "seed": 1}
    mean = ds["rmse_a"].mean("seed")
    best = mean.where(mean == mean.min(), drop=True)
    n, inflation = int(best["n_members"].item()), float(best["inflation"].item())
    assert f"Best (lowest mean rmse_a over seeds): n_members={n}, inflation={inflation:g} with rmse_a = " \
           f"{float(mean.min()):.3g}" in a.answer, a.answer
    # the science: the smallest ensemble without inflation is the worst setting (too little spread),
    # and inflation helps it; the best setting has more members than the smallest
    assert float(mean.sel(n_members=5, inflation=1.0)) == float(mean.max())
    assert float(mean.sel(n_members=5).min()) < 0.5 * float(mean.sel(n_members=5, inflation=1.0))
    assert n > 5
