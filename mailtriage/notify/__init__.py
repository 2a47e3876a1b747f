"""Outgoing mail: templates → messages → outbox → SMTP or Maildir."""
