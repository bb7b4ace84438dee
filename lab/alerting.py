"""vmalert and Alertmanager as local processes, like the services in lab/services.py.

Each starts on a free loopback port with its files in a directory the caller owns, waits until it
answers, and is stopped when its context ends, also on error. Alertmanager runs the shipped routes
with the receivers' integrations replaced (`lab_alertmanager_config`): a lab never e-mails anyone.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.errors import ServiceError
from lab.services import Endpoint, Service, free_port, http_ok, require_binary

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
RULES_FILE = DEPLOY / "alerts" / "qosfleet.rules.yml"
# The central stack's own alerts (services down, disk, certificates, the heartbeat).
CENTRAL_RULES_FILE = DEPLOY / "alerts" / "central.rules.yml"
RULE_FILES = (RULES_FILE, CENTRAL_RULES_FILE)
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager.yml"
VMAGENT_CONFIG = DEPLOY / "vmagent.yml"
# Every level of the route tree, shortened by `lab_alertmanager_config(quick=True)`.
QUICK_TIMERS = {"group_wait": "0s", "group_interval": "1s", "repeat_interval": "1m"}


def rules_with_short_for(target: Path, duration: str, source: Path = RULES_FILE) -> Path:
    """A shipped rule file with every `for` shortened: a lab sees real rules fire in seconds."""
    import yaml  # noqa: PLC0415 - only the lab and tests rewrite rule files

    document = yaml.safe_load(source.read_text(encoding="utf-8"))
    for group in document["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = duration
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return target


@dataclass
class Alertmanager:
    service: Service
    url: str

    def alerts(self, **matchers: str) -> list[dict[str, Any]]:
        """Alerts Alertmanager holds (API v2), narrowed by label equality, e.g. alertname="X"."""
        query = urllib.parse.urlencode(
            [("filter", f'{name}="{value}"') for name, value in matchers.items()]
        )
        url = f"{self.url}/api/v2/alerts" + (f"?{query}" if query else "")
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - own loopback
            alerts: list[dict[str, Any]] = json.load(response)
        return alerts


@contextmanager
def vmalert(
    workdir: Path,
    *,
    datasource_url: str,
    notifier_url: str,
    rule_files: Sequence[Path],
    remote_write_url: str | None = None,
    eval_interval: str = "1s",
) -> Iterator[Endpoint]:
    """vmalert evaluating `rule_files` against the store and sending alerts to Alertmanager.

    It refuses to start on a rule it cannot parse, so a bad rule file surfaces as a ServiceError
    with vmalert's own message. With `remote_write_url` it also writes the ALERTS series there.
    """
    binary = require_binary("vmalert")
    if not rule_files:
        raise ServiceError("vmalert needs at least one rule file", "pass rule_files=[...]")
    missing = [str(path) for path in rule_files if not path.is_file()]
    if missing:
        raise ServiceError(f"rule files not found: {', '.join(missing)}", "check the paths")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [
        binary,
        *(f"-rule={path}" for path in rule_files),
        f"-datasource.url={datasource_url}",
        f"-notifier.url={notifier_url}",
        f"-evaluationInterval={eval_interval}",
        f"-httpListenAddr=127.0.0.1:{port}",
        # Alerts link back to this vmalert rather than to the machine's hostname on port 8880.
        f"-external.url={url}",
    ]
    if remote_write_url is not None:
        argv.append(f"-remoteWrite.url={remote_write_url}")
    service = Service("vmalert", argv, workdir / "vmalert.log")
    with service.running(lambda: http_ok(f"{url}/health")):
        yield Endpoint(service, url)


def lab_alertmanager_config(
    target: Path, *, webhook_url: str | None = None, quick: bool = False
) -> Path:
    """deploy/alertmanager.yml with the same routes, inhibitions and receiver names, but every
    receiver's e-mail and webhooks replaced: by nothing, or by one webhook to
    `webhook_url`/RECEIVER (a test's loopback server sees which receiver an alert reached).
    `quick` shortens the grouping timers to seconds."""
    import yaml  # noqa: PLC0415 - only the lab and tests rewrite the config

    document = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    # The SMTP settings name the operator's server and a secret file: nothing of them is used.
    document.pop("global", None)
    document["receivers"] = [
        {"name": receiver["name"]}
        | (
            {"webhook_configs": [{"url": f"{webhook_url}/{receiver['name']}"}]}
            if webhook_url
            else {}
        )
        for receiver in document["receivers"]
    ]
    if quick:
        routes = [document["route"]]
        while routes:
            route = routes.pop()
            route.update({key: value for key, value in QUICK_TIMERS.items() if key in route})
            routes.extend(route.get("routes", []))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return target


@contextmanager
def alertmanager(workdir: Path, *, config: Path | None = None) -> Iterator[Alertmanager]:
    """Alertmanager with `config` (default: the lab's copy of deploy/alertmanager.yml, which
    notifies nobody), state kept in `workdir`."""
    binary = require_binary("prometheus-alertmanager")
    config = config or lab_alertmanager_config(workdir / "alertmanager.yml")
    if not config.is_file():
        raise ServiceError(f"Alertmanager config {config} not found", "pass config=<path>")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        # An empty cluster address turns gossip off: one instance, and no fixed port 9094 that
        # two tests running at once would fight over.
        "--cluster.listen-address=",
    ]
    service = Service("alertmanager", argv, workdir / "alertmanager.log")
    with service.running(lambda: http_ok(f"{url}/-/ready")):
        yield Alertmanager(service, url)
