"""Instructions per data packet, each side, counted by callgrind (JSON).

How this works
--------------
Wall-clock figures are noisy on a shared machine; instruction counts are not.
This script runs a bulk transfer between a client and a server
:class:`~transport.Endpoint` in one process (no sockets: each flight is handed
over as one ``receive_datagrams`` batch, as the drivers do) under
``valgrind --tool=callgrind``, twice per size: once counting everything, once
counting only the server's calls (they run inside ``functools.reduce``, a C
frame that ``--toggle-collect=functools_reduce`` switches collection on for).
Two sizes (``--megabytes`` and three times that) are run and subtracted, so
start-up and the handshake cancel out. Output: instructions per data packet,
total, server (receive side) and client (send side, with the few the loop
itself costs). ``--tree DIR`` runs another checkout (``PYTHONPATH=DIR``) for
an A/B comparison with the same interpreter. ``--gro`` hands each flight to
the server as a socket with UDP GRO would (runs of equal-sized datagrams
joined into one buffer, at most 64, through ``Endpoint.receive_groups`` as
the drivers do; the buffers are joined outside the counted calls; a checkout
without ``receive_groups`` gets the datagrams).

    python benchmarks/bench_instructions.py [--security none|noise] [--megabytes 5] [--gro]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import subprocess
import sys
import tempfile


def _feed(endpoint: object, batch: list, now: float) -> None:
    """One batch in (datagram by datagram on a checkout without batches)."""
    receive = getattr(endpoint, "receive_datagrams", None)
    if receive is not None:
        receive(batch, now)
    else:
        for data, addr in batch:
            endpoint.receive_datagram(data, addr, now)  # type: ignore[attr-defined]


def _gro_groups(flight: list) -> list:
    """(buffer, segment, addr) entries as recvmsg with UDP_GRO returns them."""
    groups = []
    i = 0
    while i < len(flight):
        data, addr = flight[i]
        j = i + 1
        while (j < len(flight) and j - i < 64 and flight[j][1] == addr
               and len(flight[j][0]) <= len(data) and len(flight[j - 1][0]) == len(data)):
            j += 1
        groups.append((b"".join(d for d, _ in flight[i:j]), len(data) if j - i > 1 else 0, addr))
        i = j
    return groups


def transfer(security: str, megabytes: int, gro: bool = False) -> int:
    """The measured transfer; returns the number of data packets."""
    import dataclasses
    import random

    from transport.cli.bench import generate_keys, make_config
    from transport.endpoint import Endpoint
    from transport.events import HandshakeCompleted, StreamReadable

    opts: dict = {"security": security, "datagram_size": 1400}
    if security == "noise":
        generate_keys(opts)

    def config(server: bool):
        return dataclasses.replace(make_config(opts, server=server),
                                   rng=random.Random(2 if server else 1))

    client, server = Endpoint(config(False)), Endpoint(config(True), is_server=True)
    c_addr, s_addr = ("10.0.0.1", 5000), ("10.0.0.2", 4433)
    now = 1000.0
    conn = client.connect(s_addr, now)
    chunk = memoryview(bytes(256 * 1024))
    total = megabytes * 1_000_000
    state = {"sid": None, "sent": 0, "received": 0, "packets": 0}
    while state["received"] < total:
        now += 0.0002
        while (item := client.next_event()) is not None:
            if isinstance(item[1], HandshakeCompleted):
                state["sid"] = conn.open_stream(True)
        if state["sid"] is not None:
            while state["sent"] < total:
                n = conn.send_stream_data(state["sid"],
                                          chunk[: min(len(chunk), total - state["sent"])])
                if not n:
                    break
                state["sent"] += n
        deadline = client.get_timer()
        if deadline is not None and now >= deadline:
            client.handle_timer(now)
        flight = [(data, c_addr) for data, _ in client.datagrams_to_send(now)]

        groups = _gro_groups(flight) if gro and hasattr(server, "receive_groups") else None

        def server_side(_acc: object, _item: object, flight: list = flight,
                        now: float = now, groups: list | None = groups) -> list:
            if groups is not None:
                server.receive_groups(groups, now)
            else:
                _feed(server, flight, now)
            while (item := server.next_event()) is not None:
                srv, event = item
                if isinstance(event, StreamReadable):
                    while True:
                        data, _fin = srv.recv_stream_data(event.stream_id)
                        state["received"] += len(data)
                        if not data:
                            break
            deadline = server.get_timer()
            if deadline is not None and now >= deadline:
                server.handle_timer(now)
            return server.datagrams_to_send(now)

        state["packets"] += len(flight)
        replies = functools.reduce(server_side, [0], None)
        _feed(client, [(data, s_addr) for data, _ in replies], now)
    return state["packets"]


def _callgrind(tree: str | None, security: str, megabytes: int,
               server_only: bool, gro: bool = False) -> tuple[int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        if server_only:
            cmd.append("--toggle-collect=functools_reduce")
        cmd += [sys.executable, __file__, "--child", security, str(megabytes),
                "gro" if gro else "list"]
        env = dict(os.environ)
        # repeatable counts: numpy's OpenBLAS worker threads spin under
        # valgrind and are counted, and string hashing changes with the seed
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        env.setdefault("PYTHONHASHSEED", "0")
        if tree:
            env["PYTHONPATH"] = tree
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        packets = int(re.findall(r"packets=(\d+)", result.stdout)[-1])
        with open(out) as f:
            text = f.read()
        found = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
        if found is None:
            raise RuntimeError("no callgrind totals")
        return int(found.group(1)), packets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--security", default="none", choices=["none", "noise"])
    parser.add_argument("--megabytes", type=int, default=5)
    parser.add_argument("--tree", default=None, help="another checkout (PYTHONPATH)")
    parser.add_argument("--gro", action="store_true",
                        help="flights reach the server as GRO buffers (receive_groups)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        packets = transfer(args.child[0], int(args.child[1]), args.child[2] == "gro")
        print(f"packets={packets}")
        return 0
    small, big = args.megabytes, 3 * args.megabytes
    total_a, packets_a = _callgrind(args.tree, args.security, small, False, args.gro)
    total_b, packets_b = _callgrind(args.tree, args.security, big, False, args.gro)
    server_a, _ = _callgrind(args.tree, args.security, small, True, args.gro)
    server_b, _ = _callgrind(args.tree, args.security, big, True, args.gro)
    packets = packets_b - packets_a
    total = (total_b - total_a) / packets
    server = (server_b - server_a) / packets
    print(json.dumps({
        "benchmark": "instructions_per_packet",
        "security": args.security,
        "feed": "gro" if args.gro else "datagrams",
        "tree": args.tree or "this checkout",
        "data_packets": packets,
        "instructions_per_packet": round(total),
        "server_receive_side": round(server),
        "client_send_side": round(total - server),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
