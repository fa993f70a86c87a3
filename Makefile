# IMPS SIP/SIMPLE presence modules for Kamailio 5.6 (Debian's stock binary).
#
#   make            build every module (fetches Kamailio's headers once, checks the ABI)
#   make deps       install every Debian package the build, the demo and the tests need
#   make run        start the demo network in the foreground (Ctrl-C stops it)
#   make test       unit tests (GoogleTest), a short run of the fuzz targets (libFuzzer),
#                   and functional tests (pytest + SIPp)
#   make fuzz       the fuzz targets, FUZZ_SECONDS each (default 20)
#   make bench      benchmarks against stock Kamailio modules (docs/benchmarks.md)
#   make install    modules into Kamailio's module folder, cfg files into /etc/kamailio/imps
#   make clean      remove build outputs (keeps the cached Kamailio source)
#   make distclean  remove build/ entirely

SHELL   := /bin/sh
BUILD   := build
KSRC    := $(BUILD)/kamailio-src
CDEFS_MK := $(BUILD)/kamailio-cdefs.mk
ABI_STAMP := $(BUILD)/abi.ok
DEPS_STAMP := $(BUILD)/deps.ok
# every modules/imps_* folder with a Kamailio shim (<name>_mod.c) is a module
MODULES := $(patsubst modules/%/,%,$(dir $(wildcard modules/imps_*/imps_*_mod.c)))
CORE_MODULES := $(patsubst modules/%/core/,%,$(dir $(wildcard modules/imps_*/core/*.cpp)))

PREFIX  ?=
MODDIR  ?= $(PREFIX)/usr/lib/x86_64-linux-gnu/kamailio/modules
CFGDIR  ?= $(PREFIX)/etc/kamailio/imps
DOCDIR  ?= $(PREFIX)/usr/share/doc/imps-kamailio

PYTHON  := /usr/bin/python3
PKGS    := libxml-2.0 hiredis libcurl openssl

-include $(CDEFS_MK)

# Debian's hardening flags, as debian/rules passes them to Kamailio's own build.
DEB_CPPFLAGS := $(shell dpkg-buildflags --get CPPFLAGS 2>/dev/null)
DEB_CFLAGS   := $(shell dpkg-buildflags --get CFLAGS 2>/dev/null)
DEB_CXXFLAGS := $(shell dpkg-buildflags --get CXXFLAGS 2>/dev/null)
DEB_LDFLAGS  := $(shell dpkg-buildflags --get LDFLAGS 2>/dev/null)
PKG_CFLAGS    = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS      = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CC  ?= gcc
CXX ?= g++
WARN     := -Wall -Wextra -Wno-unused-parameter
CFLAGS_MOD = $(KAMAILIO_CDEFS) -fPIC -DPIC $(DEB_CPPFLAGS) $(DEB_CFLAGS) -Wall -Wno-unused-parameter \
             -I$(KSRC)/src -Imodules -Imodules/common/include
CXXFLAGS_CORE = -std=c++17 -fPIC -fvisibility=hidden -fvisibility-inlines-hidden \
             $(DEB_CPPFLAGS) $(DEB_CXXFLAGS) $(WARN) -Imodules/common/include -Imodules $(PKG_CFLAGS)

COMMON_SRCS := $(wildcard modules/common/src/*.cpp)
# the Lua scripts, embedded into one generated source every module links
LUA_SRCS := $(sort $(wildcard modules/*/lua/*.lua))
LUA_CPP  := $(BUILD)/gen/lua_scripts.cpp
COMMON_OBJS := $(COMMON_SRCS:%.cpp=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/lua_scripts.o

.PHONY: all deps run test unit functional fuzz bench install uninstall clean distclean abi
all: $(MODULES:%=$(BUILD)/modules/%.so)

deps: $(DEPS_STAMP)
$(DEPS_STAMP): scripts/deps.sh
	@mkdir -p $(BUILD)
	sh scripts/deps.sh
	@touch $@

$(CDEFS_MK): scripts/kamailio-src.sh | $(DEPS_STAMP)
	@mkdir -p $(BUILD)
	sh scripts/kamailio-src.sh $(KSRC) $@

abi: $(ABI_STAMP)
$(ABI_STAMP): $(CDEFS_MK) scripts/abi-check.sh scripts/abi-check.c /usr/sbin/kamailio
	sh scripts/abi-check.sh $(KSRC) $(CDEFS_MK) $@

# --- objects -------------------------------------------------------------------------------
$(BUILD)/obj/%.o: %.cpp | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo '  CXX   $<'
	@$(CXX) $(CXXFLAGS_CORE) -MMD -MP -c -o $@ $<

$(LUA_CPP): $(LUA_SRCS) scripts/embed-lua.sh
	@mkdir -p $(dir $@)
	@echo '  LUA   $@'
	@sh scripts/embed-lua.sh $@ $(filter-out %_lib.lua,$(LUA_SRCS))
$(BUILD)/obj/gen/lua_scripts.o: $(LUA_CPP) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo '  CXX   $<'
	@$(CXX) $(CXXFLAGS_CORE) -c -o $@ $<

# imps_xcap's XML Schemas, embedded so the module never reads them from disk or the network
XCAP_XSDS := $(sort $(wildcard modules/imps_xcap/schemas/*.xsd))
XCAP_XSD_CPP := $(BUILD)/gen/xcap_schemas.cpp
XCAP_XSD_OBJ := $(BUILD)/obj/gen/xcap_schemas.o
$(XCAP_XSD_CPP): $(XCAP_XSDS) scripts/embed-files.sh
	@mkdir -p $(dir $@)
	@echo '  XSD   $@'
	@sh scripts/embed-files.sh $@ imps::xcap embedded_schema $(XCAP_XSDS)
$(XCAP_XSD_OBJ): $(XCAP_XSD_CPP) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo '  CXX   $<'
	@$(CXX) $(CXXFLAGS_CORE) -c -o $@ $<

$(BUILD)/obj/%.o: %.c $(ABI_STAMP)
	@mkdir -p $(dir $@)
	@echo '  CC    $<'
	@$(CC) $(CFLAGS_MOD) -DMOD_NAME='"$(notdir $(patsubst %/,%,$(dir $<)))"' -MMD -MP -c -o $@ $<

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# --- modules -------------------------------------------------------------------------------
define MODULE_RULES
$(1)_CORE_SRCS := $$(wildcard modules/$(1)/core/*.cpp) $$(wildcard modules/$(1)/*.cpp)
$(1)_C_SRCS    := $$(wildcard modules/$(1)/*.c)
$(1)_OBJS      := $$($(1)_CORE_SRCS:%.cpp=$(BUILD)/obj/%.o) $$($(1)_C_SRCS:%.c=$(BUILD)/obj/%.o) \
                  $$($(1)_EXTRA_OBJS)
$(BUILD)/modules/$(1).so: $$($(1)_OBJS) $(COMMON_OBJS) mk/module.map
	@mkdir -p $$(dir $$@)
	@echo '  LD    $$@'
	@$(CXX) -shared -o $$@ $$($(1)_OBJS) $(COMMON_OBJS) $(DEB_LDFLAGS) \
		-Wl,--version-script=mk/module.map $$($(1)_LIBS) $(PKG_LIBS) -lstdc++
endef
# Kamailio's own libraries a module links with (as Debian's modules do, with a run path)
KAMAILIO_LIBDIR := /usr/lib/x86_64-linux-gnu/kamailio
imps_presence_LIBS := -L$(KAMAILIO_LIBDIR) -lsrdb1 -Wl,-rpath,$(KAMAILIO_LIBDIR)/
imps_xcap_LIBS := -L$(KAMAILIO_LIBDIR) -lsrdb1 -Wl,-rpath,$(KAMAILIO_LIBDIR)/
imps_xcap_EXTRA_OBJS := $(XCAP_XSD_OBJ)
$(foreach m,$(MODULES),$(eval $(call MODULE_RULES,$(m))))

# a test-only module consuming imps_presence's in-process API (tests/modules, not installed)
TEST_MODULES := $(BUILD)/test-modules/imps_test_watch.so
$(BUILD)/test-modules/%.so: tests/modules/%.c $(ABI_STAMP) modules/imps_presence/imps_presence_api.h
	@mkdir -p $(dir $@)
	@echo '  LD    $@'
	@$(CC) $(CFLAGS_MOD) -DMOD_NAME='"$*"' -shared -o $@ $< $(DEB_LDFLAGS) -Wl,--version-script=mk/module.map

# core objects of a module, for unit tests (everything but the C shim)
core_objs = $(patsubst %.cpp,$(BUILD)/obj/%.o,$(wildcard modules/$(1)/core/*.cpp))

# --- unit tests ----------------------------------------------------------------------------
UNIT_SRCS := $(wildcard tests/unit/*/*.cpp)
UNIT_OBJS := $(UNIT_SRCS:%.cpp=$(BUILD)/obj/%.o)
UNIT_BIN  := $(BUILD)/tests/unit_tests
$(UNIT_BIN): $(UNIT_OBJS) $(COMMON_OBJS) $(XCAP_XSD_OBJ) $(foreach m,$(sort $(CORE_MODULES)),$(call core_objs,$(m)))
	@mkdir -p $(dir $@)
	$(CXX) -o $@ $^ $(PKG_LIBS) -lgtest -lgtest_main -lpthread

# --- fuzz targets (libFuzzer, clang) --------------------------------------------------------
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.cpp)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.cpp=$(BUILD)/fuzz/%)
FUZZ_CXXFLAGS = -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -Imodules/common/include \
                -Imodules $(PKG_CFLAGS)
