import pytest
from django.core.exceptions import ValidationError

from portal.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_new_user_has_no_contact_change():
    assert UserFactory(email="jo@example.test").contact_changed_at is None


@pytest.mark.parametrize(("field", "value"), [("email", "jo.new@example.test"), ("phone", "+14155550199")])
def test_changing_email_or_phone_stamps_contact_changed_at(field, value):
    user = User.objects.get(pk=UserFactory().pk)
    setattr(user, field, value)
    user.save(update_fields=[field])
    user.refresh_from_db()
    assert user.contact_changed_at is not None


def test_other_changes_leave_the_contact_stamp_alone():
    user = User.objects.get(pk=UserFactory().pk)
    user.title = "Lead"
    user.is_privileged = True
    user.save()
    user.refresh_from_db()
    assert user.contact_changed_at is None


def test_a_reporting_cycle_is_refused():
    boss = UserFactory()
    report = UserFactory(manager=boss)
    boss.manager = report
    with pytest.raises(ValidationError, match="reporting cycle"):
        boss.full_clean()


def test_a_refreshed_user_is_compared_with_what_the_database_now_holds():
    user = User.objects.get(pk=UserFactory().pk)
    User.objects.filter(pk=user.pk).update(email="changed.elsewhere@example.test")
    user.refresh_from_db()
    user.title = "Lead"
    user.save()
    user.refresh_from_db()
    assert user.contact_changed_at is None
