"""Search configuration: the knobs kept after measurement (docs/benchmarks-dispatch.md has the
numbers of those measured and dropped) and their translation to OR-Tools search parameters."""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class SearchConfig:
    """Search knobs (defaults are the measured best on our benchmarks, see docs)."""

    # The full-model search: used with ``solution_limit`` (reproducible plans), without the ruin &
    # recreate (``lns=False``) and under a binding remote-doctor limit.
    first_solution: str = "PARALLEL_CHEAPEST_INSERTION"
    metaheuristic: str = "GUIDED_LOCAL_SEARCH"
    gls_lambda: float = 0.1
    lns_time_limit_ms: int = 100
    extra_operators: tuple[str, ...] = ()  # names of local_search_operators fields to switch on
    disabled_operators: tuple[str, ...] = ()
    log_search: bool = False
    # Small problems (jobs x vehicles <= portfolio_max_size) without a warm start: each strategy
    # gets a greedy descent within portfolio_share * budget / len, the best local optimum is the
    # first plan. Larger ones start from our own insertion (``construction.insert``), which plans
    # 1 000 visits in a fraction of a second where OR-Tools' first solutions take minutes.
    portfolio: tuple[str, ...] = ("LOCAL_CHEAPEST_INSERTION", "PATH_CHEAPEST_ARC", "SAVINGS",
                                  "PATH_MOST_CONSTRAINED_ARC")
    portfolio_share: float = 0.8
    portfolio_max_size: int = 3000
    # Ruin & recreate on small sub-models (``lns.ruin_and_recreate``), time-limited solves only:
    # each iteration re-plans the routes around a random visit (2..lns_sub_routes of them + one
    # unused vehicle), removing lns_min_removed..lns_max_removed visits nearest to it.
    lns: bool = True
    lns_min_removed: int = 3
    lns_max_removed: int = 10
    lns_sub_routes: int = 6
    lns_sub_time_limit_s: float = 1.0
    # Optimizer processes (0 = as many as this process has CPUs; 1 = one after the other):
    # independent sub-problems (doctors, nurses) run at once, each with the whole budget; CPUs left
    # over go to one sub-problem's ruin & recreate (set by ``solve`` in ``lns_workers``): with at
    # least ``lns_split_min_routes`` routes, rounds of ``lns_round_s`` on groups of neighbouring
    # routes at once, merged after each round; with fewer, independent runs, the best wins.
    workers: int = 0
    lns_workers: int = 1
    lns_round_s: float = 1.5
    lns_split_min_routes: int = 24
    # Operators switched off in the re-insertion descents: the insertion-LNS / chain / subtrip ones
    # cost ~70 % of a descent (0.49 -> 0.15 s per iteration on R109) for little gain.
    lns_disabled_operators: tuple[str, ...] = (
        "use_global_cheapest_insertion_path_lns", "use_local_cheapest_insertion_path_lns",
        "use_relocate_path_global_cheapest_insertion_insert_unperformed",
        "use_global_cheapest_insertion_visit_types_lns", "use_local_cheapest_insertion_visit_types_lns",
        "use_lin_kernighan", "use_relocate_expensive_chain", "use_exchange_subtrip", "use_relocate_subtrip",
        "use_shortest_path_swap_active", "use_swap_active_chain", "use_shortest_path_two_opt",
        "use_make_chain_inactive", "use_swap_active", "use_relocate_pair", "use_exchange_pair",
        "use_light_relocate_pair")


DEFAULT_CONFIG = SearchConfig()


def search_parameters(cfg: SearchConfig, time_limit_s: float, solution_limit: int | None = None, *,
                      first_solution: str | None = None, metaheuristic: str | None = None,
                      disabled_operators: tuple[str, ...] = ()):
    """OR-Tools search parameters for ``cfg`` (``first_solution``/``metaheuristic`` override it)."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2  # see model.ortools_loaded

    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = getattr(routing_enums_pb2.FirstSolutionStrategy,
                                             first_solution or cfg.first_solution)
    params.local_search_metaheuristic = getattr(routing_enums_pb2.LocalSearchMetaheuristic,
                                                metaheuristic or cfg.metaheuristic)
    params.guided_local_search_lambda_coefficient = cfg.gls_lambda
    params.lns_time_limit.FromMilliseconds(cfg.lns_time_limit_ms)
    ops = params.local_search_operators
    for name in cfg.extra_operators:
        setattr(ops, name, 3)  # BOOL_TRUE
    for name in tuple(cfg.disabled_operators) + tuple(disabled_operators):
        setattr(ops, name, 2)  # BOOL_FALSE
    params.time_limit.FromMilliseconds(max(1, int(time_limit_s * 1000)))
    if solution_limit:
        params.solution_limit = int(solution_limit)
    params.log_search = cfg.log_search
    return params


def cpus(cfg: SearchConfig) -> int:
    """Processes the optimizer may use: ``cfg.workers``, 0 = the CPUs this process may run on."""
    if cfg.workers > 0:
        return cfg.workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
