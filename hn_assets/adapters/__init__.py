"""Adapters: public event logs -> the landing contract (sources layer).

Each adapter maps its source's vocabulary with `contracts.ADAPTER_EVENT_MAPPINGS`, keeps unknown
values as they are (so ingest quarantines them with a reason) and flags rows it cannot read in
`source_error`. Public logs are already pseudonymous: their visitors count as analytics-consented;
they carry no customer profiles, so no personalisation consent exists for them.
"""

from hn_assets.adapters.common import LandResult
from hn_assets.adapters.rees46 import land_rees46
from hn_assets.adapters.retailrocket import land_retailrocket

ADAPTERS = {"rees46": land_rees46, "retailrocket": land_retailrocket}

__all__ = ["ADAPTERS", "LandResult", "land_rees46", "land_retailrocket"]
