"""What dalab does not do, said plainly (the offline model's honest scope).

- A request for a DA method or capability dalab lacks is answered with that fact and what dalab
  can do instead, never by running a different tool as if it were the one asked for.
- A request outside the course (today's weather, a restaurant) gets a short, polite refusal that
  says what dalab is for.
"""

from __future__ import annotations

import re
from functools import cache

from assistant import prompts
from assistant.answers import terms
from assistant.routing import normalise
from tools.base import phrases_of, values_of
from tools.registry import TOOLS
from tools.retrieval import corpus_dir

# (pattern, what it is, what dalab offers instead): methods a student meets in the wider DA
# literature that dalab does not implement.
LACKING: tuple[tuple[str, str, str], ...] = (
    (r"\bhybrid\b|\benvar\b|en-?var\b|en4dvar|4denvar|3denvar",
     "hybrid ensemble-variational methods (EnVar, 4DEnVar)",
     "3D-Var, 4D-Var, the EnKF/ETKF/LETKF and a particle filter on Lorenz-63/96 (run_da_experiment), "
     "and compare_da_methods to put them side by side"),
    (r"\b(?:kalman |rts |ensemble |rauch[- ]tung[- ]striebel )?smoother\b|\benks\b|\bienks\b",
     "smoothers (the Kalman/RTS smoother, EnKS, IEnKS)",
     "filters and 4D-Var on Lorenz-63/96 (run_da_experiment; 4D-Var uses a window of observations), and ORIGEN, "
     "which reconstructs a whole trajectory by iterating analyses"),
    (r"weak[- ]constraint", "weak-constraint 4D-Var",
     "strong-constraint 4D-Var (run_da_experiment method=4dvar)"),
    (r"\b(?:unscented|ukf)\b", "the unscented Kalman filter",
     "the extended Kalman filter and the EnKF/ETKF (run_da_experiment)"),
    (r"\bparticle flow\b|\bimplicit (?:particle )?filter\b|\bequivalent[- ]weights\b", "particle-flow and implicit particle filters",
     "the bootstrap particle filter (run_da_experiment method=pf)"),
    (r"\bbias correction\b|\bvarbc\b", "variational bias correction",
     "the lab's observation operators with unbiased noise (generate_observations)"),
    (r"\b(?:graphcast|pangu|fourcastnet|aifs|gencast|neural ?gcm|transformer|diffusion model|foundation model)\b",
     "large ML weather models (GraphCast, Pangu, AIFS and the like)",
     "the lab's learned models: the obs-to-obs network (train_obs2obs) and the Lorenz-63 emulator "
     "(train_lorenz63_emulator); the lecture notes discuss the large models (ask about them)"),
    (r"\blorenz[- ]?(?:84|05|2005)\b|\bquasi[- ]geostrophic\b|\bqg model\b|\bshallow[- ]water\b|\bkuramoto\b",
     "that model",
     "Lorenz-63 and Lorenz-96 (run_da_experiment), the oscillator and the 2D toy atmosphere"),
)
_LACKING = tuple((re.compile(p), what, instead) for p, what, instead in LACKING)

_RUN_OR_ASK = re.compile(r"\b(?:run|do|use|try|apply|perform|implement|compute|show|can you|could you|give|make|"
                         r"train|fit|is there|do you have|does dalab)\b")


def lacking(core: str) -> str | None:
    """The reply for a request to run something dalab does not have, or None."""
    t = normalise(core)
    if not _RUN_OR_ASK.search(t):
        return None      # "what is a smoother?" is a concept question for the notes
    for rx, what, instead in _LACKING:
        if rx.search(t):
            return prompts.LACKING.format(what=what, instead=instead)
    return None


# Requests about the real world or daily life, not the course.
_OFF_TOPIC = re.compile(
    r"\bweather\b.*\b(?:tomorrow|today|tonight|this (?:week|weekend)|next week|right now|outside)\b"
    r"|\b(?:tomorrow|today|tonight)\b.*\bweather\b|\bweather (?:like )?(?:in|at|for) [a-z]"
    r"|\b(?:pizza|restaurant|recipe|movie|film|song|football|soccer|stock price|bitcoin|horoscope|joke|poem|"
    r"girlfriend|boyfriend|vacation|holiday plans|flight|hotel)\b")

