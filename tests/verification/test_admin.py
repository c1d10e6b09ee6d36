"""The verification admin: evidence to read, in a bounded number of queries, and
no secret anywhere (no TOTP seed, no backup code, no code hash, no link token)."""

import pytest

from portal.roles import Role
from tests.factories import UserFactory
from tests.otp import otp_login
from verification.challenges import challenge_create, challenge_dispatch
from verification.models import AuthenticatorDevice, BackupCodeDevice, Challenge
from verification.notices import notice_to

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, db):
    superuser = UserFactory(username="root", is_staff=True, is_superuser=True, roles=[Role.SECURITY_ADMIN])
    otp_login(client, superuser)
    return client


@pytest.fixture
def evidence(make_case, agent, subject, enrolled, sms_outbox):
    """Eight cases, each with a sent SMS challenge and a push, and a notice each."""
    for number in range(8):
        case = make_case(ticket=f"INC-{number}")
        challenge_dispatch(challenge_id=challenge_create(case=case, method="sms_otp", actor=agent).pk)
        challenge_create(case=make_case(), method="totp", actor=agent)
        notice_to(subject, headline=f"Notice {number}", message="x")


@pytest.mark.parametrize(
    "url",
    [
        "/admin/verification/verificationcase/",
        "/admin/verification/challenge/",
        "/admin/verification/notice/",
        "/admin/verification/smsdevice/",
        "/admin/verification/pushdevice/",
    ],
)
def test_changelists_render_in_a_bounded_number_of_queries(
    admin_client, evidence, url, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12):
        response = admin_client.get(url)
    assert response.status_code == 200


def test_the_case_changelist_filters_by_state_and_links_to_the_console(admin_client, evidence):
    changelist = "/admin/verification/verificationcase/"
    open_cases = admin_client.get(f"{changelist}?state__exact=open").content.decode()
    assert open_cases.count("/admin/console/case/") == 16
    executed = admin_client.get(f"{changelist}?state__exact=executed").content.decode()
    assert "/admin/console/case/" not in executed


def test_evidence_cannot_be_added_or_edited_in_the_admin(admin_client, evidence):
    challenge = Challenge.objects.first()
    assert admin_client.get("/admin/verification/verificationcase/add/").status_code == 403
    assert admin_client.get("/admin/verification/challenge/add/").status_code == 403
    page = admin_client.get(f"/admin/verification/challenge/{challenge.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    sent = Challenge.objects.exclude(secret_hash="").first()
    detail = admin_client.get(f"/admin/verification/challenge/{sent.pk}/change/").content.decode()
    assert sent.secret_hash not in detail


def test_no_totp_seed_is_shown_anywhere_in_the_admin(admin_client, enrolled):
    device = enrolled["totp"].device
    listing = admin_client.get("/admin/verification/authenticatordevice/").content.decode()
    detail = admin_client.get(f"/admin/verification/authenticatordevice/{device.pk}/change/").content.decode()
    for page in (listing, detail):
        assert device.key not in page and "otpauth://" not in page and device.config_url not in page
    for view in ("config", "qrcode"):
        # django-otp's own pages for these are gone; the admin treats the path as an unknown object.
        page = admin_client.get(f"/admin/verification/authenticatordevice/{device.pk}/{view}/", follow=True)
        assert b"otpauth://" not in page.content and device.key.encode() not in page.content
    assert AuthenticatorDevice.objects.filter(pk=device.pk).exists()


def test_no_backup_code_is_shown_in_the_admin(admin_client, enrolled):
    device = BackupCodeDevice.objects.get(pk=enrolled["backup_codes"].device.pk)
    page = admin_client.get(f"/admin/verification/backupcodedevice/{device.pk}/change/").content.decode()
    assert page and not any(code in page for code in enrolled["backup_codes"].secrets_to_show)
    add = admin_client.get("/admin/verification/backupcodedevice/add/").content.decode()
    assert "digest" not in add.lower()


def test_agents_do_not_browse_other_peoples_evidence(client, agent, evidence):
    otp_login(client, agent)
    assert client.get("/admin/verification/challenge/").status_code == 403
    assert client.get("/admin/verification/notice/").status_code == 403
