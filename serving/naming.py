"""Names shared by training (which registers models) and the Flink jobs (which load them)."""


def registry_name(family: str, series_id: str) -> str:
    """Registry-safe model name: ``lstm_ed-machine-1-1``, ``hydro-MainStreet-stage``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in series_id)
    return f"{family}-{safe}"