FUZZ_LIB_SRCS = $(COMMON_SRCS) $(wildcard modules/imps_*/core/*.cpp)
FUZZ_LIB_SRCS := $(filter-out %/capi.cpp,$(FUZZ_LIB_SRCS)) $(LUA_CPP) $(XCAP_XSD_CPP)
$(BUILD)/fuzz/%: tests/fuzz/%.cpp $(FUZZ_LIB_SRCS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo '  FUZZ  $@'
	@clang++ $(FUZZ_CXXFLAGS) -o $@ $< $(FUZZ_LIB_SRCS) $(PKG_LIBS)

fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do echo "  RUN   $$f ($(FUZZ_SECONDS) s)"; \
		mkdir -p $(BUILD)/fuzz/corpus-$$(basename $$f); \
		$$f -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=0 -artifact_prefix=$(BUILD)/fuzz/ \
			$(BUILD)/fuzz/corpus-$$(basename $$f) > $$f.log 2>&1 \
			|| { tail -n 40 $$f.log; echo "  FAIL  $$f: crash input saved under $(BUILD)/fuzz/"; exit 1; }; \
		tail -n 1 $$f.log; done
FUZZ_SECONDS ?= 20

unit: $(UNIT_BIN)
	$(UNIT_BIN)

functional: all $(TEST_MODULES)
	cd tests/functional && $(PYTHON) -m pytest -q -p no:cacheprovider .

test: $(DEPS_STAMP) all $(TEST_MODULES) $(UNIT_BIN)
	$(UNIT_BIN) --gtest_brief=1
	$(MAKE) -s fuzz FUZZ_SECONDS=10
	cd tests/functional && $(PYTHON) -m pytest -q -p no:cacheprovider .

run: $(DEPS_STAMP) all
	$(PYTHON) scripts/run_demo.py

bench: $(DEPS_STAMP) all
	$(PYTHON) tests/bench/bench_reginfo.py
	$(PYTHON) tests/bench/bench_aaa.py
	$(PYTHON) tests/bench/bench_aaa_down.py
	$(PYTHON) tests/bench/bench_presence.py
	$(PYTHON) tests/bench/bench_reauth.py
	$(PYTHON) tests/bench/bench_xcap.py

install: all
	install -d $(DESTDIR)$(MODDIR) $(DESTDIR)$(CFGDIR) $(DESTDIR)$(DOCDIR)
	install -m 0644 $(MODULES:%=$(BUILD)/modules/%.so) $(DESTDIR)$(MODDIR)/
	install -m 0644 cfg/*.cfg $(DESTDIR)$(CFGDIR)/
	install -m 0644 docs/*.md $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(MODULES:%=$(DESTDIR)$(MODDIR)/%.so)
	rm -rf $(DESTDIR)$(CFGDIR) $(DESTDIR)$(DOCDIR)

clean:
	rm -rf $(BUILD)/obj $(BUILD)/modules $(BUILD)/tests $(BUILD)/run $(BUILD)/fuzz $(ABI_STAMP)

distclean:
	rm -rf $(BUILD)
