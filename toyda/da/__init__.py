"""Classical DA methods on any :class:`toyda.experiment.Experiment`, one small dataclass per method
(DAPPER's da_method pattern): ``make_method("etkf", n_members=10).assimilate(exp, obs, rng)``."""

from __future__ import annotations

import dataclasses

from toyda.da.base import DAResult
from toyda.da.enkf import ETKF, EnKF
from toyda.da.extkf import ExtKF
from toyda.da.letkf import LETKF
from toyda.da.pf import PF
from toyda.da.oi import OI
from toyda.da.var3d import Var3D
from toyda.da.var4d import Var4D

METHODS: dict[str, type] = {cls.name: cls for cls in (OI, Var3D, ExtKF, EnKF, ETKF, LETKF, Var4D, PF)}


def make_method(name: str, **settings):
    """The method ``name`` with ``settings``; a ValueError names what is allowed otherwise."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; the methods are: {', '.join(METHODS)}")
    cls = METHODS[name]
    allowed = {f.name for f in dataclasses.fields(cls)}
    extra = set(settings) - allowed
    if extra:
        raise ValueError(f"{name} takes {', '.join(sorted(allowed)) or 'no settings'}, not {', '.join(sorted(extra))}")
    return cls(**settings)


__all__ = ["DAResult", "METHODS", "make_method", "OI", "Var3D", "ExtKF", "EnKF", "ETKF", "LETKF", "Var4D", "PF"]
