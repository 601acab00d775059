#!/usr/bin/env bash
# Installs the system tools the test suite needs, when they are missing.
# Idempotent: when everything is present it does nothing (no apt-get update).
# Non-interactive; safe to run while another apt/dpkg process is running
# (it waits for the dpkg/apt locks instead of failing). A program named in
# SSEKIT_SKIP (chromium, nginx, redis) is not installed: its tests are skipped.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

# binary-check -> Debian package. A check is a command name or an absolute path.
need=(
	"redis-server:redis-server" # SSEKIT_SKIP name: redis
	"/usr/bin/chromium:chromium"
	"nginx:nginx"
	"node:nodejs"
	"gcc:gcc"             # go test -race needs cgo
	"fuser:psmisc"        # used below to wait for apt locks
)

have() {
	case $1 in
	/*) [ -x "$1" ] ;;
	*) command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ] ;;
	esac
}

# skipped PKG: the program's tests are left out by SSEKIT_SKIP (comma-separated
# chromium, nginx, redis; see internal/testenv), so it need not be installed.
skipped() {
	local name=$1 list=",${SSEKIT_SKIP:-},"
	[ "$name" = redis-server ] && name=redis
	[[ ${list// /} == *",$name,"* ]]
}

missing=()
for entry in "${need[@]}"; do
	bin=${entry%%:*}
	pkg=${entry#*:}
	if skipped "$pkg"; then
		echo "install-deps: $bin not needed (SSEKIT_SKIP=$SSEKIT_SKIP)"
	elif have "$bin"; then
		echo "install-deps: $bin present"
	else
		echo "install-deps: $bin missing -> will install $pkg"
		missing+=("$pkg")
	fi
done
# -race also needs the C library headers.
if have gcc && ! [ -e /usr/include/stdlib.h ]; then
	echo "install-deps: C headers missing -> will install libc6-dev"
	missing+=(libc6-dev)
fi

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: nothing to install"
	exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo -E"
	else
		echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
		exit 1
	fi
fi

# Wait (up to 20 min) while another apt/dpkg holds a lock. fuser may not exist
# yet; apt's own DPkg::Lock::Timeout below covers that case for dpkg.
wait_for_apt() {
	command -v fuser >/dev/null 2>&1 || return 0
	local i
	for ((i = 0; i < 240; i++)); do
		if ! $SUDO fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock \
			/var/lib/apt/lists/lock /var/cache/apt/archives/lock >/dev/null 2>&1; then
			return 0
		fi
		((i % 12 == 0)) && echo "install-deps: waiting for another apt/dpkg process to finish..."
		sleep 5
	done
	echo "install-deps: apt lock still held after 20 min" >&2
	return 1
}

APT=($SUDO apt-get -y -q -o DPkg::Lock::Timeout=1200)

wait_for_apt
echo "install-deps: apt-get update"
for try in 1 2 3; do
	"${APT[@]}" update && break
	[ "$try" = 3 ] && exit 1
	echo "install-deps: apt-get update failed, retrying ($try)"
	sleep 10
	wait_for_apt
done

wait_for_apt
echo "install-deps: apt-get install ${missing[*]}"
"${APT[@]}" install --no-install-recommends "${missing[@]}"

echo "install-deps: installed: ${missing[*]}"
