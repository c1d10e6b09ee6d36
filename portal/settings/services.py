"""Service suite: the real PostgreSQL, Redis and a Celery worker.

Refuses to start without them: CI must fail, not skip, when one is missing.
"""

import os

from django.core.exceptions import ImproperlyConfigured

for _name in ("DATABASE_URL", "REDIS_URL"):
    if not os.environ.get(_name):
        raise ImproperlyConfigured(f"the service suite needs {_name}")

from portal.settings.test import *  # noqa: E402,F403

CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_EAGER_PROPAGATES = False
