"""How the web UI shows figures and numbers, without Gradio: the page's CSS and script (figures
at the chat's width, a click opens one at full resolution, no × on read-only file lists) and
what each metric means, for the metrics tables."""

from __future__ import annotations

import re

READ_ONLY = "read-only-files"   # file lists the student downloads from but cannot change (no × buttons)
CSS = f"""
#chat .message-row img {{ max-height: none !important; width: 100%; height: auto; cursor: zoom-in; }}
.{READ_ONLY} .label-clear-button {{ display: none !important; }}
"""
"""Figures in the chat at the chat's full width (not 300 px high); no × on read-only file lists."""
HEAD = """<script>
document.addEventListener("click", (event) => {
  const img = event.target.closest && event.target.closest("#chat .message-row img");
  if (img && img.src) { event.preventDefault(); event.stopPropagation(); window.open(img.src, "_blank"); }
}, true);
</script>"""
"""A click on a figure in the chat opens the PNG at full resolution in a new tab."""
METRIC_HELP = (
    (r"^(?:method|model|variant|tool|device|scheduler|criterion|metric|best_method|best)$",
     "setting or choice of this run (text)"),
    (r"diverged_at_t", "model time at which the filter diverged (model time units)"),
    (r"^best_.+_std$", "standard deviation over seeds of the swept metric at the best setting (its units)"),
    (r"^(?:best|worst)_", "mean over seeds of the swept metric at the best or worst setting (its units)"),
    (r"^n_(?:computed|cached|failed)$", "points of the sweep computed now, taken from the cache, or failed (count)"),
    (r"^acc_in", "tracer injected by the source so far (φ × area)"),
    (r"^acc_loss", "tracer lost by damping and the sponge so far (φ × area)"),
    (r"desroziers", "σ_o estimated from the departures (Desroziers diagnostic, observation units)"),
    (r"^sigma_o", "observation-error standard deviation σ_o (observation units)"),
    (r"^omf", "observation minus forecast (innovation), RMS or mean (observation units)"),
    (r"^oma", "observation minus analysis (residual), RMS or mean (observation units)"),
    (r"^crps", "continuous ranked probability score of the analysis ensemble (state units, lower is better)"),
    (r"spread", "ensemble spread: RMS standard deviation of the members (state units)"),
    (r"wall_s", "wall-clock time (s)"),
    (r"held_out", "1: a time never used in training"),
    (r"workers", "parallel workers (count)"),
    (r"is_station", "1: the column has a radiosonde station (an input of the network)"),
    (r"^column$", "grid column of the profile (x index)"),
    (r"^script$", "the file written"),
    (r"^rmse_floor", "lowest RMSE a fixed-weight (fixed B) average can reach, σ_o√(g/(2−g)) (state units)"),
    (r"over_sigma_o", "RMSE in units of the observation error σ_o (dimensionless)"),
    (r"rmse|_error$", "root-mean-square error against the truth (units of the field or state)"),
    (r"corr", "correlation with the truth (−1 … 1, 1 is perfect)"),
    (r"^gain", "Kalman gain on the observed component (0: ignore the observation, 1: copy it)"),
    (r"^B_var", "background-error variance in B (state units²)"),
    (r"^sigma_a", "the filter's own analysis-error estimate (state units)"),
    (r"diverged", "1: the filter diverged (its gain collapsed or its error grew without bound)"),
    (r"converged", "1: the validation loss stopped improving before the last epoch"),
    (r"loss", "training objective, mean squared error of normalised values"),
    (r"epoch", "training epochs (passes over the training data)"),
    (r"seconds", "wall-clock time (s)"),
    (r"valid_time_lyapunov", "forecast valid time in Lyapunov times (1/λ_max ≈ 1.1 time units)"),
    (r"valid_time", "how long forecasts stay below the error threshold (Lorenz time units)"),
    (r"threshold", "error threshold for a valid forecast (state units)"),
    (r"C_change", "relative change of the content C over the last fifth of the run (fraction)"),
    (r"within_horizon", "1: the forecast error crossed the threshold within the forecast horizon"),
    (r"noise", "realised observation-error standard deviation (concentration units)"),
    (r"budget_residual_rel|_rel$", "relative to the injected total (fraction)"),
    (r"budget_residual", "C(T) − C(0) − (injected − lost): numerical budget error (φ × area)"),
    (r"^C_|^acc_", "tracer content (φ × area)"),
    (r"courant|diffusion_number", "stability number of the time step (dimensionless, < 1 is stable)"),
    (r"dt_max", "largest stable time step (model time units)"),
    (r"^t_end|time_index", "model time or snapshot index"),
    (r"^n_|count", "count"),
    (r"max|mean|std", "value of the tracer φ or observations (concentration units)"),
)
"""Metric name patterns and what they mean, for the metrics tables (first match wins)."""


def metric_help(name: str) -> str:
    """What a metric means, with its unit, from its name (see ``METRIC_HELP``)."""
    return next((text for pattern, text in METRIC_HELP if re.search(pattern, name)), "")
