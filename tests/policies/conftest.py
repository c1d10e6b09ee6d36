import pytest

from policies.demo import seed_policy
from policies.snapshot import snapshot_invalidate


@pytest.fixture
def default_policy(db):
    seed_policy()
    snapshot_invalidate()
    yield
    snapshot_invalidate()
