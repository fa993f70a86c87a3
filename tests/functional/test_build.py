"""The build's promises: modules that the stock Debian binary accepts, that export only what
Kamailio's loader looks up, and an ABI check that refuses a mismatch with a clear message."""

import glob
import os
import re
import subprocess

import imps_net

ROOT = imps_net.ROOT
ALLOWED = {"exports", "module_version", "module_flags", "module_interface_ver", "mod_register"}
MODULES = sorted(glob.glob(os.path.join(imps_net.BUILD_MODULES, "imps_*.so")))


def test_every_module_is_built():
    names = {os.path.basename(m) for m in MODULES}
    # a module is a modules/imps_* folder with its Kamailio shim (<name>_mod.c)
    expected = {f"{d}.so" for d in os.listdir(os.path.join(ROOT, "modules"))
                if d.startswith("imps_") and os.path.exists(os.path.join(ROOT, "modules", d, f"{d}_mod.c"))}
    assert expected and names == expected


def test_exported_dynamic_symbols_are_only_what_kamailio_looks_up():
    for so in MODULES:
        out = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True, text=True,
                             check=True).stdout
        syms = {line.split()[-1] for line in out.splitlines() if line.strip()}
        assert {"exports", "module_version", "module_flags"} <= syms, so
        assert syms <= ALLOWED, f"{so} exports {sorted(syms - ALLOWED)}"


def test_modules_carry_the_installed_binarys_version_and_flags():
    ver = subprocess.run([imps_net.KAMAILIO, "-V"], capture_output=True, text=True).stdout
    flags = [l for l in ver.splitlines() if l.startswith("flags:")][0][len("flags: "):].strip()
    for so in MODULES:
        strings = subprocess.run(["strings", so], capture_output=True, text=True).stdout
        assert "kamailio 5.6.3 (x86_64/linux)" in strings
        assert flags in strings.splitlines(), f"{so} carries other compile flags"


def test_role_scripts_pass_kamailio_check_with_every_module_loaded():
    # the role scripts and the AAA test harness cfg: every module is loaded by one of them
    cfgs = [os.path.join(imps_net.CFG_DIR, f"{role}.cfg") for role in ("edge", "hsp", "presence", "xcap")]
    cfgs.append(os.path.join(ROOT, "tests", "functional", "aaa", "aaa-test.cfg"))
    loaded = set()
    for cfg in cfgs + [os.path.join(imps_net.CFG_DIR, "xcap-server.cfg")]:  # imported by xcap.cfg
        loaded |= set(re.findall(r'loadmodule "(imps_\w+)\.so"', open(cfg).read()))
    assert loaded == {os.path.basename(m)[:-3] for m in MODULES}
    # and the presence server that is the List and Policy Server too
    checks = [(cfg, []) for cfg in cfgs] + [(cfgs[2], ["-A", "WITH_XCAP"])]
    for cfg, defines in checks:
        r = subprocess.run([imps_net.KAMAILIO, "-c", "-f", cfg, *defines,
                            "-L", f"{imps_net.BUILD_MODULES}:{imps_net.STOCK_MODULES}"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "config file ok" in r.stdout + r.stderr, r.stdout + r.stderr


def test_abi_check_refuses_a_mismatch(tmp_path):
    cdefs = os.path.join(ROOT, "build", "kamailio-cdefs.mk")
    ksrc = os.path.join(ROOT, "build", "kamailio-src")
    ok = subprocess.run(["sh", os.path.join(ROOT, "scripts", "abi-check.sh"), ksrc, cdefs,
                         str(tmp_path / "ok")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "cdefs.mk"
    bad.write_text(open(cdefs).read().replace(" -DUSE_TLS", ""))
    r = subprocess.run(["sh", os.path.join(ROOT, "scripts", "abi-check.sh"), ksrc, str(bad),
                        str(tmp_path / "bad")], capture_output=True, text=True)
    assert r.returncode != 0
    assert "would not match the installed Kamailio binary" in r.stderr
    assert not (tmp_path / "bad").exists()
