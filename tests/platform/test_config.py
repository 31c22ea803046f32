"""Settings: defaults from config.yaml, environment overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.platform.config import ConfigError, load_settings


def test_defaults_hold_two_demo_courts() -> None:
    s = load_settings()
    assert s.mongodb.embedded and s.wechat.emulated
    courts = {c.id: c for c in s.courts}
    chaoyang = courts["bj-chaoyang"]
    assert (chaoyang.name, chaoyang.code) == ("北京市朝阳区人民法院", "京0105")
    assert chaoyang.case_types["civil"] == "民初"
    assert chaoyang.case_types["execution"] == "执"
    assert chaoyang.fixed_fees.divorce_fen == 20_000
    assert chaoyang.deadlines.review_days["private_prosecution"] == 15
    assert chaoyang.deadlines.review_days["third_party_revocation"] == 30
    assert courts["sh-pudong"].code == "沪0115"


def test_environment_overrides_nested_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROCOURT_MONGODB__URI", "mongodb://db1,db2/?replicaSet=rs0")
    monkeypatch.setenv("MICROCOURT_SERVER__PORT", "9100")
    monkeypatch.setenv("MICROCOURT_ADMIN_PASSWORD", "from-the-environment")
    s = load_settings()
    assert s.mongodb.uri == "mongodb://db1,db2/?replicaSet=rs0" and not s.mongodb.embedded
    assert s.server.port == 9100
    assert s.admin_password == "from-the-environment"
    assert s.mongodb.database == "microcourt"  # untouched siblings keep their defaults


def test_another_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "server: {port: 7000}\n"
        "courts:\n"
        "  - {id: gz-tianhe, name: 广州市天河区人民法院, code: 粤0106,\n"
        "     case_types: {civil: 民初}}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("MICROCOURT_CONFIG", str(path))
    s = load_settings()
    assert s.server.port == 7000
    assert [c.code for c in s.courts] == ["粤0106"]
    assert s.courts[0].fixed_fees.divorce_fen == 5_000  # the default inside the legal range


@pytest.mark.parametrize(
    ("yaml_text", "named"),
    [
        ("server: {port: 70000}\n", "server.port"),
        ("courts: []\n", "at least one court"),
        ("bogus: 1\n", "bogus"),
        (": : :\n", "not valid YAML"),
        (
            "courts:\n  - {id: a1, name: 某法院, code: 京01, case_types: {},"
            " fixed_fees: {ip_no_amount_fen: 200000}}\n",
            "courts.0.fixed_fees.ip_no_amount_fen",
        ),
        (
            "courts:\n  - {id: a1, name: 某法院, code: 京01, case_types: {}}\n"
            "  - {id: a1, name: 另一法院, code: 京02, case_types: {}}\n",
            "court ids must be unique",
        ),
        (
            "courts:\n  - {id: a1, name: 某法院, code: X01, case_types: {}}\n",
            "courts.0.code",
        ),
    ],
)
def test_bad_settings_name_themselves(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, yaml_text: str, named: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    monkeypatch.setenv("MICROCOURT_CONFIG", str(path))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert named in str(info.value)
    assert "\n" not in str(info.value)
