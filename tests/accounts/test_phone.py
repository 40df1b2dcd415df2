"""Indonesian phone numbers are normalised to E.164; anything else is refused; logs get masks."""

import pytest

from accounts.phone import InvalidPhone, phone_mask, phone_normalize


@pytest.mark.parametrize(
    "raw",
    [
        "081234567890",
        "6281234567890",
        "+6281234567890",
        "+62 812-3456-7890",
        "0812.3456.7890",
        " (0812) 34567890 ",
    ],
)
def test_accepted_spellings_normalise_to_e164(raw):
    assert phone_normalize(raw) == "+6281234567890"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "hello",
        "12345",
        "+6221234567",  # Jakarta landline: cannot receive the code
        "+14155550123",  # not Indonesia
        "0812",  # too short
        "08123456789012345",  # too long
        "+62812345678a0",
        "0812345678\x00",
        "٠٨١٢٣٤٥٦٧٨٩٠",  # non-ASCII digits
        "x" * 200,
    ],
)
def test_non_phone_strings_are_refused(raw):
    with pytest.raises(InvalidPhone):
        phone_normalize(raw)


def test_mask_hides_the_middle():
    masked = phone_mask("+6281234567890")
    assert masked.startswith("+62812") and masked.endswith("890")
    assert "34567" not in masked
    assert phone_mask(None) == "-"


@pytest.mark.parametrize(
    "raw",
    [
        "+628١٢٣٤٥٦٧٨٩٠",  # Arabic-Indic digits after an ASCII prefix
        "+62８１２３４５６７８９０",  # fullwidth
        "+628१२३४५६७८९०",  # Devanagari
        "081234567890\u200b",  # zero-width space
        "0812\t34567890",
        "+628000000000",  # not a number plan Indonesia uses
    ],
)
def test_other_digit_scripts_and_invisible_characters_are_refused(raw):
    with pytest.raises(InvalidPhone):
        phone_normalize(raw)


@pytest.mark.django_db
def test_other_digit_scripts_cannot_bypass_the_per_phone_otp_limit(api):
    ascii_phone = "081234567890"
    for _ in range(3):
        assert api.post("/api/mitra/auth/otp/request", {"phone": ascii_phone})[0] == 200
    assert api.post("/api/mitra/auth/otp/request", {"phone": ascii_phone})[0] == 429
    for spelling in ("+628١٢٣٤٥٦٧٨٩٠", "+62８１２３４５６７８９０", "+62 812 3456 7890"):
        status, body = api.post("/api/mitra/auth/otp/request", {"phone": spelling})
        assert status in (422, 429), (spelling, status)
        assert body["success"] is False
