# assetd — see README.md.  `make` builds build/assetd; `make run` serves;
# `make test` installs what tests need, then runs every test (also under ASan+UBSan).
CC      ?= cc
PKGS    := libmicrohttpd jansson sqlite3 libpq libcrypto vips libcurl poppler-glib cairo librabbitmq
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes \
           -Wno-unused-parameter -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libwslay and libmagic ship no pkg-config file on Debian: linked by name.
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lwslay -lmagic -lpthread -lm
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
CFLAGS  += -DASSETD_VERSION='"$(VERSION)"'

SRC      := $(sort $(wildcard src/*/*.c))
MAIN     := src/main.c
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
# The web page is compiled in (src/web/static.h): its files become a
# generated C source, rebuilt whenever one of them changes.  The browser
# libraries it needs come from npm (web/vendor/package.json), installed by
# scripts/install-deps.sh (`make deps`, run by `make run` and `make test`);
# npm's stamp of a finished install is a dependency, so a new lock file
# rebuilds the page, and a missing or outdated install stops the build.
VENDOR       := web/vendor/node_modules
VENDOR_STAMP := $(VENDOR)/.package-lock.json
WEB      := web/index.html web/app.js web/upload.js web/app.css \
            web/present.html web/watch.html web/slides.js web/slides.css \
            web/play.html web/play.js web/play.css web/publish.html web/publish.js \
            build/gen/tus.min.js build/gen/hls.min.js
GEN      := build/gen/web_files.c

ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

.PHONY: all run test test-load deps test-deps bench-deps unit e2e asan clean bench sigv4-crosscheck binaries \
        fuzz fuzz-build fuzz-smoke
all: build/assetd

# Each source is compiled once per build flavour into an object file whose
# header dependencies the compiler writes beside it (-MMD), so an edit
# rebuilds what it touches; the four binaries link the objects.  `make -j`
# builds them in parallel (run, test and e2e ask for it: JOBS, default the
# number of cores).
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
OBJ      := $(patsubst %.c,build/obj/release/%.o,$(SRC) $(GEN))
OBJ_ASAN := $(patsubst %.c,build/obj/asan/%.o,$(SRC) $(GEN))
UNIT_OBJ := $(patsubst %.c,build/obj/release/%.o,$(UNIT_SRC))
UNIT_OBJ_ASAN := $(patsubst %.c,build/obj/asan/%.o,$(UNIT_SRC))

build/obj/release/%.o: %.c VERSION Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

build/obj/asan/%.o: %.c VERSION Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -MMD -MP -c -o $@ $<

-include $(wildcard build/obj/release/*/*.d build/obj/release/*/*/*.d build/obj/release/*/*/*/*.d \
                    build/obj/asan/*/*.d build/obj/asan/*/*/*.d build/obj/asan/*/*/*/*.d)

build/assetd: build/obj/release/src/main.o $(OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

build/assetd-asan: build/obj/asan/src/main.o $(OBJ_ASAN)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -o $@ $^ $(LDLIBS)

build/unit: $(UNIT_OBJ) $(OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

build/unit-asan: $(UNIT_OBJ_ASAN) $(OBJ_ASAN)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -o $@ $^ $(LDLIBS)

# The four binaries, and the queue's bench (postgres.test.mjs runs it), in parallel.
binaries:
	@$(MAKE) --no-print-directory -j$(JOBS) build/assetd build/assetd-asan build/unit build/unit-asan build/bench-queue

# The S3 client against real servers (tests/e2e/s3client.test.mjs runs it).
S3_TEST_SRC := tests/s3/s3_test.c $(filter-out src/store/s3_append.c,$(wildcard src/store/s3_*.c)) src/util/fault.c src/util/log.c src/util/timefmt.c \
               src/util/encode.c
build/s3-test: $(S3_TEST_SRC) tests/unit/test.h $(wildcard src/store/s3_*.h) Makefile
	@mkdir -p build
	$(CC) $(CFLAGS) -o $@ $(S3_TEST_SRC) $(LDLIBS)

build/s3-test-asan: $(S3_TEST_SRC) tests/unit/test.h $(wildcard src/store/s3_*.h) Makefile
	@mkdir -p build
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -o $@ $(S3_TEST_SRC) $(LDLIBS)

build/bench-queue: build/obj/release/bench/queue_bench.o $(OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

build/ws-listen: bench/ws_listen.c Makefile
	@mkdir -p build
	$(CC) $(CFLAGS) -o $@ bench/ws_listen.c -lwslay -lcrypto -lm

build/http-send: bench/http_send.c Makefile
	@mkdir -p build
	$(CC) $(CFLAGS) -o $@ bench/http_send.c

build/tus-client: bench/tus_client.c Makefile
	@mkdir -p build
	$(CC) $(CFLAGS) -o $@ bench/tus_client.c

# The SigV4 module alone, behind a command line, for tests/s3/crosscheck.py;
# built with ASan + UBSan so the cross-check exercises it sanitized too.
SIGV4_SRC := src/core/sigv4.c src/core/sigv4_post.c src/util/encode.c
build/sigv4-tool: tests/s3/sigv4_tool.c $(SIGV4_SRC) src/core/sigv4.h src/core/sigv4_post.h Makefile
	@mkdir -p build
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -o $@ tests/s3/sigv4_tool.c $(SIGV4_SRC) -ljansson -lcrypto

# A bundle as served: its licence first, which must travel with every copy.
build/gen/tus.min.js: $(VENDOR)/tus-js-client/dist/tus.min.js $(VENDOR)/tus-js-client/LICENSE $(VENDOR_STAMP)
	@mkdir -p $(dir $@)
	{ echo '/*! tus-js-client (npm), served as is.'; sed 's|\*/|* /|g' $(VENDOR)/tus-js-client/LICENSE; \
	  echo '*/'; cat $<; } > $@.tmp
	@mv $@.tmp $@

# hls.js (Apache-2.0) for the player page: its LICENSE (the notice) first.
# The full build, not hls.light: the ladder's audio is a separate HLS
# rendition, which only the full build plays.
build/gen/hls.min.js: $(VENDOR)/hls.js/dist/hls.min.js $(VENDOR)/hls.js/LICENSE $(VENDOR_STAMP)
	@mkdir -p $(dir $@)
	{ echo '/*! hls.js (npm), served as is.'; sed 's|\*/|* /|g' $(VENDOR)/hls.js/LICENSE; \
	  echo '*/'; cat $<; } > $@.tmp
	@mv $@.tmp $@

$(GEN): $(WEB) $(VENDOR_STAMP) scripts/embed-web.sh Makefile
	@mkdir -p $(dir $@)
	scripts/embed-web.sh $(WEB) > $@.tmp
	@mv $@.tmp $@

$(VENDOR_STAMP): web/vendor/package.json web/vendor/package-lock.json
	@echo "make: web/vendor's npm packages are not installed, or older than its package-lock.json:" \
	      "run 'make deps' (scripts/install-deps.sh) first" >&2; exit 1
$(VENDOR)/%:
	@echo "make: $@ is missing: run 'make deps' (scripts/install-deps.sh) first" >&2; exit 1

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --test

# --test plus aws-cli for bench/s3_upload.sh and python3-pika for bench/runs.sh
# (not needed by `make test`).
bench-deps:
	@scripts/install-deps.sh --bench

run: deps
	@$(MAKE) --no-print-directory -j$(JOBS) build/assetd
	build/assetd serve --listen $${ASSETD_LISTEN:-127.0.0.1:8080} --data $${ASSETD_DATA:-./data}

unit: build/unit build/unit-asan
	build/unit
	build/unit-asan

e2e: build/assetd build/assetd-asan build/s3-test build/s3-test-asan build/bench-queue
	scripts/run-e2e.sh

test: test-deps
	@$(MAKE) --no-print-directory binaries
	@$(MAKE) --no-print-directory unit fuzz-smoke e2e

# `make test` with two CPU-bound busy loops beside it, as on a shared, noisy
# CI machine: every test must wait on events, not on timing.  The loops are
# bounded (timeout) and killed when the suite ends, pass or fail.
LOAD_LOOPS   ?= 2
LOAD_SECONDS ?= 3600
test-load: test-deps
	@pids=; for i in $$(seq $(LOAD_LOOPS)); do \
	  timeout $(LOAD_SECONDS) sh -c 'while :; do :; done' & pids="$$pids $$!"; done; \
	trap 'kill $$pids 2>/dev/null' EXIT INT TERM; \
	echo "== under load: $(LOAD_LOOPS) busy loops (pids$$pids)"; \
	$(MAKE) --no-print-directory unit fuzz-smoke e2e

bench: bench-deps build/assetd build/bench-queue build/ws-listen build/http-send build/tus-client
	bench/run-all.sh

# ---- fuzzing: libFuzzer targets in tests/fuzz/ (docs/fuzzing.md) ----
# The project's sources are compiled once with coverage instrumentation into
# an archive; each target links what it needs from it.  `make fuzz` replays
# every saved regression input, then runs every target for FUZZ_SECONDS from a
# scratch copy of its seed corpus (the repo's stays small); `make fuzz-smoke`,
# part of `make test`, does the same for 3 seconds a target, from the seeds
# alone (reloading what long runs found would take it past its 3 seconds).
FUZZ_CC      ?= clang
FUZZ_TARGETS := range router filename parse token sigv4_url sigv4_post tus webhook framing \
                http multipart websocket api imagehead csv
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined
FUZZ_SUPPORT := tests/fuzz/fuzz.c tests/fuzz/app.c
FUZZ_OBJS    := $(patsubst %.c,build/fuzz/obj/%.o,$(SRC) $(GEN) $(FUZZ_SUPPORT))
FUZZ_BINS    := $(FUZZ_TARGETS:%=build/fuzz/%)

build/fuzz/obj/%.o: %.c VERSION Makefile
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -Itests/fuzz -MMD -MP -c -o $@ $<

-include $(wildcard build/fuzz/obj/*/*.d build/fuzz/obj/*/*/*.d build/fuzz/obj/*/*/*/*.d)

build/fuzz/libassetd.a: $(FUZZ_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BINS): build/fuzz/%: tests/fuzz/%.c $(wildcard tests/fuzz/*.h) build/fuzz/libassetd.a
	$(FUZZ_CC) $(CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -Itests/fuzz -o $@ $< \
	    build/fuzz/libassetd.a $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

fuzz:
	@$(MAKE) --no-print-directory -j$(JOBS) fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh --regressions $(FUZZ_TARGETS)

fuzz-smoke:
	@$(MAKE) --no-print-directory -j$(JOBS) fuzz-build
	FUZZ_SECONDS=3 scripts/fuzz.sh --regressions --fresh $(FUZZ_TARGETS)

# Needs python3 with botocore and moto (not Debian packages): not in `make test`.
sigv4-crosscheck: build/sigv4-tool
	python3 tests/s3/crosscheck.py build/sigv4-tool

clean:
	rm -rf build
