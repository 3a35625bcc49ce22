"""A deployed federation on 127.0.0.1: a SuperLink and two SuperNodes as separate
processes, TLS on, SuperNode authentication on and SecAgg+ on, completing two
rounds; a third SuperNode whose key was never registered is refused."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest
import torch

from federated.certificates import make_test_certificates
from federated.launch import (
    flower_env,
    register_command,
    run_command,
    superlink_command,
    supernode_command,
    write_cli_config,
)

PROJECT = Path(__file__).resolve().parents[2]
SITES = ["uci_cleveland", "uci_hungarian"]
INTRUDER = "uci_switzerland"  # has a key pair, never registered


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(path: Path, needle: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise AssertionError(f"'{needle}' not in {path.name} after {seconds} s")


@pytest.mark.slow
def test_superlink_and_two_supernodes_over_tls_complete_two_secure_rounds(
    small_cohort, tmp_path
):
    certs = tmp_path / "certs"
    paths = make_test_certificates(certs, [*SITES, INTRUDER])
    assert paths["ca"].read_text().startswith("-----BEGIN CERTIFICATE-----")
    port = _free_port()
    superlink = f"127.0.0.1:{port}"
    env = flower_env(tmp_path / "flwr")
    write_cli_config(tmp_path / "flwr", superlink, certs)
    processes, logs = [], {}

    def start(name: str, command: list[str]) -> None:
        logs[name] = tmp_path / f"{name}.log"
        processes.append(
            subprocess.Popen(
                command,
                stdout=logs[name].open("w"),
                stderr=subprocess.STDOUT,
                env=env,
                cwd=PROJECT,
                start_new_session=True,
            )
        )

    try:
        start(
            "superlink",
            superlink_command(certs, port, auth=True, database=tmp_path / "state.db"),
        )
        _wait_for(logs["superlink"], "Uvicorn running on https://", 60)
        for site in SITES:
            registered = subprocess.run(
                register_command(certs, site),
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert registered.returncode == 0, registered.stdout + registered.stderr
        for site in [*SITES, INTRUDER]:
            start(
                site,
                supernode_command(
                    certs, superlink, _free_port(), site, small_cohort, auth=True
                ),
            )
        for site in SITES:
            _wait_for(logs[site], "SuperNode ID", 60)
        out = tmp_path / "out"
        run = subprocess.run(
            run_command(
                PROJECT,
                {
                    "num-rounds": 2,
                    "sites": ",".join(SITES),
                    "stages": "supervised",
                    "secure-aggregation": True,
                    "out-dir": str(out),
                },
            ),
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=PROJECT,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        _wait_for(out / "history.json", "train_metrics", 120)
        _wait_for(logs[INTRUDER], "Failed to activate SuperNode", 60)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    history = json.loads((out / "history.json").read_text())
    assert list(history["train_metrics"]["supervised"]) == ["1", "2"]
    assert history["sites"] == SITES and history["secure_aggregation"]
    model = torch.load(out / "model.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in model.values())
    assert sorted(p.name for p in (out / "checkpoints").iterdir())[-1] == (
        "supervised-round-2.pt"
    )
    # TLS on: the SuperNodes reached the SuperLink over https, as registered nodes.
    link = logs["superlink"].read_text()
    assert "https://" in link
    assert link.count("Activated node_id") == 2
    # The unregistered key was refused, and that SuperNode gave up.
    assert "No SuperNode found with the given public key" in link
    assert "Failed to activate SuperNode" in logs[INTRUDER].read_text()
    assert processes[-1].returncode not in (None, 0)
    # SecAgg+: four exchanges per round with each site, and the round lines.
    assert link.count("Push replies from node_id") == 4 * 2 * len(SITES)
    assert "securely aggregated" in run.stdout + run.stderr


def test_relative_certificate_folders_become_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = write_cli_config(tmp_path / "flwr", "127.0.0.1:9092", Path("var/certs"))
    expected = tmp_path / "var" / "certs" / "ca.crt"
    assert f'root-certificates = "{expected}"' in config.read_text()
    assert str(tmp_path / "var/certs/uci_cleveland.pub") in register_command(
        Path("var/certs"), "uci_cleveland"
    )
    node = supernode_command(
        Path("var/certs"), "127.0.0.1:9092", 9094, "uci_cleveland", Path("cohort"), True
    )
    assert str(tmp_path / "cohort") in node[node.index("--node-config") + 1]
