"""Transform throughput on one CPU core, per profile, over a corpus of RudderStack-spec events.

Usage (from the repository root):
    .venv/bin/python bench/transform.py [CORPUS.jsonl] [--rounds N] [--cpu K] [--profile P ...]
                                        [--events N] [--json FILE]

Without a corpus it runs ../shared/bench/gen_events.py 20000 (the project's reference corpus;
the nearest `shared/` above the checkout), if that script is there, else our own sample events
(`consumer.sample`, as bench/e2e.py does). JSON is parsed before timing; the timed loop is `transform(message,
config)` for every event, with the destination's config looked up by `destinationId` as the
router hands it over. Prints events/s per round, then best and median per profile. Asserts
nothing: the design target (≥ 100k events/s, default profile) is read off the numbers.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from _corpus import load_corpus

from consumer.transform import Accepted, Profile, Rejected, TransformConfig, transform

DESTINATIONS = tuple(f"dest-{i}" for i in range(8))  # the corpus's, configured by configs()
REGIONS = ("in1", "us1", "sg1", None, "eu1", "aps3", "mec1", "sk1")


def configs(profile: Profile) -> dict[Any, TransformConfig]:
    """Eight destinations like the corpus's: every region, objectId mapping on half of them."""
    return {
        dest: TransformConfig(
            account_id=f"ACC-{i}",
            region=REGIONS[i],
            track_anonymous=True,
            enable_object_id_mapping=i >= 4,
            profile=profile,
        )
        for i, dest in enumerate(DESTINATIONS)
    }


def one_round(pairs: list[tuple[dict[str, Any], TransformConfig]]) -> tuple[float, float]:
    """(events per wall-clock second, events per CPU second of this process).

    On a machine shared with other work the two differ: wall-clock is what a pinned consumer
    would see right now, CPU time is what one core does when it is not shared.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    for message, config in pairs:
        transform(message, config)
    return len(pairs) / (time.perf_counter() - wall), len(pairs) / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("corpus", nargs="?", type=Path, help="JSON-lines events (default: generated)")
    parser.add_argument("--rounds", type=int, default=7, help="timed passes over the corpus per profile")
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last allowed)")
    parser.add_argument(
        "--profile",
        action="append",
        choices=[p.value for p in Profile],
        help="profile(s) to run (default: both)",
    )
    parser.add_argument("--events", type=int, default=20000, help="how many events to generate")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file (for bench/run.py)")
    args = parser.parse_args()

    allowed = sorted(os.sched_getaffinity(0))
    cpu = args.cpu if args.cpu is not None else allowed[-1]
    os.sched_setaffinity(0, {cpu})
    _, messages = load_corpus(args.corpus, args.events, destinations=DESTINATIONS)
    gc.collect()
    gc.freeze()  # the corpus is not garbage: keep the collector from rescanning it every round
    profiles = [Profile(p) for p in args.profile] if args.profile else [Profile.DEFAULT, Profile.RUDDERSTACK]
    print(f"corpus: {len(messages)} events; pinned to CPU {cpu}; Python {sys.version.split()[0]}")
    workloads: dict[Profile, list[tuple[dict[str, Any], TransformConfig]]] = {}
    for profile in profiles:
        by_destination = configs(profile)
        fallback = by_destination["dest-0"]
        pairs = [(m, by_destination.get(m.get("destinationId"), fallback)) for m in messages]
        results = [transform(m, c) for m, c in pairs]
        accepted = sum(isinstance(r, Accepted) for r in results)
        rejected = sum(isinstance(r, Rejected) for r in results)
        print(f"{profile.value:>11}: accepted {accepted}, rejected {rejected}")
        one_round(pairs)  # warm-up
        workloads[profile] = pairs
    # Profiles take turns round by round, so a burst of load from other processes on a shared
    # machine hits both rather than whichever happened to run then.
    rates: dict[Profile, list[tuple[float, float]]] = {p: [] for p in profiles}
    for _ in range(args.rounds):
        for profile in profiles:
            rates[profile].append(one_round(workloads[profile]))
    numbers: dict[str, Any] = {"events": len(messages), "rounds": args.rounds, "cpu": cpu, "profiles": {}}
    for profile in profiles:
        wall = [w for w, _ in rates[profile]]
        on_cpu = [c for _, c in rates[profile]]
        print(f"{profile.value:>11}: wall events/s per round: " + " ".join(f"{r:,.0f}" for r in wall))
        print(f"{'':>11}  CPU  events/s per round: " + " ".join(f"{r:,.0f}" for r in on_cpu))
        print(
            f"{profile.value:>11}: best {max(wall):,.0f} events/s, median {statistics.median(wall):,.0f} events/s "
            f"(wall clock); per CPU second: best {max(on_cpu):,.0f}, median {statistics.median(on_cpu):,.0f}"
        )
        numbers["profiles"][profile.value] = {
            "events_per_cpu_s_median": statistics.median(on_cpu),
            "events_per_cpu_s_best": max(on_cpu),
            "events_per_wall_s_median": statistics.median(wall),
        }
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(numbers, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
