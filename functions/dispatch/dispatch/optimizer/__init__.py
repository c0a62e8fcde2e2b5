"""The routing optimizer (the only package importing OR-Tools), by stage:

- ``config``: the search knobs (``SearchConfig``) and OR-Tools parameters; ``cpus``;
- ``model``: the OR-Tools routing model of a problem and the objective it minimises;
- ``construction``: a complete first plan, fast at any size (our insertion, or OR-Tools' first
  solutions + descents on small problems, or from the previous plan);
- ``lns``: improvement by ruin & recreate on small sub-models (the decomposition of large days);
- ``processes``: running parts at once in forked processes;
- ``plan``: reading plans out of the model, merging them;
- ``search``: the pipeline (``solve``).

Anytime: at any budget every servable visit is planned before improvement starts, and the wall
time stays within the budget (model building included). Measurements, and the branches measured
and not kept, are in docs/benchmarks-dispatch.md.
"""
from .config import DEFAULT_CONFIG, SearchConfig, cpus
from .search import solve

__all__ = ["DEFAULT_CONFIG", "SearchConfig", "cpus", "solve"]
