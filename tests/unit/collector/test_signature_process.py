"""The verify stage's signature process: same answers as the in-process check, and a process that
dies costs only the results it held (counted, no receipt), not the ones after it."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from concurrent.futures.process import BrokenProcessPool

import msgspec

from collector.ingest import Candidate, ResultRejectedError, verify
from collector.pipeline.verify import SignatureProcess
from collector.registry import Enrollment
from contract.signing import new_private_key, sign_result
from tests.strategies import sample_result

PROBE = "vn-79-sigproc"
KEY = new_private_key()


def _candidates() -> list[Candidate]:
    location = sample_result(PROBE).location
    assert location is not None
    trusted = Enrollment(location, KEY.public_key())
    disputed = Enrollment(location, KEY.public_key(), "disputed")
    genuine = sign_result(sample_result(PROBE), KEY)
    forged = msgspec.structs.replace(genuine, seq=genuine.seq + 1)  # signature no longer covers it
    garbled = msgspec.structs.replace(genuine, signature="not base64!")
    other_key = sign_result(sample_result(PROBE), new_private_key())
    return [
        Candidate(genuine, trusted),
        Candidate(forged, trusted),
        Candidate(garbled, trusted),
        Candidate(other_key, disputed),
        Candidate(sample_result(PROBE), trusted),  # unsigned: the check stage's policy decides
        Candidate(genuine, None),  # no key to check with: ditto
    ]


def _reasons(outcomes: list[Exception | None]) -> list[str | None]:
    return [
        outcome.reason if isinstance(outcome, ResultRejectedError) else None for outcome in outcomes
    ]


async def test_the_process_answers_as_the_check_in_this_process_does() -> None:
    candidates = _candidates()
    with SignatureProcess() as signatures:
        outcomes = await signatures.check(candidates)
    expected = [verify(candidate) for candidate in candidates]
    assert _reasons(outcomes) == _reasons(list(expected))
    assert _reasons(outcomes) == [None, "bad-signature", "bad-signature", "disputed", None, None]


async def test_a_killed_process_is_replaced_and_only_its_batch_is_lost() -> None:
    candidates = _candidates()
    with SignatureProcess() as signatures:
        assert (await signatures.check(candidates))[1] is not None
        workers = multiprocessing.active_children()
        assert workers, "the checks ran in a process of their own"
        for worker in workers:
            assert worker.pid is not None
            os.kill(worker.pid, signal.SIGKILL)
            worker.join(timeout=10)
        await asyncio.sleep(0.2)  # the pool notices the death
        lost = await signatures.check(candidates)
        assert all(isinstance(lost[i], BrokenProcessPool) for i in range(4)), lost
        assert lost[4:] == [None, None]  # nothing to check: not lost
        again = await signatures.check(candidates)
    assert _reasons(again) == [None, "bad-signature", "bad-signature", "disputed", None, None]
