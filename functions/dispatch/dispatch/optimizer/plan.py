"""Plans out of the model: a search's assignment read as routes with times, and merging plans."""
from __future__ import annotations

from dataclasses import replace

from ..problem import UNBOUNDED_END, Problem, Route, Solution, Step
from .model import Model


def extract(m: Model, assignment) -> Solution:
    """The plan of an assignment: steps with service starts as early as the sequence allows."""
    p, routing, manager, time_dim = m.problem, m.routing, m.manager, m.time_dim
    jobs_by_idx = {idx: j for j, idx in ((j, m.job_index[j.id]) for j in m.jobs)}
    breaks_by_vehicle: dict[int, list[tuple[int, object]]] = {}
    ivs = assignment.IntervalVarContainer()
    for i in range(ivs.Size()):
        el = ivs.Element(i)
        name = el.Var().Name()
        if name in m.break_intervals and el.PerformedValue():
            vid, b = m.break_intervals[name]
            breaks_by_vehicle.setdefault(vid, []).append((el.StartValue(), b))
    prev_vehicle = {jid: vid for vid, seq in p.previous_routes.items() for jid in seq}
    calls_limited = p.calls_limited() and any(j.video_call_seconds > 0 for j in p.jobs)
    routes, served = [], set()
    tot_travel = tot_service = tot_wait = reassign = 0
    for k, v in enumerate(p.vehicles):
        idx = routing.Start(k)
        nodes = []
        idx = assignment.Value(routing.NextVar(idx))
        while not routing.IsEnd(idx):
            nodes.append(idx)
            idx = assignment.Value(routing.NextVar(idx))
        if not nodes:
            continue
        brks = sorted(breaks_by_vehicle.get(v.id, []), key=lambda x: x[0])
        cum = [assignment.Value(time_dim.CumulVar(i)) for i in nodes]
        start_t = assignment.Value(time_dim.CumulVar(routing.Start(k)))
        end_t = assignment.Value(time_dim.CumulVar(routing.End(k)))
        first = jobs_by_idx[nodes[0]]
        d0 = p.durations[v.start][first.location] if v.start is not None else 0
        if not brks or brks[0][0] >= cum[0]:
            start_t = max(start_t, cum[0] - d0)
        if brks and brks[0][0] < start_t:  # break before leaving: taken at the start location
            start_t = brks[0][0]
        steps = [Step("start", None, start_t, 0, 0, v.start)]
        loc, t_free, bi = v.start, start_t, 0
        for i, ci in zip(nodes, cum):
            j = jobs_by_idx[i]
            gap_breaks = 0
            while bi < len(brks) and brks[bi][0] < ci:
                bs, b = brks[bi]
                steps.append(Step("break", b.id, bs, b.service, 0, None))
                gap_breaks += b.service
                bi += 1
            d = p.durations[loc][j.location] if loc is not None else 0
            wait = max(0, ci - (t_free + d + gap_breaks))
            steps.append(Step("job", j.id, ci, j.service, wait, j.location))
            tot_travel += d
            tot_service += j.service
            served.add(j.id)
            if j.id in prev_vehicle and prev_vehicle[j.id] != v.id:
                reassign += p.reassignment_cost
            loc, t_free = j.location, ci + j.service
        gap_breaks = 0
        while bi < len(brks):
            bs, b = brks[bi]
            steps.append(Step("break", b.id, bs, b.service, 0, None))
            gap_breaks += b.service
            bi += 1
        d = p.durations[loc][v.end] if v.end is not None else 0
        tot_travel += d
        end_t = max([end_t, t_free + d + gap_breaks] + [bs + b.service for bs, b in brks])
        steps.append(Step("end", None, end_t, 0, 0, v.end))
        if not calls_limited:
            steps = earliest_schedule(p, v, steps) or steps
        tot_wait += sum(st.waiting_time for st in steps)
        routes.append(Route(v.id, tuple(steps)))
    unassigned = tuple(sorted(set(m.unservable) | {j.id for j in m.jobs if j.id not in served}))
    return Solution(tuple(routes), unassigned, tot_travel + reassign, tot_travel, tot_service, tot_wait)


