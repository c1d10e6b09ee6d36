import pytest

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)


def test_password_and_authenticator_code_open_the_admin(page, login_as, security_admin, screenshot):
    login_as(page, security_admin)
    page.wait_for_url("**/admin/")
    assert page.locator("#site-name").inner_text() == "Vigil"
    assert page.get_by_text("Verification, access and audit").is_visible()
    screenshot(page, "admin-index")
    assert AuditEvent.objects.filter(verb="login", actor=security_admin.username).exists()


@pytest.mark.parametrize("token", ["000000", ""])
def test_password_without_a_valid_code_is_refused(page, login_as, security_admin, token):
    login_as(page, security_admin, token=token)
    page.wait_for_load_state()
    assert "/admin/login/" in page.url
    assert "authenticator code" in page.locator(".errornote, .errorlist").first.inner_text()
    page.goto("/admin/")
    assert "/admin/login/" in page.url
    assert not AuditEvent.objects.filter(verb="login").exists()
