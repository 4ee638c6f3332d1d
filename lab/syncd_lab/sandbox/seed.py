"""The sandbox's seed: the apps (credentials, callback) and users it knows.

Seed YAML (what ``syncd sandbox --seed FILE`` reads)::

    apps:
      - app_key: dingabc123
        app_secret: s3cret
        corp_id: dingcorp1
        callback: {url: http://127.0.0.1:8080/callbacks/acme, token: tok, aes_key: <43 chars>}
    users:
      - {union_id: u-alice, name: Alice, email: alice@acme.example, departments: [10]}
    departments:                      # optional: the tree; others sit under the root 1
      - {id: 11, name: Backend, parent: 10}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from syncd.crypto import aes_key_from_encoding_key
from syncd.errors import ConfigError


class CallbackSeed(BaseModel):
    """An app's HTTP event-subscription: URL, token and 43-character EncodingAESKey."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str | None = None
    token: str
    aes_key: str
    owner_key: str | None = None  # defaults to the app_key (internal apps)

    @field_validator("aes_key")
    @classmethod
    def _valid_key(cls, value: str) -> str:
        aes_key_from_encoding_key(value)
        return value


class AppSeed(BaseModel):
    """One DingTalk app (internal app of one organisation)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    app_key: str
    app_secret: str
    corp_id: str
    callback: CallbackSeed | None = None
    delivery: Literal["http", "stream"] = "http"  # stream: events go over Stream connections


class UserSeed(BaseModel):
    """One user of the organisation, addressed by unionId."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    union_id: str
    name: str = ""
    email: str = ""
    departments: tuple[int, ...] = ()  # deptIds; 1 is the organisation's root
    userid: str = ""  # the staff userid; defaults to the unionId

    @property
    def staff_id(self) -> str:
        """The staff userid DingTalk's topapi calls name the user by."""
        return self.userid or self.union_id


class DepartmentSeed(BaseModel):
    """A department of the organisation (undeclared deptIds sit directly under the root 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    name: str = ""
    parent: int = 1


class Seed(BaseModel):
    """Everything the sandbox starts from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    apps: tuple[AppSeed, ...] = ()
    users: tuple[UserSeed, ...] = ()
    departments: tuple[DepartmentSeed, ...] = ()

    def app(self, app_key: str) -> AppSeed | None:
        """The app with this key, if seeded."""
        return next((a for a in self.apps if a.app_key == app_key), None)

    def user(self, union_id: str) -> UserSeed | None:
        """The user with this unionId, if seeded."""
        return next((u for u in self.users if u.union_id == union_id), None)

    def user_by_email(self, email: str) -> UserSeed | None:
        """The user with this email (case-insensitive), if seeded."""
        wanted = email.strip().lower()
        return next((u for u in self.users if u.email.lower() == wanted), None)


def seed_from_data(data: Any, *, source: str = "<seed>") -> Seed:
    """Validate parsed YAML/JSON into a :class:`Seed`; :class:`ConfigError` on problems."""
    try:
        return Seed.model_validate(data or {})
    except ValidationError as exc:
        problems = tuple(
            f"{source}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(problems[0], problems) from exc


def load_seed(path: str | Path) -> Seed:
    """Read and validate a seed YAML file."""
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{file}: cannot read seed: {exc}") from exc
    return seed_from_data(data, source=str(file))
