"""Raw source configuration shared by the cleaning job, the replay tool and the readers.

A raw source is a folder of line files ``series_id,timestamp,v1,...,vn`` plus ``source.json``
describing what is expected of them (the contract in DESIGN.md: "landing lines").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_NODATA_TOKENS = ("", "NULL")


@dataclass
class SourceConfig:
    name: str
    value_names: list[str]
    series: list[str]
    interval_ms: int
    nodata_codes: list[float] = field(default_factory=list)
    naive_utc_offset_minutes: int = 0  # zone of timestamps written without one (Logan River: -420)

    @property
    def n_values(self) -> int:
        return len(self.value_names)

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / "source.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def load(cls, folder: str | Path) -> SourceConfig:
        path = Path(folder) / "source.json"
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is missing: a raw source folder needs a source.json (name, value_names, series, "
                "interval_ms, nodata_codes); see README 'Bring your own data'"
            )
        return cls(**json.loads(path.read_text()))


def series_file_name(series_id: str) -> str:
    """File-system-safe name of a series dataset: ``MainStreet/stage`` -> ``MainStreet__stage``."""
    return series_id.replace("/", "__")


def series_from_file_name(name: str) -> str:
    return name.replace("__", "/")
