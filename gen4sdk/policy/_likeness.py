"""Likeness registry: protected identities and revocable consent grants, in the store's database.

Its tables (prefixed ``likeness_``) live beside the audit log and the manifest store; the store's database layer
(:mod:`gen4sdk.store`) opens it, creates and upgrades the schema, and runs each write as one short transaction, on
SQLite or PostgreSQL alike. Reference face images are never stored or logged: only their embeddings, tagged with
the id of the encoder that produced them (embeddings of different encoders are not comparable).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import re
import unicodedata
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import Self

from gen4sdk.errors import InvalidRequestError
from gen4sdk.policy._faces import FaceEncoder, shared_face_encoder
from gen4sdk.policy._images import as_image
from gen4sdk.store import Database, StoreLocation

__all__ = ["ANY_USE", "ConsentGrant", "LikenessRegistry", "ProtectedIdentity"]

logger = logging.getLogger(__name__)

ANY_USE = "any"


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _iso(t: _dt.datetime | None) -> str | None:
    if t is None:
        return None
    if t.tzinfo is None:
        raise InvalidRequestError("times must be timezone-aware (e.g. datetime.now(timezone.utc))")
    return t.astimezone(_dt.timezone.utc).isoformat()


def _parse(s: str | None) -> _dt.datetime | None:
    return _dt.datetime.fromisoformat(s) if s else None


class ProtectedIdentity(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    aliases: list[str] = Field(default_factory=list)
    face_embeddings: int = 0
    note: str = ""
    created_at: _dt.datetime


class ConsentGrant(BaseModel):
    """``grantee`` may depict ``identity_id`` for ``uses`` from ``valid_from`` until ``expires_at`` (or revocation)."""

    model_config = ConfigDict(frozen=True)

    id: str
    identity_id: str
    grantee: str
    uses: list[str]
    valid_from: _dt.datetime
    expires_at: _dt.datetime | None = None
    revoked_at: _dt.datetime | None = None
    note: str = ""
    created_at: _dt.datetime

    def covers(self, user: str | None, *, use: str | None = None, at: _dt.datetime | None = None) -> bool:
        at = at or _now()
        if user is None or user != self.grantee:
            return False
        if self.revoked_at is not None and self.revoked_at <= at:
            return False
        if at < self.valid_from or (self.expires_at is not None and at >= self.expires_at):
            return False
        return ANY_USE in self.uses or (use is not None and use in self.uses)


class LikenessRegistry:
    """Protected identities (names, aliases, face embeddings) and consent grants.

    ``store``: a :class:`~gen4sdk.store.Store` (its database is shared), or a store's path or ``postgresql://`` URL;
    the registry only touches ``likeness_*`` tables.
    Identities of the policy pack's public-figure list need no row here: grants for them use the id
    ``public:<figure id>`` (see ``Policy.public_figures``).
    """

    def __init__(self, store: StoreLocation | Database | Any, *, timeout: float = 30.0) -> None:
        # A Store (or its Database) is shared as it is, connections included; a path or URL opens the store.
        shared = store if isinstance(store, Database) else getattr(store, "database", None)
        if isinstance(shared, Database):
            self._db = shared
        else:
            self._db = Database(cast(StoreLocation, store), timeout=timeout)
        self._timeout = timeout

    @property
    def path(self) -> Path | None:
        """The store's SQLite file; None on PostgreSQL (see :attr:`location`)."""
        return self._db.path

    @property
    def location(self) -> str:
        return self._db.location

    def __repr__(self) -> str:
        return f"LikenessRegistry({self.location!r})"

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"location": self._db.target, "timeout": self._timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["location"], timeout=state["timeout"])  # type: ignore[misc]

    def _write(self) -> contextlib.AbstractContextManager[Any]:
        return self._db.write()

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.read(sql, args)

    @staticmethod
    def _bump(conn: Any) -> None:
        conn.execute("UPDATE likeness_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'revision'")

    def revision(self) -> int:
        """Increases on every change to identities or aliases (used to cache compiled name matchers)."""
        rows = self._read("SELECT value FROM likeness_meta WHERE key = 'revision'")
        return int(rows[0][0]) if rows else 0

    # ------------------------------------------------------------------ identities
    def add_identity(
        self, name: str, *, aliases: Sequence[str] = (), identity_id: str | None = None, note: str = ""
    ) -> ProtectedIdentity:
        name = unicodedata.normalize("NFKC", name).strip()
        if len(re.sub(r"\W", "", name)) < 3:
            raise InvalidRequestError("a protected identity needs a name of at least 3 letters", field="name")
        clean_aliases = [unicodedata.normalize("NFKC", a).strip() for a in aliases]
        for a in clean_aliases:
            if len(re.sub(r"\W", "", a)) < 3:
                raise InvalidRequestError(f"alias {a!r} is too short to match safely", field="aliases")
        iid = identity_id or "id_" + uuid.uuid4().hex[:16]
        if iid.startswith("public:"):
            raise InvalidRequestError(
                "ids starting with 'public:' are reserved for the pack's public figures"
            )
        created = _now()
        with self._write() as conn:
            # ON CONFLICT rather than catching the driver's IntegrityError: the same statement on every backend
            cur = conn.execute(
                "INSERT INTO likeness_identities(id, name, note, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING",
                (iid, name, note, _iso(created)),
            )
            if cur.rowcount == 0:
                raise InvalidRequestError(f"identity {iid!r} already exists", field="identity_id")
            for alias in dict.fromkeys(clean_aliases):
                conn.execute(
                    "INSERT INTO likeness_aliases(identity_id, alias) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (iid, alias),
                )
            self._bump(conn)
        logger.info("likeness: added protected identity %s", iid)
        return ProtectedIdentity(id=iid, name=name, aliases=clean_aliases, note=note, created_at=created)

    def remove_identity(self, identity_id: str) -> None:
        with self._write() as conn:
            cur = conn.execute("DELETE FROM likeness_identities WHERE id = ?", (identity_id,))
            if cur.rowcount == 0:
                raise InvalidRequestError(f"no identity {identity_id!r}", field="identity_id")
            self._bump(conn)

    def identities(self) -> list[ProtectedIdentity]:
        rows = self._read(
            "SELECT id, name, note, created_at FROM likeness_identities ORDER BY created_at, id"
        )
        aliases: dict[str, list[str]] = {}
        for iid, alias in self._read("SELECT identity_id, alias FROM likeness_aliases ORDER BY alias"):
            aliases.setdefault(iid, []).append(alias)
        counts = dict(
            self._read("SELECT identity_id, COUNT(*) FROM likeness_embeddings GROUP BY identity_id")
        )
        return [
            ProtectedIdentity(
                id=r[0],
                name=r[1],
                note=r[2],
                created_at=_dt.datetime.fromisoformat(r[3]),
                aliases=aliases.get(r[0], []),
                face_embeddings=int(counts.get(r[0], 0)),
            )
            for r in rows
        ]

    def get(self, identity_id: str) -> ProtectedIdentity | None:
        for ident in self.identities():
            if ident.id == identity_id:
                return ident
        return None

    # ------------------------------------------------------------------ face embeddings
    def add_face(
        self,
        identity_id: str,
        image: np.ndarray | str | os.PathLike[str],
        *,
        encoder: FaceEncoder | None = None,
    ) -> None:
        """Detect the one face in a photo of the identity and store its embedding (never the photo).

        ``encoder``: a FaceEncoder; the built-in dlib face encoder when omitted. Call it once per photo: several
        photos of one person (angles, ages, lighting) make matching more reliable. InvalidRequestError when the
        photo shows no face or more than one (crop it to the person), MediaError when it cannot be read.
        """
        enc = encoder if encoder is not None else shared_face_encoder()
        if self.get(identity_id) is None:
            raise InvalidRequestError(f"no identity {identity_id!r}", field="identity_id")
        found = enc.faces(as_image(image if isinstance(image, np.ndarray) else Path(image)))
        if not found:
            raise InvalidRequestError(
                "no face found in the photo (frontal faces of about 40 px or more)", field="image"
            )
        if len(found) > 1:
            raise InvalidRequestError(
                f"{len(found)} faces found in the photo; crop it to the one person to register", field="image"
            )
        self.add_face_embedding(identity_id, found[0].embedding, encoder_id=enc.id)

    def add_face_embedding(self, identity_id: str, vector: np.ndarray, *, encoder_id: str) -> None:
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if v.size == 0 or not np.all(np.isfinite(v)):
            raise InvalidRequestError("face embedding must be a finite, non-empty vector", field="vector")
        v = v / max(float(np.linalg.norm(v)), 1e-12)
        with self._write() as conn:
            if (
                conn.execute("SELECT 1 FROM likeness_identities WHERE id = ?", (identity_id,)).fetchone()
                is None
            ):
                raise InvalidRequestError(f"no identity {identity_id!r}", field="identity_id")
            conn.execute(
                "INSERT INTO likeness_embeddings(identity_id, encoder, dim, vector, created_at) VALUES (?, ?, ?, ?, ?)",
                (identity_id, encoder_id, int(v.size), v.astype("<f4").tobytes(), _iso(_now())),
            )

    def face_embeddings(self, encoder_id: str) -> tuple[list[str], np.ndarray]:
        rows = self._read(
            "SELECT identity_id, dim, vector FROM likeness_embeddings WHERE encoder = ? ORDER BY id",
            (encoder_id,),
        )
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        ids = [r[0] for r in rows]
        mat = np.stack([np.frombuffer(r[2], dtype="<f4", count=int(r[1])) for r in rows])
        return ids, mat.astype(np.float32)

    def has_face_embeddings(self) -> list[str]:
        """Encoder ids for which face embeddings are stored."""
        return [r[0] for r in self._read("SELECT DISTINCT encoder FROM likeness_embeddings")]

    # ------------------------------------------------------------------ grants
    def grant(
        self,
        identity_id: str,
        grantee: str,
        *,
        uses: Sequence[str] = (ANY_USE,),
        valid_from: _dt.datetime | None = None,
        expires_at: _dt.datetime | None = None,
        note: str = "",
    ) -> ConsentGrant:
        """Record that ``grantee`` (the request's ``user``) may depict ``identity_id`` for ``uses``."""
        if not grantee:
            raise InvalidRequestError("a grant needs a grantee (the user it is for)", field="grantee")
        if not uses:
            raise InvalidRequestError("a grant needs at least one use", field="uses")
        if not identity_id.startswith("public:") and self.get(identity_id) is None:
            raise InvalidRequestError(f"no identity {identity_id!r}", field="identity_id")
        _iso(valid_from), _iso(expires_at)  # rejects naive datetimes before they are compared
        created = _now()
        start = valid_from or created
        if expires_at is not None and expires_at <= start:
            raise InvalidRequestError("a grant must expire after it starts", field="expires_at")
        gid = "grant_" + uuid.uuid4().hex
        with self._write() as conn:
            conn.execute(
                "INSERT INTO likeness_grants(id, identity_id, grantee, uses, valid_from, expires_at, note, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    gid,
                    identity_id,
                    grantee,
                    json.dumps(list(uses)),
                    _iso(start),
                    _iso(expires_at),
                    note,
                    _iso(created),
                ),
            )
        logger.info("likeness: grant %s for identity %s", gid, identity_id)
        return ConsentGrant(
            id=gid,
            identity_id=identity_id,
            grantee=grantee,
            uses=list(uses),
            valid_from=start,
            expires_at=expires_at,
            note=note,
            created_at=created,
        )

    def revoke(self, grant_id: str, *, at: _dt.datetime | None = None) -> ConsentGrant:
        when = at or _now()
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE likeness_grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (_iso(when), grant_id),
            )
            if (
                cur.rowcount == 0
                and conn.execute("SELECT 1 FROM likeness_grants WHERE id = ?", (grant_id,)).fetchone() is None
            ):
                raise InvalidRequestError(f"no grant {grant_id!r}", field="grant_id")
        logger.info("likeness: revoked grant %s", grant_id)
        found = self.grants(grant_id=grant_id)
        return found[0]

    def grants(
        self, *, identity_id: str | None = None, grantee: str | None = None, grant_id: str | None = None
    ) -> list[ConsentGrant]:
        sql = (
            "SELECT id, identity_id, grantee, uses, valid_from, expires_at, revoked_at, note, created_at"
            " FROM likeness_grants WHERE 1=1"
        )
        args: list[Any] = []
        for col, val in (("identity_id", identity_id), ("grantee", grantee), ("id", grant_id)):
            if val is not None:
                sql += f" AND {col} = ?"
                args.append(val)
        rows = self._read(sql + " ORDER BY created_at, id", args)
        return [
            ConsentGrant(
                id=r[0],
                identity_id=r[1],
                grantee=r[2],
                uses=json.loads(r[3]),
                valid_from=_dt.datetime.fromisoformat(r[4]),
                expires_at=_parse(r[5]),
                revoked_at=_parse(r[6]),
                note=r[7],
                created_at=_dt.datetime.fromisoformat(r[8]),
            )
            for r in rows
        ]

    def find_grant(
        self, identity_id: str, user: str | None, *, use: str | None = None, at: _dt.datetime | None = None
    ) -> ConsentGrant | None:
        """A grant covering ``user`` depicting ``identity_id`` now (or ``at``), or None."""
        if user is None:
            return None
        for g in self.grants(identity_id=identity_id, grantee=user):
            if g.covers(user, use=use, at=at):
                return g
        return None
