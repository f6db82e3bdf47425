"""Run a gigascale OME-Zarr job on Dask: plan, one task per unit, finalize.

Tasks call the `gigascale` binary (``GIGASCALE_BIN`` or ``PATH``); they move no pixels through
Dask, only a short report per unit. Units are independent (each writes its own shards, renamed
into place whole), so a failed or lost task is simply run again: ``retries`` times by Dask.

Command line::

    python -m gigascale.dask IN OUT.ome.zarr --scale 8 --workers 2 [--scheduler ADDRESS]
        [--max-memory 2G] [--retries 2] [any other `gigascale upscale` option]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import uuid

# Options of `gigascale run` (each unit's own); every other option shapes the output and goes
# to `gigascale plan`.
RUN_OPTIONS = ("max_memory", "threads", "backend", "gpu_memory", "temp_dir")


def binary(path: str | None = None) -> str:
    """The gigascale binary: `path`, else $GIGASCALE_BIN, else `gigascale` on PATH."""
    found = path or os.environ.get("GIGASCALE_BIN") or shutil.which("gigascale")
    if not found:
        raise FileNotFoundError("gigascale binary not found: set GIGASCALE_BIN or put it on PATH")
    return found


def flags(options: dict) -> list[str]:
    """`{"scale": 8, "pyramid": True}` -> `["--scale", "8", "--pyramid"]`."""
    out: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value is not None and value is not False:
            out += [flag, str(value)]
    return out


def plan(bin_path: str, input: str, output: str, plan_flags: list[str]) -> int:
    """Runs `gigascale plan`; returns the number of units."""
    cmd = [bin_path, "plan", str(input), str(output), "-q", *plan_flags]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"gigascale plan failed: {done.stderr.strip()}")
    return int(done.stdout.strip())


def run_unit(bin_path: str, output: str, unit: int, run_flags: list[str]) -> dict:
    """One task: `gigascale run OUTPUT --unit UNIT`. Returns a short report; raises on failure
    (so that Dask retries it)."""
    t0 = time.monotonic()
    cmd = [bin_path, "run", str(output), "--unit", str(unit), "-q", *run_flags]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"unit {unit} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return {"unit": unit, "seconds": round(time.monotonic() - t0, 3), "host": os.uname().nodename}


def finalize(bin_path: str, output: str) -> str:
    """Runs `gigascale finalize`; returns its summary line."""
    done = subprocess.run([bin_path, "finalize", str(output)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"gigascale finalize failed: {done.stderr.strip()}")
    return done.stderr.strip()


def upscale(input, output, client=None, workers: int = 2, retries: int = 2, progress: bool = True,
            gigascale_bin: str | None = None, plan_flags: list[str] | None = None, **options) -> dict:
    """Upscales `input` into the OME-Zarr directory `output` on Dask.

    `options` are `gigascale upscale` options with underscores (``scale=8``, ``pyramid=True``,
    ``filter="lanczos3"``, ``max_memory="2G"``); `plan_flags` are extra `gigascale plan` flags
    as a list (``["--scale", "8"]``). Without `client` a ``LocalCluster`` of
    `workers` single-threaded worker processes is started (and closed). Returns
    ``{"units", "reports", "finalize", "seconds"}``.
    """
    from distributed import Client, LocalCluster, as_completed

    t0 = time.monotonic()
    bin_path = binary(gigascale_bin)
    run_opts = {k: options.pop(k) for k in RUN_OPTIONS if k in options}
    units = plan(bin_path, input, output, flags(options) + list(plan_flags or []))
    own = None
    if client is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        own = client = Client(cluster)
    try:
        if "threads" not in run_opts:
            cores = sum(client.ncores().values()) or 1
            run_opts["threads"] = max(1, (os.cpu_count() or 1) // max(1, cores))
        run_flags = flags(run_opts)
        job = uuid.uuid4().hex[:12]  # task keys unique on a shared scheduler
        futures = [client.submit(run_unit, bin_path, str(output), u, run_flags, retries=retries,
                                 key=f"gigascale-{job}-unit-{u}", pure=False)
                   for u in range(units)]
        reports = []
        for n, future in enumerate(as_completed(futures), 1):
            report = future.result()
            reports.append(report)
            if progress:
                print(f"gigascale: unit {report['unit']} done in {report['seconds']} s "
                      f"on {report['host']} ({n}/{units})", file=sys.stderr, flush=True)
    finally:
        if own is not None:
            cluster = own.cluster
            own.close()
            cluster.close()
    summary = finalize(bin_path, output)
    if progress:
        print(summary, file=sys.stderr)
    reports.sort(key=lambda r: r["unit"])
    return {"units": units, "reports": reports, "finalize": summary,
            "seconds": round(time.monotonic() - t0, 3)}


def main(argv: list[str] | None = None) -> int:
    """`python -m gigascale.dask IN OUT --scale 8 --workers 2 [--scheduler ADDRESS] ...`."""
    p = argparse.ArgumentParser(
        prog="python -m gigascale.dask",
        description="Run a gigascale OME-Zarr job on Dask: plan, one task per unit, finalize. "
                    "Options not listed here go to `gigascale plan` (e.g. --scale 8 --pyramid).")
    p.add_argument("input")
    p.add_argument("output", help="OUT.ome.zarr")
    p.add_argument("--workers", type=int, default=2, help="LocalCluster workers (without --scheduler)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://head:8786")
    p.add_argument("--retries", type=int, default=2, help="retries of a failed unit")
    p.add_argument("--max-memory", help="each unit's memory budget (gigascale run --max-memory)")
    p.add_argument("--threads", type=int, help="each unit's worker threads")
    p.add_argument("--backend", help="each unit's backend: auto, gpu, cpu")
    p.add_argument("--temp-dir", help="each unit's scratch directory")
    p.add_argument("--gigascale-bin", help="the gigascale binary (default: $GIGASCALE_BIN or PATH)")
    args, plan_args = p.parse_known_args(argv)
    client = None
    if args.scheduler:
        from distributed import Client
        client = Client(args.scheduler)
    run_opts = {"max_memory": args.max_memory, "threads": args.threads, "backend": args.backend,
                "temp_dir": args.temp_dir}
    opts = {k: v for k, v in run_opts.items() if v is not None}
    try:
        # Options not known here pass through verbatim to `gigascale plan`.
        result = upscale(args.input, args.output, client=client, workers=args.workers,
                         retries=args.retries, gigascale_bin=args.gigascale_bin,
                         plan_flags=plan_args, **opts)
    except (RuntimeError, FileNotFoundError) as e:
        print(f"gigascale.dask: error: {e}", file=sys.stderr)
        return 1
    finally:
        if client is not None:
            client.close()
    print(f"gigascale.dask: {result['units']} units in {result['seconds']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
