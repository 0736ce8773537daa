"""Username normalisation: one Python function decides which names exist and how they
compare, over all of Unicode (no locale, no database `lower()`)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from lobby.accounts.usernames import canonical_username
from lobby.http.schemas import USERNAME_PATTERN

_REGISTRATION = re.compile(USERNAME_PATTERN.removeprefix("^").removesuffix("$"))
_CANONICAL = re.compile(r"[a-z0-9_.\-]{3,32}")
# Every code point (no category filter: surrogates and unassigned too), and names near the
# pattern: ASCII letters beside look-alikes that some lower() maps onto them.
_any_text = st.text(st.characters(), max_size=40)
_near = st.text(
    st.sampled_from("aAiIkKsSzZ09_.-\u0130\u0131\u212a\u017f\u0307 \n\t\u00a0\uff21\u0410"),
    min_size=0,
    max_size=34,
)
_names = st.one_of(_any_text, _near, st.from_regex(_REGISTRATION, fullmatch=True))


@given(_names)
def test_only_names_of_the_registration_pattern_have_a_canonical_form(name: str) -> None:
    canonical = canonical_username(name)
    if _REGISTRATION.fullmatch(name) is None:
        assert canonical is None
    else:
        assert canonical is not None and _CANONICAL.fullmatch(canonical)


@given(_names, _names)
def test_normalisation_is_stable(a: str, b: str) -> None:
    ca, cb = canonical_username(a), canonical_username(b)
    if ca is not None:
        assert canonical_username(ca) == ca  # idempotent
        assert canonical_username(a.swapcase()) == ca  # ASCII case never matters
    if ca is not None and cb is not None:
        # equal under it exactly when equal ignoring ASCII case, nothing else
        assert (ca == cb) == (a.encode().lower() == b.encode().lower())
