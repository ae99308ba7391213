"""Catalogue cases for the regression losses (stub)."""
