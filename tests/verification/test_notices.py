"""The notice outbox: written with the change that caused it, delivered after the
commit, re-sent when the broker or gateway was away, never holding a token."""

from datetime import timedelta

import pytest
from django.core import mail

from audit.models import AuditEvent
from verification.channels import DeliveryError
from verification.models import Notice, OneTimeLink
from verification.notices import (
    notice_deliver,
    notice_security,
    notice_to,
    notices_deliver,
    notices_sweep,
    notices_to_many,
    sms_notice,
)

pytestmark = pytest.mark.django_db


def test_a_notice_is_stored_queued_and_sent_after_the_commit(subject, run_on_commit):
    with run_on_commit() as callbacks:
        notice_to(
            subject, headline="Hello", message="Something happened.", link="http://x/me/", link_label="Look"
        )
        assert Notice.objects.get().state == Notice.State.QUEUED and mail.outbox == []
    assert len(callbacks) == 1
    notice = Notice.objects.get()
    assert notice.state == Notice.State.SENT and notice.sent_at and notice.attempts == 1
    [message] = mail.outbox
    assert message.subject.endswith("Hello") and message.to == [subject.email]
    assert "http://x/me/" in message.body and "http://x/me/" in message.alternatives[0][0]


def test_nobody_without_an_address_gets_a_notice_and_an_empty_number_no_sms(outsider):
    outsider.email = ""
    notice_to(outsider, headline="Hello", message="x")
    sms_notice("", "x")
    assert not Notice.objects.exists()


def test_delivering_twice_sends_once(subject):
    notice_to(subject, headline="Hello", message="x")
    notice = Notice.objects.get()
    assert notice_deliver(notice_id=notice.pk) is True
    assert notice_deliver(notice_id=notice.pk) is False
    assert len(mail.outbox) == 1


def test_a_broker_outage_leaves_the_notice_for_the_sweeper(subject, monkeypatch, run_on_commit, time_machine):
    from kombu.exceptions import OperationalError

    from verification import tasks

    def broker_down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(tasks.notice_deliver, "delay", broker_down)
    with run_on_commit():
        notice_to(subject, headline="Hello", message="x")
    assert Notice.objects.get().state == Notice.State.QUEUED
    monkeypatch.undo()
    assert notices_sweep() == {"given_up": 0, "resent": 0}
    time_machine.shift(timedelta(seconds=31))
    assert notices_sweep() == {"given_up": 0, "resent": 1}
    assert Notice.objects.get().state == Notice.State.SENT and len(mail.outbox) == 1


def test_a_failed_delivery_is_recorded_and_retried_later(settings, tmp_path, time_machine):
    settings.SMS_BACKEND, settings.SMS_FILE_PATH = "file", str(tmp_path / "missing" / "sms.jsonl")
    sms_notice("+15550100000", "Vigil: hello")
    notice = Notice.objects.get()
    with pytest.raises(DeliveryError):
        notice_deliver(notice_id=notice.pk)
    notice.refresh_from_db()
    assert notice.state == Notice.State.QUEUED and "SMS file" in notice.error and notice.claimed_until is None
    settings.SMS_FILE_PATH = str(tmp_path / "sms.jsonl")
    time_machine.shift(timedelta(seconds=31))
    assert notices_sweep()["resent"] == 1
    notice.refresh_from_db()
    assert notice.state == Notice.State.SENT and notice.error == "" and notice.attempts == 2


def test_a_notice_that_cannot_go_out_for_a_day_is_given_up_on_the_record(settings, tmp_path, time_machine):
    settings.SMS_BACKEND, settings.SMS_FILE_PATH = "file", str(tmp_path / "missing" / "sms.jsonl")
    sms_notice("+15550100000", "Vigil: hello")
    time_machine.shift(timedelta(hours=24, seconds=1))
    assert notices_sweep() == {"given_up": 1, "resent": 0}
    assert Notice.objects.get().state == Notice.State.FAILED
    assert AuditEvent.objects.get(verb="notice_undelivered").outcome == "failure"


def test_a_one_time_link_is_made_at_sending_and_a_resend_makes_a_fresh_one(make_case, subject, enrolled):
    case = make_case()
    notice_to(subject, headline="Reset", message="x", case=case, link_kind=OneTimeLink.Kind.PASSWORD_RESET)
    notice = Notice.objects.get()
    assert notice.link == "" and not OneTimeLink.objects.exists()
    notice_deliver(notice_id=notice.pk)
    Notice.objects.filter(pk=notice.pk).update(state=Notice.State.QUEUED)
    notice_deliver(notice_id=notice.pk)
    first, second = OneTimeLink.objects.order_by("id")
    assert first.expires_at <= second.created_at and second.expires_at > second.created_at
    assert mail.outbox[0].body != mail.outbox[1].body


def test_a_cancel_link_past_the_cooling_off_is_not_sent(make_case, subject, enrolled, time_machine):
    from django.utils import timezone

    case = make_case()
    until = timezone.now() + timedelta(minutes=5)
    sms_notice(subject.phone, "Cancel?", case=case, link_kind=OneTimeLink.Kind.CANCEL, link_expires_at=until)
    time_machine.shift(timedelta(minutes=6))
    assert notice_deliver(notice_id=Notice.objects.get().pk) is False
    assert Notice.objects.get().state == Notice.State.FAILED and not OneTimeLink.objects.exists()


def test_security_notices_go_to_active_security_admins_with_an_address(security_admin, run_on_commit):
    from portal.roles import Role
    from tests.factories import UserFactory

    UserFactory(username="former.admin", is_active=False, roles=[Role.SECURITY_ADMIN])
    UserFactory(username="no.mail.admin", email="", roles=[Role.SECURITY_ADMIN])
    with run_on_commit():
        notice_security(headline="Alert", message="Something to look at.")
    assert [m.to for m in mail.outbox] == [[security_admin.email]]


def test_notices_written_together_go_in_one_task_and_one_failure_stops_none(
    subject, manager, settings, tmp_path, run_on_commit
):
    settings.SMS_BACKEND, settings.SMS_FILE_PATH = "file", str(tmp_path / "missing" / "sms.jsonl")
    with run_on_commit() as callbacks:
        sms_notice("+15550100000", "Vigil: hello")  # its gateway is down
        notices_to_many([(subject, "Access ended", "x expired."), (manager, "Access ended", "x expired.")])
    assert len(callbacks) == 2  # the SMS, then both emails together
    states = dict(Notice.objects.values_list("medium", "state").order_by("medium"))
    assert states == {"email": Notice.State.SENT, "sms": Notice.State.QUEUED}
    assert sorted(m.to[0] for m in mail.outbox) == sorted([subject.email, manager.email])
    assert notices_deliver(notice_ids=list(Notice.objects.values_list("pk", flat=True))) == 0
