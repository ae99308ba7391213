"""The checking catalogue: one module of cases per loss family.

Importing this package registers every family's :class:`~cvloss_ref._catalogue.LossSpec`
in :data:`cvloss_ref._catalogue.CATALOGUE`.
"""

from . import (  # noqa: F401  (registration)
    adversarial,
    boxes,
    classification,
    dense,
    information,
    metric,
    regression,
    synthesis,
)
