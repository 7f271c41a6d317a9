# deskstream: `make run` starts everything locally; `make test` runs the whole suite.
# Each target installs what it needs: the virtual environment (.venv/), the Kafka
# broker's jars from Maven Central (kafka/lib/), and Debian packages where missing.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
APT_UPDATED := /tmp/.deskstream-apt-updated

.PHONY: run test test-fast audit lock chaos fuzz bench kafka-fetch venv java-maven system-test-deps deploy-tools clean help

help:
	@echo "make run     start a local Apache Kafka and the four services (Ctrl-C stops all)"
	@echo "make test    install what the tests need, run make audit, then the whole suite"
	@echo "make audit   the supply-chain checks: the venv is exactly requirements.lock, pip-audit finds no"
	@echo "             unjustified known vulnerability in it, bandit none in the code (security/audit.py;"
	@echo "             exceptions with their reasons in security/audit-exceptions.toml). Needs PyPI's JSON API"
	@echo "             (AUDIT_SERVICE=osv: api.osv.dev); a package it skips is audited from PyPI's project JSON"
	@echo "             when pinned at its latest release, else fails unless excused in [[unaudited]];"
	@echo "             a source it cannot reach fails it rather than pass"
	@echo "make lock    pin every package of the environment anew in requirements.lock (after pyproject.toml changes)"
	@echo "make chaos   the long chaos runs: 10,000 contacts through every entry point while each service is"
	@echo "             SIGKILLed and the broker restarted; 80 random restarts of the hops; checked record by record"
	@echo "make fuzz    the long property-based run of the intake parsers (tests/fuzz, HYPOTHESIS_PROFILE=fuzz)"
	@echo "make bench   benchmarks (figures as ratios against a baseline measured in the same run)"

# Installed with requirements.lock as constraints: every package at the version the lock
# pins (pip and setuptools too), so that what `make audit` audits is what runs.
$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "deskstream needs Python 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c requirements.lock pip setuptools
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test,audit]'
	touch $@

venv: $(BIN)/.installed

$(APT_UPDATED):
	apt-get update -qq
	touch $@

# Java 17 and Maven run and fetch the broker; installed from Debian's packages if missing.
java-maven:
	@command -v java >/dev/null && command -v mvn >/dev/null || \
	  { $(MAKE) $(APT_UPDATED) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless maven; }

kafka/lib/.fetched: kafka/pom.xml
	$(MAKE) java-maven
	rm -rf kafka/lib
	mvn -q -B -f kafka/pom.xml dependency:copy-dependencies
	touch $@

kafka-fetch: kafka/lib/.fetched

# Tests also need a real browser (Debian's chromium, driven by Playwright) and a real
# IMAP server (Debian's Dovecot; the tests run their own, never the system's).
system-test-deps:
	@test -x /usr/bin/chromium || \
	  { $(MAKE) $(APT_UPDATED) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	@test -x /usr/sbin/dovecot || \
	  { $(MAKE) $(APT_UPDATED) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd; }

run: venv kafka-fetch
	$(BIN)/deskstream up

# What tests/deploy validates the compose file and the Kubernetes manifests with:
# kustomize, the Compose schema and the CRDs of Strimzi, KEDA and the Prometheus
# Operator, each from a registry at a pinned version (deploy/tools/fetch).
.tools/.fetched: deploy/tools/fetch deploy/tools/pom.xml $(BIN)/.installed
	$(MAKE) java-maven
	PYTHON=$(BIN)/python deploy/tools/fetch .tools

deploy-tools: .tools/.fetched

test: venv audit kafka-fetch system-test-deps deploy-tools
	$(BIN)/pytest

# Supply chain (README, Security): security/audit.py checks that the venv is exactly
# requirements.lock, runs pip-audit on the lock (AUDIT_SERVICE: pypi, or osv), audits what
# pip-audit skipped from PyPI's project JSON (latest releases only; a package held back
# behind it needs an [[unaudited]] reason), and runs bandit on deskstream/, services/ and
# bench/. A vulnerability source it cannot reach fails it.
AUDIT_SERVICE ?= pypi
audit: venv
	$(BIN)/python security/audit.py $(AUDIT_SERVICE)

# requirements.lock anew: pyproject.toml's extras resolved to the newest releases that
# satisfy its pins, in a throwaway venv, every package frozen (pip and setuptools too).
lock:
	rm -rf $(VENV)-lock
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install --quiet --upgrade pip setuptools
	$(VENV)-lock/bin/pip install --quiet -e '.[test,audit]'
	{ echo "# Every package of deskstream's environment (.[test,audit]) at an exact version, pip and"; \
	  echo "# setuptools included. Written by make lock; not edited by hand. make venv installs with it"; \
	  echo "# as constraints, the Dockerfile too; make audit checks the venv against it and audits it."; \
	  $(VENV)-lock/bin/pip freeze --all --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
	rm -rf $(VENV)-lock

# The tests that need no broker, browser or service: seconds.
test-fast: venv
	$(BIN)/pytest tests/unit tests/contract

# The long chaos runs, each checked record by record (README, Reliability):
# - tests/delivery/contact_chaos.py: 10,000 contacts through the chat API, Twilio's webhook
#   and the mailbox while each service is SIGKILLed and the broker restarted; every
#   contact one ticket, every acknowledgement counted once where the customer gets it.
#   CONTACT_CHAOS_ARGS="--contacts N --rate N --seed N". About 15 minutes.
# - tests/delivery/pipeline_chaos.py: 80 random SIGTERM/SIGKILL restarts, every hop and
#   table checked. On KAFKA_BOOTSTRAP_SERVERS if set. CHAOS_ARGS="--contacts N --restarts N
#   --seed N". About 10 minutes.
chaos: venv kafka-fetch system-test-deps
	PYTHONPATH=. $(BIN)/python -m tests.delivery.contact_chaos $(CONTACT_CHAOS_ARGS)
	PYTHONPATH=. $(BIN)/python -m tests.delivery.pipeline_chaos $(CHAOS_ARGS)

# The property-based tests of the intake parsers (tests/fuzz) with about 80 times the
# examples `make test` runs, random ones: about half an hour.
fuzz: venv
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/fuzz -q

# Benchmarks: speed is measured here, never asserted in tests.
bench: venv kafka-fetch system-test-deps
	PYTHONPATH=. $(BIN)/python -m bench.hop_throughput $(BENCH_ARGS)
	PYTHONPATH=. $(BIN)/python -m bench.mail_intake
	PYTHONPATH=. $(BIN)/python -m bench.sms_webhook
	PYTHONPATH=. $(BIN)/python -m bench.routing
	PYTHONPATH=. $(BIN)/python -m bench.notices
	PYTHONPATH=. $(BIN)/python -m bench.masking
	PYTHONPATH=. $(BIN)/python -m bench.load $(BENCH_LOAD_ARGS)

clean:
	rm -rf .data .pytest_cache .tools
