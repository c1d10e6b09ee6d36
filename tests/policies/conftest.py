"""Access fixtures: a weekday noon (the default policy's off-hours rule stays quiet),
an entitlement with a group and a permission, people with old-enough factors."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from policies.models import AccessRequest, Grant
from tests.factories import prod_db_entitlement
from verification.factors import factor_enroll

TUESDAY_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def business_hours(time_machine):
    time_machine.move_to(TUESDAY_NOON, tick=False)


def client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def grant_in_place(entitlement, user, requester, *, minutes, provisioning="provisioned"):
    """A grant as approval and provisioning leave it, from Tuesday noon for `minutes`."""
    return Grant.objects.create(
        request=AccessRequest.objects.create(
            requester=requester,
            beneficiary=user,
            entitlement=entitlement,
            justification="in place",
            duration_minutes=minutes,
            respond_by=TUESDAY_NOON,
            state="active",
        ),
        user=user,
        entitlement=entitlement,
        starts_at=TUESDAY_NOON,
        expires_at=TUESDAY_NOON + timedelta(minutes=minutes),
        provisioning=provisioning,
    )


@pytest.fixture
def prod_db(default_policy):
    return prod_db_entitlement()


@pytest.fixture
def people(manager, subject, approver, prod_db):
    """Manager with two old factors; owner and approver with authenticators for their step-up."""
    devices = {}
    with time_machine.travel(TUESDAY_NOON - timedelta(days=30), tick=False):
        devices["totp"] = factor_enroll(user=manager, method="totp").device
        devices["backup"] = factor_enroll(user=manager, method="backup_codes")
        for person in (approver, prod_db.owner):
            factor_enroll(user=person, method="totp")
    return devices
