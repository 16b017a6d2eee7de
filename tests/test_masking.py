"""The masking rules as a pure function: every form a secret takes in Python output is hidden."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given, settings
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


@settings(max_examples=300, deadline=None)
@given(secrets)
@example("xé\"\\'")  # every escape differs: json, json without ensure_ascii, repr, ascii
@example("it's\x00é")  # a ' and no ": repr and ascii switch to the " style
def test_a_rendered_secret_is_masked_whole_leaving_only_its_quotes(secret: str) -> None:
    """No character of a secret's text or escaped forms is left beside the mask."""
    masker = SecretMasker([secret])
    assert masker.mask(secret) == MASK
    for text in (
        repr(secret),
        ascii(secret),
        json.dumps(secret),
        json.dumps(secret, ensure_ascii=False),
    ):
        assert masker.mask(text) == text[0] + MASK + text[-1], text


def test_masking_hides_the_secret_and_not_the_backslash_after_it() -> None:
    assert mask_text('ab"cd\\n', ['ab"cd']) == "***\\n"
    assert mask_text('it\'s "ab"cd\\', ['ab"cd']) == "it's \"***\\"


def test_an_empty_masker_is_false_and_changes_nothing() -> None:
    masker = SecretMasker()
    assert not masker and masker.pattern is None and masker.longest == 0
    assert masker.mask("any text") == "any text"
    masker.register("abc")  # too short to mask: still nothing registered
    assert not masker and masker.longest == 0
    masker.register("long-secret")
    assert masker and masker.longest == len("long-secret")


def test_longest_is_the_length_of_the_longest_form() -> None:
    """What a stream must hold back so a secret split over two writes is still caught."""
    masker = SecretMasker(["tab\there"])
    assert masker.longest == len(repr(repr("tab\there"))) - 4  # the escaped form of the repr
    assert masker.longest == max(map(len, secret_forms("tab\there")))


def test_every_secret_registered_stays_masked() -> None:
    masker = SecretMasker()
    masker.register("first-secret")
    masker.register({"pw": "second-secret"})
    assert masker.mask("first-secret second-secret") == "*** ***"


def test_the_leaves_of_json_array_text_are_masked() -> None:
    assert mask_text("user-name and pass-word", ['["user-name", ["pass-word"]]']) == "*** and ***"


def _nested(shape: str, depth: int) -> object:
    value: object = "deep-secret"
    for _ in range(depth):
        value = [value] if shape == "list" else {"k": value}
    return json.dumps(value) if shape == "json text" else value


@pytest.mark.parametrize(
    ("shape", "deepest"),
    [("list", 100), ("dict", 100), ("json text", 99)],  # the text itself is one level
)
def test_strings_are_searched_100_levels_deep_and_no_deeper(shape: str, deepest: int) -> None:
    assert mask_text("deep-secret", [_nested(shape, deepest)]) == MASK
    assert mask_text("deep-secret", [_nested(shape, deepest + 1)]) == "deep-secret"


def test_a_secret_nested_far_deeper_than_the_recursion_limit_is_registered() -> None:
    value: object = "deep-secret"
    for _ in range(5000):
        value = {"k": [value]}
    masker = SecretMasker([value, "top-secret"])
    assert masker.mask("top-secret") == MASK


def test_after_fork_the_masker_works_even_if_its_lock_was_held_at_the_fork() -> None:
    masker = SecretMasker(["first-secret"])
    masker._lock.acquire()  # another thread held it when the process forked
    masker.after_fork()
    masker.register("second-secret")
    assert masker.mask("first-secret second-secret") == "*** ***"
