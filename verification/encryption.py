"""Secrets kept encrypted at rest (TOTP seeds), with Fernet keys from FIELD_ENCRYPTION_KEYS.

The first key encrypts; every listed key decrypts (MultiFernet). Rotation: put a new
key first, run `rotate_encryption_key`, then remove the old key (README).
"""

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.db.models.functions import Cast

from audit.services import record


class SecretUnreadable(ImproperlyConfigured):
    """A stored secret none of FIELD_ENCRYPTION_KEYS opens: a key was removed too early,
    or the database belongs to another deployment. Never read as empty or as plaintext."""


@lru_cache(maxsize=4)
def _fernets(keys: tuple[str, ...]) -> tuple[Fernet, MultiFernet]:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: no key to encrypt secrets with")
    fernets = [Fernet(key) for key in keys]
    return fernets[0], MultiFernet(fernets)


def _keys() -> tuple[Fernet, MultiFernet]:
    # Keyed by the setting's value, so override_settings and a restart with new keys both apply.
    return _fernets(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return _keys()[1].encrypt(plaintext.encode()).decode()


def decrypt(token: str, *, what: str) -> str:
    try:
        return _keys()[1].decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable(
            f"{what}: none of FIELD_ENCRYPTION_KEYS decrypts the stored value "
            "(was a key removed before rotate_encryption_key ran?)"
        ) from exc


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token; Python code sees the plain value.
    Each save encrypts afresh (random IV), so the column cannot be filtered on."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None:
            return None
        return decrypt(value, what=f"{self.model._meta.label}.{self.name}")

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return None if value is None else encrypt(value)


def encrypted_fields() -> Iterator[tuple[type[models.Model], list[str]]]:
    """Every model with encrypted columns, and those columns' names."""
    for model in apps.get_models():
        names = [field.name for field in model._meta.concrete_fields if isinstance(field, EncryptedTextField)]
        if names:
            yield model, names


@dataclass
class RotationCount:
    rotated: int = 0
    already_current: int = 0


@transaction.atomic
def encryption_key_rotate(*, batch_size: int = 500) -> dict[str, RotationCount]:
    """Re-encrypt every encrypted value under the first key of FIELD_ENCRYPTION_KEYS.

    1. Walk each model with encrypted fields by primary key, a batch at a time,
       reading the stored tokens as they are (no decryption into model objects).
    2. A token the first key already opens is left alone (a second run changes
       nothing); any other is re-encrypted; one no key opens stops the whole run.
    3. All in one transaction, audited with the counts. A concurrent save needs no
       lock: it writes a token under the first key too.
    """
    current, every_key = _keys()
    counts: dict[str, RotationCount] = {}
    for model, names in encrypted_fields():
        count = counts.setdefault(model._meta.label, RotationCount())
        stored = [Cast(name, output_field=models.TextField()) for name in names]
        rows = model._base_manager.order_by("pk")
        last_pk = None
        while batch := list(
            (rows if last_pk is None else rows.filter(pk__gt=last_pk)).values_list("pk", *stored)[:batch_size]
        ):
            for pk, *tokens in batch:
                changes = {}
                for name, token in zip(names, tokens, strict=True):
                    if token is None or _opens(current, token):
                        count.already_current += token is not None
                        continue
                    try:
                        fresh = every_key.rotate(token.encode()).decode()
                    except InvalidToken as exc:
                        raise SecretUnreadable(
                            f"{model._meta.label}.{name} of row {pk}: none of FIELD_ENCRYPTION_KEYS "
                            "decrypts it; nothing was re-encrypted"
                        ) from exc
                    # A plain TextField value, so the encrypted field does not encrypt it again.
                    changes[name] = models.Value(fresh, output_field=models.TextField())
                    count.rotated += 1
                if changes:
                    model._base_manager.filter(pk=pk).update(**changes)
            last_pk = batch[-1][0]
    record("encryption_key_rotated", data={label: asdict(count) for label, count in counts.items()})
    return counts


def _opens(fernet: Fernet, token: str) -> bool:
    try:
        fernet.decrypt(token.encode())
    except InvalidToken:
        return False
    return True
