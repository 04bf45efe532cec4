"""Hand-built valid inputs for tests; each test changes only what it is about."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from puhui.domain.identifiers import id_check_char, luhn_check_digit

ID_NUMBER = "11010519491231002X"  # GB 11643's own example
MOBILE = "13812345678"
USCC = "91110108551385082Q"
BANK_CARD = "622202020011223344" + luhn_check_digit("622202020011223344")
NAME = "张三丰"
ADDRESS = "北京市朝阳区建国路88号"


def id_number(birth: str = "19800101", seq: str = "123", region: str = "110105") -> str:
    body = region + birth + seq
    return body + id_check_char(body)


def application(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "institution_code": "DEMO_BANK",
        "external_ref": "REF-0001",
        "submitted_at": datetime(2026, 11, 28, 2, 30, tzinfo=UTC),
        "enterprise": {
            "name": "北京示范科技有限公司",
            "uscc": USCC,
            "industry_code": "I65",
            "division_code": "110105",
            "registered_on": "2018-03-15",
            "annual_revenue": "3600000.00",
            "tax_grade": "B",
            "employees": 25,
        },
        "legal_representative": {
            "name": NAME,
            "id_number": ID_NUMBER,
            "mobile": MOBILE,
            "bank_account": BANK_CARD,
            "address": ADDRESS,
        },
        "amount": "300000.00",
        "term_months": 12,
        "repayment_method": "equal_installment",
        "purpose": "采购原材料",
        "channel": "api",
        "device_id": "dev-7f3a9c",
        "ip": "203.0.113.7",
        "consents": [
            {
                "purpose": "credit_assessment",
                "scope": ["identity", "contact", "financial_account", "enterprise", "device"],
                "text_version": "2026.1",
                "channel": "app",
            }
        ],
    }
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key].update(value)
        else:
            merged[key] = value
    return merged
