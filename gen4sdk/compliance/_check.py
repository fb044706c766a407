"""``gen4sdk.check_compliance``: one clip, any clip, against labelling-law profiles.

Verifies the clip (credentials, watermark, a recovered manifest), reads its AIGC metadata block, and checks every
requirement of the profiles (``_profiles.REQUIREMENTS``). Like ``verify`` it never raises on a bad file: an
unreadable clip is a report whose requirements are missing. An unknown profile name is the caller's error
(``ComplianceError``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from gen4sdk.compliance._aigc import AigcFinding, read_aigc
from gen4sdk.compliance._profiles import Facts, evaluate, resolve_profiles
from gen4sdk.compliance._recovery import verify
from gen4sdk.provenance.verify import TrustAnchors
from gen4sdk.types import ComplianceReport, ManifestLookup, VerificationReport

logger = logging.getLogger(__name__)

__all__ = ["check_compliance", "check_report"]


def _duration(path: str) -> float | None:
    from gen4sdk import media
    from gen4sdk.errors import MediaError

    try:
        return media.probe(path).duration
    except MediaError:
        return None


def check_report(
    report: VerificationReport, profiles: Iterable[str], *, expected_provider: str | None = None
) -> ComplianceReport:
    """The profile checks for a clip already verified (``report.path`` is read again for its AIGC block)."""
    chosen = resolve_profiles(profiles)
    if report.status == "unreadable":
        aigc = AigcFinding(None, [], present=False)
        duration = None
    else:
        aigc = read_aigc(report.path)
        duration = _duration(report.path)
    facts = Facts(report=report, aigc=aigc, expected_provider=expected_provider, duration=duration)
    return ComplianceReport(
        path=report.path,
        profiles=chosen,
        verification=report,
        aigc=aigc.block,
        checks=evaluate(chosen, facts),
    )


def check_compliance(
    path: str | Path,
    profiles: Iterable[str],
    *,
    trust_anchors: TrustAnchors = None,
    store: ManifestLookup | str | Path | None = None,
    expected_provider: str | None = None,
) -> ComplianceReport:
    """Check one clip against labelling-law ``profiles`` (``"eu-ai-act"``, ``"ca-sb-942"``, ``"cn-gb-45438"``).

    Each requirement comes back ``met``, ``missing`` or ``not_checkable`` with the reason; ``report.ok`` is True
    when every requirement a clip can show is met. ``trust_anchors`` and ``store`` are ``verify``'s: without the
    provider's trust anchors who made the clip is not established (``not_checkable``). ``expected_provider``: the
    provider the clip should name; credentials or an AIGC block naming another make those requirements missing.
    Raises ``ComplianceError`` for an unknown profile name; never raises on a bad file.
    """
    chosen = resolve_profiles(profiles)  # before the slow part: a typo costs nothing
    report = verify(path, trust_anchors=trust_anchors, store=store)
    return check_report(report, chosen, expected_provider=expected_provider)
