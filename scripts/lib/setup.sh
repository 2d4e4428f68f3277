# Shared by scripts/test.sh and scripts/sample.sh: installs what is missing on a
# Debian 12 machine (as root) and checks the Swift toolchain. Sourced, not run.

# Debian packages the build and the tests need.
MYROOM_PACKAGES=(pkg-config libjpeg62-turbo-dev libpng-dev libcurl4-openssl-dev
                 libopenblas-dev librabbitmq-dev)

myroom_install() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "==> installing ${missing[*]}"
        if [[ $(id -u) -ne 0 ]]; then
            echo "error: missing Debian packages (${missing[*]}); run as root or install them first" >&2
            return 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

myroom_check_swift() {
    if ! command -v swift >/dev/null 2>&1; then
        for d in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
            [[ -x $d/swift ]] && export PATH="$d:$PATH" && break
        done
    fi
    if ! command -v swift >/dev/null 2>&1; then
        echo "error: no Swift toolchain on PATH. Install Swift 6.x for Debian 12 from swift.org" \
             "(or swiftly) and run this again." >&2
        return 1
    fi
}

# Starts a local RabbitMQ (Debian's rabbitmq-server) unless one already answers.
myroom_start_rabbitmq() {
    if rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
        echo "==> RabbitMQ already running"
        return 0
    fi
    echo "==> starting RabbitMQ"
    rabbitmq-server -detached
    local i
    for ((i = 0; i < 120; i++)); do
        rabbitmq-diagnostics -q ping >/dev/null 2>&1 && break
        sleep 1
    done
    rabbitmqctl await_startup --timeout 120 >/dev/null
    echo "==> RabbitMQ is up"
}
