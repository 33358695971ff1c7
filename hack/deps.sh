#!/usr/bin/env bash
# Installs the Debian packages the test environment needs, when missing.
# As root it runs apt-get; otherwise it prints the command and fails.
set -euo pipefail
# The real node (internal/testenv/realnode.go) adds containerd with its
# runc shim, runc, the CNI plugins, and busybox-static for the test pods'
# image.
pkgs=(etcd-server glusterfs-server glusterfs-client attr golang-github-lpabon-godbc-dev iproute2 util-linux mount fuse3
  containerd runc containernetworking-plugins busybox-static)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "install them as root:  $cmd" >&2
  exit 1
fi
echo "installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
