"""Every word the user reads: Spanish texts under es/ (templates and small data files)."""
