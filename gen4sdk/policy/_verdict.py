"""From what the checks found to a Decision: which categories block or warn, the refusal code, the reason.

The checks (text, media) only collect :class:`Trigger` objects; this module alone turns them into decisions,
so every decision of a pack carries the same pack id, version and hashes, and the same wording.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from gen4sdk.errors import ModelLoadError
from gen4sdk.policy._schema import PolicyPack
from gen4sdk.types import Decision, MatchedSpan, RefusalCode

__all__ = ["Stage", "Trigger", "Verdicts"]

logger = logging.getLogger(__name__)

Stage = Literal["input", "output"]
_LIKENESS_CATEGORIES = ("likeness", "public_figures")


@dataclass
class Trigger:
    """One category a check found: the matched spans, and whether a model (rather than a rule) flagged it."""

    category: str
    spans: list[MatchedSpan] = field(default_factory=list)
    model: bool = False


class Verdicts:
    """Builds the decisions of one pack."""

    def __init__(self, pack: PolicyPack, pack_sha256: str, core_sha256: str) -> None:
        self._pack = pack
        self._sha = pack_sha256
        self._core = core_sha256
        self._action = {c.id: c.action for c in pack.categories}

    def decision(self, **kw: Any) -> Decision:
        return Decision(
            pack_id=self._pack.id,
            pack_version=self._pack.version,
            pack_sha256=self._sha,
            core_sha256=self._core,
            **kw,
        )

    def fail_closed(
        self,
        *,
        code: RefusalCode,
        stage: Stage,
        warnings: list[str],
        reason: str,
        scores: dict[str, float] | None = None,
    ) -> Decision:
        """A refusal because a check could not run (or could not judge) and the pack or the SDK fails closed."""
        return self.decision(
            allowed=False,
            action="block",
            code=code,
            stage=stage,
            scores=scores or {},
            warnings=warnings,
            reason=reason,
        )

    def failed(self, stage: Stage, exc: BaseException) -> Decision:
        """The refusal for a check that raised: SAFETY.UNAVAILABLE for a model that cannot load, else INTERNAL."""
        return self.unavailable(stage, exc) if isinstance(exc, ModelLoadError) else self.internal(stage, exc)

    def internal(self, stage: Stage, exc: BaseException) -> Decision:
        logger.error(
            "policy check failed internally; refusing (fail closed): %s: %s", type(exc).__name__, exc
        )
        return self.fail_closed(
            code="SAFETY.INTERNAL",
            stage=stage,
            warnings=[],
            reason=f"the policy check failed internally ({type(exc).__name__}: {exc}); refused (fail closed)",
        )

    def unavailable(self, stage: Stage, exc: BaseException) -> Decision:
        logger.error("a policy model could not be loaded; refusing (fail closed): %s", exc)
        return self.fail_closed(
            code="SAFETY.UNAVAILABLE",
            stage=stage,
            warnings=["check.unavailable"],
            reason=f"a policy check could not run ({exc}); refused (fail closed)",
        )

    def finish(
        self,
        triggers: dict[str, Trigger],
        scores: dict[str, float],
        warnings: list[str],
        grant_ids: list[str],
        *,
        stage: Stage,
        content_code: RefusalCode,
        likeness_code: RefusalCode,
    ) -> Decision:
        action = self._action
        blocking = [c for c in triggers if action[c] == "block"]
        warning = [c for c in triggers if action[c] == "warn"]
        spans = [s for t in triggers.values() for s in t.spans if action[t.category] != "allow"]
        categories = blocking + [c for c in warning if c not in blocking]
        warnings = list(dict.fromkeys([*warnings, *(f"category:{c}" for c in warning)]))
        if blocking:
            # a real person involved is the more specific reason: it names who must consent
            likeness = [c for c in blocking if c in _LIKENESS_CATEGORIES]
            why = []
            for c in blocking:
                t = triggers[c]
                how = [s.rule for s in t.spans[:3]] + (["model"] if t.model else [])
                why.append(f"{c} ({', '.join(how)})")
            return self.decision(
                allowed=False,
                action="block",
                code=likeness_code if likeness else content_code,
                stage=stage,
                categories=categories,
                scores=scores,
                spans=spans,
                warnings=warnings,
                reason="refused by policy: " + "; ".join(why),
            )
        verdict: Literal["allow", "warn"] = "warn" if warning else "allow"
        return self.decision(
            allowed=True,
            action=verdict,
            stage=stage,
            categories=categories,
            scores=scores,
            spans=spans,
            warnings=warnings,
            grant_id=",".join(dict.fromkeys(grant_ids)) or None,
            reason="allowed with warnings: " + ", ".join(warning) if warning else "allowed",
        )

    def merge(self, parts: list[tuple[str, Decision]], stage: Stage) -> Decision:
        """One decision for several checks of one request (prompt, negative prompt, image): the first refusal's
        code; everything found by any of them."""
        if len(parts) == 1:
            return parts[0][1]
        ds = [d for _, d in parts]
        refused = [d for d in ds if not d.allowed]
        scores = {
            (f"{name}:{k}" if name != "prompt" else k): v for name, d in parts for k, v in d.scores.items()
        }
        common: dict[str, Any] = {
            "stage": stage,
            "categories": list(dict.fromkeys(c for d in ds for c in d.categories)),
            "scores": scores,
            "spans": [s for d in ds for s in d.spans],
            "warnings": list(dict.fromkeys(w for d in ds for w in d.warnings)),
        }
        if refused:
            return self.decision(
                allowed=False,
                action="block",
                code=refused[0].code,
                reason="; ".join(d.reason for d in refused),
                **common,
            )
        grants = [g for d in ds if d.grant_id for g in d.grant_id.split(",")]
        return self.decision(
            allowed=True,
            action="warn" if any(d.action == "warn" for d in ds) else "allow",
            grant_id=",".join(dict.fromkeys(grants)) or None,
            reason="; ".join(d.reason for d in ds if d.reason and d.reason != "allowed") or "allowed",
            **common,
        )
