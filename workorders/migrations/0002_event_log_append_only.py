"""A work order's event log is a record: the database refuses to change or delete its rows, whoever asks."""

from django.db import migrations

FORWARD = """
CREATE FUNCTION workorders_event_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'work order events are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER workorder_event_append_only
    BEFORE UPDATE OR DELETE ON workorders_workorderevent
    FOR EACH ROW EXECUTE FUNCTION workorders_event_refuse_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS workorder_event_append_only ON workorders_workorderevent;
DROP FUNCTION IF EXISTS workorders_event_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("workorders", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
