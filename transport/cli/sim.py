"""`transport sim`: a verified transfer, a named/TOML scenario, or a sweep.

Without ``--scenario`` and without list-valued or scenario-only options it
runs the original single verified transfer (``--rate --rtt --loss --burst
--queue-bdp --size --streams --seed --json``). Otherwise it runs a scenario
(built-in name or TOML file; default a point-to-point path from ``--rate``,
``--rtt``, ``--queue-bdp``, ``--burst``) for every combination of
``--loss`` (comma list; bare numbers in a list are percentages),
``--cc`` and ``--seeds``, prints progress on stderr and a table (or
``--json``), and optionally writes ``--csv`` and ``--plot`` PNGs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace

from transport.cli.units import parse_fraction, parse_rate, parse_seconds

DEFAULT_RATE_BPS = 50e6
DEFAULT_RTT_S = 0.050


def _parse_loss_list(text: str) -> list[float]:
    """``2%`` or ``0.02`` -> [0.02]; ``0,1,2,5`` -> percentages."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("empty loss list")
    try:
        if len(items) == 1:
            return [parse_fraction(items[0])]
        return [parse_fraction(t) if t.endswith("%") else float(t) / 100 for t in items]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _legacy_mode(args: argparse.Namespace) -> bool:
    return (
        args.scenario is None
        and len(args.loss) == 1
        and args.cc is None
        and args.fec is None
        and args.seeds is None
        and args.plot is None
        and args.csv is None
        and args.duration is None
        and args.workload is None
        and not args.list_scenarios
    )


def _cmd_legacy(args: argparse.Namespace) -> int:
    from transport.sim import Bernoulli, GilbertElliott, LossModel, Path
    from transport.sim.transfer import run_transfer

    rate = args.rate if args.rate is not None else DEFAULT_RATE_BPS
    rtt = args.rtt if args.rtt is not None else DEFAULT_RTT_S
    p = args.loss[0]
    loss: LossModel | None = None
    if p > 0:
        loss = GilbertElliott.from_mean(p, args.burst) if args.burst > 1 else Bernoulli(p)
    path = Path.symmetric(rate, rtt, queue_bdp=args.queue_bdp, loss=loss)
    started = time.perf_counter()
    result = run_transfer(int(args.size), path, seed=args.seed, streams=args.streams)
    wall_s = time.perf_counter() - started
    capacity = rate * (1 - p)
    summary = {
        "goodput_mbps": round(result.goodput_bps / 1e6, 3),
        "fraction_of_capacity": round(result.goodput_bps / capacity, 4) if capacity else None,
        "bytes": result.bytes_delivered,
        "intact": result.intact,
        "virtual_seconds": round(result.duration_s, 3),
        "wall_seconds": round(wall_s, 3),
        "speed_factor": round(result.duration_s / wall_s, 2) if wall_s else None,
        "rtt_ms": round(result.client.smoothed_rtt_s * 1000, 2) if result.client else None,
        "packets_lost": result.client.packets_lost if result.client else None,
        "packets_retransmitted": result.client.packets_retransmitted if result.client else None,
    }
    if args.json:
        payload = dict(summary, client=asdict(result.client) if result.client else None)
        print(json.dumps(payload, indent=2))
    else:
        width = max(len(k) for k in summary)
        for key, value in summary.items():
            print(f"{key:<{width}}  {value}")
    return 0 if result.intact else 1


