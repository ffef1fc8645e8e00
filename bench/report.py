#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Turns the figures of a bench/guest-bench run into the table that bench/run
# prints and, with --write, into bench/RESULTS.md (date, machine, kernel,
# table, targets met or not, and the attach profile).
import argparse
import datetime
import os
import platform
import re
import sys

p = argparse.ArgumentParser()
p.add_argument("results")
p.add_argument("--write")
p.add_argument("--wall", type=int, default=0)
p.add_argument("--size", default="?")
p.add_argument("--runs", default="?")
a = p.parse_args()

fig = {}
try:
    with open(os.path.join(a.results, "figures")) as f:
        for line in f:
            k, _, v = line.strip().partition(" ")
            fig[k] = v
except OSError as e:
    sys.exit(f"bench: no figures: {e}")


def num(k):
    try:
        return float(fig[k])
    except (KeyError, ValueError):
        return None


def fmt(v, unit=""):
    return "—" if v is None else (f"{v:.0f}{unit}" if abs(v) >= 100 else f"{v:.1f}{unit}")


def mean2(k):
    """The mean of a figure measured in two rounds (A B, then B A)."""
    v = [num(k.replace("{r}", r)) for r in ("r1", "r2")]
    v = [x for x in v if x is not None]
    return sum(v) / len(v) if v else None


def ratio(x, y):
    return None if x is None or y is None or y == 0 else x / y


def fr(r):
    return "—" if r is None else f"{r:.2f}×"


lines = []
targets = []


def target(name, value, goal, ok):
    targets.append((name, value, goal, "—" if ok is None else ("met" if ok else "**not met**")))


# ---- attach latency ---------------------------------------------------------
ref = num("lat.nbd-client.attach_median_ms")
lines.append(f"### Attach latency (median of {a.runs}; start → successful O_DIRECT read of block 0)\n")
lines.append("| method | median ms | min ms | max ms | vs nbd-client |")
lines.append("|---|---:|---:|---:|---:|")
names = [
    ("lat.nbdlink-call", "nbdlink: AttachWithOptions method call (in-process D-Bus client)"),
    ("lat.nbdlink-cli", "nbdlink: `nbdlink attach` command (process start, bus connect, call)"),
    ("lat.nbd-client", "nbd-client 3.24 `-N disk 127.0.0.1 PORT /dev/nbdN`"),
    ("lat.qemu-nbd", "`qemu-nbd -f raw --connect` (serves a sparse 1 GiB raw file on tmpfs itself)"),
]
for k, label in names:
    m = num(k + ".attach_median_ms")
    lines.append(f"| {label} | {fmt(m)} | {fmt(num(k + '.attach_min_ms'))} | {fmt(num(k + '.attach_max_ms'))} | {fr(ratio(m, ref))} |")
for k, label in (("floor.nbdlink-list", "for reference: `nbdlink list` (process start, bus connect, one call; no attach)"),
                 ("floor.nbd-client-version", "for reference: `nbd-client -V` (process start only)")):
    m = num(k + ".run_median_ms")
    if m is not None:
        lines.append(f"| {label} | {fmt(m)} | {fmt(num(k + '.run_min_ms'))} | {fmt(num(k + '.run_max_ms'))} | {fr(ratio(m, ref))} |")
r_call = num("lat.nbdlink-call.reply_median_ms")
rtt = num("rtt.nbdlink.read4k_median_ms")
if rtt is not None:
    lines.append(f"\nOne 4 KiB O_DIRECT read through an attached device (one round trip to nbdkit) takes "
                 f"{fmt(rtt)} ms (median of {a.runs}; nbd-client's device: {fmt(num('rtt.nbd-client.read4k_median_ms'))} ms).")
if r_call is not None:
    lines.append("\nWhere an nbdlink attach spends its time (medians over the same runs, from the device's "
                 "`State` signals as the caller receives them; no tracing):\n")
    lines.append("| reached | ms after the call |")
    lines.append("|---|---:|")
    for k, label in (("state_negotiating", "State=negotiating: call validated and authorized, /dev/nbdN opened, worker thread running; connect and handshake begin"),
                     ("state_attached", "State=attached (handshake, ioctls, NBD_DO_IT, device seen running, partition scan)"),
                     ("reply", "method reply received"),
                     ("attach", "block 0 read by the caller (O_DIRECT)")):
        lines.append(f"| {label} | {fmt(num('lat.nbdlink-call.' + k + '_median_ms'))} |")
