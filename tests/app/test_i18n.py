import pytest

from app.i18n import LANGUAGES, catalog, has_message, translate

HEADS = ("acute_mi", "stroke", "postop", "heart_disease")


def test_languages():
    assert LANGUAGES == ("en", "vi")


def test_every_english_key_is_in_vietnamese():
    missing = sorted(set(catalog("en")) - set(catalog("vi")))
    assert not missing, f"keys missing from vi.yaml: {missing}"


def test_no_vietnamese_key_without_english():
    extra = sorted(set(catalog("vi")) - set(catalog("en")))
    assert not extra, f"keys only in vi.yaml: {extra}"


def test_placeholders_match_between_languages():
    import string

    def names(template):
        return {field for _, field, _, _ in string.Formatter().parse(template) if field}

    english, vietnamese = catalog("en"), catalog("vi")
    for key, template in english.items():
        assert names(template) == names(vietnamese[key]), key


@pytest.mark.parametrize("head", HEADS)
def test_head_names_are_translated(head):
    english = translate(f"head.{head}", "en")
    vietnamese = translate(f"head.{head}", "vi")
    assert english and vietnamese and english != vietnamese


def test_vietnamese_clinical_terms():
    assert translate("head.acute_mi", "vi") == "Nhồi máu cơ tim cấp"
    assert translate("head.stroke", "vi") == "Đột quỵ"
    assert translate("head.postop", "vi") == "Biến chứng sau phẫu thuật"
    assert translate("head.heart_disease", "vi") == "Bệnh mạch vành"
    bands = [translate(f"band.{band}", "vi") for band in ("low", "moderate", "high")]
    assert bands == ["thấp", "trung bình", "cao"]


def test_required_keys_exist():
    for key in (
        "app.title",
        "app.disclaimer",
        "modality.tabular",
        "modality.ecg",
        "modality.timeline",
        "horizon.years",
        "horizon.present",
        "results.critical_mi",
        "results.reasons",
        "results.contributions",
        "results.missing",
        "results.model_version",
        "upload.ecg",
        "error.api_unreachable",
    ):
        for language in LANGUAGES:
            assert has_message(key, language), (key, language)


def test_disclaimer_names_research_use_and_acute_mi_limit():
    text = translate("app.disclaimer", "en").lower()
    assert "research" in text and "not validated" in text
    assert "established" in text and "acute" in text


def test_formatting():
    assert translate("horizon.years", "en", years=10) == "within 10 years"
    assert translate("horizon.years", "vi", years=10) == "trong vòng 10 năm"
    assert "4.2" in translate("results.model_version", "en", version="4.2")


def test_missing_value_names_the_placeholder():
    with pytest.raises(KeyError, match="years"):
        translate("horizon.years", "en")


def test_missing_key_raises_naming_the_key():
    with pytest.raises(KeyError, match="no.such.key"):
        translate("no.such.key", "vi")
    assert not has_message("no.such.key")


def test_unknown_language_is_rejected():
    with pytest.raises(ValueError, match="en, vi"):
        translate("app.title", "fr")


def test_vietnamese_falls_back_to_english(monkeypatch):
    import app.i18n as i18n

    english = dict(catalog("en"), **{"only.english": "Only in English"})
    vietnamese = catalog("vi")
    monkeypatch.setattr(
        i18n,
        "_load_catalog",
        lambda language: english if language == "en" else vietnamese,
    )
    assert translate("only.english", "vi") == "Only in English"


def test_values_read_as_a_person_reads_them():
    from app.i18n import format_value

    assert format_value(68.6872, "years") == "68.7 years"
    assert format_value(1.30088, "mg/dL") == "1.30 mg/dL"
    assert format_value(148.0, "mmHg") == "148 mmHg"
    assert format_value(1.0, "") == "yes" and format_value(0.0, "", "vi") == "không"
    assert format_value(68.6872, "năm", "vi") == "68,7 năm"
    assert format_value(None, "mmHg") == ""


def test_a_notice_is_put_in_words_for_each_language():
    from app.i18n import Notice

    notice = Notice("ecg_short", {"seconds": 2.5, "model_seconds": 10.0})
    assert notice.text("en").startswith("ECG is 2.5 s long; the model reads 10 s")
    assert notice.text("vi").startswith("ECG dài 2,5 giây")
