import json

import numpy as np
import pytest

from app.federated_report import APPROACHES, compare, write_federated_report
from federated.config import FederatedConfig
from fusion.config import load_model_config, load_training_config

SITES = ["uci_cleveland", "uci_hungarian"]


@pytest.mark.slow
def test_local_federated_private_and_pooled_on_the_same_patients(
    small_cohort, small_config, tmp_path
):
    federated = FederatedConfig(num_rounds=2, local_epochs=1)
    training = load_training_config().without("pretraining", "alignment")
    results = compare(
        small_config, load_model_config(), training, federated, small_cohort,
        sites=SITES,
    )  # fmt: skip
    rows = results["heads"]["heart_disease"]
    assert [row["site"] for row in rows] == [*SITES, "all sites"]
    assert rows[-1]["n"] == rows[0]["n"] + rows[1]["n"]
    for row in rows:
        for name in APPROACHES:
            assert 0.0 <= row[name] <= 1.0, (row["site"], name)
    assert rows[-1]["centralised"] > 0.6  # learnt on real patients
    uci = results["uci_accuracy"]
    assert uci["n"] == rows[-1]["n"] and 0.5 < uci["centralised"] <= 1.0
    assert results["privacy"]["rounds"] == 2 and results["privacy"]["epsilon"] > 0
    path = write_federated_report(results, "pytest", tmp_path)
    text = path.read_text()
    assert "| all sites |" in text and "FLamby" in text and "epsilon" in text
    assert "federated + SecAgg+" in text and "Secure aggregation" in text
    saved = json.loads((tmp_path / "federated.json").read_text())
    assert np.isclose(
        saved["heads"]["heart_disease"][-1]["federated"], rows[-1]["federated"]
    )
