"""Compiled (numba) kernels for the toy atmosphere: the same scheme as
``atmosphere.tendency`` (flux form, 3rd-order upwind-biased advection, 2nd-order diffusion,
periodic in x, no flux through bottom and top), fused with the RK4 stages and the budget.

Kept apart so the readable numpy version stays the reference; the tests check that both
agree to round-off.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(fastmath=True, cache=True)
def _face(a0: float, a1: float, a2: float, vel: float, kappa: float, h: float) -> float:
    """Total (advective + diffusive) flux through the face between cells a1 and a2.

    ``a0`` is the cell upstream of ``a1`` for vel >= 0; callers pass the mirrored stencil
    for vel < 0.
    """
    return vel * (-a0 + 5.0 * a1 + 2.0 * a2) / 6.0 - kappa * (a2 - a1) / h


@numba.njit(fastmath=True, cache=True)
def _face_neg(a3: float, a2: float, a1: float, vel: float, kappa: float, h: float) -> float:
    """Flux through the face between cells a1 (left/below) and a2 for vel < 0; a3 is upstream of a2."""
    return vel * (-a3 + 5.0 * a2 + 2.0 * a1) / 6.0 - kappa * (a2 - a1) / h


@numba.njit(fastmath=True, cache=True)
def tendency_into(phi, a, S, lam_z, u, w, K, dx, dz, out, fx, fzlo, fzhi):
    """``out = RHS(phi)`` for one member, ``phi`` of shape ``(nz, nx)``; returns ∫λφ."""
    nz, nx = phi.shape
    loss = 0.0
    for i in range(nx):
        fzlo[i] = 0.0  # no flux through the bottom
    for j in range(nz):
        row = phi[j]
        # x faces: fx[i] is the flux through face i-1/2 (between cells i-1 and i), periodic.
        if u >= 0.0:
            for i in range(2, nx):
                fx[i] = _face(row[i - 2], row[i - 1], row[i], u, K, dx)
            fx[0] = _face(row[nx - 2], row[nx - 1], row[0], u, K, dx)
            fx[1] = _face(row[nx - 1], row[0], row[1], u, K, dx)
        else:
            for i in range(1, nx - 1):
                fx[i] = _face_neg(row[i + 1], row[i], row[i - 1], u, K, dx)
            fx[0] = _face_neg(row[1], row[0], row[nx - 1], u, K, dx)
            fx[nx - 1] = _face_neg(row[0], row[nx - 1], row[nx - 2], u, K, dx)
        fx[nx] = fx[0]
        # z face above row j; zero flux through the top wall.
        if j < nz - 1:
            up = phi[j + 1]
            if w >= 0.0:
                below = phi[j - 1] if j > 0 else row      # mirror ghost at the bottom
                for i in range(nx):
                    fzhi[i] = _face(below[i], row[i], up[i], w, K, dz)
            else:
                above = phi[j + 2] if j < nz - 2 else up   # mirror ghost at the top
                for i in range(nx):
                    fzhi[i] = _face_neg(above[i], up[i], row[i], w, K, dz)
        else:
            for i in range(nx):
                fzhi[i] = 0.0
        lj = lam_z[j]
        for i in range(nx):
            out[j, i] = (-(fx[i + 1] - fx[i]) / dx - (fzhi[i] - fzlo[i]) / dz
                         + a * S[j, i] - lj * row[i])
            loss += lj * row[i]
            fzlo[i] = fzhi[i]
    return loss * dx * dz


@numba.njit(fastmath=True, cache=True, parallel=True)
def rk4_run(phi0, n_steps, dt, A, S, lam_z, u, w, K, dx, dz, snap_steps, snaps, C, I, L,
            in_rk4, loss_rk4, final):
    """Advance every member of ``phi0`` (N, nz, nx) ``n_steps`` RK4 steps, members in parallel.

    ``A`` (N, 2 n_steps + 1): forcing amplitude at the half-step times t0 + m dt/2.
    Writes the snapshots at ``snap_steps`` into ``snaps`` (N, T, nz, nx), the last field into
    ``final`` (N, nz, nx) and, per step n,
    C(t_n), I(t_n), L(t_n) and the RK4-weighted increments of injected and lost content.
    """
    N, nz, nx = phi0.shape
    s_int = S.sum() * dx * dz
    n_snap = snap_steps.shape[0]
    for m in numba.prange(N):  # members in parallel, each with its own scratch arrays
        k = np.empty((nz, nx))
        acc = np.empty((nz, nx))
        tmp = np.empty((nz, nx))
        fx = np.empty(nx + 1)
        fzlo = np.empty(nx)
        fzhi = np.empty(nx)
        phi = phi0[m].copy()
        snap = 0
        for n in range(n_steps + 1):
            C[m, n] = phi.sum() * dx * dz
            I[m, n] = A[m, 2 * n] * s_int
            while snap < n_snap and snap_steps[snap] == n:
                snaps[m, snap] = phi
                snap += 1
            if n == n_steps:
                L[m, n] = (lam_z.reshape(nz, 1) * phi).sum() * dx * dz
                final[m] = phi
                break
            a1 = A[m, 2 * n]
            a2 = A[m, 2 * n + 1]
            a4 = A[m, 2 * n + 2]
            l1 = tendency_into(phi, a1, S, lam_z, u, w, K, dx, dz, k, fx, fzlo, fzhi)
            L[m, n] = l1
            for j in range(nz):
                for i in range(nx):
                    acc[j, i] = k[j, i]
                    tmp[j, i] = phi[j, i] + 0.5 * dt * k[j, i]
            l2 = tendency_into(tmp, a2, S, lam_z, u, w, K, dx, dz, k, fx, fzlo, fzhi)
            for j in range(nz):
                for i in range(nx):
                    acc[j, i] += 2.0 * k[j, i]
                    tmp[j, i] = phi[j, i] + 0.5 * dt * k[j, i]
            l3 = tendency_into(tmp, a2, S, lam_z, u, w, K, dx, dz, k, fx, fzlo, fzhi)
            for j in range(nz):
                for i in range(nx):
                    acc[j, i] += 2.0 * k[j, i]
                    tmp[j, i] = phi[j, i] + dt * k[j, i]
            l4 = tendency_into(tmp, a4, S, lam_z, u, w, K, dx, dz, k, fx, fzlo, fzhi)
            for j in range(nz):
                for i in range(nx):
                    phi[j, i] += dt / 6.0 * (acc[j, i] + k[j, i])
            in_rk4[m, n] = dt / 6.0 * (a1 + 4.0 * a2 + a4) * s_int
            loss_rk4[m, n] = dt / 6.0 * (l1 + 2.0 * l2 + 2.0 * l3 + l4)


@numba.njit(fastmath=True, cache=True)
def _stage(src, a, S, lam_z, u, w, K, dx, dz, fx, fzlo, fzhi, base, acc, c_acc, dst, c_dst, first):
    """One RK4 stage fused with its combination: ``k = RHS(src)``, then per cell
    ``acc = (0 if first else acc) + c_acc k`` and ``dst = base + c_dst k`` (``dst`` must not
    be ``src``: rows of ``src`` are still read after ``dst`` rows are written)."""
    nz, nx = src.shape
    inv_dx, inv_dz = 1.0 / dx, 1.0 / dz
    for i in range(nx):
        fzlo[i] = 0.0
    for j in range(nz):
        row = src[j]
        if u >= 0.0:
            for i in range(2, nx):
                fx[i] = _face(row[i - 2], row[i - 1], row[i], u, K, dx)
            fx[0] = _face(row[nx - 2], row[nx - 1], row[0], u, K, dx)
            fx[1] = _face(row[nx - 1], row[0], row[1], u, K, dx)
        else:
            for i in range(1, nx - 1):
                fx[i] = _face_neg(row[i + 1], row[i], row[i - 1], u, K, dx)
            fx[0] = _face_neg(row[1], row[0], row[nx - 1], u, K, dx)
            fx[nx - 1] = _face_neg(row[0], row[nx - 1], row[nx - 2], u, K, dx)
        fx[nx] = fx[0]
        if j < nz - 1:
            up = src[j + 1]
            if w >= 0.0:
                below = src[j - 1] if j > 0 else row
                for i in range(nx):
                    fzhi[i] = _face(below[i], row[i], up[i], w, K, dz)
            else:
                above = src[j + 2] if j < nz - 2 else up
                for i in range(nx):
                    fzhi[i] = _face_neg(above[i], up[i], row[i], w, K, dz)
        else:
            for i in range(nx):
                fzhi[i] = 0.0
        lj = lam_z[j]
        srow, brow, arow, drow = S[j], base[j], acc[j], dst[j]
        for i in range(nx):
            k = (-(fx[i + 1] - fx[i]) * inv_dx - (fzhi[i] - fzlo[i]) * inv_dz + a * srow[i] - lj * row[i])
            arow[i] = (0.0 if first else arow[i]) + c_acc * k
            drow[i] = brow[i] + c_dst * k
            fzlo[i] = fzhi[i]


@numba.njit(fastmath=True, cache=True)
def _rk4_member(phi, n_steps, dt, A, S, lam_z, u, w, K, dx, dz):
    """Advance one field ``phi`` (nz, nx) in place by ``n_steps`` RK4 steps (no budget).

    ``A`` (2 n_steps + 1,): forcing amplitude at the half-step times. Each stage is fused
    with its RK4 combination (one pass over the grid per stage).
    """
    nz, nx = phi.shape
    acc = np.empty((nz, nx))
    t1 = np.empty((nz, nx))
    t2 = np.empty((nz, nx))
    fx = np.empty(nx + 1)
    fzlo = np.empty(nx)
    fzhi = np.empty(nx)
    h = 0.5 * dt
    for n in range(n_steps):
        a2 = A[2 * n + 1]
        # acc collects dt/6 (k1 + 2 k2 + 2 k3 + k4); phi is only overwritten by the last stage
        _stage(phi, A[2 * n], S, lam_z, u, w, K, dx, dz, fx, fzlo, fzhi, phi, acc, dt / 6.0, t1, h, True)
        _stage(t1, a2, S, lam_z, u, w, K, dx, dz, fx, fzlo, fzhi, phi, acc, dt / 3.0, t2, h, False)
        _stage(t2, a2, S, lam_z, u, w, K, dx, dz, fx, fzlo, fzhi, phi, acc, dt / 3.0, t1, dt, False)
        # last stage: t2 = phi + acc + dt/6 k4 (acc already weighted), then swap into phi
        _stage(t1, A[2 * n + 2], S, lam_z, u, w, K, dx, dz, fx, fzlo, fzhi, phi, acc, dt / 6.0, t2, 0.0, False)
        for j in range(nz):
            for i in range(nx):
                phi[j, i] += acc[j, i]


@numba.njit(fastmath=True, cache=True, parallel=True)
def rk4_ensemble(phi, n_steps, dt, A, S, lam_z, u, w, K, dx, dz):
    """Advance every member of ``phi`` (N, nz, nx) in place, members in parallel (``prange``).

    ``A`` (N, 2 n_steps + 1): each member's forcing amplitude at the half-step times.
    """
    for m in numba.prange(phi.shape[0]):
        _rk4_member(phi[m], n_steps, dt, A[m], S, lam_z, u, w, K, dx, dz)
