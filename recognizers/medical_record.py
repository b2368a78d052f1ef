"""Recognizer for medical record numbers (病歷號碼, ``MEDICAL_RECORD_NUMBER``).

Format: each hospital numbers its charts itself (病歷號, chart number, MRN): commonly 6 to 10
digits, sometimes after one or two letters (``A01234567``). Nothing in the number says what it
is, so a match needs 病歷號 / 病歷 / MRN / chart no. right before it, or a column so headed.
病歷 is health data under 個人資料保護法 第6條 (特種個資).
"""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern

from recognizers.required_context import RequiredContextRecognizer
from recognizers.text import NOT_AFTER_ALNUM, NOT_BEFORE_ALNUM


class MedicalRecordRecognizer(RequiredContextRecognizer):
    """Find chart numbers right after a word naming them."""

    ENTITY = "MEDICAL_RECORD_NUMBER"

    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("medical record number",
                NOT_AFTER_ALNUM + r"[A-Za-z]{0,2}\d{6,10}" + NOT_BEFORE_ALNUM, 0.3),
    ]

    CONTEXT: ClassVar[list[str]] = [
        "病歷號", "病歷編號", "病歷", "病例號", "MRN", "chart no", "medical record",
    ]
    CONTEXT_BEFORE = 8
    HEADER_WORDS = ("病歷",)
