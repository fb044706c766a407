"""Imported first by ``gen4sdk.models``: on a light install (no torch) the import stops here and names the extra.

Without it the first backend's ``import torch`` fails with a bare ModuleNotFoundError, which says nothing of
``pip install 'gen4sdk[generate]'``. The Client imports this package, so ``gen4sdk.Client`` reports it too.
"""

from __future__ import annotations

from gen4sdk._extras import VIDEO_MODEL, require

require("gen4sdk's video models (gen4sdk.Client, gen4sdk.models)", VIDEO_MODEL)