lat_r = ratio(num("lat.nbdlink-call.attach_median_ms"), ref)
target("attach latency (method call) ≤ 0.5× nbd-client", fr(lat_r), "≤ 0.50×", None if lat_r is None else lat_r <= 0.5)
lat_cli = ratio(num("lat.nbdlink-cli.attach_median_ms"), ref)
target("attach latency (`nbdlink attach` command) ≤ 0.5× nbd-client", fr(lat_cli), "≤ 0.50×",
       None if lat_cli is None else lat_cli <= 0.5)

# ---- throughput ---------------------------------------------------------------
lines.append(f"\n### Throughput (fio, libaio, O_DIRECT; sequential: 1 MiB blocks, depth 8, {a.size} or 5 s, whichever ends first; random: 4 KiB reads, depth 16, 4 s; each figure the mean of two rounds run in the order nbdlink, nbd-client and then nbd-client, nbdlink)\n")
lines.append("| transport | conns | nbdlink read MB/s | nbd-client read MB/s | ratio | nbdlink write MB/s | nbd-client write MB/s | ratio | nbdlink 4K IOPS | nbd-client 4K IOPS | ratio | nbdlink TLS path | guest CPU busy during reads, nbdlink / nbd-client |")
lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
for mode in ("plain", "tls"):
    for c in (1, 4):
        row = [mode, str(c)]
        for kind, key in (("read", "mbps"), ("write", "mbps"), ("rand", "iops")):
            x = mean2(f"nbdlink.{mode}.c{c}.{kind}.{{r}}.{key}")
            y = mean2(f"nbd-client.{mode}.c{c}.{kind}.{{r}}.{key}")
            row += [fmt(x), fmt(y), fr(ratio(x, y))]
        row.append(fig.get(f"nbdlink.{mode}.c{c}.transport", "") or ("none" if mode == "plain" else "?"))
        row.append(f"{fmt(mean2(f'nbdlink.{mode}.c{c}.read.{{r}}.cpu_busy_pct'), ' %')} / "
                   f"{fmt(mean2(f'nbd-client.{mode}.c{c}.read.{{r}}.cpu_busy_pct'), ' %')}")
        lines.append("| " + " | ".join(row) + " |")
    for kind in ("read", "write"):
        x1 = mean2(f"nbdlink.{mode}.c1.{kind}.{{r}}.mbps")
        y1 = mean2(f"nbd-client.{mode}.c1.{kind}.{{r}}.mbps")
        x4 = mean2(f"nbdlink.{mode}.c4.{kind}.{{r}}.mbps")
        r1, r4 = ratio(x1, y1), ratio(x4, y1)
        target(f"{mode} sequential {kind}, 1 connection ≥ 1.0× nbd-client's", fr(r1), "≥ 1.00×",
               None if r1 is None else r1 >= 1.0)
        target(f"{mode} sequential {kind}, 4 connections ≥ 1.6× nbd-client's with 1", fr(r4), "≥ 1.60×",
               None if r4 is None else r4 >= 1.6)

# ---- TLS paths against plaintext ---------------------------------------------------
lines.append("\n### TLS paths, one connection, against plaintext (same run)\n")
aes = num("cipher.aes128gcm_mbps")
if aes is not None:
    lines.append(f"One guest vCPU encrypts {fmt(aes)} MB/s with AES-128-GCM in user space "
                 "(`gnutls-cli --benchmark-ciphers`); the server encrypts and the client decrypts every byte.\n")
lines.append("| path | read MB/s | read vs plaintext | write MB/s | write vs plaintext | goal |")
lines.append("|---|---:|---:|---:|---:|---|")
plain_r = mean2("nbdlink.plain.c1.read.{r}.mbps")
plain_w = mean2("nbdlink.plain.c1.write.{r}.mbps")
paths = (("nbdlink, plaintext", "nbdlink.plain.c1", None, "—"),
         ("nbdlink, relay (`--no-ktls`)", "nbdlink.relay.c1", 0.8, "≥ 0.80× plaintext, ahead of nbd-client TLS"),
         ("nbdlink, kTLS", "nbdlink.tls.c1", 0.95, "≥ 0.95× plaintext, ahead of nbd-client TLS"),
         ("nbd-client TLS (its GnuTLS proxy)", "nbd-client.tls.c1", None, "—"))
