# The project's commands. Each creates or reuses .venv and installs the package
# (building the C extension) before it runs, so they work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-install
SOURCES := pyproject.toml setup.py $(wildcard csrc/*.c csrc/*.h csrc/*.py)

.PHONY: install test bench bench-loopback bench-wire bench-core bench-sim lint sanitize clean \
	fuzz fuzz-ci soak soak-ci
# Connection-level tests that run a second time on the pure-Python codec.
PURE_TESTS := tests/test_connection_scripted.py tests/test_connection_api.py tests/test_cli.py

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) $(SOURCES)
	$(PY) -m pip install --quiet -e '.[test,dev,scapy,plot]'
	touch $(STAMP)

install: $(STAMP)

# The whole suite on the native codec (codec tests compare both backends), then
# the connection-level tests again with TRANSPORT_BACKEND=pure.
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider --ignore=tests/test_emulate.py tests
	TRANSPORT_BACKEND=pure $(PY) -m pytest -q -p no:cacheprovider $(wildcard $(PURE_TESTS))

# The main job: `transport bench` on loopback with kernel TCP and aioquic
# measured in the same invocation (installs the `bench` extra for aioquic).
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m transport bench --compare tcp,aioquic,kcp

# Medians of >= 3 runs per case (ours encrypted / none, TCP, aioquic) as JSON.
bench-loopback: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/bench_loopback.py

bench-wire: $(STAMP)
	$(PY) benchmarks/bench_wire.py

bench-core: $(STAMP)
	$(PY) benchmarks/bench_core.py

bench-sim: $(STAMP)
	$(PY) benchmarks/bench_sim.py

lint: $(STAMP)
	$(VENV)/bin/ruff check transport tests benchmarks
	$(VENV)/bin/mypy

# C-facing tests against a build of the native module with AddressSanitizer + UBSan.
# PYTHONMALLOC=malloc makes every Python buffer a separate malloc block, so ASan
# sees reads past the end of bytes/bytearray inputs; any sanitizer report aborts
# the run (exit status != 0). --capture=sys keeps the report on the terminal.
SAN_RUNTIMES = $$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)
sanitize: $(STAMP)
	rm -rf build/sanitize
	TRANSPORT_SANITIZE=1 $(PY) csrc/ffi_build.py build/sanitize
	TRANSPORT_SANITIZE=1 $(PY) csrc/fec_build.py build/sanitize-fec
	PYTHONMALLOC=malloc \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	LD_PRELOAD="$(SAN_RUNTIMES)" \
	TRANSPORT_NATIVE_PATH=build/sanitize TRANSPORT_FEC_PATH=build/sanitize-fec \
	HYPOTHESIS_PROFILE=sanitize \
	$(PY) -m pytest -q --capture=sys -p no:cacheprovider \
		tests/test_wire_native.py tests/test_wire_malformed.py tests/test_wire_fastpath.py \
		tests/test_aead_native.py tests/test_crypto_aead.py tests/test_seal_run.py \
		tests/test_fec_code.py

clean:
	rm -rf build $(VENV) *.egg-info transport/_native*.so transport/_native.c

.PHONY: bench-simulator
# Simulator speed: 50 Mbit/s, 50 ms RTT, 1 % loss, 60 s of virtual time (JSON).
bench-simulator: $(STAMP)
	$(PY) benchmarks/bench_simulator.py --out benchmarks/results/simulator.json


.PHONY: bench-emulated bench-relay
# Ours vs kernel TCP cubic/bbr over the identical emulated path (Linux, root):
# 50 Mbit/s, 50 ms RTT, loss 0..10 %, median of 3 seeds; JSON + PNG (~13 minutes).
bench-emulated: $(STAMP)
	$(PY) benchmarks/bench_emulated.py --out benchmarks/results/emulated.json \
		--plot benchmarks/results/emulated.png

# CPU share of the emulator's relay at 100 Mbit/s (bound: < 40 % of a core); JSON.
bench-relay: $(STAMP)
	$(PY) benchmarks/bench_relay.py --out benchmarks/results/emulated_relay.json

# Coverage-guided fuzzing (docs/reliability.md): the libFuzzer C harness over the
# decoders (clang, ASan+UBSan) and atheris over the codec (native vs pure) and
# Connection.receive_datagram, FUZZ_SECONDS each, side by side. Prints
# executions and crashes per target; new coverage is merged into tests/corpus.
FUZZ_SECONDS ?= 600
fuzz: $(STAMP)
	PY=$(PY) bash fuzz/run.sh $(FUZZ_SECONDS) full

# The CI version: 60 s, atheris on the ASan/UBSan build of the native module.
fuzz-ci: $(STAMP)
	PY=$(PY) bash fuzz/run.sh 60 ci

# 200 connections x 10 minutes through the impairment relay at 5 % loss.
soak: $(STAMP)
	$(PY) benchmarks/soak.py --connections 200 --duration 600 --out benchmarks/results/soak.json

# The 60-second CI version.
soak-ci: $(STAMP)
	$(PY) benchmarks/soak.py --connections 200 --duration 60 --warmup 30 --max-rss-growth 15

# Fidelity checks over the kernel-path emulator (root; real kernel TCP and real
# time, so they are statistical: .ci/run retries the file once).
test-emulated: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/test_emulate.py
