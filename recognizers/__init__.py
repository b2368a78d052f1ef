"""Presidio recognizers for Taiwanese identifiers, Chinese names and classification markings.

One recognizer per module. Every recognizer is given *folded* text (``recognizers.text.fold``):
same length as the original, so its offsets are offsets into the original text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing Presidio costs a second; `guard proxy` imports this package before it
    from presidio_analyzer import EntityRecognizer  # starts the fork server that needs Presidio

LANGUAGE = "zh"


def builtin_recognizers() -> list[EntityRecognizer]:
    """A fresh instance of every built-in recognizer (heavy ones load lazily on first use)."""
    from recognizers.classification_marker import ClassificationMarkerRecognizer
    from recognizers.credit_card import CreditCardRecognizer
    from recognizers.date_of_birth import DateOfBirthRecognizer
    from recognizers.email import EmailRecognizer
    from recognizers.medical_record import MedicalRecordRecognizer
    from recognizers.person import ChinesePersonRecognizer
    from recognizers.tw_address import TwAddressRecognizer
    from recognizers.tw_bank_account import TwBankAccountRecognizer
    from recognizers.tw_license_plate import TwLicensePlateRecognizer
    from recognizers.tw_national_id import TwNationalIdRecognizer
    from recognizers.tw_nhi_card import TwNhiCardRecognizer
    from recognizers.tw_passport import TwPassportRecognizer
    from recognizers.tw_phone import TwPhoneRecognizer
    from recognizers.tw_resident_id import TwResidentIdRecognizer
    from recognizers.tw_ubn import TwUbnRecognizer

    return [
        TwNationalIdRecognizer(),
        TwResidentIdRecognizer(),
        TwLicensePlateRecognizer(),
        TwPhoneRecognizer(),
        EmailRecognizer(),
        ClassificationMarkerRecognizer(),
        TwUbnRecognizer(),
        TwPassportRecognizer(),
        TwNhiCardRecognizer(),
        CreditCardRecognizer(),
        TwAddressRecognizer(),
        DateOfBirthRecognizer(),
        TwBankAccountRecognizer(),
        MedicalRecordRecognizer(),
        ChinesePersonRecognizer(),
    ]


BUILTIN_ENTITIES = (
    "TW_NATIONAL_ID", "TW_RESIDENT_ID", "TW_LICENSE_PLATE", "PHONE_NUMBER", "EMAIL_ADDRESS",
    "CLASSIFICATION_MARKER", "TW_UBN", "TW_PASSPORT", "TW_NHI_CARD", "CREDIT_CARD", "PERSON",
    "TW_ADDRESS", "DATE_OF_BIRTH", "TW_BANK_ACCOUNT", "MEDICAL_RECORD_NUMBER",
)
