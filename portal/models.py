import hashlib
import secrets
from collections.abc import Collection, Iterable
from typing import Any

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from portal.roles import Role


class User(AbstractUser):
    """A person Vigil verifies or who works in it (DESIGN "portal")."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        LEFT = "left", "Left"

    phone = models.CharField(max_length=20, blank=True, help_text="E.164, e.g. +15551234567")
    manager = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    department = models.CharField(max_length=120, blank=True)
    title = models.CharField(max_length=120, blank=True)
    employee_id = models.CharField(max_length=40, blank=True)
    is_privileged = models.BooleanField(
        default=False, help_text="Holds privileged access; the policy escalates cases about them."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    contact_changed_at = models.DateTimeField(
        null=True, blank=True, help_text="Last change of email or phone (SIM-swap defence)."
    )

    # (email, phone) as last read from or written to the database; None for a new user.
    _saved_contact: tuple[str, str] | None = None

    @classmethod
    def from_db(cls, db: str | None, field_names: Collection[str], values: Collection[Any]) -> "User":
        user = super().from_db(db, field_names, values)
        if {"email", "phone"} <= set(field_names):
            user._saved_contact = (user.email, user.phone)
        return user

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Stamped here, not in each form or import, so no path that edits contact details
        # can skip it: the SIM-swap defence reads it.
        if self._saved_contact is not None and self._saved_contact != (self.email, self.phone):
            self.contact_changed_at = timezone.now()
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "contact_changed_at"}
        super().save(*args, **kwargs)
        self._saved_contact = (self.email, self.phone)

    def refresh_from_db(
        self,
        using: str | None = None,
        fields: Iterable[str] | None = None,
        from_queryset: "models.QuerySet[User] | None" = None,
    ) -> None:
        names = None if fields is None else list(fields)
        super().refresh_from_db(using=using, fields=names, from_queryset=from_queryset)
        if names is None or {"email", "phone"} & set(names):
            self._saved_contact = (self.email, self.phone)

    def clean(self) -> None:
        super().clean()
        if self.manager_id is not None and self.pk is not None and self.manages_via_chain(self.manager):
            raise ValidationError({"manager": "This manager would create a reporting cycle."})

    def manages_via_chain(self, candidate: "User | None") -> bool:
        """True when `candidate` is this user or reports to them, directly or not."""
        seen: set[int] = set()
        while candidate is not None and candidate.pk not in seen:
            if candidate.pk == self.pk:
                return True
            seen.add(candidate.pk)
            candidate = candidate.manager
        return False

    def has_role(self, role: Role) -> bool:
        return self.groups.filter(name=role.group_name).exists()


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def for_raw_token(self, raw: str) -> "ApiToken | None":
        return self.select_related("user").filter(key_hash=_hash_token(raw), revoked_at=None).first()


class ApiToken(models.Model):
    """An API credential. Only its SHA-256 is kept: a database leak yields no usable token."""

    user = models.ForeignKey("portal.User", on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(
        max_length=8, editable=False, help_text="First characters, to tell tokens apart."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @classmethod
    def issue(cls, user: User) -> tuple["ApiToken", str]:
        raw = secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, key_hash=_hash_token(raw), prefix=raw[:8])
        return token, raw
