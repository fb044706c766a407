"""Run a pack's own test cases (``gen4sdk policy test PACK``) and single checks (``gen4sdk policy check``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gen4sdk.policy._engine import Policy
from gen4sdk.types import Decision, GenerationRequest

__all__ = ["PackTestReport", "PackTestResult", "check_text", "run_pack_tests"]


class PackTestResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int
    prompt: str
    expect: str
    got: str
    categories: list[str] = Field(default_factory=list)
    code: str | None = None
    passed: bool
    problem: str = ""


class PackTestReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    pack_id: str
    pack_version: str
    pack_sha256: str
    semantic: str | None = Field(description="text encoder id, or None when rules only")
    results: list[PackTestResult]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[PackTestResult]:
        return [r for r in self.results if not r.passed]

    def table(self) -> str:
        """Plain-text table for the command line."""
        lines = [f"pack {self.pack_id} {self.pack_version} (semantic: {self.semantic or 'off'})"]
        for r in self.results:
            mark = "ok  " if r.passed else "FAIL"
            extra = f"  <- {r.problem}" if r.problem else ""
            lines.append(
                f"{mark} expect={r.expect:5} got={r.got:5} {','.join(r.categories):30.30} {r.prompt[:60]!r}{extra}"
            )
        n_fail = len(self.failures)
        lines.append(f"{len(self.results) - n_fail}/{len(self.results)} passed")
        return "\n".join(lines)


def _policy(pack: Policy | str | Path, kwargs: dict[str, Any]) -> Policy:
    return pack if isinstance(pack, Policy) else Policy.load(pack, **kwargs)


def run_pack_tests(pack: Policy | str | Path, **policy_kwargs: Any) -> PackTestReport:
    """Run the test cases written in a pack. ``pack``: a Policy, a shipped pack name or a pack file path.

    Extra keyword arguments go to Policy (e.g. ``semantic=False``). Raises PolicyPackError for a bad pack.
    """
    policy = _policy(pack, policy_kwargs)
    results = []
    for i, case in enumerate(policy.pack.tests):
        problem = ""
        try:
            if case.negative_prompt is not None:
                req = GenerationRequest(
                    prompt=case.prompt, negative_prompt=case.negative_prompt, request_id=f"t{i}"
                )
                d = policy.check_request(req)
            else:
                d = policy.check_prompt(case.prompt)
        except Exception as e:  # noqa: BLE001 - a crashing case is a failed case, reported as such
            results.append(
                PackTestResult(
                    index=i,
                    prompt=case.prompt,
                    expect=case.expect,
                    got="error",
                    passed=False,
                    problem=f"{type(e).__name__}: {e}",
                )
            )
            continue
        if d.action != case.expect:
            problem = f"expected {case.expect}, got {d.action} ({d.reason})"
        missing = [c for c in case.categories if c not in d.categories]
        if missing and not problem:
            problem = f"categories {missing} not triggered (got {d.categories})"
        if case.code is not None and d.code != case.code and not problem:
            problem = f"expected code {case.code}, got {d.code}"
        results.append(
            PackTestResult(
                index=i,
                prompt=case.prompt,
                expect=case.expect,
                got=d.action,
                categories=d.categories,
                code=d.code,
                passed=not problem,
                problem=problem,
            )
        )
    enc = policy.text_encoder
    return PackTestReport(
        pack_id=policy.id,
        pack_version=policy.version,
        pack_sha256=policy.sha256,
        semantic=enc.id if enc is not None else None,
        results=results,
    )


def check_text(text: str, pack: Policy | str | Path = "default", **policy_kwargs: Any) -> Decision:
    """``gen4sdk policy check "prompt" [--pack PACK]``: the Decision for one prompt."""
    return _policy(pack, policy_kwargs).check_prompt(text)
