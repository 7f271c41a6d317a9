"""Run one restart experiment and append its outcome as a JSON line.

    PYTHONPATH=. .venv/bin/python -m tests.delivery.compare VARIANT SIGNAL RESTARTS [SEED] [--out FILE] [--bootstrap B]

VARIANT: baseline | safe_seek | wait_empty | safe_seek+wait_empty (Faust agents) |
processor (the same forwarder as a deskstream hop, tests/delivery/forward_processor_app.py).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import tempfile
import time
from pathlib import Path

from tests.delivery.restarts import restart_run

# variant: (forwarder, environment)
VARIANTS = {
    "baseline": ("faust", {}),
    "safe_seek": ("faust", {"DELIVERY_TRANSPORT": "safe_seek"}),
    "wait_empty": ("faust", {"DELIVERY_WAIT_EMPTY": "1"}),
    "safe_seek+wait_empty": ("faust", {"DELIVERY_TRANSPORT": "safe_seek", "DELIVERY_WAIT_EMPTY": "1"}),
    "processor": ("processor", {}),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("signal", choices=["TERM", "KILL"])
    parser.add_argument("restarts", type=int)
    parser.add_argument("seed", type=int, nargs="?")
    parser.add_argument("--records", type=int, default=8000)
    parser.add_argument("--out", default="/tmp/faustloss/results.jsonl")
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    args = parser.parse_args()
    sig = {"TERM": signal.SIGTERM, "KILL": signal.SIGKILL}[args.signal]
    work = Path(tempfile.mkdtemp(prefix=f"delivery-{args.variant}-{args.signal}-"))
    started = time.time()
    out = asyncio.run(restart_run(args.bootstrap, work, args.records, args.restarts, (sig,), delay=0.002,
                                  seed=args.seed, extra_env=VARIANTS[args.variant][1], app=VARIANTS[args.variant][0]))
    row = {"variant": args.variant, "signal": args.signal, "restarts": args.restarts, "seed": args.seed,
           "sent": out.sent, "received": out.received, "missing": len(out.missing), "doubled": len(out.doubled),
           "table_total": out.table_total, "max_stop_s": round(max((t for _, t in out.stops[:-1]), default=0.0), 1),
           "missing_first": out.missing[:3], "work": str(work), "seconds": round(time.time() - started)}
    print(json.dumps(row), flush=True)
    with open(args.out, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
