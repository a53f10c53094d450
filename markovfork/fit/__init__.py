"""Fitting the simulator to measured pass@k curves (``docs/fit.md``).

* :mod:`markovfork.fit.parameters`: the declared free parameters, their bounds and meanings;
* :mod:`markovfork.fit.predict`: :class:`CurvePredictor`, the pass@k table (arm x epoch x k) of a
  bridge run's SFT arms as a function of those parameters;
* :mod:`markovfork.fit.measured`: a results table (shared schema, any engine) as observations
  with binomial standard errors, and the fingerprint of the data;
* :mod:`markovfork.fit.forks`: the fork observations of per-problem counts (how far the arm choice
  at the forward fork has collapsed on the test problems), fitted beside pass@k;
* :mod:`markovfork.fit.solve`: weighted least squares, Jacobian uncertainties, JSON I/O;
* :mod:`markovfork.fit.heldout`: held-out splits and their baselines; :mod:`markovfork.fit.measured_run`:
  what ``markovfork fit`` computes;
* :mod:`markovfork.fit.counts`: predicted and measured histograms of per-problem success counts
  and their distances.
"""

from markovfork.fit.counts import histogram_distance, measured_histogram, predicted_histogram
from markovfork.fit.forks import ForkObservations, fork_statistic, measured_forks
from markovfork.fit.measured import Measured, measured_curves
from markovfork.fit.parameters import PARAMETERS, FreeParameter
from markovfork.fit.predict import CurvePredictor
from markovfork.fit.solve import FitResult, fit_parameters, load_fit, save_fit

__all__ = [
    "PARAMETERS", "FreeParameter", "CurvePredictor", "Measured", "measured_curves",
    "ForkObservations", "measured_forks", "fork_statistic",
    "FitResult", "fit_parameters", "save_fit", "load_fit",
    "predicted_histogram", "measured_histogram", "histogram_distance",
]
