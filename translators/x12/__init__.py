"""X12 syntax: delimiters, streaming reader with envelope checks, grammars,
validation, acknowledgments and the writer."""
