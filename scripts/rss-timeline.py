#!/usr/bin/env python3
"""rss-timeline.py — runs a command and prints its resident memory over time next to its
stderr lines (e.g. gigascale's `--progress json` events), to see in which stage the peak falls.

    python3 scripts/rss-timeline.py [--every-ms 5] -- gigascale upscale ... --progress json
"""
import subprocess, sys, threading, time


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    yield int(line.split()[1])
    except OSError:
        return


def main():
    args = sys.argv[1:]
    every = 0.005
    if args[:1] == ["--every-ms"]:
        every, args = float(args[1]) / 1000, args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    t0 = time.monotonic()
    p = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    last = [0, 0]

    def events():
        for line in p.stderr:
            print(f"{time.monotonic() - t0:7.3f} s  rss {last[0] // 1024:5d} MiB  | {line.rstrip()[:160]}")

    reader = threading.Thread(target=events)
    reader.start()
    shown = 0
    while p.poll() is None:
        values = list(rss_kib(p.pid))
        if len(values) == 2:
            last[:] = [values[1], values[0]]  # VmRSS, VmHWM as /proc lists VmHWM first
            if last[1] // 1024 >= shown + 8:
                shown = last[1] // 1024
                print(f"{time.monotonic() - t0:7.3f} s  peak now {shown} MiB")
        time.sleep(every)
    reader.join()
    print(f"exit {p.returncode}; last peak seen {last[1] // 1024} MiB")


main()
