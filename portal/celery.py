import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.default")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic work, in one place; each entry says why it exists.
app.conf.beat_schedule = {
    # Tamper evidence is only worth something if someone looks: re-verify the chain daily.
    "audit-chain-verify": {"task": "audit.tasks.audit_chain_verify", "schedule": 24 * 3600.0},
}
