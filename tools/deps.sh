#!/bin/sh
# Install what a fresh Debian machine lacks to build and test weft: a C
# compiler, cmake, make. Does nothing when all are present.
missing=""
command -v cc >/dev/null 2>&1 || missing="$missing gcc"
command -v cmake >/dev/null 2>&1 || missing="$missing cmake"
command -v make >/dev/null 2>&1 || missing="$missing make"
[ -z "$missing" ] && exit 0
echo "weft: installing$missing" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo=sudo
$sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
