"""Shared by the data migrations that move factors off django-otp's models (the
loader skips modules starting with "_")."""

# What django-otp's devices and ours share (Device, ThrottlingMixin; created_at apart).
DEVICE_FIELDS = (
    "user_id",
    "name",
    "confirmed",
    "throttling_failure_timestamp",
    "throttling_failure_count",
    "last_used_at",
)


def move_devices(apps, source, target, fields, copy_rest=None):
    """Copy each device, keep its enrolment time (the factor-age rule reads it), point
    challenges at the copy, then delete the original."""
    old_model = apps.get_model(*source)
    new_model = apps.get_model(*target)
    challenge = apps.get_model("verification", "Challenge")
    for old in old_model.objects.order_by("pk"):
        new = new_model.objects.create(**{name: getattr(old, name) for name in fields})
        # created_at is auto_now_add: set after the insert, or it would read "now".
        new_model.objects.filter(pk=new.pk).update(created_at=old.created_at)
        if copy_rest is not None:
            copy_rest(apps, old, new)
        challenge.objects.filter(device_id=f"{source[0]}.{source[1].lower()}/{old.pk}").update(
            device_id=f"{target[0]}.{target[1].lower()}/{new.pk}"
        )
        old.delete()
