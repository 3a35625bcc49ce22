"""Differential privacy of each site's update: clipped and noised by the client.

Each round, a site's update (its trained weights minus the global weights it
received) is clipped to L2 norm ``C`` over all trained parameters together, and
Gaussian noise of standard deviation ``z * C`` is added to every element before
the update leaves the site (Flower's clipping and noise helpers). The unit of
privacy is one site's contribution: with or without it, a round's release
differs by at most ``C``, so each round is a Gaussian mechanism of noise
multiplier ``z``. The budget spent over ``R`` rounds, ``(epsilon, delta)``, comes
from Rényi DP accounting (``dp_accounting``), every site taking part in every
round (no subsampling amplification is claimed).

Buffers (the modality coverage, calibration) are not patient data and are sent
as they are.
"""

from __future__ import annotations

import dp_accounting
import numpy as np
from flwr.supercore.differential_privacy import (
    add_gaussian_noise_inplace,
    compute_clip_model_update,
    get_norm,
)


def privatise_update(
    received: dict[str, np.ndarray],
    trained: dict[str, np.ndarray],
    parameters: list[str],
    clipping_norm: float,
    noise_multiplier: float,
) -> tuple[dict[str, np.ndarray], float]:
    """Clip the update of ``parameters`` to ``clipping_norm`` and add noise.

    Parameters
    ----------
    received : dict
        The global weights as the site received them.
    trained : dict
        The site's weights after local training (same keys).
    parameters : list of str
        The trainable entries (others, buffers, are passed through).
    clipping_norm : float
        ``C``, the L2 bound of the update over all ``parameters``.
    noise_multiplier : float
        ``z``: noise of standard deviation ``z * C`` on every element.

    Returns
    -------
    weights : dict
        What the site sends: received + clipped update + noise.
    norm : float
        The update's L2 norm before clipping (for the site's own log).
    """
    local = [np.array(trained[name], dtype=np.float64) for name in parameters]
    start = [np.asarray(received[name], dtype=np.float64) for name in parameters]
    norm = get_norm([a - b for a, b in zip(local, start, strict=True)])
    if norm > 0:  # a site that trained nothing has nothing to clip
        compute_clip_model_update(local, start, clipping_norm)
    add_gaussian_noise_inplace(local, noise_multiplier * clipping_norm)
    out = dict(trained)
    for name, value in zip(parameters, local, strict=True):
        out[name] = value.astype(np.asarray(trained[name]).dtype)
    return out, norm


def spent_budget(noise_multiplier: float, rounds: int, delta: float) -> float:
    """Epsilon after ``rounds`` Gaussian releases of noise multiplier ``z``, at delta.

    Rényi DP accounting (``dp_accounting.rdp.RdpAccountant``), converted to
    ``(epsilon, delta)``. Infinite without noise.
    """
    if noise_multiplier <= 0:
        return float("inf")
    if rounds <= 0:
        return 0.0
    accountant = dp_accounting.rdp.RdpAccountant()
    accountant.compose(
        dp_accounting.SelfComposedDpEvent(
            dp_accounting.GaussianDpEvent(noise_multiplier), rounds
        )
    )
    return float(accountant.get_epsilon(delta))
