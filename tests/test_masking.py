"""The masking rules as a pure function: every form a secret takes in Python output is hidden."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from gust.masking import MASK, MIN_SECRET_LENGTH, SecretMasker, mask_text, secret_forms

# Secrets rich in what escaping changes: quotes, backslashes, newlines, controls, non-ASCII.
nasty_chars = st.sampled_from(list("ab'\"\\\n\t\x00é€😀 {}"))
secrets = st.text(alphabet=nasty_chars, min_size=MIN_SECRET_LENGTH, max_size=12).filter(
    lambda s: all(len(line) >= MIN_SECRET_LENGTH for line in s.splitlines()) and s.strip()
)


def renderings(secret: str) -> list[str]:
    return [
        secret,
        repr(secret),
        ascii(secret),
        json.dumps(secret),
        json.dumps(secret, ensure_ascii=False),
        str(KeyError(secret)),
        repr([secret, {"k": secret}]),
        json.dumps({"k": [secret]}),
        repr(repr(secret)),
        f"%r then {secret!r}" % (secret,),
    ]


@settings(max_examples=300, deadline=None)
@given(secrets)
def test_no_rendering_of_a_secret_survives_masking(secret: str) -> None:
    masker = SecretMasker([secret])
    for text in renderings(secret):
        masked = masker.mask(text)
        assert MASK in masked
        for form in {secret, repr(secret)[1:-1], ascii(secret)[1:-1], json.dumps(secret)[1:-1]}:
            assert form not in masked or len(form) < MIN_SECRET_LENGTH, (text, masked)


@settings(max_examples=200, deadline=None)
@given(secrets)
def test_each_line_of_a_multi_line_secret_is_masked_on_its_own(secret: str) -> None:
    masker = SecretMasker([secret])
    for line in secret.splitlines():
        assert masker.mask(f"<{line}>") == f"<{MASK}>"


def test_the_leaves_of_json_data_and_of_json_text_are_masked_but_not_numbers() -> None:
    text = json.dumps({"user": "admin-user", "nested": [{"pw": "hunter2-pw"}], "port": 5432})
    for secret in (text, json.loads(text)):
        assert mask_text("admin-user hunter2-pw 5432", [secret]) == "*** *** 5432"
    assert mask_text("[not json] x", ["[not json]"]) == "*** x"  # text that only looks like JSON


def test_short_forms_are_not_masked() -> None:
    assert secret_forms("abc") == set()
    assert mask_text("abc and abcd", ["abc", "abcd"]) == "abc and ***"
    assert mask_text("ab, then long-line", ["ab\nlong-line"]) == "ab, then ***"  # "ab" stays


def test_a_secret_exactly_min_length_is_masked_and_one_shorter_is_not():
    masker = SecretMasker()
    masker.register("k" * MIN_SECRET_LENGTH)
    masker.register("q" * (MIN_SECRET_LENGTH - 1))
    text = f"a {'k' * MIN_SECRET_LENGTH} b {'q' * (MIN_SECRET_LENGTH - 1)} c"
    assert masker.mask(text) == f"a *** b {'q' * (MIN_SECRET_LENGTH - 1)} c"
