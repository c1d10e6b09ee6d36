import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_password_and_authenticator_code_open_the_admin(page, login_as, security_admin, screenshot):
    login_as(page, security_admin)
    page.wait_for_url("**/admin/")
    assert page.locator("#site-name").inner_text() == "Vigil"
    assert page.get_by_text("Verification, access and audit").is_visible()
    screenshot(page, "admin-index")


def test_password_without_a_valid_code_is_refused(page, login_as, security_admin):
    login_as(page, security_admin, token="000000")
    assert "/admin/login/" in page.url
    assert page.locator(".errornote").is_visible()
    page.goto("/admin/")
    assert "/admin/login/" in page.url
