"""Collect the bench tables of ``bench/results/*.md`` into ``docs/results.md`` (one section per file, linked).

    python -m bench.collect_results [--check]

The result files stay the source of truth; this page only copies them, so rerun it after a bench.
``--check`` exits 1 when docs/results.md is not what the result files give (for CI or a pre-commit hook).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
OUT = ROOT / "docs" / "results.md"
# Reading order; files not named here follow alphabetically.
ORDER = ["clean_bench", "smd_table2", "smd_table2_batch32", "hydro_bench", "hydro_bench_tod", "hydro_reference",
         "stream_bench",
         "redeploy_bench"]
TITLES = {"clean_bench": "Cleaning (Flink batch job vs pandas)", "smd_table2": "LSTM-ED on SMD vs Ha et al. Table 2",
          "smd_table2_batch32": "LSTM-ED on SMD, batch size 32", "hydro_bench": "Hydro detector (ARIMA + Markov)",
          "hydro_bench_tod": "Hydro detector, opt-in time-of-day configs",
          "hydro_reference": "Reference flaggers on Logan River stage (what chance scores)",
          "stream_bench": "Streaming scoring (in-process vs REST per window)",
          "redeploy_bench": "Redeploy and hot swap of the streaming jobs"}


def render(results_dir: Path = RESULTS) -> str:
    files = sorted(results_dir.glob("*.md"), key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else len(ORDER), p.stem))
    parts = ["# Results",
             "",
             "Every table below is copied from `bench/results/<bench>.md`, written by the bench script named in "
             "each section (the `.json` beside it holds the figures, the settings and the machine). Regenerate "
             "this page with `python -m bench.collect_results` after rerunning a bench.",
             "",
             *[f"- [{TITLES.get(p.stem, p.stem)}](#{p.stem.replace('_', '-')})" for p in files]]
    for p in files:
        body = p.read_text().strip().splitlines()
        if body and body[0].startswith("# "):  # the file's own title becomes the section's subtitle
            body = [f"*{body[0][2:].strip()}*", *body[1:]]
        body = [("#" + line) if line.startswith("## ") else line for line in body]
        rel = f"bench/results/{p.name}"
        parts += ["", f'<a id="{p.stem.replace("_", "-")}"></a>', "", f"## {TITLES.get(p.stem, p.stem)}", "",
                  f"Source: [`{rel}`](../{rel}) (figures and settings: [`{p.with_suffix('.json').name}`](../{rel[:-3]}.json))",
                  "", *body]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="only compare; exit 1 when docs/results.md is stale")
    p.add_argument("--results-dir", type=Path, default=RESULTS,
                   help="read the .md files from here (e.g. a `git archive` of a commit); default bench/results")
    a = p.parse_args(argv)
    text = render(a.results_dir)
    if a.check:
        stale = not OUT.exists() or OUT.read_text() != text
        print(f"{OUT} is {'stale: run python -m bench.collect_results' if stale else 'up to date'}")
        return 1 if stale else 0
    OUT.write_text(text)
    print(f"wrote {OUT} ({text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
