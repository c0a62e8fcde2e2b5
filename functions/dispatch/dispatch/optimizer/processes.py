"""Running searches in processes at once: OR-Tools holds the GIL during a search, so threads would
not help; fork + a Pipe only, because AWS Lambda has no /dev/shm for multiprocessing's queues."""
from __future__ import annotations

import time


def _child(conn, fn, deadline: float) -> None:
    try:
        res = ("ok", fn(deadline))
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which re-raises it
        res = ("error", exc)
    try:
        try:
            conn.send(res)
        except Exception as exc:  # noqa: BLE001 - e.g. an exception that does not pickle
            conn.send(("error", RuntimeError(f"optimizer worker failed: {exc!r}")))
    finally:
        conn.close()


def run_parallel(tasks, deadline: float, bounded: bool = True) -> list:
    """Run ``task(deadline)`` for every task at once: the first here, the others in forked
    processes (OR-Tools holds the GIL, so threads would not help; fork + a Pipe only, because AWS
    Lambda has no /dev/shm for multiprocessing's queues and pools). Results come back in order;
    a task's exception is re-raised here. Where fork is unavailable the tasks run here one after
    the other; a worker that dies or hangs has its task redone here with whatever time is left."""
    import multiprocessing

    try:
        ctx = multiprocessing.get_context("fork")
    except ValueError:
        return [t(deadline) for t in tasks]
    children = []
    for fn in tasks[1:]:
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(send, fn, deadline), daemon=True)
        proc.start()
        send.close()
        children.append((proc, recv))
    try:
        results = [tasks[0](deadline)]
        for (proc, recv), fn in zip(children, tasks[1:]):
            # a search ends at the deadline; allow for model building and the answer's transfer
            wait = max(5.0, deadline - time.monotonic() + 30.0) if bounded else None
            try:
                got = recv.recv() if recv.poll(wait) else None
            except EOFError:
                got = None
            if got is None:
                results.append(fn(max(deadline, time.monotonic() + 1.0)))
            elif got[0] == "error":
                raise got[1]
            else:
                results.append(got[1])
        return results
    finally:
        for proc, recv in children:
            recv.close()
            # its answer is in (or it failed): a forked search process tearing down its model can
            # take a second, which the caller's deadline has no room for
            proc.join(timeout=0.02)
            if proc.is_alive():
                proc.kill()
                proc.join()
