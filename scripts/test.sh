#!/usr/bin/env bash
# Installs what is missing (Debian 12, as root), starts the services the tests need
# and runs every test. CI runs exactly this (.ci/run).
#   - RabbitMQ: Debian's rabbitmq-server on 127.0.0.1:5672 (guest/guest).
#   - HTTP: the worker tests serve their image fixtures from an HTTP server they start
#     on 127.0.0.1 (an ephemeral port), so nothing needs starting here for that.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/setup.sh

# socat + openssl: the AMQP tests put a TLS front and a freezable relay in front of the broker.
myroom_install "${MYROOM_PACKAGES[@]}" rabbitmq-server socat openssl
myroom_check_swift
myroom_start_rabbitmq
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"

echo "==> building"
swift build --build-tests
echo "==> testing"
swift test --skip-build "$@"
