"""The words students use for arguments that several tools share (see ``tools.base.arg``).

A tool's own arguments carry their phrases in their declaration; the shared ones are named
here once. Phrases are plain lower-case words; ``#`` marks where the number stands when it is
not simply before or after the words ("every # steps").
"""

SEED = ("seed", "random seed")
SIGMA_O = ("sigma o", "sigma obs", "obs error", "observation error", "observations error", "obs noise",
           "observation noise", "observational error", "observational noise", "obs error std",
           "observation error std", "observation error standard deviation", "obs eror", "r std", "noise",
           "measurement error", "measurement noise")
SIGMA_B = ("sigma b", "background error", "background noise", "background error std", "bg error", "prior error",
           "background std", "first guess error")
COVARIANCE_UPDATE = ("covariance update", "cov update", "update the covariance", "updating the covariance",
                     "update b", "update of b", "updating b", "b update", "let b evolve", "evolve b", "evolving b", "b evolves",
                     "kalman-style update", "kalman style update", "kalman update", "kalman covariance update",
                     "kalman filter", "like a kalman filter", "b ← (i−kh)b", "b <- (i-kh)b", "b ← pᵃ", "b <- pa")
FIXED_B = {"false": ["fixed b", "static b", "constant b", "frozen b", "plain 3d-var"]}
N_CYCLES = ("cycles", "iterations", "cycle", "origen cycles", "reconstruction cycles", "passes")
TIME_STEPS = ("steps", "time steps", "timesteps", "model steps", "rk4 steps", "integration steps")
DT = ("dt", "δt", "delta t", "time step", "timestep", "step size", "time step size")
EPOCHS = ("epochs", "epoch")
SNAPSHOTS = ("snapshots",)
MODEL_ERROR = ("model error", "model error q", "model-error variance", "model error variance", "q", "process noise",
               "process noise q", "additive model error", "additive inflation")
INFLATION = ("inflation", "multiplicative inflation", "covariance inflation", "inflation factor", "inflate by",
             "inflate b by", "inflate the covariance by", "inflated by", "inflate b with")
