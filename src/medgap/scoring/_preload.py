"""What the fork server of :class:`~medgap.scoring.engine.ProcessEngine` imports before it forks workers: the
scoring loop, the built-in metrics, and their numba kernels loaded from numba's on-disk cache by one call on a
small image. Every worker is forked from that state, so none of them loads the kernels again (about 0.3 s
each) before its first file."""

from __future__ import annotations

import medgap.scoring.run  # noqa: F401  (the function the workers run)


def _warm() -> None:
    import numpy as np

    from medgap.quality import create_metric

    image = np.random.default_rng(0).integers(0, 256, (112, 112)).astype(np.float64)
    image[:20] = 0.0  # a flat band: the exact-range branch of the MSCN kernel too
    for name in ("brisque", "niqe"):
        try:
            create_metric(name).compute(image)
        except Exception:  # noqa: BLE001 - a warm-up only: a worker would meet the same error on its own
            pass


_warm()