# Words of the course: a question with none of them (and no tool named) is outside it.
_DOMAIN = re.compile(
    r"assimil|analys|observ|covarian|kalman|ensemble|variational|\b[34]d-?var|\bvar\b|lorenz|\bl-?(?:63|96)\b|origen"
    r"|radiosond|sonde|satellit|channel|\bgain\b|background|\bprior\b|posterior|network|neural|\bnn\b|\bcnn\b"
    r"|deepsets|train|loss|epoch|emulat|forecast|inflation|locali[sz]|particle|filter|rmse|error|noise|budget"
    r"|advect|diffus|tracer|atmospher|normali[sz]|profile|reconstruct|attractor|chao|oscillat|course|lecture"
    r"|\blab\b|\bday\b|schedule|talk|speaker|present|ecmwf|\bdwd\b|noaa|rtma|ai-?dop|machine learning|\bml\b"
    r"|\bai\b|model|predict|operator|jacobian|adjoint|tangent|gradient|cost function|bayes|gaussian|uncertaint"
    r"|spread|cycle|weather|climate|numerical|data|python|script|code|dalab|tool|plot|figure|run|experiment"
    r"|sigma|σ|matrix|equation|formula|ensemble|member|skill|valid|state|reanalysis|nowcast|downscal")


# The course's symbols, for questions that name only the symbol ("what is B?", "what does x_a mean?").
NOTATION = {
    "b": "background-error covariance B", "r": "observation-error covariance R", "h": "observation operator H",
    "k": "Kalman gain K", "q": "model-error covariance Q added in the forecast step",
    "p": "analysis-error covariance P of the Kalman filter",
    "j": "3D-Var cost function J", "m": "forecast model M and its tangent linear", "y": "observations y",
    "d": "innovation d = y - H x_b", "x_a": "analysis x_a", "xa": "analysis x_a", "x_b": "background x_b",
    "xb": "background x_b", "x_t": "true state x_t of a twin experiment", "xt": "true state x_t of a twin experiment", "x_f": "forecast x_f",
    "n_eff": "effective sample size N_eff of the particle filter weights",
    "neff": "effective sample size N_eff of the particle filter weights", "rho": "inflation factor rho",
    "ρ": "inflation factor rho", "i-kh": "covariance update B <- (I - KH) B", "(i-kh)b": "covariance update B <- (I - KH) B",
}
_SYMBOL_QUESTION = re.compile(
    r"^(?:what(?:'s| is| are| does)|explain|define|meaning of)\s+(?:the\s+)?(?:matrix |symbol |letter |variable |"
    r"vector |operator )?(?P<s>\S+?)\s*(?:mean|stand for|represent|do|in (?:the )?\S+(?: \S+)?)?\s*[?.!]*$")


def notation(core: str) -> str | None:
    """What a question about one of the course's symbols asks about ("what is b?" → "the
    background-error covariance B"), or None when it is not one."""
    m = _SYMBOL_QUESTION.match(normalise(core))
    return NOTATION.get(m.group("s").strip("?.!,")) if m else None


_GENERIC = {"good", "like", "place", "today", "tomorrow", "time", "day", "week", "new", "best", "first", "last",
            "one", "two", "three", "part", "note", "summary", "overview", "example", "examples", "question", "answer"}


@cache
def course_terms() -> frozenset[str]:
    """The course's own words: those of the lecture notes' headings, of the tools' declared phrases and of
    the figures they draw ("rank histogram", "hovmoeller")."""
    words: set[str] = set()
    for path in sorted(corpus_dir().glob("*.md")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#"):
                words |= terms(line.lstrip("#"))
    for spec in TOOLS.values():
        for name in spec.args.model_fields:
            for p in phrases_of(spec.args, name):
                words |= terms(p)
            for value, ps in values_of(spec.args, name).items():
                words |= terms(" ".join([value, *ps]))
        words |= terms(" ".join(f.replace("_", " ") for f in spec.figures))   # what the tools draw
    return frozenset(words - _GENERIC)


def off_topic(core: str) -> str | None:
    """The polite refusal for a request outside the course, or None."""
    t = normalise(core)
    if _OFF_TOPIC.search(t):
        return prompts.OFF_TOPIC
    if not _DOMAIN.search(t) and not (terms(t) & course_terms()):
        return prompts.OFF_TOPIC
    return None
