"""The ledger is append-only, and each movement moves the balances in its own transaction: its source depot's
balance of the lot down, its target's up. Balance's CHECK (quantity >= 0) refuses a movement that would take a
lot below zero; the UPDATE's row lock makes two concurrent issues of the last unit wait for each other, so the
second one sees zero and fails."""

from django.db import migrations

FORWARD = """
CREATE FUNCTION parts_movement_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.source_id IS NOT NULL THEN
        -- An UPDATE, not an upsert: PostgreSQL checks an upsert's proposed row (-quantity) before the conflict.
        UPDATE parts_balance SET quantity = quantity - NEW.quantity
            WHERE depot_id = NEW.source_id AND lot_id = NEW.lot_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'new row for relation "parts_balance" violates check constraint "balance_never_negative"'
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    IF NEW.target_id IS NOT NULL THEN
        INSERT INTO parts_balance (depot_id, lot_id, quantity) VALUES (NEW.target_id, NEW.lot_id, NEW.quantity)
        ON CONFLICT (depot_id, lot_id) DO UPDATE SET quantity = parts_balance.quantity + NEW.quantity;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER movement_applies_to_balance
    AFTER INSERT ON parts_movement
    FOR EACH ROW EXECUTE FUNCTION parts_movement_apply();

CREATE FUNCTION parts_movement_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'stock movements are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER movement_append_only
    BEFORE UPDATE OR DELETE ON parts_movement
    FOR EACH ROW EXECUTE FUNCTION parts_movement_refuse_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS movement_append_only ON parts_movement;
DROP FUNCTION IF EXISTS parts_movement_refuse_change();
DROP TRIGGER IF EXISTS movement_applies_to_balance ON parts_movement;
DROP FUNCTION IF EXISTS parts_movement_apply();
"""


class Migration(migrations.Migration):
    dependencies = [("parts", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
