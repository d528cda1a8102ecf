"""The report layer: which runs the book shows (arms), the facts and tables its chapters glue (report, results,
comparison, applications, performance) and its figures (plots)."""
