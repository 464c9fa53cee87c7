"""Every figure of every registered tool, drawn with defaults (small, fast arguments for the
training tools): labelled axes, titles, shared colour scales, markers, no figure twice.

New tools are covered automatically (the test iterates over the registry); a slow tool adds its
fast arguments to ``FAST_ARGS``. Tools run in registry order in one workspace, as one long turn,
so that the evaluation tools find the products of the earlier ones.
"""

import hashlib

import numpy as np
import pytest
from matplotlib.collections import QuadMesh
from matplotlib.image import AxesImage
from matplotlib.patches import Ellipse

from tools.base import RunContext
from tools.registry import TOOLS, run_tool

FAST_ARGS = {
    "train_obs2obs": {"epochs": 2},
    "run_origen_lorenz63": {"n_steps": 2000},      # long enough for the emulator to learn from it
    "train_lorenz63_emulator": {"epochs": 2, "rollout_steps": 2},
    "run_sweep": {"tool": "run_3dvar_cycle", "grid": {"sigma_o": [0.1, 0.3], "sigma_b": [0.2, 0.5]}},   # heat map
}
"""arguments that keep a slow tool fast; every other tool runs with its defaults"""
VARIANTS = [("run_da_experiment", {"model": "lorenz96", "method": "etkf"}),
            ("run_sweep", {"tool": "run_3dvar_cycle", "grid": {"sigma_o": [0.1, 0.3]}}),      # lines: one argument
            ("run_da_experiment", {"forecast_model": "emulator", "n_obs": 80, "burn_in": 4.0})]
"""second runs for figures a tool draws only for some arguments (the Hovmöller diagram: more than 3
variables; a sweep's lines over one argument; the emulator beside the true model), each in a turn of its
own (one that needs an earlier product, the emulator, runs in the turn's workspace)"""
NEEDS_PRODUCTS = {"forecast_model"}
DRAWING = [name for name, spec in TOOLS.items() if spec.figures]


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """Run every tool that draws (one turn), then the variants; keep each Figure object as the tool
    saves it: (results, figures of the turn, figures of the variants), figures as tool -> name -> Figure."""
    ws = tmp_path_factory.mktemp("figures")
    figures: dict[str, dict] = {}
    variants: dict[str, dict] = {}
    into = [figures]
    save = RunContext.save_figure

    def keep(self, fig, name):
        into[0].setdefault(self.tool, {})[name] = fig
        return save(self, fig, name)

    patch = pytest.MonkeyPatch()
    patch.setattr(RunContext, "save_figure", keep)
    try:
        results = {name: run_tool(name, FAST_ARGS.get(name, {}), workspace=ws) for name in DRAWING}
        into[0] = variants
        for name, args in VARIANTS:
            own = ws if NEEDS_PRODUCTS & set(args) else tmp_path_factory.mktemp("variant")
            run_tool(name, args, workspace=own)
    finally:
        patch.undo()
    return results, figures, variants


def _all_figures(drawn, tool):
    """(name, Figure) of the tool's run with defaults and of its variants."""
    return [*drawn[1].get(tool, {}).items(), *drawn[2].get(tool, {}).items()]


def _panels(fig):
    """The data axes of a figure (colour bars apart)."""
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def _colorbars(fig):
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def _labelled(ax, axis: str) -> bool:
    """A label on this axis, or on an axes it shares that axis with (one label per shared column/row)."""
    get = (lambda a: a.get_xlabel()) if axis == "x" else (lambda a: a.get_ylabel())
    shared = ax.get_shared_x_axes() if axis == "x" else ax.get_shared_y_axes()
    return any(get(a).strip() for a in shared.get_siblings(ax))


@pytest.mark.parametrize("tool", DRAWING)
def test_each_tool_draws_the_figures_it_declares(drawn, tool):
    results, figures, variants = drawn
    assert set(figures[tool]) <= set(TOOLS[tool].figures)
    assert set(figures[tool]) | set(variants.get(tool, {})) == set(TOOLS[tool].figures), "add a VARIANTS run"
    assert [p.stem for p in results[tool].figures] == list(figures[tool])


@pytest.mark.parametrize("tool", DRAWING)
def test_every_panel_has_axis_labels_and_a_title(drawn, tool):
    for name, fig in _all_figures(drawn, tool):
        suptitle = fig._suptitle.get_text().strip() if fig._suptitle is not None else ""
        panels = _panels(fig)
        assert panels, (tool, name)
        for i, ax in enumerate(panels):
            where = f"{tool}/{name} panel {i}"
            assert _labelled(ax, "x"), f"{where}: no x label"
            assert _labelled(ax, "y"), f"{where}: no y label"
            assert ax.get_title().strip() or suptitle, f"{where}: no title and no suptitle"
        for cb in _colorbars(fig):
            assert (cb.get_ylabel() or cb.get_xlabel()).strip(), f"{tool}/{name}: colour bar without a label"


@pytest.mark.parametrize("tool", DRAWING)
def test_field_panels_with_one_colour_map_share_one_colour_scale(drawn, tool):
    for name, fig in _all_figures(drawn, tool):
        limits: dict[str, set] = {}
        for ax in _panels(fig):
            for m in ax.collections + ax.images:
                if isinstance(m, (QuadMesh, AxesImage)):
                    limits.setdefault(m.get_cmap().name, set()).add(tuple(np.round(m.get_clim(), 12)))
        for cmap, clims in limits.items():
            assert len(clims) == 1, f"{tool}/{name}: panels in {cmap} with different colour limits {clims}"


