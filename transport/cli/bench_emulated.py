"""``transport bench --path emulated``: ours vs kernel TCP over one emulated path.

How this works
--------------
``transport bench --path emulated --rate 50mbit --delay 25ms --loss 2%
--compare tcp-cubic,tcp-bbr`` builds one :class:`transport.emulate.EmulatedPath`
(two network namespaces joined through TUN devices and the relay; Linux,
root) and runs over it, one after the other, a bulk flow of this transport
(threaded API, Noise, keys made per run) and one kernel TCP flow per
``--compare`` entry (``tcp-<cc>``: ``TCP_CONGESTION`` set per socket;
``tcp`` alone means the kernel's default controller). Every flow is a
receiver in namespace B and a sender in namespace A
(:mod:`transport.emulate.flows`); the receiver counts bytes for
``--duration`` seconds from its first byte and goodput is taken from 2 s to
the end, so all flows are measured the same way. Prints a table with the
ratios ours / peer (or one JSON object with ``--json``). When the emulator
cannot run (not root, no ``/dev/net/tun``, not Linux) it says why and exits
with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_UNSUPPORTED = 2
DEFAULT_DATAGRAM_BYTES = 1472  # a full 1500-byte IP packet, like TCP's segments
WARMUP_S = 2.0


def _kernel_default_cc() -> str:
    try:
        with open("/proc/sys/net/ipv4/tcp_congestion_control") as fh:
            return fh.read().strip() or "cubic"
    except OSError:
        return "cubic"


def peer_kinds(compare: str) -> tuple[list[str], dict[str, str]]:
    """``--compare`` text -> (flow kinds to run, {name: why skipped})."""
    kinds: list[str] = []
    skipped: dict[str, str] = {}
    for name in (k.strip() for k in compare.split(",")):
        if not name:
            continue
        if name == "tcp":
            kinds.append(f"tcp-{_kernel_default_cc()}")
        elif name.startswith("tcp-") and name[4:].isidentifier():
            kinds.append(name)
        else:
            skipped[name] = ("not available on the emulated path (kernel TCP only: "
                             "tcp, tcp-cubic, tcp-bbr, tcp-reno)")
    return list(dict.fromkeys(kinds)), skipped


def _flow_figures(report: dict[str, Any]) -> dict[str, Any]:
    sender = report.get("sender") or {}
    return {
        "goodput_mbps": round(report["goodput_bps"] / 1e6, 3),
        "bytes": report["bytes"],
        "window_s": report["window_s"],
        "relay_cpu_pct": report["relay_cpu_pct"],
        "sender": sender,
    }


def run(args: argparse.Namespace) -> int:
    """Entry point from ``transport bench`` when ``--path emulated`` is given."""
    from transport.emulate import EmulatedPath, is_supported
    from transport.emulate.flows import run_flows

    ok, why = is_supported()
    if not ok:
        print(f"transport bench --path emulated: {why}; run it as root on Linux with "
              "/dev/net/tun, or drop --path emulated to use the unprivileged UDP relay",
              file=sys.stderr)
        return EXIT_UNSUPPORTED
    if args.duration is None or args.duration <= WARMUP_S or args.size is not None:
        print(f"transport bench --path emulated: needs --duration > {WARMUP_S:g} s "
              "(goodput is measured from 2 s to the end; --size is not supported)",
              file=sys.stderr)
        return EXIT_UNSUPPORTED
    kinds, skipped = peer_kinds(args.compare or "")
    datagram = args.datagram_size or DEFAULT_DATAGRAM_BYTES
    path_info = {
        "kind": "emulated (network namespaces + TUN + relay)",
        "rate_mbps": None if not args.rate else args.rate / 1e6,
        "one_way_delay_ms": round(args.delay * 1e3, 3),
        "loss": args.loss,
        "loss_model": "gilbert-elliott" if args.burst > 1 else "bernoulli",
        "burst": args.burst,
        "loss_both_ways": True,
        "queue_bdp": 1.0,
        "seed": args.seed,
    }
    results: dict[str, dict[str, Any]] = {}
    with EmulatedPath(rate_bps=args.rate or None, delay_s=args.delay, loss=args.loss,
                      burst=args.burst, queue_bdp=1.0, seed=args.seed) as path:
        port = 5100
        for kind in ["ours", *kinds]:
            port += 1
            if not args.quiet and not args.json:
                print(f"running {kind} for {args.duration:g} s ...", file=sys.stderr, flush=True)
            (report,) = run_flows(path, kind, args.duration, port=port,
                                  datagram_size=datagram, cc=args.cc,
                                  fec=args.fec or "off")
            results[kind] = _flow_figures(report)
    ours = results.pop("ours")
    ours.update({"transport": "transport", "security": "noise", "cc": args.cc or "default",
                 "fec": args.fec or "off", "datagram_size": datagram})
    compare: dict[str, Any] = {}
    for kind, figures in results.items():
        figures["goodput_ratio"] = round(ours["goodput_mbps"] / max(figures["goodput_mbps"],
                                                                    1e-9), 3)
        compare[kind] = figures
    compare.update({name: {"skipped": why} for name, why in skipped.items()})
    output = {"path": path_info, "duration_s": args.duration,
              "goodput_window": "2 s after the first byte to the end (receiver clock)",
              **ours, "compare": compare}
    if args.json:
        print(json.dumps(output))
        return 0
    for line in table_lines(output):
        print(line)
    return 0


def table_lines(output: dict[str, Any]) -> list[str]:
    p = output["path"]
    rate = "unlimited" if p["rate_mbps"] is None else f"{p['rate_mbps']:g} Mbit/s"
    lines = [
        f"emulated path: {rate}, {2 * p['one_way_delay_ms']:g} ms RTT, "
        f"loss {p['loss'] * 100:g} % each way ({p['loss_model']}), 1 BDP queue; "
        f"{output['duration_s']:g} s flows, goodput from 2 s",
        f"{'flow':<14}{'goodput Mbit/s':>16}{'ours / flow':>13}{'relay CPU':>11}",
        f"{'ours (' + output['cc'] + ')':<14}{output['goodput_mbps']:>16.2f}{'':>13}"
        f"{output['relay_cpu_pct']:>10.1f}%",
    ]
    for kind, fig in output["compare"].items():
        if "skipped" in fig:
            lines.append(f"{kind:<14} skipped ({fig['skipped']})")
            continue
        lines.append(f"{kind:<14}{fig['goodput_mbps']:>16.2f}{fig['goodput_ratio']:>12.2f}x"
                     f"{fig['relay_cpu_pct']:>10.1f}%")
    return lines
