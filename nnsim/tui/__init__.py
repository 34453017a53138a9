"""The nnsim app (Textual): home, lessons with live widgets, help.

Importing this package stays light: Numba and the fast backends are never imported here, and the
engine's modules are imported by the widgets that need them, when a lesson step shows them.
"""
