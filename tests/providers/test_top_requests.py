"""The exact TOP requests the gateway sends, field by field, for each of the three calls."""

from __future__ import annotations

from urllib.parse import parse_qsl

from gateway.providers.registry import Provider
from gateway.signing import top as top_signing
from tests.providers.conftest import PINNED


def sent_fields(provider: Provider, raw: dict[str, object]) -> dict[str, str]:
    request = provider.build_request(provider.parse_inputs(raw), PINNED)
    assert request.method == "POST"
    assert request.url == "https://eco.taobao.com/router/rest"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded;charset=utf-8"
    pairs = parse_qsl(request.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    assert len(pairs) == len(dict(pairs)), "no parameter is sent twice"
    return dict(pairs)


def assert_signed(fields: dict[str, str], secret: str) -> None:
    expected = top_signing.sign(fields, secret, fields["sign_method"])  # type: ignore[arg-type]
    assert fields["sign"] == expected


def test_miniapp_auth_sends_params_as_one_compact_json_field(
    providers: dict[str, Provider], secret: str
) -> None:
    """seed 000: `params` is `{"par":{…},"sys":{…}}` compact JSON, plus the system parameters."""
    fields = sent_fields(
        providers["zebra"],
        {"mini_app_id": "2021001170634349", "device_id": "A70E1664E02EC41AFCFE75388B653153"},
    )
    sign = fields.pop("sign")
    assert fields == {
        "method": "yunos.aiot.thirdminiapp.auth.get",
        "app_key": "12345678",
        "timestamp": "2016-01-01 12:00:00",
        "v": "2.0",
        "sign_method": "hmac-sha256",
        "format": "json",
        "params": '{"par":{"mini_app_id":"2021001170634349"},"sys":{"device_id":"A70E1664E02EC41AFCFE75388B653153"}}',
    }
    assert sign == top_signing.sign(fields, secret, "hmac-sha256")
    assert len(sign) == 64 and sign == sign.upper()


def test_miniapp_auth_omits_sys_without_device(providers: dict[str, Provider]) -> None:
    """Without a device id the `sys` object is left out entirely, not sent as null."""
    fields = sent_fields(providers["zebra"], {"mini_app_id": "2021001170634349"})
    assert fields["params"] == '{"par":{"mini_app_id":"2021001170634349"}}'


def test_md5_provider_signs_with_md5(providers: dict[str, Provider], secret: str) -> None:
    """A provider configured for md5 sends sign_method=md5 and a 32-character md5 signature."""
    fields = sent_fields(providers["zebra-md5"], {"mini_app_id": "1"})
    assert fields["sign_method"] == "md5"
    assert len(fields["sign"]) == 32
    assert_signed(fields, secret)


def test_aicloud_login_sends_the_four_business_params(
    providers: dict[str, Provider], secret: str
) -> None:
    """seed 001: user_id, utd_id, schema, app_type as plain form fields, HMAC-MD5 signed."""
    fields = sent_fields(
        providers["aligenie"],
        {
            "user_id": "13911112222",
            "utd_id": "V944n0HrnZ4DAAtOStvvDat7",
            "schema": "36653b6e-f41a-11e6-bc64-92361f002671",
            "app_type": "IOS",
        },
    )
    assert_signed(fields, secret)
    del fields["sign"]
    assert fields == {
        "method": "taobao.ailab.aicloud.top.auth.get",
        "app_key": "12345678",
        "timestamp": "2016-01-01 12:00:00",
        "v": "2.0",
        "sign_method": "hmac",
        "format": "json",
        "user_id": "13911112222",
        "utd_id": "V944n0HrnZ4DAAtOStvvDat7",
        "schema": "36653b6e-f41a-11e6-bc64-92361f002671",
        "app_type": "IOS",
    }


def test_checkbind_sends_bare_values_and_no_empty_optionals(
    providers: dict[str, Provider], secret: str
) -> None:
    """seed 002: values without the doc's quotes, params as compact JSON, absent optionals not sent."""
    fields = sent_fields(
        providers["bind"],
        {
            "open_id": "1jpASH5XXU2c",
            "product_key": "a171ldgFX4m",
            "user_type": "ilop",
            "trace_id": "213d614316665898871384404d071e",
            "params": {"ssProductKey": "1jpASH5XXU2c", "authCode": "SH5XXU2c"},
        },
    )
    assert_signed(fields, secret)
    del fields["sign"]
    assert fields == {
        "method": "alibaba.ailabs.iot.device.inside.checkbind.invoke",
        "app_key": "12345678",
        "timestamp": "2016-01-01 12:00:00",
        "v": "2.0",
        "sign_method": "hmac-sha256",
        "format": "json",
        "open_id": "1jpASH5XXU2c",
        "product_key": "a171ldgFX4m",
        "user_type": "ilop",
        "trace_id": "213d614316665898871384404d071e",
        "params": '{"ssProductKey":"1jpASH5XXU2c","authCode":"SH5XXU2c"}',
    }


def test_checkbind_generates_a_trace_id_when_absent(providers: dict[str, Provider]) -> None:
    """Without a trace_id the gateway sends one derived from the per-send request id."""
    fields = sent_fields(
        providers["bind"], {"open_id": "o", "product_key": "p", "user_type": "ilop"}
    )
    assert fields["trace_id"] == "476c990af5b74575987c4ef70e474932"


def test_simplify_is_sent_and_signed_when_configured(
    providers: dict[str, Provider], secret: str
) -> None:
    """A provider with simplify: true sends simplify=true inside the signature."""
    fields = sent_fields(
        providers["bind-simple"], {"open_id": "o", "product_key": "p", "user_type": "ilop"}
    )
    assert fields["simplify"] == "true"
    assert "simplify" + "true" in top_signing.string_to_sign(fields)
    assert_signed(fields, secret)


def test_signature_never_in_the_url(providers: dict[str, Provider]) -> None:
    """Everything travels in the body: the URL has no query string to leak a signature into logs."""
    request = providers["zebra"].build_request(
        providers["zebra"].parse_inputs({"mini_app_id": "1"}), PINNED
    )
    assert "?" not in request.url
    assert "sign=" in request.body.decode()
