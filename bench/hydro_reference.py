"""Reference flaggers on the Logan River `stage` files: what detecting nothing scores under issue 6's metrics.

Two label-free flaggers that look at no value: every scored point flagged, and points flagged at random
(Bernoulli, seeded) at the rate ARIMA alone flags in the committed hydro bench (``hydro_bench.json``) and
at 5 %. They are scored on the same span, with the same point-wise and event-level definitions
(``serving.core.event_metrics``) as the detectors in ``bench/hydro_bench.py``, and printed beside those
detectors' committed figures and the pyhydroqc figures quoted in issue 6. Where a flagger that detects
nothing reaches a figure, that figure does not show detection.

    python -m bench.hydro_reference [--seeds 20]

Writes bench/results/hydro_reference.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "results"
INITIAL_DAYS, CHUNK_DAYS = 14, 7  # hydro_bench's scored span for the Logan River files
FIXED_RATE = 0.05


def flaggers(n: int, arima_rate: float, seeds: int) -> dict[str, list[np.ndarray]]:
    rates = {f"random at ARIMA's rate ({arima_rate:.1%})": arima_rate, f"random at {FIXED_RATE:.0%}": FIXED_RATE}
    out = {"every point": [np.ones(n, dtype=bool)]}
    for name, rate in rates.items():
        out[name] = [np.random.default_rng(seed).random(n) < rate for seed in range(seeds)]
    return out


def score_file(values, ts, labels, arima_rate: float, seeds: int) -> dict:
    from serving.core.event_metrics import all_metrics
    from training.hydro.evaluate import span_starts

    s = span_starts(ts, INITIAL_DAYS, CHUNK_DAYS)[0]
    y, t = np.asarray(labels)[s:], np.asarray(ts)[s:]
    valid = np.isfinite(np.asarray(values, dtype=float)[s:])
    res = {"scored_points": int(valid.sum()), "label_share": float(y[valid].mean())}
    for name, draws in flaggers(len(y), arima_rate, seeds).items():
        ms = [all_metrics(y, f, t, valid) for f in draws]
        res[name] = {k: float(np.mean([m[k] for m in ms])) for k in ("f1", "event_f1", "specificity",
                                                                       "event_precision", "event_recall")}
        res[name]["f1_sd"] = float(np.std([m["f1"] for m in ms]))
        res[name]["event_f1_sd"] = float(np.std([m["event_f1"] for m in ms]))
        res[name]["draws"] = len(ms)
    return res


def render(results: dict, seeds: int) -> str:
    lines = [
        "# Reference flaggers on Logan River `stage` (issue 6 metrics)", "",
        "Flaggers that read no value, scored on the hydro bench's span (the first 14 days are history) with its "
        f"point-wise and event-level definitions; random ones: mean (sd) over {seeds} seeds. Beside them, the "
        "committed `bench/results/hydro_bench.json` figures (ARIMA alone, the full detector in its label-free "
        "choice, stage only) and the pyhydroqc figures quoted in issue 6 (whole files, not rerun).", "",
        "| file | label share | flagger | spec % | point F1 | event F1 | event P / R |",
        "|---|---|---|---|---|---|---|",
    ]
    for site, r in results.items():
        first = True
        for name, m in r["flaggers"].items():
            sd = f" ({m['f1_sd']:.3f})" if m["draws"] > 1 else ""
            esd = f" ({m['event_f1_sd']:.3f})" if m["draws"] > 1 else ""
            lines.append(f"| {site if first else ''} | {r['label_share']:.1%} | {name} | {100 * m['specificity']:.1f} "
                         f"| {m['f1']:.3f}{sd} | {m['event_f1']:.3f}{esd} | {m['event_precision']:.2f} / "
                         f"{m['event_recall']:.2f} |")
            first = False
        for name, m in r["detectors"].items():
            lines.append(f"| | | {name} | {100 * m['specificity']:.1f} | {m['f1']:.3f} | {m['event_f1']:.3f} | "
                         f"{m['event_precision']:.2f} / {m['event_recall']:.2f} |")
        q = r["pyhydroqc"]
        lines.append(f"| | | pyhydroqc (issue 6, whole file) | – | {q['f1']:.2f} | {q['event_f1']:.2f} | – |")
    lines += ["", "Flagging every point makes one flagged event that touches every labeled event: event precision "
              "and recall 1. A random flagger cuts its flags into many short events, each of which touches a "
              "long labeled block with the block's share of the time, so its event F1 rises with the label share "
              "and with how long the labeled blocks are."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hydro_reference", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None, help="shared data folder (default: settings' SG_DATA_DIR)")
    p.add_argument("--seeds", type=int, default=20, help="random flagger draws per rate")
    args = p.parse_args(argv)
    from training.data import hydro

    if args.data is None:
        from serving.settings import get_settings

        args.data = str(get_settings().data_dir)
    bench = json.loads((OUT / "hydro_bench.json").read_text())
    results = {}
    for f in hydro.list_files(Path(args.data) / "hydro"):
        site = hydro.site_of(f)
        committed = bench["results"][f"{site} stage"]["metrics"]
        arima = committed["arima"]
        n = arima["tp"] + arima["fp"] + arima["fn"] + arima["tn"]
        s = hydro.series(hydro.read_file(f), "stage")
        r = score_file(s.value.to_numpy(), s.ts.to_numpy(), s.label.to_numpy(),
                       (arima["tp"] + arima["fp"]) / n, args.seeds)
        if r["scored_points"] != n:
            raise SystemExit(f"{site}: {r['scored_points']} scored points here, {n} in hydro_bench.json: "
                             "rerun python -m bench.hydro_bench first")
        results[site] = {"label_share": r["label_share"], "scored_points": n,
                         "flaggers": {k: v for k, v in r.items() if isinstance(v, dict)},
                         "detectors": {"ARIMA alone (committed)": arima,
                                       "full detector, stage only (committed)": committed["full"]},
                         "pyhydroqc": bench["pyhydroqc_issue6"][site]}
    md = render(results, args.seeds)
    print(md)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "hydro_reference.md").write_text(md)
    settings = vars(args) | {"data": os.path.relpath(args.data, Path(__file__).resolve().parents[1])}
    (OUT / "hydro_reference.json").write_text(json.dumps({"results": results, "settings": settings}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
