# stagewatch: `make demo` and `make test` set everything up from a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SW := $(VENV)/bin/stagewatch
# gcc and the Python headers build the compiled packet core (sensor/_core.pyx) on install; without
# them the package still installs and the Python reference core runs (slower; one warning line says so)
APT_PKGS_RUN := libmagic1 gcc python3-dev
# zip (ZipCrypto test archives), libarchive-tools (bsdtar reads our RAR test archives), tshark (the reference
# peer for --objects and for the crafted protocol captures), iproute2 + tcpreplay + tcpdump (live capture tests in
# a network namespace; scapy compiles --bpf with tcpdump), postgresql (a throwaway server for the store
# tests), chromium (headless: tests/test_report.py renders the HTML report, reads its DOM, takes a
# screenshot), dovecot (IMAP and POP3 tests), iodine (a real DNS tunnel, tests/test_dns_tunnel.py), samba and
# smbclient (a real SMB server and client, tests/test_smb.py), dnsmasq-base and busybox (a real DHCP server and
# client, tests/test_identity.py), openssl, gnupg, age and 7zip (encrypted files made by the real tools,
# tests/test_encrypted.py), yara (bench peer)
APT_PKGS_TEST := libmagic1 gcc python3-dev zip libarchive-tools tshark iproute2 tcpreplay tcpdump postgresql chromium \
  dovecot-imapd dovecot-pop3d iodine samba smbclient dnsmasq-base busybox openssl gnupg age 7zip
APT_PKGS_BENCH := libmagic1 yara

BENCH_DATA ?= /tmp/swbench
.PHONY: demo test bench bench-quick sanitize fuzz clean sysdeps-run sysdeps-test sysdeps-bench sysdeps-suricata

define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi; \
	fi
endef

sysdeps-run:
	$(call apt_install,$(APT_PKGS_RUN))
sysdeps-test:
	$(call apt_install,$(APT_PKGS_TEST))
	@$(MAKE) --no-print-directory sysdeps-suricata

# Suricata 7 (tests/test_bridge_suricata.py runs the real one over crafted captures): Debian 12 ships it in
# bookworm-backports only, which this adds as a source; elsewhere the distribution's package
sysdeps-suricata:
	@command -v suricata >/dev/null 2>&1 || { \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  if grep -q '^12' /etc/debian_version 2>/dev/null; then \
	    echo "installing suricata from bookworm-backports"; \
	    echo "deb http://deb.debian.org/debian bookworm-backports main" | $$sudo tee /etc/apt/sources.list.d/stagewatch-backports.list >/dev/null; \
	    $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports suricata >/dev/null; \
	  else \
	    $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq suricata >/dev/null || \
	      echo "suricata not installed: tests/test_bridge_suricata.py skips"; \
	  fi; }
sysdeps-bench:
	$(call apt_install,$(APT_PKGS_BENCH))

