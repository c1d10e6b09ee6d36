"""Grants sharing a deadline end together, in batches, with the same outcome one by one would give."""

from datetime import timedelta

import pytest

from audit.models import AuditEvent
from audit.services import verify_chain
from policies.grants import grants_end_due
from policies.models import Grant
from tests.factories import UserFactory
from tests.policies.conftest import TUESDAY_NOON, grant_in_place
from verification.models import Notice

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("business_hours")]


def provisioned_grant(prod_db, user, manager, *, minutes):
    user.groups.add(prod_db.group)
    return grant_in_place(prod_db, user, manager, minutes=minutes)


def test_one_deadline_ends_every_grant_in_batches_and_spares_covered_access(prod_db, manager, time_machine):
    people = [UserFactory(username=f"batch{n}", manager=manager) for n in range(7)]
    ending = [provisioned_grant(prod_db, person, manager, minutes=10) for person in people]
    longer = provisioned_grant(prod_db, people[0], manager, minutes=60)  # still covers people[0]
    time_machine.shift(timedelta(minutes=10))

    assert [grants_end_due(limit=3) for _ in range(4)] == [3, 3, 1, 0]

    for grant in ending:
        grant.refresh_from_db()
        assert grant.ended_at is not None and grant.request.state == "expired"
    assert people[0].groups.filter(pk=prod_db.group.pk).exists()
    assert not any(p.groups.filter(pk=prod_db.group.pk).exists() for p in people[1:])
    longer.refresh_from_db()
    assert longer.ended_at is None and longer.request.state == "active"
    expired = AuditEvent.objects.filter(verb="grant_expired")
    assert expired.count() == 7
    assert expired.get(target_id=str(ending[0].pk)).data["still_covered_by"] == longer.pk
    assert verify_chain().ok
    # Each beneficiary hears of their expiry; the manager once a batch, of all of it.
    for person in people:
        [notice] = Notice.objects.filter(to=person.email)
        assert notice.headline == "Access ended: Prod DB admin"
    to_manager = Notice.objects.filter(to=manager.email).order_by("pk")
    assert [n.headline for n in to_manager] == [
        "Access ended: 3 grants",
        "Access ended: 3 grants",
        "Access ended: Prod DB admin",
    ]
    assert sum(n.message.count("expired.") for n in to_manager) == 7


def test_a_revoked_grant_ends_with_its_request_revoked(prod_db, subject, manager, time_machine):
    grant = provisioned_grant(prod_db, subject, manager, minutes=30)
    Grant.objects.filter(pk=grant.pk).update(revoked_at=TUESDAY_NOON + timedelta(minutes=1))
    time_machine.shift(timedelta(minutes=1))

    assert grants_end_due() == 1

    grant.refresh_from_db()
    assert grant.request.state == "revoked" and grant.provisioning == "deprovisioned"
    assert AuditEvent.objects.filter(verb="grant_revoked_ended", target_id=str(grant.pk)).exists()
    assert not Notice.objects.filter(headline__startswith="Access ended").exists()
