#!/usr/bin/env bash
# Installs what vkyolo needs to build, test and run on Debian 12. Idempotent, and quick when
# everything is already present (no apt-get update then). Needs root or sudo for apt-get.
set -euo pipefail

packages=(
	build-essential pkg-config meson ninja-build python3
	glslc libvulkan-dev libvulkan-volk-dev vulkan-validationlayers mesa-vulkan-drivers vulkan-tools
	libstb-dev libyaml-dev fonts-dejavu-core
	libsdl2-dev libavformat-dev libavcodec-dev libavutil-dev libswscale-dev
	xvfb xauth
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
	sudo=sudo
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
