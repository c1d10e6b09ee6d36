import factory
from django.contrib.auth.models import Group, Permission

from policies.models import Entitlement, RiskTier
from portal.models import User
from portal.roles import Role


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    phone = factory.Sequence(lambda n: f"+1555020{n:04d}")
    password = factory.django.Password("correct-horse-battery")

    @factory.post_generation
    def roles(self, create: bool, extracted: list[Role] | None, **kwargs: object) -> None:
        if create and extracted:
            self.groups.set(Group.objects.filter(name__in=[role.group_name for role in extracted]))


def prod_db_entitlement(owner: User | None = None) -> Entitlement:
    """The Prod DB admin entitlement: tier 2, an hour at most, a group that may view risk rules."""
    group = Group.objects.create(name="prod-db-admins")
    group.permissions.add(Permission.objects.get(codename="view_riskrule"))
    return Entitlement.objects.create(
        name="Prod DB admin",
        system="PostgreSQL prod",
        owner=owner or UserFactory(username="db.owner"),
        tier=RiskTier.objects.get(level=2),
        max_minutes=60,
        group=group,
    )
