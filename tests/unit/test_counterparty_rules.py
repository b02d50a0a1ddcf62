"""Counterparty rules without a database (service/counterparties/rules.py): SIRET and SIREN
checks (Luhn; La Poste's SIRETs by digit sum, PROVIDERS.md "SIREN and SIRET"), the French
VAT key, the normalizers' domain errors, and supplier matching (`usable_keys`, `decide`).

Sections: helpers · SIRET / SIREN (properties, La Poste, malformed input) · normalize_siret
· VAT · usable_keys · decide (examples and invariants)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from service.counterparties import rules
from service.counterparties.rules import (
    LA_POSTE_SIREN,
    Counterparty,
    Identity,
    MatchStatus,
    decide,
    french_vat_key,
    normalize_siret,
    normalize_vat,
    siren_ok,
    siret_ok,
    usable_keys,
)
from service.kit.errors import Code, DomainError

DIGITS = "0123456789"
ARABIC_INDIC = "".join(map(chr, range(0x660, 0x66A)))  # "\u0663" is 3: isdigit(), int() ok
FULLWIDTH = "".join(map(chr, range(0xFF10, 0xFF1A)))  # fullwidth digits: likewise
DANONE_SIREN = "732829320"
DANONE_SIRET = "73282932000074"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def digits_st(size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=DIGITS, min_size=size, max_size=size)


def completions(prefix: str, check: Callable[[str], bool]) -> list[str]:
    """The digits d for which check(prefix + d) holds."""
    return [d for d in DIGITS if check(prefix + d)]


def complete(prefix: str) -> str:
    """prefix + the Luhn check digit (computed here, independently of the code under test)."""
    total = 0
    for index, char in enumerate(reversed(prefix)):
        value = int(char)
        if index % 2 == 0:  # these positions are doubled once the check digit is appended
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return prefix + str((10 - total % 10) % 10)


def with_digit(text: str, position: int, digit: str) -> str:
    return text[:position] + digit + text[position + 1 :]


def domain_error(call: Callable[..., object], *args: object) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call(*args)
    return caught.value


def assert_invalid(err: DomainError, field: str, reason: str) -> None:
    assert err.code is Code.INVALID_ARGUMENT
    assert err.reason == reason, err
    assert [v.field for v in err.violations] == [field]
    assert err.metadata["field"] == field
    assert err.message.startswith(f"{field}: ")


# ---- SIRET / SIREN: Luhn properties -------------------------------------------------


@given(prefix=digits_st(13).filter(lambda p: not p.startswith(LA_POSTE_SIREN)))
def test_exactly_one_check_digit_completes_a_siret(prefix: str) -> None:
    assert completions(prefix, siret_ok) == [complete(prefix)[-1]]


@given(prefix=digits_st(8))
def test_exactly_one_check_digit_completes_a_siren(prefix: str) -> None:
    assert completions(prefix, siren_ok) == [complete(prefix)[-1]]


@given(
    prefix=digits_st(13),
    position=st.integers(min_value=0, max_value=13),
    digit=st.sampled_from(DIGITS),
)
def test_any_single_digit_change_breaks_a_siret(prefix: str, position: int, digit: str) -> None:
    valid = complete(prefix)
    changed = with_digit(valid, position, digit)
    assume(changed != valid)
    assume(not valid.startswith(LA_POSTE_SIREN) and not changed.startswith(LA_POSTE_SIREN))
    assert siret_ok(valid)
    assert not siret_ok(changed), (valid, changed)


@given(
    prefix=digits_st(8),
    position=st.integers(min_value=0, max_value=8),
    digit=st.sampled_from(DIGITS),
)
def test_any_single_digit_change_breaks_a_siren(prefix: str, position: int, digit: str) -> None:
    valid = complete(prefix)
    changed = with_digit(valid, position, digit)
    assume(changed != valid)
    assert siren_ok(valid)
    assert not siren_ok(changed), (valid, changed)


def test_every_single_digit_change_of_a_known_siret_is_caught() -> None:
    assert siret_ok(DANONE_SIRET) and siren_ok(DANONE_SIREN)
    for position in range(14):
        for digit in DIGITS:
            changed = with_digit(DANONE_SIRET, position, digit)
            if changed != DANONE_SIRET:
                assert not siret_ok(changed), changed


@given(siret=digits_st(14).filter(lambda s: not s.startswith(LA_POSTE_SIREN)))
def test_a_siret_is_valid_iff_it_passes_luhn(siret: str) -> None:
    assert siret_ok(siret) is (complete(siret[:13]) == siret)


@given(siren=digits_st(9))
def test_a_siren_is_valid_iff_it_passes_luhn(siren: str) -> None:
    assert siren_ok(siren) is (complete(siren[:8]) == siren)


# ---- La Poste -------------------------------------------------------------------------


@given(nic=digits_st(5))
def test_la_poste_siret_is_valid_iff_its_digit_sum_is_a_multiple_of_5(nic: str) -> None:
    siret = LA_POSTE_SIREN + nic
    assert siret_ok(siret) is (sum(int(c) for c in siret) % 5 == 0)


def test_la_poste_ignores_luhn_both_ways() -> None:
    # Digit sum 15 (valid for La Poste) but fails Luhn.
    assert not rules.luhn_ok("35600000000001")
    assert siret_ok("35600000000001")
    # Passes Luhn but digit sum 26: not a La Poste SIRET.
    assert rules.luhn_ok("35600000000048")
    assert not siret_ok("35600000000048")
    # Both at once.
    assert rules.luhn_ok("35600000000006") and siret_ok("35600000000006")


def test_la_poste_siren_is_valid() -> None:
    assert siren_ok(LA_POSTE_SIREN)
    assert siren_ok("356000000")


def test_la_poste_rule_needs_the_whole_siren() -> None:
    # 35600000 + another 9th digit is an ordinary company: Luhn applies, not the digit sum.
    siret = "35600000100005"  # digit sum 20, fails Luhn
    assert sum(int(c) for c in siret) % 5 == 0 and not rules.luhn_ok(siret)
    assert not siret_ok(siret)


# ---- malformed input --------------------------------------------------------------------


def non_ascii(text: str, table: str, position: int) -> str:
    """`text` with the digit at `position` replaced by the same digit in `table`."""
    return with_digit(text, position, table[int(text[position])])


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        DANONE_SIRET[:13],
        DANONE_SIRET + "0",
        "7328293200007A",
        "7328293200007 ",
        " 7328293200007",
        "732 829 320 00074",
        "+7328293200007",
        "-7328293200007",
        "73282932000.74",
        "732829320000\u00b2\u00b2",  # superscript two: isdigit() but int() refuses it
        non_ascii(DANONE_SIRET, ARABIC_INDIC, 3),
        non_ascii(DANONE_SIRET, FULLWIDTH, 13),
        "".join(ARABIC_INDIC[int(c)] for c in DANONE_SIRET),
        "".join(ARABIC_INDIC[int(c)] for c in "35600000000001"),
    ],
    ids=[
        "empty",
        "space",
        "13-digits",
        "15-digits",
        "letter",
        "trailing-space",
        "leading-space",
        "spaced",
        "plus",
        "minus",
        "dot",
        "superscript",
        "one-arabic-indic",
        "one-fullwidth",
        "all-arabic-indic",
        "arabic-la-poste",
    ],
)
def test_malformed_sirets_are_invalid(text: str) -> None:
    assert not siret_ok(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        DANONE_SIREN[:8],
        DANONE_SIREN + "0",
        "73282932A",
        " 73282932",
        "\u00b2\u00b2\u00b2\u00b2\u00b2\u00b2\u00b2\u00b2\u00b2",
        non_ascii(DANONE_SIREN, ARABIC_INDIC, 0),
        "".join(ARABIC_INDIC[int(c)] for c in DANONE_SIREN),
        "".join(FULLWIDTH[int(c)] for c in LA_POSTE_SIREN),
    ],
    ids=[
        "empty",
        "8-digits",
        "10-digits",
        "letter",
        "space",
        "superscripts",
        "one-arabic-indic",
        "all-arabic-indic",
        "fullwidth-la-poste",
    ],
)
def test_malformed_sirens_are_invalid(text: str) -> None:
    assert not siren_ok(text)


@given(text=st.text(max_size=20))
def test_only_ascii_digit_strings_of_the_right_length_can_pass(text: str) -> None:
    shaped = text.isascii() and text.isdigit()
    if not (shaped and len(text) == 14):
        assert not siret_ok(text)
    if not (shaped and len(text) == 9):
        assert not siren_ok(text)


@given(prefix=digits_st(13), position=st.integers(min_value=0, max_value=13))
def test_a_valid_siret_with_one_arabic_indic_digit_is_invalid(prefix: str, position: int) -> None:
    valid = complete(prefix)
    assume(not valid.startswith(LA_POSTE_SIREN))
    assert not siret_ok(non_ascii(valid, ARABIC_INDIC, position))


# ---- normalize_siret ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        DANONE_SIRET,
        "732 829 320 00074",
        " 73282932000074 ",
        "732\t829\t320\n00074",
        "732\u00a0829\u00a0320\u00a000074",
    ],
    ids=["compact", "spaced", "padded", "tabs-newline", "nbsp"],
)
def test_normalize_siret_ignores_whitespace(text: str) -> None:
    assert normalize_siret(text, "counterparty.siret") == DANONE_SIRET


def test_normalize_siret_keeps_a_la_poste_siret() -> None:
    assert normalize_siret("356 000 000 00001", "x") == "35600000000001"


@pytest.mark.parametrize("text", ["", " ", "  \t\n"], ids=["empty", "space", "whitespace"])
def test_normalize_siret_of_nothing_is_none(text: str) -> None:
    assert normalize_siret(text, "counterparty.siret") is None


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("73282932000075", "counterparty.siret"),
        ("7328293200007", "counterparty.siret"),
        ("732829320000745", "siret"),
        ("7328293200007x", "counterparty.siret"),
        (non_ascii(DANONE_SIRET, ARABIC_INDIC, 5), "counterparty.siret"),
        ("35600000000048", "counterparty.siret"),
        ("732-829-320-00074", "counterparty.siret"),
    ],
    ids=["luhn", "short", "long", "letter", "arabic-indic", "la-poste-sum", "dashes"],
)
def test_normalize_siret_refuses_bad_ones_naming_the_field(text: str, field: str) -> None:
    err = domain_error(normalize_siret, text, field)
    assert_invalid(err, field, "INVALID_SIRET")


# ---- VAT -------------------------------------------------------------------------------------


def test_french_vat_key_of_a_known_siren() -> None:
    assert french_vat_key(DANONE_SIREN) == "44"


@given(siren=digits_st(9))
def test_french_vat_key_is_two_digits_of_the_formula(siren: str) -> None:
    key = french_vat_key(siren)
    assert len(key) == 2 and key.isascii() and key.isdigit()
    assert int(key) == (12 + 3 * (int(siren) % 97)) % 97


def test_french_vat_key_is_zero_padded() -> None:
    siren = next(s for s in (f"{n:09d}" for n in range(10**8, 10**9)) if int(s) % 97 == 30)
    # (12 + 90) % 97 = 5
    assert french_vat_key(siren) == "05"


@given(prefix=digits_st(8))
def test_normalize_vat_accepts_the_right_french_key_only(prefix: str) -> None:
    siren = complete(prefix)
    key = french_vat_key(siren)
    assert normalize_vat(f"FR{key}{siren}", None, "v") == f"FR{key}{siren}"
    assert normalize_vat(f"fr {key} {siren}", siren, "v") == f"FR{key}{siren}"
    wrong = f"{(int(key) + 1) % 100:02d}"
    assert_invalid(domain_error(normalize_vat, f"FR{wrong}{siren}", None, "v"), "v", "INVALID_VAT")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FR44732829320", "FR44732829320"),
        ("fr44732829320", "FR44732829320"),
        ("fr 44 732 829 320", "FR44732829320"),
        ("  Fr44 732829320\t", "FR44732829320"),
        ("DE123456789", "DE123456789"),
        ("de 123 456 789", "DE123456789"),
        ("BE0123456789", "BE0123456789"),
        ("ATU12345678", "ATU12345678"),
        ("A" * 20, "A" * 20),
        ("", None),
        ("   ", None),
    ],
    ids=[
        "fr",
        "fr-lower",
        "fr-spaced",
        "fr-mixed",
        "de",
        "de-spaced",
        "be",
        "at",
        "20-chars",
        "empty",
        "blank",
    ],
)
def test_normalize_vat_upper_cases_and_strips_spaces(text: str, expected: str | None) -> None:
    assert normalize_vat(text, None, "counterparty.vat_number") == expected


def test_normalize_vat_with_the_siret_s_siren() -> None:
    assert normalize_vat("FR44732829320", DANONE_SIREN, "v") == "FR44732829320"
    # A non-French VAT number is never compared to the SIREN.
    assert normalize_vat("DE123456789", DANONE_SIREN, "v") == "DE123456789"


def test_normalize_vat_french_letter_key_is_not_checked_numerically() -> None:
    # France also issues VAT numbers whose 2-character key holds letters.
    assert normalize_vat("FRAB732829320", None, "v") == "FRAB732829320"


@pytest.mark.parametrize(
    "text",
    [
        "FR45732829320",
        "FR00732829320",
        "FR44732829321",  # the SIREN fails Luhn
        "FR4473282932",  # 8-digit SIREN
        "FR447328293200",  # 10-digit number
        "FR44",
        "FR",
        "FR44ABCDEFGHI",
        "A" * 21,
        "DE-123456789",
        "DE.123456789",
        "DE123456789!",
        "DÉ123456789",
        "DE" + FULLWIDTH[1:4] + "456789",
        "DE" + ARABIC_INDIC[1:4] + "456789",
    ],
    ids=[
        "fr-wrong-key",
        "fr-zero-key",
        "fr-bad-siren",
        "fr-short",
        "fr-long",
        "fr-no-siren",
        "fr-alone",
        "fr-letters",
        "21-chars",
        "dash",
        "dot",
        "bang",
        "accent",
        "fullwidth",
        "arabic-indic",
    ],
)
def test_normalize_vat_refuses_bad_numbers(text: str) -> None:
    err = domain_error(normalize_vat, text, None, "counterparty.vat_number")
    assert_invalid(err, "counterparty.vat_number", "INVALID_VAT")


def test_normalize_vat_french_siren_must_be_the_siret_s() -> None:
    other = "552100554"  # a valid SIREN
    assert siren_ok(other)
    vat = f"FR{french_vat_key(other)}{other}"
    assert normalize_vat(vat, other, "v") == vat
    err = domain_error(normalize_vat, vat, DANONE_SIREN, "counterparty.vat_number")
    assert_invalid(err, "counterparty.vat_number", "VAT_SIREN_MISMATCH")


def test_normalize_vat_wrong_key_is_reported_before_the_mismatch() -> None:
    err = domain_error(normalize_vat, "FR45732829320", "552100554", "v")
    assert_invalid(err, "v", "INVALID_VAT")


# ---- matching: usable_keys -------------------------------------------------------------------


def party(siret: str | None = None, *, head_office: bool = False) -> Counterparty:
    return Counterparty(
        id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        name="Supplier",
        siret=siret,
        siren=siret[:9] if siret else None,
        vat_number=None,
        head_office=head_office,
        version=1,
        created_at=NOW,
        updated_at=NOW,
        created_by="t",
        updated_by="t",
        deleted_at=None,
        deleted_by=None,
    )


def test_usable_keys_valid_siret_gives_its_own_siren() -> None:
    assert usable_keys(Identity(DANONE_SIRET, None)) == (DANONE_SIRET, DANONE_SIREN, "")
    # The document's SIREN, even a valid other one, yields to the SIRET's.
    assert usable_keys(Identity(DANONE_SIRET, "552100554")) == (DANONE_SIRET, DANONE_SIREN, "")
    assert usable_keys(Identity(f" {DANONE_SIRET} ", "")) == (DANONE_SIRET, DANONE_SIREN, "")


def test_usable_keys_la_poste_siret() -> None:
    assert usable_keys(Identity("35600000000001", None)) == (
        "35600000000001",
        LA_POSTE_SIREN,
        "",
    )


def test_usable_keys_valid_siren_alone() -> None:
    assert usable_keys(Identity(None, DANONE_SIREN)) == (None, DANONE_SIREN, "")
    assert usable_keys(Identity("", f" {DANONE_SIREN}\n")) == (None, DANONE_SIREN, "")


def test_usable_keys_drops_an_invalid_siret_and_says_so() -> None:
    siret, siren, note = usable_keys(Identity("73282932000075", DANONE_SIREN))
    assert (siret, siren) == (None, DANONE_SIREN)
    assert "SIRET" in note and "fails" in note


def test_usable_keys_never_trusts_an_invalid_siret_for_its_siren() -> None:
    # A SIRET failing its check does not lend its first 9 digits as a SIREN.
    siret, siren, note = usable_keys(Identity("73282932000075", None))
    assert (siret, siren) == (None, None)
    assert "SIRET" in note


def test_usable_keys_drops_an_invalid_siren_and_says_so() -> None:
    siret, siren, note = usable_keys(Identity(None, "732829321"))
    assert (siret, siren) == (None, None)
    assert "SIREN" in note and "fails" in note


def test_usable_keys_both_invalid_keeps_both_notes() -> None:
    siret, siren, note = usable_keys(Identity("7328293200007A", "73282932"))
    assert (siret, siren) == (None, None)
    assert "SIRET" in note and "SIREN" in note


@pytest.mark.parametrize(
    "identity",
    [Identity(None, None), Identity("", ""), Identity("  ", "\t")],
    ids=["none", "empty", "blank"],
)
def test_usable_keys_of_nothing(identity: Identity) -> None:
    assert usable_keys(identity) == (None, None, "")


def test_usable_keys_non_ascii_digits_are_not_trusted() -> None:
    siret, siren, note = usable_keys(Identity(non_ascii(DANONE_SIRET, ARABIC_INDIC, 0), None))
    assert (siret, siren) == (None, None) and note


# ---- matching: decide ------------------------------------------------------------------------


def match_identity(
    identity: Identity, by_siret: Sequence[Counterparty], by_siren: Sequence[Counterparty]
) -> rules.Match:
    siret, siren, note = usable_keys(identity)
    return decide(siret, siren, by_siret, by_siren, note)


def test_exact_siret_wins_over_the_head_office() -> None:
    exact = party(DANONE_SIRET)
    head = party("73282932000017", head_office=True)
    found = match_identity(Identity(DANONE_SIRET, None), [exact], [head, exact])
    assert found.status is MatchStatus.MATCHED
    assert found.counterparty_id == exact.id
    assert found.reason == "SIRET"
    assert found.siren == DANONE_SIREN


def test_siret_without_exact_match_falls_back_to_its_only_establishment() -> None:
    other = party("73282932000017")
    found = match_identity(Identity(DANONE_SIRET, None), [], [other])
    assert found.status is MatchStatus.MATCHED
    assert found.counterparty_id == other.id
    assert "SIREN" in found.reason and "SIRET" not in found.reason


def test_siren_alone_matches_the_only_establishment() -> None:
    only = party(DANONE_SIRET)
    found = match_identity(Identity(None, DANONE_SIREN), [], [only])
    assert (found.status, found.counterparty_id) == (MatchStatus.MATCHED, only.id)
    assert "SIREN" in found.reason


def test_several_establishments_match_the_single_head_office() -> None:
    a, head, c = (
        party("73282932000017"),
        party("73282932000025", head_office=True),
        party("73282932000033"),
    )
    for identity in (Identity(DANONE_SIRET, None), Identity(None, DANONE_SIREN)):
        found = match_identity(identity, [], [a, head, c])
        assert (found.status, found.counterparty_id) == (MatchStatus.MATCHED, head.id)
        assert "head office" in found.reason and "SIREN" in found.reason


def test_several_establishments_without_a_head_office_are_ambiguous() -> None:
    found = match_identity(
        Identity(None, DANONE_SIREN), [], [party("73282932000017"), party("73282932000025")]
    )
    assert found.status is MatchStatus.AMBIGUOUS
    assert found.counterparty_id is None
    assert found.siren == DANONE_SIREN
    assert "no head office" in found.reason and DANONE_SIREN in found.reason
    assert "2 establishments" in found.reason


def test_several_head_offices_are_ambiguous() -> None:
    found = match_identity(
        Identity(DANONE_SIRET, None),
        [],
        [
            party("73282932000017", head_office=True),
            party("73282932000025", head_office=True),
            party("73282932000033"),
        ],
    )
    assert found.status is MatchStatus.AMBIGUOUS
    assert found.counterparty_id is None
    assert "several head offices" in found.reason and "3 establishments" in found.reason


def test_no_establishment_is_unmatched() -> None:
    for identity in (Identity(DANONE_SIRET, None), Identity(None, DANONE_SIREN)):
        found = match_identity(identity, [], [])
        assert found.status is MatchStatus.UNMATCHED
        assert found.counterparty_id is None
        assert found.siren == DANONE_SIREN  # a contractor created later may match it
        assert DANONE_SIREN in found.reason


def test_invalid_siret_falls_back_to_a_valid_siren_keeping_the_note() -> None:
    only = party(DANONE_SIRET)
    found = match_identity(Identity("73282932000075", DANONE_SIREN), [], [only])
    assert (found.status, found.counterparty_id) == (MatchStatus.MATCHED, only.id)
    assert found.siren == DANONE_SIREN
    assert "SIREN" in found.reason
    assert "the document's SIRET fails its check" in found.reason


def test_invalid_siret_is_never_matched_exactly() -> None:
    # Even if a caller handed in a row with that very SIRET, the dropped SIRET is not used.
    bad = "73282932000075"
    found = match_identity(Identity(bad, None), [party(bad)], [party(bad)])
    assert found.status is MatchStatus.UNMATCHED
    assert found.counterparty_id is None
    assert "SIRET fails its check" in found.reason


def test_invalid_siren_is_unmatched_saying_so() -> None:
    found = match_identity(Identity(None, "732829321"), [], [party(DANONE_SIRET)])
    assert found.status is MatchStatus.UNMATCHED
    assert found.counterparty_id is None
    assert found.siren is None
    assert "no valid SIRET or SIREN" in found.reason
    assert "the document's SIREN fails its check" in found.reason


def test_neither_key_is_unmatched() -> None:
    found = match_identity(Identity(None, None), [], [])
    assert found.status is MatchStatus.UNMATCHED
    assert found.counterparty_id is None
    assert found.siren is None
    assert found.reason == "no valid SIRET or SIREN on the document"


parties_st = st.lists(st.booleans(), max_size=6).map(
    lambda heads: [
        party(complete(f"{DANONE_SIREN}{i:04d}"), head_office=h) for i, h in enumerate(heads)
    ]
)


@given(
    with_siret=st.booleans(),
    exact=st.booleans(),
    establishments=parties_st,
)
def test_decide_invariants(
    with_siret: bool, exact: bool, establishments: list[Counterparty]
) -> None:
    siret = DANONE_SIRET if with_siret else None
    by_siret = [establishments[0]] if (with_siret and exact and establishments) else []
    found = decide(siret, DANONE_SIREN, by_siret, establishments, "")
    heads = [c for c in establishments if c.head_office]
    assert found.siren == DANONE_SIREN
    assert (found.counterparty_id is not None) is (found.status is MatchStatus.MATCHED)
    if by_siret:
        assert found.counterparty_id == by_siret[0].id and found.reason == "SIRET"
    elif not establishments:
        assert found.status is MatchStatus.UNMATCHED
    elif len(establishments) == 1:
        assert found.counterparty_id == establishments[0].id
    elif len(heads) == 1:
        assert found.counterparty_id == heads[0].id
    else:
        assert found.status is MatchStatus.AMBIGUOUS
        assert f"{len(establishments)} establishments" in found.reason
    if found.status is MatchStatus.MATCHED:
        assert found.counterparty_id in {c.id for c in establishments}
