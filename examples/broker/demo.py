"""Run the broker, a producer and two consumers as separate processes.

One consumer starts before the producer (live delivery), one after it has
finished (retained messages): producers and consumers never meet.

    python examples/broker/demo.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
COUNT = 500


def main() -> int:
    with tempfile.TemporaryDirectory() as key_dir:
        env = dict(os.environ, BROKER_KEY_DIR=key_dir)
        broker = subprocess.Popen(
            [sys.executable, str(HERE / "broker.py"), "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert broker.stdout is not None
            banner = broker.stdout.readline()  # "broker listening on HOST:PORT"
            port = banner.strip().rsplit(":", 1)[1]
            common = ["--port", port, "--topic", "demo", "--count", str(COUNT)]
            early = subprocess.Popen(
                [sys.executable, str(HERE / "consumer.py"), *common, "--quiet"],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            produced = subprocess.run(
                [sys.executable, str(HERE / "producer.py"), *common],
                capture_output=True,
                text=True,
                env=env,
                timeout=30,
            )
            print(produced.stdout.strip(), produced.stderr.strip())
            late = subprocess.run(
                [sys.executable, str(HERE / "consumer.py"), *common, "--quiet"],
                capture_output=True,
                text=True,
                env=env,
                timeout=30,
            )
            early_out, _ = early.communicate(timeout=30)
            print("early consumer:", early_out.strip())
            print("late consumer: ", late.stdout.strip(), late.stderr.strip())
            expected = f"received {COUNT} messages from 'demo' (seq [0]..[{COUNT - 1}])"
            ok = (
                produced.returncode == 0
                and early_out.strip() == expected
                and late.stdout.strip() == expected
            )
        finally:
            broker.send_signal(signal.SIGINT)
            broker.wait(timeout=10)
    print("ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
