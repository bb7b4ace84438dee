"""A scheduled test, run by the measurement engine (agent/check.py) in a child process.

The engine's HTTP stack and scapy more than double the daemon's memory, and Python never gives
imported modules back: in a child, all of it is returned to the system when the test ends, so the
daemon idles small for years, and a fault in the engine cannot take the daemon down with it.

    python -m agent.measure --config AGENT.toml --interface IF --kind speed|light --target ID
        [--budget BYTES]      -> what it measured, a LinkOutcome (JSON), on stdout

The child only measures: the daemon builds the result from the outcome (agent/envelope.py),
labels it with its seq, radio and health, signs and spools it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import msgspec

from agent.budget import TestKind
from agent.config import AgentConfig, TargetConfig, load_config
from agent.measurements.kind import LinkOutcome
from agent.schedule import Job
from contract.errors import ServiceError
from contract.i18n import _

# Beyond its speed directions' own limits, how long a test may take before it is called hung.
HUNG_AFTER_S = 120.0
ERROR_TAIL = 2000


class EngineMeasure:
    """The engine in this process: each test runs the kinds whose `jobs` name it (a speed test
    every kind, a light one those of a few kB: latency, IPv6, ...)."""

    kinds: frozenset[TestKind] = frozenset({"speed", "light"})

    async def __call__(
        self, config: AgentConfig, job: Job, target: TargetConfig, budget_bytes: int | None
    ) -> LinkOutcome:
        from agent.engine import measure_link, speed_settings  # noqa: PLC0415 - the heavy engine
        from agent.measurements.kind import MeasureOptions  # noqa: PLC0415

        schedule = config.schedule
        speed = speed_settings(
            MeasureOptions().speed, duration_s=schedule.speed_duration_s, flows=schedule.flows
        )
        return await measure_link(
            target.url,
            config.link(job.interface).interface,
            job=job.kind,
            budget_bytes=budget_bytes,
            options=MeasureOptions(speed=speed),
        )


class ChildMeasure:
    """The daemon's side: run one test in `python -m agent.measure` and read its outcome."""

    kinds: frozenset[TestKind] = EngineMeasure.kinds

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path

    async def __call__(
        self, config: AgentConfig, job: Job, target: TargetConfig, budget_bytes: int | None
    ) -> LinkOutcome:
        argv = [
            sys.executable, "-m", "agent.measure", "--config", str(self.config_path),
            "--interface", job.interface, "--kind", job.kind, "--target", target.id,
        ]  # fmt: skip
        if budget_bytes is not None:
            argv += ["--budget", str(budget_bytes)]
        child = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        # Both directions at their longest, then some: beyond that the child is stuck.
        timeout_s = 2 * config.schedule.speed_duration_s + HUNG_AFTER_S
        try:
            async with asyncio.timeout(timeout_s):
                stdout, stderr = await child.communicate()
        except BaseException:
            # Hung, or the daemon is stopping: the test must not outlive it.
            if child.returncode is None:
                child.kill()
                await child.wait()
            raise
        if child.returncode != 0:
            raise ServiceError(
                _("the measurement child exited with {code}: {output}").format(
                    code=child.returncode, output=stderr.decode(errors="replace")[-ERROR_TAIL:]
                ),
                _("see the daemon's log (journalctl -u qos-agent)"),
            )
        if stderr:
            sys.stderr.write(stderr.decode(errors="replace"))
        return msgspec.json.decode(stdout, type=LinkOutcome)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.measure", description=__doc__)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--interface", required=True)
    parser.add_argument("--kind", choices=("speed", "light"), required=True)
    parser.add_argument("--target", required=True, help="a target id of the config")
    parser.add_argument("--budget", type=int, help="bytes the link's monthly budget has left")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    target = next((t for t in config.targets if t.id == args.target), None)
    if target is None:
        parser.error(f"no target {args.target!r} in {args.config}")
    kind: TestKind = args.kind
    job = Job(config.link_config(args.interface).interface, kind)
    outcome = asyncio.run(EngineMeasure()(config, job, target, args.budget))
    sys.stdout.buffer.write(msgspec.json.encode(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
