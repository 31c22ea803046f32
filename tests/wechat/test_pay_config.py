"""WeChat Pay settings: emulator credentials made once and kept, a real merchant's settings
checked at start-up with one clear line, and ``serve`` wiring the adapter to the emulator."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from server.platform.clock import SystemClock
from server.platform.config import ConfigError, Settings, load_settings
from server.platform.crypto import resolve_keys
from server.wechat.pay import WeChatPayAdapter
from server.wechat.pay_config import DEV_MCHID, load_private, public_pem, resolve_pay_credentials
from server.wechat.pay_models import TradeState
from tests.factories import PayKeys, clean_env, run_aside, serving

APIV3 = "0123456789abcdef0123456789abcdef"


def test_emulated_by_default_with_the_mini_programs_appid(tmp_path: Path) -> None:
    s = load_settings(server={"data_dir": tmp_path})
    assert s.wechatpay.emulated and s.wechatpay.appid == s.wechat.appid
    assert s.wechatpay.api_base == "https://api.mch.weixin.qq.com"
    assert s.wechatpay.order_expire_minutes == 30
    other = load_settings(wechatpay={"appid": "wx1234567890abcdef"})
    assert other.wechatpay.appid == "wx1234567890abcdef"


def test_development_credentials_are_made_once_and_kept(tmp_path: Path) -> None:
    settings = load_settings(server={"data_dir": tmp_path})
    keys = resolve_keys(settings)  # the older development keys come first, as in serve
    creds, platform = resolve_pay_credentials(settings)
    assert creds.mchid == DEV_MCHID and creds.appid == settings.wechat.appid
    assert len(creds.apiv3_key) == 32 and len(creds.serial_no) == 40
    assert creds.platform_public_key_id.startswith("PUB_KEY_ID_")
    assert platform is not None and "PRIVATE KEY" in platform
    again, platform_again = resolve_pay_credentials(settings)
    assert (again, platform_again) == (creds, platform)
    assert resolve_keys(settings) == keys  # adding the pay secrets kept the others
    path = tmp_path / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(json.loads(path.read_text())) == [
        "data_key",
        "hash_key",
        "token_secret",
        "wechatpay_apiv3_key",
        "wechatpay_merchant_key",
        "wechatpay_platform_key",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.json"]


def real(tmp_path: Path, pay_keys: PayKeys, **changes: str) -> Settings:
    platform = public_pem(load_private(pay_keys.platform))
    fields = {
        "mchid": "1230000109",
        "merchant_serial_no": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        "merchant_private_key": pay_keys.merchant,
        "apiv3_key": APIV3,
        "platform_public_key": platform,
        "platform_public_key_id": "PUB_KEY_ID_0112300001092026112300000000000001",
        "notify_base_url": "https://court.example.cn",
        **changes,
    }
    return load_settings(server={"data_dir": tmp_path}, wechatpay=fields)


def test_a_real_merchant_is_taken_as_configured(tmp_path: Path, pay_keys: PayKeys) -> None:
    creds, platform = resolve_pay_credentials(real(tmp_path, pay_keys))
    assert platform is None and creds.mchid == "1230000109" and creds.apiv3_key == APIV3
    assert creds.private_key_pem == pay_keys.merchant
    assert not (tmp_path / "secrets.json").exists()  # no development keys in real mode

    # the keys may also be files, or bare base64 as the merchant platform shows them
    key_file = tmp_path / "apiclient_key.pem"
    key_file.write_text(pay_keys.merchant)
    bare = "".join(public_pem(load_private(pay_keys.platform)).splitlines()[1:-1])
    from_files = real(
        tmp_path, pay_keys, merchant_private_key=str(key_file), platform_public_key=bare
    )
    assert resolve_pay_credentials(from_files)[0] == creds


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"merchant_serial_no": ""}, "wechatpay.merchant_serial_no: required when wechatpay.mchid"),
        ({"merchant_private_key": ""}, "wechatpay.merchant_private_key: required"),
        ({"apiv3_key": ""}, "wechatpay.apiv3_key: required"),
        ({"platform_public_key": ""}, "wechatpay.platform_public_key: required"),
        ({"platform_public_key_id": ""}, "wechatpay.platform_public_key_id: required"),
        ({"notify_base_url": ""}, "wechatpay.notify_base_url: required"),
        ({"merchant_serial_no": "not-hex"}, "wechatpay.merchant_serial_no: must be"),
        ({"apiv3_key": "short"}, "wechatpay.apiv3_key: must be 32 bytes"),
        ({"platform_public_key_id": "KEY1"}, "wechatpay.platform_public_key_id: must look"),
        ({"notify_base_url": "http://court.example.cn"}, "wechatpay.notify_base_url: WeChat"),
        ({"merchant_private_key": "/no/such/key.pem"}, "wechatpay.merchant_private_key: neither"),
        ({"merchant_private_key": "-----BEGIN PRIVATE KEY-----\nxx\n"}, "not a PEM RSA private"),
        ({"platform_public_key": "-----BEGIN PUBLIC KEY-----\nxx\n"}, "not a PEM RSA public"),
    ],
)
def test_a_real_merchant_missing_or_wrong_settings_name_themselves(
    tmp_path: Path, pay_keys: PayKeys, change: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_pay_credentials(real(tmp_path, pay_keys, **change))
    message = str(caught.value)
    assert message.startswith("invalid setting: ") and named in message
    assert "\n" not in message and APIV3 not in message


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"mchid": "12ab"}, "wechatpay.mchid"),
        ({"api_base": "api.mch.weixin.qq.com"}, "wechatpay.api_base"),
        ({"order_expire_minutes": 0}, "wechatpay.order_expire_minutes"),
        ({"notify_base_url": "court.example.cn"}, "wechatpay.notify_base_url"),
    ],
)
def test_malformed_pay_settings_are_refused(fields: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(wechatpay=fields)
    assert named in str(caught.value)


def test_serve_wires_the_emulator_to_the_development_merchant(tmp_path: Path) -> None:
    """``serve`` with nothing configured: the dev merchant (keys from secrets.json) can order
    from the emulator, signed and verified both ways on the wall clock."""
    data = tmp_path / "data"
    data.mkdir()
    with serving(data, clean_env()) as (_proc, _api, emulator):
        settings = load_settings(server={"data_dir": data})
        creds, _ = resolve_pay_credentials(settings)

        async def pay() -> TradeState:
            adapter = WeChatPayAdapter.from_settings(
                settings, creds, SystemClock(), api_base=emulator
            )
            try:
                await adapter.create_jsapi_order(
                    out_trade_no="SERVE0000000001",
                    description="诉讼费",
                    amount_fen=100,
                    openid="o" + "S" * 27,
                    notify_url="http://127.0.0.1:9/api/v1/payments/wechat/notify",
                    time_expire=adapter.default_time_expire(),
                )
                return (await adapter.query_order("SERVE0000000001")).trade_state
            finally:
                await adapter.aclose()

        assert run_aside(pay()) == TradeState.NOTPAY
    assert "wechatpay_merchant_key" in json.loads((data / "secrets.json").read_text())


def test_config_yaml_holds_no_pay_secrets() -> None:
    # config.yaml documents the settings; the secrets come from the environment or a file
    text = (Path(__file__).parents[2] / "config.yaml").read_text(encoding="utf-8")
    section = text.split("wechatpay:", 1)[1].split("\nsecurity:", 1)[0]
    for line in section.splitlines():
        if line.strip().startswith(("merchant_private_key", "apiv3_key")):
            assert '""' in line


def test_platform_certificates_alone_or_beside_the_public_key(
    tmp_path: Path, pay_keys: PayKeys
) -> None:
    """A merchant on platform certificates needs no public key; one switching over has both;
    a public key without its id (or the reverse) is refused (issue 13)."""
    alone = real(
        tmp_path,
        pay_keys,
        platform_public_key="",
        platform_public_key_id="",
        platform_certificates="true",
    )
    creds = resolve_pay_credentials(alone).credentials
    assert creds.platform_certificates and not creds.platform_public_key_id
    both = resolve_pay_credentials(real(tmp_path, pay_keys, platform_certificates="true"))
    assert both.credentials.platform_certificates and both.credentials.platform_public_key_pem
    half = real(tmp_path, pay_keys, platform_public_key_id="", platform_certificates="true")
    with pytest.raises(ConfigError, match=r"wechatpay\.platform_public_key_id: required"):
        resolve_pay_credentials(half)
