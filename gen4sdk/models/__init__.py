"""Video model backends behind one small interface.

``DiffusersVideoModel`` adapts any diffusers video pipeline (loaded from a local folder or passed as an object);
``tiny_model()`` is a randomly initialised Wan pipeline built in code, for tests and the demo.
"""

import gen4sdk.models._requires  # noqa: F401  (first: a light install stops there, naming the extra to install)
from gen4sdk.models._base import VideoModel
from gen4sdk.models._diffusers import DiffusersVideoModel
from gen4sdk.models._tiny import TINY_MODEL_ID, tiny_model, tiny_pipeline

__all__ = ["TINY_MODEL_ID", "DiffusersVideoModel", "VideoModel", "tiny_model", "tiny_pipeline"]
