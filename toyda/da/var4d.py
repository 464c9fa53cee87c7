"""Strong-constraint 4D-Var (Le Dimet & Talagrand 1986; Courtier et al. 1994; Kalnay 2003 §5.9;
Bocquet 2014 lecture notes ch. 3; Bocquet & Sakov 2014; DAPPER's Var4D) over windows of
``window`` observation intervals. The control variable is the state ``x0`` at the window start:

    J(x0) = ½ (x0 − x_b)ᵀ B⁻¹ (x0 − x_b) + ½ Σ_k ‖y_k − H_k M_{0→k}(x0)‖² / σ_o²,

``M_{0→k}`` the RK4 model from the window start to its k-th observation time and ``H_k`` the
selection of the components observed there (NaN = not observed). Its gradient is the adjoint

    ∇J = B⁻¹ (x0 − x_b) − Σ_k M_{0→k}ᵀ H_kᵀ (y_k − H_k x_k) / σ_o²,

with ``M_{0→k}`` the tangent-linear (the product of the RK4 step Jacobians): :func:`cost_and_gradient`.
The same cost through the torch twin of the model (:func:`cost_torch`) gives the gradient by
autograd; the tests check that the two agree and match finite differences.

Two minimisers: ``"gauss-newton"`` (incremental 4D-Var, as operational centres run it: each
outer loop linearises the model about the current trajectory and solves the quadratic inner
problem exactly, the state being small, the step halved until J decreases) and ``"lbfgs"``
(L-BFGS, :func:`lbfgs`, on the full non-linear cost with the adjoint gradient, in the
preconditioned variable ``x0 = x_b + L v``, ``B = L Lᵀ``).
The background of the next window is the forecast of this window's analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from toyda.da.base import DAResult, check, diverged, first_background
from toyda.da.var3d import check_background, static_b
from toyda.experiment import Experiment, Model, Observations

MINIMISERS = ("gauss-newton", "lbfgs")


def window_trajectory(model: Model, x0: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """States ``(L, n)`` at the window's observation times and the TLMs ``M_{0→k} (n, n)``."""
    xs, Ms, M, x = [], [], np.eye(model.n), x0
    for s in steps:
        x, Mk = model.forecast_tl(x, s)
        M = Mk @ M
        xs.append(x)
        Ms.append(M)
    return np.array(xs), Ms


def cost_and_gradient(model: Model, x0: np.ndarray, xb: np.ndarray, Binv: np.ndarray, y: np.ndarray,
                      steps: np.ndarray, sigma_o: float) -> tuple[float, np.ndarray]:
    """``J(x0)`` and its gradient ``(n,)`` by the adjoint; ``y (L, n)`` with NaN = not observed."""
    xs, Ms = window_trajectory(model, x0, steps)
    d = x0 - xb
    J, g = 0.5 * d @ Binv @ d, Binv @ d
    for x, M, yk in zip(xs, Ms, y):
        r = np.where(np.isfinite(yk), np.nan_to_num(yk) - x, 0.0) / sigma_o ** 2
        J += 0.5 * sigma_o ** 2 * r @ r
        g -= M.T @ r
    return float(J), g


def cost_torch(model: Model, x0, xb: np.ndarray, Binv: np.ndarray, y: np.ndarray, steps: np.ndarray,
               sigma_o: float):
    """The same ``J(x0)`` on a torch tensor ``x0 (n,)`` through :meth:`Model.step_torch` (autograd)."""
    import torch  # noqa: PLC0415

    xb_t, Binv_t = torch.as_tensor(xb, dtype=x0.dtype), torch.as_tensor(Binv, dtype=x0.dtype)
    d = x0 - xb_t
    J = 0.5 * d @ Binv_t @ d
    x = x0
    for s, yk in zip(steps, y):
        for _ in range(int(s)):
            x = model.step_torch(x)
        o = torch.as_tensor(np.isfinite(yk))
        r = (torch.as_tensor(np.nan_to_num(yk), dtype=x0.dtype) - x)[o]
        J = J + 0.5 * (r @ r) / sigma_o ** 2
    return J


