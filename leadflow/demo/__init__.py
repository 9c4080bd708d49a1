"""The example company: a synthetic German hydraulics manufacturer and its market.

`generator.generate` writes it into the raw schema (plus a trade-fair lead export);
`scenario` runs the whole platform on it for `make demo`.
"""
