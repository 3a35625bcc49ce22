"""Command lines of a deployed federation: a SuperLink, a SuperNode per site, a run.

Each hospital's IT runs one SuperNode; the coordinating centre runs the
SuperLink and submits runs. Every connection is TLS (certificates from
`federated.certificates` or the hospital's own PKI), and with
``auth=True`` the SuperLink admits only SuperNodes whose public keys were
registered (``flwr supernode register``). The functions here only build the
command lines and the Flower CLI's configuration; ``cardiorisk federation``
runs them, and ``tests/federated/test_deployment.py`` starts them as processes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

FLOWER_BIN = Path(sys.executable).parent
CONNECTION = "cardiorisk"  # the SuperLink connection's name in the Flower CLI config


def flower_env(flwr_home: Path) -> dict[str, str]:
    """The environment Flower's processes need: its CLI config, its executables.

    A SuperLink and a SuperNode start further Flower executables by name
    (``flower-superexec``), so this environment's ``bin`` leads ``PATH`` even
    when the virtual environment is not activated.
    """
    path = os.pathsep.join([str(FLOWER_BIN), os.environ.get("PATH", "")])
    return {**os.environ, "FLWR_HOME": str(flwr_home), "PATH": path}


def superlink_command(certs: Path, port: int, auth: bool, database: Path) -> list[str]:
    """``flower-superlink`` with TLS on ``127.0.0.1:port`` (all its APIs)."""
    certs, database = certs.resolve(), database.resolve()
    command = [
        str(FLOWER_BIN / "flower-superlink"),
        "--ssl-ca-certfile", str(certs / "ca.crt"),
        "--ssl-certfile", str(certs / "server.pem"),
        "--ssl-keyfile", str(certs / "server.key"),
        "--port", str(port),
        "--database", str(database),
        # The app's code and dependencies are installed already (make install).
        "--disable-runtime-dependency-installation",
    ]  # fmt: skip
    if auth:
        command.append("--enable-supernode-auth")
    return command


def supernode_command(
    certs: Path,
    superlink: str,
    port: int,
    site: str,
    cohort_dir: Path,
    auth: bool,
) -> list[str]:
    """``flower-supernode`` of one site, its ClientApp API on ``127.0.0.1:port``."""
    certs, cohort_dir = certs.resolve(), cohort_dir.resolve()
    command = [
        str(FLOWER_BIN / "flower-supernode"),
        "--root-certificates", str(certs / "ca.crt"),
        "--superlink", superlink,
        "--port", str(port),
        "--node-config", f'site="{site}" cohort-dir="{cohort_dir}"',
    ]  # fmt: skip
    if auth:
        command += [
            "--auth-supernode-private-key", str(certs / f"{site}.key"),
            "--auth-supernode-public-key", str(certs / f"{site}.pub"),
        ]  # fmt: skip
    return command


def write_cli_config(flwr_home: Path, superlink: str, certs: Path) -> Path:
    """The Flower CLI's ``config.toml`` naming this federation's SuperLink.

    Flower wants the CA certificate's path absolute; a relative ``certs`` is
    taken from the current directory.
    """
    certs = certs.resolve()
    flwr_home.mkdir(parents=True, exist_ok=True)
    path = flwr_home / "config.toml"
    path.write_text(
        "[superlink]\n"
        f'default = "{CONNECTION}"\n\n'
        f"[superlink.{CONNECTION}]\n"
        f'address = "{superlink}"\n'
        f'root-certificates = "{certs / "ca.crt"}"\n',
        encoding="utf-8",
    )
    return path


def register_command(certs: Path, site: str) -> list[str]:
    """``flwr supernode register`` of one site's public key."""
    certs = certs.resolve()
    return [
        str(FLOWER_BIN / "flwr"), "supernode", "register",
        str(certs / f"{site}.pub"), CONNECTION, "--name", site,
    ]  # fmt: skip


def run_command(app_dir: Path, settings: dict[str, object]) -> list[str]:
    """``flwr run`` of the cardiorisk Flower App with run-config overrides."""
    pairs = " ".join(f"{key}={_toml(value)}" for key, value in settings.items())
    return [
        str(FLOWER_BIN / "flwr"), "run", str(app_dir), CONNECTION,
        "--run-config", pairs, "--stream",
    ]  # fmt: skip


def _toml(value: object) -> str:
    """A run-config value as TOML writes it (``true``, ``2``, ``"a,b"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)