def cost(model: Model, x0: np.ndarray, xb: np.ndarray, Binv: np.ndarray, y: np.ndarray, steps: np.ndarray,
         sigma_o: float) -> float:
    """``J(x0)`` alone (the non-linear forecast only, no TLM)."""
    d = x0 - xb
    J, x = 0.5 * d @ Binv @ d, x0
    for s, yk in zip(steps, y):
        x = model.forecast(x, s)
        o = np.isfinite(yk)
        J += 0.5 * np.sum((yk[o] - x[o]) ** 2) / sigma_o ** 2
    return float(J)


def _gauss_newton(model, xb, Binv, y, steps, sigma_o, outer_loops):
    """Incremental 4D-Var: exact inner solves, each step halved (at most 6 times) until J decreases;
    stops when J no longer decreases (relative 1e-10)."""
    x0 = xb.copy()
    J0 = cost(model, x0, xb, Binv, y, steps, sigma_o)
    for _ in range(outer_loops):
        xs, Ms = window_trajectory(model, x0, steps)
        A, b = Binv.copy(), Binv @ (xb - x0)
        for x, M, yk in zip(xs, Ms, y):
            o = np.isfinite(yk)
            HM = M[o]
            A += HM.T @ HM / sigma_o ** 2
            b += HM.T @ (yk[o] - x[o]) / sigma_o ** 2
        dx = np.linalg.solve(A, b)
        for _ in range(7):
            J1 = cost(model, x0 + dx, xb, Binv, y, steps, sigma_o)
            if J1 < J0:
                break
            dx = 0.5 * dx
        else:
            break                                           # no descent along the Gauss-Newton step
        x0, converged, J0 = x0 + dx, J0 - J1 <= 1e-10 * J0, J1
        if converged:
            break
    return x0


def lbfgs(fun, x0: np.ndarray, max_iter: int = 100, history: int = 10, gtol: float = 1e-9,
          ftol: float = 1e-13) -> tuple[np.ndarray, int]:
    """Minimise ``fun(x) -> (f, ∇f)`` by L-BFGS (Nocedal & Wright 2006, Alg. 7.4–7.5): the two-loop
    recursion over the last ``history`` pairs ``(s, y)`` for the direction, a bisection/extrapolation
    line search for the weak Wolfe conditions (Lewis & Overton 2013), so that ``sᵀy > 0``. Stops when ``‖∇f‖ <= gtol (1 + |f|)``
    or the relative decrease of ``f`` falls below ``ftol``. Returns ``(x, iterations)``.

    (Written out rather than scipy's L-BFGS-B: on tiny problems its BLAS calls cost milliseconds
    when the BLAS threads compete for the cores, and the recursion fits on a page.)
    """
    x = np.asarray(x0, dtype=float).copy()
    f, g = fun(x)
    pairs: list[tuple[np.ndarray, np.ndarray, float]] = []
    for it in range(max_iter):
        if np.linalg.norm(g) <= gtol * (1 + abs(f)):
            return x, it
        q, alphas = g.copy(), []
        for s, y, rho in reversed(pairs):
            a = rho * (s @ q)
            q -= a * y
            alphas.append(a)
        r = q * ((pairs[-1][0] @ pairs[-1][1]) / (pairs[-1][1] @ pairs[-1][1]) if pairs else 1.0)
        for (s, y, rho), a in zip(pairs, reversed(alphas)):
            r += s * (a - rho * (y @ r))
        d = -r
        slope = g @ d
        if slope >= 0:                                    # not a descent direction: steepest descent
            pairs, d, slope = [], -g, -(g @ g)
        step, lo, hi = 1.0, 0.0, np.inf                   # weak Wolfe by bisection/extrapolation
        for _ in range(60):
            f_new, g_new = fun(x + step * d)
            if not f_new <= f + 1e-4 * step * slope:      # too long (or not finite)
                hi = step
            elif g_new @ d < 0.9 * slope:                  # too short: the slope is still steep
                lo = step
            else:
                break
            step = 0.5 * (lo + hi) if np.isfinite(hi) else 2.0 * lo
        else:
            return x, it
        s, y = step * d, g_new - g
        if s @ y > 1e-14 * np.linalg.norm(s) * np.linalg.norm(y):
            pairs = [*pairs[-(history - 1):], (s, y, 1.0 / (s @ y))]
        done = f - f_new <= ftol * max(abs(f), 1.0)
        x, f, g = x + s, f_new, g_new
        if done:
            return x, it + 1
    return x, max_iter


