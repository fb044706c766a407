"""One exception hierarchy for the whole SDK, rooted at :class:`Gen4Error`.

Each failure kind has its own class with the details attached as attributes, so a partner
application can branch on the type (or on ``PolicyViolation.code``) instead of parsing messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError

    from gen4sdk.types import Decision, RefusalCode

__all__ = [
    "ComplianceError",
    "Gen4Error",
    "GenerationCancelled",
    "GenerationFailed",
    "InvalidRequestError",
    "KeyMaterialError",
    "MediaError",
    "MissingDependencyError",
    "ModelLoadError",
    "OutputError",
    "PolicyPackError",
    "PolicyViolation",
    "ProgressCallbackError",
    "SigningError",
    "StoreError",
    "WatermarkFailure",
]


class Gen4Error(Exception):
    """Base class of every error gen4sdk raises on purpose."""


class InvalidRequestError(Gen4Error, ValueError):
    """A parameter has the wrong type or range, or the pipeline cannot honour it.

    ``field`` names the offending parameter when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    @classmethod
    def from_validation(cls, exc: ValidationError) -> InvalidRequestError:
        """The first problem pydantic found in a request, naming its field (raise it ``from exc``)."""
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err.get("loc", ())) or None
        return cls(f"invalid {field}: {err.get('msg')}", field=field)


class ComplianceError(InvalidRequestError):
    """A labelling-law profile is unknown, or the Client's configuration cannot meet it (for example an operator
    watermark key, which no public detector can read, under a profile that needs a public detector).

    ``profile`` names the profile; ``requirement`` the requirement id that cannot be met (None for an unknown name).
    Raised when the Client is made, before any request.
    """

    def __init__(self, message: str, *, profile: str, requirement: str | None = None) -> None:
        super().__init__(message, field="compliance")
        self.profile = profile
        self.requirement = requirement

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_compliance_error, (str(self), self.profile, self.requirement))


def _rebuild_compliance_error(message: str, profile: str, requirement: str | None) -> ComplianceError:
    return ComplianceError(message, profile=profile, requirement=requirement)


class ModelLoadError(Gen4Error):
    """A model directory is missing, malformed, or holds no usable diffusers video pipeline."""


class MissingDependencyError(ModelLoadError, ImportError):
    """A feature needs an optional extra that is not installed: the video model or the policy's models on a light
    install (``pip install gen4sdk`` has verify, audit, the log, keys, serve and watermark detection only).

    ``extra`` names the extra (``"generate"``), ``missing`` the packages not found, ``pip_command`` the command
    that installs them. A :class:`ModelLoadError` (inside a policy check it refuses with ``SAFETY.UNAVAILABLE``,
    fail closed) and an ``ImportError`` (``from gen4sdk import Client`` fails as an import does).
    """

    def __init__(self, feature: str, *, extra: str, missing: list[str] | tuple[str, ...]) -> None:
        self.feature = feature
        self.extra = extra
        self.missing = list(missing)
        self.pip_command = f"pip install 'gen4sdk[{extra}]'"
        super().__init__(
            f"{feature} cannot run: the '{extra}' extra is not installed (missing: {', '.join(self.missing)});"
            f" install it with: {self.pip_command}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_missing_dependency, (self.feature, self.extra, self.missing))


def _rebuild_missing_dependency(feature: str, extra: str, missing: list[str]) -> MissingDependencyError:
    return MissingDependencyError(feature, extra=extra, missing=missing)


class GenerationCancelled(Gen4Error):
    """The caller cancelled a generation; nothing was written."""


class GenerationFailed(Gen4Error):
    """The model raised during generation; nothing was written. The cause is chained."""


class PolicyViolation(Gen4Error):
    """The policy refused a request (before any GPU work) or its output frames.

    ``code`` is machine readable, one of the closed set ``gen4sdk.types.RefusalCode`` (``SAFETY.INPUT.TEXT``,
    ``SAFETY.INPUT.IMAGE``, ``SAFETY.INPUT.LIKENESS``, ``SAFETY.OUTPUT.FRAMES``, ``SAFETY.OUTPUT.LIKENESS``,
    ``SAFETY.UNAVAILABLE``, ...), like Runway's ``failureCode``.
    """

    def __init__(
        self,
        message: str,
        *,
        code: RefusalCode,
        categories: list[str] | tuple[str, ...] = (),
        pack_id: str = "",
        pack_version: str = "",
        decision: Decision | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.categories = list(categories)
        self.pack_id = pack_id
        self.pack_version = pack_version
        self.decision = decision
        self.request_id = request_id

    @classmethod
    def from_decision(cls, decision: Decision, *, request_id: str | None = None) -> PolicyViolation:
        """The refusal a policy decision stands for."""
        return cls(
            decision.reason or f"refused by policy {decision.pack_id} {decision.pack_version}",
            code=decision.code or "SAFETY.INTERNAL",  # a refusal always carries its code; never a silent pass
            categories=decision.categories,
            pack_id=decision.pack_id,
            pack_version=decision.pack_version,
            decision=decision,
            request_id=request_id,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep the details when the error crosses a process boundary (batch audit, worker pools).
        return (
            _rebuild_policy_violation,
            (
                str(self),
                self.code,
                self.categories,
                self.pack_id,
                self.pack_version,
                self.decision,
                self.request_id,
            ),
        )


def _rebuild_policy_violation(
    message: str,
    code: RefusalCode,
    categories: list[str],
    pack_id: str,
    pack_version: str,
    decision: Decision | None,
    request_id: str | None,
) -> PolicyViolation:
    return PolicyViolation(
        message,
        code=code,
        categories=categories,
        pack_id=pack_id,
        pack_version=pack_version,
        decision=decision,
        request_id=request_id,
    )


class ProgressCallbackError(Gen4Error):
    """The caller's progress callback raised; the request stopped there and nothing was written.

    The callback's own exception is chained (``__cause__``). Once a clip is recorded and in place, a raising
    callback no longer fails the request: it is logged instead.
    """


class PolicyPackError(Gen4Error):
    """A policy pack file is malformed; the message names the file, line and field."""


class MediaError(Gen4Error):
    """An image or video cannot be read, decoded or encoded."""


class KeyMaterialError(Gen4Error):
    """Keys or certificates are unusable: key/certificate mismatch, expired, a CA used as a signer, a wrong
    passphrase, or a certificate outside the C2PA signing profile."""


class SigningError(Gen4Error):
    """Producing the C2PA manifest failed (signer callback, timestamp authority, c2pa library)."""


class OutputError(Gen4Error):
    """The output path cannot be written (missing directory, permissions, full disk)."""


class WatermarkFailure(Gen4Error):
    """Embedding the watermark failed (frames too small, wrong payload length)."""


class StoreError(Gen4Error):
    """The store (audit log, manifest store, likeness registry) is corrupt, foreign or unwritable."""
