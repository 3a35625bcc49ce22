import json

from typer.testing import CliRunner

from app.cli import cli

runner = CliRunner()
RECORD = "ptbxl_subset/records100/00000/00008_lr"


def test_predict_json_with_ecg(model_version, real_data, tmp_path, monkeypatch):
    models, version = model_version
    monkeypatch.setenv("CARDIORISK_MODELS_DIR", str(models))
    patient = tmp_path / "patient.json"
    patient.write_text(json.dumps({"age": 74, "sex": "male"}))
    result = runner.invoke(
        cli, ["predict", str(patient), "--ecg", str(real_data / RECORD), "--json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["model_version"] == version
    assert {r["head"] for r in body["risks"]} == {
        "acute_mi", "stroke", "postop", "heart_disease",
    }  # fmt: skip
    assert all(len(r["reasons"]) == 5 for r in body["risks"])
    # PTB-XL ecg_id 8: sinus rhythm near 73 /min, QTc in the normal range.
    measured = body["ecg_measurements"]
    assert 65 < measured["heart_rate_bpm"] < 80
    assert 380 < measured["qtc_ms"] < 460
    assert set(measured["st_deviation_mv"]) == {
        "I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6",
    }  # fmt: skip


def test_predict_in_vietnamese(model_version, tmp_path, monkeypatch):
    monkeypatch.setenv("CARDIORISK_MODELS_DIR", str(model_version[0]))
    patient = tmp_path / "patient.json"
    patient.write_text(json.dumps({"age": 60, "features": {"systolic_bp": 150}}))
    result = runner.invoke(cli, ["predict", str(patient), "--language", "vi"])
    assert result.exit_code == 0, result.output
    assert "Nhồi máu cơ tim cấp" in result.output


def test_predict_bad_input_is_one_clear_line(model_version, tmp_path, monkeypatch):
    monkeypatch.setenv("CARDIORISK_MODELS_DIR", str(model_version[0]))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = runner.invoke(cli, ["predict", str(broken)])
    assert result.exit_code == 2
    assert "broken.json: expected a JSON object" in result.output
    assert "Traceback" not in result.output
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"features": {"sbp": 1}}))
    result = runner.invoke(cli, ["predict", str(unknown)])
    assert result.exit_code == 2 and "features.sbp" in result.output
    missing = runner.invoke(cli, ["predict", str(tmp_path / "absent.json")])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_demo_refuses_a_busy_port_before_any_long_work(monkeypatch):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("CARDIORISK_API_PORT", str(port))
        result = runner.invoke(cli, ["demo"])
    assert result.exit_code == 2
    assert f"port {port}" in result.output and "CARDIORISK_API_PORT" in result.output


def test_predict_with_an_image(model_version, real_data, tmp_path, monkeypatch):
    monkeypatch.setenv("CARDIORISK_MODELS_DIR", str(model_version[0]))
    patient = tmp_path / "patient.json"
    patient.write_text(json.dumps({"age": 58, "sex": "male"}))
    image = real_data / "cxr_nih_cardiomegaly_small/images/00000001_001.png"
    result = runner.invoke(
        cli, ["predict", str(patient), "--image", str(image), "--json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert "imaging" in body["modalities_used"]
    assert [f["target"] for f in body["findings"]] == ["cardiomegaly"]


def test_a_bad_override_names_its_option():
    result = runner.invoke(cli, ["train", "--rounds", "0"])
    assert result.exit_code == 2
    assert "--rounds: expected greater than 0, found 0" in result.output
    result = runner.invoke(cli, ["train", "--strategy", "fedsgd"])
    assert result.exit_code == 2 and "'fedavg', 'fedprox' or 'fedadam'" in result.output
