"""Messages: templates, content, translation, rendering, delivery, bounces (SPEC §2.7, §2.8).

So far: `smtp_sink`, the development SMTP server that stores mail as .eml files.
"""
