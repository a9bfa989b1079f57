"""Pure health rules: what a heartbeat's contents say about a kiosk. No ORM, no I/O."""

from dataclasses import dataclass

from fleet.vocabulary import HEALTHY_STATES, worrying_metrics


@dataclass(frozen=True)
class Assessment:
    status: str  # "online" or "degraded"
    reason: str  # a StatusChange.Reason value explaining the status
    detail: str


def assess(components: dict[str, str], metrics: dict[str, float]) -> Assessment:
    """Online when every reported component is healthy and no metric is past its threshold; else degraded."""
    unhealthy = sorted(f"{name}={state}" for name, state in components.items() if state not in HEALTHY_STATES)
    if unhealthy:
        return Assessment("degraded", "component_fault", ", ".join(unhealthy))
    worrying = worrying_metrics(metrics)
    if worrying:
        detail = ", ".join(f"{name}={metrics[name]}" for name in worrying)
        return Assessment("degraded", "metric_threshold", detail)
    return Assessment("online", "recovered", "")


def is_flapping(flips_in_window: int, threshold: int) -> bool:
    return flips_in_window >= threshold


def flapping_has_ended(flips_in_window: int, threshold: int) -> bool:
    """Hysteresis: flapping ends only once the rate falls well below the threshold that started it."""
    return flips_in_window < max(1, threshold // 2)