def _lbfgs(model, xb, Binv, L, y, steps, sigma_o, max_iter):
    """L-BFGS on J in the preconditioned variable ``x0 = x_b + L v`` (``B = L Lᵀ``, so ``J_b = ½ vᵀv``)."""
    def fun(v):
        J, g = cost_and_gradient(model, xb + L @ v, xb, Binv, y, steps, sigma_o)
        return J, L.T @ g

    return xb + L @ lbfgs(fun, np.zeros(xb.size), max_iter)[0]


@dataclass(frozen=True)
class Var4D:
    """Strong-constraint 4D-Var cycled over consecutive windows of ``window`` observation intervals."""

    window: int = 1
    """observation intervals per assimilation window (>= 1)"""
    background: str = "climatology"
    """'climatology' (B = b_scale · C_clim) or 'identity' (B = b_scale · I)"""
    b_scale: float = 0.1
    """DAPPER's xB: 0.1 on sakov2012 L63"""
    minimiser: str = "gauss-newton"
    """'gauss-newton' (incremental, exact inner solves) or 'lbfgs' (L-BFGS, adjoint gradient)"""
    outer_loops: int = 8
    """Gauss–Newton outer loops (re-linearisations) per window"""
    max_iter: int = 100
    """L-BFGS iterations at most per window"""
    name: ClassVar[str] = "4dvar"

    def __post_init__(self) -> None:
        check("window", self.window, isinstance(self.window, (int, np.integer)) and self.window >= 1,
              "must be an integer >= 1 (observation intervals per window)")
        check_background(self.background, self.b_scale)
        check("minimiser", self.minimiser, self.minimiser in MINIMISERS, "'gauss-newton' or 'lbfgs'")
        check("outer_loops", self.outer_loops, self.outer_loops >= 1, "must be >= 1")
        check("max_iter", self.max_iter, self.max_iter >= 1, "must be >= 1")

    def assimilate(self, exp: Experiment, obs: Observations, rng: np.random.Generator) -> DAResult:
        """``x_f``: the background trajectory over each window; ``x_a``: the analysed trajectory;
        ``info["cost"]``, ``info["cost_b"]``: J at the analysis and at the background of each window."""
        m = exp.model
        B = static_b(exp, self.background, self.b_scale)
        Binv, L = np.linalg.inv(B), np.linalg.cholesky(B)
        xb = first_background(exp, obs, rng)[0]            # background at the window start (t = 0)
        K_, n = obs.y.shape
        x_f, x_a = np.empty((K_, n)), np.empty((K_, n))
        costs, stop = [], None
        for start in range(0, K_, self.window):
            idx = np.arange(start, min(start + self.window, K_))
            steps, y = obs.steps[idx], obs.y[idx]
            x_f[idx] = window_trajectory(m, xb, steps)[0]
            if self.minimiser == "lbfgs":
                x0 = _lbfgs(m, xb, Binv, L, y, steps, exp.sigma_o, self.max_iter)
            else:
                x0 = _gauss_newton(m, xb, Binv, y, steps, exp.sigma_o, self.outer_loops)
            xs, _ = window_trajectory(m, x0, steps)
            costs.append((cost(m, xb, xb, Binv, y, steps, exp.sigma_o), cost(m, x0, xb, Binv, y, steps, exp.sigma_o)))
            x_a[idx] = xs
            if diverged(xs[-1], exp):
                stop = int(idx[0])
                break
            xb = xs[-1]                                    # the next window's background: this forecast
        cut = slice(None) if stop is None else slice(0, stop)
        costs = np.array(costs).reshape(-1, 2)
        return DAResult(x_f[cut], x_a[cut], diverged_at=stop, info={"cost_b": costs[:, 0], "cost": costs[:, 1]})