def test_no_two_figures_of_one_turn_are_identical(drawn):
    results = drawn[0]
    seen: dict[str, str] = {}
    for tool, result in results.items():
        for path in result.figures:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            assert digest not in seen, f"{tool}/{path.name} repeats {seen.get(digest)}"
            seen[digest] = f"{tool}/{path.name}"


def _field_panels(fig):
    return [ax for ax in _panels(fig) if any(isinstance(m, QuadMesh) for m in ax.collections)
            and "z (" in ax.get_ylabel()]


@pytest.mark.parametrize(("tool", "figure"), [("simulate_atmosphere", "snapshots"),
                                              ("generate_observations", "truth_with_stations"),
                                              ("train_obs2obs", "reconstruction_heldout"),
                                              ("reconstruct_field", "reconstruction"),
                                              ("assimilate_atmosphere", "fields_and_errors")])
def test_atmosphere_panels_mark_the_source_and_give_model_time(drawn, tool, figure):
    fig = drawn[1][tool][figure]
    panels = _field_panels(fig)
    assert panels
    for ax in panels:
        assert any(isinstance(p, Ellipse) for p in ax.patches), f"{tool}/{figure}: {ax.get_title()!r} has no source"
    titles = " ".join(ax.get_title() for ax in panels) + fig._suptitle.get_text()
    assert "t = " in titles and "[snapshot " in titles


def test_snapshots_show_the_source_on_and_off_and_every_snapshot(drawn):
    fig = drawn[1]["simulate_atmosphere"]["snapshots"]
    titles = [ax.get_title() for ax in _field_panels(fig)]
    assert len(titles) == 10 and "all 10 snapshots" in fig._suptitle.get_text()
    assert any("source on" in t for t in titles) and any("source off" in t for t in titles)


@pytest.mark.parametrize(("tool", "figure"), [("reconstruct_field", "reconstruction"),
                                              ("train_obs2obs", "reconstruction_heldout"),
                                              ("assimilate_atmosphere", "fields_and_errors")])
def test_stations_are_drawn_on_every_reconstruction_panel(drawn, tool, figure):
    n_stations = 7
    for ax in _field_panels(drawn[1][tool][figure]):
        columns = [ln for ln in ax.lines if np.ptp(ln.get_xdata()) == 0 and ln.get_linestyle() == "--"]
        assert len(columns) == n_stations, ax.get_title()


def test_3dvar_figure_shows_observations_apart_from_the_analysis_and_the_gain(drawn):
    fig = drawn[1]["run_3dvar_cycle"]["timeseries"]
    state, gain, bvar = _panels(fig)[:2], _panels(fig)[2], _panels(fig)[3]
    for ax in state:
        lines = {ln.get_label(): ln for ln in ax.lines}
        obs = next(ln for label, ln in lines.items() if label.startswith("observations"))
        analysis = lines["analysis x_a"]
        assert obs.get_marker() not in ("", "None") and obs.get_linestyle() == "None"
        assert obs.get_markeredgecolor() != analysis.get_color()
        assert ax.get_ylabel() not in ("x1", "x2")
    assert "gain" in gain.get_ylabel() and "B variance" in bvar.get_ylabel()
    legend = state[0].get_legend()
    assert legend is not None and legend.get_bbox_to_anchor().x0 >= state[0].bbox.x1 - 1   # outside the data


def test_loss_curves_have_integer_epoch_ticks_and_plain_log_labels(drawn):
    ax = _panels(drawn[1]["train_obs2obs"]["loss_curves"])[0]
    ticks = ax.get_xticks()
    assert np.allclose(ticks, np.round(ticks))
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and not any("$" in t or "^" in t for t in labels)


def test_radiosonde_panels_share_one_phi_scale(drawn):
    panels = _panels(drawn[1]["generate_observations"]["rs_profiles"])
    assert len({ax.get_xlim() for ax in panels}) == 1


def test_budget_figure_has_content_rates_and_residual_panels(drawn):
    panels = _panels(drawn[1]["simulate_atmosphere"]["budget"])
    assert [ax.get_ylabel().split(" ")[0] for ax in panels] == ["content", "rate", "residual"]
    residual = panels[2].lines[0].get_ydata()
    assert np.max(np.abs(residual)) < 0.01 * np.max(panels[0].lines[0].get_ydata())


def test_every_metric_of_every_tool_has_a_meaning_for_the_metrics_table(drawn):
    from assistant.display import metric_help     # the UI's explanations, checked against every tool's metrics

    missing = {f"{tool}.{k}" for tool, r in drawn[0].items() for k in r.metrics if not metric_help(k)}
    assert not missing, sorted(missing)


def _fitted(fig) -> bool:
    return fig.get_layout_engine() is not None or getattr(fig, "fitted", False)


@pytest.mark.parametrize("tool", DRAWING)
def test_figures_saved_uncropped_keep_every_label_and_legend_on_the_canvas(drawn, tool):
    """A figure laid out by an engine, or with margins measured from its legends, is saved as it is
    (no second, cropping draw): then nothing may stick out of the canvas, and no legend may sit on
    its panel's data."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    for name, fig in _all_figures(drawn, tool):
        if not _fitted(fig):
            continue
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)
        inside = fig.get_tightbbox(renderer)
        w, h = fig.get_size_inches()
        assert inside.x0 >= -0.02 and inside.y0 >= -0.02 and inside.x1 <= w + 0.02 and inside.y1 <= h + 0.02, (
            tool, name, inside.bounds, (w, h))
        for ax in fig.axes:
            legend = ax.get_legend()
            if legend is not None and legend.get_bbox_to_anchor().x0 >= ax.bbox.x1:   # placed outside
                assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1 - 1, (tool, name)
