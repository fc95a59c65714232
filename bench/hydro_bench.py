"""Hydro bench: ARIMA alone vs ARIMA + Markov verification vs the full detector (verification + label-free
persistence rules), point-wise and event-level, on synthetic water levels, the three Logan River ``stage``
series and NAB; per-point latency of the ``incremental`` and ``refit`` modes; refit wall time; and how often
the two modes' verdicts agree.

Protocol (no label is used to fit or tune): rolling origin. Each span (7 days for water levels, a tenth of
the file for NAB) is scored by a detector fitted only on the data before it; the first ``initial`` part of
each series is history only. Reference rows (the paper on its private data, pyhydroqc on the whole files as
quoted in issue 6) are copied figures, named as such.

Writes bench/results/hydro_bench.md and .json (with ``--tod``: hydro_bench_tod.md and .json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from training.hydro.evaluate import CONFIGS as BASE_CONFIGS  # noqa: E402
from training.hydro.evaluate import ICE_CONFIGS as ALL_ICE_CONFIGS  # noqa: E402
from training.hydro.evaluate import (  # noqa: E402
    ICE_POINTS,
    ICE_TEMP,
    TOD_CONFIGS,
    VARIANTS,
    metrics_of,
    rolling_scores,
)

CONFIGS = dict(BASE_CONFIGS)  # the candidates of the label-free choice (``--tod`` adds the time-of-day ones)


def full_variants(configs: dict) -> dict:
    """The full detector in each config, keyed ``full:<config>`` as rolling_scores variants."""
    return {f"full:{c}": {**VARIANTS["full"], **kw} for c, kw in configs.items()}


BENCH_VARIANTS = {"arima": VARIANTS["arima"], "arima+markov": VARIANTS["arima+markov"], **full_variants(CONFIGS)}
# each candidate with the ice rule, run only on series given a covariate (Logan River: the site's water
# temperature); without one they equal their base config
ICE_CONFIGS = {f"{c}+ice": ALL_ICE_CONFIGS[f"{c}+ice"] for c in CONFIGS}
ICE_VARIANTS = full_variants(ICE_CONFIGS)
LATENCY_CONFIG = "d2+local+daily"  # the config with the most work per point


def add_tod_configs():
    """Offer the time-of-day roughness configs too (``--tod``)."""
    global LATENCY_CONFIG
    CONFIGS.update(TOD_CONFIGS)
    BENCH_VARIANTS.update(full_variants(TOD_CONFIGS))
    ICE_CONFIGS.update({f"{c}+ice": ALL_ICE_CONFIGS[f"{c}+ice"] for c in TOD_CONFIGS})
    ICE_VARIANTS.update(full_variants(ICE_CONFIGS))
    LATENCY_CONFIG = "d2+local+daily+tod"

OUT = Path(__file__).resolve().parent / "results"
PAPER = {"dataset": "Ye et al. 2020 (their Chu River data, private; figures as published)",
         "arima": {"sensitivity": 0.7291}, "arima+markov": {"sensitivity": 0.9298, "specificity": 0.9947},
         "latency_ms": "mean < 20 (19.92 at window 30, Flink cluster)"}
PYHYDROQC = {"MainStreet": {"f1": 0.11, "event_f1": 0.40}, "TonyGrove": {"f1": 0.15, "event_f1": 0.83},
             "FranklinBasin": {"f1": 0.09, "event_f1": 0.44}}
NAB_CATEGORY = "realKnownCause"
CALIBRATION = "synthetic calibration seeds"
SUMMED = ("tp", "fp", "fn", "tn", "labeled_events", "flagged_events", "events_found", "false_alarm_events")


def pooled(per_series: list[dict], days: float) -> dict:
    """Sum counts over series and recompute the ratios (events never span two series)."""
    c = {k: sum(m[k] for m in per_series) for k in SUMMED}

    def r(a, b):
        return a / b if b else float("nan")

    sens, prec = r(c["tp"], c["tp"] + c["fn"]), r(c["tp"], c["tp"] + c["fp"])
    er, ep = r(c["events_found"], c["labeled_events"]), r(c["flagged_events"] - c["false_alarm_events"],
                                                         c["flagged_events"])
    f1 = lambda p, q: 2 * p * q / (p + q) if p + q else 0.0  # noqa: E731
    delays = [m["delay_minutes_mean"] for m in per_series if np.isfinite(m["delay_minutes_mean"])]
    return {**c, "sensitivity": sens, "specificity": r(c["tn"], c["tn"] + c["fp"]), "precision": prec,
            "f1": f1(prec, sens) if np.isfinite(prec) else 0.0, "event_recall": er, "event_precision": ep,
            "event_f1": f1(ep, er) if np.isfinite(ep) else 0.0,
            "delay_minutes_mean": float(np.mean(delays)) if delays else float("nan"),
            "false_alarms_per_day": r(c["false_alarm_events"], days)}


def latency(det, x, ts, n: int) -> dict:
    """Per-point ``update`` time (ms) of the full detector, and its verdicts, on the first ``n`` points:
    wall clock (what a caller waits) and this thread's CPU time (the same call without the time the OS
    scheduler gave the core to other processes: on a shared 2-core machine a call that is preempted waits
    one scheduler slice, a few ms, which is what a wall p99 above the CPU p99 shows)."""
    state, times, cpu, flags, cands = det.new_state(), [], [], [], []
    for i in range(min(n, len(x))):
        c0, t0 = time.thread_time(), time.perf_counter()
        state, out = det.update(state, int(ts[i]), float(x[i]))
        t1, c1 = time.perf_counter(), time.thread_time()
        times.append((t1 - t0) * 1000)
        cpu.append((c1 - c0) * 1000)
        flags.append(out["anomalous"])
        cands.append(out["candidate"])
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99)),
            "max": float(np.max(times)), "cpu_p50": float(np.percentile(cpu, 50)),
            "cpu_p99": float(np.percentile(cpu, 99)), "n": len(times),
            "flags": np.array(flags), "candidates": np.array(cands)}


def run_series(x, ts, y, *, initial_days, chunk_days, change_threshold, latency_points, incremental_points,
               order_every=4, covariate=None):
    t0 = time.perf_counter()
    variants = BENCH_VARIANTS if covariate is None else BENCH_VARIANTS | ICE_VARIANTS
    res = rolling_scores(x, ts, initial_days=initial_days, chunk_days=chunk_days, order_every=order_every,
                         change_threshold=change_threshold, variants=variants, covariate=covariate)
    wall = time.perf_counter() - t0
    s = res.start
    det = res.detectors[0][1].variant(**CONFIGS[LATENCY_CONFIG])
    inc = latency(det, x[s:], ts[s:], max(incremental_points, latency_points))
    ref = latency(det.variant(mode="refit"), x[s:], ts[s:], latency_points)
    n = len(ref["flags"])  # verdicts compared on the points both modes scored
    return {
        "metrics": metrics_of(res, x, ts, y),
        "refit_seconds_mean": float(np.mean(res.fit_seconds)), "refit_seconds_max": float(np.max(res.fit_seconds)),
        "n_refits": len(res.fit_seconds), "wall_seconds": wall, "scored_points": int(len(x) - s),
        "days": float((ts[-1] - ts[s]) / 86_400_000),
        "latency_ms": {m: {k: v for k, v in r.items() if k not in ("flags", "candidates")}
                       for m, r in (("incremental", inc), ("refit", ref))},
        "agreement": {"points": n,
                      "verdicts": float(np.mean(inc["flags"][:n] == ref["flags"])),
                      "candidates": float(np.mean(inc["candidates"][:n] == ref["candidates"]))},
        "orders": sorted({str(d.arima.order) for _, d in res.detectors}),
        "k": sorted({len(d.centroids) for _, d in res.detectors}),
    }


def datasets(args):
    from training.data import hydro, nab
    from training.data.synthetic_hydro import generate

    syn = {"initial_days": 0.3 * args.synthetic_points / 96, "chunk_days": 7, "change_threshold": 2.0}
    df = generate(args.synthetic_points, seed=args.seed)
    yield "synthetic", [(df.value.to_numpy(), df.ts.to_numpy(), df.label.to_numpy(), None)], syn
    cal = [generate(args.synthetic_points, seed=s) for s in args.calibration_seeds]
    yield CALIBRATION, [(d.value.to_numpy(), d.ts.to_numpy(), d.label.to_numpy(), None) for d in cal], syn
    for f in hydro.list_files(Path(args.data) / "hydro"):
        df = hydro.read_file(f)
        s = hydro.series(df, "stage")
        # the same rows' water temperature: the ice rule's covariate (the +ice configs)
        temp = None if args.no_covariate else hydro.series(df, "temp").value.to_numpy()
        yield f"{hydro.site_of(f)} stage", [(s.value.to_numpy(), s.ts.to_numpy(), s.label.to_numpy(), temp)], \
            {"initial_days": 14, "chunk_days": 7, "change_threshold": 2.0}
    keys = [k for k in nab.list_series(Path(args.data) / "nab") if k.startswith(NAB_CATEGORY + "/")]
    series = []
    for k in keys:
        d = nab.load_series(Path(args.data) / "nab", k)
        if args.nab_max_points and len(d) > args.nab_max_points:
            d = d.iloc[: args.nab_max_points]
        series.append((d.value.to_numpy(float), d.ts.to_numpy(), d.label.to_numpy(), None))
    yield f"NAB {NAB_CATEGORY} ({len(keys)} series)", series, {"initial_frac": 0.15, "chunks": 8,
                                                                "change_threshold": None}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="shared data folder (default: settings' SG_DATA_DIR)")
    ap.add_argument("--synthetic-points", type=int, default=8000, help="synthetic series length (15-min steps)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--latency-points", type=int, default=300,
                    help="points per data set timed in both modes (refit fits one ARIMA per point)")
    ap.add_argument("--incremental-points", type=int, default=3000,
                    help="points per data set timed in incremental mode (cheap; more points, steadier p99)")
    ap.add_argument("--nab-max-points", type=int, default=8000, help="cut each NAB series to this many points")
    ap.add_argument("--only", nargs="*", help="substrings of data set names to run")
    ap.add_argument("--calibration-seeds", type=int, nargs="+", default=[2, 3, 4, 5, 6, 7, 8, 9],
                    help="synthetic seeds (disjoint from --seed) on which the full detector's config is chosen")
    ap.add_argument("--tod", action="store_true",
                    help="also offer the time-of-day roughness configs (`+tod`) to the label-free choice; writes "
                         "hydro_bench_tod.md/.json instead")
    ap.add_argument("--no-covariate", action="store_true",
                    help="do not give the Logan River series their water temperature (skips the +ice configs)")
    ap.add_argument("--from-json", action="store_true",
                    help="only re-render the markdown from the saved JSON of the same stem (no rerun)")
    args = ap.parse_args(argv)
    if args.tod:
        add_tod_configs()
    stem = "hydro_bench_tod" if args.tod else "hydro_bench"
    if args.from_json:
        saved = json.loads((OUT / f"{stem}.json").read_text())
        res = saved["results"]
        md = render({k: v for k, v in res.items() if k != CALIBRATION}, res.get(CALIBRATION), saved["loadavg_start"],
                    saved["loadavg_end"])
        (OUT / f"{stem}.md").write_text(md)
        print(md)
        return
    load_start = os.getloadavg()
    if args.data is None:
        from serving.settings import get_settings

        args.data = str(get_settings().data_dir)
    from tqdm import tqdm

    results = {}
    for name, series, cfg in tqdm(list(datasets(args)), desc="data sets"):
        if args.only and not any(o in name for o in args.only):
            continue
        parts = []
        for x, ts, y, cov in series:
            if "initial_frac" in cfg:
                span = (ts[-1] - ts[0]) / 86_400_000
                kw = {"initial_days": cfg["initial_frac"] * span, "chunk_days": span * 0.85 / cfg["chunks"]}
            else:
                kw = {"initial_days": cfg["initial_days"], "chunk_days": cfg["chunk_days"]}
            lat_n = args.latency_points if len(series) == 1 else max(30, args.latency_points // len(series))
            inc_n = args.incremental_points  # per series: a p99 over a few hundred points is too noisy
            parts.append(run_series(x, ts, y, change_threshold=cfg["change_threshold"], latency_points=lat_n,
                                    incremental_points=inc_n, covariate=cov, **kw))
        days = sum(p["days"] for p in parts)
        variants = parts[0]["metrics"].keys()
        metrics = {v: pooled([p["metrics"][v] for p in parts], days) if len(parts) > 1 else parts[0]["metrics"][v]
                   for v in variants}
        # several series (NAB): the worst series' percentiles, and the points timed over all of them
        lat = {m: {q: float(np.max([p["latency_ms"][m][q] for p in parts]))
                   for q in ("p50", "p99", "max", "cpu_p50", "cpu_p99")} | {
                   "n": sum(p["latency_ms"][m]["n"] for p in parts)} for m in ("incremental", "refit")}
        n_agree = sum(p["agreement"]["points"] for p in parts)
        results[name] = {
            "metrics": metrics, "latency_ms": lat,
            # per series (one per calibration seed): the selection's worst-seed specificity rule reads these
            "series_specificity": {v: [p["metrics"][v]["specificity"] for p in parts] for v in variants},
            "agreement_verdicts": sum(p["agreement"]["verdicts"] * p["agreement"]["points"] for p in parts) / n_agree,
            "agreement_candidates": sum(p["agreement"]["candidates"] * p["agreement"]["points"] for p in parts)
            / n_agree,
            "agreement_points": n_agree,
            "refit_seconds_mean": float(np.mean([p["refit_seconds_mean"] for p in parts])),
            "refit_seconds_max": float(np.max([p["refit_seconds_max"] for p in parts])),
            "n_refits": sum(p["n_refits"] for p in parts), "scored_points": sum(p["scored_points"] for p in parts),
            "wall_seconds": sum(p["wall_seconds"] for p in parts),
            "orders": sorted({o for p in parts for o in p["orders"]}), "k": sorted({k for p in parts for k in p["k"]}),
        }
    selection = select_configs(results)
    for name, r in results.items():
        if name in selection:
            r["selected_config"] = selection[name]["config"]
            r["selected_by"] = selection[name]["by"]
            r["metrics"]["full"] = r["metrics"][f"full:{selection[name]['config']}"]
        for key in ("temp", "union"):
            if name in selection and key in selection[name]:
                r[f"selected_config_{key}"] = selection[name][key]
                r["metrics"][f"full+{key}"] = r["metrics"][f"full:{selection[name][key]}"]
    load_end = os.getloadavg()
    md = render({k: v for k, v in results.items() if k != CALIBRATION}, results.get(CALIBRATION), load_start,
                load_end)
    print(md)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{stem}.md").write_text(md)
    settings = {k: v for k, v in vars(args).items()}
    settings["data"] = os.path.relpath(args.data, Path(__file__).resolve().parents[1])  # no machine path
    (OUT / f"{stem}.json").write_text(json.dumps(
        {"results": results, "paper": PAPER, "pyhydroqc_issue6": PYHYDROQC, "settings": settings,
         "configs": CONFIGS, "cpu_count": os.cpu_count(), "loadavg_start": load_start, "loadavg_end": load_end,
         "platform": platform.platform()}, indent=1, default=float))


def select_configs(results: dict) -> dict:
    """Which config of the full detector each data set reports, chosen without its own labels:
    - synthetic and NAB: on the synthetic calibration seeds, the highest pooled point F1 among the configs
      whose specificity is at least 99.5 % (the issue's bar) on *every* calibration seed, else the highest
      worst-seed specificity. The bar holds per data set, so a config must meet it on each seed, not only
      pooled (a pooled 99.6 % hid seeds at 99.2 %; such a config missed the bar on the test seed);
    - each Logan River file: the highest mean event F1 (then point F1) on the *other* Logan River files
      (leave one site out)."""
    out = {}
    cal = results.get(CALIBRATION)
    if cal:
        m = {c: cal["metrics"][f"full:{c}"] for c in CONFIGS}
        worst = {c: min(cal["series_specificity"][f"full:{c}"]) for c in CONFIGS}
        ok = [c for c in CONFIGS if worst[c] >= 0.995]
        best = max(ok, key=lambda c: m[c]["f1"]) if ok else max(CONFIGS, key=lambda c: worst[c])
        for name in results:
            if name == CALIBRATION or "stage" not in name:
                out[name] = {"config": best, "by": "synthetic calibration seeds"}
    sites = [n for n in results if "stage" in n]
    for name in sites:
        others = [n for n in sites if n != name]
        if not others:
            out[name] = {"config": "d2", "by": "default (no other site to calibrate on)"}
            continue

        def score(c, others=others):
            ms = [results[o]["metrics"][f"full:{c}"] for o in others]
            return (float(np.mean([m["event_f1"] for m in ms])), float(np.mean([m["f1"] for m in ms])))

        out[name] = {"config": max(CONFIGS, key=score), "by": "leave one site out: " + ", ".join(others)}
        if all(f"full:{c}" in results[n]["metrics"] for n in sites for c in ICE_CONFIGS):
            # with the water-temperature covariate supplied (the ice rule on): the same choice among the +ice
            # configs; and, for comparison, among stage-only and +ice configs together
            out[name]["temp"] = max(ICE_CONFIGS, key=score)
            out[name]["union"] = max([*CONFIGS, *ICE_CONFIGS], key=score)
    return out


def _f(v, pct=False):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return f"{100 * v:.1f}" if pct else f"{v:.3f}"


def render(results: dict, calibration: dict | None = None, load_start=(), load_end=()) -> str:
    lines = ["# Hydro bench (issue 6)", "",
             "Rolling origin: every span scored by a detector fitted only on earlier data; no label of a data set "
             "is used to fit, tune or choose its detector. ARIMA and +Markov are the paper's method (95 % interval "
             "from the MLE innovation variance; Markov verification by the paper's rule); full = our detector "
             "(robust 99 % interval, the same verification, persistence rules) in the config chosen without the "
             "data set's labels (second table). sens/spec/prec in %, F1 point-wise, evF1 event-level (issue 6 "
             "definition), delay = mean minutes from a found event's start to its first flag, FA/day = "
             "false-alarm flagged events per day.", "",
             "| data set | ARIMA sens | ARIMA spec | ARIMA F1 | ARIMA evF1 | +Markov sens | +Markov spec | +Markov F1 "
             "| +Markov evF1 | full sens | full spec | full prec | full F1 | full evF1 | full delay min | full FA/day |",
             "|---|" + "---|" * 15]
    for name, r in results.items():
        a, m, f = r["metrics"]["arima"], r["metrics"]["arima+markov"], r["metrics"]["full"]
        lines.append(f"| {name} | {_f(a['sensitivity'], 1)} | {_f(a['specificity'], 1)} | {_f(a['f1'])} | "
                     f"{_f(a['event_f1'])} | {_f(m['sensitivity'], 1)} | {_f(m['specificity'], 1)} | {_f(m['f1'])} | "
                     f"{_f(m['event_f1'])} | {_f(f['sensitivity'], 1)} | {_f(f['specificity'], 1)} | "
                     f"{_f(f['precision'], 1)} | {_f(f['f1'])} | {_f(f['event_f1'])} | "
                     f"{f['delay_minutes_mean']:.0f} | {_f(f['false_alarms_per_day'])} |")
    lines.append(f"| {PAPER['dataset']} | {_f(PAPER['arima']['sensitivity'], 1)} | – | – | – | "
                 f"{_f(PAPER['arima+markov']['sensitivity'], 1)} | {_f(PAPER['arima+markov']['specificity'], 1)} |"
                 " – | – | – | – | – | – | – | – | – |")
    for site, v in PYHYDROQC.items():
        lines.append(f"| pyhydroqc on {site} stage, whole file (issue 6 figures, not rerun here) | – | – | – | – | – "
                     f"| – | – | – | – | – | – | {v['f1']:.2f} | {v['event_f1']:.2f} | – | – |")
    temp_rows = {n: r for n, r in results.items() if "full+temp" in r["metrics"]}
    if temp_rows:
        lines += ["", f"With the site's water temperature as covariate (ice rule: flagged while the water is at or below "
                  f"{ICE_TEMP} deg C for {ICE_POINTS} readings in a row, on top of the config's "
                  "rules; config chosen by leave one site out among the `+ice` configs). `union` = the same choice "
                  "among stage-only and `+ice` configs together; `stage choice + ice` = the stage-only choice with the ice rule "
                  "added.", "",
                  "| data set | stage only: config | F1 / evF1 | with temperature: config | sens | spec | prec | F1 "
                  "| evF1 | delay min | FA/day | union choice | union F1 / evF1 | stage choice + ice: spec / F1 / evF1 "
                  "|", "|---|" + "---|" * 13]
        for name, r in temp_rows.items():
            f, t, u = r["metrics"]["full"], r["metrics"]["full+temp"], r["metrics"]["full+union"]
            a = r["metrics"][f"full:{r['selected_config']}+ice"]
            lines.append(f"| {name} | {r['selected_config']} | {_f(f['f1'])} / {_f(f['event_f1'])} | "
                         f"{r['selected_config_temp']} | {_f(t['sensitivity'], 1)} | {_f(t['specificity'], 1)} | "
                         f"{_f(t['precision'], 1)} | {_f(t['f1'])} | {_f(t['event_f1'])} | "
                         f"{t['delay_minutes_mean']:.0f} | {_f(t['false_alarms_per_day'])} | "
                         f"{r['selected_config_union']} | {_f(u['f1'])} / {_f(u['event_f1'])} | "
                         f"{_f(a['specificity'], 1)} / {_f(a['f1'])} / {_f(a['event_f1'])} |")
        ice = list(ICE_CONFIGS)
        lines += ["", "`+ice` configs per Logan River file (point F1 / event F1; the temperature choice in bold):", "",
                  "| data set | " + " | ".join(ice) + " |", "|---|" + "---|" * len(ice)]
        for name, r in temp_rows.items():
            cells = [f"{_f(r['metrics'][f'full:{c}']['f1'])} / {_f(r['metrics'][f'full:{c}']['event_f1'])}"
                     for c in ice]
            cells = [f"**{x}**" if c == r["selected_config_temp"] else x for x, c in zip(cells, ice)]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    cfgs = list(CONFIGS)
    lines += ["", "Full detector per config (point F1 / event F1); the chosen one is in bold. Configs: "
              + "; ".join(f"`{c}` = {kw}" for c, kw in CONFIGS.items()) + ".", "",
              "| data set | chosen by | " + " | ".join(cfgs) + " |", "|---|---|" + "---|" * len(cfgs)]
    rows = dict(results)
    if calibration:
        rows = {CALIBRATION + " (spec % pooled / worst seed / pooled F1)": calibration, **rows}
    for name, r in rows.items():
        cells = []
        for c in cfgs:
            m = r["metrics"][f"full:{c}"]
            worst = min(r["series_specificity"][f"full:{c}"]) if r is calibration else None
            cell = (f"{_f(m['specificity'], 1)} / {_f(worst, 1)} / {_f(m['f1'])}" if r is calibration
                    else f"{_f(m['f1'])} / {_f(m['event_f1'])}")
            cells.append(f"**{cell}**" if r.get("selected_config") == c else cell)
        lines.append(f"| {name} | {r.get('selected_by', '–')} | " + " | ".join(cells) + " |")
    lines += ["", "| data set | incremental p50 ms | incremental p99 ms | incremental CPU p99 ms | incremental "
              "max ms | points timed | refit p50 ms | refit p99 ms | "
              "verdict agreement inc vs refit | candidate agreement | points compared | refit wall s (mean / max) "
              "| refits | scored points | ARIMA orders | k |", "|---|" + "---|" * 16]
    for name, r in results.items():
        li, lr = r["latency_ms"]["incremental"], r["latency_ms"]["refit"]
        lines.append(f"| {name} | {li['p50']:.3f} | {li['p99']:.3f} | {li['cpu_p99']:.3f} | {li['max']:.2f} | "
                     f"{li['n']} | {lr['p50']:.1f} | {lr['p99']:.1f} | "
                     f"{_f(r['agreement_verdicts'], 1)}% | {_f(r['agreement_candidates'], 1)}% | "
                     f"{r['agreement_points']} | {r['refit_seconds_mean']:.2f} / {r['refit_seconds_max']:.2f} | "
                     f"{r['n_refits']} | {r['scored_points']} | {' '.join(r['orders'])} | "
                     f"{','.join(map(str, r['k']))} |")
    lines += ["", f"Latency: the full detector in config `{LATENCY_CONFIG}` (the most work per point), per `update` "
              "call, wall clock (p50, p99, max) and this thread's CPU time (p99; without the time other processes "
              "held the core: a preempted call waits a scheduler slice of a few ms). "
              f"Paper latency: {PAPER['latency_ms']}. Machine: {os.cpu_count()} cores, shared with other "
              f"jobs; load average (1/5/15 min) at start {tuple(round(v, 2) for v in load_start)}, at end "
              f"{tuple(round(v, 2) for v in load_end)}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
