"""The one Definitions of the H.N Commerce ML Platform code location.

Assembled lazily (on first use, then cached) from the `defs/` folder, where each module contributes
its own `defs`; adding an asset module needs no edit here. The layer policies (owners, kinds,
freshness) are applied to every asset in one place, hn_assets/policies.py.
"""

from functools import cache

import dagster as dg

from hn_assets.policies import with_layer_policy
from hn_assets.settings import REPO_ROOT


@cache
def build_definitions() -> dg.Definitions:
    loaded = dg.load_from_defs_folder(path_within_project=REPO_ROOT)
    # Process start-up dominates on small machines: run steps in one process unless configured.
    return dg.Definitions.merge(
        loaded.map_resolved_asset_specs(func=with_layer_policy), dg.Definitions(executor=dg.in_process_executor)
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
