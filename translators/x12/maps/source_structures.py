"""Transaction set structures the grammar maps are generated from (authoring input).

One indented tree per set and version. A line is either a segment
``TAG REQ MAX`` (REQ is M or O, MAX a number or ``>1``) or a loop
``LOOP ID REPEAT`` whose indented children follow; a loop's first child is its
trigger segment, and the loop is mandatory when that segment is M. Order, loop
nesting and max use follow the X12 004010 and 005010 transaction set tables.
Never imported at runtime.
"""

from __future__ import annotations

_N1_810 = """
LOOP N1 200
  N1 O 1
  N2 O 2
  N3 O 2
  N4 O 1
  REF O 12
  PER O 3
  DMG O 1
"""

_LM = """
LOOP LM {repeat}
  LM O 1
  LQ M {lq}
"""


def _indent(block: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line.strip() else line for line in block.strip("\n").splitlines())


def _lm(repeat: str, lq: str, spaces: int) -> str:
    return _indent(_LM.format(repeat=repeat, lq=lq), spaces)


S850_4010 = f"""
ST M 1
BEG M 1
CUR O 1
REF O >1
PER O 3
TAX O >1
FOB O >1
CTP O >1
PAM O 10
CSH O 5
TC2 O >1
LOOP SAC 25
  SAC O 1
  CUR O 1
ITD O >1
DIS O 20
INC O 1
DTM O 10
LDT O 12
LIN O 5
SI O >1
PID O 200
MEA O 40
PWK O 25
PKG O 200
TD1 O 2
TD5 O 12
TD3 O 12
TD4 O 5
MAN O 10
PCT O >1
CTB O 5
TXI O >1
LOOP AMT >1
  AMT O 1
  REF O >1
  DTM O 1
  PCT O >1
  LOOP FA1 >1
    FA1 O 1
    FA2 M >1
LOOP N9 1000
  N9 O 1
  DTM O 10
  MSG O 1000
LOOP N1 200
  N1 O 1
  N2 O 2
  N3 O 2
  N4 O >1
  NX2 O >1
  REF O 12
  PER O >1
  SI O >1
  FOB O 1
  TD1 O 2
  TD5 O 12
  TD3 O 12
  TD4 O 5
  PKG O 200
{_lm(">1", ">1", 0)}
LOOP SPI >1
  SPI O 1
  REF O 5
  DTM O 5
  MSG O 50
  LOOP N1 20
    N1 O 1
    N2 O 2
    N3 O 2
    N4 O 1
    REF O 20
    G61 O 1
    MSG O 50
  LOOP CB1 >1
    CB1 O 1
    REF O 20
    DTM O 5
    LDT O 1
    MSG O 50
LOOP ADV >1
  ADV O 1
  DTM O >1
  MTX O >1
LOOP PO1 100000
  PO1 M 1
  LIN O >1
  SI O >1
  CUR O 1
  CN1 O 1
  PO3 O 25
  LOOP CTP >1
    CTP O 1
    CUR O 1
  PAM O 10
  MEA O 40
  LOOP PID 1000
    PID O 1
    MEA O 10
  PWK O 25
  PO4 O >1
  REF O >1
  PER O 3
  LOOP SAC 25
    SAC O 1
    CUR O 1
    CTP O 1
  IT8 O 1
  CSH O >1
  ITD O 2
  DIS O 20
  INC O 1
  TAX O >1
  FOB O >1
  SDQ O 500
  IT3 O 5
  DTM O 10
  TC2 O >1
  TD1 O 1
  TD5 O 12
  TD3 O 12
  TD4 O 5
  PCT O >1
  MAN O 10
  MSG O >1
  SPI O >1
  TXI O >1
  CTB O >1
  LOOP QTY >1
    QTY O 1
    SI O >1
  LOOP SCH 200
    SCH O 1
    TD1 O 2
    TD5 O 12
    TD3 O 12
    TD4 O 5
    REF O >1
  LOOP PKG 200
    PKG O 1
    MEA O >1
  LS O 1
  LOOP LDT 1000
    LDT O 1
    QTY O >1
    MSG O 1
    REF O 3
{_lm(">1", ">1", 4)}
  LE O 1
  LOOP N9 1000
    N9 O 1
    DTM O >1
    MEA O 40
    MSG O 1000
  LOOP N1 200
    N1 O 1
    N2 O 2
    N3 O 2
    N4 O 1
    QTY O >1
    NX2 O >1
    REF O 12
    PER O 3
    SI O >1
    DTM O 1
    FOB O 1
    SCH O 200
    TD1 O 2
    TD5 O 12
    TD3 O 12
    TD4 O 5
    PKG O 200
    LOOP LDT >1
      LDT O 1
      MAN O 10
      QTY O 5
      MSG O 1
      REF O 3
  LOOP SLN 1000
    SLN O 1
    MSG O >1
    SI O >1
    PID O 1000
    PO3 O 104
    TC2 O >1
    ADV O >1
    DTM O 10
    CTP O 25
    PAM O 10
    PO4 O 1
    TAX O 3
    LOOP N9 >1
      N9 O 1
      DTM O >1
      MSG O >1
    LOOP SAC 25
      SAC O 1
      CUR O 1
      CTP O 1
    LOOP QTY >1
      QTY O 1
      SI O >1
    LOOP N1 10
      N1 O 1
      N2 O 2
      N3 O 2
      N4 O 1
      NX2 O >1
      REF O 12
      PER O 3
      SI O >1
  LOOP AMT >1
    AMT O 1
    REF O 1
    PCT O >1
{_lm(">1", ">1", 2)}
LOOP CTT 1
  CTT O 1
  AMT O 1
SE M 1
"""

