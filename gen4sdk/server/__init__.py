"""``gen4sdk serve``: one FastAPI app with a router per API (the C2PA soft-binding resolution API, the public
detection page, the generation job API) and the workers that run queued generations.

```python
from gen4sdk.server import GenerationService, GenerationWorker, create_app
store = gen4sdk.Store("gen4sdk.db", signer=signer)                 # or a postgresql:// URL shared by many hosts
app = create_app(store, generations=GenerationService(store))      # uvicorn.run(app, host="127.0.0.1", port=8000)
record, key = TaskQueue(store).create_api_key("storyboard-app")     # a partner app's key, shown once
worker = GenerationWorker(client, "clips/").start()                # one per GPU (client.store is the queue)
```
"""

from gen4sdk.server._app import create_app
from gen4sdk.server._jobs import GenerationService
from gen4sdk.server._ray_workers import RayWorkers, start_ray_workers
from gen4sdk.server._worker import GenerationWorker
from gen4sdk.store import ApiKey, TaskQueue

__all__ = [
    "ApiKey",
    "GenerationService",
    "GenerationWorker",
    "RayWorkers",
    "TaskQueue",
    "create_app",
    "start_ray_workers",
]
