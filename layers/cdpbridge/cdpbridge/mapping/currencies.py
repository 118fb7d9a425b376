"""ISO 4217 currency codes accepted for Braze purchases."""

from __future__ import annotations

from typing import Final

# Active ISO 4217 codes plus the few replaced recently enough to appear in historical exports
# (ANG, HRK, SLL, VEF, ZWL). XTS (testing) and XXX (no currency) are left out on purpose.
_CODES_TEXT: Final = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP
    BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB
    EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD
    JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU
    MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD
    RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY
    TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VEF VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD
    XCD XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL
"""
ISO_4217_CODES: Final[frozenset[str]] = frozenset(_CODES_TEXT.split())


def currency_code(text: str) -> str | None:
    """The upper-case ISO 4217 code, or None when the text is not a known code."""
    code = text.strip().upper()
    return code if code in ISO_4217_CODES else None
