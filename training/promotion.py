"""The promote step both training DAGs end with: promote each new version, report what happened."""

from __future__ import annotations

from collections.abc import Callable

from training.registry import Promotion


def promote_each(results: list[dict], key: str, promote_fn: Callable[[str], Promotion],
                 details: Callable[[dict], str] = lambda r: "") -> list[dict]:
    """Call ``promote_fn(result[key])`` for every fit result; return the results with the promotion outcome.

    ``production_version`` is the version serving after the call (the new one, or the one kept).
    """
    out = []
    for r in results:
        p = promote_fn(r[key])
        out.append({**r, "promoted": p.promoted, "production_version": p.version if p.promoted else p.previous,
                    "reason": p.reason})
        print(f"{r[key]}: v{r['model_version']} {'promoted' if p.promoted else 'kept'} ({p.reason}) {details(r)}".rstrip())
    return out