S850_5010 = f"""
ST M 1
BEG M 1
CUR O 1
REF O >1
PER O 3
TAX O >1
FOB O >1
CTP O >1
PAM O 10
CSH O 5
TC2 O >1
LOOP SAC 25
  SAC O 1
  CUR O 1
ITD O >1
DIS O 20
INC O 1
DTM O 10
LIN O 5
SI O >1
PID O 200
MEA O 40
PWK O 25
PKG O 200
TD1 O 2
TD5 O >1
TD3 O 12
TD4 O 5
MAN O 10
PCT O >1
CTB O 5
TXI O >1
LOOP LDT >1
  LDT O 1
  QTY O >1
  MTX O >1
  REF O >1
LOOP AMT >1
  AMT O 1
  REF O >1
  DTM O 1
  PCT O >1
  LOOP FA1 >1
    FA1 O 1
    FA2 M >1
LOOP N9 1000
  N9 O 1
  DTM O >1
  MTX O >1
  PWK O >1
  EFI O >1
LOOP N1 200
  N1 O 1
  N2 O 2
  IN2 O >1
  N3 O 2
  N4 O >1
  NX2 O >1
  REF O 12
  PER O >1
  SI O >1
  FOB O 1
  TD1 O 2
  TD5 O 12
  TD3 O 12
  TD4 O 5
  PKG O 200
{_lm(">1", ">1", 0)}
LOOP SPI >1
  SPI O 1
  REF O 5
  DTM O 5
  MTX O >1
  LOOP N1 20
    N1 O 1
    N2 O 2
    N3 O 2
    N4 O 1
    REF O 20
    G61 O 1
    MTX O >1
  LOOP CB1 >1
    CB1 O 1
    REF O 20
    DTM O 5
    LDT O 1
    MTX O >1
LOOP ADV >1
  ADV O 1
  DTM O >1
  MTX O >1
LOOP PO1 100000
  PO1 M 1
  LIN O >1
  SI O >1
  CUR O 1
  CN1 O 1
  PO3 O 25
  LOOP CTP >1
    CTP O 1
    CUR O 1
  PAM O 10
  MEA O 40
  LOOP PID 1000
    PID O 1
    MEA O 10
  PWK O 25
  PO4 O >1
  REF O >1
  PER O 3
  LOOP SAC 25
    SAC O 1
    CUR O 1
    CTP O 1
  IT8 O 1
  CSH O >1
  ITD O 2
  DIS O 20
  INC O 1
  TAX O >1
  FOB O >1
  SDQ O 500
  IT3 O 5
  DTM O 10
  TC2 O >1
  TD1 O 1
  TD5 O 12
  TD3 O 12
  TD4 O 5
  PCT O >1
  MAN O 10
  MTX O >1
  SPI O >1
  TXI O >1
  CTB O >1
  LOOP QTY >1
    QTY O 1
    SI O >1
  LOOP SCH 200
    SCH O 1
    TD1 O 2
    TD5 O 12
    TD3 O 12
    TD4 O 5
    REF O >1
  LOOP PKG 200
    PKG O 1
    MEA O >1
  LS O 1
  LOOP LDT 1000
    LDT O 1
    QTY O >1
    MTX O >1
    REF O 3
{_lm(">1", ">1", 4)}
  LE O 1
  LOOP N9 1000
    N9 O 1
    DTM O >1
    MEA O 40
    MTX O >1
    PWK O >1
    EFI O >1
  LOOP N1 200
    N1 O 1
    N2 O 2
    IN2 O >1
    N3 O 2
    N4 O 1
    QTY O >1
    NX2 O >1
    REF O 12
    PER O 3
    SI O >1
    DTM O 1
    FOB O 1
    SCH O 200
    TD1 O 2
    TD5 O 12
    TD3 O 12
    TD4 O 5
    PKG O 200
    LOOP LDT >1
      LDT O 1
      MAN O 10
      QTY O 5
      MTX O >1
      REF O 3
  LOOP SLN 1000
    SLN O 1
    MTX O >1
    SI O >1
    PID O 1000
    PO3 O 104
    MEA O >1
    TC2 O >1
    ADV O >1
    DTM O 10
    CTP O 25
    PAM O 10
    PO4 O 1
    TAX O 3
    LOOP N9 >1
      N9 O 1
      DTM O >1
      MTX O >1
    LOOP SAC 25
      SAC O 1
      CUR O 1
      CTP O 1
    LOOP QTY >1
      QTY O 1
      SI O >1
    LOOP N1 10
      N1 O 1
      N2 O 2
      IN2 O >1
      N3 O 2
      N4 O 1
      NX2 O >1
      REF O 12
      PER O 3
      SI O >1
  LOOP AMT >1
    AMT O 1
    REF O >1
    PCT O >1
{_lm(">1", ">1", 2)}
LOOP CTT 1
  CTT O 1
  AMT O 1
SE M 1
"""