def _base_scenario(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from transport.sim.scenarios import (
        BUILTIN_SCENARIOS,
        PathSpec,
        Scenario,
        WorkloadSpec,
        get_scenario,
        load_scenario,
    )

    if args.scenario is None:
        base = Scenario("custom", "point-to-point path from the command line", PathSpec())
    elif args.scenario in BUILTIN_SCENARIOS:
        base = get_scenario(args.scenario)
    else:
        base = load_scenario(args.scenario)
    path = base.path
    if args.rate is not None:
        path = replace(path, rate_bps=args.rate)
    if args.rtt is not None:
        path = replace(path, rtt_s=args.rtt)
    if args.scenario is None:
        path = replace(path, queue_bdp=args.queue_bdp)
        if len(args.loss) == 1:
            path = _with_burst(path, args.loss[0], args.burst)
    base = replace(base, path=path)
    if args.duration is not None:
        base = replace(base, duration_s=args.duration)
    if args.workload is not None:
        base = replace(base, workload=WorkloadSpec(kind=args.workload))
    elif args.scenario is None:
        base = replace(base, workload=WorkloadSpec(size_bytes=None))
    return base


def _with_burst(path, p: float, burst: float):  # type: ignore[no-untyped-def]
    from transport.sim.loss import Bernoulli, GilbertElliott

    if p <= 0:
        return replace(path, loss=None)
    return replace(path, loss=GilbertElliott.from_mean(p, burst) if burst > 1 else Bernoulli(p))


def _cmd_scenario(args: argparse.Namespace) -> int:
    from transport.errors import ConfigurationError
    from transport.sim.scenarios import BUILTIN_SCENARIOS
    from transport.sim.sweep import sweep

    if args.list_scenarios:
        for name, sc in BUILTIN_SCENARIOS.items():
            print(f"{name:<20} {sc.description}")
        return 0
    try:
        base = _base_scenario(args)
        losses = args.loss if args.loss_given else None
        if args.scenario is None and len(args.loss) > 1 and args.burst > 1:
            base = replace(base, path=_with_burst(base.path, 0.01, args.burst))
        ccs = args.cc.split(",") if args.cc else None
        fecs = args.fec.split(",") if args.fec else None
        seeds = args.seeds if args.seeds else [args.seed]

        def progress(done: int, total: int, run) -> None:  # type: ignore[no-untyped-def]
            bar = "#" * (20 * done // total)
            print(
                f"\r[{bar:<20}] {done}/{total} {run.cc} loss={run.loss_rate * 100:g}% "
                f"seed={run.seed}: {run.goodput_bps / 1e6:.2f} Mbit/s ({run.wall_s:.1f}s wall)",
                end="\n" if done == total else "",
                file=sys.stderr,
                flush=True,
            )

        result = sweep(base, losses=losses, ccs=ccs, fecs=fecs, seeds=seeds, progress=progress)
    except ConfigurationError as exc:
        print(f"transport sim: {exc}", file=sys.stderr)
        return 2
    if args.csv:
        result.to_csv(args.csv)
    if args.json:
        print(result.to_json(arrays=args.arrays))
    else:
        print(result.table())
    if args.plot:
        from transport.sim.plot import plot_sweep

        try:
            for written in plot_sweep(result, args.plot):
                print(f"wrote {written}", file=sys.stderr)
        except ConfigurationError as exc:
            print(f"transport sim: {exc}", file=sys.stderr)
            return 2
    return 0


def _cmd_sim(args: argparse.Namespace) -> int:
    args.loss_given = args.loss is not None
    if args.loss is None:
        args.loss = [0.0]
    if _legacy_mode(args):
        return _cmd_legacy(args)
    return _cmd_scenario(args)


def _seed_list(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = sub.add_parser(
        "sim",
        help="simulate a transfer, a scenario or a sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sim.add_argument("--scenario", help="built-in scenario name or a TOML file")
    sim.add_argument("--list-scenarios", action="store_true", help="list built-in scenarios")
    sim.add_argument("--rate", type=parse_rate, default=None, help="e.g. 50mbit (default)")
    sim.add_argument("--rtt", type=parse_seconds, default=None, help="e.g. 50ms (default)")
    sim.add_argument(
        "--loss",
        type=_parse_loss_list,
        default=None,
        help="2%% or 0.02; a comma list sweeps, bare numbers in a list are %% (0,1,2,5)",
    )
    sim.add_argument("--burst", type=float, default=1.0, help="mean loss burst length")
    sim.add_argument("--queue-bdp", type=float, default=1.0, help="queue in BDPs")
    sim.add_argument("--cc", help="controller(s), comma list: bbr,cubic,newreno")
    sim.add_argument("--fec", help="FEC modes to sweep, e.g. off,adaptive (or fixed)")
    sim.add_argument("--duration", type=parse_seconds, help="virtual seconds per run")
    sim.add_argument("--workload", choices=("bulk", "messages", "rpc"))
    sim.add_argument("--seeds", type=_seed_list, help="comma list of seeds")
    sim.add_argument("--size", type=float, default=20e6, help="bytes to transfer (single transfer)")
    sim.add_argument("--streams", type=int, default=1)
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--json", action="store_true")
    sim.add_argument(
        "--arrays", action="store_true", help="with --json: include latencies and time series"
    )
    sim.add_argument("--csv", help="write the result rows to this CSV file")
    sim.add_argument("--plot", help="write PNG plot(s) to this file")
    sim.set_defaults(func=_cmd_sim)
