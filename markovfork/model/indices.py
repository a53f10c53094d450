"""Unsigned index constants for the compiled kernels.

Kernels index nodes with uint64 so that Numba emits no negative-index wraparound code; mixing a
uint64 with a plain Python int gives float64, so offsets are written with these constants.
"""

import numpy as np

U1, U2, U3 = np.uint64(1), np.uint64(2), np.uint64(3)
