"""One MatrixLMS call, start to finish: authenticate, rate-limit, run the function, count it.

Order (inferred): a bad key is answered 401 first (it cannot be attributed to a site, so it is not
counted against one); then the site's rate limit, which refuses every call during a lockout,
``get_version`` and unknown functions included; then the function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulators.matrixlms.errors import MatrixError, bad_request, unauthorized
from simulators.matrixlms.functions import FUNCTIONS, NOT_SIMULATED, Call
from simulators.matrixlms.functions.version import API_VERSION
from simulators.matrixlms.params import Args

if TYPE_CHECKING:
    from simulators.matrixlms.state import MatrixSimulator


def dispatch(sim: MatrixSimulator, function: str, params: dict[str, Any]) -> tuple[int, Any]:
    """Run ``function`` with parsed ``params``; returns (HTTP status, JSON body)."""
    key = params.get("api_key")
    with sim.lock:
        try:
            caller = sim.keys.authenticate(key if isinstance(key, str) else None)
        except MatrixError as exc:
            sim.stats.record_unauthenticated()
            return exc.status, {"message": exc.message}
        store = sim.site(caller.site)
        now = sim.clock.now()
        limit = sim.config.rate_limit
        scope = f"site:{caller.site}" if limit.scope == "site" else caller.fingerprint
        decision = sim.limiter.check(scope, now)
        if not decision.admitted:
            if decision.triggered and decision.locked_until is not None:
                sim.stats.record_lockout(caller.site, scope, now, decision.locked_until)
            sim.stats.record_call(caller.site, function, limit.status, now, refused=True)
            return limit.status, {"message": limit.message}
        try:
            if not store.api_enabled:
                raise unauthorized("API access is disabled for this site")  # undocumented text, A.1
            body = _run(store_call=Call(store, Args(params), now, sim.config), function=function)
            status = 200
        except MatrixError as exc:
            status, body = exc.status, {"message": exc.message}
        sim.stats.record_call(caller.site, function, status, now)
        return status, body


def _run(*, store_call: Call, function: str) -> Any:
    version = store_call.args.string("api_version")
    if version not in (None, "", str(API_VERSION)):
        raise bad_request(f"Unsupported API version: {version}")  # inferred
    implementation = FUNCTIONS.get(function)
    if implementation is None:
        if function in NOT_SIMULATED:
            raise bad_request(f"Function not simulated: {function}")
        raise bad_request(f"Unknown function: {function}")
    return implementation(store_call)
