"""Amaranth hardware generators.

The engines of the later layer kinds live in their own modules and register themselves in
:data:`hwgen.hw.engines.ENGINES` and :data:`hwgen.hw.folding.ESTIMATORS` when imported; they
are imported here, so that any use of :mod:`hwgen.hw` sees every kind.
"""

# each serial engine wraps the factory of its kind's vector engine, so it comes after it
from . import mac, mac_serial, qam, sam, sam_sparse  # noqa: F401  (registration)
