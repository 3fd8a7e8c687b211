"""Run a sweep (cards x tasks x settings) on Ray: plan, shard, write as it goes, resume, exit code for cron.

Exit codes: 0 every unit done (now or before); 1 some units failed (see the summary and the failures
table); 2 bad input (one line); 3 internal error (one line, traceback in a log file); 130 interrupted. A rerun skips finished units and shards (--force recomputes).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from harness.cli.args import count, directory, seconds
from harness.cli.console import console as make_console
from harness.errors import HarnessError
from harness.registry import TASKS, remote_code_warning
from harness.store.store import ResultStore, check_writable_dir
from harness.sweep import load_sweep, plan_sweep


def add_arguments(p) -> None:
    p.add_argument("sweep", help="sweep file (tasks/sweeps/*.yaml)")
    p.add_argument("--out", type=directory, help="results directory (default: the sweep's `out`, else results/<name>)")
    p.add_argument("--dry-run", action="store_true", help="print the plan (units, shards, CPU/GPU needs) and exit")
    p.add_argument("--address", help="Ray cluster (HOST:PORT, auto); default $RAY_ADDRESS, else a local loopback cluster")
    p.add_argument("--num-cpus", type=count, help="CPUs of the local cluster (default: all)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", dest="force", action="store_false", default=False,
                       help="skip finished units and reuse trained heads and finished shards (the default)")
    group.add_argument("--force", dest="force", action="store_true", help="recompute every unit, finished or not")
    p.add_argument("--max-in-flight", type=count, help="Ray tasks in flight at once (default: the sweep's, else 2 x slots)")
    p.add_argument("--wait-for-resources", type=seconds, default=0.0, metavar="SECONDS",
                   help="on an autoscaling cluster, wait this long for nodes that fit the requests")
    p.add_argument("--cache", type=directory, help="embedding cache directory on the workers")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _dry_run(plan, out: Path) -> int:
    from harness.runner.resume import reusable_shards
    from harness.sweep.estimate import estimate

    store = ResultStore(out, create=False) if (out / "_recon_harness.json").is_file() else None
    est = estimate(plan, store, reusable_shards)
    res = plan.spec.resources
    table = Table(title=escape(f"sweep {plan.spec.name}: plan -> {out}"))
    for col in ("card", "task", "units", "done", "shards/unit", "shards to run"):
        table.add_column(col, justify="right" if col not in ("card", "task") else "left")
    for (card, task), r in est.rows.items():
        table.add_row(card, task, str(r["units"]), str(r["done"]), str(r["shards_per_unit"]), str(r["shards"]))
    con = make_console()
    con.print(table)
    con.print(
        f"units {est.units} ({est.done} done" + (f", {est.renamed} of them under an older release's ids: the sweep "
                                                  "renames them" if est.renamed else "")
        + f", {est.units - est.done} to run, {est.unresolved} unresolvable); "
        f"shards to run {est.shards}" + (f" ({est.reused} stored reused)" if est.reused else "")
        + f", each {res.shard.num_cpus:g} CPU + {res.shard.num_gpus:g} GPU; "
        f"backbone actors {len(plan.cards)} x ({res.embed.num_cpus:g} CPU + {res.embed.num_gpus:g} GPU)"
    )
    if est.shard_budget_s:
        con.print(
            f"at most {est.cpu_hours(res.shard.num_cpus):.2f} CPU-hours and {est.gpu_hours(res.shard.num_gpus):.2f} "
            "GPU-hours of attack (the time budgets)"
        )
    return 0


def main(args) -> int:
    from harness.runner.cluster import check_out_outlives_job
    from harness.runner.lock import StoreLock

    t0 = time.perf_counter()
    spec = _load(args.sweep)
    plan = plan_sweep(spec, args.sweep)
    out = Path(args.out or spec.out or f"results/{spec.name}")
    check_out_outlives_job(out, "--out" if args.out else "out")
    if not args.dry_run:  # a dry run writes nothing: a read-only results directory is fine to plan against
        ResultStore.check(out, "--out" if args.out else "out")
        if args.cache:  # every unit embeds into it: unwritable, each would fail at its first stage
            check_writable_dir(args.cache, "--cache")
    for card, _, _ in plan.cards:
        line = remote_code_warning(card)
        if line:
            print(line, file=sys.stderr)
    if args.dry_run:
        return _dry_run(plan, out)
    with StoreLock(out):  # before anything else: another writer here is refused before a cluster starts
        return _sweep(args, spec, plan, out, t0)


def _sweep(args, spec, plan, out: Path, t0: float) -> int:
    from harness.cli import term_as_interrupt
    from harness.runner.cluster import check_requests, connect, unused_gpus_notice
    from harness.runner.driver import Options, SweepDriver

    moved = _reconcile(plan, out) if not args.force else []
    if not args.force and _all_done(plan, out):
        print(f"sweep {spec.name}: all {plan.n_units} units already done in {out}; nothing to run (--force recomputes)")
        if moved:
            _refresh_report(out)
        return 0
    where = connect(args.address, args.num_cpus)
    try:
        term_as_interrupt()  # after Ray's driver set its own SIGTERM handler (a core dump line and exit 1)
        requests = {k: getattr(spec.resources, k).ray_options() for k in ("embed", "train", "shard", "finish")}
        notice = unused_gpus_notice(requests, check_requests(requests, args.wait_for_resources))
        if notice:
            print(notice, file=sys.stderr)
        slots = _slots(requests["shard"])
        limit = args.max_in_flight or spec.max_in_flight or max(4, 2 * slots)
        opts = Options(out=out, cache_dir=args.cache, force=args.force, max_in_flight=limit, progress=not args.quiet)
        driver = SweepDriver(plan, opts)
        c = driver.run()
        con = make_console(stderr=True)
        con.print(
            f"sweep {spec.name} on {where}: units {c.units_total} - {c.units_done} done now, {c.units_skipped} already done, "
            f"{c.units_failed} failed; shards {c.shards_run} run, {c.shards_reused} reused, {c.shards_failed} failed; "
            f"{time.perf_counter() - t0:.1f}s -> {escape(str(out))}", soft_wrap=True,  # one line in a log, however long (grep, mail)
        )
        for f in driver.failures[:20]:
            con.print(f"  failed {f['unit_id']} [{f['stage']}]: {f['error'][:200]}", markup=False, highlight=False, soft_wrap=True)
        if len(driver.failures) > 20:
            con.print(escape(f"  ... and {len(driver.failures) - 20} more: `recon-harness leaderboard {out} --failures`"))
        con.print(escape(f"the table: recon-harness leaderboard {out}; the page: recon-harness report {out}"), soft_wrap=True)
        if moved or c.units_done:
            _refresh_report(out)
        return 0 if c.ok else 1
    finally:
        if where != "already connected":  # ours to end: under our SIGTERM handler, not at interpreter exit
            import ray

            ray.shutdown()


def _load(path: str):
    """The sweep spec; a task file given instead is named as one (not by the sweep field its keys miss)."""
    try:
        return load_sweep(path)
    except HarnessError:
        if not _is_task(path):
            raise
        raise HarnessError("sweep", path, "this is a task file; run it with recon-harness run, or list it under a sweep's tasks:") from None


def _is_task(path: str) -> bool:
    try:
        TASKS.load_file(path)
    except HarnessError:
        return False
    return True


def _refresh_report(out: Path) -> None:
    """A report page written before (by `run` or `report`) is rebuilt: it would show units since replaced."""
    if (out / "report.html").is_file():
        from harness.report import build_report

        print(f"report rebuilt: {build_report(out)}", file=sys.stderr)


def _reconcile(plan, out: Path) -> list[tuple[str, str]]:
    """Units done under the ids an older release gave them take this release's ids (not recomputed, nor retired);
    then what the plan's done units supersede goes (a run cut short after a unit's victims file left it), the store's
    rows read once."""
    from harness.store.adopt import adopt_all
    from harness.store.supersede import retire_for

    if not (out / "_recon_harness.json").is_file():
        return []
    store = ResultStore(out)
    moved = adopt_all(store, [(pu.unit_id, pu.unit.settings()) for pu in plan.units() if pu.error is None])
    retire_for(store, [pu.unit_id for pu in plan.units()])
    if moved:
        shown = ", ".join(f"{old} -> {new}" for old, new in moved[:3]) + (", ..." if len(moved) > 3 else "")
        print(f"{len(moved)} unit(s) done under the ids an older release gave them, renamed to this release's ids "
              f"(the same work on the same data; not recomputed): {shown}", file=sys.stderr)
    return moved


def _all_done(plan, out: Path) -> bool:
    if not (out / "_recon_harness.json").is_file():
        return False
    store = ResultStore(out, create=False)
    return all(store.has("victims", pu.unit_id) for pu in plan.units())


def _slots(shard: dict) -> int:
    """How many shards the whole cluster runs at once."""
    import ray

    total = ray.cluster_resources()
    n = [total.get(key, 0.0) / shard[opt] for opt, key in (("num_cpus", "CPU"), ("num_gpus", "GPU")) if shard.get(opt)]
    return max(1, int(min(n))) if n else 1