# the runtime alone for the demo (what `pip install .` gives a user); the test extras on top for make test
$(VENV)/.ok-run: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.ok: $(VENV)/.ok-run
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# the compiled core again whenever its Cython sources change (pip install -e builds it in place)
CORE_SRC := $(wildcard sensor/*.pyx sensor/*.pxd sensor/*.pxi)
$(VENV)/.ok-core: $(VENV)/.ok-run $(CORE_SRC)
	$(PY) -m pip install -q --no-deps -e .
	touch $@

demo: sysdeps-run $(VENV)/.ok-run $(VENV)/.ok-core
	$(PY) samples/make_staged.py samples/staged
	$(PY) pcaps/make_samples.py pcaps/samples
	$(PY) samples/make_hostevents.py samples/telemetry samples/staged
	rm -f samples/demo.db* samples/demo*.jsonl samples/demo-report.html
	$(SW) scan samples/staged pcaps/samples samples/telemetry/*.log samples/telemetry/*.xml --db samples/demo.db --jsonl samples/demo.jsonl \
	  --flows samples/demo-flows.jsonl --objects samples/demo-objects.jsonl --host-from-path '/staged/([^/]+)/' \
	  --home-net 10.0.0.0/8,2001:db8::/48
	$(SW) correlate --db samples/demo.db --host-map samples/telemetry/host-map.csv --jsonl samples/demo-incidents.jsonl
	$(SW) report --output samples/demo-report.html --db samples/demo.db
	@echo "findings: samples/demo.jsonl; flows: samples/demo-flows.jsonl; objects: samples/demo-objects.jsonl;" \
	  "incidents: samples/demo-incidents.jsonl; report: samples/demo-report.html; store: samples/demo.db" \
	  "(.venv/bin/stagewatch findings|flows|objects|host-findings|incidents|explain ID --db samples/demo.db)"

test: sysdeps-test $(VENV)/.ok $(VENV)/.ok-core
	$(VENV)/bin/ruff check sensor tests bench samples pcaps fuzz
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

# generated corpora (about 0.5 GB) go to BENCH_DATA, outside the repository
bench: sysdeps-bench $(VENV)/.ok $(VENV)/.ok-core
	$(call apt_install,tcpflow time)
	$(PY) bench/bench_detect.py $(BENCH_DATA)
	$(PY) bench/bench_fp.py $(BENCH_DATA)
	$(PY) bench/bench_net.py $(BENCH_DATA)-net
	$(PY) bench/bench_core.py $(BENCH_DATA)-net
	$(PY) bench/bench_flood.py $(BENCH_DATA)-flood
	$(PY) bench/bench_noise.py $(BENCH_DATA)-noise
	$(PY) bench/bench_dns.py $(BENCH_DATA)-dns
	$(PY) bench/bench_host.py $(BENCH_DATA)-host
	$(call apt_install,iproute2 tcpreplay util-linux)
	$(PY) bench/bench_live.py $(BENCH_DATA)-net
	$(PY) bench/bench_fleet.py $(BENCH_DATA)-net
	$(PY) bench/bench_tuning.py $(BENCH_DATA)-net
	$(PY) bench/bench_start.py $(BENCH_DATA)-start
bench-quick: sysdeps-bench $(VENV)/.ok $(VENV)/.ok-core
	$(call apt_install,tcpflow time)
	$(PY) bench/bench_detect.py $(BENCH_DATA) --quick
	$(PY) bench/bench_fp.py $(BENCH_DATA) --quick
	$(PY) bench/bench_net.py $(BENCH_DATA)-net --quick
	$(PY) bench/bench_core.py $(BENCH_DATA)-net --quick
	$(PY) bench/bench_flood.py $(BENCH_DATA)-flood --quick
	$(PY) bench/bench_noise.py $(BENCH_DATA)-noise --quick
	$(PY) bench/bench_dns.py $(BENCH_DATA)-dns --quick
	$(PY) bench/bench_host.py $(BENCH_DATA)-host --quick
	$(call apt_install,iproute2 tcpreplay util-linux)
	$(PY) bench/bench_live.py $(BENCH_DATA)-net --quick
	$(PY) bench/bench_fleet.py $(BENCH_DATA)-net --quick
	$(PY) bench/bench_tuning.py $(BENCH_DATA)-net --quick
	$(PY) bench/bench_start.py $(BENCH_DATA)-start --quick

# The compiled core built by clang with AddressSanitizer and UBSan, the network tests and the real captures run
# on it (CPython itself is not instrumented: the ASan runtime is preloaded, PYTHONMALLOC=malloc makes every
# object a malloc block ASan can see), then a test-only one-byte over-read must abort: the flags applied.
# The normal build is restored at the end.
SAN_ENV = LD_PRELOAD=$$(clang -print-file-name=libclang_rt.asan-x86_64.so) PYTHONMALLOC=malloc \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 STAGEWATCH_SANITIZED=1
sanitize: sysdeps-test $(VENV)/.ok
	$(call apt_install,clang)
	rm -f sensor/_core.c sensor/_core.*.so sensor/_flow.c sensor/_flow.*.so
	CC=clang LDSHARED="clang -shared" STAGEWATCH_SANITIZE=1 $(PY) -m pip install -q --no-deps --force-reinstall -e .
	status=0; $(SAN_ENV) $(PY) -m pytest -p no:cacheprovider tests/test_core_diff.py tests/test_decode.py \
	  tests/test_network.py tests/test_reassembly.py tests/test_real_captures.py tests/test_sanitizer.py \
	  tests/test_flow_diff.py tests/test_chunker.py tests/test_capture.py || status=$$?; \
	rm -f sensor/_core.c sensor/_core.*.so sensor/_flow.c sensor/_flow.*.so; \
	$(PY) -m pip install -q --no-deps --force-reinstall -e . && touch $(VENV)/.ok-core; exit $$status

# Every fuzz target (fuzz/targets.py) for FUZZ_SECONDS each under atheris, the compiled core built by clang with
# ASan, UBSan and libFuzzer's coverage instrumentation and run with atheris' ASan runtime preloaded. Seeds come
# from fuzz/seeds.py, fuzz/corpus/ (regressions) and what earlier runs kept in FUZZ_DIR; a failing input is left
# in FUZZ_DIR as crash-*, timeout-* or oom-* (copy it into fuzz/corpus/<target>/ with its fix). The normal
# build is restored at the end.
FUZZ_SECONDS ?= 60
FUZZ_DIR ?= $(BENCH_DATA)-fuzz
FUZZ_ENV = LD_PRELOAD=$$($(PY) -c 'import atheris; print(atheris.path())')/asan_with_fuzzer.so PYTHONMALLOC=malloc \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
fuzz: sysdeps-test $(VENV)/.ok
	$(call apt_install,clang)
	rm -f sensor/_core.c sensor/_core.*.so sensor/_flow.c sensor/_flow.*.so
	CC=clang LDSHARED="clang -shared" STAGEWATCH_SANITIZE=fuzz $(PY) -m pip install -q --no-deps --force-reinstall -e .
	$(PY) fuzz/seeds.py $(FUZZ_DIR)/seeds
	status=0; for t in $$($(PY) fuzz/run.py list); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t; \
	  $(FUZZ_ENV) $(PY) fuzz/run.py $$t $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/seeds/$$t $$(ls -d fuzz/corpus/$$t 2>/dev/null) \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=1 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_DIR)/$$t- > $(FUZZ_DIR)/$$t.log 2>&1 || status=1; \
	  echo "$$t: $$(grep -h 'stat::number_of_executed_units' $(FUZZ_DIR)/$$t.log | tr -s ' ' | cut -d' ' -f2) runs," \
	    "$$(grep -ho 'cov: [0-9]*' $(FUZZ_DIR)/$$t.log | tail -1), $$(ls $(FUZZ_DIR) | grep -c "^$$t-") failing inputs"; \
	done; \
	rm -f sensor/_core.c sensor/_core.*.so sensor/_flow.c sensor/_flow.*.so; \
	$(PY) -m pip install -q --no-deps --force-reinstall -e . && touch $(VENV)/.ok-core; exit $$status

clean:
	rm -rf $(VENV) .pytest-tmp build samples/staged samples/demo.db* samples/demo*.jsonl pcaps/samples sensor/_core.c sensor/_core.*.so sensor/_flow.c sensor/_flow.*.so
