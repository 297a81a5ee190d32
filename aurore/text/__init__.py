"""Books and French text: Gutenberg downloads and files, French sentences and numbers."""
