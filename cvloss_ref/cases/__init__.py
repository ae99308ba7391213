"""The checking catalogue: one module of cases per loss family.

Importing this package registers every family's :class:`~cvloss_ref._catalogue.LossSpec`
in :data:`cvloss_ref._catalogue.CATALOGUE`.
"""

from . import boxes, classification, information, regression  # noqa: F401  (registration)
