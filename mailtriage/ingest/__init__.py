"""Sources: everything that yields raw message bytes (files, stdin, Maildir,
mbox, IMAP, SMTP/LMTP). A source acknowledges a message only after
pipeline.accept() has committed it."""