def _s855(version: str) -> str:
    text = "MSG" if version == "004010" else "MTX"
    n9_children = (
        "  DTM O >1\n  MSG O 1000"
        if version == "004010"
        else "  DTM O >1\n  MTX O >1\n  PWK O >1\n  EFI O >1"
    )
    in2 = "" if version == "004010" else "  IN2 O >1\n"
    in2_4 = "" if version == "004010" else "    IN2 O >1\n"
    n1_tail = "  MSG O >1" if version == "004010" else "  MTX O >1"
    sln_mea = "" if version == "004010" else "    MEA O >1\n"
    return f"""
ST M 1
BAK M 1
CUR O 1
REF O >1
PER O 3
TAX O >1
FOB O >1
CTP O >1
PAM O 10
CSH O 1
LOOP SAC 25
  SAC O 1
  CUR O 1
ITD O 5
DIS O 20
INC O 1
DTM O 10
LDT O 12
LIN O 5
SI O >1
PID O 200
MEA O 40
PWK O 25
PKG O 25
TD1 O 2
TD5 O 12
TD3 O 12
TD4 O 5
MAN O 10
TXI O >1
CTB O >1
LOOP N9 1000
  N9 O 1
{n9_children}
LOOP N1 200
  N1 O 1
  N2 O 2
{in2}  N3 O 2
  N4 O 1
  NX2 O >1
  REF O 12
  PER O >1
  SI O >1
  FOB O 1
  TD1 O 2
  TD5 O 12
  TD3 O 12
  TD4 O 5
  PKG O 25
{n1_tail}
LOOP ADV >1
  ADV O 1
  DTM O >1
  MTX O >1
LOOP PO1 100000
  PO1 O 1
  LIN O >1
  SI O >1
  CUR O 1
  PO3 O 25
  CTP O >1
  PAM O 10
  MEA O 40
  LOOP PID 1000
    PID O 1
    MEA O 10
  PWK O 25
  PO4 O >1
  REF O >1
  PER O 3
  LOOP SAC 25
    SAC O 1
    CUR O 1
  IT8 O 1
  CSH O >1
  ITD O 2
  DIS O 20
  INC O 1
  TAX O >1
  FOB O >1
  SDQ O 500
  DTM O 10
  LDT O 12
  TD1 O 1
  TD5 O 12
  TD3 O 12
  TD4 O 5
  LOOP ACK 104
    ACK O 1
    DTM O 1
  MAN O 10
  AMT O 1
  CTB O >1
  TXI O >1
  LOOP QTY >1
    QTY O 1
    SI O >1
  LOOP PKG 200
    PKG O 1
    MEA O >1
  LOOP SCH 200
    SCH O 1
    TD1 O 2
    TD5 O 12
    TD3 O 12
    TD4 O 5
    REF O >1
  LOOP N9 1000
    N9 O 1
  {n9_children.replace(chr(10), chr(10) + "  ")}
  LOOP N1 200
    N1 O 1
    N2 O 2
{in2_4}    N3 O 2
    N4 O 1
    NX2 O >1
    REF O 12
    PER O 3
    SI O >1
    DTM O 1
    FOB O 1
    SCH O 200
    TD1 O 2
    TD5 O 12
    TD3 O 12
    TD4 O 5
    QTY O >1
    PKG O 25
  LOOP SLN 1000
    SLN O 1
    {text} O >1
    SI O >1
    PID O 1000
    PO3 O 25
{sln_mea}    CTP O 25
    PAM O 10
    ACK O 104
    LOOP SAC 10
      SAC O 1
      CUR O 1
    DTM O 10
    PO4 O 1
    TAX O 3
    ADV O >1
    LOOP QTY >1
      QTY O 1
      SI O >1
    LOOP N9 >1
      N9 O 1
      DTM O >1
      {text} O >1
    LOOP N1 10
      N1 O 1
      N2 O 2
{in2_4.replace("    ", "      ")}      N3 O 2
      N4 O 1
      NX2 O >1
      REF O 12
      PER O 3
      SI O >1
LOOP CTT 1
  CTT O 1
  AMT O 1
SE M 1
"""


