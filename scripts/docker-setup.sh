#!/usr/bin/env bash
# A Docker engine and a base image on a machine where nothing can be pulled (CI, DESIGN.md 9).
#
#   1. installs docker.io and debootstrap from Debian's apt when missing;
#   2. starts dockerd when `docker info` fails (no systemd: in the background, log in
#      $DOCKERD_LOG; no bridge and no iptables, so containers use --network host or none;
#      overlay2, else vfs);
#   3. builds the base image $BASE_IMAGE once: debootstrap (minbase, bookworm, python3 and
#      python3-venv) -> a rootfs tarball cached in $CACHE_DIR -> `docker import`. Later runs reuse
#      the image, or the tarball when the image is gone;
#   4. proves a container starts (`docker run --network none $BASE_IMAGE python3 --version`).
#
# Idempotent; exits non-zero with the reason when Docker cannot be made to work here. Then:
#   make image BASE_IMAGE=streamjob-base:bookworm
#   STREAMJOB_REQUIRE_DOCKER=1 .venv/bin/pytest -m docker tests/deploy
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-streamjob-base:bookworm}
SUITE=${SUITE:-bookworm}
CACHE_DIR=${CACHE_DIR:-/var/cache/streamjob}
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/streamjob-dockerd.log}
ROOTFS_TAR="$CACHE_DIR/rootfs-$SUITE.tar"
PATH_IN_IMAGE=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "docker-setup: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
engine_up() { docker info >/dev/null 2>&1; }

mirror() {  # the Debian mirror apt already uses (deb822 or one-line sources)
    local found
    found=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
        /etc/apt/sources.list.d/*.list | grep -oE 'https?://[^ ]+/debian/?' \
        | grep -v security | head -n 1 || true)
    echo "${found:-http://deb.debian.org/debian}"
}

install_packages() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]} from apt"
    as_root apt-get update -q >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >/dev/null
}

start_dockerd() {
    engine_up && return 0
    local driver pid launcher=()
    if [ -s /var/run/docker.pid ] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
        die "dockerd runs (pid $(cat /var/run/docker.pid)) but 'docker info' fails: $(docker info 2>&1 | tail -n 1)"
    fi
    [ "$(id -u)" = 0 ] || launcher=(sudo -n)
    for driver in overlay2 vfs; do
        say "starting dockerd (storage driver $driver), log in $DOCKERD_LOG"
        as_root mkdir -p "$(dirname "$DOCKERD_LOG")"
        # setsid + nohup: the daemon outlives this script and the CI step that ran it
        "${launcher[@]}" setsid nohup dockerd --iptables=false --ip6tables=false --bridge=none \
            --storage-driver="$driver" >>"$DOCKERD_LOG" 2>&1 </dev/null &
        pid=$!
        for _ in $(seq 60); do
            engine_up && return 0
            kill -0 "$pid" 2>/dev/null || break
            sleep 1
        done
        say "dockerd with $driver did not come up; last log lines:"
        tail -n 5 "$DOCKERD_LOG" >&2 || true
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    die "dockerd does not start on this machine (see $DOCKERD_LOG)"
}

build_rootfs_tarball() {
    local rootfs="$CACHE_DIR/rootfs-$SUITE.tmp" started=$SECONDS
    as_root mkdir -p "$CACHE_DIR"
    as_root rm -rf "$rootfs"
    say "debootstrap $SUITE from $(mirror) (about a minute)"
    as_root debootstrap --variant=minbase --include=python3,python3-venv \
        "$SUITE" "$rootfs" "$(mirror)" >"$CACHE_DIR/debootstrap.log" 2>&1 \
        || die "debootstrap failed, see $CACHE_DIR/debootstrap.log"
    # what an image does not need: package caches and lists, docs, man pages, locales
    as_root rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* \
        "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old
    as_root tar --numeric-owner -C "$rootfs" -cf "$ROOTFS_TAR.tmp" .
    as_root mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
    as_root rm -rf "$rootfs"
    say "rootfs tarball $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1)) in $((SECONDS - started))s"
}

import_base_image() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        say "base image $BASE_IMAGE is there"
        return 0
    fi
    [ -s "$ROOTFS_TAR" ] || build_rootfs_tarball
    say "docker import $ROOTFS_TAR as $BASE_IMAGE"
    docker import --change "ENV PATH=$PATH_IN_IMAGE" --change "ENV LANG=C.UTF-8" \
        --change 'CMD ["python3"]' "$ROOTFS_TAR" "$BASE_IMAGE" >/dev/null
}

main() {
    install_packages || die "could not install docker.io/debootstrap with apt-get"
    start_dockerd
    (
        # one builder at a time (several checkouts may set up at once)
        as_root mkdir -p "$CACHE_DIR"
        exec 9>"$CACHE_DIR/setup.lock"
        flock 9
        import_base_image
    )
    docker run --rm --network none "$BASE_IMAGE" python3 --version >/dev/null \
        || die "the engine is up but cannot run a container of $BASE_IMAGE (see $DOCKERD_LOG)"
    say "ready: engine $(docker version --format '{{.Server.Version}}'), base image $BASE_IMAGE"
}

main "$@"
