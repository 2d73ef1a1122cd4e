#!/usr/bin/env bash
# .ci/cross.sh - the stack-switch conformance test (tests/arch) on every
# ISA weft has a port for, from an x86_64 (or any Debian) host:
#
#   aarch64, riscv64   each assembly port, built static with the Debian
#                      cross compiler and run under qemu-user
#   host               the assembly port of the host, run natively
#   ucontext           switch_ucontext.c, natively and under qemu-user
#
# The test links only the switch and its register probes, so each build is
# one compiler call. Prints every run's TAP; exits non-zero if any build or
# run failed. Run from anywhere; builds into build/cross/. Installs missing
# tools with apt-get (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(qemu-user gcc-aarch64-linux-gnu gcc-riscv64-linux-gnu
    libc6-dev-arm64-cross libc6-dev-riscv64-cross)
missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
        grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    $sudo apt-get install -y -q "${missing[@]}"
fi

out=build/cross
mkdir -p "$out"
cflags=(-std=c11 -O2 -g -Wall -Wextra -Werror -fasynchronous-unwind-tables
    -Isrc/arch)
test_c=tests/arch/test_switch_regs.c
failed=()

# run NAME RUNNER... : run $out/NAME (under RUNNER, if given), show its TAP.
run() {
    local name=$1
    shift
    echo "== $name"
    if "$@" "$out/$name"; then
        echo "== $name: passed"
    else
        echo "== $name: FAILED"
        failed+=("$name")
    fi
}

# build NAME CC ISA SWITCH [EXTRA...] : one static test binary.
build() {
    local name=$1 cc=$2 isa=$3 switch=$4
    shift 4
    # EXTRA last: it may hold libraries, which a static link wants after
    # the objects that use them.
    if ! "$cc" -static "${cflags[@]}" -o "$out/$name" "$test_c" \
        "tests/arch/regs_$isa.S" "$switch" "$@"; then
        echo "== $name: BUILD FAILED"
        failed+=("$name (build)")
        return 1
    fi
}

uc=(src/arch/switch_ucontext.c -DWEFT_SWITCH_UCONTEXT -lm)

for isa in aarch64 riscv64; do
    cc=$isa-linux-gnu-gcc
    case $isa in
    aarch64) port=src/arch/switch_aarch64_aapcs_elf.S ;;
    riscv64) port=src/arch/switch_riscv64_lp64d_elf.S ;;
    esac
    build "switch-$isa" "$cc" "$isa" "$port" &&
        run "switch-$isa" "qemu-$isa"
    build "ucontext-$isa" "$cc" "$isa" "${uc[@]}" &&
        run "ucontext-$isa" "qemu-$isa"
done

host=$(uname -m)
case $host in
x86_64) port=src/arch/switch_x86_64_sysv_elf.S ;;
aarch64) port=src/arch/switch_aarch64_aapcs_elf.S ;;
riscv64) port=src/arch/switch_riscv64_lp64d_elf.S ;;
*) port= ;;
esac
if [ -n "$port" ]; then
    build "switch-host-$host" cc "$host" "$port" &&
        run "switch-host-$host"
    build "ucontext-host-$host" cc "$host" "${uc[@]}" &&
        run "ucontext-host-$host"
else
    echo "== host $host: no register probes, native runs skipped"
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "cross: FAILED: ${failed[*]}"
    exit 1
fi
echo "cross: all passed"
