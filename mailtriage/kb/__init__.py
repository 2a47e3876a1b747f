"""The knowledge base (level 0 self-help): Markdown articles the
acknowledgement suggests before an agent spends time on a ticket.

    kb/*.md ─► load (files, problems) ─► article (front matter, title, language)
            ─► index (BM25 per-language stems) ─► search(text, language) ─► Suggestions

`load` is the only module here that touches files; `article`, `text` and
`index` are pure. The App holds one built index (`Config.kb`), rebuilt with
the config at start and on SIGHUP.
"""
