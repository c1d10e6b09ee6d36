"""Bulk import of people from CSV (CONTRACT `import_users`).

Rows may name a manager defined further down, so rows are loaded managers
first; each row is its own transaction, so a bad row never half-writes and
never stops the good ones.
"""

import csv
import graphlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import phonenumbers
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from audit.services import record
from portal.roles import Role

COLUMNS = ("username", "email", "phone", "manager", "department", "title", "is_privileged", "roles")
REQUIRED_COLUMNS = set(COLUMNS) - {"roles"}
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False, "": False}


class RowError(Exception):
    pass


@dataclass
class UserRow:
    line: int
    username: str
    email: str
    phone: str
    manager: str
    department: str
    title: str
    is_privileged: bool
    roles: list[Role]


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


def normalise_phone(raw: str) -> str:
    """E.164 or a RowError; '' stays ''."""
    if not raw:
        return ""
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException as exc:
        raise RowError(
            f"bad phone {raw!r}: not an international number; use E.164 such as +15551234567"
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise RowError(f"bad phone {raw!r}: not a valid number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_row(line: int, raw: dict[str, str]) -> UserRow:
    values = {key: (raw.get(key) or "").strip() for key in COLUMNS}
    username = values["username"]
    if not username:
        raise RowError("username is empty")
    try:
        validate_email(values["email"])
    except ValidationError as exc:
        raise RowError(f"bad email {values['email']!r}") from exc
    privileged = values["is_privileged"].lower()
    if privileged not in _BOOLEANS:
        raise RowError(f"bad boolean for is_privileged: {values['is_privileged']!r} (use true/false)")
    roles = []
    for slug in filter(None, (part.strip() for part in values["roles"].split(";"))):
        try:
            roles.append(Role(slug))
        except ValueError as exc:
            known = ", ".join(role.value for role in Role)
            raise RowError(f"unknown role {slug!r} (known: {known})") from exc
    if values["manager"] == username:
        raise RowError("a user cannot be their own manager")
    return UserRow(
        line=line,
        username=username,
        email=values["email"],
        phone=normalise_phone(values["phone"]),
        manager=values["manager"],
        department=values["department"],
        title=values["title"],
        is_privileged=_BOOLEANS[privileged],
        roles=roles,
    )


def _managers_first(rows: dict[str, UserRow], report: ImportReport, failed: set[str]) -> list[UserRow]:
    """Order rows so each manager loads before their reports; rows in a cycle are errors."""
    graph = {name: ({row.manager} & rows.keys()) for name, row in rows.items()}
    while True:
        try:
            return [rows[name] for name in graphlib.TopologicalSorter(graph).static_order()]
        except graphlib.CycleError as exc:
            cycle = exc.args[1]
            for name in set(cycle):
                report.errors.append((rows[name].line, f"manager cycle: {' -> '.join(cycle)}"))
                failed.add(name)
                del graph[name]
            for deps in graph.values():
                deps.difference_update(cycle)


@transaction.atomic
def _save_row(row: UserRow) -> bool:
    """Create or update one user; True when created."""
    user_model = get_user_model()
    manager = None
    if row.manager:
        manager = user_model.objects.filter(username=row.manager).first()
        if manager is None:
            raise RowError(f"unknown manager {row.manager!r}")
    user = user_model.objects.filter(username=row.username).first()
    created = user is None
    if user is None:
        # Built unsaved and saved once below, so its first contact details are not a "change".
        user = user_model(username=row.username)
        user.set_unusable_password()
    elif manager is not None and user.manages_via_chain(manager):
        raise RowError(f"manager cycle: {row.manager!r} already reports to {row.username!r}")
    user.email, user.phone, user.manager = row.email, row.phone, manager
    user.department, user.title, user.is_privileged = row.department, row.title, row.is_privileged
    # The import never touches passwords; one made elsewhere may be blank and is not its concern.
    user.full_clean(exclude=["password"])
    user.save()
    user.groups.set(Group.objects.filter(name__in=[role.group_name for role in row.roles]))
    record(
        "user_imported" if created else "user_updated",
        subject=user,
        data={"line": row.line, "roles": [role.value for role in row.roles]},
    )
    return created


def _decoded(lines: Iterable[bytes], report: ImportReport) -> Iterator[str]:
    """UTF-8 text, line by line: a line that is not UTF-8 is an error for that line only.

    It is handed to csv as a blank line, which DictReader skips while still counting
    it, so the line numbers of the rows after it stay right.
    """
    for number, raw in enumerate(lines, start=1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            report.errors.append((number, f"not UTF-8 text (byte {exc.start + 1} of the line: {exc.reason})"))
            yield "\n"


def _describe(exc: RowError | ValidationError) -> str:
    if isinstance(exc, RowError):
        return str(exc)
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.message_dict.items())
    return "; ".join(exc.messages)


def users_import(lines: Iterable[bytes]) -> ImportReport:
    """Parse, order and save; every bad row lands in report.errors with its line number."""
    report = ImportReport()
    reader = csv.DictReader(_decoded(lines, report))
    missing = REQUIRED_COLUMNS - set(reader.fieldnames or [])
    if missing:
        report.errors.append((1, f"missing column(s): {', '.join(sorted(missing))}"))
        return report
    rows: dict[str, UserRow] = {}
    for raw in reader:
        line = reader.line_num
        try:
            row = parse_row(line, raw)
            if row.username in rows:
                raise RowError(f"username {row.username!r} repeats line {rows[row.username].line}")
        except RowError as exc:
            report.errors.append((line, str(exc)))
            continue
        rows[row.username] = row
    failed: set[str] = set()
    for row in _managers_first(rows, report, failed):
        if row.manager in failed:
            report.errors.append((row.line, f"manager {row.manager!r} was not imported (bad row)"))
            failed.add(row.username)
            continue
        try:
            created = _save_row(row)
        except (RowError, ValidationError) as exc:
            report.errors.append((row.line, _describe(exc)))
            failed.add(row.username)
            continue
        (report.created if created else report.updated).append(row.username)
    report.errors.sort()
    return report
