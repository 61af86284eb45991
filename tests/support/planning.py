"""What rules plan against in tests: the default limits, with the bundled models available."""

from __future__ import annotations

from origin.core.limits import Limits
from origin.superres.policy import SuperResPolicy
from rules.srcset import Capacity

CAPACITY = Capacity(Limits(), SuperResPolicy())
