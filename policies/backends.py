"""Authorisation that does not wait for a worker: a group an entitlement grants
confers its permissions only while a grant covering it is active at this
instant, whatever the group membership says."""

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import QuerySet

from policies.models import Entitlement, Grant, Provisioner


class GrantAwareModelBackend(ModelBackend):
    def _get_group_permissions(self, user_obj: Any) -> QuerySet[Permission]:
        managed = Entitlement.objects.filter(provisioner=Provisioner.DJANGO_GROUP).values("group_id")
        covered = Grant.objects.active().filter(
            user=user_obj, entitlement__provisioner=Provisioner.DJANGO_GROUP
        )
        groups = user_obj.groups.exclude(
            pk__in=managed.exclude(group_id__in=covered.values("entitlement__group_id"))
        )
        return Permission.objects.filter(group__in=groups)
