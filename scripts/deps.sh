#!/bin/sh
# Installs from Debian every package the build, the demo network and the tests need.
# Idempotent: packages already installed are skipped, and apt is not touched at all when
# nothing is missing.
set -eu

PKGS="
build-essential g++ make pkg-config dpkg-dev
libxml2-dev libhiredis-dev libcurl4-openssl-dev libssl-dev
googletest libgtest-dev clang libclang-rt-14-dev
kamailio kamailio-presence-modules kamailio-postgres-modules kamailio-sqlite-modules
kamailio-lua-modules kamailio-radius-modules kamailio-tls-modules openssl
redis-server sip-tester freeradius freeradius-utils wrk
baresip-core linphone-cli
python3 python3-pytest python3-lxml
postgresql
"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# The packaged services must not start at install time: the demo and the tests start their own
# instances on the project's ports.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -q --no-install-recommends $missing