def earliest_schedule(p: Problem, v, steps: list[Step]) -> list[Step] | None:
    """Same sequence (jobs and breaks), every service as early as possible (the solver's own cumul
    values are any feasible point when breaks make it use its scheduling LP). A break is placed at
    the earliest point of its gap; the next service waits for drive + breaks. Each time is <= the
    solver's, so windows stay met; returns None if anything does not fit (then the solver's
    schedule is kept). Not used with a remote-doctor limit (moving visits moves calls)."""
    jobs = {j.id: j for j in p.jobs}
    breaks = {b.id: b for b in v.breaks}
    D = p.durations
    inf = UNBOUNDED_END
    tw0, tw1 = v.time_window
    t_free, loc = tw0, v.start
    pending: list[Step] = []
    out: list[Step] = []
    for st in steps[1:]:
        if st.type == "break":
            pending.append(st)
            continue
        if st.type == "job":
            j = jobs[st.id]
            dest, service, wins = j.location, j.service, sorted(j.time_windows) or [(0, inf)]
        else:
            dest, service, wins = v.end, 0, [(0, inf)]
        d = D[loc][dest] if (loc is not None and dest is not None) else 0
        bt, bsum = t_free, 0
        for b in pending:
            bo = breaks[b.id]
            bw = sorted(bo.time_windows) or [(tw0, inf)]
            bs = next((max(bt, a) for a, e in bw if max(bt, a) <= e), None)
            if bs is None:
                return None
            out.append(replace(b, arrival=bs, waiting_time=0))
            bt, bsum = bs + bo.service, bsum + bo.service
        pending = []
        ready = t_free + d + bsum
        arr = max(ready, bt)
        start = next((max(arr, a) for a, e in wins if max(arr, a) <= e), None)
        if start is None or start + service > tw1:
            return None
        out.append(replace(st, arrival=start, waiting_time=start - ready if st.type == "job" else 0))
        t_free, loc = start + service, dest
    if pending:
        return None
    # Leave as late as possible for the first job when no break comes first.
    first = out[0] if out else None
    start_t = tw0
    if first is not None and first.type == "job":
        d0 = D[v.start][jobs[first.id].location] if v.start is not None else 0
        start_t = max(tw0, first.arrival - d0)
        out[0] = replace(first, waiting_time=first.arrival - (start_t + d0))
    elif first is not None and first.type == "break":
        # Leading breaks: the vehicle must still leave early enough to drive to the first stop
        # and take those breaks before it (the breaks may be taken on arrival, while waiting).
        lead = 0
        nxt = None
        for st in out:
            if st.type != "break":
                nxt = st
                break
            lead += breaks[st.id].service
        start_t = first.arrival
        if nxt is not None:
            dest = jobs[nxt.id].location if nxt.type == "job" else v.end
            d0 = D[v.start][dest] if (v.start is not None and dest is not None) else 0
            start_t = max(tw0, min(start_t, nxt.arrival - d0 - lead))
            if nxt.type == "job":
                i = out.index(nxt)
                out[i] = replace(nxt, waiting_time=max(0, nxt.arrival - (start_t + d0 + lead)))
    return [replace(steps[0], arrival=start_t, waiting_time=0)] + out


def merge(problem: Problem, sols, unassigned=()) -> Solution:
    """One plan from plans of disjoint sets of vehicles (and ``unassigned``, visits none of them
    planned): routes in the problem's vehicle order, figures summed."""
    by_vehicle: dict[int, Route] = {r.vehicle: r for s in sols for r in s.routes}
    return Solution(tuple(by_vehicle[v.id] for v in problem.vehicles if v.id in by_vehicle),
                    tuple(sorted({*unassigned, *(j for s in sols for j in s.unassigned)})),
                    sum(s.cost for s in sols), sum(s.duration for s in sols), sum(s.service for s in sols),
                    sum(s.waiting_time for s in sols))
