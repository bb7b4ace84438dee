"""`qos-collector report`: a verdict a regulator can file, as PDF and HTML.

A folder per stage: `scope` (which area, which days), `evidence` (the samples, read from the store
or a campaign CSV, written back as the CSV `evaluate` reads, whose SHA-256 is the data's
fingerprint), `findings` (the verdicts of the one engine, collector/compliance.py, and what the
charts show), `document` (PDF, HTML and a page PNG) and `command` (the command line).
"""