ref_r = mean2("nbd-client.tls.c1.read.{r}.mbps")
ref_w = mean2("nbd-client.tls.c1.write.{r}.mbps")
for name, key, goal, goal_text in paths:
    r = mean2(f"{key}.read.{{r}}.mbps")
    w = mean2(f"{key}.write.{{r}}.mbps")
    lines.append(f"| {name} | {fmt(r)} | {fr(ratio(r, plain_r))} | {fmt(w)} | {fr(ratio(w, plain_w))} | {goal_text} |")
    if goal is not None:
        for kind, x, p0, ref in (("read", r, plain_r, ref_r), ("write", w, plain_w, ref_w)):
            rp = ratio(x, p0)
            target(f"{name} sequential {kind} ≥ {goal:.2f}× plaintext", fr(rp), f"≥ {goal:.2f}×",
                   None if rp is None else rp >= goal)
            rn = ratio(x, ref)
            target(f"{name} sequential {kind} ahead of nbd-client TLS", fr(rn), "> 1.00×",
                   None if rn is None else rn > 1.0)

# ---- 64 devices, memory -------------------------------------------------------
one = num("lat.nbdlink-call.attach_median_ms")
par = num("par.parallel_total_ms")
lines.append("\n### 64 devices attached in parallel (nbds_max=64), and nbdlinkd's memory\n")
lines.append("| figure | value |")
lines.append("|---|---:|")
lines.append(f"| one attach (median, above) | {fmt(one)} ms |")
lines.append(f"| 64 attaches at once: all replies | {fmt(num('par.parallel_replies_ms'))} ms |")
lines.append(f"| 64 attaches at once: until block 0 of each read | {fmt(par)} ms ({fr(ratio(par, one))} one attach) |")
npar = num("par.nbd-client_total_ms")
if npar is not None:
    nref = num("lat.nbd-client.attach_median_ms")
    lines.append(f"| for comparison: 64 `nbd-client` processes at once, until block 0 of each read | {fmt(npar)} ms "
                 f"({fr(ratio(npar, nref))} one nbd-client attach) |")
idle = num("daemon.idle.rss_kib")
before = num("par.rss_before_kib")
before_st = num("par.rss_before_stacks_kib")
att = num("par.rss_attached_kib")
att_st = num("par.rss_attached_stacks_kib")
thr = num("par.rss_attached_threads")
per_dev = None
if None not in (before, before_st, att, att_st):
    per_dev = ((att - att_st) - (before - before_st)) / 64
lines.append(f"| nbdlinkd RSS, idle (fresh) | {fmt(idle)} KiB: anonymous {fmt(num('daemon.idle.rss_anon_kib'))} KiB, "
             f"the rest shared library pages; PSS {fmt(num('daemon.idle.rss_pss_kib'))} KiB |")
lines.append(f"| nbdlinkd RSS before the 64 (after the runs above) | {fmt(before)} KiB |")
lines.append(f"| nbdlinkd RSS with 64 attached | {fmt(att)} KiB, of it thread stacks {fmt(att_st)} KiB, "
             f"anonymous {fmt(num('par.rss_attached_anon_kib'))} KiB, {fmt(thr)} threads |")
lines.append(f"| per device beyond thread stacks | {fmt(per_dev)} KiB |")
lines.append(f"| nbdlinkd RSS after detaching all | {fmt(num('daemon.after.rss_kib'))} KiB |")
pr = ratio(par, one)
target("64 parallel attaches ≤ 3× one attach", fr(pr), "≤ 3.00×", None if pr is None else pr <= 3)
target("RSS idle ≤ 4 MiB", f"{fmt(idle)} KiB", "≤ 4096 KiB", None if idle is None else idle <= 4096)
target("RSS per device beyond thread stacks ≤ 256 KiB", f"{fmt(per_dev)} KiB", "≤ 256 KiB",
       None if per_dev is None else per_dev <= 256)

