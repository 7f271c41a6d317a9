# deskstream: `make run` starts everything locally; `make test` runs the whole suite.
# Each target installs what it needs: the virtual environment (.venv/), the Kafka
# broker's jars from Maven Central (kafka/lib/), and Debian packages where missing.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
APT_UPDATED := /tmp/.deskstream-apt-updated

.PHONY: run test test-fast chaos fuzz bench kafka-fetch venv java-maven system-test-deps deploy-tools clean help

help:
	@echo "make run     start a local Apache Kafka and the four services (Ctrl-C stops all)"
	@echo "make test    install what the tests need and run the whole suite"
	@echo "make chaos   the long chaos runs: 10,000 contacts through every entry point while each service is"
	@echo "             SIGKILLed and the broker restarted; 80 random restarts of the hops; checked record by record"
	@echo "make fuzz    the long property-based run of the intake parsers (tests/fuzz, HYPOTHESIS_PROFILE=fuzz)"
	@echo "make bench   benchmarks (figures as ratios against a baseline measured in the same run)"

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "deskstream needs Python 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
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

test: venv kafka-fetch system-test-deps deploy-tools
	$(BIN)/pytest

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
	PYTHONPATH=. $(BIN)/python -m bench.load $(BENCH_LOAD_ARGS)

clean:
	rm -rf .data .pytest_cache .tools
