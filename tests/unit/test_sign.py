"""Frozen signing vectors for Backpack (see shared reference backpack-api.md, 'Testing an adapter offline')."""
from __future__ import annotations

import base64
from decimal import Decimal

import pytest

from gridbot.errors import CredentialsError
from gridbot.exchange import _sign

SEED = base64.b64encode(bytes(range(32))).decode()
TS = 1700000000000

# cross-checked between ccxt's sign() and an independent implementation (reference doc)
ORDER_STRING = ("instruction=orderExecute&clientId=7&orderType=Limit&postOnly=true&price=150.25"
                "&quantity=0.5&side=Bid&symbol=SOL_USDC&timestamp=1700000000000&window=5000")
ORDER_SIGNATURE = "f3o7Iuck/cdZeM6h8H8dx/XUglT9WOyZDLiXy/lYvqABw/nSJ8s/emq7V3tmEWK2S2dFPKarxCZQyEVnVTaiAA=="

ORDER_PARAMS = {"symbol": "SOL_USDC", "side": "Bid", "orderType": "Limit", "price": Decimal("150.250"),
                "quantity": Decimal("0.50"), "postOnly": True, "clientId": 7}


def test_rfc8032_test1_primitive():
    sk = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    key = _sign.load_private_key(base64.b64encode(sk).decode())
    assert base64.b64decode(_sign.public_key_b64(key)).hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    sig = base64.b64decode(_sign.sign(key, ""))
    assert sig.hex() == ("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e"
                         "39701cf9b46bd25bf5f0595bbe24655141438e7a100b")


def test_order_execute_string_is_sorted_with_lowercase_booleans():
    assert _sign.signing_string("orderExecute", ORDER_PARAMS, TS, 5000) == ORDER_STRING


def test_order_execute_frozen_signature():
    key = _sign.load_private_key(SEED)
    assert _sign.sign(key, ORDER_STRING) == ORDER_SIGNATURE
    headers = _sign.signed_headers("PUB", key, "orderExecute", ORDER_PARAMS, TS, 5000)
    assert headers == {"X-API-Key": "PUB", "X-Signature": ORDER_SIGNATURE,
                       "X-Timestamp": "1700000000000", "X-Window": "5000"}


def test_64_byte_keypair_signs_like_its_seed():
    key32 = _sign.load_private_key(SEED)
    pub = base64.b64decode(_sign.public_key_b64(key32))
    key64 = _sign.load_private_key(base64.b64encode(bytes(range(32)) + pub).decode())
    assert _sign.sign(key64, ORDER_STRING) == ORDER_SIGNATURE


def test_docs_cancel_example_string_and_verification():
    s = _sign.signing_string("orderCancel", {"symbol": "BTC_USDT", "orderId": 28}, TS, 5000)
    assert s == "instruction=orderCancel&orderId=28&symbol=BTC_USDT&timestamp=1700000000000&window=5000"
    key = _sign.load_private_key(SEED)
    sig = _sign.sign(key, s)
    assert _sign.verify(_sign.public_key_b64(key), s, sig)
    assert not _sign.verify(_sign.public_key_b64(key), s.replace("28", "29"), sig)


def test_no_params_and_custom_window():
    assert _sign.signing_string("balanceQuery", {}, TS, 60000) == (
        "instruction=balanceQuery&timestamp=1700000000000&window=60000")
    assert _sign.signing_string("orderQueryAll", {"symbol": "SOL_USDC"}, TS) == (
        "instruction=orderQueryAll&symbol=SOL_USDC&timestamp=1700000000000&window=5000")


def test_none_values_are_left_out_and_false_is_lowercase():
    s = _sign.signing_string("orderExecute", {"b": False, "a": None, "c": 1}, TS)
    assert s == "instruction=orderExecute&b=false&c=1&timestamp=1700000000000&window=5000"


def test_batch_form():
    orders = [{"symbol": "SOL_USDC", "side": "Bid", "quantity": Decimal("1")},
              {"symbol": "SOL_USDC", "side": "Ask", "postOnly": True}]
    assert _sign.batch_signing_string(orders, TS) == (
        "instruction=orderExecute&quantity=1&side=Bid&symbol=SOL_USDC&"
        "instruction=orderExecute&postOnly=true&side=Ask&symbol=SOL_USDC&"
        "timestamp=1700000000000&window=5000")


def test_ws_subscribe_signature():
    key = _sign.load_private_key(SEED)
    pub = _sign.public_key_b64(key)
    arr = _sign.ws_subscribe_signature(pub, key, TS)
    assert arr[0] == pub and arr[2:] == ["1700000000000", "5000"]
    assert _sign.verify(pub, "instruction=subscribe&timestamp=1700000000000&window=5000", arr[1])


@pytest.mark.parametrize("value,text", [
    (Decimal("150.250"), "150.25"), (Decimal("1E+2"), "100"), (Decimal("0.00000001"), "0.00000001"),
    (Decimal("-0"), "0"), (Decimal("5"), "5"), (Decimal("1E-10"), "0.0000000001"),
])
def test_decimal_format_has_no_exponent(value, text):
    assert _sign.format_decimal(value) == text


def test_non_finite_decimal_refused():
    with pytest.raises(ValueError):
        _sign.format_decimal(Decimal("NaN"))


@pytest.mark.parametrize("secret", ["not base64!!", base64.b64encode(b"short").decode(), ""])
def test_bad_secret_is_a_credentials_error_without_echoing_it(secret):
    with pytest.raises(CredentialsError) as info:
        _sign.load_private_key(secret)
    assert secret not in str(info.value) or secret == ""


def test_instruction_table():
    assert _sign.instruction_for("DELETE", "/api/v1/order") == "orderCancel"
    assert _sign.instruction_for("get", "/wapi/v1/history/fills") == "fillHistoryQueryAll"
    assert _sign.instruction_for("GET", "/api/v1/markets") is None


def test_window_bounds():
    key = _sign.load_private_key(SEED)
    with pytest.raises(ValueError):
        _sign.signed_headers("PUB", key, "balanceQuery", None, TS, 60001)


# two independent implementations (the adapter's and the fake server's) agree on any params
from hypothesis import given, strategies as st  # noqa: E402

from gridbot_testsupport.fake_backpack import expected_string  # noqa: E402

_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12)
_vals = st.one_of(st.booleans(), st.integers(0, 2**32 - 1),
                  st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789.", min_size=1, max_size=12))


@given(st.dictionaries(_keys, _vals, max_size=8), st.integers(0, 2**45), st.integers(1, 60000))
def test_signing_string_matches_the_fake_servers(params, ts, window):
    mine = _sign.signing_string("orderExecute", params, ts, window)
    assert mine == expected_string("orderExecute", params, str(ts), str(window))
    assert mine.startswith("instruction=orderExecute&") and mine.endswith(f"&timestamp={ts}&window={window}")
