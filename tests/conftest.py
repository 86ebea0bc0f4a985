import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def _edge_se(spec, filt, ppd, edge_cpd):
    """Relative standard error of a measured band edge: the relative standard error of the
    periodogram's bin there (1 / sqrt(n k / 2): k DFT samples, half of them independent, in
    n images) over the log-log slope of the designed power |H|^2 at the edge."""
    from stimgen.filters import radial_part

    j = int(np.argmin(np.abs(np.log(spec.freq_cpd / edge_cpd))))
    rel_power = 1.0 / np.sqrt(spec.n_images * spec.counts[j] / 2.0)
    f = edge_cpd / ppd * np.array([2**-0.05, 2**0.05])
    h2 = np.asarray(radial_part(filt).transfer(f), dtype=np.float64) ** 2
    if not np.all(h2 > 0):  # a wall (ideal): the edge is where the power vanishes, exactly
        return 0.0
    slope = abs(np.log(h2[1] / h2[0]) / np.log(f[1] / f[0]))
    return float(rel_power / slope)


@pytest.fixture
def edge_se():
    """:func:`_edge_se`: the relative standard error of a measured band edge."""
    return _edge_se
