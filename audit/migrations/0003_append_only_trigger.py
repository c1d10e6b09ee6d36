"""On PostgreSQL the database itself refuses UPDATE and DELETE of audit rows,
whoever connects (a raw cursor, psql, another application). The chain head
stays writable: every append moves it. TRUNCATE is left to the operator (test
flushes use it); a truncated chain is still caught by verify_audit_chain,
because the head remembers the count and the last hash."""

from django.db import migrations

INSTALL = """
CREATE OR REPLACE FUNCTION audit_auditevent_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % refused on audit_auditevent', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS audit_auditevent_append_only ON audit_auditevent;
CREATE TRIGGER audit_auditevent_append_only
    BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_auditevent_refuse_change();
"""

REMOVE = """
DROP TRIGGER IF EXISTS audit_auditevent_append_only ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_auditevent_refuse_change();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(INSTALL, params=None)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REMOVE, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_chain_head")]
    operations = [migrations.RunPython(install, remove, elidable=False)]