def _s856(version: str) -> str:
    td3 = "  TD3 O 12" if version == "004010" else "  LOOP TD3 12\n    TD3 O 1\n    AT9 O 1"
    lh4 = "1" if version == "004010" else "4"
    return f"""
ST M 1
BSN M 1
DTM O 10
LOOP HL 200000
  HL M 1
  LIN O 1
  SN1 O 1
  SLN O 1000
  PRF O 1
  PO4 O 1
  PID O 200
  MEA O 40
  PWK O 25
  PKG O 25
  TD1 O 20
  TD5 O 12
{td3}
  TD4 O 5
  TSD O 1
  REF O >1
  PER O 3
  LOOP LH1 100
    LH1 O 1
    LH2 O 4
    LH3 O 12
    LFH O 20
    LEP O >1
    LH4 O {lh4}
    LHT O 3
    LHR O 10
    PER O 5
    LHE O 1
  LOOP CLD 200
    CLD O 1
    REF O 200
    DTP O 1
  MAN O >1
  DTM O 10
  FOB O 1
  PAL O 1
  LOOP N1 200
    N1 O 1
    N2 O 2
    N3 O 2
    N4 O 1
    REF O 12
    PER O 3
    FOB O 1
  SDQ O 50
  ETD O 1
  CUR O 1
  LOOP SAC >1
    SAC O 1
    CUR O 1
  GF O 1
  YNQ O 10
{_lm("10", "100", 2)}
  LOOP V1 >1
    V1 O 1
    R4 O >1
    DTM O >1
CTT O 1
SE M 1
"""


