"""L6 leak checks: how a leak check tells steady growth from warm-up, caches and noise.

Pure functions over a series of levels, one per reading (traced bytes,
allocator blocks, live objects, malloc's bytes, RSS, descriptors, threads),
relative to the level before the first measured call. Readings are taken
every ``per`` calls (cheap functions are called many times between two
readings); slopes are fitted per reading and reported per call, in the
signal's unit, in human form (``+64 B``, ``+0.01 objects``), never in
scientific notation.

The verdict combines three tests, so that no single shape fools it:

1. **Slope**: a least-squares line over the whole series; its slope must be
   at least the signal's floor (``min_slope``) and ``z`` standard errors
   above zero. Noise gives a slope within its error; a deterministic leak
   gives a slope with no error at all.
2. **Persistence**: the slope over the last third of the series must be
   significant too, and at least a quarter of the overall slope. A bounded
   cache that fills up, then stays flat, and a one-off step (a dict resize,
   a lazy import) pass test 1 but fail this one.
3. **Monotony**: the series is cut into windows; the mean level must rise
   from window to window in at least three quarters of them, as it does for
   a leak every call or every few calls, and not for a random walk.

:func:`still_growing` asks only whether the recent half still grows, and
:func:`unsettled` whether the series grows overall while its last third is
too noisy to tell (growth in steps: a dict resizing, a leak every few
calls); the check makes more calls while either holds, before judging.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from ..values.leak import format_amount

__all__ = ["Fit", "Judgement", "fit_line", "judge", "still_growing", "unsettled"]

#: Standard errors a slope must clear to count as growth.
Z = 4.0
#: The share of the overall slope the last third must keep.
PERSIST = 0.25
#: The share of windows whose mean must rise.
MONOTONE = 0.75


@dataclass(frozen=True, slots=True)
class Fit:
    """A least-squares line through a series (x = 0, 1, 2, ...)."""

    slope: float
    intercept: float
    stderr: float

    def significant(self, min_slope: float) -> bool:
        """Whether the slope is at least *min_slope* and clear of its error."""
        return self.slope >= min_slope and self.slope > Z * self.stderr


@dataclass(frozen=True, slots=True)
class Judgement:
    """The verdict on one series, with the figures behind it."""

    leaked: bool
    fit: Fit
    detail: str


def fit_line(values: Sequence[float]) -> Fit:
    """Fit ``y = slope * x + intercept`` by least squares, with the slope's standard error.

    Example:
        >>> fit_line([0.0, 64.0, 128.0, 192.0])
        Fit(slope=64.0, intercept=0.0, stderr=0.0)
    """
    n = len(values)
    if n == 0:
        return Fit(0.0, 0.0, math.inf)
    if n == 1:
        return Fit(0.0, float(values[0]), math.inf)
    base = float(values[0])
    ys = [float(v) - base for v in values]
    mean_x = (n - 1) / 2
    mean_y = sum(ys) / n
    sxx = n * (n * n - 1) / 12
    sxy = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(ys))
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    if n < 3:
        return Fit(slope, intercept + base, math.inf)
    residual = sum((y - intercept - slope * i) ** 2 for i, y in enumerate(ys))
    stderr = math.sqrt(residual / (n - 2) / sxx)
    # Rounding leaves a residual of ~1e-12 on an exactly linear series.
    if stderr < 1e-9 * max(1.0, abs(slope)):
        stderr = 0.0
    return Fit(slope, intercept + base, stderr)


def _rising_windows(values: Sequence[float]) -> tuple[int, int]:
    """How many windows' means rise over the previous window's, out of how many steps."""
    count = min(6, len(values) // 6)
    if count < 2:
        return 0, 0
    size = len(values) // count
    means = [sum(values[k * size:(k + 1) * size]) / size for k in range(count)]
    rising = sum(1 for a, b in pairwise(means) if b > a)
    return rising, count - 1


def unsettled(values: Sequence[float], min_slope: float) -> bool:
    """Whether *values* grow overall and their last third neither clearly goes on nor stops.

    Example:
        >>> unsettled([min(i, 10) * 100.0 for i in range(40)], min_slope=32)
        False
        >>> steady = [50.0 * i for i in range(27)]
        >>> noisy = [1350 + 30 * i + (800 if i % 2 else -800) for i in range(13)]
        >>> unsettled(steady + noisy, min_slope=32)  # still rising, too noisy to tell
        True
    """
    fit = fit_line(values)
    if not fit.significant(min_slope):
        return False
    late = fit_line(values[-max(3, len(values) // 3):])
    return late.slope >= PERSIST * fit.slope and not late.significant(min_slope)


def still_growing(values: Sequence[float], min_slope: float) -> bool:
    """Whether the recent half of *values* grows significantly.

    Example:
        >>> still_growing([0, 10, 20, 30, 30, 30, 30, 30, 30, 30], min_slope=1.0)
        False
    """
    recent = values[len(values) // 2:]
    return len(recent) >= 3 and fit_line(recent).significant(min_slope)


def _per_call(slope: float, unit: str, per: int) -> str:
    return format_amount(slope / per, unit)


def judge(values: Sequence[float], min_slope: float, *, min_total: float = 0.0,
          unit: str = "bytes", per: int = 1) -> Judgement:
    """Judge whether *values* show a leak: slope, persistence and monotony.

    Args:
        values: The level after each measured call, the level before the
            first call included as the first value.
        min_slope: The smallest growth per reading that counts.
        min_total: The smallest growth over the last third that counts.
        unit: The series' unit, for the detail text.
        per: Calls per reading, for the detail text (slopes are shown per call).

    Example:
        >>> judge([64.0 * i for i in range(40)], min_slope=32).leaked
        True
        >>> cache = [min(i, 20) * 100.0 for i in range(60)]  # fills, then flat
        >>> judge(cache, min_slope=32).leaked
        False
    """
    fit = fit_line(values)
    if not fit.significant(min_slope):
        why = "below the floor" if fit.slope < min_slope else "within noise"
        return Judgement(False, fit, f"slope {_per_call(fit.slope, unit, per)} ± "
                                     f"{_per_call(fit.stderr, unit, per).lstrip('+')}/call, {why}")
    third = values[-max(3, len(values) // 3):]
    late = fit_line(third)
    late_total = float(third[-1]) - float(third[0])
    if not (late.significant(max(min_slope, PERSIST * fit.slope)) and late_total >= min_total):
        return Judgement(False, fit, f"slope {_per_call(fit.slope, unit, per)}/call but growth "
                                     f"stopped (last third {_per_call(late.slope, unit, per)} ± "
                                     f"{_per_call(late.stderr, unit, per).lstrip('+')}/call)")
    rising, steps = _rising_windows(values)
    if steps and rising < MONOTONE * steps:
        return Judgement(False, fit, f"slope {_per_call(fit.slope, unit, per)}/call but rising "
                                     f"in only {rising} of {steps} windows")
    return Judgement(True, fit, f"slope {_per_call(fit.slope, unit, per)} ± "
                                f"{_per_call(fit.stderr, unit, per).lstrip('+')}/call, last third "
                                f"{_per_call(late.slope, unit, per)}/call, rising in {rising} of "
                                f"{steps} windows")
