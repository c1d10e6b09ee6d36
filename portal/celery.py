import os

from celery import Celery
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.default")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic work, in one place; each entry says why it exists.
app.conf.beat_schedule = {
    # Tamper evidence is only worth something if someone looks: re-verify the chain daily.
    "audit-chain-verify": {"task": "audit.tasks.audit_chain_verify", "schedule": 24 * 3600.0},
    # A challenge whose dispatch never ran (broker down) is re-sent; stale ones expire.
    "challenges-sweep": {
        "task": "verification.tasks.challenges_sweep",
        "schedule": settings.VERIFICATION_SWEEP_SECONDS,
    },
    # Open cases past their deadline and verified cases never used expire on their own.
    "cases-expire": {"task": "verification.tasks.cases_expire", "schedule": 60.0},
    # Notices and IdP webhooks that never left (broker or gateway away) are sent again.
    "deliveries-sweep": {
        "task": "verification.tasks.deliveries_sweep",
        "schedule": settings.VERIFICATION_SWEEP_SECONDS,
    },
    # Grants end on time even if a worker missed the ETA task; expiry notices go out.
    "grants-sweep": {"task": "policies.tasks.grants_sweep", "schedule": settings.GRANT_SWEEP_SECONDS},
    # Access requests nobody answered expire after the configured wait.
    "requests-expire": {"task": "policies.tasks.requests_expire", "schedule": 300.0},
}
