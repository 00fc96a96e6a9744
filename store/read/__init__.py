"""The read model: typed records of what was stored (``model``), the filter every list takes
(``filters``) and every query of the JSON API, the CLI and the dashboard (``queries``).

Times are Unix seconds (floats) everywhere here; ``store.reads`` turns records into the JSON
of the API, the one place where they become ISO 8601.
"""
