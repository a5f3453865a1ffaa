# One-command setup: every target creates .venv and installs the pinned
# dependencies when missing. A fresh machine needs only python3.11, make, gcc.
PYTHON      ?= python3.11
VENV        := .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed
# People who build the unix port themselves: make test MICROPYTHON=/path/to/micropython
MICROPYTHON ?= $(abspath $(BIN)/micropython)
export MICROPYTHON

# Real 32-bit MicroPython (float32, 31-bit small ints, ticks wrap at 2**30),
# built once from the pinned upstream source into build/ and reused after.
MP_PIN      := 1c3c201149f37fe8d81246191b3127bb198d6306
MP_LIB_PIN  := ee4bb8ff139e24c42b739935fbd8ec7c4d061e02
# The vendored tarball beside this checkout, or beside the repository it was
# cloned from (a clone made anywhere on the same machine); else the network.
MP_TARBALL_NAME := shared/vendor/micropython-1c3c2011.tar.gz
MP_ORIGIN   := $(shell git config --get remote.origin.url 2>/dev/null)
MP_TARBALL  ?= $(firstword $(wildcard ../$(MP_TARBALL_NAME) $(if $(MP_ORIGIN),$(MP_ORIGIN)/../$(MP_TARBALL_NAME))))
MP_DIR      := build/micropython
MP_UNPACKED := $(MP_DIR)/.unpacked
TOOLCHAIN   := build/.toolchain
ARCHIVE_DEPS := build/.archive-deps
MP_UNIX_OPTS := MICROPY_PY_BTREE=0 MICROPY_PY_FFI=0 MICROPY_PY_SSL=0 \
	CFLAGS_EXTRA="-m32 -DMICROPY_FLOAT_IMPL=MICROPY_FLOAT_IMPL_FLOAT" LDFLAGS_EXTRA=-m32
MICROPYTHON32 := $(abspath $(MP_DIR)/ports/unix/build-32f/micropython)
export MICROPYTHON32
# The emulated Cortex-M board: qemu port, MPS2_AN385 (Cortex-M3, float32),
# its heap the size of an RP2040's free heap, the firmware frozen in.
QEMU_HEAP   := 194560
QEMU_PATCH  := boards/qemu-mps2/qemu-port.patch
QEMU_ELF    := $(abspath $(MP_DIR)/ports/qemu/build-cryo/firmware.elf)
export QEMU_ELF QEMU_HEAP
FROZEN_SRC  := $(shell find firmware/cryo boards/sim boards/qemu-mps2 -name '*.py')
# micropython-lib modules the firmware requires, for what runs it from files
# (host_tools/mpylib.py; the board images freeze them with require()).
MPYLIB      := build/mpylib/.installed

.PHONY: all venv test test32 lint bench demo clean micropython32 qemu stress sbom

all: test

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP) $(MPYLIB)

$(MPYLIB): $(STAMP) $(MP_UNPACKED) host_tools/mpylib.py
	$(BIN)/python -m host_tools.mpylib
	@touch $@

lint: $(STAMP)
	$(BIN)/ruff check firmware host_tools boards tests bench
	$(BIN)/ruff format --check firmware host_tools boards tests bench

# The firmware tests (marker mpy) run a second time on the 32-bit float32
# build, beside the whole suite on the 64-bit port (two cores: the two runs
# take about as long as one); its report follows the suite's.
test: lint $(MPYLIB) $(MICROPYTHON32) $(QEMU_ELF) $(ARCHIVE_DEPS)
	@MICROPYTHON=$(MICROPYTHON32) $(BIN)/python -m pytest -m mpy -p no:cacheprovider -q \
	  > build/test32.log 2>&1 & p32=$$!; \
	$(BIN)/python -m pytest; rc=$$?; \
	wait $$p32; rc32=$$?; \
	echo "== firmware tests on the 32-bit float32 build ($(MICROPYTHON32)) =="; \
	cat build/test32.log; \
	test $$rc = 0 && test $$rc32 = 0

# Only the firmware tests, on the 32-bit build.
test32: $(STAMP) $(MPYLIB) $(MICROPYTHON32)
	MICROPYTHON=$(MICROPYTHON32) $(BIN)/python -m pytest -m mpy -p no:cacheprovider

micropython32: $(MICROPYTHON32)

qemu: $(QEMU_ELF)

# Debian packages, installed only when a tool is missing (CI runs as root).
$(TOOLCHAIN):
	@mkdir -p build
	@if command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null \
	    && test -f /usr/lib/arm-none-eabi/newlib/libc.a \
	    && echo 'int main(void){return 0;}' | gcc -m32 -x c - -o build/.m32check 2>/dev/null; then \
	  echo "toolchain present"; \
	else \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    gcc-multilib gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm >/dev/null; \
	fi
	@rm -f build/.m32check
	@touch $@

# The archive tests and bench start a throw-away PostgreSQL cluster with
# Debian's server binaries (host_tools/archive_db/pgcluster.py); the
# dashboard's browser tests drive Debian's headless chromium.
$(ARCHIVE_DEPS):
	@mkdir -p build
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v chromium >/dev/null \
	    && command -v chromedriver >/dev/null; then echo "postgresql, chromium present"; \
	else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	  --no-install-recommends postgresql chromium chromium-driver >/dev/null; fi
	@touch $@

# The vendored tarball (MP_TARBALL above) when found, else the same pinned commits.
$(MP_UNPACKED):
	@mkdir -p build
	@if [ -n "$(MP_TARBALL)" ] && [ -f "$(MP_TARBALL)" ]; then \
	  echo "micropython source: $(MP_TARBALL)"; \
	  tar -xzf "$(MP_TARBALL)" -C build; \
	else \
	  rm -rf $(MP_DIR) && git clone --quiet https://github.com/micropython/micropython $(MP_DIR) \
	  && git -C $(MP_DIR) checkout --quiet $(MP_PIN) \
	  && git -C $(MP_DIR) submodule update --init lib/micropython-lib \
	  && test "$$(git -C $(MP_DIR)/lib/micropython-lib rev-parse HEAD)" = $(MP_LIB_PIN); \
	fi
	@touch $@

# The unix port's own frozen set (asyncio) with 32-bit code and float32.
$(MICROPYTHON32): $(MP_UNPACKED) $(TOOLCHAIN)
	$(MAKE) -C $(MP_DIR)/mpy-cross -j2 >/dev/null
	$(MAKE) -C $(MP_DIR)/ports/unix -j2 BUILD=build-32f $(MP_UNIX_OPTS) \
	  FROZEN_MANIFEST=$(abspath $(MP_DIR))/extmod/asyncio/manifest.py >/dev/null

# CycloneDX SBOMs: the host tools (the venv's packages, cyclonedx-py) and the
# firmware image of each board (host_tools/sbom.py; `cryo flash` also puts
# it into every slot, hashed and signed with the release manifest).
SBOM_DIR    ?= build/sbom
sbom: $(STAMP)
	@mkdir -p $(SBOM_DIR)
	$(BIN)/cyclonedx-py environment --pyproject pyproject.toml --of JSON \
	  -o $(SBOM_DIR)/host-tools.cdx.json $(VENV)
	@for b in sim rp2040 rp2350 esp32s3 stm32f4; do \
	  $(BIN)/python -m host_tools.sbom --board $$b -o $(SBOM_DIR)/firmware-$$b.cdx.json; done

bench: $(STAMP) $(MPYLIB) $(MICROPYTHON32) $(QEMU_ELF) $(ARCHIVE_DEPS)
	$(BIN)/python bench/run.py

# 100 full pulls per port form under CPU load (make test runs 10 per form)
stress: $(STAMP) $(MPYLIB)
	CRYO_STRESS_PULLS=100 $(BIN)/python -m pytest tests/host/test_pull_stress.py -s -p no:cacheprovider

demo: $(STAMP) $(MPYLIB)
	$(BIN)/python -m host_tools.demo

# Small changes to the qemu port: asyncio may be switched on, the time
# littlefs stamps files with, the board's _boot.py/boot.py/main.py run at
# start-up and idle waits sleep the core (boards/qemu-mps2/README.md). The
# files the patch touches are restored from the pinned source first, so a
# changed patch applies to a tree an older one was applied to.
QEMU_PATCHED := $(shell sed -n 's|^+++ b/||p' $(QEMU_PATCH))
$(MP_DIR)/.qemu-patched: $(MP_UNPACKED) $(QEMU_PATCH)
	@if [ -d $(MP_DIR)/.git ]; then git -C $(MP_DIR) checkout -- $(QEMU_PATCHED); \
	else tar -xzf "$(MP_TARBALL)" -C build $(addprefix micropython/,$(QEMU_PATCHED)); fi
	@patch -p1 -s -d $(MP_DIR) < $(QEMU_PATCH)
	@touch $@

# Rebuilt (incrementally) when a frozen module changes.
$(QEMU_ELF): $(MP_DIR)/.qemu-patched $(TOOLCHAIN) $(FROZEN_SRC)
	$(MAKE) -C $(MP_DIR)/mpy-cross -j2 >/dev/null
	$(MAKE) -C $(MP_DIR)/ports/qemu -j2 BOARD=MPS2_AN385 BUILD=build-cryo \
	  MICROPY_HEAP_SIZE=$(QEMU_HEAP) MICROPY_VFS_LFS2=1 \
	  CFLAGS_EXTRA="-DMICROPY_VFS_LFS2=1 -DMICROPY_PY_ASYNCIO=1" \
	  FROZEN_MANIFEST=$(abspath boards/qemu-mps2/manifest.py) >/dev/null

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build
