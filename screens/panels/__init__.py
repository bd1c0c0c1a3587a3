"""Rich renderables built from core results: the detail panes of each screen.

Pure functions of (data, tones): no widgets, no I/O, so they are cheap to re-render when the
theme changes and easy to test.
"""
