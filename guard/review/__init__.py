"""The review console (``guard review``): the security team's web pages over the audit store.

Kept light to import: Flask and waitress load only when the console starts (``guard.review.app``).
"""
