"""The gateway's domain: decisions about messages, as plain functions over plain data.

What lives here decides; it never does. Planning an inbound message (quarantine,
rejection, duplicates inside one input, which acknowledgments are due), assembling
the interchanges we write (outbound documents, TA1/997/999) and the error tree
(:mod:`gateway.domain.errors`) take values and return values.

The rule this package keeps: no I/O. No asyncio, no sqlalchemy, no aiohttp, no
sockets, no files, no clock and no control-number store: the caller opens the raw
payload, hands in ``now`` and the numbers it allocated, and writes the result.
Inputs and outputs are picklable plain data, so a translation worker process calls
these functions directly. An import-linter contract in pyproject.toml keeps it so.

Modules:

* :mod:`~gateway.domain.states`: the status enums and their transition tables; every
  status write is checked against them;
* :mod:`~gateway.domain.errors`: the error tree; each error knows its HTTP status
  and what it makes of the message;
* :mod:`~gateway.domain.inbound`: a translated stream becomes an :class:`InboundPlan`;
* :mod:`~gateway.domain.acks`: the acknowledgment interchanges one message gets;
* :mod:`~gateway.domain.interchanges`: canonical documents become an X12 interchange;
* :mod:`~gateway.domain.replay`: what a replay from each stage (translate, deliver,
  acknowledge) does to a message, and when it is refused.
"""
