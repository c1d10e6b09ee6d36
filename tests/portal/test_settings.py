import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_choice, env_int

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("raw", ["maybe", "2", "ja"])
def test_bad_boolean_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv("DEBUG", raw)
    with pytest.raises(ImproperlyConfigured, match=f"DEBUG='{raw}'"):
        env_bool("DEBUG")


def test_booleans_accept_the_usual_spellings(monkeypatch):
    monkeypatch.setenv("DEBUG", "Yes")
    assert env_bool("DEBUG") is True
    monkeypatch.setenv("DEBUG", "off")
    assert env_bool("DEBUG", default=True) is False


def test_bad_integers_and_choices_are_refused(monkeypatch):
    monkeypatch.setenv("EMAIL_PORT", "twenty-five")
    with pytest.raises(ImproperlyConfigured, match="EMAIL_PORT"):
        env_int("EMAIL_PORT", 25)
    monkeypatch.setenv("EMAIL_PORT", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("EMAIL_PORT", 25, minimum=1)
    monkeypatch.setenv("SMS_BACKEND", "pigeon")
    with pytest.raises(ImproperlyConfigured, match="SMS_BACKEND"):
        env_choice("SMS_BACKEND", "console", ("console", "file", "webhook"))


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "tls",
    [
        pytest.param({}, id="tls-here"),
        # README "Production": a TLS proxy that redirects itself.
        pytest.param({"TRUST_X_FORWARDED_PROTO": "1", "SECURE_SSL_REDIRECT": "0"}, id="tls-proxy"),
    ],
)
def test_production_settings_pass_the_deploy_check(tmp_path, tls):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY="x" * 60 + "-production-key-with-enough-entropy-!@#",
        ALLOWED_HOSTS="vigil.example.com",
        VIGIL_VAR_DIR=str(tmp_path),
        **tls,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("System check identified no issues")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"EMAIL_PORT": "twenty-five"}, "EMAIL_PORT='twenty-five' is not an integer"),
        ({"SESSION_COOKIE_AGE": "5"}, "SESSION_COOKIE_AGE=5 must be at least 60"),
        ({"SMS_BACKEND": "pigeon"}, "SMS_BACKEND='pigeon' must be one of: console, file, webhook"),
        ({"SMS_BACKEND": "webhook"}, "SMS_BACKEND=webhook needs SMS_WEBHOOK_URL"),
        ({"SECRET_KEY_FILE": "/nonexistent/key"}, "SECRET_KEY_FILE: cannot read '/nonexistent/key'"),
        ({"FIELD_ENCRYPTION_KEYS": "not-a-fernet-key"}, "FIELD_ENCRYPTION_KEYS: key 1 is not a Fernet key"),
    ],
)
def test_a_bad_setting_stops_start_up_with_one_line_naming_it(tmp_path, env, message):
    result = manage("check", VIGIL_VAR_DIR=str(tmp_path), **env)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"configuration error: {message}")


def test_secret_key_is_required_with_an_external_database(tmp_path):
    result = manage("check", DATABASE_URL="postgres://db.example/vigil", VIGIL_VAR_DIR=str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == "configuration error: SECRET_KEY is required when DATABASE_URL is set"


def test_production_refuses_to_start_without_field_encryption_keys(tmp_path):
    result = manage("check", DEBUG="0", FIELD_ENCRYPTION_KEYS="", VIGIL_VAR_DIR=str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith(
        "configuration error: FIELD_ENCRYPTION_KEYS is required when DEBUG is off or DATABASE_URL is set"
    )
    assert not (tmp_path / "field_encryption_key").exists()


def test_a_local_debug_run_keeps_a_generated_field_encryption_key_under_var(tmp_path):
    key_file = tmp_path / "field_encryption_key"
    keys = []
    for _ in range(2):
        result = manage("check", DEBUG="1", FIELD_ENCRYPTION_KEYS="", VIGIL_VAR_DIR=str(tmp_path))
        assert result.returncode == 0, result.stderr
        keys.append(key_file.read_text())
    assert keys[0] == keys[1] and len(base64.urlsafe_b64decode(keys[0])) == 32
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_the_delivery_lease_outlasts_a_longer_email_timeout_by_default(tmp_path):
    # Otherwise a second worker takes over a slow but live send, and the email goes twice.
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.VERIFICATION_DELIVERY_LEASE_SECONDS)",
        DEBUG="1",
        EMAIL_TIMEOUT="120",
        VIGIL_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) > 120
