"""Database routing for the embedded stack: the SQLite channel layer lives in its own database file, and that
file holds nothing else (channels_lite's own router would let every app migrate into it)."""


class ChannelLayerRouter:
    app_label = "channels_lite"
    database = "channels"

    def db_for_read(self, model, **hints):
        return self.database if model._meta.app_label == self.app_label else None

    def db_for_write(self, model, **hints):
        return self.database if model._meta.app_label == self.app_label else None

    def allow_relation(self, obj1, obj2, **hints):
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return (db == self.database) == (app_label == self.app_label)
