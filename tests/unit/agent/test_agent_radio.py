"""Radio context from recorded mmcli answers: 4G, 5G NSA, no modem, modem not connected."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.radio import Mmcli, parse_radio, radio_access, read_radio
from contract.result import Radio

FIXTURES = Path(__file__).parents[2] / "fixtures" / "mmcli"


def recorded(situation: str) -> tuple[Mmcli, list[list[str]]]:
    """An mmcli that answers from the fixture files, and the calls it saw."""
    calls: list[list[str]] = []

    async def mmcli(args: Sequence[str]) -> str | None:
        calls.append(list(args))
        match list(args):
            case ["-L", "-J"]:
                name = "list.json"
            case ["-m", index, "-J"]:
                name = f"modem-{index}.json"
            case ["-m", index, "--signal-get", "-J"]:
                name = f"signal-{index}.json"
            case ["-m", index, "--location-get", "-J"]:
                name = f"location-{index}.json"
            case _:
                return None  # e.g. --signal-setup without the rights to change the modem
        path = FIXTURES / situation / name
        return path.read_text(encoding="utf-8") if path.exists() else None

    return mmcli, calls


async def test_4g_modem_gives_lte_signal_and_cell() -> None:
    mmcli, _ = recorded("4g")
    assert await read_radio("wwan0", mmcli=mmcli) == Radio(
        rat="4g",
        rsrp_dbm=-97.0,
        rsrq_db=-11.0,
        sinr_db=9.8,
        cell="452-04-00306D-0A3C2B01",
        modem_state="connected",
    )


async def test_5g_nsa_modem_reports_the_nr_leg() -> None:
    mmcli, _ = recorded("5g-nsa")
    radio = await read_radio("wwan0", mmcli=mmcli)
    assert radio is not None
    assert (radio.rat, radio.rsrp_dbm, radio.rsrq_db, radio.sinr_db) == (
        "5g-nsa",
        -88.0,
        -10.0,
        17.5,
    )
    assert radio.cell == "452-02-0041A2-01B7F2C3"


async def test_no_modem_gives_no_radio_block() -> None:
    mmcli, calls = recorded("no-modem")
    assert await read_radio("wwan0", mmcli=mmcli) is None
    assert calls == [["-L", "-J"]]


async def test_a_modem_not_connected_reports_its_state_and_asks_for_signal_readings() -> None:
    mmcli, calls = recorded("disconnected")
    radio = await read_radio("wwan0", mmcli=mmcli)
    assert radio == Radio(rat="4g", modem_state="registered")
    assert ["-m", "0", "--signal-setup=30"] in calls


async def test_a_modem_on_another_interface_is_not_this_links() -> None:
    mmcli, _ = recorded("4g")
    assert await read_radio("wwan1", mmcli=mmcli) is None
    assert await read_radio("wwan1", modem="0", mmcli=mmcli) is not None


async def test_without_modemmanager_there_is_no_radio_block() -> None:
    async def absent(args: Sequence[str]) -> str | None:
        return None

    assert await read_radio("wwan0", mmcli=absent) is None


def test_unreadable_answers_give_what_is_known() -> None:
    assert parse_radio("not json", None, None) is None
    modem = (FIXTURES / "4g" / "modem-0.json").read_text(encoding="utf-8")
    assert parse_radio(modem, "{", "[]") == Radio(rat="4g", modem_state="connected")


@pytest.mark.parametrize(
    ("technologies", "rat"),
    [
        (["lte", "5gnr"], "5g-nsa"),
        (["5gnr"], "5g-sa"),
        (["lte"], "4g"),
        (["hspa-plus"], "3g"),
        (["edge"], "2g"),
        ([], None),
        (["unknown"], None),
    ],
)
def test_access_technologies_map_to_a_generation(technologies: list[str], rat: str | None) -> None:
    assert radio_access(technologies) == rat
