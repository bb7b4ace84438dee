"""Radio context of a mobile link, read from ModemManager (`mmcli -J`) into `link.radio`.

Best effort: no ModemManager, no modem or an unreadable answer gives no radio block, never a
failed test. mmcli prints every value as a string and "--" for an unknown one.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import msgspec

from contract.result import Radio

MMCLI_TIMEOUT_S = 5.0
# Seconds between the modem's own signal readings, asked for when it takes none.
SIGNAL_REFRESH_S = 30
UNKNOWN = "--"

Mmcli = Callable[[Sequence[str]], Awaitable[str | None]]
T = TypeVar("T")


class _Generic(msgspec.Struct, rename="kebab"):
    access_technologies: list[str] = []
    state: str = UNKNOWN
    ports: list[str] = []


class _ThreeGpp(msgspec.Struct, rename="kebab"):
    operator_name: str = UNKNOWN
    registration_state: str = UNKNOWN


class _Modem(msgspec.Struct):
    generic: _Generic = msgspec.field(default_factory=_Generic)
    three_gpp: _ThreeGpp = msgspec.field(default_factory=_ThreeGpp, name="3gpp")


class _ModemAnswer(msgspec.Struct):
    modem: _Modem


class _SignalValues(msgspec.Struct):
    rsrp: str = UNKNOWN
    rsrq: str = UNKNOWN
    snr: str = UNKNOWN


class _Refresh(msgspec.Struct):
    rate: str = UNKNOWN


class _Signal(msgspec.Struct):
    lte: _SignalValues = msgspec.field(default_factory=_SignalValues)
    nr: _SignalValues = msgspec.field(default_factory=_SignalValues, name="5g")
    refresh: _Refresh = msgspec.field(default_factory=_Refresh)


class _SignalModem(msgspec.Struct):
    signal: _Signal = msgspec.field(default_factory=_Signal)


class _SignalAnswer(msgspec.Struct):
    modem: _SignalModem


class _Cell(msgspec.Struct):
    mcc: str = UNKNOWN
    mnc: str = UNKNOWN
    lac: str = UNKNOWN
    tac: str = UNKNOWN
    cid: str = UNKNOWN


class _Location(msgspec.Struct):
    cell: _Cell = msgspec.field(default_factory=_Cell, name="3gpp")


class _LocationModem(msgspec.Struct):
    location: _Location = msgspec.field(default_factory=_Location)


class _LocationAnswer(msgspec.Struct):
    modem: _LocationModem


class _ModemList(msgspec.Struct, rename="kebab"):
    modem_list: list[str] = []


def _decode(text: str | None, type_: type[T]) -> T | None:
    if text is None:
        return None
    try:
        return msgspec.json.decode(text, type=type_)
    except msgspec.MsgspecError:
        return None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # "--": the modem does not know


def _known(text: str) -> str | None:
    return None if text in (UNKNOWN, "") else text


def radio_access(technologies: Sequence[str]) -> str | None:
    """ModemManager's access technologies -> a generation; 5G NR beside LTE is non-standalone."""
    names = set(technologies)
    if "5gnr" in names:
        return "5g-nsa" if any(name.startswith("lte") for name in names) else "5g-sa"
    if any(name.startswith("lte") for name in names):
        return "4g"
    if names & {"umts", "hsdpa", "hsupa", "hspa", "hspa-plus", "evdo0", "evdoa", "evdob"}:
        return "3g"
    if names & {"gsm", "gsm-compact", "gprs", "edge", "1xrtt"}:
        return "2g"
    return None


def parse_radio(
    modem_json: str, signal_json: str | None, location_json: str | None
) -> Radio | None:
    """Pure: mmcli's answers for one modem -> the result's radio block."""
    answer = _decode(modem_json, _ModemAnswer)
    if answer is None:
        return None
    generic = answer.modem.generic
    rat = radio_access(generic.access_technologies)
    signal = _decode(signal_json, _SignalAnswer)
    # On 5G the NR leg carries the data, so its signal is the one that explains a rate.
    values = _SignalValues()
    if signal is not None:
        nr, lte = signal.modem.signal.nr, signal.modem.signal.lte
        values = nr if rat in ("5g-sa", "5g-nsa") and _number(nr.rsrp) is not None else lte
    location = _decode(location_json, _LocationAnswer)
    return Radio(
        rat=rat,
        rsrp_dbm=_number(values.rsrp),
        rsrq_db=_number(values.rsrq),
        sinr_db=_number(values.snr),
        cell=_cell_id(location.modem.location.cell) if location else None,
        modem_state=_known(generic.state),
    )


def _cell_id(cell: _Cell) -> str | None:
    """MCC-MNC-area-cell, the area being the TAC (LTE/NR) or the LAC (older networks)."""
    cid = _known(cell.cid)
    if cid is None:
        return None
    tac = _known(cell.tac)
    area = tac if tac and tac.strip("0") else _known(cell.lac)
    return "-".join(part or "?" for part in (_known(cell.mcc), _known(cell.mnc), area, cid))


def serves_interface(modem_json: str, interface: str) -> bool:
    """Whether the modem's network port is `interface` (ports read like "wwan0 (net)")."""
    answer = _decode(modem_json, _ModemAnswer)
    return answer is not None and f"{interface} (net)" in answer.modem.generic.ports


async def run_mmcli(args: Sequence[str]) -> str | None:
    """mmcli's stdout, or None when it is missing, fails or hangs."""
    binary = shutil.which("mmcli")
    if binary is None:
        return None
    process = await asyncio.create_subprocess_exec(
        binary,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(MMCLI_TIMEOUT_S):
            stdout, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        return None
    return stdout.decode(errors="replace") if process.returncode == 0 else None


async def read_radio(
    interface: str, *, modem: str | None = None, mmcli: Mmcli = run_mmcli
) -> Radio | None:
    """The radio context of the modem behind `interface` (or the modem named in the config)."""
    if modem is not None:
        candidates = [modem]
    else:
        listing = _decode(await mmcli(["-L", "-J"]), _ModemList)
        candidates = [path.rsplit("/", 1)[-1] for path in listing.modem_list] if listing else []
    for index in candidates:
        modem_json = await mmcli(["-m", index, "-J"])
        if modem_json is None or (modem is None and not serves_interface(modem_json, interface)):
            continue
        signal_json = await _signal(mmcli, index)
        location_json = await mmcli(["-m", index, "--location-get", "-J"])
        return parse_radio(modem_json, signal_json, location_json)
    return None


async def _signal(mmcli: Mmcli, index: str) -> str | None:
    """The modem's signal; a modem that takes no readings is asked to start (needs rights)."""
    answer = await mmcli(["-m", index, "--signal-get", "-J"])
    decoded = _decode(answer, _SignalAnswer)
    idle = decoded is not None and decoded.modem.signal.refresh.rate in ("0", UNKNOWN)
    if idle and await mmcli(["-m", index, f"--signal-setup={SIGNAL_REFRESH_S}"]) is not None:
        answer = await mmcli(["-m", index, "--signal-get", "-J"])
    return answer
