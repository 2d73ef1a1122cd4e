# weft - top-level entry points (README.md, Quick start).
#
#   make run     configure, build (Release) and run the benchmark suite:
#                a readable table, then the BENCH lines
#   make test    the whole test suite in a normal build, an ASan+UBSan
#                build and a TSan build
#   make bench   the benchmarks beside the peers of ../shared/peers
#                (when present), with ratios
#   make report  run the benchmarks and the peers (when present) and write
#                docs/benchmarks.md with plots in docs/benchmarks/ (tools/
#                report.sh); REPORT_INPUT=FILE builds it from saved BENCH
#                lines instead, running nothing
#   make soak    build (Release) and run the soak, bench/soak.c, for
#                MINUTES minutes (default 1; fractions allowed)
#   make clean   remove the build trees
#
# Missing build tools are installed with apt-get when run as root (or with
# sudo); nothing else is downloaded.

JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE  ?= cmake
PEERS  ?= ../shared/peers
MINUTES ?= 1

.PHONY: run test test-normal test-asan test-tsan bench report soak clean deps

deps:
	@sh tools/deps.sh

build/bench/weft-bench: deps FORCE
	@$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	@$(CMAKE) --build build -j$(JOBS)

run: build/bench/weft-bench
	@./build/bench/weft-bench

# The weft-bench rule builds the whole Release tree, weft-soak included.
soak: build/bench/weft-bench
	@./build/bench/weft-soak --minutes $(MINUTES)

# Each build tree: configure, build, run CTest. TSan needs ASLR's higher
# entropy turned off on new kernels (setarch -R), which tools/ctest.sh does.
test: test-normal test-asan test-tsan
	@echo "make test: all three builds passed"

test-normal: deps
	@sh tools/ctest.sh build-test "" -DWEFT_DEBUG=ON

test-asan: deps
	@sh tools/ctest.sh build-asan address -DWEFT_DEBUG=ON

test-tsan: deps
	@sh tools/ctest.sh build-tsan thread -DWEFT_DEBUG=ON

bench: build/bench/weft-bench
	@if [ -x $(PEERS)/run.sh ] || [ -f $(PEERS)/run.sh ]; then \
	    { ./build/bench/weft-bench | grep '^BENCH'; \
	      bash $(PEERS)/run.sh; } | bash $(PEERS)/compare.sh; \
	else ./build/bench/weft-bench; fi

# With REPORT_INPUT nothing runs, so nothing is built.
report: $(if $(REPORT_INPUT),,build/bench/weft-bench)
	@PEERS='$(PEERS)' REPORT_INPUT='$(REPORT_INPUT)' bash tools/report.sh

clean:
	rm -rf build build-test build-asan build-tsan build-ucontext build-cross build-rel build-fuzz

FORCE:
