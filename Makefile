# SPDX-License-Identifier: BSD-3-Clause
#
# nvlend build. Plain GNU Make, no generator: one tree of objects per
# variant directory, discovered from the source layout, so a new component or
# test needs no edit here.
#
#   make                 release build (-O2 -g, -Werror) into build/
#   make SAN=asan        ASan+UBSan build into build-asan/
#   make SAN=tsan        TSan build into build-tsan/
#   make SAN=fuzz        clang libFuzzer build into build-fuzz/ (fuzz targets)
#   make SAN=coverage    gcov build into build-coverage/
#   make run             setup + build + the demo (scripts/run-demo.sh)
#   make check           setup + every build + every test (scripts/check.sh)
#   make fuzz-long       every fuzz target for FUZZ_LONG_SECONDS (default 3600)
#   make install PREFIX=/usr/local [DESTDIR=...]
#
SAN      ?=
ifeq ($(SAN),)
BUILD    ?= build
else
BUILD    ?= build-$(SAN)
endif
PREFIX   ?= /usr/local
LIBDIR   ?= $(PREFIX)/lib
DESTDIR  ?=

ifeq ($(SAN),fuzz)
CC       := clang
endif
CC       ?= gcc
AR       ?= ar

# libsystemd: the fd store (util/fdstore.c); libcrypto: OpenSSL for
# DH-HMAC-CHAP (src/proto/nvme_auth.c); libibverbs + librdmacm (rdma-core):
# NVMe/RDMA and the brick over RDMA (src/transport/rdma*.c, src/host/*rdma*.c,
# src/brick/*rdma*.c)
PKGS     := liburing jansson fuse3 libsystemd libcrypto libibverbs librdmacm
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wmissing-prototypes \
            -Wstrict-prototypes -Wno-unused-parameter -Wpointer-arith -Wvla \
            -Wno-missing-field-initializers
CFLAGS_BASE := -std=gnu11 -g -fPIC -fvisibility=hidden -pthread -D_GNU_SOURCE \
            -D_FILE_OFFSET_BITS=64 -Iinclude -Isrc $(PKG_CFLAGS) $(WARN)
LDLIBS   := $(PKG_LIBS) -lpthread -lm

ifeq ($(SAN),)
OPT      := -O2 -D_FORTIFY_SOURCE=2
else ifeq ($(SAN),asan)
OPT      := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
            -fno-sanitize-recover=undefined
LDSAN    := -fsanitize=address,undefined
else ifeq ($(SAN),tsan)
OPT      := -O1 -fsanitize=thread -Wno-tsan
LDSAN    := -fsanitize=thread
else ifeq ($(SAN),fuzz)
OPT      := -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
            -DNVL_FUZZING -Wno-unknown-warning-option
LDSAN    := -fsanitize=address,undefined
else ifeq ($(SAN),coverage)
OPT      := -O0 --coverage
LDSAN    := --coverage
else
$(error unknown SAN=$(SAN): use asan, tsan, fuzz or coverage)
endif
CFLAGS   ?=
ALL_CFLAGS := $(CFLAGS_BASE) $(OPT) $(CFLAGS)
LDFLAGS  ?=
ALL_LDFLAGS := $(LDSAN) $(LDFLAGS)

# ---- sources ---------------------------------------------------------------
.SECONDEXPANSION:
COMPONENTS := util proto reactor rpc bdev nvme nvmf transport nbd brick function lend app host \
              module
SRC_ALL    := $(sort $(wildcard $(addsuffix /*.c,$(addprefix src/,$(COMPONENTS)))))
# What libnvlend (the client library) is made of: the host side (src/host),
# the wire formats both sides share (src/proto) and the brick client, over
# util's leaf helpers. Nothing of the target, the reactor or the daemon.
LIB_SRCS   := $(sort $(wildcard src/host/*.c)) $(sort $(wildcard src/proto/*.c)) \
              src/brick/client.c src/brick/client_rdma.c src/util/util.c src/util/log.c src/util/histogram.c \
              src/util/sock.c
DAEMON_SRCS := $(SRC_ALL)
obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIB_OBJS    := $(call obj,$(LIB_SRCS))
DAEMON_OBJS := $(call obj,$(DAEMON_SRCS))
COMP_LIBS   := $(foreach c,$(COMPONENTS),$(if $(wildcard src/$(c)/*.c),$(BUILD)/lib/libnvl_$(c).a))

TOOLS_CLI_SRCS := $(sort $(wildcard tools/nvlend/*.c))
TOOLS_PERF_SRCS := $(sort $(wildcard tools/nvlend-perf/*.c))
EXTRA_TOOLS := $(patsubst tools/%.c,$(BUILD)/bin/%,$(filter-out tools/nvlendd.c,$(wildcard tools/*.c)))

UT_SRCS    := $(sort $(wildcard tests/unit/*/*_ut.c))
UT_BINS    := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UT_SRCS))
FUZZ_SRCS  := $(sort $(wildcard tests/fuzz/*/fuzz_*.c))
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
HELPER_SRCS := $(sort $(wildcard tests/helpers/*.c))
HELPER_BINS := $(patsubst tests/helpers/%.c,$(BUILD)/tests/helpers/%,$(HELPER_SRCS))

BINS := $(BUILD)/bin/nvlendd $(BUILD)/bin/nvlend \
        $(if $(TOOLS_PERF_SRCS),$(BUILD)/bin/nvlend-perf) $(EXTRA_TOOLS)
LIBNVLEND_SO := $(BUILD)/lib/libnvlend.so.0
LIBNVLEND_A  := $(BUILD)/lib/libnvlend.a

.PHONY: all bins tests fuzz fuzz-long run check install clean distclean setup format-check man deb
ifeq ($(SAN),fuzz)
all: $(FUZZ_BINS)
else
all: bins tests
endif
bins: $(BINS) $(LIBNVLEND_SO) $(LIBNVLEND_A)
tests: $(UT_BINS) $(HELPER_BINS)
fuzz: $(FUZZ_BINS)

# make fuzz-long (not in make check): every fuzz target for FUZZ_LONG_SECONDS
# (default 3600) each, FUZZ_LONG_JOBS (default: the CPUs) at a time; corpus and
# failing inputs kept in build-fuzz/fuzz-long/<target>/ (tests/run_fuzz_long.sh)
fuzz-long:
	@$(MAKE) --no-print-directory SAN=fuzz fuzz
	@tests/run_fuzz_long.sh build-fuzz

setup:
	@scripts/setup.sh

# make run / make check: install what is missing, then build and go.
run:
	@scripts/setup.sh
	@$(MAKE) --no-print-directory all
	@scripts/run-demo.sh $(BUILD)

check:
	@scripts/setup.sh
	@scripts/check.sh

format-check:
	@scripts/check_format.sh

# ---- rules -----------------------------------------------------------------
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/lib/libnvl_%.a: $$(call obj,$$(wildcard src/%/*.c))
	@mkdir -p $(@D)
	@rm -f $@
	@$(AR) rcs $@ $^

$(LIBNVLEND_A): $(LIB_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	@echo "  AR      $@"
	@$(AR) rcs $@ $^

$(LIBNVLEND_SO): $(LIB_OBJS) src/host/libnvlend.map
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) -shared -Wl,-soname,libnvlend.so.0 -Wl,--version-script=src/host/libnvlend.map \
		$(ALL_LDFLAGS) -o $@ $(LIB_OBJS) $(LDLIBS)
	@ln -sf libnvlend.so.0 $(BUILD)/lib/libnvlend.so

$(BUILD)/bin/nvlendd: $(call obj,tools/nvlendd.c) $(DAEMON_OBJS)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/nvlend: $(call obj,$(TOOLS_CLI_SRCS)) $(LIBNVLEND_A)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/nvlend-perf: $(call obj,$(TOOLS_PERF_SRCS)) $(LIBNVLEND_A)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/%: $(BUILD)/obj/tools/%.o $(LIBNVLEND_A)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests #include the .c under test and link every component archive
# (only the members they still need get pulled in).
$(BUILD)/tests/unit/%: tests/unit/%.c $(COMP_LIBS)
	@mkdir -p $(@D)
	@echo "  UT      $@"
	@$(CC) $(ALL_CFLAGS) -Itests -Wno-missing-prototypes -MMD -MP -o $@ $< \
		$(ALL_LDFLAGS) -Wl,--start-group $(COMP_LIBS) -Wl,--end-group $(CMOCKA_LIBS) $(LDLIBS)

$(BUILD)/tests/helpers/%: tests/helpers/%.c $(LIBNVLEND_A) $(COMP_LIBS)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(ALL_CFLAGS) -Itests -Wno-missing-prototypes -MMD -MP -o $@ $< \
		$(ALL_LDFLAGS) $(LIBNVLEND_A) -Wl,--start-group $(COMP_LIBS) -Wl,--end-group $(LDLIBS)

$(BUILD)/fuzz/%: tests/fuzz/%.c $(COMP_LIBS)
	@mkdir -p $(@D)
	@echo "  FUZZ    $@"
	@$(CC) $(ALL_CFLAGS) -Itests -Wno-missing-prototypes -fsanitize=fuzzer -MMD -MP -o $@ $< \
		$(ALL_LDFLAGS) -fsanitize=fuzzer -Wl,--start-group $(COMP_LIBS) -Wl,--end-group $(LDLIBS)

# ---- manual pages ------------------------------------------------------------
# Generated from the programs' --help texts and the public headers
# (scripts/gen-man.py); docs/man/ holds pages with no other source.
MAN_DIR := $(BUILD)/man
man: bins
	@rm -rf $(MAN_DIR)
	@/usr/bin/python3 scripts/gen-man.py $(BUILD) $(MAN_DIR) >/dev/null
	@echo "  MAN     $(MAN_DIR)"

# ---- install ---------------------------------------------------------------
install: bins man
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(PREFIX)/include/nvlend/spec
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIBNVLEND_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libnvlend.so.0 $(DESTDIR)$(LIBDIR)/libnvlend.so
	install -m 644 $(LIBNVLEND_A) $(DESTDIR)$(LIBDIR)/
	install -m 644 $(wildcard include/nvlend/*.h) $(DESTDIR)$(PREFIX)/include/nvlend/
	$(if $(wildcard include/nvlend/spec/*.h),install -m 644 $(wildcard include/nvlend/spec/*.h) \
		$(DESTDIR)$(PREFIX)/include/nvlend/spec/)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' scripts/nvlend.pc.in \
		> $(DESTDIR)$(LIBDIR)/pkgconfig/nvlend.pc
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 644 contrib/completion/nvlend.bash \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/nvlend
	ln -sf nvlend $(DESTDIR)$(PREFIX)/share/bash-completion/completions/nvlendd
	ln -sf nvlend $(DESTDIR)$(PREFIX)/share/bash-completion/completions/nvlend-perf
	for s in 1 3 5 8; do \
		ls $(MAN_DIR)/*.$$s >/dev/null 2>&1 || continue; \
		install -d $(DESTDIR)$(PREFIX)/share/man/man$$s; \
		install -m 644 $(MAN_DIR)/*.$$s $(DESTDIR)$(PREFIX)/share/man/man$$s/; \
	done
	@echo "installed under $(DESTDIR)$(PREFIX)"

# ---- Debian packages -----------------------------------------------------------
# nvlend (daemon, CLI, perf tool, systemd unit, man pages, completion),
# libnvlend0 and libnvlend-dev, built by dpkg-buildpackage from a copy of the
# source (the tracked and untracked-but-not-ignored files) in $(BUILD)/deb.
DEB_DIR := $(BUILD)/deb
deb:
	@rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
		git ls-files -co --exclude-standard -z | xargs -0 cp -a --parents -t $(DEB_DIR)/src; \
	else \
		tar -c --exclude='./build' --exclude='./build-*' . | tar -x -C $(DEB_DIR)/src; \
	fi
	@echo "  DEB     $(DEB_DIR)"
	@cd $(DEB_DIR)/src && dpkg-buildpackage -us -uc -b -j2 >../build.log 2>&1 || \
		{ tail -n 40 ../build.log; exit 1; }
	@ls $(DEB_DIR)/*.deb

clean:
	rm -rf $(BUILD)

distclean:
	rm -rf build build-asan build-tsan build-fuzz build-coverage

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
