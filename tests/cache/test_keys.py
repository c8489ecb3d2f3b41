"""KeySpace: where each record lives, and the identity hash that names it."""

from __future__ import annotations

from redis.crc import key_slot

from gateway.cache.keys import KeySpace, derived_hash_secret


def test_an_identitys_keys_share_one_cluster_hash_slot_and_name_no_identifier() -> None:
    """cred, lock and fail of one identity carry one hash tag (one Redis Cluster slot), and none of
    them holds the identity's plain value."""
    keys = KeySpace("gw", {"wechat": b"secret"})
    cred = keys.credential("wechat", {"wx_open_id": "o-user-1"})
    lock, fail = keys.lease(cred), keys.failure(cred)
    assert cred.startswith("gw:v1:{") and cred.endswith("}:cred")
    assert {key_slot(k.encode()) for k in (cred, lock, fail)} == {key_slot(cred.encode())}
    assert "o-user-1" not in cred + lock + fail


def test_the_hash_depends_on_provider_fields_and_secret_but_not_field_order() -> None:
    """Another provider, another value or another secret give another key; field order does not."""
    a = KeySpace("gw", {"p": b"s1", "q": b"s1"})
    b = KeySpace("gw", {"p": b"s2"})
    one = a.credential("p", {"x": "1", "y": "2"})
    assert one == a.credential("p", {"y": "2", "x": "1"})
    assert one != a.credential("q", {"x": "1", "y": "2"})
    assert one != a.credential("p", {"x": "1", "y": "3"})
    assert one != b.credential("p", {"x": "1", "y": "2"})


def test_provider_wide_keys_and_the_channel_live_under_the_prefix() -> None:
    """The ban, the rate bucket and the invalidation channel are named once, under the prefix."""
    keys = KeySpace("tenant-a", {})
    assert keys.ban("wechat") == "tenant-a:v1:ban:wechat"
    assert keys.rate("wechat") == "tenant-a:v1:rate:wechat"
    assert keys.channel == "tenant-a:v1:invalidate"


def test_a_derived_hash_secret_is_stable_and_not_the_app_secret() -> None:
    """Without cache_key_secret every replica derives the same key from the shared app secret."""
    assert derived_hash_secret("app-secret") == derived_hash_secret("app-secret")
    assert b"app-secret" not in derived_hash_secret("app-secret")