def _s810(version: str) -> str:
    crc_head = "" if version == "004010" else "CRC O 1\n"
    txi_max = "10" if version == "004010" else ">1"
    sac_sum = (
        "LOOP SAC 25\n  SAC O 1\n  TXI O 10"
        if version == "004010"
        else ("LOOP SAC >1\n  SAC O 1\n  DTM O >1\n  LOOP TXI >1\n    TXI O 1\n    DTM O 1")
    )
    sac_line = (
        "  LOOP SAC 25\n    SAC O 1\n    TXI O 10"
        if version == "004010"
        else ("  LOOP SAC >1\n    SAC O 1\n    LOOP TXI >1\n      TXI O 1\n      DTM O 1")
    )
    sln_sac = "25" if version == "004010" else ">1"
    return f"""
ST M 1
BIG M 1
NTE O 100
CUR O 1
REF O 12
YNQ O 10
PER O 3
{_N1_810.strip()}
ITD O >1
DTM O 10
FOB O 1
PID O 200
MEA O 40
PWK O 25
PKG O 25
L7 O 1
BAL O >1
INC O 1
PAM O >1
{crc_head}{_lm("10", "100", 0)}
LOOP N9 1
  N9 O 1
  MSG M 10
LOOP V1 >1
  V1 O 1
  R4 O >1
  DTM O >1
LOOP FA1 >1
  FA1 O 1
  FA2 M >1
LOOP IT1 200000
  IT1 O 1
  CRC O 1
  QTY O 5
  CUR O 1
  IT3 O 5
  TXI O {txi_max}
  CTP O 25
  PAM O 10
  MEA O 40
  LOOP PID 1000
    PID O 1
    MEA O 10
  PWK O 25
  PKG O 25
  PO4 O 1
  ITD O 2
  REF O >1
  YNQ O 10
  PER O 5
  SDQ O 500
  DTM O 10
  CAD O >1
  L7 O >1
  SR O 1
{sac_line}
  LOOP SLN 1000
    SLN O 1
    DTM O 1
    REF O >1
    PID O 1000
    SAC O {sln_sac}
    TC2 O 2
    TXI O {txi_max}
{_indent(_N1_810, 2)}
{_lm("10", "100", 2)}
  LOOP V1 >1
    V1 O 1
    R4 O >1
    DTM O >1
  LOOP FA1 >1
    FA1 O 1
    FA2 M >1
TDS M 1
TXI O {txi_max}
CAD O 1
AMT O >1
{sac_sum}
LOOP ISS >1
  ISS O 1
  PID O 1
CTT O 1
SE M 1
"""


S997 = """
ST M 1
AK1 M 1
LOOP AK2 999999
  AK2 O 1
  LOOP AK3 999999
    AK3 O 1
    AK4 O 99
  AK5 M 1
AK9 M 1
SE M 1
"""

S999 = """
ST M 1
AK1 M 1
LOOP AK2 999999
  AK2 O 1
  LOOP IK3 999999
    IK3 O 1
    CTX O 10
    LOOP IK4 999999
      IK4 O 1
      CTX O 10
  IK5 M 1
AK9 M 1
SE M 1
"""

# (set id, version) -> (name, functional identifier code, structure)
STRUCTURES: dict[tuple[str, str], tuple[str, str, str]] = {
    ("850", "004010"): ("Purchase Order", "PO", S850_4010),
    ("850", "005010"): ("Purchase Order", "PO", S850_5010),
    ("855", "004010"): ("Purchase Order Acknowledgment", "PR", _s855("004010")),
    ("855", "005010"): ("Purchase Order Acknowledgment", "PR", _s855("005010")),
    ("856", "004010"): ("Ship Notice/Manifest", "SH", _s856("004010")),
    ("856", "005010"): ("Ship Notice/Manifest", "SH", _s856("005010")),
    ("810", "004010"): ("Invoice", "IN", _s810("004010")),
    ("810", "005010"): ("Invoice", "IN", _s810("005010")),
    ("997", "004010"): ("Functional Acknowledgment", "FA", S997),
    ("997", "005010"): ("Functional Acknowledgment", "FA", S997),
    ("999", "005010"): ("Implementation Acknowledgment", "FA", S999),
}
