"""The timeline is a record: the database itself refuses to change or delete its rows, whoever asks."""

from django.db import migrations

FORWARD = """
CREATE FUNCTION incidents_timeline_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'incident timeline entries are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER timeline_append_only
    BEFORE UPDATE OR DELETE ON incidents_timelineentry
    FOR EACH ROW EXECUTE FUNCTION incidents_timeline_refuse_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS timeline_append_only ON incidents_timelineentry;
DROP FUNCTION IF EXISTS incidents_timeline_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
