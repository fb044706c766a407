"""AsyncClient: the Client's requests off the event loop, with asyncio cancellation reaching the denoising loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

import gen4sdk
from gen4sdk.models import tiny_model

SMALL = {"num_frames": 17, "height": 144, "width": 256, "fps": 8.0}


@pytest.fixture(scope="module")
def aclient(tmp_path_factory: pytest.TempPathFactory, signer: gen4sdk.Signer) -> gen4sdk.AsyncClient:
    work = tmp_path_factory.mktemp("async")
    return gen4sdk.AsyncClient(
        model=tiny_model(), signer=signer, owner="Acme Studios", store=work / "store.db"
    )


def test_generate_runs_off_the_event_loop_and_returns_the_same_result(
    aclient: gen4sdk.AsyncClient, tmp_path: Path, dev_keys: gen4sdk.KeyPaths
) -> None:
    # The worker, at its first denoising step, waits for a coroutine to run on the loop: if generate blocked the
    # loop, the coroutine could not run and the wait would time out.
    in_worker, loop_alive = threading.Event(), threading.Event()
    seen: list[bool] = []

    def on_progress(event: gen4sdk.ProgressEvent) -> None:
        if event.stage == "generate" and not in_worker.is_set():
            in_worker.set()
            seen.append(loop_alive.wait(60))

    async def main() -> gen4sdk.GenerationResult:
        async def witness() -> None:
            await asyncio.to_thread(in_worker.wait, 60)
            loop_alive.set()

        async with aclient as client:
            job = client.generate(
                prompt="a paper boat on a pond",
                output=tmp_path / "a.mp4",
                steps=2,
                seed=3,
                request_id="async-1",
                on_progress=on_progress,
                **SMALL,
            )
            result, _ = await asyncio.gather(job, witness())
            return result

    result = asyncio.run(main())
    assert seen == [True]
    assert result.path == tmp_path / "a.mp4" and result.path.exists()
    assert aclient.store is not None and aclient.store.find_record("async-1").record.outcome == "allowed"
    assert gen4sdk.verify(result.path, trust_anchors=dev_keys.root_cert).status == "trusted"


def test_refusal_is_raised_in_the_awaiting_task(aclient: gen4sdk.AsyncClient, tmp_path: Path) -> None:
    out = tmp_path / "r.mp4"
    with pytest.raises(gen4sdk.PolicyViolation) as info:
        asyncio.run(
            aclient.generate(
                prompt="a step by step tutorial on building a pipe bomb", output=out, steps=2, **SMALL
            )
        )
    assert info.value.code == "SAFETY.INPUT.TEXT" and not out.exists()


def test_cancelling_the_task_stops_the_worker_and_writes_nothing(
    aclient: gen4sdk.AsyncClient, tmp_path: Path
) -> None:
    first_step = threading.Event()
    steps: list[int] = []

    def on_progress(event: gen4sdk.ProgressEvent) -> None:
        if event.stage == "generate":
            steps.append(event.step)
            first_step.set()

    out = tmp_path / "c.mp4"

    async def main() -> None:
        task = asyncio.create_task(
            aclient.generate(
                prompt="a quiet lake at dawn",
                output=out,
                steps=50,
                request_id="async-cancel",
                on_progress=on_progress,
                **SMALL,
            )
        )
        await asyncio.to_thread(first_step.wait, 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert (
        aclient.store is not None and aclient.store.find_record("async-cancel").record.outcome == "cancelled"
    )
    # the worker stopped at a step boundary soon after the cancel, not after running all 50 steps
    assert 1 <= max(steps) < 50


def test_async_client_takes_the_clients_arguments(signer: gen4sdk.Signer) -> None:
    with pytest.raises(gen4sdk.InvalidRequestError):
        gen4sdk.AsyncClient(model=tiny_model(), signer=signer, owner="Acme", crf=99)
