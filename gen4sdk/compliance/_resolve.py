"""The client side of the C2PA Soft Binding Resolution API: ask a service for a soft binding's manifest store.

Apart from the service (``_service.py``) so that ``verify``'s recovery, which uses it, does not depend on the app,
which in turn serves the detection page that runs ``verify``.
"""

import base64
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from gen4sdk.errors import StoreError

__all__ = ["SoftBindingMatch", "SoftBindingQueryResult", "resolve_by_binding"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SoftBindingMatch(_Model):
    manifestId: str = Field(description="Unique identifier of a matched C2PA Manifest")
    endpoint: str | None = Field(
        default=None,
        description="Endpoint of a Soft Binding Resolution API holding the manifest (absent: this one)",
    )
    similarityScore: int | None = Field(default=None, ge=0, le=100, description="strength of match, 0-100")


class SoftBindingQueryResult(_Model):
    matches: list[SoftBindingMatch] = Field(default_factory=list)


def resolve_by_binding(url: str, alg: str, value: bytes | str, *, timeout: float = 10.0) -> bytes | None:
    """Ask a Soft Binding Resolution API at ``url`` for the manifest store of a soft binding value.

    ``value`` is the raw binding (bytes) or its base64 text. Returns the first match's manifest store bytes,
    None when the service knows no match; raises StoreError when the service cannot be reached or misbehaves.
    """
    import httpx

    encoded = base64.b64encode(value).decode("ascii") if isinstance(value, (bytes, bytearray)) else value
    base = url.rstrip("/")
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            r = client.get(
                f"{base}/matches/byBinding", params={"alg": alg, "value": encoded, "maxResults": 1}
            )
            r.raise_for_status()
            matches = SoftBindingQueryResult.model_validate(r.json()).matches
            if not matches:
                return None
            match = matches[0]
            # Only follow an endpoint on the same scheme; a match pointing elsewhere is fetched from there.
            where = (match.endpoint or base).rstrip("/")
            if not where.startswith(("http://", "https://")):
                where = base
            m = client.get(f"{where}/manifests/{quote(match.manifestId, safe=':')}")
            if m.status_code == 404:
                return None
            m.raise_for_status()
            return m.content or None
    except (httpx.HTTPError, ValueError) as exc:
        raise StoreError(f"resolution service {url} failed: {exc}") from exc
