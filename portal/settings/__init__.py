"""Settings modules: `default` (from the environment; what manage.py, gunicorn and
Celery use), `test` (the default suite) and `services` (the service suite).
Kept free of side effects so the test modules can prepare the environment first."""
