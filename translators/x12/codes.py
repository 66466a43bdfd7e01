"""The acknowledgment codes X12 prescribes, as enums.

Every error the engine records carries one of these codes, so an acknowledgment
builder never has to guess: TA1 interchange notes (TA105), AK3/IK3 segment
syntax codes, AK4/IK4 element syntax codes, AK5/IK5 set codes and AK9 group codes.
Values are the code as it is written on the wire.
"""

from __future__ import annotations

from enum import StrEnum


class InterchangeNote(StrEnum):
    """TA105 interchange note codes (X12.56)."""

    NO_ERROR = "000"
    CONTROL_NUMBER_MISMATCH = "001"  # IEA02 differs from ISA13
    STANDARD_NOT_SUPPORTED = "002"
    VERSION_NOT_SUPPORTED = "003"
    SEGMENT_TERMINATOR_INVALID = "004"
    INVALID_SENDER_QUALIFIER = "005"
    INVALID_SENDER_ID = "006"
    INVALID_RECEIVER_QUALIFIER = "007"
    INVALID_RECEIVER_ID = "008"
    UNKNOWN_RECEIVER_ID = "009"
    INVALID_AUTH_QUALIFIER = "010"
    INVALID_AUTH_VALUE = "011"
    INVALID_SECURITY_QUALIFIER = "012"
    INVALID_SECURITY_VALUE = "013"
    INVALID_DATE = "014"
    INVALID_TIME = "015"
    INVALID_STANDARDS_ID = "016"
    INVALID_VERSION_ID = "017"
    INVALID_CONTROL_NUMBER = "018"
    INVALID_ACK_REQUESTED = "019"
    INVALID_TEST_INDICATOR = "020"
    INVALID_GROUP_COUNT = "021"  # IEA01 differs from the number of groups
    INVALID_CONTROL_STRUCTURE = "022"
    IMPROPER_END_OF_FILE = "023"  # premature end of data, IEA missing
    INVALID_INTERCHANGE_CONTENT = "024"
    DUPLICATE_INTERCHANGE = "025"
    INVALID_DATA_ELEMENT_SEPARATOR = "026"
    INVALID_COMPONENT_SEPARATOR = "027"
    INVALID_DELIVERY_DATE = "028"
    INVALID_DELIVERY_TIME = "029"
    INVALID_DELIVERY_TIME_CODE = "030"
    INVALID_GRADE_OF_SERVICE = "031"


class SegmentSyntaxCode(StrEnum):
    """AK304 / IK304 segment syntax error codes."""

    UNRECOGNIZED = "1"
    UNEXPECTED = "2"
    MANDATORY_MISSING = "3"
    LOOP_OVER_MAX = "4"
    SEGMENT_OVER_MAX_USE = "5"
    NOT_IN_DEFINED_SET = "6"
    NOT_IN_SEQUENCE = "7"
    HAS_ELEMENT_ERRORS = "8"


class ElementSyntaxCode(StrEnum):
    """AK403 / IK403 element syntax error codes."""

    MANDATORY_MISSING = "1"
    CONDITIONAL_MISSING = "2"
    TOO_MANY_ELEMENTS = "3"
    TOO_SHORT = "4"
    TOO_LONG = "5"
    INVALID_CHARACTER = "6"
    INVALID_CODE = "7"
    INVALID_DATE = "8"
    INVALID_TIME = "9"
    EXCLUSION_VIOLATED = "10"
    TOO_MANY_REPETITIONS = "12"
    TOO_MANY_COMPONENTS = "13"


class SetSyntaxCode(StrEnum):
    """AK502 / IK502 transaction set syntax error codes."""

    NOT_SUPPORTED = "1"
    TRAILER_MISSING = "2"
    CONTROL_NUMBER_MISMATCH = "3"  # SE02 differs from ST02
    SEGMENT_COUNT_WRONG = "4"  # SE01 differs from the segments counted
    ONE_OR_MORE_SEGMENTS_IN_ERROR = "5"
    MISSING_OR_INVALID_SET_ID = "6"
    MISSING_OR_INVALID_CONTROL_NUMBER = "7"
    AUTHENTICATION_KEY_MISMATCH = "8"
    ENCRYPTION_KEY_MISMATCH = "9"
    REQUESTED_SERVICE_NOT_AVAILABLE = "10"
    UNKNOWN_SECURITY_RECIPIENT = "11"
    INCORRECT_MESSAGE_LENGTH = "12"
    MESSAGE_AUTHENTICATION_CODE_FAILED = "13"
    UNKNOWN_SECURITY_ORIGINATOR = "15"
    SYNTAX_ERROR_IN_DECRYPTED_TEXT = "16"
    SECURITY_NOT_SUPPORTED = "17"
    SET_NOT_IN_GROUP = "18"
    INVALID_IMPLEMENTATION_REFERENCE = "19"
    SET_CONTROL_NUMBER_NOT_UNIQUE = "23"  # ST02 repeated inside one group
    IMPLEMENTATION_CONVENTION_NOT_SUPPORTED = "I6"  # 999 only


class GroupSyntaxCode(StrEnum):
    """AK905 / AK9 group syntax error codes."""

    NOT_SUPPORTED = "1"
    VERSION_NOT_SUPPORTED = "2"
    TRAILER_MISSING = "3"
    CONTROL_NUMBER_MISMATCH = "4"  # GE02 differs from GS06
    SET_COUNT_WRONG = "5"  # GE01 differs from the sets counted
    CONTROL_NUMBER_NOT_UNIQUE = "6"
    AUTHENTICATION_KEY_MISMATCH = "10"
    ENCRYPTION_KEY_MISMATCH = "11"
    ENCRYPTION_REQUIRED = "12"
    AUTHENTICATION_REQUIRED = "13"
    COMPRESSION_REQUIRED = "14"


class AckCode(StrEnum):
    """AK501/IK501 and AK901 acknowledgment codes."""

    ACCEPTED = "A"
    ACCEPTED_WITH_ERRORS = "E"
    PARTIALLY_ACCEPTED = "P"  # AK901 only: some sets rejected
    REJECTED = "R"
    REJECTED_MAC_FAILED = "M"
    REJECTED_CONTENT_UNDECRYPTABLE = "X"
    REJECTED_ASSURANCE_FAILED = "W"
