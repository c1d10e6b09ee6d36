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


def test_production_settings_pass_the_deploy_check(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY="x" * 60 + "-production-key-with-enough-entropy-!@#",
        ALLOWED_HOSTS="vigil.example.com",
        VIGIL_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_bad_setting_stops_start_up_with_its_name(tmp_path):
    result = manage("check", DEBUG="maybe", VIGIL_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "DEBUG='maybe'" in result.stderr
    assert "Traceback" not in result.stdout


def test_secret_key_is_required_with_an_external_database(tmp_path):
    result = manage("check", DATABASE_URL="postgres://db.example/vigil", VIGIL_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr
