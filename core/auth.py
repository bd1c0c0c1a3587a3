"""API tokens and roles. A token is shown once at creation; only its SHA-256 is stored.

Roles are ordered: a viewer reads, an operator also runs experiments and rollouts, an admin does
everything (registry changes, deploy and undeploy, tokens).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from core.context import Context, get_context
from core.errors import NightScanError, NotFoundError, ValidationError
from core.roles import ROLES
from data.auth_tables import ApiTokenRow
from data.types import utcnow

TOKEN_PREFIX = "nso_"


class AuthenticationError(NightScanError):
    exit_code = 9
    http_status = 401


class PermissionDeniedError(NightScanError):
    exit_code = 9
    http_status = 403


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's name and role (the name goes into the audit log)."""

    name: str
    role: str

    @property
    def actor(self) -> str:
        return f"token:{self.name}"

    def allows(self, needed: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(needed)


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    last_used_at: datetime | None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.db = ctx.db

    def create(self, role: str, name: str, actor: str | None = None) -> tuple[TokenInfo, str]:
        """A new token; the plaintext is returned here and never again."""
        if role not in ROLES:
            raise ValidationError(f"unknown role {role!r}; expected one of: {', '.join(ROLES)}")
        name = name.strip()
        if not name or len(name) > 100:
            raise ValidationError("a token needs a name of 1-100 characters")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiTokenRow(
            name=name,
            role=role,
            token_hash=_hash(token),
            prefix=token[:10],
            created_by=actor or self.ctx.settings.actor,
        )
        with self.db.write() as session:
            session.add(row)
            session.flush()
            self.ctx.audit.record(
                session, "token.create", "token", str(row.id),
                after={"name": name, "role": role, "prefix": row.prefix}, actor=actor,
            )  # fmt: skip
            info = TokenInfo(**row.model_dump(exclude={"token_hash"}))
        return info, token

    def revoke(self, token_id: int, actor: str | None = None) -> TokenInfo:
        with self.db.write() as session:
            row = session.get(ApiTokenRow, token_id)
            if row is None:
                raise NotFoundError(f"token {token_id} does not exist")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                session.add(row)
                self.ctx.audit.record(
                    session, "token.revoke", "token", str(token_id),
                    before={"name": row.name, "role": row.role}, actor=actor,
                )  # fmt: skip
            return TokenInfo(**row.model_dump(exclude={"token_hash"}))

    def list(self, include_revoked: bool = False) -> list[TokenInfo]:
        query = select(ApiTokenRow).order_by(col(ApiTokenRow.id))
        if not include_revoked:
            query = query.where(col(ApiTokenRow.revoked_at).is_(None))
        with self.db.session() as session:
            return [TokenInfo(**r.model_dump(exclude={"token_hash"})) for r in session.exec(query)]

    def authenticate(self, token: str | None) -> Principal:
        """The principal for a bearer token; AuthenticationError when missing, unknown or
        revoked (the same message for each, so a caller learns nothing about which)."""
        if not token:
            raise AuthenticationError("missing bearer token (Authorization: Bearer <token>)")
        digest = _hash(token)
        with self.db.session() as session:
            row = session.exec(select(ApiTokenRow).where(ApiTokenRow.token_hash == digest)).first()
        if (
            row is None
            or row.revoked_at is not None
            or not hmac.compare_digest(row.token_hash, digest)
        ):
            raise AuthenticationError("invalid or revoked token")
        return Principal(row.name, row.role)

    def authorize(self, token: str | None, needed: str) -> Principal:
        principal = self.authenticate(token)
        if not principal.allows(needed):
            raise PermissionDeniedError(
                f"token {principal.name!r} has role {principal.role}; this needs {needed} or above"
            )
        return principal


def get_token_store() -> TokenStore:
    return get_context().service("tokens", TokenStore)