# What the idle daemon's resident pages are: the biggest mappings.
try:
    rss_by = {}
    name = ""
    with open(os.path.join(a.results, "smaps-idle")) as f:
        for line in f:
            m = re.match(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$", line)
            if m:
                name = os.path.basename(m.group(1).strip()) or "[anonymous]"
            elif line.startswith("Rss:"):
                rss_by[name] = rss_by.get(name, 0) + int(line.split()[1])
    top = sorted(rss_by.items(), key=lambda kv: -kv[1])[:8]
    lines.append("\nThe idle daemon's resident pages by mapping (from /proc/PID/smaps): " +
                 ", ".join(f"{n} {v} KiB" for n, v in top) + ".")
except OSError:
    pass

# ---- profiles ----------------------------------------------------------------
profiles = (("nbdlink-tls-read", "TLS sequential read, 1 connection, nbdlink (kTLS)"),
            ("nbdlink-relay-read", "TLS sequential read, 1 connection, nbdlink (relay, `--no-ktls`)"),
            ("nbd-client-tls-read", "TLS sequential read, 1 connection, nbd-client"),
            ("nbdlink-plain-c4-read", "plaintext sequential read, 4 connections, nbdlink"),
            ("nbdlink-parallel-64", "64 nbdlink attaches at once"))
prof_lines = []
for key, label in profiles:
    try:
        with open(os.path.join(a.results, f"profile-{key}-comm.txt")) as f:
            comm = [l.split(None, 1) for l in f if l.strip()]
        with open(os.path.join(a.results, f"profile-{key}-sym.txt")) as f:
            sym = [l.rstrip() for l in f if l.strip()]
    except OSError:
        continue
    shares = ", ".join(f"{c[1].strip()} {c[0]}" for c in comm if len(c) == 2)
    prof_lines.append(f"\n**{label}.** Guest CPU time by process (swapper is idle): {shares}.\n")
    prof_lines.append("```\n" + "\n".join(sym) + "\n```")
    for comm in ("nbdlinkd", "dbus-daemon"):
        try:
            with open(os.path.join(a.results, f"profile-{key}-in-{comm}.txt")) as f:
                inner = [l.rstrip() for l in f if l.strip()]
        except OSError:
            continue
        prof_lines.append(f"\nWithin {comm}'s own share:\n")
        prof_lines.append("```\n" + "\n".join(inner) + "\n```")
if prof_lines:
    prof_lines.insert(0, "### Where the guest's CPU goes (perf, cpu-clock samples on every vCPU; "
                         "separate runs after the figures above)")
profile_text = "\n".join(prof_lines)

table = "\n".join(lines)
tlines = ["| target | measured | goal | verdict |", "|---|---:|---:|---|"]
tlines += [f"| {n} | {v} | {g} | {ok} |" for n, v, g, ok in targets]
ttable = "\n".join(tlines)
print(table)
print()
print(ttable)
if profile_text:
    print()
    print(profile_text)

if a.write:
    def cpu():
        try:
            for line in open("/proc/cpuinfo"):
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return platform.processor()

    with open(a.write, "w") as f:
        f.write("# nbdlink benchmark results\n\n")
        f.write("Written by `bench/run` from one guest boot; compare ratios, not absolute figures: "
                "the guest runs under QEMU's TCG emulator, so every byte costs emulated CPU.\n\n")
        f.write(f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}\n")
        f.write(f"- machine: {cpu()}, {os.cpu_count()} CPUs (shared), host kernel {platform.release()}\n")
        f.write(f"- guest: QEMU TCG (`-accel tcg,thread=multi -cpu max -smp 2 -m 2048`), kernel {fig.get('guest.kernel', '?')}\n")
        f.write("- server: nbdkit 1.32 `memory 1G`, 16 threads, on 127.0.0.1 in the guest "
                "(a second one with `--tls=require` and a generated PKI)\n")
        f.write(f"- whole run (boot included): {a.wall} s\n\n")
        f.write(table + "\n\n### Targets\n\n" + ttable + "\n")
        if profile_text:
            f.write("\n" + profile_text + "\n")
        f.write("\nWhat bounds each target that is not met, and how to read these figures: bench/README.md.\n")
