"""toyda — the science of the dalab lab, in plain numpy and torch.

Arrays in, arrays out: no plotting, no files, no printing. Randomness only through an
explicit ``numpy.random.Generator`` (or a seed that makes one).

Notation (fixed once for the whole package, as in the lecture)
---------------------------------------------------------------
``x_b``      background state, shape ``(n,)``
``x_a``      analysis state, shape ``(n,)``
``y``        observation vector, shape ``(p,)``
``H``        linear observation operator, shape ``(p, n)``
``B``        background-error covariance, shape ``(n, n)``
``R``        observation-error covariance, shape ``(p, p)``
``K``        gain ``B Hᵀ (H B Hᵀ + R)⁻¹``, shape ``(n, p)``
ensemble     ``(N, n)``, members as rows
time series  ``(T, n)``
fields       ``(nz, nx)``; a stack of snapshots ``(T, nz, nx)``

Modules, one per lecture concept: ``integrate`` (RK4), ``atmosphere`` (2D advection–
diffusion toy atmosphere), ``observations`` (radiosondes, satellite channels, the dataset),
``var3d`` (3D-Var / Kalman analysis), ``cycling`` (the lecture's two loops for any model: the
sequential 3D-Var/Kalman cycle and ORIGEN's iteration), ``oscillator`` (the circle: truth,
observation patterns, the lecture's demonstrations), ``lorenz63`` (the model and its twin),
``origen_lecture`` (the notebook's ORIGEN), ``obs2obs`` (the obs-to-obs network), ``emulator``
(the learned Lorenz-63 forecast model), ``metrics``, ``checks`` (shared argument checks);
``experiment``, ``lorenz96`` and ``da`` (the classical DA methods on one experiment description).
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
