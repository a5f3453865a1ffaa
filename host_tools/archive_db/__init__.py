"""The treatment archive database: every pulled record, queryable across devices.

``store`` (where it lives, migrations), ``tables`` (the schema), ``indexer``
(raw records -> rows, per session in one transaction), ``query`` (what
service and quality staff ask), ``cli`` (``cryo archive``).
"""
