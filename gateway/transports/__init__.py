"""Partner transports: adapters of :class:`gateway.ports.PartnerTransport`, one per
channel (``rest``, ``mailbox``; AS2 and SFTP plug in the same way). The outbox
sender (gateway.delivery) picks the adapter from the partner's profile at the time
it sends, never from what was recorded when the item was made."""
