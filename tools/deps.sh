#!/usr/bin/env bash
# Installs Ringkeeper's build and test dependencies on Debian 12. When every
# package is already installed it touches neither apt nor the network, so a
# second run is fast and works offline.
set -euo pipefail

pkgs=(build-essential cmake pkg-config clang liburing-dev libjemalloc-dev
      libxxhash-dev libcriterion-dev libssl-dev python3 python3-kazoo
      python3-prometheus-client
      zookeeper libzookeeper-mt-dev default-jre-headless gnuplot-nox procps)

missing=()
for p in "${pkgs[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[[ $status == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
	exit 0
fi

echo "deps.sh: installing ${missing[*]}" >&2
sudo=()
if ((EUID != 0)); then
	command -v sudo >/dev/null || { echo "deps.sh: need root or sudo" >&2; exit 1; }
	sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
