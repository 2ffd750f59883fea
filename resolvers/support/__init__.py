"""Support: tickets to the provider's support line or the organization's personal manager, their comments,
attachments and history (tickets.py, the one owner of a ticket's lifecycle); other rooms open a ticket
through `create_ticket` (a requisites change, a tariff change)."""
