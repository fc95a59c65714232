"""Train, register and promote LSTM-ED models for SMD machines and print their metrics.

    python -m training.lstm_ed --machines machine-1-2 machine-3-4            # quick: 3 epochs, hidden 64
    python -m training.lstm_ed --machines machine-1-2 --full                 # paper settings (slow)
"""

from __future__ import annotations

import argparse


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m training.lstm_ed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--machines", nargs="+", default=["machine-1-2"], help="machine ids in the SMD folder")
    p.add_argument("--data", default=None, help="SMD-layout folder (default: <SG_DATA_DIR>/smd)")
    p.add_argument("--max-epochs", type=int, default=3, help="max epochs in quick mode")
    p.add_argument("--hidden", type=int, default=64, help="hidden units in quick mode")
    p.add_argument("--full", action="store_true", help="paper settings: hidden 200, up to 200 epochs")
    a = p.parse_args(argv)
    from training.lstm_ed.pipeline import train_and_promote

    train_and_promote(a.machines, a.data, max_epochs=a.max_epochs, hidden=a.hidden, full=a.full)


if __name__ == "__main__":
    main()
