"""Re-run the decision cores over a recorded stream and compare with what they published live."""

from __future__ import annotations

from collections.abc import Sequence

from ticktape import events as ev
from ticktape.corespec import load_specs
from ticktape.events.codec import encode
from ticktape.subjects import matches


def replay_mismatches(recorded: Sequence[tuple[str, ev.Event]]) -> dict[str, str]:
    """For each core: '' when replaying its inputs in stream order reproduces its recorded
    outputs byte for byte, else a description of the first divergence."""
    result = {}
    for spec in load_specs({}):
        replayed = [
            out
            for subject, event in recorded
            if any(matches(f, subject) for f in spec.filter_subjects)
            for out in spec.core.handle(event)
        ]
        live = [event for _, event in recorded if isinstance(event, spec.outputs)]
        result[spec.name] = _first_difference(live, replayed)
    return result


def _first_difference(live: Sequence[ev.Event], replayed: Sequence[ev.Event]) -> str:
    for i, (a, b) in enumerate(zip(live, replayed, strict=False)):  # the common prefix; lengths below
        if encode(a) != encode(b):
            return f"event {i} differs:\n live:   {encode(a)!r}\n replay: {encode(b)!r}"
    if len(live) != len(replayed):
        return f"live published {len(live)} events, replay produced {len(replayed)}"
    return ""
